#!/usr/bin/env bash
# perf/compare.sh: mailroot vs Postfix accept rate, side by side, on loopback only.
#
# What it measures (see perf/README.md for the why and perf/RESULTS.md for numbers):
#   postfix-accept  smtp-source -> Postfix smtpd (private instance, default durable queue,
#                   defer_transports = smtp so mail stays queued): accept msgs/s.
#   postfix-relay   smtp-source -> Postfix (relayhost = [127.0.0.1]:SINK_PORT) -> smtp-sink:
#                   accept msgs/s, and end-to-end msgs/s (until smtp-sink got all of them).
#   mailroot        smtp-source -> target/release/mailroot serve: accept msgs/s
#                   ("mailroot: not available" if it does not start).
#   ceiling         smtp-source -> smtp-sink directly: the load generator's own limit.
# Targets alternate within each round; ROUNDS rounds; the median is reported.
#
# Safety: every address is 127.0.0.1; every load run is bounded by a message count and by
# `timeout RUN_TIMEOUT`; everything started here is stopped by the EXIT trap (by PID, or
# `postfix -c DIR stop` for the private Postfix instances). Needs root (apt-get, Postfix).
#
# Usage: perf/compare.sh            (env: SESSIONS MESSAGES SIZE ROUNDS KEEP=1 SKIP_BUILD=1
#                                    LOADTEST=1 MAILROOT_BIN=path MAILROOT_CONFIG=path)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SESSIONS=${SESSIONS:-100}
MESSAGES=${MESSAGES:-10000}
SIZE=${SIZE:-1024}
ROUNDS=${ROUNDS:-3}
WARMUP_MESSAGES=${WARMUP_MESSAGES:-1000}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
LOADTEST=${LOADTEST:-0}          # 1: also drive each target with mailroot-loadtest (pipelining)
IDLE_CONNECTIONS=${IDLE_CONNECTIONS:-100}  # idle-connection memory probe (0: skip)
PF_ACCEPT_PORT=2625
SINK_PORT=2626
PF_RELAY_PORT=2627
CEILING_PORT=2628
MR_PORT=${MR_PORT:-2525}          # mailroot listen port (the generated config uses it)
FROM=a@example.com
TO=b@example.net

TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
WORK=$(mktemp -d /tmp/mailroot-perf.XXXXXX)
chmod 755 "$WORK"                # the postfix user must reach its queue below here
RESULTS=$WORK/results.tsv        # label <TAB> round <TAB> msgs/s
: >"$RESULTS"
PIDS=()                          # background processes we started
PF_DIRS=()                       # private Postfix config dirs we started

