#!/usr/bin/env bash
# perf/exhaust.sh: resource exhaustion runs against target/release/mailroot (issue 12).
#
# Scenarios (SCENARIOS="conns-full conns-room big" by default; any subset):
#   conns-full  CONNECTIONS (10000) connections held after EHLO with max_connections =
#               CONNECTIONS: all held; MAIL (50) new sessions meanwhile must get a clean
#               421 4.7.0; RSS before / while held; one message after they close.
#   conns-room  the same with max_connections = CONNECTIONS + 100: mail flows meanwhile.
#   big         CLIENTS (100) concurrent messages of SIZE_MIB (50) MiB each
#               ([delivery] hold = true, they stay queued): replies, peak RSS and VmHWM.
#               Needs CLIENTS x SIZE_MIB of free disk under WORK; the spool is removed after.
# Each scenario starts a fresh server (2 workers by default, WORKERS) in a new folder under
# WORK (default: a mktemp dir in TMPDIR), and kills it at the end. Loopback only; every
# phase is bounded (perf/exhaust.py --deadline-seconds). Numbers: perf/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
MAILROOT=${MAILROOT:-${CARGO_TARGET_DIR:-target}/release/mailroot}
SCENARIOS=${SCENARIOS:-conns-full conns-room big}
CONNECTIONS=${CONNECTIONS:-10000}
MAIL=${MAIL:-50}
CLIENTS=${CLIENTS:-100}
SIZE_MIB=${SIZE_MIB:-50}
WORKERS=${WORKERS:-2}
PORT=${PORT:-2640}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/mailroot-exhaust.XXXXXX")}
[[ -x $MAILROOT ]] || { echo "no $MAILROOT: cargo build --release --bin mailroot" >&2; exit 2; }
ulimit -n "$(ulimit -Hn)"

PID=
stop() {
    if [[ -n $PID ]]; then
        kill -9 "$PID" 2>/dev/null || true
        wait "$PID" 2>/dev/null || true
    fi
    PID=
}
trap 'stop; rm -rf "$WORK"' EXIT

# start NAME MAX_CONNECTIONS MAX_MESSAGE_SIZE: a fresh server on PORT; sets PID.
start() {
    local dir=$WORK/$1
    mkdir -p "$dir"
    cat >"$dir/mailroot.toml" <<EOF
hostname = "exhaust.test"
mailroot = "$dir/mailroot"
workers = $WORKERS
log_level = "warn"
[[site]]
name = "default"
listen = ["127.0.0.1:$PORT"]
[limits]
max_connections = $2
max_connections_per_ip = $(($2 + 1000))
max_message_size = "$3"
min_free_disk = "1MiB"
[domains]
local = ["localhost"]
[delivery]
hold = true
[admin]
listen = "127.0.0.1:$((PORT + 1))"
EOF
    "$MAILROOT" serve --config "$dir/mailroot.toml" >"$dir/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1).recv(64)" \
            2>/dev/null && return 0
        sleep 0.1
    done
    echo "server did not start: $(tail -5 "$dir/server.log")" >&2
    exit 1
}

echo "# $(date -u '+%F %H:%M UTC') $(uname -sr), $(nproc) CPUs, workers=$WORKERS, $(git rev-parse --short HEAD)"
for s in $SCENARIOS; do
    case $s in
    conns-full | conns-room)
        max=$CONNECTIONS
        [[ $s == conns-room ]] && max=$((CONNECTIONS + 100))
        start "$s" "$max" 10MiB
        echo "## $s: $CONNECTIONS connections, max_connections=$max"
        python3 perf/exhaust.py conns --port "$PORT" --pid "$PID" \
            --connections "$CONNECTIONS" --mail "$MAIL"
        stop
        ;;
    big)
        start big 1000 "$((SIZE_MIB + 10))MiB"
        echo "## big: $CLIENTS concurrent messages of $SIZE_MIB MiB"
        python3 perf/exhaust.py big --port "$PORT" --pid "$PID" \
            --clients "$CLIENTS" --size-mib "$SIZE_MIB"
        echo "spool_bytes=$(du -sb "$WORK/big/mailroot/Queue" | cut -f1)"
        stop
        rm -rf "$WORK/big"
        ;;
    *) echo "unknown scenario $s" >&2; exit 2 ;;
    esac
done
