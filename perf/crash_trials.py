#!/usr/bin/env python3
"""Crash trials for mailroot (issue 12): SIGKILL under load, optional torn-write damage to
the newest spool segment, restart on the same Mailroot folder, drain to a sink, count.

One run = one aiosmtpd sink (a server nobody on the mailroot team wrote) in this process,
one mailroot server relaying every message to it by smart host, and N trials. A trial:

1. several smtplib clients (threads, one connection each) send messages to the running
   server; every message carries a unique `X-Trial-Id` (and Message-ID). A message counts
   as *acknowledged* only when `sendmail` returned, i.e. the client saw 250 after DATA;
2. the server gets SIGKILL at an instant chosen by the trial's kill mode:
   * `load`       a random time (50 ms .. --max-load-seconds) after the load started;
   * `delivery`   from inside the sink's DATA handler on the k-th message of the trial
                  (k random, 1..400): half the time the sink then answers 451 and does not keep the
                  message (mailroot never got a 250, so it must deliver it again), half the
                  time it keeps it, answers 250 and the kill follows 0-3 ms later (mailroot
                  may or may not have crossed it off: a duplicate is allowed);
   * `seal-pre`   when a worker segment holds data within X (random, < 48 KiB) of its end,
                  i.e. the next records roll it over and seal it;
   * `seal-post`  0-3 ms after a worker segment got its first record (a roll just happened:
                  the old segment is being sealed, the new one gets its first commit).
   A mode whose instant does not come within --max-load-seconds kills at that bound and
   is reported as `fallback`;
3. optionally (the trial's torn mode) the tail of the newest segment file that holds a
   record is damaged before the restart (`truncate`, `flip`, `zero-page`, `garbage`, see
   `damage`); the damaged offset D is recorded;
4. mailroot is started again on the same folder and runs until every acknowledged message
   reached the sink and `mailroot queue list --json` is empty (bounded by --drain-seconds);
   the restarted server is the one the next trial loads and kills.

Counted per trial: acknowledged; delivered (acknowledged ids the sink holds intact);
duplicated (intact copies beyond the first, any id of the trial); lost (acknowledged, never
delivered, not excused); corrupt (a delivery whose bytes from `X-Trial-Id:` to the end
differ from what the client sent, or that carries no known id); extra (delivered although
the client never saw its 250: allowed, the client would have retried); excused (torn
trials only: acknowledged messages whose record in the damaged segment does not lie
entirely before D, so the definition allows losing them; they are listed, not hidden).

"Entirely before D": a record occupies [start, start + total_len) in its segment
(ARCHITECTURE.md "Record": header, status bytes, envelope, content, END marker, padding);
for a SIGKILL its commit is complete once it was acknowledged. A record with
start + total_len <= D must be recovered; every other record of that segment may be lost.
Records in other segment files must all be recovered.

Lost must be 0 and corrupt must be 0 in every trial: the exit status is 1 otherwise (and
when a drain does not finish). Every loop is bounded in count and time; loopback only.

Usage: perf/crash_trials.py --binary target/release/mailroot [--trials 100] [--seed S]
       [--json-out FILE] [--work DIR] (see --help). perf/crash_trials.sh builds the release
       binary and runs this with the defaults.
"""
import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

from aiosmtpd.controller import Controller

KILL_MODES = ["load", "delivery", "seal-pre", "seal-post"]
TORN_MODES = ["none", "truncate", "flip", "zero-page", "garbage"]
# Not a torn write: a forged record with valid checksums, to show the corruption check
# works (such a trial must fail with corrupt >= 1). Only when asked for (--torn-modes).
ORACLE_MODES = ["forge"]

# --- the spool format, read independently of mailroot's code (ARCHITECTURE.md) ----------
SEGMENT_HEADER_BYTES = 64
SEGMENT_MAGIC = b"MRSEGMNT"
SEGMENT_FLAG_SPILL = 1
RECORD_HEADER_BYTES = 40
RECORD_MAGICS = (b"MRrc", b"MRdd")
END_MAGIC = b"MRen"
PAGE = 4096
# A worker segment rolls when the next record does not fit: the largest buffered record here
# is ~100 KiB (bigger ones spill), so a rolled segment holds data this close to its end.
ROLL_WINDOW = 110 * 1024
ID_RE = re.compile(rb"X-Trial-Id: ([A-Za-z0-9-]+)\r\n")


