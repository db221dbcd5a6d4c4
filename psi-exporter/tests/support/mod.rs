//! Shared by the exporter's end-to-end tests: a simulated pod on the real
//! kernel and the built exporter started as the seed's manifests start it.

#![allow(dead_code)] // Each test file uses its own subset.

pub mod kubelet;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use psi_testkit::cgroup::TestCgroup;
use psi_testkit::http::{self, sample};
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

/// A simulated pod: the monitored container's main process in its cgroup,
/// the sidecar's cgroup, and the flag both carry.
pub struct Pod {
    /// The container's main process; first, so that it is stopped before
    /// its cgroup is removed.
    pub container: Process,
    /// The monitored container's cgroup.
    pub app: TestCgroup,
    /// The sidecar's cgroup, where the exporter runs.
    pub sidecar: TestCgroup,
    /// The flag both carry.
    pub flag: String,
    /// The sidecar's own flag, as a ConfigMap volume lays it out.
    pub flag_dir: tempfile::TempDir,
}

impl Pod {
    /// Starts a pod named `name` under the cgroup root `root`.
    pub fn start(root: &Path, name: &str) -> Pod {
        let flag = unique_flag(name);
        let app = TestCgroup::new(root, &format!("{name}-app")).expect("app cgroup");
        let sidecar = TestCgroup::new(root, &format!("{name}-sidecar")).expect("sidecar cgroup");
        let flag_dir = sidecar_flag(&flag);
        let container = start_container(app.path(), &flag);
        Pod {
            container,
            app,
            sidecar,
            flag,
            flag_dir,
        }
    }

    /// The container's main process.
    pub fn pid(&self) -> u32 {
        self.container.child.id()
    }

    /// Starts the exporter in the sidecar on `port`, with `extra` flags.
    pub fn exporter(&self, port: u16, extra: &[&str]) -> Process {
        start_exporter(port, self.flag_dir.path(), &self.sidecar, extra)
    }
}

/// Starts the built exporter as the seed's manifests do: `PORT` and the flag.
pub fn start_exporter(
    port: u16,
    flag_dir: &Path,
    sidecar_cg: &TestCgroup,
    extra: &[&str],
) -> Process {
    start_exporter_via(&[], port, flag_dir, sidecar_cg, extra)
}

/// [`start_exporter`] through `wrapper`, a command that execs the rest of
/// its arguments (`setpriv ... --`, `unshare ...`); none when empty.
pub fn start_exporter_via(
    wrapper: &[&str],
    port: u16,
    flag_dir: &Path,
    sidecar_cg: &TestCgroup,
    extra: &[&str],
) -> Process {
    let mut command = exporter_via(wrapper);
    command
        .args(extra)
        .env("PORT", port.to_string())
        .args(["--listen", "127.0.0.1", "--rediscover-interval", "200ms"])
        .arg("--pid-flag-file")
        .arg(flag_dir.join("pid_flag_sc"));
    let exporter = http::serve(&mut command, port, Duration::from_secs(10));
    sidecar_cg
        .add_pid(exporter.child.id())
        .expect("move the exporter into the sidecar cgroup");
    exporter
}

/// Starts the built exporter on one cgroup directory (`--cgroup DIR`),
/// listening on 127.0.0.1:`port`, and waits until it listens.
pub fn start_exporter_on(port: u16, dir: &Path) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup"])
        .arg(dir);
    http::serve(&mut command, port, Duration::from_secs(10))
}

/// The built exporter as a command, run through `wrapper` when it is not
/// empty (its first word the program, the exporter's path appended).
pub fn exporter_via(wrapper: &[&str]) -> Command {
    let exe = env!("CARGO_BIN_EXE_psi-exporter");
    match wrapper.split_first() {
        None => Command::new(exe),
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(exe);
            command
        }
    }
}

/// The value of `field` (`CapEff:`, `Uid:`) in `/proc/<pid>/status`, trimmed.
pub fn status_field(pid: u32, field: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_owned())
}

/// Debian's Prometheus, started on 127.0.0.1 with `config` (YAML) written
/// into `dir`, which also holds its data; and its port.
pub fn start_prometheus(prometheus: &Path, dir: &Path, config: &str) -> (Process, u16) {
    let file = dir.join("prometheus.yml");
    std::fs::write(&file, config).expect("write the Prometheus config");
    let port = http::free_port().expect("port");
    let mut command = Command::new(prometheus);
    command
        .arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    (
        http::serve(&mut command, port, Duration::from_secs(30)),
        port,
    )
}

/// Runs an instant query on the Prometheus at `port`: the `result` array,
/// or `None` until Prometheus answers.
pub fn query(port: u16, promql: &str) -> Option<Vec<serde_json::Value>> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = http::get(port, &format!("/api/v1/query?query={encoded}")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    assert_eq!(json["status"], "success", "{promql}: {}", r.body);
    json["data"]["result"].as_array().cloned()
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
