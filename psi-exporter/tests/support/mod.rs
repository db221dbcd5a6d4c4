//! Shared by the exporter's end-to-end tests: a simulated pod on the real
//! kernel and the built exporter started as the seed's manifests start it.

#![allow(dead_code)] // Each test file uses its own subset.

pub mod kubelet;

use std::collections::HashSet;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{ChildStderr, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use psi_testkit::cgroup::TestCgroup;
use psi_testkit::http::{self, sample};
use psi_testkit::pod::{self, FlagLayout};
use psi_testkit::process::{Process, eventually, eventually_every};

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

    /// Restarts the container: its main process killed (SIGKILL, if it
    /// still runs) and reaped, a new one started in its cgroup with its flag.
    pub fn restart(&mut self) {
        let _ = self.container.signal("KILL");
        self.container.child.wait().expect("reap the container");
        self.container = start_container(self.app.path(), &self.flag);
    }

    /// Starts the exporter in the sidecar on `port`, with `extra` flags.
    pub fn exporter(&self, port: u16, extra: &[&str]) -> Process {
        start_exporter(port, self.flag_dir.path(), &self.sidecar, extra)
    }
}

/// Starts the built exporter as the seed's manifests do: `PORT` and the
/// flag, rediscovering every 200 ms unless `extra` says otherwise.
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
        .args(["--listen", "127.0.0.1"]);
    if !extra.contains(&"--rediscover-interval") {
        command.args(["--rediscover-interval", "200ms"]);
    }
    command
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

/// The `cgroup` label of each series of `family` in `body`.
pub fn cgroups_of(body: &str, family: &str) -> HashSet<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix(family)?.strip_prefix("{cgroup=\""))
        .filter_map(|l| l.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// No series is written twice in `body`.
pub fn no_duplicate_series(body: &str) {
    let mut seen = HashSet::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let key = line.rsplit_once(' ').map_or(line, |(k, _)| k);
        assert!(seen.insert(key), "duplicate series {key}");
    }
}

/// Whether a `/metrics` body is whole: it ends with the family every
/// scrape writes last, and a newline.
pub fn is_complete(body: &str) -> bool {
    body.ends_with('\n')
        && body
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("psi_exporter_scrape_duration_seconds "))
}

/// A body with every sample's value replaced: two bodies of one shape are
/// the same exposition to a linter, whatever their numbers.
fn shape(body: &str) -> String {
    body.lines()
        .map(|l| match l.rsplit_once(' ') {
            Some((series, _)) if !l.starts_with('#') => format!("{series} 1\n"),
            _ => format!("{l}\n"),
        })
        .collect()
}

/// `promtool check metrics` on each distinct shape of `bodies` (one run per
/// shape: a loop of scrapes gives hundreds of bodies and a few shapes).
pub fn promtool_check_all<'a>(bodies: impl IntoIterator<Item = &'a str>) -> usize {
    let mut shapes = HashSet::new();
    for body in bodies {
        if shapes.insert(shape(body)) {
            http::promtool_check(body);
        }
    }
    shapes.len()
}

/// Requests `path` in a loop on its own thread, each on a fresh connection,
/// until stopped: a scraper that never pauses while a test breaks things.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    count: Arc<AtomicUsize>,
    thread: Option<JoinHandle<Vec<Result<http::Response, String>>>>,
}

impl Scraper {
    /// Starts scraping 127.0.0.1:`port`'s `path`.
    pub fn start(port: u16, path: &'static str) -> Scraper {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicUsize::new(0));
        let (flag, n) = (stop.clone(), count.clone());
        let thread = std::thread::spawn(move || {
            let mut out = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                // A hang shows as the request's 10 s read timeout.
                out.push(http::get(port, path).map_err(|e| e.to_string()));
                n.fetch_add(1, Ordering::Relaxed);
            }
            out
        });
        Scraper {
            stop,
            count,
            thread: Some(thread),
        }
    }

    /// Responses so far.
    pub fn count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Waits (up to 20 s) until `more` further responses have come.
    pub fn wait_for(&self, more: usize) {
        let want = self.count() + more;
        let came = eventually_every(Duration::from_secs(20), Duration::from_millis(1), || {
            (self.count() >= want).then_some(())
        });
        assert!(came.is_some(), "{more} more responses within 20 s: a hang");
    }

    /// Stops, and gives every response in order; each request that failed
    /// (refused, reset, timed out) is an `Err`.
    pub fn stop(mut self) -> Vec<Result<http::Response, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("the scraper thread"))
            .unwrap_or_default()
    }
}

impl Drop for Scraper {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Every response answered 200 with a whole body; the bodies.
pub fn all_ok(responses: &[Result<http::Response, String>]) -> Vec<&str> {
    responses
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let r = r
                .as_ref()
                .unwrap_or_else(|e| panic!("response {i} failed: {e}"));
            assert_eq!(r.status, 200, "response {i}: {}", r.body);
            r.body.as_str()
        })
        .collect()
}

/// The pids of the target `/psi` names (empty while none is known).
pub fn psi_pids(port: u16) -> Vec<u64> {
    let r = http::get(port, "/psi").expect("GET /psi");
    assert_eq!(r.status, 200, "{}", r.body);
    let json: serde_json::Value = serde_json::from_str(&r.body).expect("/psi is JSON");
    json["target"]["pids"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default()
}

/// Waits (up to `limit`, asking every 5 ms) until `/psi` names exactly `pid`
/// as the target.
pub fn wait_for_pid(port: u16, pid: u32, limit: Duration) -> bool {
    eventually_every(limit, Duration::from_millis(5), || {
        (psi_pids(port) == [u64::from(pid)]).then_some(())
    })
    .is_some()
}

/// Reads the piped stderr of `process` up to a line holding `needle` (a
/// log line: the moment to act, with no probe connection of our own); the
/// reader, for the rest.
///
/// # Panics
///
/// When the process ends first, or its stderr is not piped.
pub fn log_until(process: &mut Process, needle: &str) -> std::io::BufReader<ChildStderr> {
    let stderr = process.child.stderr.take().expect("a piped stderr");
    let mut log = std::io::BufReader::new(stderr);
    let mut line = String::new();
    while !line.contains(needle) {
        line.clear();
        let n = log.read_line(&mut line).expect("read the log");
        assert!(n > 0, "the process ended before logging {needle:?}");
    }
    log
}
