#!/usr/bin/env bash
# Soak: node mode on a busy node, for a long time, looking for leaks.
#
#   benches/soak.sh                    # 10 minutes
#   DURATION=30m benches/soak.sh       # or: benches/soak.sh 30m (s, m, h)
#   DURATION=60s benches/soak.sh       # the short mode; exits 1 if the verdict fails
#
# It builds, under the cgroup v2 mount, a tree in the kubelet's systemd
# layout (DESIGN.md §4; as psi-exporter/tests/support/kubelet.rs names it):
# $PODS pods spread over the three QoS classes, each with a sandbox and
# $CONTAINERS containers, and the kubelet's log tree naming them. $BUSY of
# the pods run a busy loop each, all pinned to CPU $BUSY_CPU at nice 19, so
# that they stall one another (real CPU pressure) while yielding to other
# work on the machine. Then, for $DURATION, at once:
#   - churn: $CHURN pods a second are created and as many removed, oldest
#     first (the busy pods stay), as on a busy node;
#   - a Prometheus-like client: one scrape of /metrics a second with
#     Accept-Encoding: gzip and a 10 s timeout (curl's time_total);
#   - a burst client: $BURST concurrent plain scrapes every $BURST_EVERY s;
#   - psi-exporter --mode node --level $LEVEL on the tree (default rescan
#     interval), not pinned.
# Every $INTERVAL seconds it prints a Markdown table row from one more
# scrape (checked by `promtool check metrics`) and from /proc/PID:
#   RSS (VmRSS); descriptors: all, "other" (not pressure files: stdio,
#   epoll, listener, connections), stale (pressure files of cgroups already
#   removed) and duplicates (one pressure file open twice); psi_node_cgroups,
#   psi_node_open_files, psi_read_errors_total summed by reason (the
#   exporter's only error counter: there is no scrape error counter);
#   scrapes and their p50 / p99 / max latency over the interval (the
#   Prometheus-like client only); non-200 responses (every client; a curl
#   failure counts as code 000); the busy pods' CPU pressure (the share of
#   time a busy pod had a task waiting, from psi_cpu_waiting_seconds_total).
# It ends with a verdict, from the baseline row (the first at or after one
# minute, or at 30 s in runs under 3 minutes) to the last, and exits 1
# when it fails:
#   - RSS grows more than $RSS_BOUND_KIB (default 1024 KiB; see BENCHMARKS.md
#     "Soak" for why);
#   - other descriptors grow more than $BURST + 2 (connections in flight
#     when /proc is read), or the last row has more stale pressure files than
#     the pods removed in 2 s hold, or any row has a duplicate;
#   - any non-200, any promtool failure, or the exporter exits.
# Everything it made (cgroups, processes, files) is removed on exit, Ctrl-C
# included. Needs root (without it, a skip unless CI=true), cgroup v2,
# curl, promtool, taskset.
#
# Environment: DURATION (10m), PODS (300), CONTAINERS (2), BUSY (3),
# BUSY_CPU (1), CHURN (2, pods a second, may be fractional), BURST (8),
# BURST_EVERY (10 s), LEVEL (pod,container), INTERVAL (30 s, 10 s for runs
# under 5 minutes), RSS_BOUND_KIB (1024), BUILD (release: `cargo build
# --release -p psi-exporter`; static: the static build tests/pod makes,
# which scripts/test.sh has already built).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=benches/lib.sh
source benches/lib.sh

DURATION=${1:-${DURATION:-10m}}
PODS=${PODS:-300}
CONTAINERS=${CONTAINERS:-2}
BUSY=${BUSY:-3}
BUSY_CPU=${BUSY_CPU:-1}
CHURN=${CHURN:-2}
BURST=${BURST:-8}
BURST_EVERY=${BURST_EVERY:-10}
LEVEL=${LEVEL:-pod,container}
RSS_BOUND_KIB=${RSS_BOUND_KIB:-1024}
BUILD=${BUILD:-release}