def align8(n):
    return (n + 7) & ~7


def segment_header(data):
    """(number, flags, capacity) of a segment file's bytes, or None if it does not verify."""
    if len(data) < SEGMENT_HEADER_BYTES or data[:8] != SEGMENT_MAGIC:
        return None
    if zlib.crc32(data[:60]) != struct.unpack_from("<I", data, 60)[0]:
        return None
    flags = struct.unpack_from("<H", data, 10)[0]
    number, _created, capacity = struct.unpack_from("<QQQ", data, 16)
    return number, flags, capacity


def segment_records(data):
    """Records of a segment in file order, as (start, total_len, trial id or None, intact).

    Walks the way recovery does (header checksum, lengths) and stops at the first record
    whose header does not verify; `intact` also checks the payload checksum and END."""
    out = []
    off = SEGMENT_HEADER_BYTES
    while off + RECORD_HEADER_BYTES <= len(data):
        if data[off:off + 4] not in RECORD_MAGICS:
            break
        hcrc = struct.unpack_from("<I", data, off + 36)[0]
        if zlib.crc32(data[off + 4:off + 36]) != hcrc:
            break
        n, e, m = struct.unpack_from("<IIQ", data, off + 16)
        body = align8(RECORD_HEADER_BYTES + n)
        end = body + e + m
        total = align8(end + 8)
        if off + total > len(data):
            break
        payload = data[off + body:off + end]
        intact = (zlib.crc32(payload) == struct.unpack_from("<I", data, off + 32)[0]
                  and data[off + end:off + end + 4] == END_MAGIC
                  and struct.unpack_from("<I", data, off + end + 4)[0] == hcrc)
        found = ID_RE.search(data, off + body + e, off + end)
        tid = found.group(1).decode() if found else None
        out.append((off, total, tid, intact))
        off += total
    return out


def segment_files(queue_dir):
    """[(number, path)] of the segment files in Queue/, ascending."""
    out = []
    for name in os.listdir(queue_dir):
        if name.endswith(".seg") and len(name) == 12:
            try:
                out.append((int(name[:8], 16), os.path.join(queue_dir, name)))
            except ValueError:
                pass
    return sorted(out)


