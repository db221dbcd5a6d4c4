#!/usr/bin/env bash
# Benchmarks the HTTP /metrics endpoint of psi-exporter against Debian's
# prometheus-node-exporter (pressure collector only) and a minimal hyper
# server serving a static body of psi-exporter's size (the ceiling any
# HTTP exporter built on tokio current-thread + hyper http1 can reach here).
#
#   benches/exporter.sh                   # DURATION=10 s per wrk run
#   DURATION=5 SCRAPES=50000 benches/exporter.sh
#
# The servers run pinned to CPU $SERVER_CPU (default 0), wrk to $CLIENT_CPU
# (default 1), against one server at a time. Per server it reports:
#   - /metrics body size and sample count (lines neither empty nor starting with #);
#   - wrk -t1 -c16 and -c1 (-d$DURATION --latency): requests/s, p50, p99;
#   - CPU seconds per 10,000 scrapes (utime+stime from /proc/PID/stat over
#     each measured wrk run, divided by the requests wrk counted);
#   - VmRSS after start (before any scrape), after $SCRAPES scrapes (driven
#     by wrk, counted from wrk's output), and at the end of all runs;
#   - the stripped size of the binary.
# and prints Markdown tables at the end. Figures depend on what else runs on
# the machine: compare runs made under a similar load (printed at the start).
#
# Environment: DURATION (s, default 10), SCRAPES (default 100000),
# SERVER_CPU, CLIENT_CPU, NODE_EXPORTER (default /usr/bin/prometheus-node-exporter),
# BENCH_TSV (a file to append one tab-separated row per server to).
set -euo pipefail

