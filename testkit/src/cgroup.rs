//! Real cgroups holding real processes, made for one test and removed after
//! it, even when it fails.
//!
//! Pressure is only worth testing on the kernel's own files, so tests make
//! cgroups under the writable cgroup v2 mount ([`root`]) and put busy loops
//! or sleeping processes in them ([`TestCgroup`]).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::ci::missing;

/// The writable cgroup v2 mount (`/sys/fs/cgroup/unified` on hybrid hosts,
/// else `/sys/fs/cgroup`), when running as root; otherwise `None` after
/// reporting the requirement [`missing`].
pub fn root() -> Option<PathBuf> {
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

/// Numbers the cgroups of this test binary, whose tests run in parallel.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

impl TestCgroup {
    /// Creates `<parent>/psi-test-<name>-<pid>-<n>`: unique to this test
    /// binary and call, so parallel tests and binaries never share one.
    pub fn new(parent: &Path, name: &str) -> io::Result<Self> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self::named(
            parent,
            &format!("psi-test-{name}-{}-{n}", std::process::id()),
        )
    }

    /// Creates `<parent>/<name>` exactly, for a layout whose names matter
    /// (a kubelet's `kubepods.slice/...`). Unique only under a parent made
    /// by [`new`](TestCgroup::new); it must drop before that parent.
    pub fn named(parent: &Path, name: &str) -> io::Result<Self> {
        Self::named_os(parent, std::ffi::OsStr::new(name))
    }

    /// [`named`](TestCgroup::named) for any name the kernel allows, such as
    /// one that is not UTF-8 (every byte but `/`, NUL and newline).
    pub fn named_os(parent: &Path, name: &std::ffi::OsStr) -> io::Result<Self> {
        let path = parent.join(name);
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

/// `rmdir` a cgroup, retrying for up to 10 s while its last processes finish
/// exiting (EBUSY). A cgroup already gone is not an error.
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
