#!/usr/bin/env bash
# perf/tls_compare.sh: plaintext vs TLS through one mailroot relay, alternating in the same
# run (issue 14's speed check), with mailroot-loadtest only (no Postfix, no root needed).
#
# One mailroot (release build, durable queue, a self-signed ECDSA P-256 certificate made
# here with openssl, STARTTLS on its port and an implicit-TLS port) relays everything by
# smart host to the sink of `mailroot-loadtest relay`. Per round, per size, in alternating
# order (round 1 plain first, round 2 TLS first, ...):
#   plain  source plaintext -> mailroot -> sink without STARTTLS (delivery in plaintext)
#   tls    source --starttls -> mailroot -> sink with STARTTLS (--sink-tls-cert; mailroot's
#          default outbound policy `may` takes it), i.e. TLS on both hops
# Each line: accept msgs/s (the source's), end-to-end msgs/s (until the sink has every
# message), mailroot's CPU seconds per 1,000 messages, and for tls the handshakes and the
# sink's TLS sessions (proof that delivery ran over TLS). Then handshakes per second:
# `source --handshake-only` (connect, [TLS], EHLO, QUIT; no mail) plaintext, STARTTLS and
# implicit TLS, full handshakes only (no resumption), with mailroot's CPU ms per session. Finally the medians and the TLS /
# plaintext ratios.
#
# The client verifies nothing (--tls-insecure): it is a benchmark against a self-signed
# certificate on loopback. The load generator runs on the same cores as mailroot and does
# its own half of every handshake and every record, so the TLS numbers are a lower bound.
#
# Safety: loopback only; every run bounded by a message count, --max-seconds and
# `timeout`; the mailroot started here is stopped by the EXIT trap (by PID).
#
# Usage: perf/tls_compare.sh            env: ROUNDS (3) SESSIONS (100) MESSAGES_1K (10000)
#        MESSAGES_10K (5000) HANDSHAKES (2000) HS_SESSIONS (50) MAILROOT_BIN LOADTEST_BIN
#        PORT (2841; uses PORT..PORT+2) KEEP=1 (keep the work dir)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
MAILROOT_BIN=${MAILROOT_BIN:-$TARGET/release/mailroot}
LOADTEST_BIN=${LOADTEST_BIN:-$TARGET/release/mailroot-loadtest}
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-100}
MESSAGES_1K=${MESSAGES_1K:-10000}
MESSAGES_10K=${MESSAGES_10K:-5000}
HANDSHAKES=${HANDSHAKES:-2000}
HS_SESSIONS=${HS_SESSIONS:-50}
PORT=${PORT:-2841}
SINK_PORT=$((PORT + 1))
IMPLICIT_PORT=$((PORT + 2))
KEEP=${KEEP:-0}

for b in "$MAILROOT_BIN" "$LOADTEST_BIN"; do
    [[ -x $b ]] || { echo "missing $b: cargo build --release --workspace" >&2; exit 2; }
