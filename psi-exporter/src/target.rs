//! What is monitored: the system, one cgroup, or the container found by its
//! pid_flag, followed across restarts.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use psi_core::cgroup::Kind;
use psi_core::cpu_stat::CpuStat;
use psi_core::discover::{self, DiscoverError};
use psi_core::read::{self, CpuStatFile, PressureSet, Reading};
use psi_core::report::Chain;
use psi_core::target::Target;

/// How the target is chosen.
#[derive(Debug)]
pub enum Mode {
    /// The system-wide `<proc_root>/pressure` files.
    System(PathBuf),
    /// One cgroup directory, fixed.
    Cgroup(Target),
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

/// The target being read now, with its kept-open files.
#[derive(Debug)]
pub struct Active {
    /// What is read.
    pub target: Target,
    files: PressureSet,
    cpu_stat: Option<CpuStatFile>,
    /// What discovery found (discover mode only), which knows whether its
    /// processes still run.
    found: Option<discover::Container>,
    /// A `--cgroup` directory found gone at the last read: logged once, and
    /// again when it is back.
    gone: bool,
}

impl Active {
    fn new(target: Target, cpu_stat: bool, found: Option<discover::Container>) -> Self {
        let cpu_stat =
            (cpu_stat && target.kind != Kind::System).then(|| CpuStatFile::new(&target.dir));
        Active {
            files: target.pressure_set(),
            target,
            cpu_stat,
            found,
            gone: false,
        }
    }
}

/// What one read of the target gave.
#[derive(Debug)]
pub struct Scraped {
    /// Each resource's pressure, or why it could not be read.
    pub reading: Reading,
    /// `cpu.stat`, where the target has one and it could be read.
    pub cpu_stat: Option<CpuStat>,
}

/// The monitored target, followed across restarts.
#[derive(Debug)]
pub struct Tracker {
    mode: Mode,
    active: Option<Active>,
    /// The cgroup v2 mount, to name a discovered cgroup (`/kubepods/...`).
    cgroup_mount: Option<PathBuf>,
    rediscover_interval: Duration,
    last_search: Option<Instant>,
    last_error: Option<String>,
    /// Whether to keep `cpu.stat` open and read it (off with `--no-throttling`).
    cpu_stat: bool,
    /// Times a target was found (the first time included).
    pub discoveries: u64,
    /// Flags refused at the last search that found nothing, by reason
    /// ([`discover::FlagError::reason`]), in order of the reason's name.
    refused: Vec<(&'static str, u64)>,
}

impl Tracker {
    /// A tracker for `mode`; a fixed target is opened at once, a discovered
    /// one at the first [`refresh`](Self::refresh). `cpu_stat`: whether a
    /// cgroup's `cpu.stat` is read too (for the throttling families).
    pub fn new(
        mode: Mode,
        cgroup_mount: Option<PathBuf>,
        rediscover_interval: Duration,
        cpu_stat: bool,
    ) -> Self {
        let active = match &mode {
            Mode::System(proc_root) => Some(Active::new(Target::system(proc_root), false, None)),
            Mode::Cgroup(target) => Some(Active::new(target.clone(), cpu_stat, None)),
            Mode::Discover(_) => None,
        };
        Tracker {
            mode,
            active,
            cgroup_mount,
            rediscover_interval,
            last_search: None,
            last_error: None,
            cpu_stat,
            discoveries: 0,
            refused: Vec::new(),
        }
    }

    /// The mode.
    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The target being read, if one is known.
    pub fn active(&self) -> Option<&Active> {
        self.active.as_ref()
    }

