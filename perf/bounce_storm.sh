#!/usr/bin/env bash
# perf/bounce_storm.sh BIN [MESSAGES (5000)] [SESSIONS (10)]: how fast a relay turns a storm
# of 5xx replies into NDRs. One relay (perf/lib.sh's relay_toml) whose smart host is
# `mailroot-loadtest sink --permfail-pct 100` (every recipient gets 550 5.1.1); MESSAGES
# 1 KiB messages from a@localhost (a local domain, so every NDR is delivered into Drop/)
# by `mailroot-loadtest source`. Prints the seconds from the first message to the last NDR
# file in Drop/ and the NDRs per second, and the relay's CPU seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin=$1
n=${2:-5000}
sessions=${3:-10}
lt=target/release/mailroot-loadtest
[ -x "$lt" ] || cargo build --release -q -p mailroot-loadtest
dir=$(mktemp -d)
port=2861
sink=2869
relay_toml "" storm "$dir/mailroot" $port $sink false >"$dir/relay.toml"
"$lt" sink --listen 127.0.0.1:$sink --permfail-pct 100 --max-seconds 600 >"$dir/sink.log" 2>&1 &
spid=$!
"$bin" serve --config "$dir/relay.toml" 2>"$dir/relay.log" &
pid=$!
trap 'kill $pid $spid 2>/dev/null; wait $pid $spid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
    (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break
    sleep 0.1
done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(date +%s.%N)
c0=$(ticks)
"$lt" source --server 127.0.0.1:$port --sessions "$sessions" --messages "$n" --from a@localhost \
    --no-progress --max-seconds 300 >/dev/null
drop="$dir/mailroot/Drop"
for _ in $(seq 6000); do
    got=$(find "$drop" -maxdepth 1 -name '*.eml' 2>/dev/null | wc -l)
    [ "$got" -ge "$n" ] && break
    sleep 0.05
done
t1=$(date +%s.%N)
c1=$(ticks)
hz=$(getconf CLK_TCK)
awk -v a="$t0" -v b="$t1" -v n="$got" -v c=$((c1 - c0)) -v hz="$hz" \
    'BEGIN { printf "%d NDRs in %.2f s: %.0f NDRs/s, relay CPU %.2f s\n", n, b - a, n / (b - a), c / hz }'
