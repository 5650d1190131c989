#!/usr/bin/env python3
"""Play a load balancer: write a PROXY protocol header (v1 text, or v2 built with
struct.pack), then talk SMTP with Python's smtplib over the same socket, and report every
reply as JSON on stdout (used by tests/e2e_proxy.rs):

  {"greeting": [code, text] | null, "closed": true | false,
   "ehlo": [c, t] | null, "mail": [c, t] | null, "rcpt": [[c, t], ...], "data": [c, t] | null,
   "error": "..." | null}

"closed" is true when the server closed the connection without a greeting (EOF or reset
after the header). --header picks what is sent first:
  v1, v1-unknown, v1-mapped (TCP6 with an IPv4-mapped source), v2, v2-local, v1-truncated (fields missing), v2-truncated (length too
  short for AF_INET), garbage, partial (the first 8 bytes of a v1 header, then silence),
  none.
--split sends the header in two writes with a pause between (a header split across reads).
--tls wraps the socket in TLS after the header (implicit TLS; the certificate is not
checked: the test's self-signed one).
Exit status is 0 even when the server refuses: refusals are data for the test.
"""
import argparse
import json
import smtplib
import socket
import ssl
import struct
import sys
import time

from replies import pair

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(command, src, dst):
    """PROXY v2: signature, version 2 + command, AF_INET/STREAM, length, addresses."""
    if command == "local":
        return V2_SIGNATURE + struct.pack("!BBH", 0x20, 0x00, 0)
    (sip, sport), (dip, dport) = src, dst
    addrs = socket.inet_aton(sip) + socket.inet_aton(dip) + struct.pack("!HH", sport, dport)
    # A TLV after the addresses (PP2_TYPE_AUTHORITY), which the server must skip.
    tlv = struct.pack("!BH", 0x02, 7) + b"mx.test"
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(addrs) + len(tlv)) + addrs + tlv


def header(kind, src, dst):
    (sip, sport), (dip, dport) = src, dst
    v1 = f"PROXY TCP4 {sip} {dip} {sport} {dport}\r\n".encode()
    return {
        "v1": v1,
        "v1-unknown": b"PROXY UNKNOWN\r\n",
        "v1-mapped": f"PROXY TCP6 ::ffff:{sip} ::1 {sport} {dport}\r\n".encode(),
        "v2": v2_header("proxy", src, dst) if kind == "v2" else b"",
        "v2-local": v2_header("local", src, dst) if kind == "v2-local" else b"",
        "v1-truncated": f"PROXY TCP4 {sip} {dip}\r\n".encode(),
        "v2-truncated": V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, 4) + socket.inet_aton(sip),
        "garbage": b"EHLO not-a-proxy\r\n",
        "partial": v1[:8],
        "none": b"",
    }[kind]


def addr(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--source", default="127.0.0.1")
    ap.add_argument("--header", default="v1")
    ap.add_argument("--src", type=addr, default=("192.0.2.7", 40000))
    ap.add_argument("--dst", type=addr, default=("198.51.100.1", 25))
    ap.add_argument("--split", action="store_true")
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--from", dest="sender", default="alice@sender.test")
    ap.add_argument("--to", action="append", default=[])
    ap.add_argument("--body-file")
    ap.add_argument("--timeout", type=float, default=15.0)
    a = ap.parse_args()

    report = {"greeting": None, "closed": False, "ehlo": None, "mail": None, "rcpt": [],
              "data": None, "error": None}
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout,
                                    source_address=(a.source, 0))
    h = header(a.header, a.src, a.dst)
    if a.split and len(h) > 1:
        cut = len(h) // 2 if a.header.startswith("v1") else 13
        sock.sendall(h[:cut])
        time.sleep(0.2)
        sock.sendall(h[cut:])
    else:
        sock.sendall(h)
    if a.tls:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            sock = ctx.wrap_socket(sock, server_hostname="mx.test")
        except (ssl.SSLError, OSError) as e:
            report["closed"] = True
            report["error"] = f"TLS: {e}"
            print(json.dumps(report))
            return

    s = smtplib.SMTP()
    s.sock = sock
    s._host = "127.0.0.1"
    try:
        report["greeting"] = pair(s.getreply())
    except smtplib.SMTPServerDisconnected:
        report["closed"] = True
    except (ConnectionResetError, BrokenPipeError):
        report["closed"] = True
    except socket.timeout:
        report["error"] = "timeout waiting for the greeting"
    if report["greeting"] is None or report["greeting"][0] != 220:
        print(json.dumps(report))
        return
    try:
        report["ehlo"] = pair(s.ehlo("client.test"))
        report["mail"] = pair(s.docmd("MAIL", f"FROM:<{a.sender}>"))
        for t in a.to:
            report["rcpt"].append(pair(s.docmd("RCPT", f"TO:<{t}>")))
        ok = report["mail"][0] == 250 and all(r[0] == 250 for r in report["rcpt"])
        if a.body_file and ok and a.to:
            with open(a.body_file, "rb") as f:
                body = f.read()
            report["data"] = pair(s.data(body))
        s.quit()
    except smtplib.SMTPException as e:
        report["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