    /// How many flags the last search refused, by reason: empty once a
    /// search finds the container.
    pub fn refused(&self) -> &[(&'static str, u64)] {
        &self.refused
    }

    /// Why no target is known, if discovery failed last time.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// In discover mode: drops a target whose processes all exited (and the
    /// pids of those that did from a target that lives on), and searches
    /// again (at most once per rediscover interval) when none is known.
    pub fn refresh(&mut self) {
        let Mode::Discover(config) = &self.mode else {
            return;
        };
        if let Some(active) = &mut self.active {
            let running = active
                .found
                .as_ref()
                .map(|f| f.running(config))
                .unwrap_or_default();
            if running.is_empty() {
                tracing::info!(pids = ?active.target.pids, cgroup = %active.target.dir.display(), "monitored process exited; searching again");
                self.active = None;
                self.last_search = None;
            } else if running != active.target.pids {
                // A process that carried the flag when the container was
                // found (a child of its main process) has exited: the
                // target lives on, without that pid.
                tracing::debug!(was = ?active.target.pids, now = ?running, "some of the monitored processes exited");
                active.target.pids = running;
            }
        }
        if self.active.is_some() {
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
                self.refused.clear();
                let kind = Kind::of(&found.cgroup).unwrap_or(Kind::Cgroup);
                let mut target =
                    Target::known(found.cgroup.clone(), kind, self.cgroup_mount.as_deref());
                target.pids = found.pids.clone();
                self.active = Some(Active::new(target, self.cpu_stat, Some(found)));
            }
            Err(e) => self.searched_in_vain(&e),
        }
    }

    fn searched_in_vain(&mut self, e: &DiscoverError) {
        self.refused.clear();
        if let DiscoverError::NotFound { refused, .. } = e {
            for &(_, reason) in refused.iter() {
                match self.refused.iter_mut().find(|(r, _)| *r == reason) {
                    Some((_, n)) => *n += 1,
                    None => self.refused.push((reason, 1)),
                }
            }
            self.refused.sort_unstable();
        }
        let text = Chain(e).to_string();
        // Log a changed reason once, not on every scrape.
        if self.last_error.as_deref() != Some(text.as_str()) {
            tracing::warn!(error = %text, "monitored container not found");
        }
        self.last_error = Some(text);
    }

    /// Reads every resource of the active target, or `None` when there is none.
    ///
    /// A cgroup found gone ([`read::is_gone`]) is left at this read: in
    /// discover mode it is dropped, and searched for again at the next
    /// rediscovery; with `--cgroup` its files are reopened, so a cgroup
    /// re-created at the path is read, and none of them answers from what
    /// the removed cgroup's files said (irq's one-minute "unsupported").
    pub fn read(&mut self) -> Option<Scraped> {
        let active = self.active.as_mut()?;
        let reading = active.files.read_all();
        let cpu_stat = active.cpu_stat.as_mut().and_then(|f| f.read().ok());
        let dir: &Path = &active.target.dir;
        match &self.mode {
            Mode::System(_) => {}
            Mode::Discover(_) => {
                if read::is_gone(dir, &reading) {
                    tracing::info!(cgroup = %dir.display(), "monitored cgroup is gone; searching again");
                    // `last_search` is kept: the search waits for the
                    // rediscovery interval like any other, so a container
                    // whose cgroup is gone each time it is found is not
                    // searched for at every scrape.
                    self.active = None;
                }
            }
            Mode::Cgroup(target) => {
                if read::is_gone(dir, &reading) {
                    if !active.gone {
                        tracing::warn!(cgroup = %dir.display(), "the cgroup is gone; reading it again at every scrape until it is back");
                    }
                    let gone = Active {
                        gone: true,
                        ..Active::new(target.clone(), self.cpu_stat, None)
                    };
                    *active = gone;
                } else if active.gone && reading.any_ok() {
                    tracing::info!(cgroup = %dir.display(), "the cgroup is back");
                    active.gone = false;
                }
            }
        }
        Some(Scraped { reading, cpu_stat })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psi_core::Resource;

    #[test]
    fn cpu_stat_is_read_only_when_asked() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = "some avg10=0.00 avg60=0.00 avg300=0.00 total=5\n";
        std::fs::write(dir.path().join("cpu.pressure"), file).expect("cpu.pressure");
        std::fs::write(dir.path().join("cpu.stat"), "nr_periods 4\n").expect("cpu.stat");
        for wanted in [true, false] {
            let target = Target::at(dir.path().to_owned(), None).expect("a copy");
            let mut tracker =
                Tracker::new(Mode::Cgroup(target), None, Duration::from_secs(1), wanted);
            let scraped = tracker.read().expect("a fixed target");
            assert_eq!(scraped.cpu_stat.is_some(), wanted);
            assert!(scraped.reading.pressure(Resource::Cpu).is_some());
        }
    }
}
