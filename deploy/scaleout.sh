#!/usr/bin/env bash
# deploy/scaleout.sh: the scale-out recipe on one machine, on loopback. N mailroot nodes,
# each with its own Mailroot folder, SMTP port, admin port and token, `proxy_protocol = true`
# behind a local HAProxy in TCP mode (send-proxy-v2, smtpchk health checks), all relaying
# to one sink; an aggregate view of every node's /metrics; drain one node for maintenance.
#
#   deploy/scaleout.sh up [N]      start N nodes (default 2), the sink and HAProxy
#   deploy/scaleout.sh status      per-node and total counters (deploy/metrics_sum.py) and
#                                  HAProxy's view of each node (UP / DOWN)
#   deploy/scaleout.sh drain K     maintenance of node K: HAProxy's runtime API sets it to
#                                  `drain` (no new connections), then `mailroot drain` pauses
#                                  it (421 to anything that still arrives; the health check
#                                  fails on it too) and it exits 0 once its queue is empty
#   deploy/scaleout.sh start K     start node K again (HAProxy puts it back after 2 checks)
#   deploy/scaleout.sh send [M]    M messages (default 1000, 1 KiB) through the balancer with
#                                  mailroot-loadtest source
#   deploy/scaleout.sh down        stop everything this recipe started
#
# Environment: SCALEOUT_DIR (/tmp/mailroot-scaleout), BASE_PORT (2600: HAProxy listens on
# BASE, node K on BASE+K, its admin listener on BASE+100+K, the sink on BASE+99, HAProxy's
# stats page on BASE+98), MAILROOT_BIN, LOADTEST_BIN (default: release builds in
# $CARGO_TARGET_DIR or target/), BALANCE (leastconn | roundrobin), LOG_LEVEL (warn),
# WORKERS (unset: one per core), SINK (loadtest | aiosmtpd), DIRECT_PORTS (1: each node
# also listens without PROXY on BASE+200+K, for the direct benchmark), SESSIONS (20, `send`),
# NOHAPROXY (1: `drain` leaves HAProxy alone; the node's 421 takes it out), TIMEOUT (300 s).
# Loopback only. Every process started is recorded in $SCALEOUT_DIR/*.pid; `down` stops
# exactly those.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
DIR=${SCALEOUT_DIR:-/tmp/mailroot-scaleout}
BASE=${BASE_PORT:-2600}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
MAILROOT_BIN=${MAILROOT_BIN:-$TARGET/release/mailroot}
LOADTEST_BIN=${LOADTEST_BIN:-$TARGET/release/mailroot-loadtest}
BALANCE=${BALANCE:-leastconn}
LOG_LEVEL=${LOG_LEVEL:-warn}
SINK=${SINK:-loadtest}
FRONT=$BASE
SINK_PORT=$((BASE + 99))
STATS_PORT=$((BASE + 98))

die() { echo "scaleout: $*" >&2; exit 2; }
smtp_port() { echo $((BASE + $1)); }
admin_port() { echo $((BASE + 100 + $1)); }
nodes() { cat "$DIR/nodes" 2>/dev/null || echo 0; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Wait (at most 20 s) until 127.0.0.1:$1 accepts a connection.
wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing listens on 127.0.0.1:$1 (see the logs in $DIR)"
}

