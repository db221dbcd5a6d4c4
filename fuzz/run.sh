#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) with AddressSanitizer,
# from the seeds in fuzz/seeds/<target> and the growing corpus in
# fuzz/corpus/<target>. Exits non-zero on the first crash, whose input
# libFuzzer saves under fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh [seconds]
set -euo pipefail
seconds=${1:-60}
cd "$(dirname "$0")/.."

# cargo-fuzz's sanitizer flags need a nightly rustc; RUSTC_BOOTSTRAP lets the
# stable toolchain accept them (no -Zbuild-std needed).
export RUSTC_BOOTSTRAP=1
for target in parse decimal; do
  mkdir -p "fuzz/corpus/$target"
  printf '\n==> fuzz %s for %ss\n' "$target" "$seconds"
  cargo fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1
done
