#!/usr/bin/env bash
# The node pod test: the image we ship, run from the DaemonSet we ship
# (deploy/daemonset.yaml) under podman, exports the pods of a kubelet-shaped
# cgroup tree with the names of a kubelet-shaped log tree, and the shipped
# Prometheus job and rules make sense of it.
#
#   bash tests/pod/node.sh
#
# Needs root and a cgroup2 hierarchy (hybrid hosts too). It installs and
# builds as tests/pod/run.sh does (tests/pod/lib.sh), then:
#   - makes, under the cgroup2 mount, the tree the kubelet makes with the
#     systemd driver: kubepods.slice/kubepods-burstable.slice/
#     kubepods-burstable-pod<uid_>.slice with a container
#     (cri-containerd-<64 hex>.scope) and its sandbox, and a guaranteed pod
#     kubepods.slice/kubepods-pod<uid_>.slice likewise; and the matching log
#     tree: pods/<namespace>_<pod>_<uid>/<container>/0.log (0640, unreadable
#     to the exporter's user) and containers/<pod>_<namespace>_<container>-
#     <id>.log symlinks into /var/log/pods (dangling inside the container);
#   - plays the DaemonSet's pod template as a Deployment (podman 4.3 plays no
#     DaemonSet) through tests/pod/node_overlay.py: local image, a hostPort
#     on 127.0.0.1, no `resources`, the hostPaths pointed at that tree and
#     log tree; args, user, capabilities, mounts as written;
# and checks:
#   - the exporter runs as the manifest asks (uid and gid 65534, no
#     capability at all, no_new_privs, seccomp; its three mounts and its root
#     read-only) and that is enough: /health says 4 cgroups, and no read
#     fails for permission;
#   - /metrics has each pod and container cgroup with exactly its labels
#     (cgroup, namespace, pod, container, qos, pod_uid, container_id), names
#     from the log tree, 6 series each (7 with irq pressure), the sandboxes
#     left out, no averages; promtool check metrics passes;
#   - busy loops in the container's cgroup raise its reported counter, which
#     is that cgroup's own file (read just before and after the scrape);
#   - a real Prometheus with deploy/prometheus.yml's `psi-exporter-node` and
#     `kubernetes-pods` jobs (their kubernetes_sd_configs replaced by this
#     pod as pod discovery would describe it) and deploy/rules: the node job
#     scrapes it with node="test-node" and the samples keep their namespace
#     and pod (no exported_*), the generic job leaves it out, and the
#     recording rule names the busy pod;
#   - stopping the container as the kubelet does: exit 0 on SIGTERM;
#   - everything it made is removed, on failure too.
# It prints the seconds taken.
#
# Without root it skips, unless CI=true, where it fails; in CI a missing
# podman that apt-get cannot install fails too.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/pod
LOG_NAME="node pod test"
EXPORTER_IMAGE=localhost/psi-pod-test/psi-exporter:node-test
POD=psi-exporter-node-pod-0 # a Deployment's pod: <deployment>-pod-0
EXPORTER=$POD-psi-exporter
# shellcheck source=tests/pod/lib.sh
. "$HERE/lib.sh"

# Outside the namespace: install, build, re-execute; returns only inside.
pod_outside "${BASH_SOURCE[0]}" "$@"

# --- inside the namespace ---------------------------------------------------
pod_inside
begun=$(now)
OVERLAY=$WORK/daemonset.yaml
TREE=$CG/psi-node-test-$$ # the node's cgroup2 mount, as the DaemonSet sees it
LOGS=$WORK/logs           # the node's /var/log
burners=()
prometheus_pid=

cleanup() {
  local rc=$?
  trap - EXIT TERM INT
  set +e
  pod_failed "$rc" "$EXPORTER"
  log "cleaning up"
  [ -n "$prometheus_pid" ] && kill "$prometheus_pid" 2>/dev/null && wait "$prometheus_pid" 2>/dev/null
  local p
  for p in "${burners[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${burners[@]}"; do wait "$p" 2>/dev/null; done
  [ -f "$OVERLAY" ] && timeout 60 podman kube play --down "$OVERLAY" >/dev/null 2>&1
  if timeout 20 podman pod exists "$POD" 2>/dev/null; then
    timeout 60 podman pod rm -f -t 0 "$POD" >/dev/null 2>&1
  fi
  pod_cleanup_host
  [ -d "$TREE" ] && find "$TREE" -depth -type d -exec rmdir {} + 2>/dev/null
  local left
  left=$(pod_left_behind "$POD")
  [ -d "$TREE" ] && left+=" cgroup:$TREE"
  pod_exit "$rc" "$left"
}
pod_trap