# "90", "90s", "30m", "1h" in seconds.
seconds() {
    [[ $1 =~ ^([0-9]+)([smh]?)$ ]] || die "not a duration: $1 (e.g. 60s, 30m, 1h)"
    case ${BASH_REMATCH[2]} in
        m) echo $((BASH_REMATCH[1] * 60)) ;;
        h) echo $((BASH_REMATCH[1] * 3600)) ;;
        *) echo "${BASH_REMATCH[1]}" ;;
    esac
}
duration=$(seconds "$DURATION")
((duration >= 40)) || die "DURATION must be at least 40 s (the short baseline is at 30 s)"
INTERVAL=${INTERVAL:-$((duration >= 300 ? 30 : 10))}
((BUSY < PODS)) || die "BUSY must be less than PODS"

# As the tests do (testkit's CI policy): without root, a skip, except in CI.
if [[ $(id -u) != 0 ]]; then
    [[ ${CI:-} == true || ${CI:-} == 1 ]] && die "run as root (it makes cgroups)"
    echo "$bench_name: skipped: run as root (it makes cgroups)" >&2
    exit 0
fi
need cargo curl promtool taskset find
mount=$(cgroup2_mount)

# Microseconds since the epoch, without a fork.
now_us() { echo "${EPOCHREALTIME/./}"; }
# sleep_until US: sleeps until that time (at once if it has passed).
sleep_until() {
    local left=$(($1 - $(now_us)))
    ((left > 0)) && sleep "$((left / 1000000)).$(printf '%06d' $((left % 1000000)))"
    return 0
}

work=$(mktemp -d -t psi-soak.XXXXXX)
tree=$mount/psi-soak-$$
logs=$work/logs
loops=()     # churn and client loops (bash subshells)
busy_pids=() # the busy loops
exporter=""

cleanup() {
    local pid
    # The churn first, so that nothing new appears while the rest stops.
    for pid in "${loops[@]}"; do stop_with_children "$pid"; done
    [[ -n $exporter ]] && stop_pid "$exporter"
    for pid in "${busy_pids[@]}"; do stop_pid "$pid"; done
    remove_tree "$tree"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

machine_line
echo "== DURATION=${duration}s PODS=$PODS CONTAINERS=$CONTAINERS (+ sandbox) BUSY=$BUSY (CPU $BUSY_CPU, nice 19) CHURN=$CHURN/s BURST=$BURST every ${BURST_EVERY}s LEVEL=$LEVEL INTERVAL=${INTERVAL}s"
echo "== commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"

echo "== building ($BUILD)"
case $BUILD in
    release)
        cargo build --release --quiet -p psi-exporter
        bin=$(target_dir)/release/psi-exporter
        ;;
    static)
        # The same command and flags as tests/pod/lib.sh, so that after the pod
        # tests this is a no-op.
        RUSTFLAGS='-C target-feature=+crt-static' \
            cargo build --release --quiet --locked -p psi-exporter --target x86_64-unknown-linux-gnu
        bin=$(target_dir)/x86_64-unknown-linux-gnu/release/psi-exporter
        ;;
    *) die "BUILD is release or static, not $BUILD" ;;
esac
# A copy, so that a concurrent rebuild cannot swap the binary mid-run.
cp "$bin" "$work/psi-exporter"

# --- the tree ---------------------------------------------------------------

qos_dir=$tree/kubepods.slice
mkdir -p "$qos_dir/kubepods-burstable.slice" "$qos_dir/kubepods-besteffort.slice" \
    "$logs/pods" "$logs/containers"

