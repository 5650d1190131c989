# perf/lib.sh: shell functions the perf scripts share (sourced, not run).

# relay_toml EXTRA NAME SPOOL PORT SINK_PORT [HOLD (false)] [SERVICE]
# Prints the configuration of one mailroot relay for the perf scripts: EXTRA (top-level TOML
# lines, may be empty) first, hostname NAME.localdomain, spool folder SPOOL, one site on
# 127.0.0.1:PORT, smart host smtp-sink on 127.0.0.1:SINK_PORT, no DNS (a dead loopback
# port), no admin listener, connection limits out of the way, `[delivery] hold = HOLD`.
# SERVICE: the `[service]` lines (default: `allow_root = true`, the scripts run as root;
# pass "" for a binary that predates the section).
relay_toml() {
    local service=$'[service]\nallow_root = true'
    (($# >= 7)) && service=$7
    cat <<TOML
$1
hostname = "$2.localdomain"
mailroot = "$3"
log_level = "warn"
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[relay]
allow = ["127.0.0.0/8"]
smart_host = "[127.0.0.1]:$5"
[domains]
local = ["localhost"]
[dns]
servers = ["127.0.0.1:9"]
[delivery]
hold = ${6:-false}
$service
[admin]
enabled = false
[[site]]
name = "perf"
listen = ["127.0.0.1:$4"]
TOML
}

# wait_port PORT: wait (up to 10 s) until something accepts on 127.0.0.1:PORT.
wait_port() {
    local _
    for _ in $(seq 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# thread_cpu PID: the CPU seconds of each thread of PID since it started, summed by thread
# name, largest first (two-space indent, one line per name).
thread_cpu() {
    local t hz
    hz=$(getconf CLK_TCK)
    for t in /proc/"$1"/task/*; do
        # comm may hold spaces: the fields after the closing parenthesis.
        echo "$(cat "$t/comm") $(sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}')"
    done | awk -v hz="$hz" '{c[$1] += $2} END {for (k in c) if (c[k] > 0) printf "  %-16s %.2f s\n", k, c[k] / hz}' |
        sort -k2 -rn
}

# loadtest_bin: the path of the release mailroot-loadtest (built first when missing).
loadtest_bin() {
    local lt=target/release/mailroot-loadtest
    [ -x "$lt" ] || cargo build --release -q -p mailroot-loadtest
    echo "$lt"
}
