//! What is monitored: the system, one cgroup, or the container found by its
//! pid_flag, followed across restarts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use psi_core::Pressure;
use psi_core::Resource;
use psi_core::cpu_stat::CpuStat;
use psi_core::discover::{self, DiscoverError};
use psi_core::read::{CpuStatFile, PressureSet, ReadError};

/// How the target is chosen.
#[derive(Debug)]
pub enum Mode {
    /// The system-wide `<proc_root>/pressure` files.
    System(PathBuf),
    /// One cgroup directory, fixed.
    Cgroup(PathBuf),
    /// The container whose pid_flag matches ours, found again when it restarts.
    Discover(discover::Config),
}

impl Mode {
    /// A word for logs and `/psi`: `system`, `cgroup` or `discover`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::System(_) => "system",
            Mode::Cgroup(_) => "cgroup",
            Mode::Discover(_) => "discover",
        }
    }
}

/// The place being read right now.
#[derive(Debug)]
pub struct Current {
    /// The cgroup directory, or `<proc_root>/pressure` for the system.
    pub path: PathBuf,
    /// The monitored processes (discover mode only).
    pub pids: Vec<u32>,
    root_cgroup: bool,
    files: PressureSet,
    cpu_stat: Option<CpuStatFile>,
    /// What discovery found (discover mode only), which knows whether its
    /// processes still run.
    found: Option<discover::Target>,
    /// A `--cgroup` directory found gone at the last read: logged once, and
    /// again when it is back.
    gone: bool,
}

/// What one read of the target gave.
#[derive(Debug)]
pub struct Readings {
    /// Each resource's pressure or why it could not be read, by [`Resource::index`].
    pub pressure: [Result<Pressure, ReadError>; 4],
    /// `cpu.stat`, where the target has one and it could be read.
    pub cpu_stat: Option<CpuStat>,
}

impl Readings {
    /// The values to expose, `None` where unreadable.
    pub fn values(&self) -> [Option<Pressure>; 4] {
        self.pressure.each_ref().map(|r| r.as_ref().ok().copied())
    }
}

/// The monitored target and its kept-open files.
#[derive(Debug)]
pub struct Target {
    mode: Mode,
    current: Option<Current>,
    rediscover_interval: Duration,
    last_search: Option<Instant>,
    last_error: Option<String>,
    /// Whether to keep `cpu.stat` open and read it (off with `--no-throttling`).
    cpu_stat: bool,
    /// Times a target was found (the first time included).
    pub discoveries: u64,
}

impl Target {
    /// A target for `mode`; a fixed one is opened at once, a discovered one
    /// at the first [`refresh`](Self::refresh). `cpu_stat`: whether a cgroup
    /// target's `cpu.stat` is read too (for the throttling families).
    pub fn new(mode: Mode, rediscover_interval: Duration, cpu_stat: bool) -> Self {
        let current = match &mode {
            Mode::System(proc_root) => Some(fixed(
                proc_root.join("pressure"),
                PressureSet::system_at(proc_root),
                None,
            )),
            Mode::Cgroup(dir) => Some(fixed(
                dir.clone(),
                PressureSet::cgroup(dir),
                cpu_stat.then(|| CpuStatFile::new(dir)),
            )),
            Mode::Discover(_) => None,
        };
        Target {
            mode,
            current,
            rediscover_interval,
            last_search: None,
            last_error: None,
            cpu_stat,
            discoveries: 0,
        }
    }

    /// The mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The place being read, if one is known.
    pub fn current(&self) -> Option<&Current> {
        self.current.as_ref()
    }

    /// Why no target is known, if discovery failed last time.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// True for the whole system's numbers: `/proc/pressure`, or a root
    /// cgroup, whose cpu `full` line is all zeros by definition.
    pub fn is_system(&self) -> bool {
        match (&self.mode, &self.current) {
            (Mode::System(_), _) => true,
            (_, Some(current)) => current.root_cgroup,
            (_, None) => false,
        }
    }

