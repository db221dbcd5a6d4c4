#!/usr/bin/env bash
# Runs every psi-core example against the real kernel and checks what it
# printed, as CI does (scripts/test.sh): `bash psi-core/examples/run.sh`.
# Needs root and a writable cgroup v2 mount (shed and trigger run in fresh
# cgroups with busy loops), and curl (serve). About 15 s.
set -euo pipefail
cd "$(dirname "$0")/../.."

cargo build -p psi-core --all-features --examples --locked
bin="${CARGO_TARGET_DIR:-target}/debug/examples"

root=""
for dir in /sys/fs/cgroup/unified /sys/fs/cgroup; do
  if [ -e "$dir/cgroup.procs" ] && [ -e "$dir/cpu.pressure" ] && [ -w "$dir/cgroup.procs" ]; then
    root=$dir
    break
  fi
done
if [ -z "$root" ]; then
  echo "no writable cgroup v2 mount with pressure files (run as root)" >&2
  exit 1
fi

cgroups=()
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
  for cg in "${cgroups[@]}"; do
    # A killed process leaves its cgroup a moment after it is reaped.
    for _ in 1 2 3 4 5 6 7 8 9 10; do rmdir "$cg" 2>/dev/null && break; sleep 0.1; done
  done
  cgroups=()
}
trap cleanup EXIT

# fresh NAME: makes a cgroup for one example, in $cg.
fresh() {
  cg="$root/psi-example-$1-$$"
  mkdir "$cg"
  cgroups+=("$cg")
}
# in_cgroup CGROUP COMMAND...: becomes COMMAND inside CGROUP (call it in a
# subshell; one pid from start to end, so that it can be killed by it).
in_cgroup() {
  local cg=$1
  shift
  exec sh -c 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"' _ "$cg" "$@"
}
# busy CGROUP N: N busy loops in CGROUP, stopped by cleanup or stop_busy.
busy() {
  for ((i = 0; i < $2; i++)); do
    (in_cgroup "$1" sh -c 'while :; do :; done') &
    pids+=($!)
  done
}
stop_busy() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  pids=()
}
# expect LOG PATTERN WHAT: fails unless LOG has a line matching PATTERN.
expect() {
  if ! grep -Eq -e "$2" "$1"; then
    echo "example $3: no line matching /$2/ in its output:" >&2
    cat "$1" >&2
    exit 1
  fi
}
log=$(mktemp)
trap 'cleanup; rm -f "$log"' EXIT

echo "--- read: the system and this process's cgroup"
"$bin/read" | tee "$log"
expect "$log" '^  cpu +some avg10=' read

echo "--- rate: a kept-open file, sampled"
"$bin/rate" /proc/pressure cpu 250ms 3 | tee "$log"
[ "$(grep -c 'stalled over the last' "$log")" = 3 ] || { echo "rate: not 3 samples" >&2; exit 1; }

echo "--- no_std: parsing with core only"
"$bin/no_std" /proc/pressure/io | tee "$log"
expect "$log" '^saved readings: some 50.00% stalled over 1 s$' no_std
expect "$log" '^/proc/pressure/io: some avg10=[0-9.]+% total=[0-9.]+s' no_std

echo "--- serve: the collector in a registry, one scrape"
"$bin/serve" 0 1 >"$log" &
serve=$!
for _ in $(seq 50); do grep -q '^listening on' "$log" && break; sleep 0.1; done
port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$log")
body=$(curl -sf "http://127.0.0.1:$port/metrics")
wait "$serve"
cat "$log"
grep -E '^(psi_cpu_waiting_seconds_total|example_scrapes_total|psi_pressure_available)' <<<"$body"
grep -q '^psi_cpu_waiting_seconds_total{target="self"} [0-9.]*$' <<<"$body"
grep -q '^example_scrapes_total 1$' <<<"$body"
if command -v promtool >/dev/null; then promtool check metrics <<<"$body"; fi

echo "--- shed: refuses work while its cgroup's cpu some is above 20%"
fresh shed
(in_cgroup "$cg" "$bin/shed" 6s 20 500ms) >"$log" &
shed=$!
sleep 2
busy "$cg" 3
sleep 2
stop_busy
wait "$shed"
cat "$log"
expect "$log" '^accepted [1-9][0-9]*, shed [1-9][0-9]*,' shed
expect "$log" '-> shedding$' shed
cleanup

echo "--- trigger: woken by the kernel when its cgroup stalls"
fresh trigger
busy "$cg" 4
(in_cgroup "$cg" "$bin/trigger" "" "cpu some 500ms 2s" 1 20s) | tee "$log"
expect "$log" '^fired: cpu some 500ms 2s after [0-9]+ ms$' trigger
cleanup
