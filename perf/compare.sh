#!/usr/bin/env bash
# perf/compare.sh: mailroot vs Postfix accept rate, side by side, on loopback only.
#
# Scenarios (SCENARIOS="1k 10k 100k 1k-s10 1k-s1 100k-s10 latency idle" by default; any
# subset, in any order):
#   1k       SESSIONS (100) sessions x MESSAGES (10000) messages, smtp-source -l 1024
#   10k      SESSIONS sessions x MESSAGES_10K (10000) messages, -l 10240
#   100k     SESSIONS_100K (20) sessions x MESSAGES_100K (2000) messages, -l 102400
#   1k-s10   SESSIONS_FEW (10) sessions x MESSAGES_S10 (10000) messages, -l 1024
#   1k-s1    1 session x MESSAGES_S1 (2000) messages, -l 1024
#   100k-s10 SESSIONS_FEW sessions x MESSAGES_100K_S10 (2000) messages, -l 102400
#   latency  mailroot-loadtest, 1 session x LATENCY_MESSAGES (2000) x 1 KiB, against
#            postfix-accept and mailroot: p50/p99 end-of-data -> 250; then open loop (--rate)
#            at half of that server's 1k accept rate of the same round, 100 sessions
#   idle     IDLE_CONNECTIONS (10000) idle connections to mailroot (mailroot-loadtest idle,
#            VmRSS); Postfix: IDLE_PF_CONNECTIONS (100) connections measured (one smtpd
#            each), extrapolated linearly to IDLE_CONNECTIONS
# Each throughput scenario (1k, 10k, 100k, 1k-s10, 1k-s1, 100k-s10) runs the targets below; the final table has
# accept msgs/s, end-to-end msgs/s, p99 accept latency, peak RSS, CPU s per 1,000 messages
# and the mailroot/Postfix ratios.
#
# What it measures (see perf/README.md for the why and perf/RESULTS.md for numbers):
#   postfix-accept  smtp-source -> Postfix smtpd (private instance, default durable queue,
#                   defer_transports = smtp so mail stays queued): accept msgs/s. Both
#                   Postfix instances are tuned as an operator runs a relay for a benchmark
#                   (process limit, in_flow_delay, concurrency, no client name lookup: the
#                   "tuning" block of main.cf below; perf/README.md gives each reason).
#   postfix-relay   smtp-source -> Postfix (relayhost = [127.0.0.1]:SINK_PORT) -> smtp-sink:
#                   accept msgs/s, and end-to-end msgs/s (until smtp-sink got all of them).
#   mailroot        smtp-source -> target/release/mailroot serve: accept msgs/s
#                   ([delivery] hold = true, the analogue of defer_transports = smtp;
#                   "mailroot: not available" if it does not start).
#   mailroot-relay  smtp-source -> a second mailroot ([relay] smart_host =
#                   "[127.0.0.1]:SINK_PORT") -> smtp-sink: accept msgs/s and end-to-end
#                   msgs/s, as postfix-relay (MR_RELAY=0 skips it).
#   ceiling         smtp-source -> smtp-sink directly: the load generator's own limit.
# Targets alternate within each round; ROUNDS rounds; the median is reported. The same
# mailroot instances serve every round, so the rounds of one scenario also show whether a
# long-running instance slows down (all rows list every round).
#
# Safety: every address is 127.0.0.1; every load run is bounded by a message count and by
# `timeout RUN_TIMEOUT`; everything started here is stopped by the EXIT trap (by PID, or
# `postfix -c DIR stop` for the private Postfix instances). Needs root (apt-get, Postfix).
#
# Usage: perf/compare.sh            (env: SCENARIOS SESSIONS MESSAGES MESSAGES_10K
#                                    SESSIONS_100K MESSAGES_100K SESSIONS_FEW
#                                    MESSAGES_S10 MESSAGES_S1 MESSAGES_100K_S10
#                                    LATENCY_MESSAGES PF_TUNING=0
#                                    IDLE_CONNECTIONS IDLE_PF_CONNECTIONS ROUNDS KEEP=1
#                                    SKIP_BUILD=1 LOADTEST=1 MAILROOT_BIN=path
#                                    MAILROOT_CONFIG=path; see perf/README.md)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SCENARIOS=${SCENARIOS:-1k 10k 100k 1k-s10 1k-s1 100k-s10 latency idle}
# The throughput scenarios, in the order they run and are reported.
THROUGHPUT_SCENARIOS="1k 10k 100k 1k-s10 1k-s1 100k-s10"
SESSIONS_FEW=${SESSIONS_FEW:-10}
MESSAGES_S10=${MESSAGES_S10:-10000}
MESSAGES_S1=${MESSAGES_S1:-2000}
MESSAGES_100K_S10=${MESSAGES_100K_S10:-2000}
PF_TUNING=${PF_TUNING:-1}         # 0: Postfix with its stock limits (the runs before 2026-12-05)
SESSIONS=${SESSIONS:-100}
MESSAGES=${MESSAGES:-10000}
MESSAGES_10K=${MESSAGES_10K:-10000}
SESSIONS_100K=${SESSIONS_100K:-20}
MESSAGES_100K=${MESSAGES_100K:-2000}
LATENCY_MESSAGES=${LATENCY_MESSAGES:-2000}
IDLE_PF_CONNECTIONS=${IDLE_PF_CONNECTIONS:-100}
# Current scenario's shape (set by scenario_shape; drive uses them).
SC_SESSIONS=$SESSIONS
SC_MESSAGES=$MESSAGES
SC_SIZE=1024
ROUNDS=${ROUNDS:-3}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-1000}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
LOADTEST=${LOADTEST:-0}          # 1: also drive each target with mailroot-loadtest (pipelining)
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-10000}  # idle scenario: connections to mailroot
PF_ACCEPT_PORT=2625
SINK_PORT=2626
PF_RELAY_PORT=2627
CEILING_PORT=2628
MR_PORT=${MR_PORT:-2525}          # mailroot listen port (the generated config uses it)
MR_RELAY_PORT=${MR_RELAY_PORT:-2629}  # the relaying mailroot instance
MR_IDLE_PORT=${MR_IDLE_PORT:-2630}    # a fresh instance for the idle scenario
MR_RELAY=${MR_RELAY:-1}           # 1: also measure mailroot relaying into smtp-sink
FROM=a@example.com
TO=b@example.net

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d /tmp/mailroot-perf.XXXXXX)
chmod 755 "$WORK"                # the postfix user must reach its queue below here
RESULTS=$WORK/results.tsv        # scenario:label <TAB> round <TAB> value
: >"$RESULTS"
PIDS=()                          # background processes we started
PF_DIRS=()                       # private Postfix config dirs we started

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local d p
    for d in "${PF_DIRS[@]}"; do
        postfix -c "$d" stop >/dev/null 2>&1
    done
    [[ -n ${WATCH_PID:-} ]] && kill "$WATCH_PID" 2>/dev/null
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    sleep 0.5
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null
    done
    if [[ ${KEEP:-0} == 1 ]]; then
        log "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_root() {
    if [[ $(id -u) != 0 ]]; then
        echo "compare.sh: must run as root (installs and runs Postfix)" >&2
        exit 2
    fi
}

