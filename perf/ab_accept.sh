#!/usr/bin/env bash
# perf/ab_accept.sh: A/B two mailroot binaries on the accept half of compare.sh, alternating.
#
# For each of RUNS rounds and each binary: start it held ([delivery] hold = true) on
# 127.0.0.1:2725 with a fresh spool, send 1,000 warm-up messages, then time
# `smtp-source -s 100 -m MESSAGES -l 1024 -c`. Per run it prints msgs/s, mailroot's CPU ms
# per message (/proc/PID/stat), smtp-source's CPU ms per message (/usr/bin/time), and the
# machine's busy share and total CPU ms per message (/proc/stat); then each binary's sorted
# msgs/s and median. Alternating runs make the comparison fair on a noisy shared machine;
# on one binary it measures where the accept run's CPU goes (see perf/RESULTS.md).
#
# Usage: perf/ab_accept.sh BIN_A [BIN_B]   (env: RUNS=6 MESSAGES=15000 WORKERS=)
# Safety: loopback only; each run bounded by MESSAGES and `timeout`; everything started
# is stopped by the EXIT trap.
set -uo pipefail

RUNS=${RUNS:-6}
MESSAGES=${MESSAGES:-15000}
PORT=2725
BINS=("$@")
[[ ${#BINS[@]} -ge 1 ]] || { echo "usage: perf/ab_accept.sh BIN_A [BIN_B]" >&2; exit 2; }
command -v smtp-source >/dev/null || { echo "ab_accept.sh: smtp-source missing (apt-get install postfix)" >&2; exit 2; }
[[ -x /usr/bin/time ]] || { echo "ab_accept.sh: /usr/bin/time missing (apt-get install time)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/mailroot-ab.XXXXXX)
MR=
cleanup() {
    [[ -n $MR ]] && kill "$MR" 2>/dev/null && wait "$MR" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$WORK/hold.toml" <<TOML
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
[admin]
enabled = false
[[site]]
name = "ab"
listen = ["127.0.0.1:$PORT"]
TOML
# As root, a binary that knows `[service]` (issue 12) refuses to run without it; an older
# binary would refuse the unknown key: each binary gets the file it accepts.
{ cat "$WORK/hold.toml"; printf '[service]\nallow_root = true\n'; } >"$WORK/hold-root.toml"
config_for() {
    if "$1" check-config 2>/dev/null | grep -qx '\[service\]'; then
        echo "$WORK/hold-root.toml"
    else
        echo "$WORK/hold.toml"
    fi
}

source_run() {
    timeout 300 smtp-source -s 100 -m "$1" -l 1024 -c -f a@example.com -t b@example.net \
        "127.0.0.1:$PORT" >/dev/null 2>&1
}
cpu_busy_idle() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $5 + $6}' /proc/stat; }

one_run() {
    local bin=$1 c0 c1 t0 t1 b0 i0 b1 i1 su ss
    rm -rf "$WORK/mailroot"
    "$bin" serve --config "$(config_for "$bin")" >"$WORK/mailroot.log" 2>&1 &
    MR=$!
    for _ in $(seq 50); do
        timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
        sleep 0.1
    done
    source_run 1000 || { echo "$bin: warm-up failed (see $WORK/mailroot.log)" >&2; return 1; }
    c0=$(awk '{print $14 + $15}' "/proc/$MR/stat")
    read -r b0 i0 < <(cpu_busy_idle)
    t0=$(date +%s.%N)
    /usr/bin/time -f "%U %S" -o "$WORK/src.time" timeout 300 smtp-source -s 100 \
        -m "$MESSAGES" -l 1024 -c -f a@example.com -t b@example.net "127.0.0.1:$PORT" \
        >/dev/null 2>&1
    t1=$(date +%s.%N)
    read -r b1 i1 < <(cpu_busy_idle)
    c1=$(awk '{print $14 + $15}' "/proc/$MR/stat")
    read -r su ss <"$WORK/src.time"
    kill "$MR"
    wait "$MR" 2>/dev/null
    MR=
    awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v su="$su" \
        -v ss="$ss" -v b0="$b0" -v b1="$b1" -v i0="$i0" -v i1="$i1" -v hz="$(getconf CLK_TCK)" \
        -v name="$bin" 'BEGIN {
        printf "%s\t%.1f msgs/s\tmailroot %.3f\tsmtp-source %.3f\tmachine %.3f CPU ms/msg\tbusy %.0f%%\n",
            name, n / (b - a), (c1 - c0) * 1000 / hz / n, (su + ss) * 1000 / n,
            (b1 - b0) * 1000 / hz / n, 100 * (b1 - b0) / (b1 - b0 + i1 - i0)
    }'
}

for ((r = 1; r <= RUNS; r++)); do
    for bin in "${BINS[@]}"; do
        one_run "$bin" | tee -a "$WORK/runs.tsv"
    done
done
echo "sorted msgs/s per binary (median marked):"
for bin in "${BINS[@]}"; do
    awk -F'\t' -v b="$bin" '$1 == b {print $2 + 0}' "$WORK/runs.tsv" | sort -n |
        awk -v b="$bin" '{v[NR] = $1} END {
            printf "  %s:", b; for (i = 1; i <= NR; i++) printf " %.0f", v[i]
            printf "  median %.0f\n", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
done
