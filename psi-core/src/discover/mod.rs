//! Finding the monitored container by its pid_flag, and its cgroup (feature `std`).
//!
//! The sidecar shares its pod's process namespace. It reads its own flag
//! ([`Config::own_flag`], `/etc/pid_flag_sc`), then looks at every process's
//! `/proc/<pid>/root/etc/pid_flag`: the processes whose flag equals ours,
//! after trimming whitespace, are the monitored container. Each flag is a
//! file, or a ConfigMap volume directory holding it (see [`read_flag_at`]).
//! Their cgroup is then resolved by [`cgroup_of`].
//!
//! ```no_run
//! use psi_core::discover::{Config, discover};
//!
//! let config = Config::default();
//! let mut target = discover(&config)?;
//! println!("pids {:?} in {}", target.pids, target.cgroup.display());
//! // Later, on every scrape or tick:
//! if !target.is_alive(&config) {
//!     target = discover(&config)?;
//! }
//! # Ok::<(), psi_core::discover::DiscoverError>(())
//! ```
//!
//! # Other containers' files are hostile input
//!
//! Another container controls its own `/etc/pid_flag`. It is read through
//! `openat2` with `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS` relative to the
//! container's root, so no symlink leads out of it (a link to our own flag
//! would otherwise let any container impersonate the monitored one); FIFOs,
//! sockets and devices are recognised through an `O_PATH` handle and never
//! opened for reading; a regular file is opened `O_NONBLOCK` and read up to
//! [`FLAG_LIMIT`] bytes (a longer one is refused); files on FUSE are refused,
//! since their reads can hang. Without `openat2` (Linux before 5.6, or a
//! seccomp profile that blocks it) discovery fails with
//! [`DiscoverError::Unsupported`] rather than walk paths unsafely.
//!
//! Every root is configurable, so tests can point at a fake tree.

mod cgroup;
mod error;
mod flag;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fd::{AsFd as _, OwnedFd};
use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

pub use cgroup::{cgroup_entry, cgroup_of};
pub use error::{DiscoverError, FlagError, Privilege};
pub use flag::{FLAG_LIMIT, flag_text};

use error::inside;
use flag::Base;

/// Where discovery looks. [`Default`] gives the Go sidecar's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The proc file system: `/proc`.
    pub proc_root: PathBuf,
    /// This process's own flag, a file or a directory: `/etc/pid_flag_sc`.
    pub own_flag: PathBuf,
    /// The flag inside each process's root, a file or a directory:
    /// `/etc/pid_flag`.
    pub flag_path: PathBuf,
    /// The cgroup v2 mount to resolve `/proc/<pid>/cgroup` against; `None`
    /// finds it in `<proc_root>/self/mountinfo` ([`crate::cgroup::find_mount`]).
    pub cgroup_mount: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            proc_root: PathBuf::from("/proc"),
            own_flag: PathBuf::from("/etc/pid_flag_sc"),
            flag_path: PathBuf::from("/etc/pid_flag"),
            cgroup_mount: None,
        }
    }
}

/// The monitored container: the processes carrying our flag, and their cgroup.
///
/// Found on the real `/proc`, it holds a pidfd per process, so that
/// [`is_alive`](Self::is_alive) is one `poll(2)` however many processes there
/// are; clones share them.
#[derive(Debug, Clone)]
pub struct Container {
    /// The matching pids, sorted.
    pub pids: Vec<u32>,
    /// Their cgroup directory, as the lowest pid resolves it.
    pub cgroup: PathBuf,
    /// The flag that matched.
    flag: String,
    /// Each pid's start time (field 22 of `/proc/<pid>/stat`, in clock
    /// ticks), when readable, to tell a reused pid from the same process.
    start_times: Vec<Option<u64>>,
    /// One pidfd per pid, each readable once its process has exited; empty
    /// where pidfds cannot be had (Linux before 5.3, a seccomp profile that
    /// blocks `pidfd_open`, or a `proc_root` other than `/proc`).
    pidfds: Arc<[OwnedFd]>,
}

/// Two containers are equal when they name the same processes (pids and start
/// times) in the same cgroup with the same flag: the pidfds are handles to
/// those processes, not part of what is found.
impl PartialEq for Container {
    fn eq(&self, other: &Self) -> bool {
        self.pids == other.pids
            && self.cgroup == other.cgroup
            && self.flag == other.flag
            && self.start_times == other.start_times
    }
}

