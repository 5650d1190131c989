#!/usr/bin/env bash
# perf/queue_memory.sh BIN [ROUNDS (3)] [MESSAGES (20000)]: resident memory of a deferred
# backlog. One relay (perf/lib.sh's relay_toml) whose smart host is a closed loopback port,
# so every message is deferred and stays queued; ROUNDS rounds of MESSAGES 1 KiB messages
# (`mailroot-loadtest source --sessions 100`), VmRSS read after each round has settled
# (3 s). Prints one line per step and the KiB per queued message over the whole run.
# EXTRA (environment): top-level TOML lines, e.g. EXTRA=$'[delivery]\nactive_limit = 5'
# is not valid there ([delivery] is written by relay_toml): use DELIVERY for lines inside
# [delivery], e.g. DELIVERY='active_limit = 100000'.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin=$1
rounds=${2:-3}
messages=${3:-20000}
lt=$(loadtest_bin)
dir=$(mktemp -d)
port=2871
dead=2879 # nothing listens here: connection refused, the next hop is down
relay_toml "${EXTRA:-}" qmem "$dir/mailroot" $port $dead false >"$dir/relay.toml"
if [ -n "${DELIVERY:-}" ]; then
    sed -i "s/^hold = false$/hold = false\n${DELIVERY//$'\n'/\\n}/" "$dir/relay.toml"
fi
"$bin" serve --config "$dir/relay.toml" 2>"$dir/relay.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
wait_port $port
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep 1
start=$(rss)
echo "fresh: VmRSS $start KiB"
for r in $(seq "$rounds"); do
    "$lt" source --server 127.0.0.1:$port --sessions 100 --messages "$messages" --no-progress \
        --max-seconds 300 >/dev/null
    sleep 3
    echo "after $((r * messages)) queued: VmRSS $(rss) KiB"
done
end=$(rss)
awk -v a="$start" -v b="$end" -v n=$((rounds * messages)) \
    'BEGIN { printf "%.2f KiB per queued message (%d messages)\n", (b - a) / n, n }'