write_node_config() {
    local k=$1 token
    token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mkdir -p "$DIR/node$k"
    umask 077 # the file holds the admin token
    cat >"$DIR/node$k/mailroot.toml" <<TOML
# node $k of the scale-out recipe (deploy/scaleout.sh)
hostname = "node$k.scaleout.test"
mailroot = "$DIR/node$k/mailroot"
log_level = "$LOG_LEVEL"
${WORKERS:+workers = $WORKERS}

[[site]]
name = "lb"
listen = ["127.0.0.1:$(smtp_port "$k")"]
proxy_protocol = true            # every connection starts with HAProxy's PROXY v2 header
proxy_trusted = ["127.0.0.0/8"]  # where the balancer connects from

${DIRECT_PORTS:+[[site]]
name = \"direct\"                # DIRECT_PORTS=1: a plain listener too (benchmarks)
listen = [\"127.0.0.1:$((BASE + 200 + k))\"]
}
[limits]
max_connections = 5000          # keep under the open-file limit (mailroot warns otherwise)
max_connections_per_ip = 5000

[relay]
allow = ["127.0.0.0/8"]          # applied to the client carried in the PROXY header
smart_host = "[127.0.0.1]:$SINK_PORT"

[domains]
local = ["localhost"]

[dns]
servers = ["127.0.0.1:9"]

[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
listen = "127.0.0.1:$(admin_port "$k")"
token = "$token"                 # mailroot drain/pause/resume read it from this file
TOML
    umask 022
}

# Start node $1 in the background; its exit status lands in node$1/exit_status.
start_node() {
    local k=$1
    alive "$DIR/node$k/pid" && die "node $k is already running"
    rm -f "$DIR/node$k/exit_status"
    setsid bash -c '
        "$1" serve --config "$2/mailroot.toml" >>"$2/mailroot.log" 2>&1 &
        echo $! >"$2/pid"
        wait $!
        echo $? >"$2/exit_status"
    ' _ "$MAILROOT_BIN" "$DIR/node$k" </dev/null >/dev/null 2>&1 &
    wait_port "$(smtp_port "$k")" # the PROXY site says nothing before a header: connect only
    echo "node $k: smtp 127.0.0.1:$(smtp_port "$k") (PROXY v2 only), admin 127.0.0.1:$(admin_port "$k"), folder $DIR/node$k/mailroot"
}

write_haproxy_config() {
    local n=$1 k
    {
        cat <<CFG
# HAProxy in front of $n mailroot nodes (deploy/scaleout.sh)
global
    maxconn 8000
    # Only state changes (a node going DOWN or UP), not one line per connection.
    log stderr format raw local0 notice
    # Runtime API, for "set server mailroot/nodeK state drain" / "... state ready".
    stats socket $DIR/haproxy.sock mode 600 level admin

defaults
    mode tcp
    log global
    timeout connect 2s
    timeout client 5m
    timeout server 5m
    timeout check 2s
    # A refused connect (a node that just stopped) is retried on another node.
    retries 3
    option redispatch

frontend smtp
    bind 127.0.0.1:$FRONT
    default_backend mailroot

backend mailroot
    balance $BALANCE
    # The check reads the greeting and sends EHLO: a 421 (paused or draining node) or no
    # answer marks the node DOWN. It starts with a PROXY v2 LOCAL header (the check's own
    # connection: no client address, the node uses the balancer's own).
    option smtpchk EHLO haproxy.check
    # No "on-marked-down shutdown-sessions": a drained node finishes its open sessions.
    default-server send-proxy-v2 check inter 1s fall 1 rise 2
CFG
        for ((k = 1; k <= n; k++)); do
            echo "    server node$k 127.0.0.1:$(smtp_port "$k")"
        done
        cat <<CFG

listen stats
    mode http
    bind 127.0.0.1:$STATS_PORT
    stats enable
    stats uri /
    stats refresh 5s
CFG
    } >"$DIR/haproxy.cfg"
}

write_prometheus_yml() {
    local n=$1 k
    {
        echo "# prometheus.yml fragment: one target per node, labelled node=nodeK"
        echo "scrape_configs:"
        echo "  - job_name: mailroot"
        echo "    scrape_interval: 15s"
        echo "    static_configs:"
        for ((k = 1; k <= n; k++)); do
            echo "      - targets: [\"127.0.0.1:$(admin_port "$k")\"]"
            echo "        labels: {node: \"node$k\"}"
        done
    } >"$DIR/prometheus.yml"
}

start_sink() {
    case $SINK in
    loadtest)
        [[ -x $LOADTEST_BIN ]] || die "no $LOADTEST_BIN (cargo build --release -p mailroot-loadtest, or SINK=aiosmtpd)"
        setsid "$LOADTEST_BIN" sink --listen "127.0.0.1:$SINK_PORT" --max-seconds 86400 \
            </dev/null >"$DIR/sink.log" 2>&1 &
        ;;
    aiosmtpd)
        setsid python3 -m aiosmtpd -n -c aiosmtpd.handlers.Sink -l "127.0.0.1:$SINK_PORT" \
            </dev/null >"$DIR/sink.log" 2>&1 &
        ;;
    *) die "SINK must be loadtest or aiosmtpd" ;;
    esac
    echo $! >"$DIR/sink.pid"
    wait_port "$SINK_PORT"
    echo "sink: 127.0.0.1:$SINK_PORT ($SINK)"
}

cmd_up() {
    local n=${1:-2} k
    [[ $n =~ ^[0-9]+$ && $n -ge 1 && $n -le 50 ]] || die "N must be 1..50"
    command -v haproxy >/dev/null || die "haproxy is not installed (apt-get install haproxy)"
    [[ -x $MAILROOT_BIN ]] || die "no $MAILROOT_BIN (cargo build --release)"
    [[ -f $DIR/nodes ]] && die "$DIR is in use: deploy/scaleout.sh down first"
    mkdir -p "$DIR"
    echo "$n" >"$DIR/nodes"
    start_sink
    for ((k = 1; k <= n; k++)); do
        write_node_config "$k"
        start_node "$k"
    done
    write_haproxy_config "$n"
    write_prometheus_yml "$n"
    setsid haproxy -db -f "$DIR/haproxy.cfg" </dev/null >"$DIR/haproxy.log" 2>&1 &
    echo $! >"$DIR/haproxy.pid"
    wait_port "$FRONT"
    echo "haproxy: smtp 127.0.0.1:$FRONT ($BALANCE over $n nodes), stats http://127.0.0.1:$STATS_PORT/"
    echo "prometheus: $DIR/prometheus.yml"
}