DURATION=${DURATION:-10}
SCRAPES=${SCRAPES:-100000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NODE_EXPORTER=${NODE_EXPORTER:-/usr/bin/prometheus-node-exporter}
BENCH_TSV=${BENCH_TSV:-}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib.sh
source benches/lib.sh

need cargo wrk curl taskset strip getconf
[[ -x $NODE_EXPORTER ]] || die "$NODE_EXPORTER not found (apt-get install prometheus-node-exporter)"

work=$(mktemp -d -t psi-exporter-bench.XXXXXX)
pids=()

cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        stop_pid "$pid"
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

machine_line
echo "== DURATION=${DURATION}s SCRAPES=$SCRAPES server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"

echo "== building (release)"
cargo build --release --quiet -p psi-exporter --example static_server
cargo build --release --quiet -p psi-exporter --bin psi-exporter
# Copies, so that a concurrent rebuild of target/ cannot swap a binary mid-run.
cp "$(target_dir)/release/psi-exporter" "$work/psi-exporter"
cp "$(target_dir)/release/examples/static_server" "$work/static_server"

CLK_TCK=$(getconf CLK_TCK)

# Stops each wrk thread after $WRK_LIMIT responses (wrk still waits out -d).
cat >"$work/limit.lua" <<'EOF'
local n = 0
local limit = tonumber(os.getenv("WRK_LIMIT"))
function response(status, headers, body)
  n = n + 1
  if n >= limit then wrk.thread:stop() end
end
EOF

# Starts "$@" pinned to SERVER_CPU and waits until $port accepts connections.
# Sets $server_pid.
start_server() {
    local name=$1 port=$2
    shift 2
    taskset -c "$SERVER_CPU" "$@" >"$work/$name.log" 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    wait_listening "$server_pid" "$port" "$work/$name.log"
}

declare -A R # results: R[name.field]
servers=()

# launch NAME BINARY ARGS... (ARGS may hold @PORT@, replaced by a free port):
# starts the server, reads its RSS before any scrape, and fetches /metrics once.
launch() {
    local name=$1 bin=$2
    shift 2
    local port args=() a
    port=$(free_port)
    for a in "$@"; do args+=("${a//@PORT@/$port}"); done
    servers+=("$name")
    R[$name.bin_path]=$bin
    R[$name.url]="http://127.0.0.1:$port/metrics"

    echo "== $name: ${bin##*/} ${args[*]}"
    start_server "$name" "$port" "$bin" "${args[@]}"
    R[$name.pid]=$server_pid
    sleep 0.5
    R[$name.rss0]=$(rss_kib "$server_pid")

    curl -fsS -o "$work/$name.body" "${R[$name.url]}"
    R[$name.scraped]=1
    R[$name.body]=$(stat -c %s "$work/$name.body")
    R[$name.samples]=$(grep -cvE '^(#|$)' "$work/$name.body" || true)
    echo "   body ${R[$name.body]} bytes, ${R[$name.samples]} samples; RSS after start ${R[$name.rss0]} KiB"
}

# fill NAME: SCRAPES scrapes in all at 16 connections, in wrk runs sized from
# the rate seen (a Lua script stops wrk's thread at the count), then RSS.
fill() {
    local name=$1
    local remaining=$((SCRAPES - R[$name.scraped])) d=1 res n elapsed start
    while ((remaining > 0)); do
        start=$(date +%s%N)
        res=$(WRK_LIMIT=$remaining run_wrk "$work/$name.fill" -t1 -c16 -d"${d}s" -s "$work/limit.lua" "${R[$name.url]}")
        elapsed=$((($(date +%s%N) - start) / 1000000))
        n=${res%% *}
        R[$name.scraped]=$((R[$name.scraped] + n))
        remaining=$((SCRAPES - R[$name.scraped]))
        # seconds for the rest at the rate just seen, plus margin
        d=$((remaining * elapsed / (n * 1000) + 2))
    done
    R[$name.rss1]=$(rss_kib "${R[$name.pid]}")
    echo "== $name: RSS after ${R[$name.scraped]} scrapes ${R[$name.rss1]} KiB"
}

# measure NAME CONNECTIONS: one wrk run of DURATION with the server's CPU time.
measure() {
    local name=$1 c=$2
    local pid=${R[$name.pid]} t0 t1 res requests rps p50 p99
    t0=$(cpu_ticks "$pid")
    res=$(run_wrk "$work/$name.c$c" -t1 -c"$c" -d"${DURATION}s" --latency "${R[$name.url]}")
    t1=$(cpu_ticks "$pid")
    read -r requests rps p50 p99 <<<"$res"
    R[$name.scraped]=$((R[$name.scraped] + requests))
    R[$name.rps$c]=$rps
    R[$name.p50_$c]=$p50
    R[$name.p99_$c]=$p99
    # CPU seconds per 10,000 scrapes
    R[$name.cpu$c]=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.4f", t / hz / n * 10000 }')
    echo "== $name -c$c: $requests requests, $rps req/s, p50 $p50 µs, p99 $p99 µs, CPU ${R[$name.cpu$c]} s per 10k scrapes ($((t1 - t0)) ticks)"
}

# finish NAME: RSS at the end, stop, stripped binary size.
finish() {
    local name=$1
    local pid=${R[$name.pid]}
    R[$name.rss2]=$(rss_kib "$pid")
    echo "== $name: RSS after ${R[$name.scraped]} scrapes ${R[$name.rss2]} KiB"
    if [[ $name == psi-exporter ]]; then
        # Cross-check wrk's count against the exporter's own counter.
        local own
        own=$(curl -fsS "${R[$name.url]}" | awk '$1 == "psi_exporter_scrapes_total" { print $2 }')
        echo "   psi_exporter_scrapes_total $own (counted $((R[$name.scraped] + 1)); wrk leaves up to 15 in flight per run uncounted)"
    fi
    stop_pid "$pid"
    # Forget it, so that cleanup never signals a recycled pid.
    local kept=() p
    for p in "${pids[@]}"; do [[ $p == "$pid" ]] || kept+=("$p"); done
    pids=("${kept[@]}")
    strip -o "$work/$name.stripped" "${R[$name.bin_path]}" 2>/dev/null || cp "${R[$name.bin_path]}" "$work/$name.stripped"
    R[$name.bin]=$(stat -c %s "$work/$name.stripped")
}

# All three run at once (an idle server costs nothing), so that the measured
# runs of psi-exporter and of the static ceiling follow each other closely
# and a change in the machine's load skews their ratio less.
launch psi-exporter "$work/psi-exporter" --system --listen 127.0.0.1:@PORT@ --log-level warn
launch node_exporter "$NODE_EXPORTER" --collector.disable-defaults --collector.pressure --web.listen-address=127.0.0.1:@PORT@
launch static "$work/static_server" --port @PORT@ --size "${R[psi-exporter.body]}"
order=(psi-exporter static node_exporter)
for s in "${order[@]}"; do fill "$s"; done
for c in 16 1; do
    for s in "${order[@]}"; do measure "$s" "$c"; done
done
for s in "${order[@]}"; do finish "$s"; done

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "Load at the end:$(uptime | sed 's/.*load average//'); DURATION=${DURATION}s; server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU."
echo
echo "| server | body (B) | samples | req/s c16 | p50 c16 (µs) | p99 c16 (µs) | req/s c1 | p50 c1 (µs) | p99 c1 (µs) | CPU s/10k scrapes c16 | CPU s/10k c1 | RSS start (MiB) | RSS after ${SCRAPES} (MiB) | RSS end (MiB) | stripped binary (MiB) |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for s in "${servers[@]}"; do
    printf '| %s | %s | %s | %.0f | %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$s" "${R[$s.body]}" "${R[$s.samples]}" \
        "${R[$s.rps16]}" "${R[$s.p50_16]}" "${R[$s.p99_16]}" \
        "${R[$s.rps1]}" "${R[$s.p50_1]}" "${R[$s.p99_1]}" \
        "${R[$s.cpu16]}" "${R[$s.cpu1]}" \
        "$(mib "${R[$s.rss0]}")" "$(mib "${R[$s.rss1]}")" "$(mib "${R[$s.rss2]}")" \
        "$(awk -v b="${R[$s.bin]}" 'BEGIN { printf "%.2f", b / 1048576 }')"
    if [[ -n $BENCH_TSV ]]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' \
            "$s" "${R[$s.body]}" "${R[$s.samples]}" \
            "${R[$s.rps16]}" "${R[$s.p50_16]}" "${R[$s.p99_16]}" \
            "${R[$s.rps1]}" "${R[$s.p50_1]}" "${R[$s.p99_1]}" \
            "${R[$s.cpu16]}" "${R[$s.cpu1]}" \
            "${R[$s.rss0]}" "${R[$s.rss1]}" "${R[$s.rss2]}" "${R[$s.bin]}" >>"$BENCH_TSV"
    fi
done
echo
echo "| ratio | value |"
echo "|---|--:|"
echo "| psi-exporter / node_exporter, req/s at 16 connections | $(ratio "${R[psi-exporter.rps16]}" "${R[node_exporter.rps16]}")× |"
echo "| psi-exporter / static ceiling, req/s at 16 connections | $(awk -v a="${R[psi-exporter.rps16]}" -v b="${R[static.rps16]}" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"
echo "| psi-exporter / node_exporter, req/s at 1 connection | $(ratio "${R[psi-exporter.rps1]}" "${R[node_exporter.rps1]}")× |"
echo "| psi-exporter / static ceiling, req/s at 1 connection | $(awk -v a="${R[psi-exporter.rps1]}" -v b="${R[static.rps1]}" 'BEGIN { printf "%.0f%%", 100 * a / b }') |"
echo "| psi-exporter CPU per scrape, c16 / c1 (µs) | $(awk -v a="${R[psi-exporter.cpu16]}" -v b="${R[psi-exporter.cpu1]}" 'BEGIN { printf "%.1f / %.1f", a * 100, b * 100 }') |"