install_postfix() {
    if [[ -x /usr/sbin/smtp-source && -x /usr/sbin/smtp-sink && -x /usr/sbin/postfix ]]; then
        return
    fi
    log "installing postfix (apt-get)"
    apt-get update -q >"$WORK/apt-update.log" 2>&1
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postfix >"$WORK/apt-install.log" 2>&1 || {
        echo "compare.sh: apt-get install postfix failed, see $WORK/apt-install.log" >&2
        KEEP=1
        exit 1
    }
}

# port_free PORT: true if nothing listens on 127.0.0.1:PORT.
port_free() {
    ! timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# wait_port PORT SECONDS [PID]: true once 127.0.0.1:PORT accepts connections; false after
# SECONDS, or as soon as process PID (if given) has exited.
wait_port() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        if ! port_free "$1"; then return 0; fi
        if [[ -n ${3:-} ]] && ! kill -0 "$3" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# pf_instance NAME PORT MODE: a private Postfix instance under $WORK/pf-NAME listening on
# 127.0.0.1:PORT. MODE "accept": defer_transports = smtp (mail stays in the durable queue);
# MODE "relay": relayhost = [127.0.0.1]:SINK_PORT. Sets PF_ETC to its config dir (not run
# in a subshell, so that PF_DIRS reaches the EXIT trap).
pf_instance() {
    local name=$1 port=$2 mode=$3
    local base=$WORK/pf-$name
    local etc=$base/etc
    mkdir -p "$etc" "$base/queue" "$base/data"
    chown postfix "$base/data"   # master.lock and caches; `check` does not fix this one
    chmod 700 "$base/data"
    cat >"$etc/main.cf" <<CF
# private Postfix instance for perf/compare.sh ($mode); everything else is a default
compatibility_level = 3.6
queue_directory = $base/queue
data_directory = $base/data
mail_owner = postfix
setgid_group = postdrop
myhostname = perf-$name.localdomain
mydomain = localdomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
alias_maps =
alias_database =
biff = no
maillog_file = $base/maillog
maillog_file_prefixes = $base
CF
    if [[ $PF_TUNING == 1 ]]; then
        # Tuning: what an operator sets on a relay that is benchmarked (perf/README.md,
        # "Postfix tuning", gives the reason for each line).
        cat >>"$etc/main.cf" <<CF
default_process_limit = 250
in_flow_delay = 0
smtpd_client_connection_count_limit = 0
smtpd_peername_lookup = no
default_destination_concurrency_limit = 100
CF
    fi
    # Extra main.cf lines for both instances, e.g. PF_MAIN_CF_EXTRA='in_flow_delay = 0'.
    [[ -n ${PF_MAIN_CF_EXTRA:-} ]] && printf '%s\n' "$PF_MAIN_CF_EXTRA" >>"$etc/main.cf"
    if [[ $mode == accept ]]; then
        echo "defer_transports = smtp" >>"$etc/main.cf"
    else
        echo "relayhost = [127.0.0.1]:$SINK_PORT" >>"$etc/main.cf"
    fi
    # Debian's master.cf minus chroot (the instance lives in /tmp) with smtpd on our port.
    cat >"$etc/master.cf" <<MF
127.0.0.1:$port inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
MF
    # `check` creates the queue directories with Postfix's owners and modes.
    # Without a tty or /dev/log, Postfix reports problems only in maillog_file.
    if ! postfix -c "$etc" check >"$base/check.log" 2>&1 ||
        ! postfix -c "$etc" start >"$base/start.log" 2>&1; then
        echo "postfix $name failed to start:" >&2
        tail -5 "$base/check.log" "$base/start.log" "$base/maillog" >&2 2>/dev/null
        return 1
    fi
    PF_DIRS+=("$etc")
    wait_port "$port" 10 || { echo "postfix $name did not listen on $port" >&2; return 1; }
    PF_ETC=$etc
}

# pf_empty_queue ETC: delete every queued message of that instance.
pf_empty_queue() {
    postsuper -c "$1" -d ALL >/dev/null 2>&1
}

# start_sink PORT COUNT LOG: smtp-sink (as user postfix, up to 1000 connections); with
# COUNT > 0 it exits after COUNT messages (it may drop the connection that delivered the
# last one, so never point smtp-source at such a sink). Sets SINK_PID.
start_sink() {
    local limit=()
    [[ $2 -gt 0 ]] && limit=(-M "$2")
    timeout "$RUN_TIMEOUT" smtp-sink -u postfix -m 1000 "${limit[@]}" "127.0.0.1:$1" 1000 \
        >"$3" 2>&1 &
    SINK_PID=$!
    PIDS+=("$SINK_PID")
    wait_port "$1" 5 "$SINK_PID"
}

# stop_sink: stop the current sink (by PID) and reap it.
stop_sink() {
    kill "$SINK_PID" 2>/dev/null
    wait "$SINK_PID" 2>/dev/null
}

now() { date +%s.%N; }

# drive PORT COUNT LOG: smtp-source with SC_SESSIONS sessions, -l SC_SIZE; prints elapsed
# seconds, or nothing (and returns 1) if smtp-source failed.
drive() {
    local t0 t1 rc
    t0=$(now)
    timeout "$RUN_TIMEOUT" smtp-source -s "$SC_SESSIONS" -m "$2" -l "$SC_SIZE" -c \
        -f "$FROM" -t "$TO" "127.0.0.1:$1" >"$3" 2>&1
    rc=$?
    t1=$(now)
    if [[ $rc != 0 ]]; then
        echo "  smtp-source to port $1 failed (rc $rc): $(tr '\r' '\n' <"$3" | tail -2)" >&2
        return 1
    fi
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }'
}

