//! Kernel PSI triggers: be woken when stall time crosses a threshold within
//! a window, instead of polling averages (feature `std`, Linux).
//!
//! A trigger is registered by writing `<some|full> <stall µs> <window µs>` to
//! a pressure file opened read-write; the kernel then signals `POLLPRI` on
//! that descriptor at most once per window while the threshold is crossed,
//! and `POLLERR` once the cgroup is gone. One descriptor holds one trigger,
//! and closing it removes the trigger.
//!
//! The kernel's rules, checked before the kernel is asked where they can be:
//! the stall threshold is above zero and at most the window; the window is at
//! most 10 s. Since Linux 6.4 a process without `CAP_SYS_RESOURCE` may only
//! use windows that are multiples of 2 s (before 6.4 it could not register
//! triggers at all, and windows were at least 500 ms); [`TriggerError`]
//! explains such refusals in those words.
//!
//! ```no_run
//! use std::time::Duration;
//! use psi_core::trigger::{Monitor, Trigger};
//!
//! let spec: Trigger = "cpu some 500ms 2s".parse()?;
//! let mut monitor = Monitor::new();
//! let id = monitor.add_cgroup("/sys/fs/cgroup/unified/app", spec)?;
//! for event in monitor.wait(Some(Duration::from_secs(30)))? {
//!     println!("{:?} on trigger {}", event.kind, event.id);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::io::Errno;

use crate::cgroup::Kind;
use crate::duration::{self, Human};
use crate::{Line, Resource};

/// The longest window the kernel accepts.
pub const MAX_WINDOW: Duration = Duration::from_secs(10);

/// Without `CAP_SYS_RESOURCE`, windows must be multiples of this.
pub const UNPRIVILEGED_WINDOW_STEP: Duration = Duration::from_secs(2);

/// A trigger: fire when tasks stall on `resource` (`line`) for at least
/// `stall` within any `window`.
///
/// Its human form, parsed by [`FromStr`] and written by [`Display`](fmt::Display),
/// is `memory some 150ms 2s`: resource, line, stall, window; durations in
/// the grammar of [`crate::duration`] (a bare number is seconds: write the
/// kernel's microseconds as `150000us`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Trigger {
    /// The resource watched.
    pub resource: Resource,
    /// `some` or `full`.
    pub line: Line,
    /// The stall time within a window that fires the trigger.
    pub stall: Duration,
    /// The window the stall is measured over.
    pub window: Duration,
}

/// Which of the kernel's rules refused a trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// Since 6.4, without `CAP_SYS_RESOURCE`, the window must be a multiple
    /// of [`UNPRIVILEGED_WINDOW_STEP`]: [`Trigger::unprivileged`] gives one
    /// that is.
    #[error("without CAP_SYS_RESOURCE the window must be a multiple of 2s")]
    UnprivilegedWindow,
    /// `EINVAL` for another reason.
    #[error(
        "the kernel does not accept this threshold and window (kernels before 6.4 need a \
         window of at least 500ms)"
    )]
    ThresholdOrWindow,
    /// Before 6.4, a system-wide trigger needs `CAP_SYS_RESOURCE`.
    #[error(
        "kernels before 6.4 allow triggers on the system-wide /proc/pressure files only \
         with CAP_SYS_RESOURCE; put the trigger on a cgroup's file instead"
    )]
    SystemNeedsCapability,
    /// The file is not writable by this user.
    #[error("permission denied: the pressure file must be writable by this user")]
    NotWritable,
    /// `EBUSY`: one descriptor holds one trigger.
    #[error("this descriptor already holds a trigger")]
    Busy,
    /// `EOPNOTSUPP`: booted with `psi=0`.
    #[error("pressure stall information is disabled (booted with psi=0)")]
    Disabled,
    /// `ENOENT`.
    #[error(
        "no such pressure file: the cgroup is gone, its cgroup.pressure is 0, or this kernel \
         lacks the resource"
    )]
    NoSuchFile,
}