impl Eq for Container {}

impl Container {
    /// The flag the processes carry (trimmed).
    pub fn flag(&self) -> &str {
        &self.flag
    }

    /// Whether any of the target's processes still runs and still carries
    /// the flag. A pid reused by another process fails the check: its start
    /// time differs, or its flag does. When this returns `false`, call
    /// [`discover`] again: the monitored container has restarted, or is
    /// gone.
    ///
    /// With pidfds (see [`Container`]) and `config.proc_root` being `/proc`,
    /// this is one `poll(2)`, which a reused pid cannot fool, and the flag is
    /// not read again; otherwise each pid's start time and flag are read.
    pub fn is_alive(&self, config: &Config) -> bool {
        if config.proc_root == Path::new(PROC)
            && let Some(alive) = self.poll_pidfds()
        {
            return alive.contains(&true);
        }
        self.pids
            .iter()
            .zip(&self.start_times)
            .any(|(&pid, &start)| self.still_runs(config, pid, start))
    }

    /// The target's processes that still run and still carry the flag, in
    /// [`pids`](Self::pids) order, checked as [`is_alive`](Self::is_alive)
    /// checks them. A container's main process may fork a child, which
    /// carries the flag too, just as discovery looks (a shell running a
    /// setup command); once the child exits, its pid is no longer one of the
    /// container's, although the container lives on.
    pub fn running(&self, config: &Config) -> Vec<u32> {
        if config.proc_root == Path::new(PROC)
            && let Some(alive) = self.poll_pidfds()
        {
            return self
                .pids
                .iter()
                .zip(alive)
                .filter_map(|(&pid, alive)| alive.then_some(pid))
                .collect();
        }
        self.pids
            .iter()
            .zip(&self.start_times)
            .filter(|&(&pid, &start)| self.still_runs(config, pid, start))
            .map(|(&pid, _)| pid)
            .collect()
    }

    /// Without pidfds: whether `pid` is still the process found (its start
    /// time) and still carries the flag.
    fn still_runs(&self, config: &Config, pid: u32, start: Option<u64>) -> bool {
        if start.is_some() && start_time(&config.proc_root, pid) != start {
            return false;
        }
        // `discover` succeeded, so openat2 works: no need to probe.
        read_pid_flag(config, pid).is_ok_and(|f| f == self.flag)
    }

    /// Whether each pidfd is not yet readable (its process runs), in `pids`
    /// order; `None` without pidfds or when `poll` fails.
    fn poll_pidfds(&self) -> Option<Vec<bool>> {
        if self.pidfds.is_empty() {
            return None;
        }
        let mut fds: Vec<PollFd<'_>> = self
            .pidfds
            .iter()
            .map(|fd| PollFd::new(fd, PollFlags::IN))
            .collect();
        poll(&mut fds, Some(&Timespec::default())).ok()?;
        Some(
            fds.iter()
                .map(|fd| !fd.revents().contains(PollFlags::IN))
                .collect(),
        )
    }
}

/// The proc file system where pids are this process's own, so that pidfds
/// can be opened for them.
const PROC: &str = "/proc";

/// A pidfd for each of `pids`, or none at all (then [`Container::is_alive`]
/// reads start times and flags instead).
///
/// A pid may have been reused between the scan and `pidfd_open`: the start
/// time is read again once the pidfd pins the process, and a change means
/// the pidfd is some other process's.
fn open_pidfds(pids: &[u32], start_times: &[Option<u64>]) -> Arc<[OwnedFd]> {
    let proc_root = Path::new(PROC);
    let open = |(&pid, &start): (&u32, &Option<u64>)| {
        let fd = pidfd_open(
            Pid::from_raw(i32::try_from(pid).ok()?)?,
            PidfdFlags::empty(),
        )
        .ok()?;
        (start.is_none() || start_time(proc_root, pid) == start).then_some(fd)
    };
    pids.iter()
        .zip(start_times)
        .map(open)
        .collect::<Option<Vec<OwnedFd>>>()
        .map_or_else(|| Arc::from([]), Arc::from)
}

