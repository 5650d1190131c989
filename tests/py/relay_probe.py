#!/usr/bin/env python3
"""Probe a server with open-relay test addresses through Python's smtplib; report JSON.

Used by tests/e2e_relay_cases.rs. smtplib (a client nobody on the mailroot team wrote)
makes the connection (from --source), says EHLO, logs in with --login USER:PASSWORD if
given, and reads every reply. Each --rcpt is sent byte for byte as `RCPT TO:<value>`
through `docmd`, so hostile forms (no brackets, two `@`, source routes) reach the server
unchanged; smtplib's own `rcpt()` would re-quote them. With --data-file, DATA follows
when at least one RCPT got 250 (the content must end with CRLF and hold no line that
starts with a dot).

  {"ehlo": [code, text], "login": [code, text] | null, "mail": [code, text],
   "rcpt": [[code, text], ...], "data": [code, text] | null,
   "noop": [code, text], "quit": [code, text]}
"""
import argparse
import json
import smtplib

from replies import pair


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--ehlo", default="client.test")
    ap.add_argument("--login", default=None)
    ap.add_argument("--from", dest="sender", default="sender@client.test")
    ap.add_argument("--smtputf8", action="store_true")
    ap.add_argument("--rcpt", action="append", default=[])
    ap.add_argument("--data-file", default=None)
    a = ap.parse_args()

    s = smtplib.SMTP(local_hostname=a.ehlo, timeout=20, source_address=(a.source, 0))
    s.connect("127.0.0.1", a.port, source_address=(a.source, 0))
    out = {"ehlo": pair(s.ehlo()), "login": None, "data": None, "rcpt": []}
    if a.login:
        user, password = a.login.split(":", 1)
        try:
            out["login"] = pair(s.login(user, password))
        except smtplib.SMTPAuthenticationError as e:
            out["login"] = pair((e.smtp_code, e.smtp_error))
    if a.smtputf8:
        s.command_encoding = "utf-8"
    mail_arg = "FROM:<%s>%s" % (a.sender, " SMTPUTF8" if a.smtputf8 else "")
    out["mail"] = pair(s.docmd("MAIL", mail_arg))
    for r in a.rcpt:
        out["rcpt"].append(pair(s.docmd("RCPT", "TO:" + r)))
    if a.data_file and any(code == 250 for code, _ in out["rcpt"]):
        with open(a.data_file, "rb") as f:
            content = f.read()
        code, text = s.docmd("DATA")
        if code == 354:
            s.send(content + b".\r\n")
            out["data"] = pair(s.getreply())
        else:
            out["data"] = pair((code, text))
    out["noop"] = pair(s.noop())
    out["quit"] = pair(s.quit())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
