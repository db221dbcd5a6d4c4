#!/usr/bin/env bash
# Node mode against the floor, at N container cgroups.
#
#   benches/node.sh                  # N = 10 100 1000 5000, DURATION=5 s per wrk run
#   NS="100 1000" DURATION=10 benches/node.sh
#
# For each N it builds, under the cgroup v2 mount, a real tree in the
# kubelet's systemd layout: N burstable pods, each with one container and
# its sandbox (pause), named in a log tree as the kubelet names them. It
# starts psi-exporter --mode node --level container on it (pinned to CPU
# $SERVER_CPU, wrk to $CLIENT_CPU) and measures, in the same run:
#   - the /metrics body: bytes plain and gzip, series;
#   - /metrics at one connection (wrk -c1 --latency): median and p99
#     latency, plain and with Accept-Encoding: gzip;
#   - CPU per scrape (utime+stime over each wrk run / requests), plain and gzip;
#   - VmRSS after the runs;
#   - the floor: pread-floor, which only preads every pressure file of the
#     same containers once per pass (CPU per pass), and the ratio to it.
# It prints a Markdown table. Needs root, cgroup v2, wrk, curl, taskset.
set -euo pipefail

NS=${NS:-"10 100 1000 5000"}
DURATION=${DURATION:-5}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib.sh
source benches/lib.sh
need cargo wrk curl taskset getconf
mount=$(cgroup2_mount)
[[ $(id -u) == 0 ]] || die "run as root (it makes cgroups)"

work=$(mktemp -d -t psi-node-bench.XXXXXX)
tree=""
server=""
cleanup() {
    if [[ -n $server ]]; then stop_pid "$server"; fi
    remove_tree "$tree"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT

machine_line
cargo build --release --quiet -p psi-exporter --bin psi-exporter
cargo build --release --quiet -p psi-benches --bin pread_floor
cp "$(target_dir)/release/psi-exporter" "$(target_dir)/release/pread_floor" "$work/"
CLK_TCK=$(getconf CLK_TCK)
port=$(free_port)

# wrk at one connection: "requests p50_us p99_us cpu_us_per_scrape".
measure() {
    local out=$work/wrk.out t0 t1 req p50 p99
    t0=$(cpu_ticks "$server")
    taskset -c "$CLIENT_CPU" wrk -t1 -c1 -d"${DURATION}s" --latency "$@" "http://127.0.0.1:$port/metrics" >"$out" 2>&1
    t1=$(cpu_ticks "$server")
    if grep -qE 'Non-2xx|Socket errors' "$out"; then cat "$out" >&2; exit 1; fi
    req=$(awk '/ requests in / { print $1 }' "$out")
    p50=$(to_us "$(awk '$1 == "50%" { print $2 }' "$out")")
    p99=$(to_us "$(awk '$1 == "99%" { print $2 }' "$out")")
    echo "$req $p50 $p99 $(awk -v d=$((t1 - t0)) -v r="$req" -v hz="$CLK_TCK" 'BEGIN { printf "%.0f", d * 1e6 / hz / r }')"
}

rows=()
for n in $NS; do
    tree=$mount/psi-bench-node-$$
    logs=$work/logs
    mkdir -p "$tree/kubepods.slice/kubepods-burstable.slice" "$logs/pods" "$logs/containers"
    qos=$tree/kubepods.slice/kubepods-burstable.slice
    for ((i = 0; i < n; i++)); do
        uid=$(printf '%08x-0000-4000-8000-%012x' "$i" "$i")
        cid=$(printf '%064x' $((i + 1)))
        sid=$(printf 'f%063x' $((i + 1)))
        pod=$qos/kubepods-burstable-pod${uid//-/_}.slice
        mkdir -p "$pod/cri-containerd-$cid.scope" "$pod/cri-containerd-$sid.scope" \
            "$logs/pods/bench_pod-${i}_$uid/app"
        ln -s /nonexistent "$logs/containers/pod-${i}_bench_app-$cid.log"
    done
    taskset -c "$SERVER_CPU" "$work/psi-exporter" --mode node --level container \
        --cgroup-root "$tree" --pod-logs-dir "$logs/pods" --container-logs-dir "$logs/containers" \
        --rescan-interval 3600s --listen "127.0.0.1:$port" --log-level warn >"$work/server.log" 2>&1 &
    server=$!
    wait_listening "$server" "$port" "$work/server.log"
    curl -fsS -o "$work/plain" "http://127.0.0.1:$port/metrics"
    curl -fsS -H 'Accept-Encoding: gzip' -o "$work/gzip" "http://127.0.0.1:$port/metrics"
    plain=$(stat -c %s "$work/plain")
    gz=$(stat -c %s "$work/gzip")
    series=$(grep -cvE '^(#|$)' "$work/plain" || true)
    # The floor and the exporter in turns, twice each, on the same CPU: the
    # lesser of each pair is the figure (other work on a shared machine only
    # ever adds).
    passes=$(( n >= 1000 ? 100 : 1000 ))
    floor() { taskset -c "$SERVER_CPU" "$work/pread_floor" "$tree" "$logs/containers" "$passes"; }
    read -r files floor_a floor_wall _ <<<"$(floor)"
    read -r req p50 p99 cpu_a <<<"$(measure)"
    read -r _ floor_b _ _ <<<"$(floor)"
    read -r _ p50b p99b cpu_b <<<"$(measure)"
    read -r _ gp50 gp99 gcpu <<<"$(measure -H 'Accept-Encoding: gzip')"
    rss=$(rss_kib "$server")
    cpu=$(( cpu_a < cpu_b ? cpu_a : cpu_b ))
    floor_cpu=$(( floor_a < floor_b ? floor_a : floor_b ))
    if (( cpu_b < cpu_a )); then p50=$p50b; p99=$p99b; fi
    ratio=$(awk -v a="$cpu" -v b="$floor_cpu" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
    echo "N=$n: $series series, body $plain B (gzip $gz B), p50 ${p50}us p99 ${p99}us, cpu ${cpu}us/scrape (gzip ${gcpu}us), rss ${rss} KiB, floor ${floor_cpu}us cpu / ${floor_wall}us wall for $files files, ratio $ratio"
    rows+=("| $n | $series | $plain | $gz | $p50 / $p99 | $gp50 / $gp99 | $cpu | $gcpu | $floor_cpu | $ratio | $((rss / 1024)) |")
    stop_pid "$server"; server=""
    remove_tree "$tree"
    rm -rf "$logs"
done

echo
echo "| containers | series | body (B) | gzip (B) | latency p50 / p99 (µs) | gzip p50 / p99 (µs) | CPU/scrape (µs) | gzip CPU/scrape (µs) | floor CPU/pass (µs) | ratio to floor | RSS (MiB) |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