# Pod I: its uid (busy pods' start with b, so that a row can find them),
# its cgroup, its log directory; containers are c0.. and the sandbox.
pod_uid() {
    if (($1 < BUSY)); then
        printf 'b%07x-0000-4000-8000-%012x' "$1" "$1"
    else
        printf '%08x-0000-4000-8000-%012x' "$1" "$1"
    fi
}
pod_cgroup() {
    local uid=$2
    case $(($1 % 3)) in
        0) echo "$qos_dir/kubepods-burstable.slice/kubepods-burstable-pod${uid//-/_}.slice" ;;
        1) echo "$qos_dir/kubepods-besteffort.slice/kubepods-besteffort-pod${uid//-/_}.slice" ;;
        *) echo "$qos_dir/kubepods-pod${uid//-/_}.slice" ;; # guaranteed
    esac
}
# A container's 64-hex id; the sandbox is container number CONTAINERS.
container_id() { printf '%056x%08x' "$1" "$2"; }

# make_pod I: the pod's cgroups and its log entries (the sandbox has none).
make_pod() {
    local i=$1 uid cg dirs=() c id
    uid=$(pod_uid "$i")
    cg=$(pod_cgroup "$i" "$uid")
    for ((c = 0; c <= CONTAINERS; c++)); do
        dirs+=("$cg/cri-containerd-$(container_id "$i" "$c").scope")
    done
    for ((c = 0; c < CONTAINERS; c++)); do dirs+=("$logs/pods/soak_pod-${i}_$uid/c$c"); done
    mkdir -p "${dirs[@]}"
    for ((c = 0; c < CONTAINERS; c++)); do
        id=$(container_id "$i" "$c")
        ln -s /nonexistent "$logs/containers/pod-${i}_soak_c$c-$id.log"
    done
}

# remove_pod I: as the kubelet does once the containers have exited: the
# container cgroups, the pod's, then the log entries.
remove_pod() {
    local i=$1 uid cg dirs=() c
    uid=$(pod_uid "$i")
    cg=$(pod_cgroup "$i" "$uid")
    for ((c = 0; c <= CONTAINERS; c++)); do
        dirs+=("$cg/cri-containerd-$(container_id "$i" "$c").scope")
    done
    rmdir "${dirs[@]}" "$cg"
    rm -rf "$logs/pods/soak_pod-${i}_$uid" "$logs/containers/pod-${i}_soak_"*
}

echo "== making $PODS pods under $tree"
for ((i = 0; i < PODS; i++)); do make_pod "$i"; done

# The busy loops: each joins its pod's first container, then becomes the loop.
for ((i = 0; i < BUSY; i++)); do
    cg=$(pod_cgroup "$i" "$(pod_uid "$i")")/cri-containerd-$(container_id "$i" 0).scope
    (
        echo "$BASHPID" >"$cg/cgroup.procs"
        exec taskset -c "$BUSY_CPU" nice -n 19 sh -c 'while :; do :; done'
    ) &
    busy_pids+=($!)
done

# --- the exporter -------------------------------------------------------------

port=$(free_port)
url=http://127.0.0.1:$port/metrics
"$work/psi-exporter" --mode node --level "$LEVEL" --cgroup-root "$tree" \
    --pod-logs-dir "$logs/pods" --container-logs-dir "$logs/containers" \
    --listen "127.0.0.1:$port" --log-level warn >"$work/exporter.log" 2>&1 &
exporter=$!
wait_listening "$exporter" "$port" "$work/exporter.log"
echo "== psi-exporter pid $exporter on $url"

# --- the loops ----------------------------------------------------------------

# Every response, one line each: "client code seconds" (curl's time_total).
scrapes=$work/scrapes.log
: >"$scrapes"

# scrape CLIENT CURL_ARGS...: one request, one line in $scrapes; curl's
# failures (refused, timed out) are code 000.
scrape() {
    local client=$1 out
    shift
    out=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code} %{time_total}\n' "$@" 2>/dev/null) || true
    [[ -n $out ]] || out="000 0"
    while read -r line; do echo "$client $line"; done <<<"$out" >>"$scrapes"
}

