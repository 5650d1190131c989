#!/usr/bin/env bash
# perf/ab_eod.sh: alternating A/B of two mailroot binaries as relays into smtp-sink, driven
# by `mailroot-loadtest source` (one message per connection, no pipelining: smtp-source's
# shape), reporting per run: msgs/s, end of data → 250 latency (p50/p90/p99 µs), the
# relay's CPU ms per 1,000 messages (/proc/PID/stat) and its disk writes per message
# (/proc/PID/io write_bytes). The latency is what the group commit costs a session.
#
# Safety: 127.0.0.1 only; every run bounded by MESSAGES and `timeout`/--max-seconds;
# everything started here is stopped before the next run. Needs smtp-sink (Debian postfix)
# and root (smtp-sink -u postfix).
#
# Usage: BASE_BIN=path NEW_BIN=path perf/ab_eod.sh
#   env: SESSIONS (10) MESSAGES (10000) SIZE (1024) ROUNDS (3) TMPDIR (spool location)
#        BASE_ENV / NEW_ENV: VAR=value words put in that binary's environment
#        BASE_EXTRA / NEW_EXTRA: top-level TOML lines put at the start of that
#        instance's configuration (a configuration A/B: the same binary twice)
#        LOADTEST (target/release/mailroot-loadtest)
set -u
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LT=${LOADTEST:-$REPO/target/release/mailroot-loadtest}
S=${SESSIONS:-10} M=${MESSAGES:-10000} SIZE=${SIZE:-1024} R=${ROUNDS:-3}
BASE_BIN=${BASE_BIN:?path of the A binary} NEW_BIN=${NEW_BIN:?path of the B binary}
PORT=${PORT:-2898} SINK_PORT=$((PORT + 1))
# shellcheck source=perf/lib.sh
. "$REPO/perf/lib.sh"
[[ -x $LT ]] || { echo "ab_eod.sh: $LT missing (cargo build --release)" >&2; exit 2; }
run1() { # label bin extra-toml env-words...
    local label=$1 bin=$2 extra=$3
    shift 3
    local w sp mr t0 t1 w0 w1 out
    w=$(mktemp -d "${TMPDIR:-/tmp}/mailroot-eod.XXXXXX")
    relay_toml "$extra" eod "$w/mr" "$PORT" "$SINK_PORT" >"$w/c.toml"
    timeout 300 smtp-sink -u postfix -m 1000 "127.0.0.1:$SINK_PORT" 1000 >/dev/null 2>&1 &
    sp=$!
    env "$@" "$bin" serve --config "$w/c.toml" >"$w/log" 2>&1 &
    mr=$!
    sleep 1
    "$LT" source --server "127.0.0.1:$PORT" --sessions "$S" --messages 1000 --size "$SIZE" \
        --per-connection 1 --no-progress --max-seconds 60 >/dev/null 2>&1
    t0=$(awk '{ print $14 + $15 }' /proc/$mr/stat)
    w0=$(awk '/^write_bytes/ { print $2 }' /proc/$mr/io)
    out=$("$LT" source --server "127.0.0.1:$PORT" --sessions "$S" --messages "$M" --size "$SIZE" \
        --per-connection 1 --no-progress --max-seconds 120 --json 2>/dev/null)
    t1=$(awk '{ print $14 + $15 }' /proc/$mr/stat)
    w1=$(awk '/^write_bytes/ { print $2 }' /proc/$mr/io)
    printf '%-4s %s cpu %3d ms/1k  disk %5.1f KiB/msg\n' "$label" \
        "$(echo "$out" | python3 -c 'import json, sys
j = json.load(sys.stdin); e = j["latency_us"]["eod"]
print("%6.0f msg/s  eod p50 %5d p90 %5d p99 %6d us  accepted %d" % (j["msgs_per_s"], e["p50"], e["p90"], e["p99"], j["accepted"]), end="")')" \
        $(((t1 - t0) * 10 * 1000 / M)) "$(awk -v a="$w0" -v b="$w1" -v m="$M" 'BEGIN { print (b - a) / 1024 / m }')"
    kill "$mr" "$sp" 2>/dev/null
    wait "$mr" "$sp" 2>/dev/null
    rm -rf "$w"
}
read -r -a base_env <<<"${BASE_ENV:-}"
read -r -a new_env <<<"${NEW_ENV:-}"
echo "$S sessions x $M messages x $SIZE B, $R alternating rounds"
for i in $(seq 1 "$R"); do
    if ((i % 2)); then
        run1 base "$BASE_BIN" "${BASE_EXTRA:-}" "${base_env[@]}"
        run1 new "$NEW_BIN" "${NEW_EXTRA:-}" "${new_env[@]}"
    else
        run1 new "$NEW_BIN" "${NEW_EXTRA:-}" "${new_env[@]}"
        run1 base "$BASE_BIN" "${BASE_EXTRA:-}" "${base_env[@]}"
    fi
done