# HAProxy's view: node name and status (UP, DOWN, MAINT, ...) from the stats CSV.
haproxy_view() {
    local csv
    csv=$(curl -fsS --max-time 5 "http://127.0.0.1:$STATS_PORT/;csv" 2>/dev/null) ||
        { echo "  (stats page 127.0.0.1:$STATS_PORT not reachable: is curl installed?)"; return 0; }
    echo "$csv" | awk -F, '$1 == "mailroot" && $2 != "BACKEND" { printf "  %-8s %s (%s)\n", $2, $18, $37 }'
}

cmd_status() {
    local n k targets=()
    n=$(nodes)
    ((n > 0)) || die "nothing is up (deploy/scaleout.sh up)"
    for ((k = 1; k <= n; k++)); do
        targets+=("node$k=http://127.0.0.1:$(admin_port "$k")/metrics")
    done
    python3 "$HERE/metrics_sum.py" "${targets[@]}" || true
    echo "haproxy:"
    haproxy_view
}

# One command on HAProxy's runtime API (its stats socket); prints the answer.
haproxy_api() {
    python3 - "$DIR/haproxy.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
print(out.decode().strip() or "ok")
PY
}

cmd_drain() {
    local k=${1:?drain K} t0 st
    [[ -f $DIR/node$k/mailroot.toml ]] || die "no node $k"
    alive "$DIR/node$k/pid" || die "node $k is not running"
    t0=$(date +%s.%N)
    # 1. HAProxy stops sending new connections to the node (NOHAPROXY=1 skips this and
    #    relies on the node's 421 failing the health check: up to `inter` of 421s).
    if [[ -z ${NOHAPROXY:-} ]]; then
        echo "haproxy: set server mailroot/node$k state drain: $(haproxy_api "set server mailroot/node$k state drain")"
    fi
    # 2. The node: pause (421 to anything that still arrives), deliver what it holds, exit 0.
    "$MAILROOT_BIN" drain --config "$DIR/node$k/mailroot.toml" --timeout "${TIMEOUT:-300}" || {
        st=$?
        echo "drain of node $k did not finish (exit $st); it stays paused: mailroot resume --config $DIR/node$k/mailroot.toml"
        return "$st"
    }
    for _ in $(seq 300); do
        [[ -f $DIR/node$k/exit_status ]] && break
        sleep 0.1
    done
    st=$(cat "$DIR/node$k/exit_status" 2>/dev/null || echo "?")
    awk -v k="$k" -v st="$st" -v a="$t0" -v b="$(date +%s.%N)" \
        'BEGIN { printf "node %s drained in %.1f s, exit status %s\n", k, b - a, st }'
}

cmd_send() {
    local m=${1:-1000}
    [[ -x $LOADTEST_BIN ]] || die "no $LOADTEST_BIN (cargo build --release -p mailroot-loadtest)"
    "$LOADTEST_BIN" source --server "127.0.0.1:$FRONT" --messages "$m" --size 1024 \
        --sessions "${SESSIONS:-20}" --pipelining --max-seconds 300 --no-progress ${JSON:+--json}
}

stop_pidfile() {
    local f=$1 i
    alive "$f" || { rm -f "$f"; return 0; }
    kill "$(cat "$f")" 2>/dev/null || true
    for i in $(seq 100); do
        alive "$f" || break
        sleep 0.1
    done
    alive "$f" && kill -9 "$(cat "$f")" 2>/dev/null
    rm -f "$f"
}

cmd_down() {
    local n k
    n=$(nodes)
    stop_pidfile "$DIR/haproxy.pid"
    for ((k = 1; k <= n; k++)); do
        stop_pidfile "$DIR/node$k/pid"
    done
    stop_pidfile "$DIR/sink.pid"
    rm -f "$DIR/nodes"
    echo "stopped (logs and folders kept in $DIR; rm -rf it to start afresh)"
}

case ${1:-} in
up) cmd_up "${2:-2}" ;;
status) cmd_status ;;
drain) cmd_drain "${2:-}" ;;
start)
    [[ -f $DIR/node${2:-x}/mailroot.toml ]] || die "no node ${2:-}"
    start_node "$2"
    echo "haproxy: set server mailroot/node$2 state ready: $(haproxy_api "set server mailroot/node$2 state ready")"
    ;;
send) cmd_send "${2:-1000}" ;;
down) cmd_down ;;
*) sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