/// Reads this process's own flag at `path`: trimmed, at most [`FLAG_LIMIT`]
/// bytes, not empty.
///
/// `path` is a regular file, or a directory holding one: its `pid_flag`, or
/// else its only regular file. This is the layout of a Kubernetes ConfigMap
/// volume, whose keys are relative symlinks (`pid_flag -> ..data/pid_flag`)
/// beside the kubelet's `..data` link and `..<timestamp>` directory; entries
/// whose names begin with `..` are not counted.
pub fn read_flag_at(path: &Path) -> Result<String, DiscoverError> {
    flag::read_flag(Base::Host, path).map_err(|source| DiscoverError::Flag {
        path: path.to_owned(),
        source,
    })
}

/// Reads the flag of process `pid`, at [`Config::flag_path`] inside its root
/// directory, never leaving that root (see the [module docs](self)).
pub fn flag_of(config: &Config, pid: u32) -> Result<String, DiscoverError> {
    check_openat2(&config.proc_root)?;
    read_pid_flag(config, pid)
}

/// The pids, other than this process, whose flag equals `flag` once both are
/// trimmed; sorted.
///
/// Processes that vanish during the scan, or whose root or flag cannot be
/// read (no flag, permission denied, a refused file), do not match and are
/// not errors. The errors are: `proc_root` cannot be listed, or `openat2` is
/// unavailable.
pub fn find_pids(config: &Config, flag: &str) -> Result<Vec<u32>, DiscoverError> {
    scan(config, flag).map(|s| s.matches.into_iter().map(|(pid, _)| pid).collect())
}

/// Finds the monitored container: reads [`Config::own_flag`], finds the
/// processes carrying the same flag ([`find_pids`]), and resolves their cgroup
/// ([`cgroup_of`]).
///
/// Several processes in one cgroup (compared by the directory's device and
/// inode, since two processes' views of one cgroup have different paths) are
/// one target. Processes in different cgroups are
/// [`DiscoverError::Ambiguous`]; none is [`DiscoverError::NotFound`]. A
/// process that exits before its cgroup is resolved is left out.
pub fn discover(config: &Config) -> Result<Container, DiscoverError> {
    let flag = read_flag_at(&config.own_flag)?;
    let scan = scan(config, &flag)?;
    let mut groups: Vec<Group> = Vec::new();
    for (pid, start) in scan.matches {
        let resolved = match cgroup::resolve(config, pid) {
            Ok(r) => r,
            Err(_) if !config.proc_root.join(pid.to_string()).exists() => continue,
            Err(e) => return Err(e),
        };
        match groups.iter_mut().find(|g| g.id == resolved.id) {
            Some(group) => {
                group.pids.push(pid);
                group.start_times.push(start);
            }
            None => groups.push(Group {
                id: resolved.id,
                path: resolved.path,
                pids: vec![pid],
                start_times: vec![start],
            }),
        }
    }
    let mut groups = groups.into_iter();
    match (groups.next(), groups.len()) {
        (None, _) => Err(DiscoverError::NotFound {
            proc_root: config.proc_root.clone(),
            flag_path: config.flag_path.clone(),
            own_flag: config.own_flag.clone(),
            denied: scan.denied,
            privilege: Privilege::current(),
            refused: scan.refused.into_boxed_slice(),
        }),
        (Some(only), 0) => Ok(Container {
            pidfds: if config.proc_root == Path::new(PROC) {
                open_pidfds(&only.pids, &only.start_times)
            } else {
                Arc::from([])
            },
            pids: only.pids,
            cgroup: only.path,
            flag,
            start_times: only.start_times,
        }),
        (Some(first), _) => Err(DiscoverError::Ambiguous {
            cgroups: std::iter::once(first)
                .chain(groups)
                .map(|g| (g.path, g.pids))
                .collect(),
        }),
    }
}

/// Matching processes that share one cgroup.
struct Group {
    /// Device and inode of the cgroup directory.
    id: (u64, u64),
    /// The directory as the lowest pid resolves it.
    path: PathBuf,
    /// Ascending.
    pids: Vec<u32>,
    /// One per pid.
    start_times: Vec<Option<u64>>,
}