    /// In discover mode: drops a target whose processes all exited, and
    /// searches again (at most once per rediscover interval) when none is known.
    pub fn refresh(&mut self) {
        let Mode::Discover(config) = &self.mode else {
            return;
        };
        if let Some(current) = &self.current
            && !current.found.as_ref().is_some_and(|f| f.is_alive(config))
        {
            tracing::info!(pids = ?current.pids, cgroup = %current.path.display(), "monitored process exited; searching again");
            self.current = None;
            self.last_search = None;
        }
        if self.current.is_some() {
            return;
        }
        let now = Instant::now();
        if self
            .last_search
            .is_some_and(|t| now.duration_since(t) < self.rediscover_interval)
        {
            return;
        }
        self.last_search = Some(now);
        match discover::discover(config) {
            Ok(found) => {
                tracing::info!(pids = ?found.pids, cgroup = %found.cgroup.display(), "found the monitored container");
                self.discoveries += 1;
                self.last_error = None;
                self.current = Some(Current::found(found, self.cpu_stat));
            }
            Err(e) => self.searched_in_vain(&e),
        }
    }

    fn searched_in_vain(&mut self, e: &DiscoverError) {
        let text = error_chain(e);
        // Log a changed reason once, not on every scrape.
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "monitored container not found");
        }
        self.last_error = Some(text);
    }

    /// Reads every resource of the current target, or `None` when there is none.
    ///
    /// A cgroup found gone ([`cgroup_is_gone`]) is left at this read: in
    /// discover mode it is dropped, and searched for again at the next
    /// rediscovery; with `--cgroup` its files are reopened, so a cgroup
    /// re-created at the path is read, and none of them answers from what
    /// the removed cgroup's files said (irq's one-minute "unsupported").
    pub fn read(&mut self) -> Option<Readings> {
        let current = self.current.as_mut()?;
        let pressure = Resource::ALL.map(|r| current.files.read(r));
        let cpu_stat = current.cpu_stat.as_mut().and_then(|f| f.read().ok());
        match &self.mode {
            Mode::System(_) => {}
            Mode::Discover(_) => {
                if cgroup_is_gone(&current.path, &pressure) {
                    tracing::info!(cgroup = %current.path.display(), "monitored cgroup is gone; searching again");
                    // `last_search` is kept: the search waits for the
                    // rediscovery interval like any other, so a container
                    // whose cgroup is gone each time it is found is not
                    // searched for at every scrape.
                    self.current = None;
                }
            }
            Mode::Cgroup(dir) => {
                if cgroup_is_gone(dir, &pressure) {
                    if !current.gone {
                        tracing::warn!(cgroup = %dir.display(), "the cgroup is gone; reading it again at every scrape until it is back");
                    }
                    current.gone = true;
                    current.files = PressureSet::cgroup(dir);
                    current.cpu_stat = self.cpu_stat.then(|| CpuStatFile::new(dir));
                } else if current.gone && pressure.iter().any(Result::is_ok) {
                    tracing::info!(cgroup = %dir.display(), "the cgroup is back");
                    current.gone = false;
                }
            }
        }
        Some(Readings { pressure, cpu_stat })
    }
}

