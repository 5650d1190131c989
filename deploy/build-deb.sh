#!/usr/bin/env bash
# Build the mailroot Debian package with dpkg-deb from a staged tree.
#
#   deploy/build-deb.sh [--bin PATH] [--out DIR]
#
# --bin: the mailroot binary to package (default: `cargo build --release` and
#        target/release/mailroot; tests pass the debug binary they already built).
# --out: where the .deb goes (default: target/debian). Prints the .deb's path last.
#
# Why dpkg-deb and not cargo-deb: dpkg-deb is on every Debian machine, so CI builds the
# package without compiling a packaging tool first, and the maintainer scripts, the unit
# and the default configuration are plain files in deploy/debian/ that a reader can check
# against Debian policy. Layout:
#   /usr/sbin/mailroot                          the binary
#   /usr/lib/systemd/system/mailroot.service    the unit (deploy/debian/mailroot.service)
#   /etc/mailroot/mailroot.toml                 the configuration (a conffile)
#   /usr/share/doc/mailroot/{README.md,copyright}
# The postinst creates the `mailroot` user and /var/spool/mailroot/{Queue,Pickup,Drop,
# Badmail,Logs}. No /usr/sbin/sendmail: see README.md "Installing".
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(dirname "$HERE")"
BIN=""
OUT="$REPO/target/debian"
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) BIN="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        *) echo "usage: $0 [--bin PATH] [--out DIR]" >&2; exit 2 ;;
    esac
done
if [ -z "$BIN" ]; then
    (cd "$REPO" && cargo build --release --bin mailroot)
    BIN="${CARGO_TARGET_DIR:-$REPO/target}/release/mailroot"
fi
[ -x "$BIN" ] || { echo "build-deb: $BIN is not an executable" >&2; exit 1; }

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -1)
ARCH=$(dpkg --print-architecture)
# The newest glibc symbol version the binary needs (what dpkg-shlibdeps would compute).
GLIBC=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)

STAGE=$(mktemp -d)
chmod 0755 "$STAGE" # the package's ./ entry
trap 'rm -rf "$STAGE"' EXIT
install -D -m 0755 "$BIN" "$STAGE/usr/sbin/mailroot"
install -D -m 0644 "$HERE/debian/mailroot.service" \
    "$STAGE/usr/lib/systemd/system/mailroot.service"
install -D -m 0644 "$HERE/debian/mailroot.toml" "$STAGE/etc/mailroot/mailroot.toml"
install -D -m 0644 "$REPO/README.md" "$STAGE/usr/share/doc/mailroot/README.md"
cat >"$STAGE/usr/share/doc/mailroot/copyright" <<TXT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: mailroot
License: MIT OR Apache-2.0
TXT
install -d -m 0755 "$STAGE/DEBIAN"
for s in postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$s" "$STAGE/DEBIAN/$s"
done
echo /etc/mailroot/mailroot.toml >"$STAGE/DEBIAN/conffiles"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<TXT
Package: mailroot
Version: $VERSION
Architecture: $ARCH
Maintainer: mailroot developers <mailroot@localhost>
Installed-Size: $SIZE
Depends: libc6 (>= $GLIBC), libgcc-s1, passwd
Section: mail
Priority: optional
Description: high-throughput SMTP relay (a re-creation of the IIS SMTP Service)
 mailroot accepts mail over SMTP into a durable spool and relays it by MX or a
 smart host, with the IIS Mailroot folder (Queue, Pickup, Drop, Badmail).
 Started as root by systemd, it binds port 25 and runs as the mailroot user.
TXT
mkdir -p "$OUT"
DEB="$OUT/mailroot_${VERSION}_${ARCH}.deb"
# --root-owner-group: every file root:root whoever builds; -Zgzip: quick, and read by
# every dpkg.
dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$DEB" >/dev/null
echo "$DEB"