/// What a scan of the proc root found.
struct Scan {
    /// Matching pids, ascending, with their start times.
    matches: Vec<(u32, Option<u64>)>,
    /// Processes, ascending, whose root directory refused this process: the
    /// kernel's ptrace access check, the one privilege decides. A flag file
    /// refusing us inside a root we could open is not counted, since no
    /// advice about that check would be true of it.
    denied: Vec<u32>,
    /// Processes, ascending, whose flag is there but was refused, and why
    /// ([`FlagError::reason`]).
    refused: Vec<(u32, &'static str)>,
}

fn scan(config: &Config, flag: &str) -> Result<Scan, DiscoverError> {
    check_openat2(&config.proc_root)?;
    let flag = flag.trim();
    let scan_error = |source| DiscoverError::Scan {
        path: config.proc_root.clone(),
        source,
    };
    let me = std::fs::read_link(config.proc_root.join("self"))
        .ok()
        .and_then(|link| link.to_str()?.parse::<u32>().ok());
    let mut pids = Vec::new();
    for entry in std::fs::read_dir(&config.proc_root).map_err(scan_error)? {
        let entry = entry.map_err(scan_error)?;
        let Some(pid) = entry.file_name().to_str().and_then(parse_pid) else {
            continue;
        };
        if Some(pid) != me {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    let mut scan = Scan {
        matches: Vec::new(),
        denied: Vec::new(),
        refused: Vec::new(),
    };
    for pid in pids {
        // Read before the flag: a pid reused after this point fails the
        // start-time check of `is_alive` instead of passing it.
        let start = start_time(&config.proc_root, pid);
        let root = match open_root(config, pid) {
            Ok(root) => root,
            Err(Errno::ACCESS | Errno::PERM) => {
                scan.denied.push(pid);
                continue;
            }
            // Vanished, or not a process directory.
            Err(_) => continue,
        };
        match flag::read_flag(Base::InRoot(root.as_fd()), &config.flag_path) {
            Ok(theirs) if theirs == flag => scan.matches.push((pid, start)),
            Ok(_) => {}
            Err(e) => {
                if let Some(reason) = e.reason() {
                    scan.refused.push((pid, reason));
                }
            }
        }
    }
    Ok(scan)
}

/// A decimal pid without sign or leading zero, as `/proc` names them.
fn parse_pid(name: &str) -> Option<u32> {
    if name.starts_with('0') || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// `<proc_root>/<pid>/root`, the process's root directory. Following that
/// link is what the kernel's ptrace access check guards.
fn root_path(config: &Config, pid: u32) -> PathBuf {
    config.proc_root.join(pid.to_string()).join("root")
}

fn open_root(config: &Config, pid: u32) -> Result<File, Errno> {
    rustix::fs::open(
        root_path(config, pid),
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map(File::from)
}

fn read_pid_flag(config: &Config, pid: u32) -> Result<String, DiscoverError> {
    let read = || {
        let root = open_root(config, pid)?;
        flag::read_flag(Base::InRoot(root.as_fd()), &config.flag_path)
    };
    read().map_err(|source| DiscoverError::Flag {
        path: inside(&root_path(config, pid), &config.flag_path),
        source,
    })
}

/// Fails closed when `openat2` is missing (Linux < 5.6) or blocked (some
/// seccomp profiles answer EPERM), instead of misreading every process as
/// flagless. Any other failure is left to the caller's own open of the same
/// directory.
fn check_openat2(proc_root: &Path) -> Result<(), DiscoverError> {
    match rustix::fs::openat2(
        rustix::fs::CWD,
        proc_root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::empty(),
    ) {
        Err(e @ (Errno::NOSYS | Errno::PERM)) => {
            Err(DiscoverError::Unsupported { source: e.into() })
        }
        _ => Ok(()),
    }
}

/// Field 22 of `<proc_root>/<pid>/stat`: when the process started.
fn start_time(proc_root: &Path, pid: u32) -> Option<u64> {
    let stat = std::fs::read(proc_root.join(pid.to_string()).join("stat")).ok()?;
    // The command name, field 2, is in parentheses and may hold anything,
    // including spaces and `)`: count fields from the last `)`.
    let after = stat.iter().rposition(|&b| b == b')')?;
    let fields = std::str::from_utf8(&stat[after + 1..]).ok()?;
    fields.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_are_plain_decimals() {
        assert_eq!(parse_pid("1"), Some(1));
        assert_eq!(parse_pid("4194304"), Some(4_194_304));
        for name in [
            "self",
            "",
            "01",
            "+1",
            "-1",
            "1a",
            "99999999999",
            "thread-self",
        ] {
            assert_eq!(parse_pid(name), None, "{name}");
        }
    }

    #[test]
    fn start_time_of_a_strange_command_name() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir(dir.path().join("7"))?;
        let stat = "7 (a) b (c) S 1 7 7 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 123456 0 0\n";
        std::fs::write(dir.path().join("7/stat"), stat)?;
        assert_eq!(start_time(dir.path(), 7), Some(123_456));
        assert_eq!(start_time(dir.path(), 8), None);
        Ok(())
    }

    /// A target of one real child process that carries no flag: only the
    /// pidfd can say it is alive, since the flag check would fail.
    fn child_container(child: &std::process::Child) -> Container {
        let pid = child.id();
        let start = start_time(Path::new(PROC), pid);
        Container {
            pids: vec![pid],
            cgroup: PathBuf::from("/nonexistent"),
            flag: "a flag no process carries".to_owned(),
            start_times: vec![start],
            pidfds: open_pidfds(&[pid], &[start]),
        }
    }

    #[test]
    fn a_pidfd_says_when_the_process_exits() -> std::io::Result<()> {
        let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
        let target = child_container(&child);
        assert_eq!(target.pidfds.len(), 1, "pidfd_open works on this kernel");
        let config = Config::default();
        let alive = target.is_alive(&config);
        // A clone shares the pidfds and answers alike.
        let clone_alive = target.clone().is_alive(&config);
        child.kill()?;
        child.wait()?;
        assert!(
            alive && clone_alive,
            "the running child is alive by its pidfd"
        );
        assert!(!target.is_alive(&config), "the reaped child is not");
        Ok(())
    }

    #[test]
    fn running_leaves_out_the_pids_that_exited() -> std::io::Result<()> {
        // A container's main process and a child of it that carried the
        // flag while discovery looked: the child exits, the target lives on.
        let mut main = std::process::Command::new("sleep").arg("60").spawn()?;
        let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
        let mut pids = vec![main.id(), child.id()];
        pids.sort_unstable();
        let start_times: Vec<_> = pids
            .iter()
            .map(|&p| start_time(Path::new(PROC), p))
            .collect();
        let target = Container {
            pidfds: open_pidfds(&pids, &start_times),
            pids: pids.clone(),
            cgroup: PathBuf::from("/nonexistent"),
            flag: "a flag no process carries".to_owned(),
            start_times,
        };
        let config = Config::default();
        let both = target.running(&config);
        child.kill()?;
        child.wait()?;
        let one = target.running(&config);
        let alive = target.is_alive(&config);
        main.kill()?;
        main.wait()?;
        assert_eq!(both, pids);
        assert_eq!(one, [main.id()]);
        assert!(alive);
        assert!(target.running(&config).is_empty());
        assert!(!target.is_alive(&config));
        Ok(())
    }

    #[test]
    fn a_pid_reused_before_its_pidfd_is_opened_gets_none() -> std::io::Result<()> {
        let mut child = std::process::Command::new("sleep").arg("60").spawn()?;
        let pid = child.id();
        let start = start_time(Path::new(PROC), pid);
        // The scan saw another process under this pid: its start time differs.
        let fds = open_pidfds(&[pid], &[start.map(|s| s + 1)]);
        let right = open_pidfds(&[pid], &[start]);
        child.kill()?;
        child.wait()?;
        assert!(fds.is_empty());
        assert_eq!(right.len(), 1);
        Ok(())
    }

    #[test]
    fn a_fake_proc_root_is_not_answered_by_pidfds() {
        let target = Container {
            pids: vec![std::process::id()],
            cgroup: PathBuf::from("/nonexistent"),
            flag: "flag".to_owned(),
            start_times: vec![None],
            pidfds: open_pidfds(&[std::process::id()], &[None]),
        };
        let fake = Config {
            proc_root: PathBuf::from("/nonexistent/proc"),
            ..Config::default()
        };
        // This process runs, but the fake proc root is what is asked about.
        assert!(!target.is_alive(&fake));
        assert!(target.is_alive(&Config::default()));
    }

    #[test]
    fn start_time_of_this_process() {
        let me = std::process::id();
        let a = start_time(Path::new("/proc"), me);
        assert!(a.is_some());
        assert_eq!(a, start_time(Path::new("/proc"), me));
    }
}