/// Whether the cgroup at `dir` is gone, judged from one read of its pressure
/// files (in [`Resource::index`] order): the one rule of when a target is
/// left.
///
/// Nothing read, and either
/// - every resource that is not unsupported reads gone: a kept-open file
///   answers "unsupported" from psi-core's one-minute cache (irq on kernels
///   without it in cgroups) long after its cgroup was removed;
/// - or the directory is no longer a cgroup: its path leads nowhere, or to a
///   cgroup2 directory without `cgroup.procs`, which every cgroup has. A
///   removed cgroup seen through a mount of it (the container's own
///   `/sys/fs/cgroup`, a cgroup namespace rooted there) stays an empty
///   directory whose pressure files read as unsupported.
///
/// The directory is looked at only when nothing was read, so a healthy
/// scrape costs no system call here.
pub fn cgroup_is_gone(dir: &Path, pressure: &[Result<Pressure, ReadError>]) -> bool {
    if pressure.iter().any(Result::is_ok) {
        return false;
    }
    let gone = |r: &Result<Pressure, ReadError>| matches!(r, Err(ReadError::Gone { .. }));
    let unsupported =
        |r: &Result<Pressure, ReadError>| matches!(r, Err(ReadError::Unsupported { .. }));
    if pressure.iter().any(gone) && pressure.iter().all(|r| gone(r) || unsupported(r)) {
        return true;
    }
    match std::fs::metadata(dir) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(_) => is_cgroup2(dir) && !dir.join("cgroup.procs").exists(),
    }
}

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Whether `dir` is on a cgroup v2 file system: a saved copy of a cgroup's
/// files is not, and has no `cgroup.procs` without being gone.
fn is_cgroup2(dir: &Path) -> bool {
    // `f_type` is a signed long of architecture-dependent width.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(dir).is_ok_and(|st| st.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

fn fixed(path: PathBuf, files: PressureSet, cpu_stat: Option<CpuStatFile>) -> Current {
    Current {
        root_cgroup: psi_core::read::is_root_cgroup(&path),
        path,
        pids: Vec::new(),
        files,
        cpu_stat,
        found: None,
        gone: false,
    }
}

impl Current {
    fn found(found: discover::Target, cpu_stat: bool) -> Self {
        Current {
            root_cgroup: psi_core::read::is_root_cgroup(&found.cgroup),
            path: found.cgroup.clone(),
            pids: found.pids.clone(),
            files: PressureSet::cgroup(&found.cgroup),
            cpu_stat: cpu_stat.then(|| CpuStatFile::new(&found.cgroup)),
            found: Some(found),
            gone: false,
        }
    }
}

/// An error and its causes, joined with `: `.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One resource's read.
    type Read = Result<Pressure, ReadError>;

    fn ok() -> Read {
        Ok(Pressure {
            some: None,
            full: None,
        })
    }

    fn gone() -> Read {
        Err(ReadError::Gone {
            path: "/x/cpu.pressure".into(),
        })
    }

    fn unsupported() -> Read {
        Err(ReadError::Unsupported {
            path: "/x/irq.pressure".into(),
        })
    }

    fn denied() -> Read {
        Err(ReadError::PermissionDenied {
            path: "/x/io.pressure".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        })
    }

    #[test]
    fn a_cgroup_is_gone_when_nothing_but_unsupported_says_otherwise() {
        let live = tempfile::tempdir().expect("tempdir");
        let removed = live.path().join("removed");
        let cases: [(&str, [Read; 4], bool, bool); 8] = [
            // (what, reads, gone with the directory there, gone without it)
            ("all read", [ok(), ok(), ok(), ok()], false, false),
            ("one read", [ok(), gone(), gone(), gone()], false, false),
            (
                "irq cached as unsupported",
                [gone(), gone(), gone(), unsupported()],
                true,
                true,
            ),
            ("all gone", [gone(), gone(), gone(), gone()], true, true),
            (
                "no PSI in cgroups",
                [unsupported(), unsupported(), unsupported(), unsupported()],
                false,
                true,
            ),
            (
                "a permission error is no proof",
                [gone(), gone(), denied(), unsupported()],
                false,
                true,
            ),
            (
                "all denied",
                [denied(), denied(), denied(), denied()],
                false,
                true,
            ),
            (
                "irq first",
                [unsupported(), gone(), gone(), gone()],
                true,
                true,
            ),
        ];
        for (what, reads, there, not_there) in cases {
            assert_eq!(
                cgroup_is_gone(live.path(), &reads),
                there,
                "{what}, directory there"
            );
            assert_eq!(
                cgroup_is_gone(&removed, &reads),
                not_there,
                "{what}, no directory"
            );
        }
    }

    #[test]
    fn cpu_stat_is_read_only_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n";
        std::fs::write(dir.path().join("cpu.pressure"), file).expect("cpu.pressure");
        std::fs::write(dir.path().join("cpu.stat"), "nr_periods 4\n").expect("cpu.stat");
        for wanted in [true, false] {
            let mode = Mode::Cgroup(dir.path().to_owned());
            let mut target = Target::new(mode, Duration::from_secs(1), wanted);
            let readings = target.read().expect("a fixed target");
            assert_eq!(readings.cpu_stat.is_some(), wanted);
            assert!(readings.pressure[Resource::Cpu.index()].is_ok());
        }
    }
}
