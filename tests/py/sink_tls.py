#!/usr/bin/env python3
"""A real TLS-capable SMTP sink for the outbound TLS tests: aiosmtpd (a server nobody on
the mailroot team wrote, OpenSSL underneath through Python's ssl module) on 127.0.0.1.

Like sink_aiosmtpd.py it writes, for each accepted message N (from 1), `<dir>/N.json` and
then `<dir>/N.eml`; the JSON also says how the session was secured:
{"mail_from", "rcpt_tos", "tls": cipher name or null, "tls_version": or null,
 "auth": the authenticated user or null}. `<dir>/ready` holds the port once listening.

Options: `--cert/--key` (PEM) offer STARTTLS (without them: no STARTTLS at all);
`--auth user:password` offers AUTH PLAIN/LOGIN, only over TLS (aiosmtpd's
`auth_require_tls`), and requires it (`auth_required`); a wrong password gets aiosmtpd's
`535 5.7.8`. `--auth-plaintext` offers that AUTH without TLS too (a smart host that
would take credentials in the clear). `--tls-max-1-1` offers STARTTLS but only TLS <= 1.1, so a TLS 1.2+ client's
handshake fails. Bounded: the process exits by itself after --lifetime seconds.
"""
import argparse
import json
import os
import ssl
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Store:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.n = 0

    async def handle_DATA(self, server, session, envelope):
        self.n += 1
        base = os.path.join(self.out_dir, str(self.n))
        cipher = version = None
        if session.ssl:
            c = session.ssl.get("cipher")
            cipher = c[0] if c else "?"
            obj = session.ssl.get("ssl_object")
            version = obj.version() if obj else None
        auth = session.auth_data
        if isinstance(auth, bytes):
            auth = auth.decode("utf-8", "replace")
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": cipher,
            "tls_version": version,
            "auth": auth if session.authenticated else None,
        }
        with open(base + ".json.tmp", "w") as f:
            json.dump(record, f)
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(base + ".json.tmp", base + ".json")
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 2.0.0 Ok: stored"


def authenticator_for(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False on failure: aiosmtpd then answers its own 535 5.7.8.
        return AuthResult(success=ok, handled=ok, auth_data=user if ok else None)

    return check


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--auth")
    ap.add_argument("--auth-plaintext", action="store_true")
    ap.add_argument("--tls-max-1-1", action="store_true")
    ap.add_argument("--lifetime", type=float, default=300.0)
    a = ap.parse_args()
    kw = {}
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
        if a.tls_max_1_1:
            # A handshake a TLS 1.2+ client cannot complete (the `may` plaintext retry).
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
            ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        kw["tls_context"] = ctx
    if a.auth:
        user, password = a.auth.split(":", 1)
        kw["authenticator"] = authenticator_for(user, password)
        kw["auth_require_tls"] = not a.auth_plaintext
        kw["auth_required"] = True
    ctl = Controller(Store(a.dir), hostname="127.0.0.1", port=a.port, **kw)
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
