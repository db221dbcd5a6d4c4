//! Shared by the exporter's end-to-end tests: a simulated pod on the real
//! kernel and the built exporter started as the seed's manifests start it.

#![allow(dead_code)] // Each test file uses its own subset.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use psi_testkit::cgroup::TestCgroup;
use psi_testkit::http::{self, sample, wait_for_port};
use psi_testkit::pod::{self, FlagLayout};
use psi_testkit::process::{Process, eventually};

/// A flag no other test uses, so parallel tests never see each other's pods.
pub fn unique_flag(name: &str) -> String {
    format!("psi-{name}-{}-{}", std::process::id(), rand_suffix())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Starts the monitored container's main process in `cg`, its flag in a
/// directory as the seed's ConfigMap volume lays it out.
pub fn start_container(cg: &Path, flag: &str) -> Process {
    pod::start_container(cg, flag, FlagLayout::Directory).expect("start the monitored container")
}

/// The exporter's own flag, in a ConfigMap-style directory.
pub fn sidecar_flag(flag: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("pid_flag_sc")).expect("mkdir");
    std::fs::write(dir.path().join("pid_flag_sc/pid_flag"), format!("{flag}\n")).expect("write");
    dir
}

/// Starts the built exporter as the seed's manifests do: `PORT` and the flag.
pub fn start_exporter(
    port: u16,
    flag_dir: &Path,
    sidecar_cg: &TestCgroup,
    extra: &[&str],
) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
        .args(extra)
        .env("PORT", port.to_string())
        .args(["--listen", "127.0.0.1", "--rediscover-interval", "200ms"])
        .arg("--pid-flag-file")
        .arg(flag_dir.join("pid_flag_sc"))
        .stdin(Stdio::null())
        .spawn()
        .expect("start psi-exporter");
    sidecar_cg
        .add_pid(child.id())
        .expect("move the exporter into the sidecar cgroup");
    let exporter = Process { child };
    assert!(
        wait_for_port(port, Duration::from_secs(10)),
        "the exporter listens on PORT"
    );
    exporter
}

/// Starts the built exporter on one cgroup directory (`--cgroup DIR`),
/// listening on 127.0.0.1:`port`, and waits until it listens.
pub fn start_exporter_on(port: u16, dir: &Path) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup"])
        .arg(dir)
        .stdin(Stdio::null())
        .spawn()
        .expect("start psi-exporter");
    let exporter = Process { child };
    assert!(
        wait_for_port(port, Duration::from_secs(10)),
        "the exporter listens"
    );
    exporter
}

/// The body of `GET /metrics`, which must answer 200.
pub fn metrics(port: u16) -> String {
    let r = http::get(port, "/metrics").expect("GET /metrics");
    assert_eq!(r.status, 200);
    r.body
}

/// The `some` total of `cg`'s cpu.pressure, in microseconds.
pub fn some_total_us(cg: &Path) -> u64 {
    psi_core::read::cgroup(cg, psi_core::Resource::Cpu)
        .expect("read the cgroup's cpu.pressure")
        .some
        .map_or(0, |r| r.total)
}

/// Waits for the exporter to report the container whose main process is `pid`.
pub fn wait_for_target(port: u16, pid: u32) -> String {
    let want = format!("pids=\"{pid}\"");
    eventually(Duration::from_secs(15), || {
        let body = metrics(port);
        (sample(&body, "psi_target_up") == Some(1.0) && body.contains(&want)).then_some(body)
    })
    .unwrap_or_else(|| {
        panic!(
            "the exporter finds the monitored pid {pid}:\n{}",
            metrics(port)
        )
    })
}