# $CHURN pods a second: create pod `next`, remove pod `oldest`; timed from
# the start so that a slow step does not lower the rate.
churn_loop() {
    local period_us t oldest=$BUSY next=$PODS k=0 start
    period_us=$(awk -v r="$CHURN" 'BEGIN { printf "%d", 1e6 / r }')
    start=$(now_us)
    while :; do
        make_pod "$next"
        remove_pod "$oldest"
        next=$((next + 1)) oldest=$((oldest + 1)) k=$((k + 1))
        echo "$k" >"$work/churned"
        t=$((start + k * period_us))
        sleep_until "$t"
    done
}

# One gzip scrape a second, as Prometheus does (its scrapes never overlap).
prometheus_loop() {
    local k=0 start
    start=$(now_us)
    while :; do
        scrape loop -H 'Accept-Encoding: gzip' "$url"
        k=$((k + 1))
        sleep_until $((start + k * 1000000))
    done
}

# $BURST plain scrapes at once every $BURST_EVERY s (curl --parallel).
burst_loop() {
    local k=0 start args=() j
    for ((j = 0; j < BURST; j++)); do args+=(-o /dev/null "$url"); done
    start=$(now_us)
    while :; do
        k=$((k + 1))
        sleep_until $((start + k * BURST_EVERY * 1000000))
        scrape burst -Z --parallel-immediate --parallel-max "$BURST" "${args[@]}"
    done
}

# --- the rows ---------------------------------------------------------------

# fd_stats PID: "all other stale duplicates" of its descriptors.
fd_stats() {
    local all=0 other=0 stale=0 dup=0 target
    local -A seen=()
    while IFS= read -r target; do
        all=$((all + 1))
        if [[ $target != *.pressure && $target != *".pressure (deleted)" ]]; then
            other=$((other + 1))
        elif [[ ! -e $target ]]; then
            stale=$((stale + 1))
        elif [[ -n ${seen[$target]:-} ]]; then
            dup=$((dup + 1))
        else
            seen[$target]=1
        fi
    done < <(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 -printf '%l\n' 2>/dev/null) # some close while listed
    echo "$all $other $stale $dup"
}

# metrics FILE: "cgroups open_files busy_waiting_seconds errors" from a body;
# errors is psi_read_errors_total summed by reason ("gone=3,unsupported=900").
metrics() {
    awk '
        $1 == "psi_node_cgroups" { c = $2 }
        $1 == "psi_node_open_files" { o = $2 }
        /^psi_read_errors_total\{/ && match($0, /reason="[^"]*"/) {
            e[substr($0, RSTART + 8, RLENGTH - 9)] += $NF
        }
        # The busy pods, pod level (their uids start with b).
        /^psi_cpu_waiting_seconds_total\{/ && /cgroup="[^"]*podb[0-9a-f]+_0000_4000_8000_[0-9a-f]+\.slice"/ { w += $NF }
        END {
            # The reasons in psi-core order, then any other (none yet).
            n = split("unsupported disabled gone permission io parse", known, " ")
            s = ""
            for (i = 1; i <= n; i++) if (known[i] in e) { s = s (s == "" ? "" : ",") known[i] "=" e[known[i]]; delete e[known[i]] }
            for (r in e) s = s (s == "" ? "" : ",") r "=" e[r]
            printf "%s %s %.6f %s\n", c + 0, o + 0, w, (s == "" ? "none" : s)
        }' "$1"
}

# Latency over the lines of $scrapes after line FROM: "lines scrapes p50_ms
# p99_ms max_ms non200" (latency of the Prometheus-like client only).
latency() {
    awk -v from="$1" '
        NR <= from { next }
        { n = NR }
        $2 != "200" { bad++ }
        $1 == "loop" && $2 == "200" { print "t", $3 * 1000 }
        END { print "n", n + 0, bad + 0 }' "$scrapes" | sort -k1,1 -k2,2g | awk -v from="$1" '
        $1 == "t" { t[++k] = $2 }
        $1 == "n" { lines = $2; bad = $3 }
        function rank(p,   i) { i = int(p * k + 0.999999); return i < 1 ? 1 : i }
        END {
            if (k == 0) printf "%d 0 - - - %d\n", (lines > from ? lines : from), bad
            else printf "%d %d %.1f %.1f %.1f %d\n", (lines > from ? lines : from), k, t[rank(0.5)], t[rank(0.99)], t[k], bad
        }'
}

