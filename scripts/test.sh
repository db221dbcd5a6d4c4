#!/usr/bin/env bash
# The whole test suite, as CI runs it: `bash scripts/test.sh`.
#
# On a fresh Debian machine of this project's kind (root, 2 CPUs, cgroup v2 at
# /sys/fs/cgroup/unified or /sys/fs/cgroup) it installs what it needs first.
# FUZZ_SECONDS sets the fuzz budget (default 60: the parse target's seconds,
# half that for each other target, see fuzz/run.sh; 0 skips fuzzing).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
need_apt=()
command -v tmux >/dev/null || need_apt+=(tmux)
command -v curl >/dev/null || need_apt+=(curl)
# strace: the fault test that proves the exporter writes nothing.
command -v strace >/dev/null || need_apt+=(strace)
# Load tests (psi-exporter/tests/load.rs) and the TLS benchmark.
command -v wrk >/dev/null || need_apt+=(wrk)
# Certificates for the TLS tests.
command -v openssl >/dev/null || need_apt+=(openssl)
# libfuzzer-sys builds libFuzzer's C++ sources for the fuzz step.
command -v g++ >/dev/null || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "not root: cannot install ${need_apt[*]}; tests needing them skip unless CI=true" >&2
  fi
fi
# Prometheus (the server for the end-to-end test, and promtool), the
# manifest validators.
bash deploy/validate.sh --install-only

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "no_std build of psi-core (and its no_std example)"
cargo build -p psi-core --no-default-features --lib --examples --locked

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "cargo test (unit, integration, real kernel, doc tests)"
cargo build --workspace --all-features --bins --locked
test_log=$(mktemp)
# The load tests' figures (wrk's p99, RSS), printed at the end.
PSI_LOAD_REPORT=$(mktemp)
export PSI_LOAD_REPORT
trap 'rm -f "$test_log" "$PSI_LOAD_REPORT"' EXIT
cargo test --workspace --all-features --locked 2>&1 | tee "$test_log"
# One total for the whole suite (cargo prints a line per test binary).
passed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^passed/) n += $i } END { print n + 0 }' "$test_log")
failed=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^failed/) n += $i } END { print n + 0 }' "$test_log")

step "psi-core examples"
bash psi-core/examples/run.sh

# The crate as crates.io would have it, built on its own with every feature
# (needs the crates.io index; about 15 s once the dependencies are fetched).
step "cargo package -p psi-core"
cargo package -p psi-core --locked --allow-dirty --all-features

step "deploy manifests"
bash deploy/validate.sh

# fuzz/ is its own workspace, which the checks above do not see.
step "cargo fmt --check in fuzz/"
(cd fuzz && cargo fmt -- --check)
if [ "$FUZZ_SECONDS" != 0 ]; then
  step "fuzz runs (AddressSanitizer; parse ${FUZZ_SECONDS}s, the other targets half that)"
  command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
  bash fuzz/run.sh "$FUZZ_SECONDS"
else
  # Building the targets to fuzz them checks them; skipped, they are still checked.
  step "cargo check in fuzz/ (fuzzing skipped)"
  (cd fuzz && cargo check --locked)
fi

step "pod tests (podman kube play): the sidecar, then the node DaemonSet"
bash tests/pod/run.sh
bash tests/pod/node.sh
step "soak, 60 s (benches/soak.sh: node mode over churning pods, on the pod tests' static build)"
BUILD=static DURATION=60s bash benches/soak.sh

step "all checks passed"
cat "$PSI_LOAD_REPORT"
echo "tests: ${passed} passed, ${failed} failed"
