#!/usr/bin/env python3
"""Drive Python's smtplib through SMTP smuggling attempts and report the replies as JSON.

smtplib (a client nobody on the mailroot team wrote) does the session: connection, EHLO,
MAIL, RCPT and reading every reply. Its `data()` would dot-stuff and fix line endings,
so the content, which must carry bare CR / bare LF byte for byte, goes out with its
`send()` after a `DATA` or `BDAT <n> LAST` command it sent with `putcmd()`.

Input: a JSON file [{"mode": "data"|"bdat", "from": ..., "to": [...], "content": hex}, ...].
For "data", the content is sent as is and followed by ".\\r\\n" (with a CRLF before it
if the content does not end with one).
Output: {"replies": [[code, text], ...] (one per message: the reply to its content),
         "noop": [code, text] (must be the NOOP's own 250: anything smuggled and answered
         would come first), "quit": [code, text]}
"""
import argparse
import json
import smtplib

from replies import pair


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cases", required=True)
    a = ap.parse_args()
    with open(a.cases) as f:
        cases = json.load(f)
    s = smtplib.SMTP("127.0.0.1", a.port, local_hostname="client.test", timeout=20)
    s.ehlo()
    out = {"replies": []}
    for c in cases:
        code, text = s.mail(c["from"])
        if code != 250:
            out["replies"].append([code, text.decode()])
            continue
        for r in c["to"]:
            s.rcpt(r)
        content = bytes.fromhex(c["content"])
        if c["mode"] == "data":
            s.putcmd("DATA")
            code, text = s.getreply()
            if code != 354:
                out["replies"].append(pair((code, text)))
                continue
            s.send(content + (b".\r\n" if content.endswith(b"\r\n") else b"\r\n.\r\n"))
        else:
            s.putcmd("BDAT", "%d LAST" % len(content))
            s.send(content)
        out["replies"].append(pair(s.getreply()))
    out["noop"] = pair(s.noop())
    out["quit"] = pair(s.quit())
    print(json.dumps(out))


if __name__ == "__main__":
    main()
