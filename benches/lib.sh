# Helpers shared by the benchmark scripts (exporter.sh, node.sh, soak.sh, tls.sh).
# Sourced, never run: `source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"`.
#
# Messages are prefixed with the sourcing script's name. Nothing here sets
# traps or options: each script keeps its own `set -euo pipefail` and its
# own cleanup.
# shellcheck shell=bash

bench_name=${0##*/}

die() {
    echo "$bench_name: $*" >&2
    exit 1
}

# need TOOL...: exits unless every tool is on PATH.
need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is needed"
    done
}

# Cargo's target directory: CARGO_TARGET_DIR when set (several checkouts
# building at once each use their own), else the workspace's target/.
target_dir() {
    echo "${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target}"
}

# The cgroup v2 mount with pressure files (/sys/fs/cgroup/unified on a
# hybrid host, /sys/fs/cgroup on a unified one).
cgroup2_mount() {
    local m
    for m in /sys/fs/cgroup/unified /sys/fs/cgroup; do
        if [[ -f $m/cgroup.procs && -f $m/cpu.pressure ]]; then
            echo "$m"
            return 0
        fi
    done
    die "no cgroup v2 mount with pressure files"
}

# One line on the machine: when, where, and how busy it is already.
machine_line() {
    echo "== $(date -u +%FT%TZ) on $(hostname), $(nproc) CPUs; load:$(uptime | sed 's/.*load average//')"
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# Open descriptors of a process.
fd_count() {
    local fds=("/proc/$1/fd/"*)
    echo "${#fds[@]}"
}

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    local stat
    stat=$(<"/proc/$1/stat")
    stat=${stat##*) } # fields from 3 (state) on; comm may hold spaces
    awk '{ print $12 + $13 }' <<<"$stat"
}

# wrk latency ("123.45us", "1.20ms", "2.00s", "1.50m") in microseconds.
to_us() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /m$/) m = 60e6;
        else if (v ~ /s$/) m = 1e6; else m = 1
        printf "%.0f", n * m
    }'
}

# run_wrk OUT WRK-ARGS...: runs wrk pinned to $CLIENT_CPU (default 1),
# its output in OUT; warns of errors; prints "requests rps p50_us p99_us".
run_wrk() {
    local out=$1
    shift
    taskset -c "${CLIENT_CPU:-1}" wrk "$@" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    if grep -qE 'Non-2xx|Socket errors' "$out"; then
        echo "$bench_name: wrk saw errors:" >&2
        grep -E 'Non-2xx|Socket errors' "$out" >&2
    fi
    local requests rps p50 p99
    requests=$(awk '/ requests in / { print $1 }' "$out")
    rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
    p50=$(awk '$1 == "50%" { print $2 }' "$out")
    p99=$(awk '$1 == "99%" { print $2 }' "$out")
    [[ -n $requests && $requests -gt 0 ]] || { cat "$out" >&2; echo "$bench_name: wrk served nothing" >&2; return 1; }
    echo "$requests $rps $(to_us "${p50:-0us}") $(to_us "${p99:-0us}")"
}

# True when something accepts connections on 127.0.0.1:PORT.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A TCP port on 127.0.0.1 nobody listens on (the server is told to use it).
free_port() {
    local port i
    for ((i = 0; i < 200; i++)); do
        port=$((20000 + RANDOM % 10000))
        if ! listening "$port"; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# wait_listening PID PORT LOG: waits (10 s at most) until PORT accepts
# connections; fails, printing LOG, if PID exits first.
wait_listening() {
    local pid=$1 port=$2 log=$3 i
    for ((i = 0; i < 100; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "$bench_name: the server exited at start:" >&2
            cat "$log" >&2
            return 1
        fi
        listening "$port" && return 0
        sleep 0.1
    done
    echo "$bench_name: nothing listens on $port after 10 s" >&2
    return 1
}

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it if it is our child.
stop_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# stop_with_children PID: stop_pid, then its children of the moment (a
# loop's sleep or curl), which would otherwise outlive it for a while.
stop_with_children() {
    local children child
    children=$(ps -o pid= --ppid "$1" 2>/dev/null || true)
    stop_pid "$1"
    for child in $children; do
        kill -TERM "$child" 2>/dev/null || true
    done
}

# remove_tree DIR: removes a cgroup tree (or any tree of empty directories),
# deepest first; cgroups must have no processes left.
remove_tree() {
    [[ -n $1 && -d $1 ]] || return 0
    find "$1" -depth -type d -exec rmdir {} + 2>/dev/null || true
}