/// Why a trigger could not be made, registered or waited on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// The human form did not parse.
    #[error("invalid trigger {spec:?}: {why} (expected e.g. \"memory some 150ms 2s\")")]
    Syntax {
        /// The text given.
        spec: String,
        /// What was wrong with it.
        why: &'static str,
    },
    /// The trigger breaks a rule the kernel enforces.
    #[error("invalid trigger {trigger}: {why}")]
    Invalid {
        /// The trigger.
        trigger: Trigger,
        /// The rule it breaks.
        why: &'static str,
    },
    /// The kernel refused the trigger (`EINVAL`, `EPERM`, `EBUSY`, ...).
    #[error("the kernel refused trigger {trigger} on {}: {why}", path.display())]
    Refused {
        /// The trigger.
        trigger: Trigger,
        /// The pressure file.
        path: PathBuf,
        /// The kernel's rule it broke.
        why: Refusal,
        /// The system error.
        source: io::Error,
    },
    /// The pressure file could not be opened or written.
    #[error("failed to register trigger {trigger} on {}", path.display())]
    Io {
        /// The trigger.
        trigger: Trigger,
        /// The pressure file.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// `poll` failed.
    #[error("failed to wait for pressure triggers")]
    Poll(#[source] io::Error),
}

impl TriggerError {
    /// Whether the error says the cgroup went away while the trigger was
    /// being registered: the kernel ends a removed cgroup's pressure files
    /// with `ENODEV`, or the file is missing with its directory.
    pub fn cgroup_gone(&self) -> bool {
        let TriggerError::Io { path, source, .. } = self else {
            return false;
        };
        source.raw_os_error() == Some(Errno::NODEV.raw_os_error())
            || (source.kind() == io::ErrorKind::NotFound
                && path.parent().is_some_and(|dir| !dir.exists()))
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.resource,
            self.line,
            Human(self.stall),
            Human(self.window)
        )
    }
}

impl FromStr for Trigger {
    type Err = TriggerError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let syntax = |why| TriggerError::Syntax {
            spec: spec.to_owned(),
            why,
        };
        let mut words = spec.split_whitespace();
        let (Some(resource), Some(line), Some(stall), Some(window), None) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            return Err(syntax(
                "it needs four words: resource, some|full, stall, window",
            ));
        };
        let resource = resource
            .parse()
            .map_err(|_| syntax("the resource must be cpu, memory, io or irq"))?;
        let line = line
            .parse()
            .map_err(|_| syntax("the second word must be some or full"))?;
        let stall = duration::parse(stall)
            .map_err(|_| syntax("the stall must be a duration like 150ms"))?;
        let window =
            duration::parse(window).map_err(|_| syntax("the window must be a duration like 2s"))?;
        let trigger = Trigger {
            resource,
            line,
            stall,
            window,
        };
        trigger.validate()?;
        Ok(trigger)
    }
}

impl Trigger {
    /// Checks the rules the kernel enforces for every opener.
    pub fn validate(&self) -> Result<(), TriggerError> {
        let invalid = |why| TriggerError::Invalid {
            trigger: *self,
            why,
        };
        if self.stall.is_zero() {
            return Err(invalid("the stall threshold must be above zero"));
        }
        if self.window.is_zero() || self.window > MAX_WINDOW {
            return Err(invalid("the window must be above zero and at most 10s"));
        }
        if self.stall > self.window {
            return Err(invalid("the stall threshold must be at most the window"));
        }
        if !self.stall.subsec_nanos().is_multiple_of(1000)
            || !self.window.subsec_nanos().is_multiple_of(1000)
        {
            return Err(invalid("durations are whole microseconds"));
        }
        Ok(())
    }

    /// This trigger with its window rounded up to a multiple of
    /// [`UNPRIVILEGED_WINDOW_STEP`], which a process without
    /// `CAP_SYS_RESOURCE` may register (since 6.4); itself when it already
    /// is one.
    ///
    /// ```
    /// let t: psi_core::trigger::Trigger = "cpu some 500ms 1s".parse()?;
    /// assert_eq!(t.unprivileged().to_string(), "cpu some 500ms 2s");
    /// # Ok::<(), psi_core::trigger::TriggerError>(())
    /// ```
    pub fn unprivileged(&self) -> Trigger {
        let step = UNPRIVILEGED_WINDOW_STEP.as_micros();
        let window = self.window.as_micros().div_ceil(step) * step;
        Trigger {
            window: Duration::from_micros(u64::try_from(window).unwrap_or(u64::MAX)),
            ..*self
        }
    }

