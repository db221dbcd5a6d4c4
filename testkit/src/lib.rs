//! Test support for psi: real cgroups holding real processes, cleaned up even
//! when a test fails, and requirements that fail loudly in CI.
//!
//! Tests that need root, a cgroup v2 mount or a Debian tool call
//! [`cgroup_root`] or [`tool`] first. In CI (`CI=true`) a missing requirement
//! panics with what to install; on a developer's machine it returns `None`
//! and the test prints why it skipped.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// True when running in CI, where missing requirements are failures.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Reports a missing requirement: panics in CI, prints a skip notice elsewhere.
pub fn missing(what: &str) {
    if in_ci() {
        panic!("CI=true and {what}: this test must run in CI");
    }
    eprintln!("skipping: {what} (set CI=true to make this a failure)");
}

/// The writable cgroup v2 mount (`/sys/fs/cgroup/unified` on hybrid hosts,
/// else `/sys/fs/cgroup`), when running as root.
pub fn cgroup_root() -> Option<PathBuf> {
    if !is_root() {
        missing("not running as root (real cgroups are needed)");
        return None;
    }
    for dir in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
        let dir = Path::new(dir);
        if dir.join("cgroup.procs").exists() && dir.join("cpu.pressure").exists() {
            return Some(dir.to_owned());
        }
    }
    missing("no cgroup v2 mount with pressure files at /sys/fs/cgroup/unified or /sys/fs/cgroup");
    None
}

/// The path of an external program, such as `promtool`.
pub fn tool(name: &str, package: &str) -> Option<PathBuf> {
    // An unset PATH is a missing tool too, reported like any other.
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    if found.is_none() {
        missing(&format!(
            "`{name}` is not installed (apt-get install {package})"
        ));
    }
    found
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// A real cgroup made for one test, with the processes it put there. Dropping
/// it kills those processes and removes the cgroup.
#[derive(Debug)]
pub struct TestCgroup {
    path: PathBuf,
    children: Vec<Child>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestCgroup {
    /// Creates `<root>/psi-test-<name>-<pid>-<n>`.
    pub fn new(root: &Path, name: &str) -> io::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = root.join(format!("psi-test-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir(&path)?;
        Ok(TestCgroup {
            path,
            children: Vec::new(),
        })
    }

    /// The cgroup's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves a process into this cgroup.
    pub fn add_pid(&self, pid: u32) -> io::Result<()> {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string())
    }

    /// Starts `n` busy loops in this cgroup (each a `sh` spinning on the CPU).
    pub fn burn(&mut self, n: usize) -> io::Result<()> {
        for _ in 0..n {
            self.spawn(Command::new("sh").args(["-c", "while :; do :; done"]))?;
        }
        Ok(())
    }

    /// Starts a command and moves it into this cgroup; it is killed on drop.
    pub fn spawn(&mut self, cmd: &mut Command) -> io::Result<u32> {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let pid = child.id();
        self.children.push(child);
        self.add_pid(pid)?;
        Ok(pid)
    }

    /// Kills and reaps every process this cgroup started.
    pub fn stop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
        }
        for mut child in self.children.drain(..) {
            let _ = child.wait();
        }
    }

    /// Kills the processes and removes the cgroup now, reporting failure.
    pub fn remove(mut self) -> io::Result<()> {
        self.stop();
        remove_dir_retrying(&self.path)
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.stop();
        if let Err(e) = remove_dir_retrying(&self.path) {
            eprintln!("could not remove test cgroup {}: {e}", self.path.display());
        }
    }
}

/// `rmdir` a cgroup, retrying while its last processes finish exiting (EBUSY).
pub fn remove_dir_retrying(path: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(e),
        }
    }
}

/// Polls `f` every 200 ms until it returns `Some`, for at most `limit`.
pub fn eventually<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A free TCP port on 127.0.0.1 (bound and released: good enough for tests).
pub fn free_port() -> io::Result<u16> {
    std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// A response read by [`http_get`].
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// The header block, as received.
    pub headers: String,
    /// The body.
    pub body: String,
}

/// A minimal HTTP/1.1 request over a fresh connection (`Connection: close`),
/// with a 10 s timeout: enough to test a server without an HTTP client crate.
pub fn http_request(port: u16, method: &str, path: &str) -> io::Result<HttpResponse> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status in {head:?}")))?;
    Ok(HttpResponse {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    })
}

/// `GET path`, see [`http_request`].
pub fn http_get(port: u16, path: &str) -> io::Result<HttpResponse> {
    http_request(port, "GET", path)
}

/// The value of the first sample in a Prometheus text body whose name and
/// labels start with `series` (e.g. `psi_target_up` or `foo{a="b"}`).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let value = rest.rsplit(' ').next()?;
        matches!(rest.chars().next(), Some(' ' | '{' | ',' | '}')).then(|| value.parse().ok())?
    })
}

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Process {
    /// The child.
    pub child: Child,
}

impl Process {
    /// Sends a signal to the process: `TERM`, `INT` or `KILL`.
    pub fn signal(&self, sig: &str) -> io::Result<()> {
        use rustix::process::{Pid, Signal, kill_process};
        let sig = match sig {
            "TERM" => Signal::TERM,
            "INT" => Signal::INT,
            "KILL" => Signal::KILL,
            other => return Err(io::Error::other(format!("no signal {other} here"))),
        };
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| io::Error::other("no such pid"))?;
        kill_process(pid, sig).map_err(io::Error::from)
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_timeout(
        &mut self,
        limit: Duration,
    ) -> io::Result<Option<std::process::ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Some(status));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.signal("TERM");
            if !matches!(self.wait_timeout(Duration::from_secs(2)), Ok(Some(_))) {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// Waits until something accepts connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    eventually(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(|_| ())
    })
    .is_some()
}

/// `promtool check metrics` on a body: the exposition is valid and lint-clean
/// (promtool prints nothing and exits 0). Skips, or fails in CI, without promtool.
pub fn promtool_check(body: &str) {
    use std::io::Write;
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
