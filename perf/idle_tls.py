#!/usr/bin/env python3
"""Idle TLS connection memory probe: hold N implicit-TLS SMTP sessions open after EHLO,
report the server's VmRSS before and while they are held (issue 14's 10,000-session budget).

Usage: perf/idle_tls.py --port 2465 --pid PID --cafile cert.pem [--connections 10000]
                        [--hold-seconds 5] [--batch 200]

Loopback only (127.0.0.1, name `localhost` checked against --cafile). Raises its own
RLIMIT_NOFILE. Each connection does the TLS handshake (Python's ssl, OpenSSL), reads the
220, sends EHLO, reads the reply, then stays idle. Bounded: N connections, a fixed hold.
Prints one JSON line.
"""
import argparse
import asyncio
import json
import resource
import ssl
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def reply(reader):
    while True:
        line = await reader.readline()
        if not line or line[3:4] != b"-":
            return line


async def one(port, ctx, held):
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    await reply(reader)
    writer.write(b"EHLO idle.test\r\n")
    await writer.drain()
    await reply(reader)
    held.append(writer)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--hold-seconds", type=float, default=5.0)
    ap.add_argument("--batch", type=int, default=200)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, a.connections + 1024), hard))
    ctx = ssl.create_default_context(cafile=a.cafile)
    before = rss_kib(a.pid)
    held, errors = [], 0
    t0 = time.monotonic()
    for start in range(0, a.connections, a.batch):
        n = min(a.batch, a.connections - start)
        rs = await asyncio.gather(*(one(a.port, ctx, held) for _ in range(n)),
                                  return_exceptions=True)
        errors += sum(1 for r in rs if isinstance(r, Exception))
    secs = time.monotonic() - t0
    await asyncio.sleep(a.hold_seconds)
    during = rss_kib(a.pid)
    for w in held:
        w.close()
    print(json.dumps({"held": len(held), "errors": errors, "handshake_seconds": round(secs, 2),
                      "handshakes_per_s": round(len(held) / secs, 1) if secs else None,
                      "rss_before_kib": before, "rss_held_kib": during,
                      "kib_per_connection": round((during - before) / max(len(held), 1), 2)}))


if __name__ == "__main__":
    asyncio.run(main())
