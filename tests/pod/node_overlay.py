"""Writes the test-only overlay of deploy/daemonset.yaml for tests/pod/node.sh.

    python3 tests/pod/node_overlay.py SRC DST HOST_PORT EXPORTER_IMAGE CGROUP_DIR POD_LOGS_DIR CONTAINER_LOGS_DIR

podman 4.3 plays no DaemonSet (shared/CONTAINERS.md), so the DaemonSet's own
pod template is played as a Deployment with one replica. The only other
differences from the manifest users get:
  - the image is the locally built one, imagePullPolicy Never;
  - the exporter's container port gets a hostPort on 127.0.0.1, so that curl
    on the host reaches it;
  - `resources` are dropped: this cgroup2 hierarchy has no memory or cpu
    controller (cgroup v1 holds them), so runc could not apply them;
  - the three hostPaths point at the test's own cgroup subtree and log tree
    instead of the host's /sys/fs/cgroup, /var/log/pods and
    /var/log/containers (the mount paths inside the container, and so the
    flags, stay as written);
  - an env entry taken from a fieldRef, which `kube play` refuses, becomes a
    literal value (the manifest has none today).
Everything else (args, securityContext, probes, annotations, the Service) is
kept as is; the script fails if the manifest no longer has the shape it
expects.
"""
import sys

import yaml

src, dst, host_port, image, cgroup_dir, pod_logs, container_logs = sys.argv[1:8]
hostpaths = {
    "/sys/fs/cgroup": cgroup_dir,
    "/var/log/pods": pod_logs,
    "/var/log/containers": container_logs,
}
literals = {
    "spec.nodeName": "test-node",
    "metadata.namespace": "psi-system",
    "metadata.name": "psi-exporter-node-pod-0",
    "status.hostIP": "127.0.0.1",
    "status.podIP": "127.0.0.1",
}


def shape(msg):
    sys.exit(f"node_overlay.py: {src}: {msg}: update tests/pod/node_overlay.py")


docs = [d for d in yaml.safe_load_all(open(src)) if d]
daemonsets = [d for d in docs if d.get("kind") == "DaemonSet"]
if len(daemonsets) != 1:
    shape(f"{len(daemonsets)} DaemonSets, not one")
ds = daemonsets[0]
deployment = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": ds["metadata"],
    "spec": {
        "replicas": 1,
        "selector": ds["spec"]["selector"],
        "template": ds["spec"]["template"],
    },
}
pod = deployment["spec"]["template"]["spec"]
containers = pod["containers"]
if [c["name"] for c in containers] != ["psi-exporter"]:
    shape(f"containers {[c['name'] for c in containers]}, not [psi-exporter]")
c = containers[0]
c["image"] = image
c["imagePullPolicy"] = "Never"
if "resources" not in c:
    shape("no resources any more")
del c["resources"]
ported = False
for p in c.get("ports", []):
    if p["containerPort"] == 2333:
        p["hostPort"] = int(host_port)
        p["hostIP"] = "127.0.0.1"
        ported = True
if not ported:
    shape("no container port 2333")
for e in c.get("env", []):
    field = ((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath")
    if field:
        if field not in literals:
            shape(f"env {e['name']} from fieldRef {field}, which has no literal here")
        e.pop("valueFrom")
        e["value"] = literals[field]
seen = set()
for v in pod.get("volumes", []):
    hp = v.get("hostPath")
    if hp is None:
        continue
    if hp["path"] not in hostpaths:
        shape(f"an unexpected hostPath {hp['path']}")
    seen.add(hp["path"])
    hp["path"] = hostpaths[hp["path"]]
if seen != set(hostpaths):
    shape(f"hostPaths {sorted(seen)}, not {sorted(hostpaths)}")
out = [deployment if d is ds else d for d in docs]
with open(dst, "w") as f:
    yaml.safe_dump_all(out, f, sort_keys=False)
