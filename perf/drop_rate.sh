#!/usr/bin/env bash
# perf/drop_rate.sh BIN [MESSAGES (10000)] [SESSIONS (10)]: local delivery into Drop/.
# One relay (perf/lib.sh's relay_toml; `localhost` is its local domain); MESSAGES 1 KiB
# messages to b@localhost from `mailroot-loadtest source` over SESSIONS sessions. Prints the
# seconds from the first message to the MESSAGES-th finished `.eml` file in Drop/, the files
# per second, and the relay's CPU per thread.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin=$1
n=${2:-10000}
sessions=${3:-10}
lt=$(loadtest_bin)
dir=$(mktemp -d)
port=2851
relay_toml "" drop "$dir/mailroot" $port 2859 false >"$dir/relay.toml"
"$bin" serve --config "$dir/relay.toml" 2>"$dir/relay.log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
wait_port $port
t0=$(date +%s.%N)
"$lt" source --server 127.0.0.1:$port --sessions "$sessions" --messages "$n" --to b@localhost \
    --no-progress --max-seconds 300 >/dev/null
drop="$dir/mailroot/Drop"
got=0
for _ in $(seq 12000); do
    got=$(find "$drop" -maxdepth 1 -name '*.eml' 2>/dev/null | wc -l)
    [ "$got" -ge "$n" ] && break
    sleep 0.025
done
t1=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v n="$got" 'BEGIN { printf "%d Drop files in %.2f s: %.0f files/s\n", n, b - a, n / (b - a) }'
thread_cpu $pid