log() { printf '%s %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
    local d p
    for d in "${PF_DIRS[@]}"; do
        postfix -c "$d" stop >/dev/null 2>&1
    done
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

# drive PORT COUNT LOG: smtp-source with SESSIONS sessions; prints elapsed seconds, or
# nothing (and returns 1) if smtp-source failed.
drive() {
    local t0 t1 rc
    t0=$(now)
    timeout "$RUN_TIMEOUT" smtp-source -s "$SESSIONS" -m "$2" -l "$SIZE" -c \
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

mailroot_config() {
    local cfg=$WORK/mailroot.toml
    if [[ -n ${MAILROOT_CONFIG:-} ]]; then
        echo "$MAILROOT_CONFIG"
        return
    fi
    cat >"$cfg" <<TOML
# mailroot config for perf/compare.sh
hostname = "perf-mailroot.localdomain"
mailroot = "$WORK/mailroot"
log_level = "warn"

[limits]
max_connections_per_ip = 1000

[relay]
allow = ["127.0.0.0/8", "::1/128"]

# The test recipient's domain is local, so that accepted mail is never relayed towards
# the real example.net (no DNS, no traffic off the machine) once delivery exists.
[domains]
local = ["localhost", "example.net"]

[[site]]
name = "perf"
listen = ["127.0.0.1:$MR_PORT"]
TOML
    echo "$cfg"
}

start_mailroot() {
    local bin=${MAILROOT_BIN:-$TARGET_DIR/release/mailroot} cfg
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "building mailroot (cargo build --release)"
        if ! (cd "$REPO" && cargo build --release >"$WORK/build.log" 2>&1); then
            log "mailroot: build failed (see $WORK/build.log)"
            return 1
        fi
    fi
    [[ -x $bin ]] || { log "mailroot: no binary at $bin"; return 1; }
    port_free "$MR_PORT" || { log "mailroot: port $MR_PORT already in use"; return 1; }
    cfg=$(mailroot_config)
    mkdir -p "$WORK/mailroot"
    (cd "$WORK" && exec "$bin" serve --config "$cfg") >"$WORK/mailroot.log" 2>&1 &
    MR_PID=$!
    PIDS+=("$MR_PID")
    if ! wait_port "$MR_PORT" 10 "$MR_PID"; then
        log "mailroot: serve did not start: $(grep -m1 -E 'panicked|error' "$WORK/mailroot.log" ||
            tail -1 "$WORK/mailroot.log")"
        return 1
    fi
    # One real message must get through before we time anything.
    if ! drive "$MR_PORT" 1 "$WORK/mailroot-probe.log" >/dev/null; then
        log "mailroot: listens but did not accept a test message"
        return 1
    fi
    return 0
}

# ---- main ----------------------------------------------------------------------------

need_root
install_postfix
for p in $PF_ACCEPT_PORT $SINK_PORT $PF_RELAY_PORT $CEILING_PORT; do
    port_free "$p" || { echo "compare.sh: port 127.0.0.1:$p is busy" >&2; exit 1; }
done

log "work dir $WORK; $SESSIONS sessions x $MESSAGES messages x $SIZE bytes, $ROUNDS rounds"
pf_instance accept $PF_ACCEPT_PORT accept || exit 1
PF_ACCEPT=$PF_ETC
pf_instance relay $PF_RELAY_PORT relay || exit 1
PF_RELAY=$PF_ETC
if start_mailroot; then MR_AVAILABLE=1; fi

# Warm-up (not counted): start Postfix's smtpd/cleanup processes, fault in binaries.
log "warm-up ($WARMUP_MESSAGES messages per target)"
drive $PF_ACCEPT_PORT "$WARMUP_MESSAGES" "$WORK/warm-accept.log" >/dev/null
pf_empty_queue "$PF_ACCEPT"
start_sink $SINK_PORT "$WARMUP_MESSAGES" "$WORK/warm-sink.log"
drive $PF_RELAY_PORT "$WARMUP_MESSAGES" "$WORK/warm-relay.log" >/dev/null
wait "$SINK_PID" 2>/dev/null
if [[ $MR_AVAILABLE == 1 ]]; then
    drive $MR_PORT "$WARMUP_MESSAGES" "$WORK/warm-mailroot.log" >/dev/null
fi

LT=$TARGET_DIR/release/mailroot-loadtest
if [[ $LOADTEST == 1 && ! -x $LT ]]; then
    (cd "$REPO" && cargo build --release -p mailroot-loadtest >"$WORK/build-lt.log" 2>&1) || LOADTEST=0
fi

BUSY_BEFORE=$(cpu_busy)
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
log "machine busy before the rounds: ${BUSY_BEFORE}% CPU, loadavg $LOAD_BEFORE"
for ((round = 1; round <= ROUNDS; round++)); do
    log "round $round/$ROUNDS"

    # (a) Postfix, durable accept only.
    c0=$(tree_ticks "$(pf_master "$PF_ACCEPT")")
    if secs=$(drive $PF_ACCEPT_PORT "$MESSAGES" "$WORK/r$round-accept.log"); then
        c1=$(tree_ticks "$(pf_master "$PF_ACCEPT")")
        record postfix-accept "$round" "$(rate "$MESSAGES" "$secs")"
        record cpu-postfix-accept "$round" "$(cpu_ms_per_msg "$c0" "$c1" "$MESSAGES")" "CPU ms/msg"
    fi
    pf_empty_queue "$PF_ACCEPT"

    # (b) mailroot.
    if [[ $MR_AVAILABLE == 1 ]]; then
        if ! kill -0 "$MR_PID" 2>/dev/null; then
            log "mailroot: process exited"
            MR_AVAILABLE=0
        else
            c0=$(tree_ticks "$MR_PID")
            if secs=$(drive $MR_PORT "$MESSAGES" "$WORK/r$round-mailroot.log"); then
                c1=$(tree_ticks "$MR_PID")
                record mailroot "$round" "$(rate "$MESSAGES" "$secs")"
                record cpu-mailroot "$round" "$(cpu_ms_per_msg "$c0" "$c1" "$MESSAGES")" "CPU ms/msg"
            fi
        fi
    fi

    # (c) Postfix relaying into smtp-sink: accept rate and end-to-end rate.
    start_sink $SINK_PORT "$MESSAGES" "$WORK/r$round-relay-sink.log"
    c0=$(tree_ticks "$(pf_master "$PF_RELAY")")
    t0=$(now)
    if secs=$(drive $PF_RELAY_PORT "$MESSAGES" "$WORK/r$round-relay.log"); then
        record postfix-relay-accept "$round" "$(rate "$MESSAGES" "$secs")"
        if wait "$SINK_PID"; then
            t1=$(now)
            c1=$(tree_ticks "$(pf_master "$PF_RELAY")")
            record postfix-relay-e2e "$round" \
                "$(rate "$MESSAGES" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")"
            record cpu-postfix-relay-e2e "$round" "$(cpu_ms_per_msg "$c0" "$c1" "$MESSAGES")" \
                "CPU ms/msg"
        else
            log "  smtp-sink did not get all $MESSAGES messages within ${RUN_TIMEOUT}s"
        fi
    fi
    stop_sink
    pf_empty_queue "$PF_RELAY"

    # (d) Ceiling: smtp-source straight into smtp-sink.
    start_sink $CEILING_PORT 0 "$WORK/r$round-ceiling-sink.log"
    if secs=$(drive $CEILING_PORT "$MESSAGES" "$WORK/r$round-ceiling.log"); then
        record ceiling "$round" "$(rate "$MESSAGES" "$secs")"
    fi
    stop_sink

    # (e) Optional: mailroot-loadtest with pipelining and 20 messages per connection.
    if [[ $LOADTEST == 1 ]]; then
        for t in postfix-accept:$PF_ACCEPT_PORT mailroot:$MR_PORT; do
            [[ ${t%%:*} == mailroot && $MR_AVAILABLE != 1 ]] && continue
            out=$(timeout "$RUN_TIMEOUT" "$LT" source --server "127.0.0.1:${t##*:}" \
                --sessions "$SESSIONS" --messages "$MESSAGES" --size "$SIZE" --pipelining \
                --from "$FROM" --to "$TO" --max-seconds "$RUN_TIMEOUT" --json)
            r=$(sed -n 's/.*"msgs_per_s":\([0-9.]*\).*/\1/p' <<<"$out")
            [[ -n $r ]] && record "loadtest-${t%%:*}" "$round" "$r"
            echo "$out" >>"$WORK/loadtest.jsonl"
        done
        pf_empty_queue "$PF_ACCEPT"
    fi