    /// The line written to the pressure file: `some 150000 2000000`.
    pub fn kernel_line(&self) -> String {
        format!(
            "{} {} {}",
            self.line,
            self.stall.as_micros(),
            self.window.as_micros()
        )
    }

    /// Registers this trigger on a pressure file, returning the descriptor
    /// that holds it.
    pub fn register(&self, path: &Path) -> Result<File, TriggerError> {
        self.validate()?;
        let io_err = |source| TriggerError::Io {
            trigger: *self,
            path: path.to_owned(),
            source,
        };
        let mut file = File::options()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
            .open(path)
            .map_err(|e| self.refused(path, e).unwrap_or_else(io_err))?;
        // The kernel takes the whole trigger from a single write.
        let mut line = self.kernel_line().into_bytes();
        line.push(0);
        match file.write(&line) {
            Ok(n) if n == line.len() => Ok(file),
            Ok(_) => Err(io_err(io::Error::from(io::ErrorKind::WriteZero))),
            Err(e) => Err(self.refused(path, e).unwrap_or_else(io_err)),
        }
    }

    /// Explains the errors that mean the kernel refused, in its rules' words.
    fn refused(&self, path: &Path, e: io::Error) -> Result<TriggerError, io::Error> {
        let errno = e.raw_os_error().map(Errno::from_raw_os_error);
        let privileged = has_cap_sys_resource();
        let system = !crate::read::is_cgroup_file(path);
        let why = match errno {
            Some(Errno::INVAL) if !privileged && self.unprivileged() != *self => {
                Refusal::UnprivilegedWindow
            }
            Some(Errno::INVAL) => Refusal::ThresholdOrWindow,
            Some(Errno::PERM | Errno::ACCESS) if system && !privileged => {
                Refusal::SystemNeedsCapability
            }
            Some(Errno::PERM | Errno::ACCESS) => Refusal::NotWritable,
            Some(Errno::BUSY) => Refusal::Busy,
            Some(Errno::OPNOTSUPP) => Refusal::Disabled,
            Some(Errno::NOENT) => Refusal::NoSuchFile,
            _ => return Err(e),
        };
        Ok(TriggerError::Refused {
            trigger: *self,
            path: path.to_owned(),
            why,
            source: e,
        })
    }
}

/// Whether this process has `CAP_SYS_RESOURCE` in its effective set, which
/// the kernel checks for trigger windows (since 6.4: without it, multiples
/// of 2 s) and, before 6.4, for any trigger on `/proc/pressure`.
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let hex = s
                .lines()
                .find_map(|l| l.strip_prefix("CapEff:"))?
                .trim()
                .to_owned();
            u64::from_str_radix(&hex, 16).ok()
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// What happened to a trigger. The kernel signals more than one condition
/// on a trigger's descriptor, and may signal others: non-exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// The threshold was crossed within the window.
    Fired,
    /// The cgroup is gone (`POLLERR`); the trigger was removed from the monitor.
    Gone,
}

/// An event from [`Monitor::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// The id [`Monitor::add`] returned.
    pub id: usize,
    /// The trigger it is about.
    pub trigger: Trigger,
    /// What happened.
    pub kind: EventKind,
}

#[derive(Debug)]
struct Armed {
    id: usize,
    trigger: Trigger,
    path: PathBuf,
    file: File,
}

/// Waits on many triggers at once with `poll(2)`.
#[derive(Debug, Default)]
pub struct Monitor {
    armed: Vec<Armed>,
    next_id: usize,
}

impl Monitor {
    /// An empty monitor.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `trigger` on the pressure file at `path` and returns its id.
    /// Ids are handed out in order from 0, one per trigger added, and are
    /// never reused, also when a trigger is removed or fails to register.
    pub fn add(
        &mut self,
        path: impl Into<PathBuf>,
        trigger: Trigger,
    ) -> Result<usize, TriggerError> {
        let path = path.into();
        let id = self.next_id;
        self.next_id += 1;
        let file = trigger.register(&path)?;
        self.armed.push(Armed {
            id,
            trigger,
            path,
            file,
        });
        Ok(id)
    }