def damage(queue_dir, mode, rng, worker_only):
    """Damage the tail of the newest segment holding a record (with `worker_only`, the
    newest worker segment: spill segments get fresh numbers, so the newest file is often a
    one-record spill); return what was done.

    truncate  : the file is cut at a random offset inside its last record;
    flip      : 1-8 bytes of the last record get XORed with a random non-zero byte (never
                its status bytes: those are the in-place cross-off state outside every
                checksum, see ARCHITECTURE.md, and a flip of `P` to `D` *is* a cross-off);
    zero-page : the 4 KiB page holding a random offset of the last record is zeroed (it may
                begin in an earlier record);
    garbage   : 1..4096 random bytes (half the time starting with the live record magic) are
                written right after the last record;
    forge     : (oracle check, not a torn write) the last pending record's content changed
                and its checksums recomputed.
    D (`damaged_at`) is the lowest offset changed; `excused` the trial ids of records that do
    not lie entirely before it."""
    for number, path in reversed(segment_files(queue_dir)):
        with open(path, "rb") as f:
            data = f.read()
        header = segment_header(data)
        if header is None or (worker_only and header[1] & SEGMENT_FLAG_SPILL):
            continue
        recs = segment_records(data)
        if not recs:
            continue
        if mode == "forge":
            # The oracle's own check: a pending record whose content is changed and whose
            # checksums are recomputed passes recovery; the sink must then see it as corrupt.
            recs = [r for r in recs if data[r[0] + RECORD_HEADER_BYTES] == ord("P") and r[3]]
            if not recs:
                continue
        start, total, _, _ = recs[-1]
        n, e, m = struct.unpack_from("<IIQ", data, start + 16)
        if mode == "truncate":
            d = rng.randrange(start + 1, start + total)
            os.truncate(path, d)
        elif mode == "flip":
            # Only bytes that are read and checked: not the status bytes and their padding,
            # not the padding after END.
            env_at = start + align8(RECORD_HEADER_BYTES + n)
            end_at = env_at + e + m + 8
            choices = [o for o in range(start, start + total)
                       if o < start + RECORD_HEADER_BYTES or env_at <= o < end_at]
            spots = sorted(rng.sample(choices, min(len(choices), rng.randint(1, 8))))
            with open(path, "r+b") as f:
                for o in spots:
                    f.seek(o)
                    f.write(bytes([data[o] ^ rng.randint(1, 255)]))
            d = spots[0]
        elif mode == "zero-page":
            d = rng.randrange(start, start + total) // PAGE * PAGE
            with open(path, "r+b") as f:
                f.seek(d)
                f.write(bytes(min(PAGE, len(data) - d)))
        elif mode == "garbage":
            d = start + total
            junk = bytearray(rng.randbytes(rng.randint(1, 4096)))
            junk[0] |= 1  # never a clean (all-zero) end
            if rng.random() < 0.5:
                junk[:4] = b"MRrc"
            with open(path, "r+b") as f:
                f.seek(d)
                f.write(junk)
        elif mode == "forge":
            rec = bytearray(data[start:start + total])
            body = align8(RECORD_HEADER_BYTES + n)
            rel = body + e + m - 3  # the last character before the content's final CRLF
            rec[rel] = ord("0") if rec[rel] != ord("0") else ord("1")
            struct.pack_into("<I", rec, 32, zlib.crc32(bytes(rec[body:body + e + m])))
            hcrc = zlib.crc32(bytes(rec[4:36]))
            struct.pack_into("<I", rec, 36, hcrc)
            struct.pack_into("<I", rec, body + e + m + 4, hcrc)
            with open(path, "r+b") as f:
                f.seek(start)
                f.write(rec)
            d = start + rel
        else:
            raise ValueError(mode)
        excused = sorted({tid for (s, t, tid, _) in recs if s + t > d and tid})
        # Recovery must log the damage unless what follows the last intact record is all
        # zeros (indistinguishable from unwritten preallocated space: nothing to report).
        first_torn = min([s for (s, t, _, _) in recs if s + t > d] + [d])
        with open(path, "rb") as f:
            f.seek(first_torn)
            expect_log = any(f.read()) and mode != "forge"
        return {"segment": f"{number:08X}", "spill": bool(header[1] & SEGMENT_FLAG_SPILL),
                "damaged_at": d, "record_start": start,
                "record_len": total, "excused": excused, "expect_log": expect_log}
    return None


# --- the sink ----------------------------------------------------------------------------
class Sink:
    """aiosmtpd handler: keeps, per trial id, the SHA-256 of every delivered copy (from
    `X-Trial-Id:` to the end) and runs the armed kill hook on DATA."""

    def __init__(self):
        self.lock = threading.Lock()
        self.copies = {}  # trial id -> [sha256 hex, ...]
        self.unknown = 0  # deliveries without a trial id
        self.hook = None  # callable() -> "discard" | None, run on every DATA
        self.datas = 0

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        hook = self.hook
        if hook is not None and hook() == "discard":
            return "451 4.3.0 crash trial: not taken"
        found = ID_RE.search(content)
        with self.lock:
            self.datas += 1
            if found is None:
                self.unknown += 1
            else:
                digest = hashlib.sha256(content[found.start():]).hexdigest()
                self.copies.setdefault(found.group(1).decode(), []).append(digest)
        return "250 2.0.0 kept"


