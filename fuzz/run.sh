#!/usr/bin/env bash
# Run the fuzz targets: `fuzz/run.sh TARGET[,TARGET...]|all SECONDS` (see fuzz/README.md).
# With RUNS=N in the environment a target also stops after N executions (whichever of
# SECONDS and N comes first). PROFILE=dev builds unoptimised (quicker to build, slower to
# run: what CI uses for its few seconds per target); the default is release.
#
# Engine: cargo-fuzz + libFuzzer (libfuzzer-sys) on the stable toolchain, built with
# `-s none` (coverage instrumentation, no sanitizer: AddressSanitizer needs nightly's
# -Zsanitizer). Installs cargo-fuzz from crates.io when it is missing. Each target runs for
# SECONDS on one core, starting from its committed seeds (fuzz/corpus/TARGET, read-only)
# plus what earlier runs found (fuzz/corpus-new/TARGET, not committed). A crash leaves its
# input in fuzz/artifacts/TARGET/ and makes the script exit 1 after the other targets ran.
# Prints one summary line per target: executions, executions per second, outcome.
set -euo pipefail
cd "$(dirname "$0")"

if [ $# -ne 2 ]; then
    echo "usage: $0 TARGET[,TARGET...]|all SECONDS" >&2
    exit 2
fi
what=$1
secs=$2

all=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^mailroot-fuzz$')
if [ "$what" = all ]; then
    targets=$all
else
    targets=${what//,/ }
    for t in $targets; do
        if ! grep -qx "$t" <<<"$all"; then
            echo "unknown target $t; one of: all" $all >&2
            exit 2
        fi
    done
fi
profile=--release
if [ "${PROFILE:-release}" = dev ]; then
    profile=--dev
fi
runs=()
if [ -n "${RUNS:-}" ]; then
    runs=(-runs="$RUNS")
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz build -s none "$profile"

failed=0
mkdir -p corpus-new
for t in $targets; do
    mkdir -p "corpus-new/$t"
    log="corpus-new/$t.log"
    set +e
    cargo fuzz run -s none "$profile" "$t" "corpus-new/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        "${runs[@]}" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    if [ $rc -eq 0 ]; then
        outcome=ok
    else
        outcome="FAILED (exit $rc; see fuzz/$log and fuzz/artifacts/$t/)"
        failed=1
    fi
    took=$(sed -n 's/^Done \([0-9]*\) runs in \([0-9]*\) second.*/\2/p' "$log" | tail -1)
    printf '%-14s %6ss %12s execs %8s/s  %s\n' "$t" "${took:--}" "${execs:-?}" "${rate:-?}" "$outcome"
done
exit $failed
