#!/usr/bin/env bash
# perf/threads.sh: per thread of one relay instance, CPU ms per 1,000 messages and
# voluntary / involuntary context switches per message (from /proc/PID/task/*/status and
# stat), around one smtp-source run into it, relaying to smtp-sink. Wake-ups between
# threads are what costs CPU on a small VM (each one a sleep and a wake-up, often an IPI),
# so this says which hand-off to batch, and an A/B of two configurations shows where the
# difference lands.
#
# Safety: 127.0.0.1 only; the run is bounded by MESSAGES and `timeout`; everything
# started here is stopped by the EXIT trap. Needs smtp-source/smtp-sink (Debian postfix)
# and root (smtp-sink -u postfix).
#
# Usage: perf/threads.sh BIN SESSIONS MESSAGES [SIZE (1024)]
#   EXTRA='workers = 1' perf/threads.sh target/release/mailroot 10 10000
#   (EXTRA: top-level TOML lines for the instance's configuration)
set -uo pipefail
BIN=${1:?mailroot binary} S=${2:?sessions} M=${3:?messages} SIZE=${4:-1024}
PORT=${PORT:-2795} SINK_PORT=$((PORT + 1))
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroot-threads.XXXXXX")
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    rm -rf "$WORK"
}
trap cleanup EXIT
# shellcheck source=perf/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
relay_toml "${EXTRA:-}" threads "$WORK/mr" "$PORT" "$SINK_PORT" >"$WORK/c.toml"
warm=1000
timeout 300 smtp-sink -u postfix -m 1000 -M $((M + warm)) "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 &
SP=$!
PIDS+=("$SP")
"$BIN" serve --config "$WORK/c.toml" >"$WORK/log" 2>&1 &
MR=$!
PIDS+=("$MR")
sleep 1
source_run() {
    timeout 120 smtp-source -s "$S" -m "$1" -l "$SIZE" -c -f a@example.com -t b@example.net \
        "127.0.0.1:$PORT" >/dev/null 2>&1
}
source_run "$warm" || { echo "threads.sh: warm-up failed (see $WORK/log)" >&2; exit 1; }
sleep 1
# name voluntary involuntary cpu-ticks, one line per thread
snap() {
    local t
    for t in /proc/"$MR"/task/*; do
        printf '%s %s %s\n' "$(cat "$t/comm")" \
            "$(awk '/^voluntary_ctxt/ { v = $2 } /^nonvoluntary_ctxt/ { n = $2 } END { print v, n }' "$t/status")" \
            "$(awk '{ print $14 + $15 }' "$t/stat")"
    done | sort
}
snap >"$WORK/a"
wb0=$(awk '/^write_bytes/ { print $2 }' /proc/"$MR"/io)
t0=$(date +%s.%N)
source_run "$M" || echo "threads.sh: smtp-source failed" >&2
wait "$SP"
t1=$(date +%s.%N)
snap >"$WORK/b"
wb1=$(awk '/^write_bytes/ { print $2 }' /proc/"$MR"/io)
echo "$S sessions x $M messages x $SIZE B: e2e $(awk -v m="$M" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", m / (b - a) }') msg/s"
join "$WORK/a" "$WORK/b" | awk -v m="$M" -v hz="$(getconf CLK_TCK)" '{
    dv = $5 - $2; dn = $6 - $3; dc = $7 - $4
    if (dv + dn + dc > 0)
        printf "%-14s cpu %5.0f ms/1k  voluntary %5.2f  involuntary %5.2f per msg\n", $1, dc / hz * 1e6 / m, dv / m, dn / m
    tv += dv; tn += dn; tc += dc
} END { printf "%-14s cpu %5.0f ms/1k  voluntary %5.2f  involuntary %5.2f per msg\n", "TOTAL", tc / hz * 1e6 / m, tv / m, tn / m }'
# Bytes the relay caused to be written to storage (charged when a page is dirtied):
# a small message should cost about a page per group commit, never its segment's folios.
echo "disk writes    $(awk -v a="$wb0" -v b="$wb1" -v m="$M" 'BEGIN { printf "%.1f KiB per msg", (b - a) / 1024 / m }')"
