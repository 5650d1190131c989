#!/usr/bin/env bash
# Build the mailroot .deb and install it with the real dpkg into a throwaway root, then
# check what an operator would: files, the `mailroot` user, the Mailroot folder's owner
# and modes, `check-config` on the installed configuration, the unit under
# `systemd-analyze verify`, and the installed binary started as root (chroot into the
# throwaway root) dropping to the mailroot user and accepting a message on loopback.
# Finally a purge. Prints "N passed, 0 failed" and exits 0 when every check held.
#
#   deploy/test-install.sh [--bin PATH] [--debootstrap]
#       (root only; exit 77 = cannot run here)
#
# How, and its limits (README.md "Installing"):
# - `dpkg --root=R --force-script-chrootless` unpacks into R and runs the maintainer
#   scripts on the host with DPKG_ROOT=R (they prefix every path; the user is added with
#   `useradd --prefix R`). R has no Debian base system, so dependencies are not checked
#   (`--force-depends`) and systemctl is not run (the scripts skip it under DPKG_ROOT).
#   A full chroot (debootstrap) would need a mirror download on every CI run.
# - The start: the binary's shared libraries are copied into R (from `ldd`), and
#   `chroot R /usr/sbin/mailroot serve` runs with R's /etc/passwd, so the drop really
#   goes to the user the postinst created. The installed configuration is used with its
#   two ports moved to free ones (port 25 may be taken on a shared machine).
# - --debootstrap: R is instead a minimal Debian made by debootstrap from the mirror this
#   machine's apt uses (about a minute, and a download: not in CI), and dpkg runs inside
#   it (`chroot R dpkg -i`), so the maintainer scripts take their ordinary path: plain
#   useradd, dependencies checked. Its util-linux provides setpriv.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN=""
DEBOOTSTRAP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --debootstrap) DEBOOTSTRAP=1; shift ;;
        *) echo "usage: $0 [--bin PATH] [--debootstrap]" >&2; exit 2 ;;
    esac
done
if [ "$(id -u)" != 0 ]; then
    echo "test-install: skipped: dpkg --root, chown and chroot need root" >&2
    exit 77
fi
for tool in dpkg dpkg-deb useradd chroot python3 objdump; do
    command -v "$tool" >/dev/null || { echo "test-install: skipped: no $tool" >&2; exit 77; }
done
if [ -n "$DEBOOTSTRAP" ] && ! command -v debootstrap >/dev/null; then
    echo "test-install: skipped: --debootstrap needs debootstrap (apt-get install debootstrap)" >&2
    exit 77
fi

WORK=$(mktemp -d)
chmod 0755 "$WORK"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill -KILL "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); echo "FAILED: $*"; }
check() { # description command...
    local what="$1"; shift
    if "$@"; then ok "$what"; else bad "$what"; fi
}

# 1. Build.
if [ -n "$BIN" ]; then
    DEB=$("$HERE/build-deb.sh" --bin "$BIN" --out "$WORK" | tail -1)
else
    DEB=$("$HERE/build-deb.sh" --out "$WORK" | tail -1)
fi
check "package built: $(basename "$DEB")" test -s "$DEB"
check "control names the package" sh -c "dpkg-deb --field '$DEB' Package | grep -qx mailroot"
check "conffile declared" sh -c "dpkg-deb --ctrl-tarfile '$DEB' | tar -xO ./conffiles \
    | grep -qx /etc/mailroot/mailroot.toml"

R="$WORK/root"
if [ -n "$DEBOOTSTRAP" ]; then
# 2-3. A minimal Debian, and dpkg run inside it.
. /etc/os-release
# The mirror apt already uses for this release's main component.
MIRROR=$(apt-get indextargets --format '$(URI)' 'Identifier: Packages' 2>/dev/null \
    | grep "/dists/$VERSION_CODENAME/main/" | head -1 | sed 's|/dists/.*||')
if debootstrap --variant=minbase "$VERSION_CODENAME" "$R" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
then ok "debootstrap $VERSION_CODENAME (minbase)"
else bad "debootstrap"; tail -5 "$WORK/debootstrap.log"; echo "$passed passed, $failed failed"; exit 1
fi
cp "$DEB" "$R/tmp/mailroot.deb"
DPKG=(chroot "$R" dpkg)
DEB_IN_R=/tmp/mailroot.deb
else
# 2. A throwaway root with what a fresh Debian has for accounts, and an empty dpkg database.
mkdir -p "$R/etc" "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
printf 'root:x:0:0:root:/root:/bin/bash\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n' \
    >"$R/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$R/etc/group"
