#!/usr/bin/env bash
# perf/ab_relay.sh: alternating A/B of two mailroot binaries as relays into smtp-sink:
# end-to-end msgs/s and the relay's CPU seconds per 1,000 messages (from /proc/PID/stat),
# one line per binary per round. Loopback only; every run bounded by count and `timeout`.
#
# Usage: BASE_BIN=path NEW_BIN=path perf/ab_relay.sh SIZE SESSIONS MESSAGES ROUNDS
#   e.g. perf/ab_relay.sh 102400 20 2000 4   (needs smtp-source/smtp-sink: Debian postfix)
set -u
SIZE=$1 S=$2 M=$3 R=$4
BASE_BIN=${BASE_BIN:?path of the A binary} NEW_BIN=${NEW_BIN:?path of the B binary}
WORK=$(mktemp -d /tmp/mailroot-ab.XXXXXX)
declare -A BIN=([base]=$BASE_BIN [new]=$NEW_BIN) PORT=([base]=2701 [new]=2702)
declare -A SINK=([base]=2711 [new]=2712) PID=()
cleanup() { kill "${PID[@]}" 2>/dev/null; sleep 0.3; rm -rf "$WORK"; }
trap cleanup EXIT
for n in base new; do
    mkdir -p "$WORK/$n"
    cat >"$WORK/$n.toml" <<TOML
hostname = "ab-$n.localdomain"
mailroot = "$WORK/$n"
log_level = "warn"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[relay]
allow = ["127.0.0.0/8"]
smart_host = "[127.0.0.1]:${SINK[$n]}"
[domains]
local = ["localhost"]
[dns]
servers = ["127.0.0.1:9"]
[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
enabled = false
[[site]]
name = "perf"
listen = ["127.0.0.1:${PORT[$n]}"]
TOML
    "${BIN[$n]}" serve --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
    PID[$n]=$!
done
sleep 1
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
for ((r = 1; r <= R; r++)); do
    for n in base new; do
        timeout 120 smtp-sink -u postfix -m 1000 -M "$M" "127.0.0.1:${SINK[$n]}" 1000 >/dev/null 2>&1 &
        sp=$!
        sleep 0.3
        c0=$(ticks "${PID[$n]}")
        t0=$(date +%s.%N)
        timeout 120 smtp-source -s "$S" -m "$M" -l "$SIZE" -c -f a@example.com -t b@example.net \
            "127.0.0.1:${PORT[$n]}" >/dev/null 2>&1
        wait "$sp"
        t1=$(date +%s.%N)
        c1=$(ticks "${PID[$n]}")
        awk -v n="$n" -v r="$r" -v m="$M" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
            'BEGIN { printf "%s round %d: e2e %.1f msg/s, cpu %.3f s/1k\n", n, r, m / (b - a), (c1 - c0) / hz * 1000 / m }'
    done
done
