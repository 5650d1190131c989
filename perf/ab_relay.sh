#!/usr/bin/env bash
# perf/ab_relay.sh: alternating A/B of two mailroot binaries as relays into smtp-sink:
# end-to-end msgs/s and the relay's CPU seconds per 1,000 messages (from /proc/PID/stat),
# one line per binary per round. Loopback only; every run bounded by count and `timeout`.
#
# Usage: BASE_BIN=path NEW_BIN=path perf/ab_relay.sh SIZE SESSIONS MESSAGES ROUNDS
#   e.g. perf/ab_relay.sh 102400 20 2000 4   (needs smtp-source/smtp-sink: Debian postfix)
# BASE_EXTRA / NEW_EXTRA: top-level TOML lines added to that instance's configuration
# (e.g. NEW_EXTRA='workers = 1' with the same binary twice: a configuration A/B).
# ACCEPT=1: the accept shape instead ([delivery] hold = true, no sink; the rate is the
# source's, labelled "accept" rather than "e2e").
# Even rounds run new before base, so neither build always goes first; the last lines
# print each side's median CPU s/1k and e2e msg/s and the new/base ratios.
# ORDER="base new" or "new base": that fixed order in every round instead of alternating.
# PORT_BASE (2701): relays on PORT_BASE and +1, their sinks on +10 and +11.
set -u
SIZE=$1 S=$2 M=$3 R=$4
BASE_BIN=${BASE_BIN:?path of the A binary} NEW_BIN=${NEW_BIN:?path of the B binary}
# shellcheck source=perf/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/mailroot-ab.XXXXXX")
P0=${PORT_BASE:-2701}
declare -A BIN=([base]=$BASE_BIN [new]=$NEW_BIN) PORT=([base]=$P0 [new]=$((P0 + 1)))
declare -A SINK=([base]=$((P0 + 10)) [new]=$((P0 + 11))) PID=()
cleanup() { kill "${PID[@]}" 2>/dev/null; wait "${PID[@]}" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
ACCEPT=${ACCEPT:-0} HOLD=false RATE=e2e
[[ $ACCEPT == 1 ]] && HOLD=true RATE=accept
# As root, a binary that knows `[service]` (issue 12) refuses to run without it; an older
# base binary would refuse the unknown key: ask each binary.
service_allow_root() {
    if "$1" check-config 2>/dev/null | grep -qx '\[service\]'; then
        printf '[service]\nallow_root = true\n'
    fi
}
for n in base new; do
    mkdir -p "$WORK/$n"
    extra=BASE_EXTRA
    [[ $n == new ]] && extra=NEW_EXTRA
    relay_toml "${!extra:-}" "ab-$n" "$WORK/$n" "${PORT[$n]}" "${SINK[$n]}" "$HOLD" \
        "$(service_allow_root "${BIN[$n]}")" >"$WORK/$n.toml"
    "${BIN[$n]}" serve --config "$WORK/$n.toml" >"$WORK/$n.log" 2>&1 &
    PID[$n]=$!
done
sleep 1
hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
minflt() { awk '{ print $10 }' "/proc/$1/stat"; }
for ((r = 1; r <= R; r++)); do
    order="base new"
    ((r % 2 == 0)) && order="new base"
    [[ -n ${ORDER:-} ]] && order=$ORDER
    for n in $order; do
        sp=
        if [[ $ACCEPT != 1 ]]; then
            timeout 120 smtp-sink -u postfix -m 1000 -M "$M" "127.0.0.1:${SINK[$n]}" 1000 >/dev/null 2>&1 &
            sp=$!
        fi
        sleep 0.3
        c0=$(ticks "${PID[$n]}") f0=$(minflt "${PID[$n]}")
        t0=$(date +%s.%N)
        timeout 120 smtp-source -s "$S" -m "$M" -l "$SIZE" -c -f a@example.com -t b@example.net \
            "127.0.0.1:${PORT[$n]}" >/dev/null 2>&1
        [[ -n $sp ]] && wait "$sp"
        t1=$(date +%s.%N)
        c1=$(ticks "${PID[$n]}") f1=$(minflt "${PID[$n]}")
        awk -v n="$n" -v r="$r" -v m="$M" -v rate="$RATE" -v a="$t0" -v b="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
            -v f="$((f1 - f0))" \
            'BEGIN { printf "%s round %d: " rate " %.1f msg/s, cpu %.3f s/1k, minflt %.1f/msg\n", n, r, m / (b - a), (c1 - c0) / hz * 1000 / m, f / m }' |
            tee -a "$WORK/results.txt"
    done
done
# Medians per side (the middle one, or the mean of the middle two) and new / base.
awk -v rate="$RATE" '{ side = $1; e2e[side, ++n[side]] = $5; cpu[side, n[side]] = $8 }
function med(a, side, k,   i, j, t, v) {
    for (i = 1; i <= k; i++) v[i] = a[side, i]
    for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
}
END {
    be = med(e2e, "base", n["base"]); ne = med(e2e, "new", n["new"])
    bc = med(cpu, "base", n["base"]); nc = med(cpu, "new", n["new"])
    printf "median base: %s %.1f msg/s, cpu %.3f s/1k\n", rate, be, bc
    printf "median new:  %s %.1f msg/s, cpu %.3f s/1k\n", rate, ne, nc
    printf "new / base: %s %.3f, cpu %.3f\n", rate, ne / be, nc / bc
}' "$WORK/results.txt"
