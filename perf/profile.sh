#!/usr/bin/env bash
# perf/profile.sh: where mailroot's CPU goes under the compare.sh load, per thread.
#
# Starts smtp-sink and one mailroot instance on loopback, warms up, then records
# `perf record -e cpu-clock -g` on mailroot while `smtp-source` sends MESSAGES messages,
# and prints (perf/profile_summary.py):
#   * each thread's share of mailroot's samples,
#   * per thread: the syscalls its samples sit in (kernel time by syscall) and the hottest
#     user-space symbols,
#   * msgs/s and mailroot CPU ms per message (from /proc/PID/stat) for the recorded run,
# and writes folded stacks (OUT/stacks.folded) plus, when `inferno-flamegraph` is on PATH
# (`cargo install inferno`), a flame graph OUT/flamegraph.svg.
# STRACE=1 adds `strace -c` per thread (syscall counts per message; strace slows the
# traced threads, so its run's msgs/s is not a result).
#
# MODE=relay (default): mailroot relays to smtp-sink (smart host), the e2e shape.
# MODE=accept: [delivery] hold = true, the accept shape (no sink).
#
# Safety: 127.0.0.1 only; every load run is bounded by a message count and `timeout`;
# everything started here is stopped by the EXIT trap. Needs root (perf, smtp-sink -u).
#
# Usage: perf/profile.sh   (env: MODE MESSAGES SESSIONS SIZE OUT STRACE MAILROOT_BIN PORT SINK_PORT)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=${MODE:-relay}
MESSAGES=${MESSAGES:-20000}
SESSIONS=${SESSIONS:-100}
SIZE=${SIZE:-1024}
OUT=${OUT:-$REPO/perf/out}
BIN=${MAILROOT_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/release/mailroot}
PORT=${PORT:-2725}
SINK_PORT=${SINK_PORT:-2726}
TIMEOUT=300

[[ $(id -u) == 0 ]] || { echo "profile.sh: must run as root" >&2; exit 2; }
for tool in perf smtp-source smtp-sink python3; do
    command -v "$tool" >/dev/null || { echo "profile.sh: $tool missing (apt-get install linux-perf postfix)" >&2; exit 2; }
done
[[ -x $BIN ]] || { echo "profile.sh: $BIN missing (cargo build --release)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/mailroot-profile.XXXXXX)
mkdir -p "$OUT"
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

relay_extra="" hold="true" domains='["localhost", "example.net"]'
if [[ $MODE == relay ]]; then
    relay_extra="smart_host = \"[127.0.0.1]:$SINK_PORT\""
    hold="false"
    domains='["localhost"]'
fi
cat >"$WORK/mailroot.toml" <<TOML
hostname = "profile-mailroot.localdomain"
mailroot = "$WORK/mailroot"
log_level = "warn"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[relay]
allow = ["127.0.0.0/8"]
$relay_extra
[domains]
local = $domains
[delivery]
hold = $hold
[dns]
servers = ["127.0.0.1:9"]
[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
enabled = false
[[site]]
name = "profile"
listen = ["127.0.0.1:$PORT"]
TOML

warm=2000
if [[ $MODE == relay ]]; then
    # Exits after every message (warm-up included) reached it: that is the e2e end.
    timeout "$TIMEOUT" smtp-sink -u postfix -m 1000 -M $((MESSAGES + warm)) \
        "127.0.0.1:$SINK_PORT" 1000 >"$WORK/sink.log" 2>&1 &
    SINK=$!
    PIDS+=("$SINK")
fi
"$BIN" serve --config "$WORK/mailroot.toml" >"$WORK/mailroot.log" 2>&1 &
MR=$!
PIDS+=("$MR")
for _ in $(seq 50); do
    timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT" 2>/dev/null && break
    sleep 0.1
done
source_run() {
    timeout "$TIMEOUT" smtp-source -s "$SESSIONS" -m "$1" -l "$SIZE" -c \
        -f a@example.com -t b@example.net "127.0.0.1:$PORT" >/dev/null 2>&1
}
source_run "$warm" || { echo "profile.sh: warm-up failed (see $WORK/mailroot.log)" >&2; exit 1; }
sleep 1

cpu_ticks() { awk '{print $14 + $15}' "/proc/$MR/stat"; }
TRACERS=()
if [[ ${STRACE:-0} == 1 ]]; then
    for t in /proc/$MR/task/*; do
        tid=${t##*/}
        comm=$(cat "$t/comm")
        strace -c -p "$tid" -o "$OUT/strace-$comm.txt" 2>/dev/null &
        TRACERS+=($!)
    done
    sleep 0.5
else
    perf record -F 1999 -e cpu-clock -g -p "$MR" -o "$WORK/perf.data" >/dev/null 2>&1 &
    TRACERS+=($!)
    sleep 0.3
fi
c0=$(cpu_ticks)
t0=$(date +%s.%N)
source_run "$MESSAGES" || echo "profile.sh: smtp-source failed" >&2
t1=$(date +%s.%N)
[[ $MODE == relay ]] && wait "$SINK"
t2=$(date +%s.%N)
c1=$(cpu_ticks)
for p in "${TRACERS[@]}"; do kill -INT "$p" 2>/dev/null; done
for p in "${TRACERS[@]}"; do wait "$p" 2>/dev/null; done

hz=$(getconf CLK_TCK)
awk -v n="$MESSAGES" -v a="$t0" -v b="$t1" -v c="$t2" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
    -v mode="$MODE" 'BEGIN {
    printf "run: %s, %d messages: accept %.0f msgs/s", mode, n, n / (b - a)
    if (mode == "relay") printf ", end to end %.0f msgs/s", n / (c - a)
    printf "; mailroot CPU %.3f ms per message\n", (c1 - c0) * 1000 / hz / n
}'
if [[ ${STRACE:-0} == 1 ]]; then
    for f in "$OUT"/strace-*.txt; do
        echo "== ${f##*/strace-}  (calls per message = calls / $MESSAGES)"
        sed -n '3,12p' "$f"
    done
    exit 0
fi
perf script -i "$WORK/perf.data" -F comm,ip,sym 2>/dev/null >"$WORK/script.txt"
python3 "$REPO/perf/profile_summary.py" "$WORK/script.txt" "$OUT/stacks.folded"
if command -v inferno-flamegraph >/dev/null; then
    inferno-flamegraph --title "mailroot $MODE, smtp-source $SESSIONS sessions x $SIZE B" \
        <"$OUT/stacks.folded" >"$OUT/flamegraph.svg" && echo "flame graph: $OUT/flamegraph.svg"
fi
echo "folded stacks: $OUT/stacks.folded"
