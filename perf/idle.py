#!/usr/bin/env python3
"""Idle-connection memory probe: hold N SMTP connections open after EHLO, report server RSS.

Usage: perf/idle.py --port 2525 --pid PID [--connections 10000] [--hold-seconds 5]

Loopback only (127.0.0.1). Raises its own RLIMIT_NOFILE. Every connection reads the 220,
sends EHLO, reads the reply, then stays idle; the server's VmRSS (from /proc/PID/status)
is read before and while they are held. Bounded: N connections, a fixed hold time.
"""
import argparse
import resource
import selectors
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--pid", type=int, required=True)
    ap.add_argument("--connections", type=int, default=10000)
    ap.add_argument("--hold-seconds", type=float, default=5.0)
    ap.add_argument("--deadline-seconds", type=float, default=120.0)
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = a.connections + 100
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    before = rss_kib(a.pid)
    deadline = time.monotonic() + a.deadline_seconds
    sel = selectors.DefaultSelector()
    socks = []
    state = {}
    opened = 0
    done = 0
    # Open in waves so the listen backlog is never overrun.
    while done < a.connections and time.monotonic() < deadline:
        while opened < a.connections and opened - done < 500:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", a.port))
            socks.append(s)
            state[s.fileno()] = [s, b"", 0]  # socket, buffer, phase (0: want 220, 1: want 250)
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        for key, _ in sel.select(timeout=1.0):
            s, buf, phase = state[key.fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            if not data:
                print(f"connection closed by server after {done} ready", file=sys.stderr)
                sys.exit(1)
            buf += data
            if phase == 0 and buf.endswith(b"\r\n") and buf.startswith(b"220"):
                s.send(b"EHLO idle.example\r\n")
                state[key.fd] = [s, b"", 1]
            elif phase == 1 and b"\r\n250 " in b"\r\n" + buf and buf.endswith(b"\r\n"):
                sel.unregister(s)
                state[key.fd] = [s, b"", 2]
                done += 1
            else:
                state[key.fd] = [s, buf, phase]
    if done < a.connections:
        print(f"only {done} of {a.connections} connections became idle", file=sys.stderr)
        sys.exit(1)
    time.sleep(a.hold_seconds)
    during = rss_kib(a.pid)
    print(
        f"connections={done} rss_before_kib={before} rss_held_kib={during} "
        f"rss_held_mib={during / 1024:.1f} per_connection_bytes={(during - before) * 1024 / done:.0f}"
    )
    for s in socks:
        s.close()


if __name__ == "__main__":
    main()