# --- the server --------------------------------------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary, work, sink_port, segment_size, workers):
        self.binary = binary
        self.port = free_port()
        self.config = os.path.join(work, "mailroot.toml")
        self.queue = os.path.join(work, "mailroot", "Queue")
        self.log_path = os.path.join(work, "server.log")
        self.proc = None
        with open(self.config, "w") as f:
            f.write(f"""hostname = "crash-trials.test"
mailroot = "{work}/mailroot"
workers = {workers}
log_level = "warn"
[[site]]
name = "trials"
listen = ["127.0.0.1:{self.port}"]
[limits]
max_messages_per_connection = 1000000
max_connections_per_ip = 1000
min_free_disk = "1MiB"
shutdown_grace = "1s"
[relay]
allow = ["127.0.0.0/8"]
smart_host = "[127.0.0.1]:{sink_port}"
[domains]
local = ["localhost"]
[spool]
segment_size = "{segment_size}"
[delivery]
retry = ["1s"]
[dns]
servers = ["127.0.0.1:9"]
[admin]
enabled = false
[service]
allow_root = true
""")

    def start(self, timeout=30.0):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([self.binary, "serve", "--config", self.config],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mailroot exited at start: {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(512).startswith(b"220 crash-trials.test"):
                        s.sendall(b"QUIT\r\n")
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError("mailroot did not greet within the start timeout")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)

    def reap(self):
        if self.proc is not None:
            self.proc.wait(timeout=30)
            self.proc = None

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.reap()

    def queue_len(self):
        out = subprocess.run([self.binary, "queue", "list", "--json", "--config", self.config],
                             capture_output=True, timeout=30)
        if out.returncode != 0:
            return None
        return len(json.loads(out.stdout or b"[]"))

    def log_lines(self, start):
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace").splitlines()

    def log_size(self):
        return os.path.getsize(self.log_path)


# --- load --------------------------------------------------------------------------------
def make_message(tid, rng):
    r = rng.random()
    if r < 0.60:
        size = rng.randint(300, 2048)
    elif r < 0.90:
        size = rng.randint(2048, 20480)
    elif r < 0.99:
        size = rng.randint(20480, 102400)
    else:
        size = rng.randint(300 * 1024, 400 * 1024)  # spilled to its own segment file
    head = (f"X-Trial-Id: {tid}\r\nMessage-ID: <{tid}@crash.trials>\r\n"
            f"From: <{tid}@crash.trials>\r\nTo: <sink@sink.test>\r\n"
            f"Subject: crash trial {tid}\r\n\r\n").encode()
    hexed = rng.randbytes(size // 2 + 1).hex()
    lines = [hexed[i:i + 76] for i in range(0, size, 76)]
    for i in range(0, len(lines), 9):
        lines[i] = "." + lines[i]  # dot-stuffing on both hops
    return head + "\r\n".join(lines).encode() + b"\r\n"


class Load:
    """`clients` smtplib senders, each on one connection, until stopped or bounded."""

    def __init__(self, trial, port, clients, max_per_client, seed):
        self.stop = threading.Event()
        self.sent = {}  # trial id -> sha256 of the bytes sent
        self.acked = []  # trial ids whose DATA got 250, in order
        self.threads = [threading.Thread(target=self.client, daemon=True,
                                         args=(trial, port, c, max_per_client, seed + c))
                        for c in range(clients)]

    def client(self, trial, port, c, max_per_client, seed):
        rng = random.Random(seed)
        try:
            s = smtplib.SMTP("127.0.0.1", port, local_hostname="trials.client", timeout=20)
        except OSError:
            return
        for i in range(max_per_client):
            if self.stop.is_set():
                break
            tid = f"t{trial}-c{c}-m{i}"
            msg = make_message(tid, rng)
            self.sent[tid] = hashlib.sha256(msg).hexdigest()
            try:
                s.sendmail(f"c{c}@crash.trials", [f"t{trial}c{c}@sink.test"], msg)
            except (OSError, smtplib.SMTPException):
                break
            self.acked.append(tid)  # only after the 250 to DATA
        try:
            s.close()
        except OSError:
            pass

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


# --- kill instants -----------------------------------------------------------------------
def worker_segments(queue_dir):
    """[(number, path, capacity)] of worker (non-spill) segments with a valid header."""
    out = []
    for number, path in segment_files(queue_dir):
        try:
            with open(path, "rb") as f:
                h = segment_header(f.read(SEGMENT_HEADER_BYTES))
        except OSError:
            continue
        if h and not h[1] & SEGMENT_FLAG_SPILL and h[2] > 0:
            out.append((number, path, h[2]))
    return out


def has_data_at(path, offset):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return any(f.read(256))
    except OSError:
        return False


def wait_kill(mode, server, sink, rng, max_load_s):
    """Kill the server at the instant `mode` asks for; return (fired, detail)."""
    t0 = time.monotonic()
    deadline = t0 + max_load_s
    detail = {}
    if mode == "load":
        at = rng.uniform(0.05, max_load_s)
        time.sleep(at)
        server.kill()
        return True, {"after_s": round(at, 3)}
    if mode == "delivery":
        k = rng.randint(1, 400)
        keep = rng.random() < 0.5
        delay = rng.uniform(0, 0.003)
        state = {"n": 0, "fired": threading.Event()}

        def hook():
            state["n"] += 1
            if state["n"] != k:
                return None
            state["fired"].set()
            if keep:
                threading.Timer(delay, server.kill).start()
                return None
            server.kill()
            return "discard"

        sink.hook = hook
        fired = state["fired"].wait(max(0.0, deadline - time.monotonic()))
        sink.hook = None
        if not fired:
            server.kill()
        detail = {"data_no": k, "sink_kept": keep}
        return fired, detail
    # seal-pre / seal-post: watch the worker segments. A roll = a segment gets its first
    # record while another one is filled to within the largest buffered record of its end.
    margin = rng.randint(0, 48 * 1024)
    started = {n for (n, p, _) in worker_segments(server.queue)
               if has_data_at(p, SEGMENT_HEADER_BYTES)}
    while time.monotonic() < deadline:
        segs = worker_segments(server.queue)
        for n, p, cap in segs:
            if mode == "seal-pre" and has_data_at(p, max(SEGMENT_HEADER_BYTES, cap - margin - 256)):
                server.kill()
                return True, {"segment": f"{n:08X}", "margin": margin}
            if mode == "seal-post" and n not in started and has_data_at(p, SEGMENT_HEADER_BYTES):
                full = [m for (m, q, c) in segs if m != n and has_data_at(q, c - ROLL_WINDOW)]
                if full:
                    delay = rng.uniform(0, 0.003)
                    time.sleep(delay)
                    server.kill()
                    return True, {"segment": f"{n:08X}", "rolled": f"{full[-1]:08X}",
                                  "delay_ms": round(delay * 1000, 2)}
                started.add(n)  # a first segment after a start: no roll
        time.sleep(0.001)
    server.kill()
    return False, detail


# --- a trial -----------------------------------------------------------------------------
def run_trial(t, kill_mode, torn_mode, server, sink, args, rng):
    t0 = time.monotonic()
    load = Load(t, server.port, args.clients, args.max_per_client, rng.randrange(1 << 30))
    load.start()
    fired, kill_detail = wait_kill(kill_mode, server, sink, rng, args.max_load_seconds)
    server.reap()
    load.join()
    torn = None
    if torn_mode != "none":
        # Three times in four the newest worker segment, else the newest file of any kind.
        torn = damage(server.queue, torn_mode, rng, worker_only=rng.random() < 0.75)
    log_from = server.log_size()
    server.start()
    acked = list(load.acked)
    excused = set(torn["excused"]) if torn else set()
    need = [tid for tid in acked if tid not in excused]
    drained = False
    deadline = time.monotonic() + args.drain_seconds
    while time.monotonic() < deadline:
        with sink.lock:
            missing = [tid for tid in need if tid not in sink.copies]
        if not missing and server.queue_len() == 0:
            drained = True
            break
        time.sleep(0.2)
    prefix = f"t{t}-"
    with sink.lock:
        copies = {k: list(v) for k, v in sink.copies.items() if k.startswith(prefix)}
        unknown = sink.unknown
        sink.unknown = 0
    intact = {tid: sum(1 for h in hs if h == load.sent.get(tid)) for tid, hs in copies.items()}
    corrupt = sum(len(hs) for hs in copies.values()) - sum(intact.values()) + unknown
    ackset = set(acked)
    lost = sorted(tid for tid in need if intact.get(tid, 0) == 0)
    excused_missing = sorted(tid for tid in excused & ackset if intact.get(tid, 0) == 0)
    reasons = [line for line in server.log_lines(log_from)
               if "unverifiable tail" in line or "does not verify" in line]
    res = {
        "trial": t, "kill_mode": kill_mode, "kill_fired": fired, "kill": kill_detail,
        "torn_mode": torn_mode, "torn": torn and {k: v for k, v in torn.items() if k != "excused"},
        "acknowledged": len(acked),
        "delivered": sum(1 for tid in acked if intact.get(tid, 0) > 0),
        "duplicated": sum(max(0, n - 1) for n in intact.values()),
        "lost": len(lost), "lost_ids": lost[:20],
        "corrupt": corrupt,
        "extra": sum(1 for tid, n in intact.items() if n > 0 and tid not in ackset),
        "excused": len(excused & ackset), "excused_missing": len(excused_missing),
        "drained": drained, "recovery_log": reasons[:5],
        "unlogged": bool(torn and torn["expect_log"] and not reasons),
        "seconds": round(time.monotonic() - t0, 2),
    }
    # Forget this trial's copies: the next trial only looks at its own prefix.
    with sink.lock:
        for k in copies:
            sink.copies.pop(k, None)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", required=True, help="the mailroot binary (release for the full run)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--max-per-client", type=int, default=2000, help="messages per client per trial (bound)")
    ap.add_argument("--max-load-seconds", type=float, default=3.0, help="the kill comes by then at the latest")
    ap.add_argument("--drain-seconds", type=float, default=90.0, help="bound on each drain")
    ap.add_argument("--segment-size", default="1MiB", help="[spool] segment_size: small = frequent seals")
    ap.add_argument("--kill-modes", default=",".join(KILL_MODES))
    ap.add_argument("--torn-modes", default=",".join(TORN_MODES))
    ap.add_argument("--work", default=None, help="directory for the Mailroot folder and logs (kept)")
    ap.add_argument("--json-out", default=None, help="write every trial and the totals here")
    args = ap.parse_args()
    kill_modes = args.kill_modes.split(",")
    torn_modes = args.torn_modes.split(",")
    for m in kill_modes:
        if m not in KILL_MODES:
            ap.error(f"unknown kill mode {m}")
    for m in torn_modes:
        if m not in TORN_MODES + ORACLE_MODES:
            ap.error(f"unknown torn mode {m}")
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    rng = random.Random(seed)
    work = args.work or tempfile.mkdtemp(prefix="mailroot-crash-trials.")
    os.makedirs(work, exist_ok=True)
    print(f"crash_trials: seed={seed} work={work} binary={args.binary}", flush=True)

    sink = Sink()
    ctl = Controller(sink, hostname="127.0.0.1", port=free_port())
    ctl.start()
    server = Server(args.binary, work, ctl.port, args.segment_size, args.workers)
    started = time.monotonic()
    results = []
    try:
        server.start()
        for t in range(args.trials):
            # Every (kill mode, torn mode) pair comes up once per len(kill) * len(torn) trials.
            kill_mode = kill_modes[t % len(kill_modes)]
            torn_mode = torn_modes[(t // len(kill_modes)) % len(torn_modes)]
            r = run_trial(t, kill_mode, torn_mode, server, sink, args, rng)
            results.append(r)
            torn = r["torn"]
            print(f"trial {t:3} kill={kill_mode:9}{'' if r['kill_fired'] else '(fallback)'} "
                  f"torn={torn_mode:9}{'' if not torn else ' D=' + str(torn['damaged_at'])} "
                  f"acked={r['acknowledged']} delivered={r['delivered']} dup={r['duplicated']} "
                  f"lost={r['lost']} corrupt={r['corrupt']} extra={r['extra']} "
                  f"excused={r['excused']}/{r['excused_missing']} drained={r['drained']} "
                  f"{r['seconds']}s", flush=True)
    finally:
        server.stop()
        ctl.stop()

    keys = ["acknowledged", "delivered", "duplicated", "lost", "corrupt", "extra", "excused",
            "excused_missing"]
    totals = {k: sum(r[k] for r in results) for k in keys}
    per_torn = {}
    for m in torn_modes:
        rs = [r for r in results if r["torn_mode"] == m]
        per_torn[m] = {"trials": len(rs), **{k: sum(r[k] for r in rs) for k in keys},
                       "logged": sum(1 for r in rs if r["recovery_log"])}
    per_kill = {m: {"trials": sum(1 for r in results if r["kill_mode"] == m),
                    "fired": sum(1 for r in results if r["kill_mode"] == m and r["kill_fired"])}
                for m in kill_modes}
    # Copies that reached the sink after their trial was counted (none expected: a trial
    # ends only when the queue is empty).
    with sink.lock:
        late = sum(len(v) for v in sink.copies.values())
    failed = [r["trial"] for r in results
              if r["lost"] or r["corrupt"] or not r["drained"] or r["unlogged"]]
    summary = {"seed": seed, "trials": len(results), "seconds": round(time.monotonic() - started, 1),
               "totals": totals, "late_deliveries": late, "per_torn_mode": per_torn, "per_kill_mode": per_kill,
               "failed_trials": failed}
    print(json.dumps(summary, indent=1), flush=True)
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump({"summary": summary, "trials": results}, f, indent=1)
    if args.work is None and not failed:
        shutil.rmtree(work, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
