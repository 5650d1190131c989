#!/usr/bin/env python3
"""TLS with Python's smtplib (STARTTLS and SMTP_SSL) against mailroot; every reply as JSON.

Used by tests/e2e_tls.rs. smtplib and the ssl module (OpenSSL) are clients nobody on the
mailroot team wrote; the certificate is checked against --cafile with
ssl.create_default_context (host name `localhost`).

  --mode starttls: connect, EHLO, [MAIL before TLS], STARTTLS, EHLO, [message], QUIT
  --mode smtps:    SMTP_SSL (implicit TLS), EHLO, [message], QUIT
  --login USER:PASSWORD: smtplib `login()` after the EHLO over TLS, before the message

Output: {"connect": [c, t], "ehlo_before": [exts] | null, "mail_before_tls": [c, t] | null,
         "starttls": [c, t] | null, "ehlo": [exts], "version": "TLSv1.3", "cipher": "...",
         "login": [c, t] | "not-supported" | null,
         "mail": [c, t] | null, "rcpt": [c, t] | null, "data": [c, t] | null,
         "quit": [c, t], "error": "..." | null}
Exit status is 0 even when the server refuses: refusals are data for the test.
"""
import argparse
import json
import smtplib
import ssl

from replies import pair


def features(s):
    return sorted(s.esmtp_features.keys())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--mode", choices=["starttls", "smtps"], required=True)
    ap.add_argument("--from", dest="sender", default=None)
    ap.add_argument("--to", default=None)
    ap.add_argument("--body-file", default=None)
    ap.add_argument("--mail-before-tls", action="store_true")
    ap.add_argument("--login", default=None)
    a = ap.parse_args()

    ctx = ssl.create_default_context(cafile=a.cafile)
    r = {"connect": None, "ehlo_before": None, "mail_before_tls": None, "starttls": None,
         "ehlo": None, "version": None, "cipher": None, "login": None, "mail": None,
         "rcpt": None,
         "data": None, "quit": None, "error": None}
    try:
        # The host goes to the constructor: smtplib checks the certificate against the
        # host name given there (it raises unless the greeting was 220).
        if a.mode == "smtps":
            s = smtplib.SMTP_SSL("localhost", a.port, local_hostname="client.test",
                                 timeout=15, context=ctx)
        else:
            s = smtplib.SMTP("localhost", a.port, local_hostname="client.test", timeout=15)
        r["connect"] = [220, "greeted"]
        if a.mode == "starttls":
            s.ehlo("client.test")
            r["ehlo_before"] = features(s)
            if a.mail_before_tls:
                r["mail_before_tls"] = pair(s.mail("early@client.test"))
            r["starttls"] = pair(s.starttls(context=ctx))
        s.ehlo("client.test")
        r["ehlo"] = features(s)
        r["version"] = s.sock.version()
        r["cipher"] = s.sock.cipher()[0]
        if a.login:
            user, password = a.login.split(":", 1)
            try:
                r["login"] = pair(s.login(user, password))
            except smtplib.SMTPNotSupportedError:
                r["login"] = "not-supported"
            except smtplib.SMTPAuthenticationError as e:
                r["login"] = pair((e.smtp_code, e.smtp_error))
        if a.sender:
            with open(a.body_file, "rb") as f:
                body = f.read()
            r["mail"] = pair(s.mail(a.sender))
            r["rcpt"] = pair(s.rcpt(a.to))
            if r["rcpt"][0] == 250:
                r["data"] = pair(s.data(body))
            else:
                s.rset()
        r["quit"] = pair(s.quit())
    except Exception as e:  # reported, not raised: the test asserts on it
        r["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
