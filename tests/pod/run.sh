#!/usr/bin/env bash
# The pod test: the image we ship, run from the manifest we ship
# (deploy/sidecar.yaml) with `podman kube play`, finds the monitored container
# and serves its pressure.
#
#   bash tests/pod/run.sh
#
# Needs root and a cgroup2 hierarchy (hybrid hosts too). It installs what it
# needs (podman, buildah, runc, catatonit, busybox-static, bpftool, curl,
# python3-yaml, prometheus: tests/pod/lib.sh) with apt-get, builds the static
# exporter (reusing the cargo target directory),
# builds two `FROM scratch` images without pulling anything, plays the
# manifest through a test-only overlay (tests/pod/overlay.py: local image
# names, imagePullPolicy Never, a hostPort on 127.0.0.1, no `resources`:
# this cgroup2 hierarchy has no memory or cpu controller), then checks:
#   - the exporter runs as the manifest asks (uid 0, SYS_PTRACE its only
#     capability, no_new_privs, seccomp) and that is enough to find the app;
#   - /health answers 200; /metrics carries the legacy and standard families
#     of the monitored container (its pid, its cgroup: not the sidecar's);
#   - a CPU burn started in the monitored container (podman exec) raises its
#     cpu counters, which are the app cgroup's own file, not the sidecar's;
#   - killing the monitored process: the restart policy brings it back with a
#     new pid and the exporter follows within seconds, without restarting
#     (psi_target_discoveries_total 2, same exporter pid, start time, restarts);
#   - stopping the pod stops the exporter cleanly (exit 0) within the 5 s grace;
#   - everything it created (pod, containers, images, volumes, cgroups,
#     netavark iptables chains, bridge, netns files) is removed, on failure too.
# It prints the image size, the pod's CPU and memory, and the seconds taken.
#
# How podman runs here (shared/CONTAINERS.md): every podman command runs in a
# private mount namespace with cgroup2 mounted on /sys/fs/cgroup (the script
# re-executes itself under `unshare -m`), with tests/pod/containers.conf
# (runc, cgroupfs, ulimits the sandbox can grant, no pids limit), and the pod
# cgroup's device eBPF program is detached between `kube play --start=false`
# and `pod start` (it stops runc from opening /dev/null).
#
# Without root it skips, unless CI=true, where it fails.
#
# scripts/test.sh runs it, then tests/pod/node.sh (it passed three times in
# a row here from a clean state before it was wired in). What the two share
# (install, build, namespace, play, cleanup) is tests/pod/lib.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/tests/pod
LOG_NAME="pod test"
TAG="pod-test"
EXPORTER_IMAGE=localhost/psi-pod-test/psi-exporter:$TAG
BUSYBOX_IMAGE=localhost/psi-pod-test/busybox:$TAG
POD=psi-example-pod-0 # a Deployment's pod: <deployment>-pod-0
APP=$POD-app
SIDECAR=$POD-psi-exporter
# shellcheck source=tests/pod/lib.sh
. "$HERE/lib.sh"

# Outside the namespace: install, build, re-execute; returns only inside.
pod_outside "${BASH_SOURCE[0]}" "$@"

# --- inside the namespace ---------------------------------------------------
pod_inside
OVERLAY=$WORK/sidecar.yaml

cleanup() {
  local rc=$?
  trap - EXIT TERM INT
  set +e
  pod_failed "$rc" "$SIDECAR"
  log "cleaning up"
  [ -f "$OVERLAY" ] && timeout 60 podman kube play --down "$OVERLAY" >/dev/null 2>&1
  if timeout 20 podman pod exists "$POD" 2>/dev/null; then
    timeout 60 podman pod rm -f -t 0 "$POD" >/dev/null 2>&1
  fi
  for v in $(timeout 20 podman volume ls -q 2>/dev/null); do
    case $v in psi-example*) timeout 20 podman volume rm -f "$v" >/dev/null 2>&1 ;; esac
  done
  pod_cleanup_host
  # What is left, said plainly (a leftover fails a passing run).
  local left
  left=$(pod_left_behind "$POD")
  pod_exit "$rc" "$left"
}
pod_trap

