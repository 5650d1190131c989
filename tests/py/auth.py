#!/usr/bin/env python3
"""SMTP AUTH with Python's smtplib; every reply reported as JSON on stdout.

Used by tests/e2e_auth.rs. smtplib is a client nobody on the mailroot team wrote; this
script drives it step by step so the test can assert on each reply:

  {"connect": [code, text], "ehlo": [code, text], "auth_offered": bool,
   "auth": [{"code": c, "text": t, "seconds": s}, ...],   # one per --attempt
   "login": [code, text] | "not-supported" | null,        # with --login
   "docmd": [[code, text], ...],                          # one per --docmd
   "mail": [c, t] | null, "rcpt": [[c, t], ...], "data": [c, t] | null,
   "closed": bool, "error": "..." | null}

--attempt MECH:INITIAL:USER:PASSWORD (INITIAL = 1 or 0: `initial_response_ok`) runs
`smtplib.SMTP.auth` with that mechanism (PLAIN or LOGIN); --login USER:PASSWORD runs
`smtplib.SMTP.login` (which needs AUTH in the EHLO reply); --docmd LINE sends a raw line
with `docmd`. With --from, a message is sent after all that. Exit status is 0 even when
the server refuses: refusals are data for the test.
"""
import argparse
import json
import smtplib
import time

from replies import pair


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default=None)
    ap.add_argument("--attempt", action="append", default=[])
    ap.add_argument("--login", default=None)
    ap.add_argument("--docmd", action="append", default=[])
    ap.add_argument("--from", dest="sender", default=None)
    ap.add_argument("--to", action="append", default=[])
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    report = {"connect": None, "ehlo": None, "auth_offered": False, "auth": [],
              "login": None, "docmd": [], "mail": None, "rcpt": [], "data": None,
              "closed": False, "error": None}
    s = smtplib.SMTP(local_hostname="client.test", timeout=a.timeout)
    try:
        src = (a.source, 0) if a.source else None
        report["connect"] = pair(s.connect(a.host, a.port, source_address=src))
        report["ehlo"] = pair(s.ehlo("client.test"))
        report["auth_offered"] = s.has_extn("auth")
        for spec in a.attempt:
            mech, initial, user, password = spec.split(":", 3)
            s.user, s.password = user, password
            obj = s.auth_plain if mech == "PLAIN" else s.auth_login
            start = time.monotonic()
            try:
                code, text = s.auth(mech, obj, initial_response_ok=initial == "1")
            except smtplib.SMTPAuthenticationError as e:
                code, text = e.smtp_code, e.smtp_error
            seconds = time.monotonic() - start
            text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
            report["auth"].append({"code": code, "text": text, "seconds": seconds})
            if code == 421:
                break
        if a.login:
            user, password = a.login.split(":", 1)
            try:
                report["login"] = pair(s.login(user, password))
            except smtplib.SMTPNotSupportedError:
                report["login"] = "not-supported"
            except smtplib.SMTPAuthenticationError as e:
                report["login"] = [e.smtp_code, e.smtp_error.decode("utf-8", "replace")]
        for line in a.docmd:
            report["docmd"].append(pair(s.docmd(line)))
        if a.sender:
            report["mail"] = pair(s.mail(a.sender))
            ok = 0
            for t in a.to:
                r = pair(s.rcpt(t))
                report["rcpt"].append(r)
                ok += r[0] == 250
            if report["mail"][0] == 250 and ok:
                report["data"] = pair(s.data(b"Subject: auth test\r\n\r\nhello\r\n"))
        try:
            s.quit()
        except smtplib.SMTPServerDisconnected:
            report["closed"] = True
    except smtplib.SMTPServerDisconnected as e:
        report["closed"] = True
        report["error"] = "disconnected: %s" % e
    except (OSError, smtplib.SMTPException) as e:
        report["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
