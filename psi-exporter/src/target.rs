//! What is monitored: the system, one cgroup, or the container found by its
//! pid_flag, followed across restarts.

use std::path::PathBuf;
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
    /// A cgroup found gone in discover mode is dropped, to be searched again.
    pub fn read(&mut self) -> Option<Readings> {
        let current = self.current.as_mut()?;
        let pressure = Resource::ALL.map(|r| current.files.read(r));
        let cpu_stat = current.cpu_stat.as_mut().and_then(|f| f.read().ok());
        let all_gone = pressure
            .iter()
            .all(|r| matches!(r, Err(ReadError::Gone { .. })));
        if all_gone && matches!(self.mode, Mode::Discover(_)) {
            tracing::info!(cgroup = %current.path.display(), "monitored cgroup is gone; searching again");
            self.current = None;
            self.last_search = None;
        }
        Some(Readings { pressure, cpu_stat })
    }
}

fn fixed(path: PathBuf, files: PressureSet, cpu_stat: Option<CpuStatFile>) -> Current {
    Current {
        root_cgroup: psi_core::read::is_root_cgroup(&path),
        path,
        pids: Vec::new(),
        files,
        cpu_stat,
        found: None,
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