# A pid as seen inside the pod's pid namespace.
ns_pid() { awk '/^NSpid:/ { print $NF }' "/proc/$1/status"; }

# --- images -----------------------------------------------------------------
log "building the images (FROM scratch, nothing pulled)"
pod_build_exporter_image "$EXPORTER_IMAGE"
pod_build_busybox_image "$BUSYBOX_IMAGE"
image_bytes=$(pm image inspect "$EXPORTER_IMAGE" --format '{{.Size}}')
log "exporter image: $image_bytes bytes"
[ "$image_bytes" -lt 10000000 ] || die "the exporter image is $image_bytes bytes, not under 10 MB"

# --- play the manifest ------------------------------------------------------
PORT=$(free_port)
python3 "$HERE/overlay.py" "$REPO/deploy/sidecar.yaml" "$OVERLAY" "$PORT" "$BUSYBOX_IMAGE" "$EXPORTER_IMAGE"
log "podman kube play --start=false (hostPort 127.0.0.1:$PORT)"
pod_play "$OVERLAY" "$POD"
started=$(now)

# --- /health and /metrics ---------------------------------------------------
wait_200 "$PORT" /health
log "/health 200 after $(since "$started") s: $(get /health)"

app_pid=$(host_pid "$APP")
sidecar_pid=$(host_pid "$SIDECAR")
app_cg=$(cgroup_of "$app_pid")
sidecar_cg=$(cgroup_of "$sidecar_pid")
app_nspid=$(ns_pid "$app_pid")
[ "$app_cg" != "$sidecar_cg" ] || die "app and sidecar share the cgroup $app_cg"
log "app: host pid $app_pid, pod pid $app_nspid, cgroup $app_cg; sidecar cgroup $sidecar_cg"
# The manifest's privileges, as the kernel sees them: root, SYS_PTRACE as the
# one effective capability (bit 19), no_new_privs, a seccomp filter.
privs=$(awk '/^(Uid|CapEff|CapPrm|CapAmb|NoNewPrivs|Seccomp):/ { printf "%s%s ", $1, $2 }' "/proc/$sidecar_pid/status")
[ "$privs" = "Uid:0 CapPrm:0000000000080000 CapEff:0000000000080000 CapAmb:0000000000000000 NoNewPrivs:1 Seccomp:2 " ] ||
  die "the exporter's privileges are not the manifest's: $privs"
log "exporter privileges: $privs"

body=
for _ in $(seq 50); do
  body=$(get /metrics || true)
  [ "$(sample psi_target_up <<<"$body")" = 1 ] && break
  sleep 0.2
done
[ "$(sample psi_target_up <<<"$body")" = 1 ] || die "no target found within 10 s: $(get /health)"
grep -qF "path=\"/proc/$app_nspid/root/sys/fs/cgroup\"" <<<"$body" ||
  die "the target is not the app's pid $app_nspid: $(grep '^psi_target_info' <<<"$body")"
for family in cgroup_monitor_sc_monitored_cpu_psi cgroup_monitor_sc_monitored_mem_psi \
  cgroup_monitor_sc_monitored_io_psi psi_cpu_waiting_seconds_total psi_cpu_stalled_seconds_total \
  psi_memory_waiting_seconds_total psi_memory_stalled_seconds_total psi_io_waiting_seconds_total \
  psi_io_stalled_seconds_total psi_cpu_waiting_ratio psi_target_discoveries_total; do
  [ -n "$(sample "$family" <<<"$body")" ] || die "/metrics has no $family"
