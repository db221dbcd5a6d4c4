# shellcheck shell=bash
# Shared by the pod tests (tests/pod/run.sh, tests/pod/node.sh), sourced:
# what it takes to run the shipped image under podman on this kind of
# machine (shared/CONTAINERS.md), and to leave nothing behind.
#
# A script sets REPO, HERE and LOG_NAME, sources this file, then calls
# `pod_outside "$0" "$@"` first: that installs what is missing, builds the
# static exporter and re-executes the script in a private mount namespace
# (PSI_POD_INNER=1). Inside, `pod_inside` mounts cgroup2 and notes what
# podman state existed before, and the script's cleanup ends with
# `pod_cleanup_host` and `pod_left_behind`.

log() { printf '[%s %(%T)T] %s\n' "$LOG_NAME" -1 "$*"; }
die() {
  log "FAILED: $*" >&2
  exit 1
}
in_ci() { [ "${CI:-}" = true ] || [ "${CI:-}" = 1 ]; }

# Where cargo puts the static binary, CARGO_TARGET_DIR and config included.
static_bin() {
  local dir
  dir=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  echo "$dir/x86_64-unknown-linux-gnu/release/psi-exporter"
}

# --- outside the namespace ----------------------------------------------------

# Installs, builds, and re-executes SCRIPT inside a private mount namespace
# (capped at 600 s), then exits with its status. Returns only inside.
pod_outside() {
  local script=$1
  shift
  [ "${PSI_POD_INNER:-}" = 1 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    in_ci && die "needs root (CI=true)"
    log "skipped: needs root"
    exit 0
  fi
  local need=() p
  # podman as shared/CONTAINERS.md installed it (with its recommends), plus
  # what the tests call; netavark and iptables named, not left to chance.
  for p in podman buildah runc catatonit netavark aardvark-dns iptables iproute2 \
    busybox-static bpftool curl file python3 python3-yaml prometheus; do
    dpkg-query -W -f '${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || need+=("$p")
  done
  if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    timeout 300 apt-get update -qq
    # No kubernetes-client: it conflicts with a kubectl already installed.
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq "${need[@]}" >/dev/null
    # The prometheus package starts a server on :9090; only the binary is wanted.
    if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
      systemctl stop prometheus || true
    fi
  fi
  command -v podman >/dev/null || die "podman is not installed and apt-get did not install it"
  log "building the static exporter"
  (cd "$REPO" && RUSTFLAGS='-C target-feature=+crt-static' timeout 900 \
    cargo build --release --locked -p psi-exporter --target x86_64-unknown-linux-gnu)
  local bin
  bin=$(static_bin)
  file -L "$bin" | grep -q 'static' || die "$bin is not statically linked: $(file -L "$bin")"
  # The rest in a private mount namespace, capped so that it cannot hang CI;
  # the inner script cleans up on TERM too.
  local rc=0
  PSI_POD_INNER=1 PSI_POD_BIN=$bin timeout --kill-after=30 600 \
    unshare --mount --propagation private bash "$script" "$@" || rc=$?
  [ $rc = 124 ] && log "FAILED: timed out after 600 s" >&2
  exit $rc
}

# --- inside the namespace -----------------------------------------------------

# cgroup2 on /sys/fs/cgroup, podman's configuration, a work directory, and
# a note of the podman state that existed before (cleanup removes only what
# this run made). Sets CG, WORK, BIN.
pod_inside() {
  if [ "$(stat -f -c %T /sys/fs/cgroup)" != cgroup2fs ]; then
    mount -t cgroup2 cgroup2 /sys/fs/cgroup
  fi
  export CONTAINERS_CONF=$HERE/containers.conf
  CG=/sys/fs/cgroup
  BIN=${PSI_POD_BIN:?set by pod_outside}
  WORK=$(mktemp -d /tmp/psi-pod-test.XXXXXX)
  images_before=$(podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null || true)
  chains_before=$(iptables-save 2>/dev/null | grep -o '^:NETAVARK[^ ]*' | sort -u || true)
  netns_before=$(ls /run/netns 2>/dev/null || true)
  had_bridge=false
  ip link show podman0 >/dev/null 2>&1 && had_bridge=true
  had_libpod_parent=false
  [ -d "$CG/libpod_parent" ] && had_libpod_parent=true
  pod_cgroup=
  made_images=()
}

pm() { timeout 120 podman "$@"; }

# pod_exit RC LEFT: says what was left behind (LEFT, a list; a leftover
# fails a passing run) and exits with RC.
pod_exit() {
  local rc=$1 left=$2
  if [ -n "$left" ]; then
    log "LEFT BEHIND:$left" >&2
    [ "$rc" = 0 ] && rc=1
  else
    log "cleaned up: nothing left behind"
  fi
  exit "$rc"
}

# pod_trap: runs `cleanup` on exit, and exits on TERM and INT as a shell does.
pod_trap() {
  trap cleanup EXIT
  trap 'exit 143' TERM
  trap 'exit 130' INT
}

# pod_failed RC CONTAINER: after a failure (RC not 0), what podman knows
# and the last lines of CONTAINER's log, before the cleanup removes them.
pod_failed() {
  [ "$1" = 0 ] && return 0
  log "failed (exit $1); state and logs before cleanup:"
  timeout 20 podman pod ps 2>&1
  timeout 20 podman ps -a --format '{{.Names}} {{.Status}}' 2>&1
  timeout 20 podman logs --tail 30 "$2" 2>&1 | sed 's/^/  exporter: /'
}

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Builds the shipped image (deploy/Dockerfile.scratch) around the static
# binary, as IMAGE.
pod_build_exporter_image() {
  mkdir -p "$WORK/exporter"
  cp "$BIN" "$WORK/exporter/psi-exporter"
  made_images+=("$1")
  pm build -q --pull=never -f "$REPO/deploy/Dockerfile.scratch" -t "$1" "$WORK/exporter" >/dev/null
}

# Builds the busybox image of tests/pod/Containerfile.busybox as IMAGE.
pod_build_busybox_image() {
  mkdir -p "$WORK/busybox/rootfs/bin" "$WORK/busybox/rootfs/tmp"
  cp /bin/busybox "$WORK/busybox/rootfs/bin/busybox"
  local a
  for a in $(/bin/busybox --list); do
    [ "$a" = busybox ] || ln -s busybox "$WORK/busybox/rootfs/bin/$a"
  done
  made_images+=("$1")
  pm build -q --pull=never -f "$HERE/Containerfile.busybox" -t "$1" "$WORK/busybox" >/dev/null
}

# `kube play --start=false` of FILE, the pod cgroup's device program
# detached (it stops runc from opening /dev/null), then `pod start` of POD.
# Sets pod_cgroup.
pod_play() {
  local file=$1 pod=$2
  pm kube play --start=false "$file" >/dev/null
  pod_cgroup=$(pm pod inspect "$pod" --format '{{.CgroupPath}}')
  if [ -z "$pod_cgroup" ] || [ ! -d "$CG$pod_cgroup" ]; then die "no pod cgroup at $CG$pod_cgroup"; fi
  local detached=0 id
  for id in $(bpftool cgroup show "$CG$pod_cgroup" 2>/dev/null | awk '$2 ~ /device/ { print $1 }'); do
    bpftool cgroup detach "$CG$pod_cgroup" device id "$id"
    detached=$((detached + 1))
  done
  log "pod cgroup $pod_cgroup: detached $detached device program(s)"
  pm pod start "$pod" >/dev/null
}

# Waits up to 30 s for PATH on 127.0.0.1:PORT to answer 200.
wait_200() {
  local port=$1 path=$2 status=
  for _ in $(seq 150); do
    status=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$port$path" || true)
    [ "$status" = 200 ] && return 0
    sleep 0.2
  done
  die "$path answered '$status' within 30 s"
}

# The value of the first sample whose name (and leading labels) is $1.
sample() {
  awk -v p="$1" 'index($0, p) == 1 { c = substr($0, length(p) + 1, 1); if (c == " " || c == "{" || c == "," || c == "}") { print $NF; exit } }'
}
# GET a path of the exporter at 127.0.0.1:$PORT (set by the script).
# shellcheck disable=SC2153
get() { curl -sS --max-time 3 "http://127.0.0.1:$PORT$1"; }
# `some total` (µs) of a pressure file.
some_total() { awk '/^some/ { sub("total=", "", $5); print $5 }' "$1"; }
# The host pid of a container's main process, and the cgroup of a pid.
host_pid() { pm inspect "$1" --format '{{.State.Pid}}'; }
cgroup_of() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# Removes what this run left on the host after the pod itself is gone: the
# images it built (and podman's pause image, if it made it), the pod and
# libpod_parent cgroups, netavark's iptables chains, bridge and netns files,
# and the work directory.
pod_cleanup_host() {
  local img
  for img in "${made_images[@]}" $(timeout 20 podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep '^localhost/podman-pause:'); do
    case " ${made_images[*]} " in
      *" $img "*) ;;
      *) grep -qxF "$img" <<<"$images_before" && continue ;;
    esac
    timeout 60 podman rmi -f "$img" >/dev/null 2>&1
  done
  # Cgroups left by podman's cgroupfs manager: the pod's, then libpod_parent.
  if [ -n "$pod_cgroup" ] && [ -d "$CG$pod_cgroup" ]; then
    find "$CG$pod_cgroup" -depth -type d -exec rmdir {} + 2>/dev/null
  fi
  if ! $had_libpod_parent && [ -d "$CG/libpod_parent" ]; then
    find "$CG/libpod_parent" -depth -type d -exec rmdir {} + 2>/dev/null
  fi
  # netavark's iptables chains, bridge and netns files made by this run.
  local chains c t rule
  chains=$(iptables-save 2>/dev/null | grep -o '^:NETAVARK[^ ]*' | sort -u | sed 's/^://')
  if [ -n "$chains" ]; then
    for c in $chains; do
      grep -qx ":$c" <<<"$chains_before" && continue
      for t in nat filter; do
        # Unhook from the built-in chains first, then flush and delete.
        iptables -t $t -S 2>/dev/null | grep -- "-j $c\b" | grep '^-A' | sed 's/^-A/-D/' |
          while read -r rule; do eval iptables -t $t "$rule" 2>/dev/null; done
        iptables -t $t -F "$c" 2>/dev/null
      done
    done
    for c in $chains; do
      grep -qx ":$c" <<<"$chains_before" && continue
      for t in nat filter; do iptables -t $t -X "$c" 2>/dev/null; done
    done
  fi
  if ! $had_bridge && ip link show podman0 >/dev/null 2>&1; then
    ip link del podman0 2>/dev/null
  fi
  local f n
  for f in /run/netns/*; do
    [ -e "$f" ] || continue
    n=${f##*/}
    grep -qxF "$n" <<<"$netns_before" && continue
    umount "/run/netns/$n" 2>/dev/null
    rm -f "/run/netns/$n"
  done
  rm -rf "$WORK"
}

# What is left of POD and of the host state this run made, as a list (empty
# when nothing is).
pod_left_behind() {
  local pod=$1 left=
  timeout 20 podman pod exists "$pod" 2>/dev/null && left+=" pod"
  [ -n "$(timeout 20 podman ps -aq 2>/dev/null)" ] && left+=" containers"
  timeout 20 podman images --format '{{.Repository}}:{{.Tag}}' 2>/dev/null | grep -q '^localhost/psi-pod-test/' && left+=" images"
  [ -n "$pod_cgroup" ] && [ -d "$CG$pod_cgroup" ] && left+=" cgroup:$pod_cgroup"
  ! $had_libpod_parent && [ -d "$CG/libpod_parent" ] && left+=" cgroup:/libpod_parent"
  iptables-save 2>/dev/null | grep -o '^:NETAVARK[^ ]*' | sort -u | grep -vxF -f <(printf '%s\n' "$chains_before") >/dev/null && left+=" iptables"
  echo "$left"
}
