#!/usr/bin/env python3
"""Send numbered messages through a load balancer with Python's smtplib, one connection
per message, the way a sending MTA would: a 4xx reply (e.g. "421 4.3.2 Service paused"
from a node being drained) or a broken connection means "try again", so the message is
retried on a new connection (the balancer may pick another node), at most --retries times.

Each message carries `Message-ID: <scale-{i}@client.test>`. One JSON line per message on
stdout, flushed as soon as it is known (the test reads them while we run):

  {"i": 3, "code": 250, "attempts": 1, "tries": [[421, "..."], ...]}

`code` is the final reply to DATA (or the last failure's code, 0 for a connection error).
Used by tests/e2e_scaleout.rs. Bounded: --count messages, --retries attempts each.
"""
import argparse
import json
import smtplib
import socket
import sys
import time


def one(a, i):
    """One attempt: (code, text) of the DATA reply, or of the first refusal."""
    s = smtplib.SMTP(local_hostname="client.test", timeout=a.timeout)
    try:
        code, text = s.connect(a.host, a.port, source_address=(a.source, 0))
        if code != 220:
            return code, text.decode("utf-8", "replace")
        s.ehlo("client.test")
        code, text = s.mail(a.sender)
        if code != 250:
            return code, text.decode("utf-8", "replace")
        code, text = s.rcpt(a.to)
        if code not in (250, 251):
            return code, text.decode("utf-8", "replace")
        body = (
            "From: <%s>\r\nTo: <%s>\r\nSubject: scale-out %d\r\n"
            "Message-ID: <scale-%d@client.test>\r\n\r\nmessage %d through the balancer\r\n"
            % (a.sender, a.to, i, i, i)
        )
        try:
            code, text = s.data(body.encode())
        except smtplib.SMTPDataError as e:
            code, text = e.smtp_code, e.smtp_error
        return code, text.decode("utf-8", "replace")
    finally:
        try:
            s.quit()
        except (smtplib.SMTPException, OSError):
            s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--from", dest="sender", default="alice@client.test")
    ap.add_argument("--to", default="bob@remote.example")
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--retries", type=int, default=50)
    ap.add_argument("--delay", type=float, default=0.0, help="seconds between messages")
    ap.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()

    for i in range(a.first, a.first + a.count):
        tries = []
        code = 0
        for _ in range(a.retries):
            try:
                code, text = one(a, i)
            except (smtplib.SMTPException, OSError, socket.timeout) as e:
                code, text = 0, "%s: %s" % (type(e).__name__, e)
            if code == 250 or 500 <= code < 600:
                break
            tries.append([code, text])
            time.sleep(0.1)
        print(json.dumps({"i": i, "code": code, "attempts": len(tries) + 1, "tries": tries}))
        sys.stdout.flush()
        if a.delay:
            time.sleep(a.delay)
    return 0


if __name__ == "__main__":
    sys.exit(main())