done
for w in 10s 60s 300s total; do
  for t in some full; do
    [ -n "$(sample "cgroup_monitor_sc_monitored_cpu_psi{type=\"$t\",window=\"$w\"" <<<"$body")" ] ||
      die "/metrics has no legacy cpu $t $w"
  done
done
[ "$(sample psi_target_discoveries_total <<<"$body")" = 1 ] || die "discoveries is not 1"
log "/metrics: legacy and standard families of the app's cgroup"

# The pod's footprint at rest: CPU from the pod cgroup's cpu.stat, memory as
# the resident sizes of its processes (no memory controller: no memory.current).
usage() { awk '$1 == "usage_usec" { print $2 }' "$1/cpu.stat"; }
idle_from=$(usage "$CG$pod_cgroup")
sleep 3
idle_usage=$(($(usage "$CG$pod_cgroup") - idle_from))
idle_sidecar=$(usage "$CG$sidecar_cg")
idle_rss=$(cat "$CG$pod_cgroup"/cgroup.procs "$CG$pod_cgroup"/*/cgroup.procs 2>/dev/null |
  while read -r p; do awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null; done |
  awk '{ n += $1 } END { print n + 0 }')
log "pod at rest: $idle_usage µs of CPU over 3 s (pod cgroup cpu.stat), resident $idle_rss kB (all its processes); the exporter's CPU since its start $idle_sidecar µs"
scrape_from=$(usage "$CG$sidecar_cg")
for _ in $(seq 100); do get /metrics >/dev/null; done
per_scrape=$((($(usage "$CG$sidecar_cg") - scrape_from) / 100))
log "the exporter's CPU for a /metrics scrape: $per_scrape µs (mean of 100, from its cgroup's cpu.stat)"

# --- a CPU burn in the monitored container ----------------------------------
idle_total=$(some_total "$CG$app_cg/cpu.pressure")
sidecar_idle=$(some_total "$CG$sidecar_cg/cpu.pressure")
pm exec -d "$APP" sh -c 'for i in 1 2 3 4; do (while :; do :; done) & done; wait' >/dev/null
burned=false
for _ in $(seq 60); do
  sleep 0.5
  before=$(some_total "$CG$app_cg/cpu.pressure")
  body=$(get /metrics || true)
  after=$(some_total "$CG$app_cg/cpu.pressure")
  side=$(some_total "$CG$sidecar_cg/cpu.pressure")
  seconds=$(sample psi_cpu_waiting_seconds_total <<<"$body")
  legacy=$(sample 'cgroup_monitor_sc_monitored_cpu_psi{type="some",window="total"' <<<"$body")
  if [ -z "$seconds" ] || [ -z "$legacy" ]; then continue; fi
  reported=$(awk -v s="$seconds" 'BEGIN { printf "%.0f", s * 1e6 }')
  # What /metrics says is the app cgroup's own file, read between two reads
  # of it, and not the sidecar's.
  [ "$before" -le "$reported" ] || die "reported $reported µs; the app cgroup said $before then $after (sidecar: $side)"
  [ "$reported" -le "$after" ] ||
    die "reported $reported µs; the app cgroup said $before then $after (sidecar: $side)"
  awk -v l="$legacy" -v r="$reported" 'BEGIN { exit !(l == r) }' ||
    die "legacy cpu some total $legacy differs from the standard $reported µs"
  if [ "$reported" -gt "$idle_total" ] && [ "$reported" -gt $((side + 100000)) ]; then
    burned=true
    break
  fi
done
$burned || die "the app's cpu stall did not rise above ${idle_total} µs (and the sidecar's $side) within 30 s"
log "burn: app cpu some total $idle_total -> $reported µs reported (the app cgroup's file); sidecar's own $sidecar_idle -> $side µs"
# shellcheck disable=SC2016 # expanded by the container's shell
pm exec "$APP" sh -c 'kill $(pidof sh) 2>/dev/null; true' >/dev/null 2>&1 || true

# --- the pod's CPU and memory ----------------------------------------------
pod_usage=$(awk '$1 == "usage_usec" { print $2 }' "$CG$pod_cgroup/cpu.stat")
sidecar_usage=$(awk '$1 == "usage_usec" { print $2 }' "$CG$sidecar_cg/cpu.stat")
mem="memory.current not present (no memory controller in this cgroup2 hierarchy)"
[ -f "$CG$pod_cgroup/memory.current" ] && mem="memory.current $(cat "$CG$pod_cgroup/memory.current") bytes"
sidecar_rss=$(awk '/^VmRSS:/ { print $2, $3 }' "/proc/$sidecar_pid/status")
log "pod cgroup $pod_cgroup: cpu.stat usage_usec $pod_usage (with the burn); $mem"
log "exporter: cpu usage_usec $sidecar_usage over $(since "$started") s (many scrapes), VmRSS $sidecar_rss"
timeout 20 podman stats --no-stream --format '{{.Name}} cpu={{.CPUPerc}} mem={{.MemUsage}}' 2>&1 | sed 's/^/  podman stats: /' || true

# --- the monitored process dies; the restart policy brings it back -----------
sidecar_before=$(pm inspect "$SIDECAR" --format '{{.State.Pid}} {{.State.StartedAt}} {{.RestartCount}}')
log "killing the app's process (host pid $app_pid)"
killed=$(now)
kill -KILL "$app_pid"
new_pid=
for _ in $(seq 150); do
  p=$(host_pid "$APP" 2>/dev/null || true)
  if [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$app_pid" ]; then
    new_pid=$p
    break
  fi
  sleep 0.2
done
[ -n "$new_pid" ] || die "the app was not restarted within 30 s"
restarted_after=$(since "$killed")
restarted=$(now)
new_nspid=$(ns_pid "$new_pid")
followed=false
for _ in $(seq 100); do
  body=$(get /metrics || true)
  if grep -qF "path=\"/proc/$new_nspid/root/sys/fs/cgroup\"" <<<"$body" &&
    [ "$(sample psi_target_discoveries_total <<<"$body")" = 2 ]; then
    followed=true
    break
  fi
  sleep 0.1
done
$followed || die "the exporter did not follow the restart (pod pid $new_nspid) within 10 s: $(get /health)"
follow_after_restart=$(since "$restarted")
follow_after_kill=$(since "$killed")
sidecar_after=$(pm inspect "$SIDECAR" --format '{{.State.Pid}} {{.State.StartedAt}} {{.RestartCount}}')
[ "$sidecar_before" = "$sidecar_after" ] ||
  die "the exporter restarted: pid, start, restarts '$sidecar_before' then '$sidecar_after'"
[ "$(get /health >/dev/null && curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/health")" = 200 ] ||
  die "/health is not 200 after the restart"
log "app restarted by podman after $restarted_after s (pod pid $app_nspid -> $new_nspid); exporter followed $follow_after_restart s later ($follow_after_kill s after the kill), discoveries 2, exporter not restarted ($sidecar_after)"

# --- stopping and removing the pod ------------------------------------------
# As the kubelet does: the containers get SIGTERM and the grace period (5 s
# here), then the sandbox goes. (`podman pod stop` does not do this with a
# shared pid namespace: it stops the infra container, pid 1 of that namespace,
# at the same time, and its exit SIGKILLs the exporter before it can handle
# SIGTERM: exit 137 and no shutdown in its log.)
stopping=$(now)
pm stop -t 5 "$SIDECAR" "$APP" >/dev/null
stop_seconds=$(since "$stopping")
exit_code=$(pm inspect "$SIDECAR" --format '{{.State.ExitCode}}')
[ "$exit_code" = 0 ] || die "the exporter exited with $exit_code (not a clean SIGTERM exit)"
awk -v s="$stop_seconds" 'BEGIN { exit !(s < 5) }' || die "the containers took $stop_seconds s to stop (grace 5 s)"
grep -q 'SIGTERM: shutting down' <(pm logs "$SIDECAR" 2>&1) || die "the exporter's log has no SIGTERM shutdown"
removing=$(now)
pm kube play --down "$OVERLAY" >/dev/null
down_seconds=$(since "$removing")
! pm pod exists "$POD" || die "the pod is still there after kube play --down"
log "containers stopped in $stop_seconds s, the exporter exited 0 on SIGTERM; kube play --down took $down_seconds s"

log "SUMMARY image=${image_bytes}B pod_idle_cpu_usec_per_3s=$idle_usage exporter_startup_cpu_usec=$idle_sidecar exporter_cpu_usec_per_scrape=$per_scrape pod_idle_rss=${idle_rss}kB pod_cpu_usage_usec=$pod_usage sidecar_cpu_usage_usec=$sidecar_usage sidecar_rss='$sidecar_rss' restart=${restarted_after}s follow=${follow_after_restart}s kill_to_follow=${follow_after_kill}s stop=${stop_seconds}s down=${down_seconds}s"
log "passed"