# Previous row's values, for the rates.
seen_lines=0
prev_t=0
prev_busy=""
promtool_failures=0
non200_total=0
declare -a rss_col other_col
dup_rows=0
last_stale=0
exit_reason=""

# row ELAPSED: one scrape (promtool, metrics), /proc, the interval's
# latencies; prints the row and keeps what the verdict needs.
row() {
    local elapsed=$1 t code body=$work/body rss fds other stale dup
    local cgroups open busy errors lat n p50 p99 max bad check busy_pct
    t=$(now_us)
    code=$(curl -sS --max-time 10 -o "$body" -w '%{http_code}' "$url" 2>/dev/null) || code=${code:-000}
    echo "check $code 0" >>"$scrapes"
    # /proc right after the scrape, whose reads closed the files of the
    # cgroups removed before it.
    rss=$(rss_kib "$exporter")
    read -r fds other stale dup <<<"$(fd_stats "$exporter")"
    if [[ $code == 200 ]] && promtool check metrics <"$body" >"$work/promtool.out" 2>&1; then
        check=ok
    else
        check=FAIL
        promtool_failures=$((promtool_failures + 1))
        echo "$bench_name: promtool at ${elapsed}s (HTTP $code):" >&2
        head -5 "$work/promtool.out" >&2
    fi
    read -r cgroups open busy errors <<<"$(metrics "$body")"
    read -r n lat p50 p99 max bad <<<"$(latency "$seen_lines")"
    seen_lines=$n
    non200_total=$((non200_total + bad))
    if [[ -n $prev_busy ]]; then
        busy_pct=$(awk -v w="$busy" -v p="$prev_busy" -v dt=$((t - prev_t)) -v b="$BUSY"             'BEGIN { printf "%.0f %%", 100 * (w - p) / (dt / 1e6) / b }')
    else
        busy_pct=-
    fi
    prev_busy=$busy prev_t=$t
    rss_col+=("$rss") other_col+=("$other")
    ((dup == 0)) || dup_rows=$((dup_rows + 1))
    last_stale=$stale
    printf '| %s | %s | %s / %s / %s / %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s |
'         "$(clock "$elapsed")" "$(awk -v k="$rss" 'BEGIN { printf "%.2f", k / 1024 }')"         "$fds" "$other" "$stale" "$dup" "$cgroups" "$open" "${errors//,/, }"         "$lat" "$p50" "$p99" "$max" "$bad" "$check" "$busy_pct"
}

# 90 -> 1:30
clock() { printf '%d:%02d' $(($1 / 60)) $(($1 % 60)); }

echo
echo "| elapsed | RSS (MiB) | fds: all / other / stale / dup | psi_node_cgroups | psi_node_open_files | psi_read_errors_total by reason | scrapes | p50 / p99 / max (ms) | non-200 | promtool | busy pods' cpu some |"
echo "|--:|--:|--:|--:|--:|---|--:|--:|--:|---|--:|"

churn_loop >"$work/churn.log" 2>&1 &
loops+=($!)
prometheus_loop >"$work/prometheus.log" 2>&1 &
loops+=($!)
burst_loop >"$work/burst.log" 2>&1 &
loops+=($!)