printf 'root:*:19000:0:99999:7:::\nnobody:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:*::\nnogroup:*::\n' >"$R/etc/gshadow"
chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
[ -f /etc/login.defs ] && cp /etc/login.defs "$R/etc/login.defs"

# 3. Install with the real dpkg.
DPKG=(dpkg --root="$R" --force-script-chrootless --force-depends --log="$WORK/dpkg.log")
DEB_IN_R="$DEB"
fi
if "${DPKG[@]}" -i "$DEB_IN_R" >"$WORK/install.out" 2>&1; then
    ok "dpkg -i into the throwaway root"
else
    bad "dpkg -i into the throwaway root"; cat "$WORK/install.out"
fi
check "dpkg status: install ok installed" sh -c \
    "dpkg --root='$R' -s mailroot | grep -qx 'Status: install ok installed'"

# 4. Files, user, folders.
mode_owner() { stat -c '%a %u:%g' "$1"; }
check "binary /usr/sbin/mailroot" test -x "$R/usr/sbin/mailroot"
check "unit /usr/lib/systemd/system/mailroot.service" \
    test -f "$R/usr/lib/systemd/system/mailroot.service"
check "docs" test -f "$R/usr/share/doc/mailroot/README.md"
check "no /usr/sbin/sendmail (left to the MTA the system has)" test ! -e "$R/usr/sbin/sendmail"
line=$(grep '^mailroot:' "$R/etc/passwd" || true)
uid=$(echo "$line" | cut -d: -f3)
gid=$(awk -F: '$1 == "mailroot" { print $3 }' "$R/etc/group")
check "user mailroot created: $line" test -n "$line"
check "a system uid (< 1000): $uid" test "${uid:-1000}" -lt 1000 -a "${uid:-0}" -gt 0
check "home /var/spool/mailroot, no login shell" \
    test "$(echo "$line" | cut -d: -f6-7)" = "/var/spool/mailroot:/usr/sbin/nologin"
check "primary group mailroot" test "$(echo "$line" | cut -d: -f4)" = "$gid"
check "config root:mailroot 0640" \
    test "$(mode_owner "$R/etc/mailroot/mailroot.toml")" = "640 0:$gid"
for spec in ":755" "/Queue:700" "/Pickup:2770" "/Drop:750" "/Badmail:750" "/Logs:750"; do
    dir="/var/spool/mailroot${spec%:*}"
    check "$dir ${spec#*:} mailroot:mailroot" \
        test "$(mode_owner "$R$dir")" = "${spec#*:} $uid:$gid"
done

# 5. The installed binary accepts the installed configuration.
if "$R/usr/sbin/mailroot" check-config --config "$R/etc/mailroot/mailroot.toml" \
    >"$WORK/effective.toml" 2>"$WORK/check.err"; then
    ok "check-config on the installed configuration"
else
    bad "check-config on the installed configuration: $(cat "$WORK/check.err")"
fi
check "effective config drops to mailroot" grep -qx 'user = "mailroot"' "$WORK/effective.toml"

# 6. The unit, as systemd reads it (ExecStart pointed into the throwaway root).
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$WORK/unit"
    sed "s|/usr/sbin/mailroot|$R/usr/sbin/mailroot|" \
        "$R/usr/lib/systemd/system/mailroot.service" >"$WORK/unit/mailroot.service"
    if systemd-analyze verify "$WORK/unit/mailroot.service" >"$WORK/verify.out" 2>&1; then
        ok "systemd-analyze verify"
    else
        bad "systemd-analyze verify: $(cat "$WORK/verify.out")"
    fi
    score=$(systemd-analyze security --offline=yes --root="$R" mailroot.service 2>/dev/null \
        | sed -n 's/.*Overall exposure level for mailroot.service: //p' || true)
    echo "info: systemd-analyze security: ${score:-(not available)}"
else
    echo "info: systemd-analyze not installed: unit not verified"
fi

# 7. Start as root in the throwaway root; it must drop to mailroot and accept mail. With
# util-linux's setpriv (copied in), under the unit's capability bounding set and
# NoNewPrivileges, as systemd would start it.
LAUNCH=()
if [ -n "$DEBOOTSTRAP" ]; then
    LAUNCH=(/usr/bin/setpriv --no-new-privs --bounding-set=-all,+net_bind_service,+setuid,+setgid,+chown,+dac_read_search)
