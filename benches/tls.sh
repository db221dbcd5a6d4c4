#!/usr/bin/env bash
# What TLS and basic auth cost psi-exporter (--web-config-file), beside
# plain HTTP, in one run: the same exporter (--system) served four ways,
#   plain      no web config
#   tls        TLS 1.3 (rustls, ECDSA P-256 certificate)
#   tls+auth   TLS and bcrypt basic auth (cost 10; cached after the first check)
# each measured twice with wrk -t1 -c16 -d$DURATION --latency:
#   kept-alive   connections reused, as Prometheus does: CPU per scrape;
#   new conn     `Connection: close`, a new connection (and a full TLS
#                handshake) for every request: CPU per connection.
# CPU is the exporter's utime+stime (/proc/PID/stat) over each wrk run,
# divided by the requests wrk counted. The server runs pinned to
# $SERVER_CPU (default 0), wrk to $CLIENT_CPU (default 1). Certificates are
# made here with openssl.
#
#   bash benches/tls.sh             # DURATION=10 s per wrk run
#   DURATION=5 bash benches/tls.sh
set -euo pipefail

DURATION=${DURATION:-10}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
export CLIENT_CPU

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib.sh
source benches/lib.sh
need cargo wrk openssl taskset getconf

work=$(mktemp -d -t psi-tls-bench.XXXXXX)
server=
cleanup() {
    [[ -z $server ]] || stop_pid "$server"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

machine_line
echo "== DURATION=${DURATION}s, server on CPU $SERVER_CPU, wrk on CPU $CLIENT_CPU"
echo "== building (release)"
cargo build --release --quiet -p psi-exporter --bin psi-exporter
cp "$(target_dir)/release/psi-exporter" "$work/psi-exporter"
CLK_TCK=$(getconf CLK_TCK)

echo "== certificates (openssl)"
(
    cd "$work"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 1 -subj /CN=bench-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 1 \
        -extfile server.ext -out server.crt 2>/dev/null
)
tls="tls_server_config:
  cert_file: server.crt
  key_file: server.key"
printf '%s\n' "$tls" >"$work/tls.yml"
# The password "bench", bcrypt cost 10 (as exporter-toolkit's docs suggest).
printf '%s\nbasic_auth_users:\n  bench: %s\n' "$tls" \
    '$2b$10$7ksTGafEd0XSqVCvRWzp9uJAHU8GM0SAb0bWrFEZah77980a5V4uy' >"$work/tls-auth.yml"
auth="Authorization: Basic $(printf 'bench:bench' | base64)"

# measure NAME SCHEME CONFIG [WRK-ARGS...]: starts the server, runs both
# wrk passes; prints a table row for each.
measure() {
    local name=$1 scheme=$2 config=$3
    shift 3
    local port log args=()
    port=$(free_port)
    log="$work/$name.log"
    [[ -z $config ]] || args=(--web-config-file "$work/$config")
    taskset -c "$SERVER_CPU" "$work/psi-exporter" --system --listen "127.0.0.1:$port" \
        --log-level warn "${args[@]}" 2>"$log" &
    server=$!
    wait_listening "$server" "$port" "$log"
    local url="$scheme://127.0.0.1:$port/metrics" pass before after res requests rps p50 p99
    # Warm-up: the first bcrypt check, the allocator, the page cache.
    run_wrk "$work/$name.warm" -t1 -c16 -d1s "$@" "$url" >/dev/null
    for pass in kept-alive "new conn"; do
        local extra=()
        [[ $pass == kept-alive ]] || extra=(-H "Connection: close")
        before=$(cpu_ticks "$server")
        res=$(run_wrk "$work/$name.$pass" -t1 -c16 -d"${DURATION}s" --latency "$@" "${extra[@]}" "$url")
        after=$(cpu_ticks "$server")
        read -r requests rps p50 p99 <<<"$res"
        awk -v n="$name" -v p="$pass" -v r="$requests" -v rps="$rps" -v p50="$p50" -v p99="$p99" \
            -v t=$((after - before)) -v hz="$CLK_TCK" 'BEGIN {
                printf "| %s | %s | %.0f | %d | %d | %.1f |\n", n, p, rps, p50, p99, t / hz / r * 1e6
            }'
    done
    stop_pid "$server"
    server=
}

echo
echo "| server | connections | requests/s | p50 µs | p99 µs | CPU µs per request |"
echo "|---|---|---|---|---|---|"
measure plain http ""
measure tls https tls.yml
measure tls+auth https tls-auth.yml -H "$auth"
