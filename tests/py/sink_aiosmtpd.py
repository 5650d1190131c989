#!/usr/bin/env python3
"""A real SMTP sink for the end-to-end tests: aiosmtpd (a server nobody on the mailroot
team wrote) on 127.0.0.1, storing every message it accepts.

For each message N (from 1) it writes `<dir>/N.json` with the envelope
{"mail_from": ..., "rcpt_tos": [...]} and then `<dir>/N.eml` with the content exactly as
aiosmtpd handed it over: after its own end-of-data detection and dot-unstuffing, so a
test sees what the next hop would store. `<dir>/ready` holds the port once listening.

Bounded: the process exits by itself after --lifetime seconds (the test kills it sooner).
"""
import argparse
import json
import os
import time

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out_dir, str(self.n))
        with open(base + ".json.tmp", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos}, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Ok: stored"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    ctl = Controller(Store(a.dir), hostname="127.0.0.1", port=a.port)
    ctl.start()
    with open(os.path.join(a.dir, "ready.tmp"), "w") as f:
        f.write(str(a.port))
    os.rename(os.path.join(a.dir, "ready.tmp"), os.path.join(a.dir, "ready"))
    try:
        time.sleep(a.lifetime)
    finally:
        ctl.stop()


if __name__ == "__main__":
    main()
