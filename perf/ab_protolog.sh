#!/usr/bin/env bash
# perf/ab_protolog.sh: the W3C protocol log off vs on, on the accept benchmark, alternating.
#
# One binary, two configurations that differ only in `[protocol_log] enabled`. For each of
# RUNS rounds, in turn for "off" and "on": start mailroot held ([delivery] hold = true) on
# 127.0.0.1:2735 with a fresh Mailroot, send 1,000 warm-up messages, then time
# `mailroot-loadtest source --sessions 100 --size 1024 --per-connection 1` (one message per
# connection, like smtp-source: five log lines per message, the log's worst case) and
# print msgs/s and mailroot's CPU ms per message (/proc/PID/stat). At the end: each
# side's sorted msgs/s, the medians and on/off. Alternating rounds keep the comparison
# fair on a shared, noisy machine; only the ratio from the same run means anything.
#
# Usage: perf/ab_protolog.sh MAILROOT_BIN LOADTEST_BIN   (env: RUNS=5 MESSAGES=20000 WORKERS=)
# Safety: loopback only; every run bounded by MESSAGES and --max-seconds; everything started
# is stopped by the EXIT trap.
set -uo pipefail

RUNS=${RUNS:-5}
MESSAGES=${MESSAGES:-20000}
PORT=2735
BIN=${1:?usage: perf/ab_protolog.sh MAILROOT_BIN LOADTEST_BIN}
LT=${2:?usage: perf/ab_protolog.sh MAILROOT_BIN LOADTEST_BIN}

WORK=$(mktemp -d /tmp/mailroot-abpl.XXXXXX)
MR=
cleanup() {
    [[ -n $MR ]] && kill "$MR" 2>/dev/null && wait "$MR" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for mode in off on; do
    enabled=false
    [[ $mode == on ]] && enabled=true
    cat >"$WORK/$mode.toml" <<TOML
hostname = "ab-mailroot.localdomain"
mailroot = "$WORK/mailroot"
log_level = "warn"
${WORKERS:+workers = $WORKERS}
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[relay]
allow = ["127.0.0.0/8"]
[domains]
local = ["localhost", "example.net"]
[delivery]
hold = true
[dns]
servers = ["127.0.0.1:9"]
[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
enabled = false
[protocol_log]
enabled = $enabled
[[site]]
name = "ab"
listen = ["127.0.0.1:$PORT"]
TOML
done

source_run() {
    "$LT" source --server "127.0.0.1:$PORT" --sessions 100 --size 1024 --per-connection 1 \
        --messages "$1" --max-seconds 300 --no-progress --json
}

one_run() {
    local mode=$1 c0 c1 t0 t1 out
    rm -rf "$WORK/mailroot"
    "$BIN" serve --config "$WORK/$mode.toml" >"$WORK/mailroot.log" 2>&1 &
    MR=$!
    for _ in $(seq 50); do
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
        sleep 0.1
    done
    source_run 1000 >/dev/null || { echo "$mode: warm-up failed (see $WORK/mailroot.log)" >&2; return 1; }
    c0=$(awk '{print $14 + $15}' "/proc/$MR/stat")
    t0=$(date +%s.%N)
    out=$(source_run "$MESSAGES")
    t1=$(date +%s.%N)
    c1=$(awk '{print $14 + $15}' "/proc/$MR/stat")
    kill "$MR"
    wait "$MR" 2>/dev/null
    MR=
    local ok lines
    ok=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["accepted"])' 2>/dev/null || echo "$MESSAGES")
    lines=$(cat "$WORK"/mailroot/Logs/ab/*.log 2>/dev/null | grep -vc '^#')
    awk -v n="$ok" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v hz="$(getconf CLK_TCK)" \
        -v mode="$mode" -v lines="$lines" 'BEGIN {
        printf "%s\t%.1f msgs/s\tmailroot %.3f CPU ms/msg\tlog lines %d\n",
            mode, n / (b - a), (c1 - c0) * 1000 / hz / n, lines
    }'
}

for ((r = 1; r <= RUNS; r++)); do
    for mode in off on; do
        one_run "$mode" | tee -a "$WORK/runs.tsv"
    done
done
echo "sorted msgs/s (median marked):"
for mode in off on; do
    awk -F'\t' -v m="$mode" '$1 == m {print $2 + 0}' "$WORK/runs.tsv" | sort -n |
        awk -v m="$mode" '{v[NR] = $1} END {
            printf "  %s:", m; for (i = 1; i <= NR; i++) printf " %.0f", v[i]
            printf "  median %.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        }' | tee -a "$WORK/medians.txt"
done
awk '{print $NF}' "$WORK/medians.txt" | paste -sd' ' |
    awk '{printf "on/off median ratio: %.3f (log cost %.1f%%)\n", $2 / $1, 100 * (1 - $2 / $1)}'
# Pairwise: each round's on over the same round's off.
awk -F'\t' '$1 == "off" {off = $2 + 0} $1 == "on" {printf "%.3f\n", ($2 + 0) / off}' "$WORK/runs.tsv" |
    sort -n | paste -sd' ' | awk '{printf "per-round on/off ratios (sorted): %s\n", $0}'
