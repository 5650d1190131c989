#!/usr/bin/env python3
"""Exhaustion probes against a running mailroot (issue 12): many connections, large messages.

Usage:
  perf/exhaust.py conns --port P --pid PID [--connections 10000] [--mail 50] [--hold-seconds 5]
      Open N connections (each reads its first reply; a 220 is answered with EHLO and held).
      While they are held, send --mail messages with smtplib on new connections, one at a
      time, and report what they got (250, or the 421 of a full server). Prints the server's
      VmRSS/VmHWM before and while held, then closes everything and checks one more message.
  perf/exhaust.py big --port P --pid PID [--clients 100] [--size-mib 50]
      C clients at once, each sending one message of S MiB (78-byte lines) in 64 KiB writes.
      Samples the server's VmRSS every 100 ms; prints the replies, peak VmRSS and VmHWM.

Loopback only (127.0.0.1). Raises its own RLIMIT_NOFILE. Bounded: fixed counts, and every
phase has a deadline (--deadline-seconds). Prints one `key=value` line per result.
"""
import argparse
import resource
import selectors
import smtplib
import socket
import sys
import threading
import time


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(n, hard), hard))


def one_message(port, tag):
    """Send one small message on a new connection; returns the code or the refusal."""
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.ehlo("exhaust.test")
            s.sendmail(f"{tag}@exhaust.test", ["r@localhost"], b"Subject: probe\r\n\r\nprobe\r\n")
            return "250"
    except smtplib.SMTPConnectError as e:
        return str(e.smtp_code)
    except smtplib.SMTPResponseException as e:
        return str(e.smtp_code)
    except OSError as e:
        return type(e).__name__


def conns(a):
    raise_nofile(a.connections + 200)
    rss0, hwm0 = status_kib(a.pid, "VmRSS"), status_kib(a.pid, "VmHWM")
    deadline = time.monotonic() + a.deadline_seconds
    sel = selectors.DefaultSelector()
    state = {}
    opened = greeted = refused = failed = done = 0
    t0 = time.monotonic()
    while done < a.connections and time.monotonic() < deadline:
        while opened < a.connections and opened - done < 500:  # waves: never overrun the backlog
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", a.port))
            state[s.fileno()] = [s, b"", 0]
            sel.register(s, selectors.EVENT_READ)
            opened += 1
        for key, _ in sel.select(timeout=1.0):
            st = state[key.fd]
            s = st[0]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                sel.unregister(s)
                failed += st[2] < 2
                done += st[2] < 2
                st[2] = 3
                continue
            st[1] += data
            if not st[1].endswith(b"\r\n"):
                continue
            if st[2] == 0 and st[1].startswith(b"220"):
                st[1], st[2] = b"", 1
                s.send(b"EHLO exhaust.test\r\n")
            elif st[2] == 0:
                refused += st[1].startswith(b"421")
                failed += not st[1].startswith(b"421")
                st[2] = 3
                done += 1
                sel.unregister(s)
            elif st[2] == 1 and b"250 " in st[1]:
                st[2] = 2
                greeted += 1
                done += 1
                sel.unregister(s)
    opened_s = time.monotonic() - t0
    rss1, hwm1 = status_kib(a.pid, "VmRSS"), status_kib(a.pid, "VmHWM")
    codes = {}
    for i in range(a.mail):
        c = one_message(a.port, f"during{i}")
        codes[c] = codes.get(c, 0) + 1
    time.sleep(a.hold_seconds)
    rss2 = status_kib(a.pid, "VmRSS")
    for st in state.values():
        st[0].close()
    after = "none"
    for _ in range(50):  # the server sees the closes asynchronously
        after = one_message(a.port, "after")
        if after == "250":
            break
        time.sleep(0.2)
    print(f"connections={a.connections} held={greeted} refused_421={refused} failed={failed} "
          f"open_seconds={opened_s:.1f}")
    print(f"rss_before_kib={rss0} rss_held_kib={rss1} rss_held_after_mail_kib={rss2} "
          f"hwm_kib={max(hwm1, status_kib(a.pid, 'VmHWM'))} hwm_before_kib={hwm0}")
    if greeted:
        print(f"rss_per_held_connection_bytes={(rss1 - rss0) * 1024 // greeted}")
    print("mail_during=" + ",".join(f"{k}:{v}" for k, v in sorted(codes.items())))
    print(f"mail_after_close={after}")


def big_client(port, size, out, i, deadline):
    """Send one `size`-byte message; store the final reply code (or the error) in out[i]."""
    line = b"x" * 76 + b"\r\n"
    chunk = line * (65536 // len(line))
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=120)
        f = s.makefile("rb")

        def reply():
            while True:
                ln = f.readline()
                if not ln:
                    raise OSError("closed")
                if ln[3:4] != b"-":
                    return ln.decode(errors="replace").strip()

        assert reply().startswith("220")
        for cmd in (b"EHLO big.test", f"MAIL FROM:<big{i}@exhaust.test>".encode(),
                    b"RCPT TO:<r@localhost>", b"DATA"):
            s.sendall(cmd + b"\r\n")
            r = reply()
        if not r.startswith("354"):
            out[i] = r
            return
        s.sendall(b"Subject: big\r\n\r\n")
        sent = 0
        while sent < size and time.monotonic() < deadline:
            s.sendall(chunk)
            sent += len(chunk)
        s.sendall(b".\r\n")
        out[i] = reply()[:3]
        s.sendall(b"QUIT\r\n")
        s.close()
    except Exception as e:  # noqa: BLE001 - every failure is a result to print
        out[i] = type(e).__name__


def big(a):
    raise_nofile(a.clients + 100)
    size = a.size_mib << 20
    out = [None] * a.clients
    rss0, hwm0 = status_kib(a.pid, "VmRSS"), status_kib(a.pid, "VmHWM")
    deadline = time.monotonic() + a.deadline_seconds
    threads = [threading.Thread(target=big_client, args=(a.port, size, out, i, deadline))
               for i in range(a.clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    peak = rss0
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 60:
        peak = max(peak, status_kib(a.pid, "VmRSS"))
        time.sleep(0.1)
    for t in threads:
        t.join(timeout=1)
    secs = time.monotonic() - t0
    codes = {}
    for c in out:
        codes[str(c)] = codes.get(str(c), 0) + 1
    hwm = status_kib(a.pid, "VmHWM")
    print(f"clients={a.clients} size_mib={a.size_mib} seconds={secs:.1f} "
          f"mib_per_s={a.clients * a.size_mib / secs:.0f}")
    print("replies=" + ",".join(f"{k}:{v}" for k, v in sorted(codes.items())))
    print(f"rss_before_kib={rss0} rss_peak_sampled_kib={peak} hwm_kib={hwm} hwm_before_kib={hwm0}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("conns")
    c.add_argument("--connections", type=int, default=10000)
    c.add_argument("--mail", type=int, default=50)
    c.add_argument("--hold-seconds", type=float, default=5.0)
    b = sub.add_parser("big")
    b.add_argument("--clients", type=int, default=100)
    b.add_argument("--size-mib", type=int, default=50)
    for p in (c, b):
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--pid", type=int, required=True)
        p.add_argument("--deadline-seconds", type=float, default=600.0)
    a = ap.parse_args()
    (conns if a.cmd == "conns" else big)(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
