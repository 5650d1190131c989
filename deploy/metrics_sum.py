#!/usr/bin/env python3
"""One view of several mailroot nodes: scrape each node's Prometheus `/metrics` and print
the key counters per node and summed (what a Prometheus `sum by (node)` / `sum` would show).

    deploy/metrics_sum.py node1=http://127.0.0.1:8101/metrics node2=http://127.0.0.1:8102/metrics
    deploy/metrics_sum.py --json node1=... node2=...

Columns (every label of a family summed, e.g. all sites):
  received   mailroot_messages_received_total   (SMTP messages accepted with 250)
  sent       mailroot_messages_sent_total       (relayed to remote hosts)
  local      mailroot_messages_delivered_total  (written to Drop/)
  queued     mailroot_queue_{local,remote,retry}_messages (gauges, now)
  conns      mailroot_inbound_connections       (gauge, now)

A node that does not answer is shown as `down` and left out of the total; the exit status is
then 1 (0 when every node answered). Standard library only; every request has a timeout.
"""
import argparse
import json
import sys
import urllib.request

COLUMNS = [
    ("received", ["mailroot_messages_received_total"]),
    ("sent", ["mailroot_messages_sent_total"]),
    ("local", ["mailroot_messages_delivered_total"]),
    (
        "queued",
        [
            "mailroot_queue_local_messages",
            "mailroot_queue_remote_messages",
            "mailroot_queue_retry_messages",
        ],
    ),
    ("conns", ["mailroot_inbound_connections"]),
]


def parse(text):
    """Prometheus text format -> {family name: sum of its samples' values}."""
    sums = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if "{" in line:
            name = line[: line.index("{")]
            fields = line[line.rindex("}") + 1 :].split()
        else:
            name, *fields = line.split()
        try:
            sums[name] = sums.get(name, 0.0) + float(fields[0])
        except (IndexError, ValueError):
            continue
    return sums


def scrape(url, token, timeout):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return parse(r.read().decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("targets", nargs="+", help="NODE=URL of the node's /metrics")
    ap.add_argument("--token", default=None, help="bearer token (non-loopback admin listeners)")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    a = ap.parse_args()

    rows = []
    total = {c: 0 for c, _ in COLUMNS}
    all_up = True
    for t in a.targets:
        node, sep, url = t.partition("=")
        if not sep:
            ap.error("target %r is not NODE=URL" % t)
        try:
            sums = scrape(url, a.token, a.timeout)
        except (OSError, ValueError) as e:
            rows.append({"node": node, "up": False, "error": str(e)})
            all_up = False
            continue
        row = {"node": node, "up": True}
        for col, names in COLUMNS:
            row[col] = int(sum(sums.get(n, 0.0) for n in names))
            total[col] += row[col]
        rows.append(row)

    if a.json:
        print(json.dumps({"nodes": rows, "total": total}))
    else:
        head = "%-12s" % "node" + "".join("%12s" % c for c, _ in COLUMNS)
        print(head)
        for r in rows:
            if r["up"]:
                print("%-12s" % r["node"] + "".join("%12d" % r[c] for c, _ in COLUMNS))
            else:
                print("%-12s%12s  (%s)" % (r["node"], "down", r["error"]))
        print("%-12s" % "total" + "".join("%12d" % total[c] for c, _ in COLUMNS))
    return 0 if all_up else 1


if __name__ == "__main__":
    sys.exit(main())