# cpu_busy: percent of all CPUs busy over one second (other work on the machine skews results).
cpu_busy() {
    local a b
    a=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / { print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8 }' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ");
        t = y[2] - x[2]; printf "%.0f\n", (t > 0 ? 100 * (y[1] - x[1]) / t : 0) }'
}

# tree_ticks PID: CPU clock ticks (user + system) used so far by PID and its direct
# children, plus the children PID has already reaped (cutime/cstime). Postfix's master
# forks and reaps every daemon, so this is the whole instance's CPU, whatever else the
# machine is doing.
CLK_TCK=$(getconf CLK_TCK)
tree_ticks() {
    local p
    { echo "$1"; ps --ppid "$1" -o pid= 2>/dev/null; } | while read -r p; do
        cat "/proc/$p/stat" 2>/dev/null
        echo
    done | sed 's/^.*) //' | awk -v root="$1" 'NF > 14 {
        # After "pid (comm) ": field 1 is state, 12 utime, 13 stime, 14 cutime, 15 cstime.
        t += $12 + $13; n++; if (n == 1) t += $14 + $15 } END { print t + 0 }'
}

# cpu_ms_per_msg TICKS_BEFORE TICKS_AFTER COUNT
cpu_ms_per_msg() {
    awk -v a="$1" -v b="$2" -v n="$3" -v hz="$CLK_TCK" 'BEGIN { printf "%.3f\n", (b - a) * 1000 / hz / n }'
}

# pf_master ETC: PID of that instance's master process.
pf_master() {
    head -1 "$(postconf -c "$1" -h queue_directory)/pid/master.pid" | tr -d ' '
}

rate() { awk -v n="$1" -v s="$2" 'BEGIN { printf "%.1f\n", n / s }'; }

# disk_sectors: 512-byte sectors written so far to the block device under $WORK (from
# /proc/diskstats; only the server under test writes to it during a run: smtp-source and
# smtp-sink write nothing), so a run's delta is what it cost the disk, journal included.
DISK_DEV=$(basename "$(df --output=source "$WORK" | tail -1)")
disk_sectors() { awk -v d="$DISK_DEV" '$3 == d { printf "%.0f\n", $10; f = 1 } END { if (!f) print 0 }' /proc/diskstats; }

# disk_kib_per_msg SECTORS_BEFORE SECTORS_AFTER COUNT
disk_kib_per_msg() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { printf "%.1f\n", (b - a) / 2 / n }'; }

record() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$RESULTS"; log "  $1 round $2: $3 ${4:-msgs/s}"; }