    /// Registers `trigger` on the matching file of a directory of pressure
    /// files of `kind` (named as [`Kind::file_name`] has them).
    pub fn add_in(
        &mut self,
        dir: &Path,
        kind: Kind,
        trigger: Trigger,
    ) -> Result<usize, TriggerError> {
        self.add(dir.join(kind.file_name(trigger.resource)), trigger)
    }

    /// Registers `trigger` on the matching file of a cgroup directory.
    pub fn add_cgroup(
        &mut self,
        dir: impl AsRef<Path>,
        trigger: Trigger,
    ) -> Result<usize, TriggerError> {
        self.add(dir.as_ref().join(trigger.resource.cgroup_file()), trigger)
    }

    /// Registers `trigger` on the system-wide `/proc/pressure` file.
    pub fn add_system(&mut self, trigger: Trigger) -> Result<usize, TriggerError> {
        self.add(
            Path::new("/proc/pressure").join(trigger.resource.name()),
            trigger,
        )
    }

    /// Removes a trigger (closing its descriptor removes it from the kernel).
    pub fn remove(&mut self, id: usize) -> bool {
        let before = self.armed.len();
        self.armed.retain(|a| a.id != id);
        self.armed.len() != before
    }

    /// The trigger and file of an id still armed.
    pub fn get(&self, id: usize) -> Option<(&Trigger, &Path)> {
        self.armed
            .iter()
            .find(|a| a.id == id)
            .map(|a| (&a.trigger, a.path.as_path()))
    }