start=$(now_us)
rows=$((duration / INTERVAL))
for ((k = 1; k <= rows; k++)); do
    sleep_until $((start + k * INTERVAL * 1000000))
    if ! kill -0 "$exporter" 2>/dev/null; then
        exit_reason="the exporter exited at $(clock $((k * INTERVAL)))"
        break
    fi
    for pid in "${loops[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            # A client or the churn died: the run no longer tests what it says.
            cat "$work"/{churn,prometheus,burst}.log >&2
            die "a loop of the soak (pid $pid) exited at $(clock $((k * INTERVAL)))"
        fi
    done
    row $((k * INTERVAL))
done

# --- the verdict ------------------------------------------------------------

# The baseline: the first row at or after one minute in runs of 3 minutes
# or more, else at or after 30 s. Either way after the exporter's first
# walks that meet churned pods (one at start, then one every 10 s): in
# trials its RSS grew in steps at the walks 10, 20 and 30 s after start
# (1.7 MiB in all), and stayed flat after (BENCHMARKS.md, "Soak").
if ((duration >= 180)); then at=60; else at=30; fi
base=$(((at + INTERVAL - 1) / INTERVAL - 1))
last=$((${#rss_col[@]} - 1))
fail=()
[[ -z $exit_reason ]] || fail+=("$exit_reason")
if ((last < base)); then
    fail+=("no rows")
else
    rss_growth=$((rss_col[last] - rss_col[base]))
    other_growth=$((other_col[last] - other_col[base]))
    # The pressure files of the pods removed in 2 s: those the reads after
    # the row's scrape have not met yet, with room for one late scrape.
    stale_bound=$(awk -v r="$CHURN" -v c="$CONTAINERS" 'BEGIN { n = r * 2; printf "%d", (n == int(n) ? n : int(n) + 1) * (c + 2) * 3 }')
    ((rss_growth <= RSS_BOUND_KIB)) || fail+=("RSS grew ${rss_growth} KiB (bound ${RSS_BOUND_KIB})")
    ((other_growth <= BURST + 2)) || fail+=("other descriptors grew by $other_growth (bound $((BURST + 2)))")
    ((last_stale <= stale_bound)) || fail+=("$last_stale stale pressure files open in the last row (bound $stale_bound)")
fi
((dup_rows == 0)) || fail+=("duplicate pressure descriptors in $dup_rows rows")
((non200_total == 0)) || fail+=("$non200_total non-200 responses")
((promtool_failures == 0)) || fail+=("$promtool_failures promtool failures")

requests=$(wc -l <"$scrapes")
own=$(curl -fsS --max-time 10 "$url" 2>/dev/null | awk '$1 == "psi_exporter_scrapes_total" { print $2 }') || own="?"
echo
churned=$(cat "$work/churned" 2>/dev/null || echo 0)
echo "Churn: $churned pods replaced in ${duration}s ($(awk -v n="$churned" -v d="$duration" 'BEGIN { printf "%.2f", n / d }') a second), $(find "$logs/pods" -mindepth 1 -maxdepth 1 | wc -l) pods at the end. Requests: $requests logged, psi_exporter_scrapes_total ${own:-?} (one more)."
if [[ -s $work/exporter.log ]]; then
    echo "Exporter log ($(wc -l <"$work/exporter.log") lines), last 5:"
    tail -5 "$work/exporter.log"
fi
machine_line
if ((last >= base)); then
    summary="RSS $(clock $(((base + 1) * INTERVAL))) -> $(clock $(((last + 1) * INTERVAL))): ${rss_col[base]} -> ${rss_col[last]} KiB ($(printf '%+d' "$rss_growth") KiB, bound $RSS_BOUND_KIB); other fds ${other_col[base]} -> ${other_col[last]}; stale fds at the end $last_stale (bound $stale_bound); duplicate-fd rows $dup_rows; non-200 $non200_total; promtool failures $promtool_failures"
else
    summary="no rows"
fi
if ((${#fail[@]} == 0)); then
    echo "VERDICT: PASS ($summary)"
else
    echo "VERDICT: FAIL: $(
        IFS=';'
        echo "${fail[*]}"
    ) ($summary)"
    exit 1
fi