# median LABEL: median msgs/s over the rounds, or "n/a".
median() {
    awk -F'\t' -v l="$1" '$1 == l { print $3 }' "$RESULTS" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "n/a"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

all_rounds() {
    awk -F'\t' -v l="$1" '$1 == l { printf "%s%s", sep, $3; sep = " " } END { print "" }' "$RESULTS"
}

# instance_kb PIDS...: "Rss Pss" in KiB summed over the given processes.
instance_kb() {
    local p
    for p in "$@"; do cat "/proc/$p/smaps_rollup" 2>/dev/null; done |
        awk '$1 == "Rss:" { r += $2 } $1 == "Pss:" { p += $2 } END { printf "%d %d\n", r, p }'
}

# tree_pids PID: PID and its direct children (Postfix's master forks all daemons itself).
tree_pids() {
    echo "$1"
    ps --ppid "$1" -o pid= 2>/dev/null
}

# idle_probe ETC PORT N [PID]: memory cost of N idle SMTP connections (opened, greeting
# read, nothing sent). For Postfix (no PID given) the instance is restarted first so that
# no smtpd from earlier runs lingers, and the master's process tree is measured.
IDLE_REPORT=()
idle_probe() {
    local label=$1 port=$2 n=$3 pid=${4:-} etc=${5:-} before after i fds=() fd
    if [[ -n $etc ]]; then
        postfix -c "$etc" stop >/dev/null 2>&1
        sleep 1
        postfix -c "$etc" start >/dev/null 2>&1 || return 1
        wait_port "$port" 10 || return 1
        sleep 1
        pid=$(head -1 "$(postconf -c "$etc" -h queue_directory)/pid/master.pid" | tr -d ' ')
    fi
    before=$(instance_kb $(tree_pids "$pid"))
    for ((i = 0; i < n; i++)); do
        exec {fd}<>"/dev/tcp/127.0.0.1/$port" || break
        fds+=("$fd")
    done
    for fd in "${fds[@]}"; do timeout 5 head -n1 <&"$fd" >/dev/null; done
    sleep 2
    after=$(instance_kb $(tree_pids "$pid"))
    for fd in "${fds[@]}"; do exec {fd}>&-; done
    IDLE_REPORT+=("$(awk -v l="$label" -v n="${#fds[@]}" -v a="$before" -v b="$after" 'BEGIN {
        split(a, x, " "); split(b, y, " ");
        printf "%-16s %4d idle connections: RSS %d -> %d KiB, PSS %d -> %d KiB, %.1f KiB PSS per connection",
            l, n, x[1], y[1], x[2], y[2], (n > 0 ? (y[2] - x[2]) / n : 0) }')")
    log "  ${IDLE_REPORT[-1]}"
}

# ---- mailroot ------------------------------------------------------------------------

MR_PID=
MR_AVAILABLE=0

# mailroot_config MODE PORT DIR: write a config for an instance listening on PORT with its
# Mailroot folder in DIR; print its path. MODE "accept": delivery held (mail stays queued);
# MODE "relay": everything goes to smtp-sink on SINK_PORT (no DNS, nothing leaves the host).
mailroot_config() {
    local mode=$1 port=$2 dir=$3
    local cfg=$WORK/mailroot-$mode.toml
    if [[ -n ${MAILROOT_CONFIG:-} && $mode == accept ]]; then
        echo "$MAILROOT_CONFIG"
        return
    fi
    local relay_extra="" domains='["localhost", "example.net"]' delivery="hold = true"
    if [[ $mode == relay ]]; then
        relay_extra="smart_host = \"[127.0.0.1]:$SINK_PORT\""
        domains='["localhost"]'
        delivery="hold = false"
    fi
    cat >"$cfg" <<TOML
# mailroot config for perf/compare.sh ($mode)
hostname = "perf-mailroot-$mode.localdomain"
mailroot = "$dir"
log_level = "warn"

[limits]
max_connections = 20000
max_connections_per_ip = 20000

[relay]
allow = ["127.0.0.0/8", "::1/128"]
$relay_extra

# accept: the test recipient's domain is local and delivery is held, so accepted mail
# stays in the durable queue (as Postfix's defer_transports = smtp keeps it).
[domains]
local = $domains

[delivery]
$delivery

[dns]
servers = ["127.0.0.1:9"]

# Several instances run at once: no admin listener (it would contend for 127.0.0.1:8025).
[service]
allow_root = true               # run as whoever starts the script (root here)

[admin]
enabled = false

[[site]]
name = "perf"
listen = ["127.0.0.1:$port"]
TOML
    echo "$cfg"
}

# start_mailroot MODE PORT: build (once) and start an instance; sets MR_STARTED_PID.
start_mailroot() {
    local mode=$1 port=$2
    local bin=${MAILROOT_BIN:-$TARGET_DIR/release/mailroot} cfg
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "building mailroot and mailroot-loadtest (cargo build --release --workspace)"
        if ! (cd "$REPO" && cargo build --release --workspace >"$WORK/build.log" 2>&1); then
            log "mailroot: build failed (see $WORK/build.log)"
            return 1
        fi
        SKIP_BUILD=1
    fi
    [[ -x $bin ]] || { log "mailroot: no binary at $bin"; return 1; }
    port_free "$port" || { log "mailroot: port $port already in use"; return 1; }
    cfg=$(mailroot_config "$mode" "$port" "$WORK/mailroot-$mode")
    mkdir -p "$WORK/mailroot-$mode"
    (cd "$WORK" && exec "$bin" serve --config "$cfg") >"$WORK/mailroot-$mode.log" 2>&1 &
    MR_STARTED_PID=$!
    PIDS+=("$MR_STARTED_PID")
    if ! wait_port "$port" 10 "$MR_STARTED_PID"; then
        log "mailroot $mode: serve did not start: $(grep -m1 -E 'panicked|error' \
            "$WORK/mailroot-$mode.log" || tail -1 "$WORK/mailroot-$mode.log")"
        return 1
    fi
    return 0
}

# ---- scenario helpers ----------------------------------------------------------------

# scenario_shape NAME: set SC_SESSIONS, SC_MESSAGES, SC_SIZE for a throughput scenario.
scenario_shape() {
    case $1 in
        1k) SC_SESSIONS=$SESSIONS SC_MESSAGES=$MESSAGES SC_SIZE=1024 ;;
        10k) SC_SESSIONS=$SESSIONS SC_MESSAGES=$MESSAGES_10K SC_SIZE=10240 ;;
        100k) SC_SESSIONS=$SESSIONS_100K SC_MESSAGES=$MESSAGES_100K SC_SIZE=102400 ;;
        1k-s10) SC_SESSIONS=$SESSIONS_FEW SC_MESSAGES=$MESSAGES_S10 SC_SIZE=1024 ;;
        1k-s1) SC_SESSIONS=1 SC_MESSAGES=$MESSAGES_S1 SC_SIZE=1024 ;;
        100k-s10) SC_SESSIONS=$SESSIONS_FEW SC_MESSAGES=$MESSAGES_100K_S10 SC_SIZE=102400 ;;
        *) return 1 ;;
    esac
}

wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }

# watch_start PID: sample the RSS of PID and its children (summed, KiB) every 0.5 s in the
# background, keeping the peak in $WORK/peak-rss; watch_stop prints the peak.
WATCH_PID=
WATCH_TARGET=
watch_start() {
    WATCH_TARGET=$1
    echo 0 >"$WORK/peak-rss"
    (
        peak=0
        while :; do
            r=$(instance_kb $(tree_pids "$1"))
            r=${r%% *}
            if ((r > peak)); then peak=$r; echo "$peak" >"$WORK/peak-rss"; fi
            sleep 0.5
        done
    ) &
    WATCH_PID=$!
}
watch_stop() {
    local r peak
    kill "$WATCH_PID" 2>/dev/null
    wait "$WATCH_PID" 2>/dev/null
    WATCH_PID=
    # One last sample, so that a run shorter than the interval is still measured.
    r=$(instance_kb $(tree_pids "$WATCH_TARGET"))
    r=${r%% *}
    peak=$(cat "$WORK/peak-rss")
    echo $((r > peak ? r : peak))
}

# accept_run SC ROUND LABEL PORT PID: one accept run of scenario SC into PORT; records
# SC:LABEL (msgs/s), SC:cpu-LABEL (CPU ms/msg = CPU s per 1,000 msgs), SC:rss-LABEL (peak
# RSS KiB of PID's process tree).
accept_run() {
    local sc=$1 round=$2 label=$3 port=$4 pid=$5 c0 c1 secs
    c0=$(tree_ticks "$pid")
    watch_start "$pid"
    if secs=$(drive "$port" "$SC_MESSAGES" "$WORK/r$round-$sc-$label.log"); then
        c1=$(tree_ticks "$pid")
        record "$sc:$label" "$round" "$(rate "$SC_MESSAGES" "$secs")"
        record "$sc:cpu-$label" "$round" "$(cpu_ms_per_msg "$c0" "$c1" "$SC_MESSAGES")" "CPU ms/msg"
    fi
    record "$sc:rss-$label" "$round" "$(watch_stop)" "KiB peak RSS"
}

# relay_run SC ROUND LABEL PORT PID: smtp-source into a relaying server on PORT, smtp-sink
# on SINK_PORT behind it; records SC:LABEL-accept, SC:LABEL-e2e (until smtp-sink has all),
# SC:cpu-LABEL-e2e and SC:rss-LABEL.
relay_run() {
    local sc=$1 round=$2 label=$3 port=$4 pid=$5 c0 c1 t0 t1 secs d0
    start_sink $SINK_PORT "$SC_MESSAGES" "$WORK/r$round-$sc-$label-sink.log"
    c0=$(tree_ticks "$pid")
    d0=$(disk_sectors)
    watch_start "$pid"
    t0=$(now)
    if secs=$(drive "$port" "$SC_MESSAGES" "$WORK/r$round-$sc-$label.log"); then
        record "$sc:$label-accept" "$round" "$(rate "$SC_MESSAGES" "$secs")"
        if wait "$SINK_PID"; then
            t1=$(now)
            c1=$(tree_ticks "$pid")
            record "$sc:$label-e2e" "$round" \
                "$(rate "$SC_MESSAGES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
            record "$sc:cpu-$label-e2e" "$round" "$(cpu_ms_per_msg "$c0" "$c1" "$SC_MESSAGES")" \
                "CPU ms/msg"
            record "$sc:disk-$label-e2e" "$round" \
                "$(disk_kib_per_msg "$d0" "$(disk_sectors)" "$SC_MESSAGES")" "disk KiB/msg"
        else
            log "  smtp-sink did not get all $SC_MESSAGES messages from $label within ${RUN_TIMEOUT}s"
        fi
    fi
    record "$sc:rss-$label" "$round" "$(watch_stop)" "KiB peak RSS"
    stop_sink
}

# json_stage_us JSON STAGE: "p50 p99" of that stage (microseconds) of a mailroot-loadtest report.
json_stage_us() {
    sed -n "s/.*\"$2\":{\"count\":[0-9]*,\"p50\":\([0-9]*\),\"p90\":[0-9]*,\"p99\":\([0-9]*\).*/\1 \2/p" <<<"$1"
}