    /// How many triggers are armed.
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    /// True when no trigger is armed.
    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    /// Waits until at least one trigger fires or is gone, or `timeout` passes
    /// (`None`: forever). Returns the events (empty on timeout). Triggers whose
    /// cgroup is gone are reported once and removed.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, TriggerError> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            // Nothing armed and no deadline: a poll on no descriptors would
            // never return.
            if self.armed.is_empty() && deadline.is_none() {
                return Ok(Vec::new());
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let events = self.poll_once(remaining)?;
            if !events.is_empty() || remaining.is_some_and(|r| r.is_zero()) {
                return Ok(events);
            }
        }
    }

    fn poll_once(&mut self, timeout: Option<Duration>) -> Result<Vec<Event>, TriggerError> {
        let timespec = timeout.map(|t| Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        let mut fds: Vec<PollFd<'_>> = self
            .armed
            .iter()
            .map(|a| PollFd::new(&a.file, PollFlags::PRI))
            .collect();
        match poll(&mut fds, timespec.as_ref()) {
            Ok(_) => {}
            Err(Errno::INTR) => return Ok(Vec::new()),
            Err(e) => return Err(TriggerError::Poll(e.into())),
        }
        let mut events = Vec::new();
        for (fd, armed) in fds.iter().zip(&self.armed) {
            let revents = fd.revents();
            if revents.intersects(PollFlags::ERR | PollFlags::HUP | PollFlags::NVAL) {
                events.push(Event {
                    id: armed.id,
                    trigger: armed.trigger,
                    kind: EventKind::Gone,
                });
            } else if revents.contains(PollFlags::PRI) {
                events.push(Event {
                    id: armed.id,
                    trigger: armed.trigger,
                    kind: EventKind::Fired,
                });
            }
        }
        drop(fds);
        let gone: Vec<usize> = events
            .iter()
            .filter(|e| e.kind == EventKind::Gone)
            .map(|e| e.id)
            .collect();
        self.armed.retain(|a| !gone.contains(&a.id));
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_order_of_adding_failures_included() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t: Trigger = "cpu some 500ms 2s".parse().expect("valid");
        let mut monitor = Monitor::new();
        // No such file: refused, but the id is spent.
        assert!(monitor.add(dir.path().join("cpu.pressure"), t).is_err());
        let file = dir.path().join("plain");
        std::fs::write(&file, "").expect("write");
        // A plain file takes the write: the kernel is not asked here.
        assert_eq!(monitor.add(&file, t).expect("a writable file"), 1);
        assert_eq!(monitor.add(&file, t).expect("again"), 2);
        assert!(monitor.remove(1));
        assert_eq!(monitor.add(&file, t).expect("after a removal"), 3);
        assert_eq!(monitor.get(2).map(|(t, _)| *t), Some(t));
    }

    #[test]
    fn a_removed_cgroup_is_told_apart_from_other_failures() {
        let t: Trigger = "cpu some 500ms 2s".parse().expect("valid");
        let dir = tempfile::tempdir().expect("tempdir");
        let io = |path: PathBuf, source: io::Error| TriggerError::Io {
            trigger: t,
            path,
            source,
        };
        let here = dir.path().join("cpu.pressure");
        let removed = dir.path().join("gone/cpu.pressure");
        assert!(
            io(
                here.clone(),
                io::Error::from_raw_os_error(Errno::NODEV.raw_os_error())
            )
            .cgroup_gone()
        );
        assert!(io(removed, io::ErrorKind::NotFound.into()).cgroup_gone());
        assert!(
            !io(here.clone(), io::ErrorKind::NotFound.into()).cgroup_gone(),
            "the directory is there: the kernel lacks the file"
        );
        assert!(!io(here, io::ErrorKind::PermissionDenied.into()).cgroup_gone());
        assert!(!TriggerError::Poll(io::ErrorKind::Other.into()).cgroup_gone());
    }

    #[test]
    fn unprivileged_windows_round_up_to_two_seconds() {
        let t = |s: &str| s.parse::<Trigger>().expect(s);
        assert_eq!(
            t("cpu some 500ms 1s").unprivileged(),
            t("cpu some 500ms 2s")
        );
        assert_eq!(t("cpu some 1s 3s").unprivileged(), t("cpu some 1s 4s"));
        let even = t("cpu some 1s 4s");
        assert_eq!(even.unprivileged(), even);
    }

    #[test]
    fn an_empty_monitor_returns_at_once_without_a_deadline() {
        let mut monitor = Monitor::new();
        assert!(monitor.is_empty());
        assert_eq!(monitor.wait(None).expect("nothing to wait for").len(), 0);
    }

    #[test]
    fn parses_and_prints_the_human_form() {
        let t: Trigger = "memory some 150ms 2s".parse().expect("valid");
        assert_eq!(t.resource, Resource::Memory);
        assert_eq!(t.line, Line::Some);
        assert_eq!(t.stall, Duration::from_millis(150));
        assert_eq!(t.window, Duration::from_secs(2));
        assert_eq!(t.to_string(), "memory some 150ms 2s");
        assert_eq!(t.kernel_line(), "some 150000 2000000");
        let t: Trigger = "io full 1500us 1s".parse().expect("valid");
        assert_eq!(t.to_string(), "io full 1500us 1s");
    }

    #[test]
    fn refuses_what_the_kernel_would() {
        for (spec, msg) in [
            (
                "memory some 0ms 2s",
                "the stall threshold must be above zero",
            ),
            (
                "memory some 3s 2s",
                "the stall threshold must be at most the window",
            ),
            (
                "memory some 1s 11s",
                "the window must be above zero and at most 10s",
            ),
            ("memory some", "it needs four words"),
            (
                "disk some 1s 2s",
                "the resource must be cpu, memory, io or irq",
            ),
            ("cpu most 1s 2s", "the second word must be some or full"),
            ("cpu some 1h 2s", "the stall must be a duration like 150ms"),
            // A bare number is seconds, as everywhere in psi: the kernel's
            // microseconds are then a window far too long.
            (
                "cpu some 150000 1000000",
                "the window must be above zero and at most 10s",
            ),
            (
                "cpu some 150000 10",
                "the stall threshold must be at most the window",
            ),
        ] {
            let e = spec.parse::<Trigger>().expect_err(spec).to_string();
            assert!(e.contains(msg), "{spec}: {e}");
        }
    }
}
