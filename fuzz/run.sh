#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) with AddressSanitizer for a
# bounded time, from the seeds in fuzz/seeds/<target> (an extra corpus
# directory, never written to) and the growing corpus in fuzz/corpus/<target>,
# then prints what libFuzzer reports for each: runs, coverage, corpus size.
# Exits non-zero if any target crashed; the input is saved under
# fuzz/artifacts/<target>/ and the log under fuzz/logs/<target>.log.
#
#   bash fuzz/run.sh [seconds] [target...]
#
# Time budget. `seconds` (default 60; 0 runs nothing) is what `parse` gets:
# it is the parser of every scrape, with a SWAR fast road that must agree
# with the general parser, and the largest input space. Every other target
# gets half of it (at least 1 s): each is a small parser over short lines
# whose coverage levels off within seconds from its seeds. With the default
# that is 60 + 8 x 30 = 300 s of fuzzing, run FUZZ_JOBS targets at a time
# (default: one per CPU, as libFuzzer uses one), so about 150 s of wall time
# on the CI's 2 cores, plus the build (about 2 to 3 min from cold there).
# scripts/test.sh passes FUZZ_SECONDS, so the whole budget scales with it.
set -euo pipefail
seconds=${1:-60}
shift || true
jobs=${FUZZ_JOBS:-$(nproc)}
cd "$(dirname "$0")"

if [ "$seconds" = 0 ]; then
  echo "fuzz: 0 seconds, nothing to run"
  exit 0
fi

# cargo-fuzz's sanitizer flags need a nightly rustc; RUSTC_BOOTSTRAP lets the
# stable toolchain accept them (no -Zbuild-std needed).
export RUSTC_BOOTSTRAP=1

if [ $# -gt 0 ]; then
  targets=("$@")
else
  # The longest budget first, so that the lanes end together.
  mapfile -t targets < <(cargo fuzz list | grep -vx parse)
  targets=(parse "${targets[@]}")
fi
budget() {
  if [ "$1" = parse ]; then echo "$seconds"; else echo $(((seconds + 1) / 2)); fi
}
for target in "${targets[@]}"; do
  if [ ! -d "seeds/$target" ]; then
    echo "fuzz: no seed corpus in fuzz/seeds/$target" >&2
    exit 1
  fi
done

start=$SECONDS
# The lock file is honoured (cargo-fuzz has no --locked of its own), and
# every target is built once, in one cargo run, before any of them starts.
cargo fetch --locked
printf '==> building %s fuzz targets\n' "${#targets[@]}"
if [ $# -gt 0 ]; then
  for target in "${targets[@]}"; do cargo fuzz build "$target"; done
else
  cargo fuzz build
fi
build_s=$((SECONDS - start))

mkdir -p logs
# Runs one target; its summary line goes to logs/<target>.summary.
run_one() {
  local target=$1 secs log rc
  secs=$(budget "$target")
  log="logs/$target.log"
  mkdir -p "corpus/$target"
  rc=0
  # -timeout: an input slower than 10 s is a hang, a failure (libFuzzer's
  # default of 1200 s outlasts the whole budget).
  cargo fuzz run "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$secs" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || rc=$?
  # libFuzzer's own words: "Done N runs in S second(s)", the final "#N DONE"
  # status line, and the stat:: lines of -print_final_stats.
  local runs done_line
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  printf '%s %s %s %s\n' "$target" "$secs" "$rc" "${runs:-?}" >"logs/$target.summary"
  printf '<== %-13s %3ss  exit %s  %s runs  %s\n' "$target" "$secs" "$rc" "${runs:-?}" \
    "${done_line:-(no DONE line)}"
}

printf '==> fuzzing, %s target(s) at a time\n' "$jobs"
rm -f logs/*.summary
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  printf '==> %-13s %3ss\n' "$target" "$(budget "$target")"
  run_one "$target" &
done
wait

failed=()
printf '\n%-13s %8s %12s  %s\n' target seconds runs result
for target in "${targets[@]}"; do
  secs=$(budget "$target") rc="no summary" runs="?"
  [ -f "logs/$target.summary" ] && read -r _ secs rc runs <"logs/$target.summary"
  result=ok
  if [ "$rc" != 0 ]; then
    result="FAILED (exit $rc, log fuzz/logs/$target.log)"
    failed+=("$target")
  fi
  printf '%-13s %8s %12s  %s\n' "$target" "$secs" "$runs" "$result"
done
printf 'fuzz: build %ss, total %ss of wall time\n' "$build_s" "$((SECONDS - start))"

for target in "${failed[@]}"; do
  log="logs/$target.log"
  printf '\n==> %s failed (whole log: fuzz/%s); paths are relative to fuzz/\n' "$target" "$log"
  # The assertion's message, or the sanitizer's or libFuzzer's report (a
  # timeout, a leak, an out-of-memory), then the saved input.
  if grep -q 'panicked at' "$log"; then
    sed -n '/panicked at/,/^stack backtrace/p' "$log" | head -n 30
  else
    grep -E -A 12 '^(==[0-9]+==ERROR|ALARM|==[0-9]+== ERROR: libFuzzer)' "$log" | head -n 30 || true
  fi
  grep -E -A 2 '^(Failing input|Reproduce with):' "$log" || tail -n 30 "$log"
done
[ ${#failed[@]} = 0 ]