# latency_run ROUND LABEL PORT: mailroot-loadtest, 1 session, 1 KiB: records
# latency:p50-LABEL and latency:p99-LABEL (end-of-data -> 250, ms). Then, if the 1k accept
# rate of this round is known, open loop at half of it with SESSIONS sessions for
# LATENCY_HALF_SECONDS (10) seconds: latency:half-p99-LABEL (eod) and
# latency:half-sched-p99-LABEL (due time -> 250).
latency_run() {
    local round=$1 label=$2 port=$3 out v full half n
    out=$(timeout "$RUN_TIMEOUT" "$LT" source --server "127.0.0.1:$port" --sessions 1 \
        --messages "$LATENCY_MESSAGES" --size 1024 --from "$FROM" --to "$TO" \
        --max-seconds "$RUN_TIMEOUT" --json)
    echo "$out" >>"$WORK/loadtest.jsonl"
    v=$(json_stage_us "$out" eod)
    if [[ -n $v ]]; then
        record "latency:p50-$label" "$round" "$(awk -v u="${v% *}" 'BEGIN { printf "%.3f\n", u / 1000 }')" ms
        record "latency:p99-$label" "$round" "$(awk -v u="${v#* }" 'BEGIN { printf "%.3f\n", u / 1000 }')" ms
    fi
    full=$(awk -F'\t' -v l="1k:$label" -v r="$round" '$1 == l && $2 == r { print $3 }' "$RESULTS")
    [[ -z $full ]] && return 0
    half=$(awk -v f="$full" 'BEGIN { printf "%.0f\n", f / 2 }')
    n=$(awk -v h="$half" -v s="${LATENCY_HALF_SECONDS:-10}" 'BEGIN { printf "%d\n", h * s }')
    ((n < 1)) && return 0
    out=$(timeout "$RUN_TIMEOUT" "$LT" source --server "127.0.0.1:$port" --sessions "$SESSIONS" \
        --messages "$n" --size 1024 --rate "$half" --from "$FROM" --to "$TO" \
        --max-seconds "$RUN_TIMEOUT" --json)
    echo "$out" >>"$WORK/loadtest.jsonl"
    v=$(json_stage_us "$out" eod)
    [[ -n $v ]] && record "latency:half-p99-$label" "$round" \
        "$(awk -v u="${v#* }" 'BEGIN { printf "%.3f\n", u / 1000 }')" "ms (at $half msgs/s)"
    v=$(json_stage_us "$out" sched)
    [[ -n $v ]] && record "latency:half-sched-p99-$label" "$round" \
        "$(awk -v u="${v#* }" 'BEGIN { printf "%.3f\n", u / 1000 }')" "ms (at $half msgs/s)"
    return 0
}

# ---- main ----------------------------------------------------------------------------

need_root
install_postfix
for p in $PF_ACCEPT_PORT $SINK_PORT $PF_RELAY_PORT $CEILING_PORT $MR_RELAY_PORT; do
    port_free "$p" || { echo "compare.sh: port 127.0.0.1:$p is busy" >&2; exit 1; }
done
# The idle scenario holds IDLE_CONNECTIONS sockets on each side of loopback.
ulimit -n $((IDLE_CONNECTIONS * 2 + 1024)) 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null

log "work dir $WORK; scenarios: $SCENARIOS; $ROUNDS rounds"
pf_instance accept $PF_ACCEPT_PORT accept || exit 1
PF_ACCEPT=$PF_ETC
pf_instance relay $PF_RELAY_PORT relay || exit 1
PF_RELAY=$PF_ETC
if start_mailroot accept "$MR_PORT"; then
    MR_PID=$MR_STARTED_PID
    # One real message must get through before we time anything.
    if drive "$MR_PORT" 1 "$WORK/mailroot-probe.log" >/dev/null; then
        MR_AVAILABLE=1
    else
        log "mailroot: listens but did not accept a test message"
    fi
fi
MR_RELAY_AVAILABLE=0
if [[ $MR_RELAY == 1 ]] && start_mailroot relay "$MR_RELAY_PORT"; then
    MR_RELAY_PID=$MR_STARTED_PID
    MR_RELAY_AVAILABLE=1
fi

# Warm-up (not counted): start Postfix's smtpd/cleanup processes, fault in binaries.
log "warm-up ($WARMUP_MESSAGES messages per target)"
scenario_shape 1k
drive $PF_ACCEPT_PORT "$WARMUP_MESSAGES" "$WORK/warm-accept.log" >/dev/null
pf_empty_queue "$PF_ACCEPT"
start_sink $SINK_PORT "$WARMUP_MESSAGES" "$WORK/warm-sink.log"
drive $PF_RELAY_PORT "$WARMUP_MESSAGES" "$WORK/warm-relay.log" >/dev/null
wait "$SINK_PID" 2>/dev/null
if [[ $MR_AVAILABLE == 1 ]]; then
    drive $MR_PORT "$WARMUP_MESSAGES" "$WORK/warm-mailroot.log" >/dev/null
fi
if [[ $MR_RELAY_AVAILABLE == 1 ]]; then
    start_sink $SINK_PORT "$WARMUP_MESSAGES" "$WORK/warm-mr-sink.log"
    drive $MR_RELAY_PORT "$WARMUP_MESSAGES" "$WORK/warm-mr-relay.log" >/dev/null
    wait "$SINK_PID" 2>/dev/null
fi

LT=$TARGET_DIR/release/mailroot-loadtest
if [[ ($LOADTEST == 1 || " $SCENARIOS " == *" latency "* || " $SCENARIOS " == *" idle "*) && ! -x $LT ]]; then
    log "building mailroot-loadtest"
    (cd "$REPO" && cargo build --release -p mailroot-loadtest >"$WORK/build-lt.log" 2>&1) ||
        log "mailroot-loadtest: build failed (see $WORK/build-lt.log); latency/idle/LOADTEST skipped"
fi
if [[ -x $LT ]] && ! "$LT" idle --help >/dev/null 2>&1; then
    log "mailroot-loadtest at $LT predates the idle/relay modes: rebuild it (cargo build --release -p mailroot-loadtest)"
fi
[[ -x $LT ]] || LOADTEST=0

mr_alive() {
    [[ $MR_AVAILABLE == 1 ]] || return 1
    kill -0 "$MR_PID" 2>/dev/null && return 0
    log "mailroot: process exited"
    MR_AVAILABLE=0
    return 1
}

BUSY_BEFORE=$(cpu_busy)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine busy before the rounds: ${BUSY_BEFORE}% CPU, loadavg $LOAD_BEFORE"
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"
    for sc in $THROUGHPUT_SCENARIOS; do
        wants "$sc" || continue
        scenario_shape "$sc"
        log " scenario $sc: $SC_SESSIONS sessions x $SC_MESSAGES msgs x -l $SC_SIZE"

        # (a) Postfix, durable accept only.
        accept_run "$sc" "$round" postfix-accept $PF_ACCEPT_PORT "$(pf_master "$PF_ACCEPT")"
        pf_empty_queue "$PF_ACCEPT"

        # (b) mailroot, durable accept only (delivery held).
        mr_alive && accept_run "$sc" "$round" mailroot $MR_PORT "$MR_PID"

        # (c) Postfix relaying into smtp-sink: accept rate and end-to-end rate.
        relay_run "$sc" "$round" postfix-relay $PF_RELAY_PORT "$(pf_master "$PF_RELAY")"
        pf_empty_queue "$PF_RELAY"

        # (c2) mailroot relaying into smtp-sink.
        if [[ $MR_RELAY_AVAILABLE == 1 ]] && kill -0 "$MR_RELAY_PID" 2>/dev/null; then
            relay_run "$sc" "$round" mailroot-relay $MR_RELAY_PORT "$MR_RELAY_PID"
        fi

        # (d) Ceiling: smtp-source straight into smtp-sink.
        start_sink $CEILING_PORT 0 "$WORK/r$round-$sc-ceiling-sink.log"
        if secs=$(drive $CEILING_PORT "$SC_MESSAGES" "$WORK/r$round-$sc-ceiling.log"); then
            record "$sc:ceiling" "$round" "$(rate "$SC_MESSAGES" "$secs")"
        fi
        stop_sink

        # (e) Optional: mailroot-loadtest with pipelining and 20 messages per connection.
        if [[ $LOADTEST == 1 ]]; then
            for t in postfix-accept:$PF_ACCEPT_PORT mailroot:$MR_PORT; do
                [[ ${t%%:*} == mailroot && $MR_AVAILABLE != 1 ]] && continue
                out=$(timeout "$RUN_TIMEOUT" "$LT" source --server "127.0.0.1:${t##*:}" \
                    --sessions "$SC_SESSIONS" --messages "$SC_MESSAGES" --size "$SC_SIZE" \
                    --pipelining --from "$FROM" --to "$TO" --max-seconds "$RUN_TIMEOUT" --json)
                r=$(sed -n 's/.*"msgs_per_s":\([0-9.]*\).*/\1/p' <<<"$out")
                [[ -n $r ]] && record "$sc:loadtest-${t%%:*}" "$round" "$r"
                echo "$out" >>"$WORK/loadtest.jsonl"
            done
            pf_empty_queue "$PF_ACCEPT"
        fi
    done

    # Latency: one session, then open loop at half of the 1k accept rate.
    if wants latency && [[ -x $LT ]]; then
        log " scenario latency"
        latency_run "$round" postfix-accept $PF_ACCEPT_PORT
        pf_empty_queue "$PF_ACCEPT"
        mr_alive && latency_run "$round" mailroot $MR_PORT
    fi
done

# Idle connections: mailroot with IDLE_CONNECTIONS; Postfix measured with
# IDLE_PF_CONNECTIONS (one smtpd process each, default_process_limit = 100) and
# extrapolated linearly (an idle Postfix connection is a whole smtpd process).
IDLE_LINES=
if wants idle; then
    log "scenario idle"
    idle_probe postfix $PF_ACCEPT_PORT "$IDLE_PF_CONNECTIONS" "" "$PF_ACCEPT"
    PF_IDLE_LINE=
    ((${#IDLE_REPORT[@]} > 0)) && PF_IDLE_LINE=${IDLE_REPORT[-1]}
    # "RSS a -> b KiB, PSS c -> d KiB": extrapolate PSS per connection to IDLE_CONNECTIONS.
    PF_IDLE_PROJ=$(sed -n 's/.* \([0-9]*\) idle connections: RSS \([0-9]*\) -> \([0-9]*\) KiB, PSS \([0-9]*\) -> \([0-9]*\) KiB.*/\1 \2 \3 \4 \5/p' <<<"$PF_IDLE_LINE" |
        awk -v n="$IDLE_CONNECTIONS" '$1 > 0 { printf "%.0f\n", $4 + ($5 - $4) / $1 * n }')
    if [[ -n $PF_IDLE_PROJ ]]; then
        IDLE_LINES+="postfix: $PF_IDLE_LINE"$'\n'
        IDLE_LINES+="postfix: $IDLE_CONNECTIONS idle connections EXTRAPOLATED from $IDLE_PF_CONNECTIONS: PSS ~$PF_IDLE_PROJ KiB ($(awk -v k="$PF_IDLE_PROJ" 'BEGIN { printf "%.1f", k / 1024 }') MiB)"$'\n'
        record idle:rss-postfix 1 "$PF_IDLE_PROJ" "KiB PSS (extrapolated)"
    fi
    # A fresh instance: the accept instance has every held message of the other scenarios
    # mapped, which VmRSS counts (file-backed spool pages) and would swamp the measurement.
    if [[ -x $LT ]] && start_mailroot idle "$MR_IDLE_PORT"; then
        out=$(timeout "$RUN_TIMEOUT" "$LT" idle --server "127.0.0.1:$MR_IDLE_PORT" \
            --connections "$IDLE_CONNECTIONS" --hold-seconds 5 --pid "$MR_STARTED_PID" --json)
        kill "$MR_STARTED_PID" 2>/dev/null || true
        echo "$out" >>"$WORK/loadtest.jsonl"
        held=$(sed -n 's/.*"held":\([0-9]*\).*/\1/p' <<<"$out")
        kib=$(sed -n 's/.*"rss_held_kib":\([0-9]*\).*/\1/p' <<<"$out")
        before=$(sed -n 's/.*"rss_before_kib":\([0-9]*\).*/\1/p' <<<"$out")
        if [[ -n $kib ]]; then
            IDLE_LINES+="mailroot: $held of $IDLE_CONNECTIONS idle connections held (after EHLO): VmRSS $before -> $kib KiB ($(awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }') MiB, measured)"$'\n'
            record idle:rss-mailroot 1 "$kib" "KiB VmRSS ($held connections)"
        else
            IDLE_LINES+="mailroot: idle run failed: $out"$'\n'
        fi
    fi
fi

# ---- report --------------------------------------------------------------------------

# ratio A B [SUFFIX]: A / B with two decimals and SUFFIX, or n/a.
ratio() {
    [[ $1 == n/a || $2 == n/a || -z $1 || -z $2 ]] && { echo n/a; return; }
    awk -v a="$1" -v b="$2" -v s="${3:-}" 'BEGIN { if (b > 0) printf "%.2f%s\n", a / b, s; else print "n/a" }'
}
# mib KIB: KiB to MiB, one decimal, or n/a.
mib() { [[ $1 == n/a ]] && echo n/a || awk -v k="$1" 'BEGIN { printf "%.1f\n", k / 1024 }'; }

echo
echo "== perf/compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): scenarios $SCENARIOS, median of $ROUNDS rounds"
echo "machine: $(nproc) cpus, $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r)," \
    "queue fs $(findmnt -no FSTYPE,SOURCE -T "$WORK" | tr -s ' ')"
echo "background: ${BUSY_BEFORE}% CPU busy before the rounds (loadavg $LOAD_BEFORE);" \
    "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "postfix: $(postconf -d -h mail_version 2>/dev/null), tuning $([[ $PF_TUNING == 1 ]] && echo on || echo off)"
[[ -n ${PF_MAIN_CF_EXTRA:-} ]] && echo "postfix main.cf extra: $PF_MAIN_CF_EXTRA"
echo "driver: smtp-source -s SESSIONS -m MESSAGES -l SIZE -c -f $FROM -t $TO 127.0.0.1:PORT" \
    "(one message per connection)"
echo
echo "all rows (median, then every round):"
cut -f1 "$RESULTS" | awk '!seen[$0]++' | while read -r l; do
    printf '  %-36s %12s   %s\n' "$l" "$(median "$l")" "$(all_rounds "$l")"
done

echo
echo "summary (medians; accept = durable accept, delivery held; e2e = relayed into smtp-sink;"
echo "p99 = end-of-data -> 250 with 1 session (latency scenario); peak RSS = sum over the"
echo "server's process tree during the accept run; CPU = server user+system s per 1,000 msgs,"
echo "accepting (delivery held) and relaying (e2e)):"
printf '| %-8s | %-8s | %12s | %12s | %12s | %13s | %14s | %14s |\n' scenario server "accept msg/s" \
    "e2e msg/s" "p99 acc. ms" "peak RSS MiB" "CPU s/1k acc." "CPU s/1k e2e"
printf '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for sc in $THROUGHPUT_SCENARIOS; do
    wants "$sc" || continue
    for srv in postfix mailroot; do
        if [[ $srv == postfix ]]; then acc=postfix-accept rel=postfix-relay; else acc=mailroot rel=mailroot-relay; fi
        printf '| %-8s | %-8s | %12s | %12s | %12s | %13s | %14s | %14s |\n' "$sc" "$srv" \
            "$(median "$sc:$acc")" "$(median "$sc:$rel-e2e")" \
            "$([[ $sc == 1k ]] && median "latency:p99-$acc" || echo -)" \
            "$(mib "$(median "$sc:rss-$acc")")" "$(median "$sc:cpu-$acc")" \
            "$(median "$sc:cpu-$rel-e2e")"
    done
    printf '| %-8s | %-8s | %12s | %12s | %12s | %13s | %14s | %14s |\n' "$sc" "ratio" \
        "$(ratio "$(median "$sc:mailroot")" "$(median "$sc:postfix-accept")" x)" \
        "$(ratio "$(median "$sc:mailroot-relay-e2e")" "$(median "$sc:postfix-relay-e2e")" x)" \
        "$([[ $sc == 1k ]] && ratio "$(median latency:p99-postfix-accept)" "$(median latency:p99-mailroot)" "x less" || echo -)" \
        "$(ratio "$(median "$sc:rss-postfix-accept")" "$(median "$sc:rss-mailroot")" "x less")" \
        "$(ratio "$(median "$sc:cpu-postfix-accept")" "$(median "$sc:cpu-mailroot")" "x less")" \
        "$(ratio "$(median "$sc:cpu-postfix-relay-e2e")" "$(median "$sc:cpu-mailroot-relay-e2e")" "x less")"
    printf '| %-8s | %-8s | %12s | %12s | %12s | %13s | %14s | %14s |\n' "$sc" "ceiling" \
        "" "$(median "$sc:ceiling")" "" "" "" ""
done
echo "(ceiling: smtp-source straight into smtp-sink, listed under e2e; mailroot relay e2e /"
printf 'ceiling:'
for sc in $THROUGHPUT_SCENARIOS; do
    wants "$sc" && printf ' %s %s' "$sc" "$(ratio "$(median "$sc:mailroot-relay-e2e")" "$(median "$sc:ceiling")")"
done
echo "."
echo "Postfix's peak RSS sums every process of the instance, shared pages counted in each.)"
echo
echo "disk writes while relaying (KiB per message written to $DISK_DEV, journal included, medians):"
for sc in $THROUGHPUT_SCENARIOS; do
    wants "$sc" || continue
    echo "  $sc: postfix $(median "$sc:disk-postfix-relay-e2e"), mailroot $(median "$sc:disk-mailroot-relay-e2e")"
done
if wants latency; then
    echo
    echo "latency (mailroot-loadtest, end-of-data -> 250, ms, medians):"
    for srv in postfix-accept mailroot; do
        echo "  $srv: 1 session p50 $(median "latency:p50-$srv") p99 $(median "latency:p99-$srv");" \
            "open loop at half its 1k rate: eod p99 $(median "latency:half-p99-$srv")," \
            "due-time -> 250 p99 $(median "latency:half-sched-p99-$srv")"
    done
fi
if wants idle; then
    echo
    echo "idle connections (target: $IDLE_CONNECTIONS in under 100 MiB):"
    printf '%s' "$IDLE_LINES"
    echo "  ratio postfix (extrapolated PSS) / mailroot (VmRSS): $(ratio "$(median idle:rss-postfix)" "$(median idle:rss-mailroot)")x"
fi
if [[ $MR_AVAILABLE != 1 ]]; then
    echo "mailroot: not available"
fi
if [[ -s $WORK/loadtest.jsonl ]]; then
    echo
    echo "mailroot-loadtest runs (JSON, latencies in microseconds):"
    cat "$WORK/loadtest.jsonl"
fi