elif command -v setpriv >/dev/null; then
    install -D -m 0755 "$(command -v setpriv)" "$R/usr/bin/setpriv"
    LAUNCH=(/usr/bin/setpriv --no-new-privs --bounding-set=-all,+net_bind_service,+setuid,+setgid,+chown,+dac_read_search)
fi
[ -n "$DEBOOTSTRAP" ] || for exe in "$R/usr/sbin/mailroot" ${LAUNCH:+"$R/usr/bin/setpriv"}; do
    while read -r lib; do
        mkdir -p "$R$(dirname "$lib")"
        cp -L "$lib" "$R$lib"
    done < <(ldd "$exe" | grep -o '/[^ ]*' | sort -u)
done
read -r port aport < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
sed -e "s|127.0.0.1:25\"|127.0.0.1:$port\"|" -e "s|127.0.0.1:8025\"|127.0.0.1:$aport\"|" \
    "$R/etc/mailroot/mailroot.toml" >"$R/etc/mailroot/test.toml"
printf 'hostname = "install-test.localdomain"\n%s\n' "$(cat "$R/etc/mailroot/test.toml")" \
    >"$R/etc/mailroot/test.toml"
[ ${#LAUNCH[@]} -gt 0 ] && echo "info: started as root under setpriv with the unit's bounding set"
RUST_LOG=info chroot "$R" "${LAUNCH[@]}" /usr/sbin/mailroot serve --config /etc/mailroot/test.toml \
    >"$WORK/serve.log" 2>&1 &
SERVER_PID=$!
if python3 - "$port" <<'PY'
import smtplib, sys, time
port = int(sys.argv[1])
deadline = time.time() + 90
while True:
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=60)
        code, banner = s.ehlo()
        if b"install-test.localdomain" not in banner:
            sys.exit("port %d answered by someone else: %r" % (port, banner))
        break
    except (OSError, smtplib.SMTPServerDisconnected):
        if time.time() > deadline:
            sys.exit("no listener on %d" % port)
        time.sleep(0.1)
s.sendmail("operator@localhost", ["postmaster@localhost"],
           "Subject: installed\r\n\r\nfrom the installed package\r\n")
s.quit()
PY
then ok "installed relay accepted a message (python smtplib)"
else bad "installed relay accepted a message"; cat "$WORK/serve.log"
fi
threads=0
wrong=0
for t in /proc/"$SERVER_PID"/task/*; do
    threads=$((threads + 1))
    ids=$(awk '/^Uid:/ { print $2, $3, $4, $5 }' "$t/status")
    [ "$ids" = "$uid $uid $uid $uid" ] || wrong=$((wrong + 1))
done
check "all $threads threads run as uid $uid (real, effective, saved, fs)" \
    test "$threads" -gt 1 -a "$wrong" = 0
dropped=""
for _ in $(seq 1 900); do
    dropped=$(find "$R/var/spool/mailroot/Drop" -name '*.eml' -print -quit)
    [ -n "$dropped" ] && break
    sleep 0.1
done
check "message delivered into Drop/" test -n "$dropped"
check "Drop file owned by mailroot" test "$(stat -c %u "${dropped:-/}")" = "$uid"
check "spool segments owned by mailroot" sh -c \
    "! find '$R/var/spool/mailroot/Queue' ! -uid $uid | grep -q ."
kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
check "SIGTERM: exit 0" test "$status" = 0
[ "$status" = 0 ] || tail -20 "$WORK/serve.log"

# 8. Purge: package files and the Mailroot folder gone, the user kept.
rm -f "$R/etc/mailroot/test.toml"
"${DPKG[@]}" --purge mailroot >"$WORK/purge.out" 2>&1 || cat "$WORK/purge.out"
check "purge removed the binary" test ! -e "$R/usr/sbin/mailroot"
check "purge removed /var/spool/mailroot" test ! -e "$R/var/spool/mailroot"
check "purge kept the mailroot user" grep -q '^mailroot:' "$R/etc/passwd"

if [ "$failed" != 0 ]; then
    echo "--- dpkg output ---"; cat "$WORK/install.out" 2>/dev/null || true
    echo "--- server log (tail) ---"; tail -40 "$WORK/serve.log" 2>/dev/null || true
fi
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
