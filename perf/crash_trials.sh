#!/usr/bin/env bash
# perf/crash_trials.sh: the full crash-trial run of issue 12 on the release binary.
#
# Builds `mailroot` (release) and runs perf/crash_trials.py: by default 100 trials of load
# from 4 smtplib clients, SIGKILL at a random instant / inside a delivery / at a segment
# roll (seal), a torn-write on the newest segment in 4 of every 5 trial groups, restart on
# the same Mailroot folder and drain to an aiosmtpd sink; it prints one line per trial and
# the totals (acknowledged, delivered, duplicated, lost, corrupt), and exits 1 when any
# trial lost or corrupted a message. See the script's docstring for the exact definitions.
#
# Usage: perf/crash_trials.sh [crash_trials.py options, e.g. --trials 20 --seed 7]
# Output: stdout, and the JSON of every trial in $OUT (default /tmp/crash_trials.json).
# Safety: loopback only; every trial bounded in messages and seconds; the server is
# stopped when the script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c 'import aiosmtpd' 2>/dev/null || { echo "crash_trials.sh: needs aiosmtpd (pip install aiosmtpd)" >&2; exit 2; }
cargo build --release --bin mailroot >&2
BIN="${CARGO_TARGET_DIR:-target}/release/mailroot"
OUT=${OUT:-/tmp/crash_trials.json}
exec python3 perf/crash_trials.py --binary "$BIN" --json-out "$OUT" "$@"