done

if [[ $IDLE_CONNECTIONS -gt 0 ]]; then
    log "idle-connection memory probe ($IDLE_CONNECTIONS connections)"
    idle_probe postfix $PF_ACCEPT_PORT "$IDLE_CONNECTIONS" "" "$PF_ACCEPT"
    if [[ $MR_AVAILABLE == 1 ]] && kill -0 "$MR_PID" 2>/dev/null; then
        idle_probe mailroot $MR_PORT "$IDLE_CONNECTIONS" "$MR_PID"
    fi
fi

# ---- report --------------------------------------------------------------------------

PFA=$(median postfix-accept)
for line in "${IDLE_REPORT[@]}"; do IDLE_LINES+="$line"$'\n'; done
MR=$(median mailroot)
echo
echo "== perf/compare.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $SESSIONS sessions, $MESSAGES msgs, -l $SIZE, median of $ROUNDS"
echo "machine: $(nproc) cpus, $(free -h | awk '/^Mem:/ { print $2 }') RAM, kernel $(uname -r)," \
    "queue fs $(findmnt -no FSTYPE,SOURCE -T "$WORK" | tr -s ' ')"
echo "background: ${BUSY_BEFORE}% CPU busy before the rounds (loadavg $LOAD_BEFORE);" \
    "loadavg after: $(cut -d' ' -f1-3 /proc/loadavg)"
[[ -n ${PF_MAIN_CF_EXTRA:-} ]] && echo "postfix main.cf extra: $PF_MAIN_CF_EXTRA"
echo "driver: smtp-source -s $SESSIONS -m $MESSAGES -l $SIZE -c -f $FROM -t $TO 127.0.0.1:PORT" \
    "(one message per connection)"
printf '%-24s %12s   %s\n' target "msgs/s" "rounds"
for l in postfix-accept postfix-relay-accept postfix-relay-e2e ceiling \
    loadtest-postfix-accept loadtest-mailroot; do
    [[ $(median "$l") == n/a ]] && continue
    printf '%-24s %12s   %s\n' "$l" "$(median "$l")" "$(all_rounds "$l")"
done
echo "server CPU per message (user+system of the server's process tree, ms; robust to other load):"
for l in cpu-postfix-accept cpu-postfix-relay-e2e cpu-mailroot; do
    [[ $(median "$l") == n/a ]] && continue
    printf '%-24s %12s   %s\n' "$l" "$(median "$l")" "$(all_rounds "$l")"
done
printf '%s' "${IDLE_LINES:-}"
if [[ $MR == n/a ]]; then
    echo "mailroot: not available"
else
    printf '%-24s %12s   %s\n' mailroot "$MR" "$(all_rounds mailroot)"
    if [[ $PFA != n/a ]]; then
        echo "ratio mailroot / postfix-accept: $(awk -v a="$MR" -v b="$PFA" 'BEGIN { printf "%.2f\n", a / b }')"
    fi
fi
if [[ -s $WORK/loadtest.jsonl ]]; then
    echo "mailroot-loadtest runs (JSON, latencies in microseconds):"
    cat "$WORK/loadtest.jsonl"
fi
