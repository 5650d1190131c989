#!/usr/bin/env python3
"""RFC 2920 pipelining over a raw socket (smtplib does not pipeline).

After EHLO, each phase's commands go out in ONE sendall(); then exactly as many replies
are read as commands were sent, and reported in order:

  {"ehlo": ["mr.test", "PIPELINING", ...], "phases": [[[code, text], ...], ...]}

Phase 1: MAIL, RCPT a, RCPT <bad syntax>, RCPT b, DATA         -> expect 250 250 5xx 250 354
Phase 2: body1 "." MAIL, RCPT c, DATA                         -> expect 250 250 250 354
Phase 3: body2 "." QUIT                                       -> expect 250 221
Bodies are read from --body1 / --body2 (raw content ending in CRLF) and dot-stuffed here.
"""
import argparse
import json
import re
import socket
import sys


class Conn:
    def __init__(self, host, port, timeout):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        lines = []
        while True:
            ln = self.line()
            lines.append(ln[4:])
            if len(ln) < 4 or ln[3] != "-":
                return [int(ln[:3]), "\n".join(lines)]


def stuff(content):
    return re.sub(rb"(?m)^\.", b"..", content)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--body1", required=True)
    ap.add_argument("--body2", required=True)
    ap.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()
    body1 = open(a.body1, "rb").read()
    body2 = open(a.body2, "rb").read()

    c = Conn(a.host, a.port, a.timeout)
    out = {"greeting": c.reply(), "ehlo": [], "phases": []}
    c.s.sendall(b"EHLO client.test\r\n")
    code, text = c.reply()
    out["ehlo"] = [code] + text.split("\n")

    phases = [
        (b"MAIL FROM:<pipe1@client.test>\r\n"
         b"RCPT TO:<a@localhost>\r\n"
         b"RCPT TO:<not an address>\r\n"
         b"RCPT TO:<b@localhost>\r\n"
         b"DATA\r\n", 5),
        (stuff(body1) + b".\r\n"
         b"MAIL FROM:<pipe2@client.test>\r\n"
         b"RCPT TO:<c@localhost>\r\n"
         b"DATA\r\n", 4),
        (stuff(body2) + b".\r\nQUIT\r\n", 2),
    ]
    for data, n in phases:
        c.s.sendall(data)
        replies = []
        try:
            for _ in range(n):
                replies.append(c.reply())
        except (EOFError, OSError) as e:
            replies.append([0, "error: %s" % e])
        out["phases"].append(replies)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