# A container id: 64 hex digits, different at each run.
container_id() { printf '%s' "$1-$$-$(now)" | sha256sum | cut -c1-64; }

# --- the node: a kubelet's cgroup tree and log tree -------------------------
WEB_UID=5f3c2a1e-8b7d-4c6a-9e0f-$(printf '%012x' $$)
DB_UID=0a1b2c3d-4e5f-4a6b-8c7d-$(printf '%012x' $$)
APP_ID=$(container_id app)
WEB_PAUSE=$(container_id web-pause)
PG_ID=$(container_id postgres)
DB_PAUSE=$(container_id db-pause)
WEB_POD=kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${WEB_UID//-/_}.slice
DB_POD=kubepods.slice/kubepods-pod${DB_UID//-/_}.slice
APP=$WEB_POD/cri-containerd-$APP_ID.scope
PG=$DB_POD/cri-containerd-$PG_ID.scope
mkdir -p "$TREE/$APP" "$TREE/$WEB_POD/cri-containerd-$WEB_PAUSE.scope" \
  "$TREE/$PG" "$TREE/$DB_POD/cri-containerd-$DB_PAUSE.scope"
# The kubelet's modes: directories 0755, log files 0640 root.
for entry in "shop_web_$WEB_UID/app:web_shop_app-$APP_ID" "shop_db_$DB_UID/postgres:db_shop_postgres-$PG_ID"; do
  dir=${entry%%:*}
  mkdir -p "$LOGS/pods/$dir" "$LOGS/containers"
  install -m 0640 /dev/null "$LOGS/pods/$dir/0.log"
  ln -s "/var/log/pods/$dir/0.log" "$LOGS/containers/${entry#*:}.log"
done
chmod -R go+rX "$LOGS" && chmod 0640 "$LOGS"/pods/*/*/0.log
series_per_cgroup=6
[ -f "$TREE/$APP/irq.pressure" ] && series_per_cgroup=7
log "node tree $TREE: pods shop/web ($WEB_UID, burstable) and shop/db ($DB_UID, guaranteed), each a container and a sandbox"

# --- the DaemonSet's pod ----------------------------------------------------
log "building the image (FROM scratch, nothing pulled)"
pod_build_exporter_image "$EXPORTER_IMAGE"
PORT=$(free_port)
python3 "$HERE/node_overlay.py" "$REPO/deploy/daemonset.yaml" "$OVERLAY" "$PORT" "$EXPORTER_IMAGE" \
  "$TREE" "$LOGS/pods" "$LOGS/containers"
log "podman kube play --start=false (the DaemonSet's pod as a Deployment, hostPort 127.0.0.1:$PORT)"
pod_play "$OVERLAY" "$POD"
started=$(now)
wait_200 "$PORT" /health
health=$(get /health)
log "/health 200 after $(since "$started") s: $health"
[[ $health == "ok: exporting 4 cgroups under /host/sys/fs/cgroup (node)"* ]] ||
  die "/health does not say 4 cgroups under /host/sys/fs/cgroup: $health"

# --- Prometheus with the shipped jobs and rules -------------------------------
# Started now: it takes a few seconds to apply its first targets, which the
# checks below fill.
# deploy/prometheus.yml's two Kubernetes pod jobs, each target as pod
# discovery would describe this pod (__meta_kubernetes_* labels), every
# second, with deploy/rules.
PROM_PORT=$(free_port)
python3 - "$REPO/deploy/prometheus.yml" "$WORK/prometheus.yml" "$PORT" "$POD" <<'EOF'
import os
import sys

import yaml

src, dst, port, pod = sys.argv[1:5]
config = yaml.safe_load(open(src))
meta = {
    "__meta_kubernetes_namespace": "psi-system",
    "__meta_kubernetes_pod_name": pod,
    "__meta_kubernetes_pod_node_name": "test-node",
    "__meta_kubernetes_pod_ip": "127.0.0.1",
    "__meta_kubernetes_pod_phase": "Running",
    "__meta_kubernetes_pod_container_name": "psi-exporter",
    "__meta_kubernetes_pod_container_port_name": "metrics",
    "__meta_kubernetes_pod_container_port_number": "2333",
    "__meta_kubernetes_pod_label_app_kubernetes_io_name": "psi-exporter-node",
    "__meta_kubernetes_pod_label_app_kubernetes_io_component": "psi-exporter",
    "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
    "__meta_kubernetes_pod_annotation_prometheus_io_port": "2333",
    "__meta_kubernetes_pod_annotation_prometheus_io_path": "/metrics",
}
jobs = []
for job in config["scrape_configs"]:
    if "kubernetes_sd_configs" not in job:
        continue
    del job["kubernetes_sd_configs"]
    # The pod's IP and port as discovery gives them; here the hostPort.
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"], "labels": meta}]
    jobs.append(job["job_name"])
assert {"psi-exporter-node", "kubernetes-pods"} <= set(jobs), jobs
config["scrape_configs"] = [j for j in config["scrape_configs"] if j["job_name"] in jobs]
config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
base = os.path.dirname(os.path.abspath(src))
config["rule_files"] = [os.path.join(base, r) for r in config["rule_files"]]
yaml.safe_dump(config, open(dst, "w"), sort_keys=False)
EOF
promtool check config "$WORK/prometheus.yml" >/dev/null || die "promtool check config of the test's copy"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
  --web.listen-address="127.0.0.1:$PROM_PORT" >"$WORK/prometheus.log" 2>&1 &
prometheus_pid=$!
prom_started=$(now)
# An instant query: one line per sample, its labels as JSON, a space, its value.
promql() {
  curl -sS --max-time 3 "http://127.0.0.1:$PROM_PORT/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys
r = json.load(sys.stdin)
assert r["status"] == "success", r
for s in r["data"]["result"]:
    print(json.dumps(s["metric"], sort_keys=True), s["value"][1])'
}

# The manifest's privileges, as the kernel sees them: nobody, no capability
# in any set, no_new_privs, a seccomp filter; read-only mounts and root.
exporter_pid=$(host_pid "$EXPORTER")
privs=$(awk '/^(Uid|Gid|Groups|CapPrm|CapEff|CapAmb|CapBnd|NoNewPrivs|Seccomp):/ { $1 = $1; printf "%s ", $0 }' "/proc/$exporter_pid/status")
want="Uid: 65534 65534 65534 65534 Gid: 65534 65534 65534 65534 Groups: 65534 CapPrm: 0000000000000000 CapEff: 0000000000000000 CapBnd: 0000000000000000 CapAmb: 0000000000000000 NoNewPrivs: 1 Seccomp: 2 "
[ "$privs" = "$want" ] || die "the exporter's privileges are not the manifest's: $privs"
for m in / /host/sys/fs/cgroup /host/var/log/pods /host/var/log/containers; do
  opts=$(awk -v m="$m" '$5 == m { print $6 }' "/proc/$exporter_pid/mountinfo" | tail -1)
  [[ ,$opts, == *,ro,* ]] || die "$m is not mounted read-only in the exporter's container: '$opts'"
done
log "exporter privileges: $privs; /, the cgroup tree and both log directories read-only"

# --- /metrics ----------------------------------------------------------------
body=$(get /metrics)
# Exactly these labels, in this order, on each exported cgroup.
declare -A labels=(
  [$WEB_POD]="namespace=\"shop\",pod=\"web\",qos=\"burstable\",pod_uid=\"$WEB_UID\""
  [$APP]="namespace=\"shop\",pod=\"web\",container=\"app\",qos=\"burstable\",pod_uid=\"$WEB_UID\",container_id=\"$APP_ID\""
  [$DB_POD]="namespace=\"shop\",pod=\"db\",qos=\"guaranteed\",pod_uid=\"$DB_UID\""
  [$PG]="namespace=\"shop\",pod=\"db\",container=\"postgres\",qos=\"guaranteed\",pod_uid=\"$DB_UID\",container_id=\"$PG_ID\""
)
for cg in "${!labels[@]}"; do
  for family in psi_cpu_waiting_seconds_total psi_cpu_stalled_seconds_total psi_memory_waiting_seconds_total \
    psi_memory_stalled_seconds_total psi_io_waiting_seconds_total psi_io_stalled_seconds_total; do
    [ -n "$(sample "$family{cgroup=\"/$cg\",${labels[$cg]}}" <<<"$body")" ] ||
      die "/metrics has no $family{cgroup=\"/$cg\",${labels[$cg]}}: $(grep -F "/$cg\"" <<<"$body" | head -3)"
  done
  n=$(grep -c "^psi_[a-z]*_[a-z]*_seconds_total{cgroup=\"/$cg\"" <<<"$body")
  [ "$n" = $series_per_cgroup ] || die "/$cg has $n series, not $series_per_cgroup"
done
for id in "$WEB_PAUSE" "$DB_PAUSE"; do
  ! grep -qF "$id" <<<"$body" || die "a sandbox ($id) is exported"
done
[ "$(sample psi_node_cgroups <<<"$body")" = 4 ] || die "psi_node_cgroups is not 4"
[ "$(sample psi_node_sandboxes <<<"$body")" = 2 ] || die "psi_node_sandboxes is not 2"
! grep -q '_ratio{' <<<"$body" || die "averages without --averages"
! grep -q 'reason="permission"' <<<"$body" || die "reads refused: $(grep psi_read_errors_total <<<"$body")"
promtool check metrics <<<"$body" || die "promtool check metrics"
log "/metrics: 4 cgroups with their names from the log tree, $series_per_cgroup series each, sandboxes left out, $(wc -c <<<"$body") bytes"

# --- busy loops in the app container ---------------------------------------
idle_total=$(some_total "$TREE/$APP/cpu.pressure")
# Three loops on two CPUs always have one waiting; niced, to spare the
# machine's other work. They run until cleanup, for Prometheus's rates too.
for _ in 1 2 3; do
  nice -n 19 sh -c 'while :; do :; done' &
  burners+=($!)
  echo $! >"$TREE/$APP/cgroup.procs"
done
app_line="psi_cpu_waiting_seconds_total{cgroup=\"/$APP\",${labels[$APP]}}"
burned=false
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt $deadline ]; do
  sleep 0.5
  before=$(some_total "$TREE/$APP/cpu.pressure")
  body=$(get /metrics || true)
  after=$(some_total "$TREE/$APP/cpu.pressure")
  seconds=$(sample "$app_line" <<<"$body")
  [ -n "$seconds" ] || continue
  reported=$(awk -v s="$seconds" 'BEGIN { printf "%.0f", s * 1e6 }')
  if [ "$before" -gt "$reported" ] || [ "$reported" -gt "$after" ]; then
    die "reported $reported µs; the app container's cgroup said $before then $after"
  fi
  if [ "$reported" -gt "$idle_total" ]; then
    burned=true
    break
  fi
done
$burned || die "the app container's cpu waiting did not rise above $idle_total µs within 30 s"
log "burn: app container cpu some total $idle_total -> $reported µs reported (its own cgroup's file)"

# --- what Prometheus made of it ------------------------------------------------
found=
deadline=$(($(date +%s) + 30))
while [ "$(date +%s)" -lt $deadline ]; do
  found=$(promql 'namespace_pod:psi_cpu_waiting_seconds:rate5m{namespace="shop",pod="web"} > 0' 2>/dev/null || true)
  [ -n "$found" ] && break
  sleep 0.3
done
[ -n "$found" ] || die "no recorded cpu waiting rate for shop/web within 30 s: $(tail -5 "$WORK/prometheus.log")"
up=$(promql 'up')
if [ "$(wc -l <<<"$up")" != 1 ] || ! grep -q '"job": "psi-exporter-node"' <<<"$up" ||
  ! grep -q '"node": "test-node"' <<<"$up"; then
  die "the targets are not the node job's one target: $up"
fi
sample_json=$(promql "psi_cpu_waiting_seconds_total{container=\"app\"}")
for kv in '"namespace": "shop"' '"pod": "web"' '"container": "app"' '"node": "test-node"' '"job": "psi-exporter-node"'; do
  grep -qF "$kv" <<<"$sample_json" || die "the app container's series lacks $kv: $sample_json"
done
exported=$(promql 'count({__name__=~"psi_.+", exported_namespace!=""}) or count({__name__=~"psi_.+", exported_pod!=""})')
[ -z "$exported" ] || die "samples were relabelled exported_*: $exported"
rate=$(promql 'rate(psi_cpu_waiting_seconds_total{container="app"}[10s])')
[[ $rate == *' '[0-9]* ]] && [[ $rate != *' 0' ]] || die "the app container's rate is not above 0: $rate"
db=$(promql 'namespace_pod:psi_cpu_waiting_seconds:rate5m{pod="db"}')
[[ $db == *' 0' ]] || die "the idle pod's recorded rate is not 0: $db"
log "prometheus ($(since "$prom_started") s): the node job's one target (node=\"test-node\"), the generic job none, samples keep namespace and pod; rate(...{container=\"app\"}[10s]) ${rate##* }; recorded (a 5m rate of seconds of samples) shop/web ${found##* }, shop/db ${db##* }"
kill "$prometheus_pid" && wait "$prometheus_pid" 2>/dev/null
prometheus_pid=

# --- stopping, as the kubelet does -------------------------------------------
stopping=$(now)
pm stop -t 5 "$EXPORTER" >/dev/null
stop_seconds=$(since "$stopping")
exit_code=$(pm inspect "$EXPORTER" --format '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || die "the exporter exited with $exit_code (not a clean SIGTERM exit)"
grep -q 'SIGTERM: shutting down' <(pm logs "$EXPORTER" 2>&1) || die "the exporter's log has no SIGTERM shutdown"
pm kube play --down "$OVERLAY" >/dev/null
! pm pod exists "$POD" || die "the pod is still there after kube play --down"
log "the exporter stopped in $stop_seconds s, exit 0 on SIGTERM"

log "passed in $(since "$begun") s"
