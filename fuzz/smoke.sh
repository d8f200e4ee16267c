#!/bin/sh
# Runs every fuzz target for a short time (default 10 s each) on a copy of the committed
# seed corpus, so the corpus in git stays small. Needs cargo-fuzz
# (`cargo install cargo-fuzz`); nightly features come from RUSTC_BOOTSTRAP=1.
# Usage: fuzz/smoke.sh [seconds]
set -eu
secs="${1:-10}"
cd "$(dirname "$0")"
# An assignment, so that `set -e` stops here if cargo-fuzz is missing (a loop over a
# failed command substitution would run nothing and pass).
targets="$(cargo fuzz list)"
[ -n "$targets" ] || { echo "fuzz/smoke.sh: no fuzz targets listed" >&2; exit 1; }
for target in $targets; do
    work="$(mktemp -d)"
    cp corpus/"$target"/* "$work"/ 2>/dev/null || true
    RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" "$work" -- -max_total_time="$secs"
    rm -rf "$work"
done
