#!/usr/bin/env bash
# perf/scaleout_bench.sh: throughput through the scale-out recipe (deploy/scaleout.sh), same
# run, alternating: one node direct (no balancer, no PROXY header), one node behind
# HAProxy, two nodes behind HAProxy. Each round of each setup starts afresh (new folders),
# sends MESSAGES x 1 KiB with `mailroot-loadtest source` (SESSIONS sessions, pipelining, 20
# per connection), then waits until the nodes have relayed all of it to the sink.
# Prints accept msgs/s (the source's rate) and end-to-end msgs/s (until the last message
# left the nodes: sum of `mailroot_messages_sent_total`).
#
# Usage: perf/scaleout_bench.sh [MESSAGES (5000)] [ROUNDS (2)] [SESSIONS (20)]
# Needs haproxy and release builds of mailroot and mailroot-loadtest. Loopback only;
# bounded: every load run has --max-seconds, every wait a limit; `down` on exit.
set -euo pipefail
M=${1:-5000} R=${2:-2} S=${3:-20}
HERE=$(cd "$(dirname "$0")" && pwd)
SO=$HERE/../deploy/scaleout.sh
WORK=$(mktemp -d /tmp/mailroot-scaleout-bench.XXXXXX)
export BASE_PORT=${BASE_PORT:-2900} SCALEOUT_DIR=$WORK/run DIRECT_PORTS=1 LOG_LEVEL=warn
cleanup() { "$SO" down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap cleanup EXIT
TARGET=${CARGO_TARGET_DIR:-$HERE/../target}
LT=${LOADTEST_BIN:-$TARGET/release/mailroot-loadtest}

# Sum of messages sent to the sink by every node (curl + awk: the poll must cost little
# CPU beside the run; deploy/metrics_sum.py is the same sum for people).
sent_total() {
    local n=$1 k urls=()
    for ((k = 1; k <= n; k++)); do urls+=("http://127.0.0.1:$((BASE_PORT + 100 + k))/metrics"); done
    curl -fsS --max-time 5 "${urls[@]}" | awk '/^mailroot_messages_sent_total/ { s += $NF } END { print s + 0 }'
}

run() { # run NAME NODES PORT
    local name=$1 n=$2 port=$3 out t0 t1 sent
    "$SO" up "$n" >/dev/null
    sleep 2.5 # HAProxy: every node UP (rise 2 x inter 1 s)
    t0=$(date +%s.%N)
    out=$("$LT" source --server "127.0.0.1:$port" --messages "$M" --size 1024 --sessions "$S" \
        --pipelining --max-seconds 300 --no-progress --json)
    for _ in $(seq 1200); do # at most 120 s for the relay to finish
        sent=$(sent_total "$n")
        ((sent >= M)) && break
        sleep 0.1
    done
    t1=$(date +%s.%N)
    echo "$out" | python3 -c '
import json, sys
r = json.load(sys.stdin)
name, m, sent, t0, t1 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
print("%-10s accepted %5d failed %3d  accept %7.0f msg/s   end-to-end %7.0f msg/s (%d relayed)"
      % (name, r["accepted"], r["failed"], r["msgs_per_s"], sent / (t1 - t0), sent))
' "$name" "$M" "$sent" "$t0" "$t1"
    "$SO" down >/dev/null
    rm -rf "$SCALEOUT_DIR"
}

echo "scale-out bench: $M x 1 KiB, $S sessions, pipelining, $R rounds; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
for ((r = 1; r <= R; r++)); do
    echo "round $r"
    run "direct-1" 1 $((BASE_PORT + 201))
    run "haproxy-1" 1 "$BASE_PORT"
    run "haproxy-2" 2 "$BASE_PORT"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
