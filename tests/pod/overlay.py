"""Writes the test-only overlay of deploy/sidecar.yaml for tests/pod/run.sh.

    python3 tests/pod/overlay.py SRC DST HOST_PORT BUSYBOX_IMAGE EXPORTER_IMAGE

The only differences from the manifest users get: each container's image is
replaced by a locally built one (`localhost/...`) with imagePullPolicy Never,
and the exporter's container port gets a hostPort on 127.0.0.1 so that curl on
the host reaches it, and `resources` are dropped: on this kind of machine the
cgroup2 hierarchy has no memory or cpu controller (cgroup v1 holds them), so
runc cannot write memory.max and the containers would not start; the
requests and limits are a scheduler's and the kernel's business, not what
this test checks. Everything else (flags, mounts, securityContext, probes,
resources) is kept as is; the script fails if the manifest no longer has the
shape it expects.
"""
import sys

import yaml

src, dst, host_port, busybox, exporter = sys.argv[1:6]
docs = [d for d in yaml.safe_load_all(open(src)) if d]
images = {"app": busybox, "psi-exporter": exporter}
seen = set()
ported = False
for d in docs:
    if d.get("kind") != "Deployment":
        continue
    for c in d["spec"]["template"]["spec"]["containers"]:
        if c["name"] not in images:
            sys.exit(f"overlay.py: unexpected container {c['name']!r} in {src}")
        c["image"] = images[c["name"]]
        c["imagePullPolicy"] = "Never"
        if "resources" not in c:
            sys.exit(f"overlay.py: container {c['name']!r} has no resources any more: update overlay.py")
        del c["resources"]
        seen.add(c["name"])
        for p in c.get("ports", []):
            if p["containerPort"] == 2333:
                p["hostPort"] = int(host_port)
                p["hostIP"] = "127.0.0.1"
                ported = True
if seen != set(images) or not ported:
    sys.exit(f"overlay.py: {src} no longer has the app and psi-exporter containers with port 2333")
with open(dst, "w") as f:
    yaml.safe_dump_all(docs, f, sort_keys=False)
