#!/usr/bin/env python3
"""Send mail with Python's smtplib and report every reply as JSON on stdout.

Used by the Rust end-to-end tests (tests/common/mod.rs `PySend`). smtplib is a client
nobody on the mailroot team wrote; this script only drives it step by step so the test
can assert on each reply:

  {"connect": [code, text],
   "ehlo": [code, text] | null,
   "messages": [{"mail": [c, t], "rcpt": [[c, t], ...], "data": [c, t] | null}],
   "error": "..." | null}

`--count N` sends N messages on one connection; `{i}` in --from is replaced by the index.
Exit status is 0 even when the server refuses: refusals are data for the test.
"""
import argparse
import json
import smtplib
import socket
import sys

from replies import pair


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--from", dest="sender", required=True)
    ap.add_argument("--to", action="append", default=[])
    ap.add_argument("--body-file", required=True)
    ap.add_argument("--mail-opt", action="append", default=[])
    ap.add_argument("--source", default=None)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--ehlo", default="client.test")
    ap.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()

    with open(a.body_file, "rb") as f:
        body = f.read()

    report = {"connect": None, "ehlo": None, "messages": [], "error": None}
    s = smtplib.SMTP(local_hostname=a.ehlo, timeout=a.timeout)
    try:
        src = (a.source, 0) if a.source else None
        s.source_address = src
        report["connect"] = pair(s.connect(a.host, a.port, source_address=src))
        if report["connect"][0] != 220:
            print(json.dumps(report))
            return 0
        report["ehlo"] = pair(s.ehlo(a.ehlo))
        for i in range(a.count):
            m = {"mail": None, "rcpt": [], "data": None}
            report["messages"].append(m)
            m["mail"] = pair(s.mail(a.sender.replace("{i}", str(i)), a.mail_opt))
            if m["mail"][0] != 250:
                s.rset()
                continue
            ok = 0
            for t in a.to:
                r = pair(s.rcpt(t))
                m["rcpt"].append(r)
                ok += r[0] in (250, 251)
            if ok == 0:
                s.rset()
                continue
            try:
                m["data"] = pair(s.data(body))
            except smtplib.SMTPDataError as e:
                m["data"] = pair((e.smtp_code, e.smtp_error))
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            pass
    except (smtplib.SMTPException, OSError, socket.timeout) as e:
        report["error"] = "%s: %s" % (type(e).__name__, e)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