done
WORK=$(mktemp -d /tmp/mailroot-tls.XXXXXX)
MR_PID=
cleanup() {
    [[ -n $MR_PID ]] && kill "$MR_PID" 2>/dev/null && wait "$MR_PID" 2>/dev/null
    if [[ $KEEP == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost -addext basicConstraints=critical,CA:FALSE \
    >/dev/null 2>&1 || { echo "openssl req failed" >&2; exit 1; }
mkdir -p "$WORK/mailroot"
cat >"$WORK/mailroot.toml" <<TOML
hostname = "perf-tls.localdomain"
mailroot = "$WORK/mailroot"
log_level = "warn"
[limits]
max_connections = 2000
max_connections_per_ip = 2000
[relay]
allow = ["127.0.0.0/8"]
smart_host = "[127.0.0.1]:$SINK_PORT"
[domains]
local = ["localhost"]
[dns]
servers = ["127.0.0.1:9"]
[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
enabled = false
[tls]
cert = "$WORK/cert.pem"
key = "$WORK/key.pem"
[[site]]
name = "perf"
listen = ["127.0.0.1:$PORT"]
implicit_tls_listen = ["127.0.0.1:$IMPLICIT_PORT"]
TOML
"$MAILROOT_BIN" serve --config "$WORK/mailroot.toml" >"$WORK/mailroot.log" 2>&1 &
MR_PID=$!
sleep 1
kill -0 "$MR_PID" 2>/dev/null || { cat "$WORK/mailroot.log"; exit 1; }

hz=$(getconf CLK_TCK)
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
busy() { # share of the CPUs busy over one second, before the rounds
    read -r _ a b c d e f g _ </proc/stat; t0=$((a + b + c + d + e + f + g)); i0=$d
    sleep 1
    read -r _ a b c d e f g _ </proc/stat; t1=$((a + b + c + d + e + f + g)); i1=$d
    awk -v t="$((t1 - t0))" -v i="$((i1 - i0))" 'BEGIN { printf "%.0f%%", 100 * (t - i) / t }'
}
TLS_CLIENT=(--tls-insecure)
TLS_SINK=(--sink-tls-cert "$WORK/cert.pem" --sink-tls-key "$WORK/key.pem")

# relay MODE SIZE MESSAGES -> one result line; the JSON is kept in the work dir.
relay() {
    local mode=$1 size=$2 m=$3 extra=() c0 c1 out
    [[ $mode == tls ]] && extra=(--starttls "${TLS_CLIENT[@]}" "${TLS_SINK[@]}")
    out="$WORK/relay-$mode-$size-$RANDOM.json"
    c0=$(ticks "$MR_PID")
    timeout 300 "$LOADTEST_BIN" relay --server "127.0.0.1:$PORT" --sink-listen "127.0.0.1:$SINK_PORT" \
        --sessions "$SESSIONS" --messages "$m" --size "$size" --pipelining --max-seconds 240 \
        --wait-seconds 60 --json --no-progress "${extra[@]}" >"$out" 2>>"$WORK/loadtest.err"
    c1=$(ticks "$MR_PID")
    jq -r --arg mode "$mode" --arg size "$size" --argjson cpu "$(( c1 - c0 ))" --argjson hz "$hz" \
        '"\($size) \($mode): accept \(.source.msgs_per_s) msg/s, e2e \(.e2e_msgs_per_s) msg/s, " +
         "cpu \(($cpu / $hz * 1000 / .accepted * 1000 | round) / 1000) s/1k, arrived \(.arrived)/\(.accepted), " +
         "errors \(.source.errors | length), handshakes \(.source.tls.handshakes // 0), " +
         "sink tls sessions \(.sink.tls_sessions)/\(.sink.connections)"' "$out"
}

# handshakes MODE -> one result line
handshakes() {
    local mode=$1 args=() port=$PORT out c0 c1
    case $mode in
        starttls) args=(--starttls "${TLS_CLIENT[@]}") ;;
        implicit) args=(--implicit-tls "${TLS_CLIENT[@]}"); port=$IMPLICIT_PORT ;;
    esac
    out="$WORK/hs-$mode-$RANDOM.json"
    c0=$(ticks "$MR_PID")
    timeout 300 "$LOADTEST_BIN" source --server "127.0.0.1:$port" --handshake-only \
        --sessions "$HS_SESSIONS" --messages "$HANDSHAKES" --max-seconds 240 --json --no-progress \
        "${args[@]}" >"$out" 2>>"$WORK/loadtest.err"
    c1=$(ticks "$MR_PID")
    jq -r --arg mode "$mode" --argjson cpu "$(( c1 - c0 ))" --argjson hz "$hz" \
        '"handshake \($mode): \(.msgs_per_s) sessions/s, " +
         "cpu \(($cpu / $hz * 1000 / .accepted * 1000 | round) / 1000) ms/session, completed \(.accepted)/\(.attempted), " +
         "tls p50 \((.latency_us.tls.p50 / 1000)) ms p99 \((.latency_us.tls.p99 / 1000)) ms, " +
         "negotiated \(.tls.negotiated // "plaintext")"' "$out"
}

echo "perf/tls_compare.sh $(date -u '+%F %T UTC'), $(nproc) CPUs, $(uname -r)"
echo "mailroot $MAILROOT_BIN ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null))"
echo "sessions $SESSIONS, 1k x $MESSAGES_1K, 10k x $MESSAGES_10K, pipelining, 20 per connection;" \
    "handshakes $HANDSHAKES over $HS_SESSIONS sessions; rounds $ROUNDS"
echo "CPU busy before the rounds: $(busy) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
# Warm-up: both paths once, not counted.
relay plain 1k 1000 >/dev/null
relay tls 1k 1000 >/dev/null
RESULTS="$WORK/results.txt"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="plain tls"; else order="tls plain"; fi
    for size in 1k 10k; do
        m=$MESSAGES_1K; [[ $size == 10k ]] && m=$MESSAGES_10K
        for mode in $order; do
            echo "round $r $(relay "$mode" "$size" "$m")" | tee -a "$RESULTS"
        done
    done
    for mode in plain starttls implicit; do
        echo "round $r $(handshakes "$mode")" | tee -a "$RESULTS"
    done
done
echo "CPU busy after the rounds: $(busy) (load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "--- medians over $ROUNDS rounds"
awk '
function median(key,   n, i, j, t, a) {
    n = split(vals[key], a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
$4 == "plain:" || $4 == "tls:" {
    k = $3 " " $4; sub(":", "", k)
    vals[k " accept"] = vals[k " accept"] " " $6
    vals[k " e2e"] = vals[k " e2e"] " " $9
    vals[k " cpu"] = vals[k " cpu"] " " $12
}
$3 == "handshake" { k = "hs " $4; sub(":", "", k); vals[k] = vals[k] " " $5; vals[k " cpu"] = vals[k " cpu"] " " $8 }
END {
    for (s = 1; s <= 2; s++) {
        size = s == 1 ? "1k" : "10k"
        pa = median(size " plain accept"); ta = median(size " tls accept")
        pe = median(size " plain e2e"); te = median(size " tls e2e")
        pc = median(size " plain cpu"); tc = median(size " tls cpu")
        printf "%s accept msg/s: plain %.0f, tls %.0f, tls/plain %.2f\n", size, pa, ta, pa ? ta / pa : 0
        printf "%s e2e msg/s:    plain %.0f, tls %.0f, tls/plain %.2f\n", size, pe, te, pe ? te / pe : 0
        printf "%s mailroot cpu s/1k: plain %.3f, tls %.3f, tls/plain %.2f\n", size, pc, tc, pc ? tc / pc : 0
    }
    printf "sessions/s without mail: plaintext %.0f, STARTTLS %.0f, implicit TLS %.0f\n", median("hs plain"), median("hs starttls"), median("hs implicit")
    printf "mailroot cpu ms per session without mail: plaintext %.3f, STARTTLS %.3f, implicit TLS %.3f\n", median("hs plain cpu"), median("hs starttls cpu"), median("hs implicit cpu")
}' "$RESULTS"
