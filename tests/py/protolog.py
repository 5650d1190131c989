#!/usr/bin/env python3
"""One smtplib session whose every command is measured on the wire, for the protocol-log
end-to-end tests (tests/e2e_protocol_log.rs).

smtplib (a client nobody on the mailroot team wrote) runs EHLO, [AUTH], MAIL, RCPT, DATA,
QUIT; a subclass counts the bytes it sends and the reply bytes it reads around each step,
so the test can compare them with the log's cs-bytes and sc-bytes. Prints JSON:

  {"steps": [{"cmd": "EHLO", "code": 250, "cs": 19, "sc": 150}, ...]}
"""
import argparse
import json
import smtplib


class CountingFile:
    """Wraps the reply stream: counts every byte smtplib reads."""

    def __init__(self, f, owner):
        self.f = f
        self.owner = owner

    def readline(self, *args):
        line = self.f.readline(*args)
        self.owner.recv += len(line)
        return line

    def close(self):
        self.f.close()


class Counting(smtplib.SMTP):
    sent = 0
    recv = 0

    def send(self, s):
        if isinstance(s, str):
            s = s.encode("ascii")
        self.sent += len(s)
        super().send(s)

    def getreply(self):
        if self.file is None:
            self.file = CountingFile(self.sock.makefile("rb"), self)
        return super().getreply()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ehlo", default="client.test")
    ap.add_argument("--sender", default="alice@example.com")
    ap.add_argument("--rcpt", default="bob@localhost")
    ap.add_argument("--user", default=None)
    ap.add_argument("--password", default=None)
    a = ap.parse_args()

    s = Counting(local_hostname=a.ehlo, timeout=15)
    s.connect("127.0.0.1", a.port)
    steps = []

    def step(cmd, f):
        s0, r0 = s.sent, s.recv
        code = f()
        steps.append({"cmd": cmd, "code": code, "cs": s.sent - s0, "sc": s.recv - r0})

    step("EHLO", lambda: s.ehlo(a.ehlo)[0])
    if a.user:
        # PLAIN with an initial response (smtplib's choice when CRAM-MD5 is not offered).
        s.user, s.password = a.user, a.password
        step("AUTH", lambda: s.auth("PLAIN", s.auth_plain)[0])
    step("MAIL", lambda: s.mail(a.sender)[0])
    step("RCPT", lambda: s.rcpt(a.rcpt)[0])
    step("DATA", lambda: s.data(b"Subject: protocol log\r\n\r\nHello.\r\n")[0])
    step("QUIT", lambda: s.quit()[0])
    print(json.dumps({"steps": steps}))


if __name__ == "__main__":
    main()
