#!/usr/bin/env bash
# perf/bounce_storm.sh BIN [MESSAGES (5000)] [SESSIONS (10)]: how fast a relay turns a storm
# of 5xx replies into NDRs. One relay (perf/lib.sh's relay_toml) whose smart host is
# `mailroot-loadtest sink --permfail-pct 100` (every recipient gets 550 5.1.1); MESSAGES
# 1 KiB messages from a@bounces.test by `mailroot-loadtest source`; a `[[domain]]` rule
# sends bounces.test (the NDRs) to a second sink that takes everything and stops at the
# MESSAGES-th. Prints the seconds from the first message to the last NDR received, the NDRs
# per second, the relay's CPU seconds, and its CPU per thread. BADMAIL=1: the second sink
# rejects the NDRs too, so each one ends in Badmail/ (the time is then to the MESSAGES-th
# `.BAD` file: backscatter whose forged senders do not exist).
set -euo pipefail
cd "$(dirname "$0")/.."
. perf/lib.sh
bin=$1
n=${2:-5000}
sessions=${3:-10}
lt=$(loadtest_bin)
dir=$(mktemp -d)
port=2861
reject=2869
ndrs=2868
relay_toml "" storm "$dir/mailroot" $port $reject false >"$dir/relay.toml"
printf '[[domain]]\nname = "bounces.test"\nsmart_host = "[127.0.0.1]:%s"\n' $ndrs >>"$dir/relay.toml"
"$lt" sink --listen 127.0.0.1:$reject --permfail-pct 100 --max-seconds 600 >"$dir/reject.log" 2>&1 &
rpid=$!
if [ -n "${BADMAIL:-}" ]; then
    "$lt" sink --listen 127.0.0.1:$ndrs --permfail-pct 100 --max-seconds 600 >"$dir/ndrs.log" 2>&1 &
else
    "$lt" sink --listen 127.0.0.1:$ndrs --messages "$n" --max-seconds 600 >"$dir/ndrs.log" 2>&1 &
fi
npid=$!
"$bin" serve --config "$dir/relay.toml" 2>"$dir/relay.log" &
pid=$!
trap 'kill $pid $rpid $npid 2>/dev/null; wait $pid $rpid $npid 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$dir"' EXIT
wait_port $port
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(date +%s.%N)
c0=$(ticks)
"$lt" source --server 127.0.0.1:$port --sessions "$sessions" --messages "$n" \
    --from a@bounces.test --no-progress --max-seconds 300 >/dev/null
if [ -n "${BADMAIL:-}" ]; then
    for _ in $(seq 12000); do
        got=$(find "$dir/mailroot/Badmail" -maxdepth 1 -name '*.BAD' 2>/dev/null | wc -l)
        [ "$got" -ge "$n" ] && break
        sleep 0.025
    done
else
    wait $npid || true
fi
t1=$(date +%s.%N)
c1=$(ticks)
hz=$(getconf CLK_TCK)
[ -n "${BADMAIL:-}" ] || got=$(sed -n 's/^messages: \([0-9]*\).*/\1/p' "$dir/ndrs.log")
awk -v a="$t0" -v b="$t1" -v n="${got:-0}" -v c=$((c1 - c0)) -v hz="$hz" \
    'BEGIN { printf "%d NDRs in %.2f s: %.0f NDRs/s, relay CPU %.2f s\n", n, b - a, n / (b - a), c / hz }'
thread_cpu $pid
