//! What can go wrong while finding the monitored container.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

/// An error from [`discover`](super::discover) and the functions beside it.
///
/// The text names the path once; the cause, when there is one, comes
/// through [`source()`](std::error::Error::source).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoverError {
    /// A flag (this process's own, or another container's) could not be used.
    #[error("cannot read the flag at {}", path.display())]
    Flag {
        /// The flag file or directory, as seen from this process.
        path: PathBuf,
        /// Why.
        #[source]
        source: FlagError,
    },
    /// The kernel refuses `openat2`, without which another container's flag
    /// cannot be read without risking a symlink out of its root.
    #[error(
        "openat2 is unavailable (Linux 5.6 or later, with openat2 allowed by \
         seccomp, is needed to read other containers' files safely)"
    )]
    Unsupported {
        /// `ENOSYS` on old kernels, `EPERM` under some seccomp profiles.
        #[source]
        source: io::Error,
    },
    /// The process directory (`/proc`) could not be listed.
    #[error("failed to list processes in {}", path.display())]
    Scan {
        /// The proc root.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No process other than this one has a flag equal to ours.
    #[error(
        "no process under {} has {} matching the flag in {}{}{}",
        proc_root.display(),
        flag_path.display(),
        own_flag.display(),
        denied_note(denied, *privilege),
        refused_note(refused)
    )]
    NotFound {
        /// The proc root that was scanned.
        proc_root: PathBuf,
        /// Where the flag was looked for inside each process's root.
        flag_path: PathBuf,
        /// This process's own flag.
        own_flag: PathBuf,
        /// The processes, ascending, whose root directory refused this
        /// process (`EACCES` or `EPERM` from the kernel's ptrace access check
        /// on `/proc/<pid>/root`), so their flag could not be looked at.
        denied: Vec<u32>,
        /// What this process was allowed when it searched, which decides
        /// what the message says about `denied`.
        privilege: Privilege,
        /// The processes, ascending, whose flag was there but refused, each
        /// with [`FlagError::reason`]: a FIFO, a huge file, not UTF-8, ...
        refused: Box<[(u32, &'static str)]>,
    },
    /// The processes with our flag are in more than one cgroup.
    #[error("processes with the flag are in {} cgroups: {}", cgroups.len(), list_cgroups(cgroups))]
    Ambiguous {
        /// Each cgroup, with the matching pids in it (sorted).
        cgroups: Vec<(PathBuf, Vec<u32>)>,
    },
    /// A kernel file (`/proc/<pid>/cgroup`, `mountinfo`) could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `/proc/<pid>/cgroup` has no `0::` line: the process is in no cgroup v2
    /// hierarchy.
    #[error("no cgroup v2 entry (0::) in {}", path.display())]
    NoUnifiedEntry {
        /// The `/proc/<pid>/cgroup` file.
        path: PathBuf,
    },
    /// The cgroup v2 mount could not be found.
    #[error(transparent)]
    Mount(#[from] crate::cgroup::MountError),
    /// The process's cgroup lies outside what this process's cgroup2 mount
    /// shows (another cgroup namespace, or a mount of a subtree).
    #[error(
        "cgroup {cgroup} of pid {pid} is not reachable from the cgroup2 mount at {} \
         (another cgroup namespace, or a mount of a subtree)",
        mount.display()
    )]
    Unreachable {
        /// The process.
        pid: u32,
        /// Its cgroup, as `/proc/<pid>/cgroup` shows it to this process.
        cgroup: String,
        /// The cgroup2 mount point used.
        mount: PathBuf,
    },
    /// The cgroup directory a process resolved to cannot be opened.
    #[error("cannot open cgroup directory {}", path.display())]
    CgroupDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Why a flag file was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlagError {
    /// Opening, listing or reading failed.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// The content is longer than [`FLAG_LIMIT`](super::FLAG_LIMIT).
    #[error("larger than {limit} bytes")]
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Nothing is left after trimming whitespace.
    #[error("empty after trimming whitespace")]
    Empty,
    /// The content is not UTF-8.
    #[error("not UTF-8 text")]
    NotUtf8,
    /// A FIFO, socket or device: never opened for reading, so never blocks.
    #[error("a {kind}, not a regular file")]
    NotRegular {
        /// `fifo`, `socket`, `character device`, `block device`, `directory`
        /// (inside a flag directory) or `symlink`.
        kind: &'static str,
    },
    /// A flag directory with no `pid_flag` and no regular file.
    #[error("no flag file in the directory (expected pid_flag or exactly one regular file)")]
    NoFlagFile,
    /// A flag directory with several regular files, none named `pid_flag`.
    #[error("{count} regular files in the directory and none named pid_flag")]
    SeveralFiles {
        /// How many.
        count: usize,
    },
    /// A flag directory too large to be a ConfigMap volume.
    #[error("more than {limit} entries in the directory")]
    TooManyEntries {
        /// The limit.
        limit: usize,
    },
    /// A file on FUSE, whose reads another container's daemon could stall
    /// forever.
    #[error("on a FUSE file system, whose reads may never return")]
    Fuse,
    /// The file was swapped for another between two opens.
    #[error("replaced while being opened")]
    Replaced,
}

impl FlagError {
    /// A word for why a flag that is there was refused, for a metric label
    /// and a message: `fifo`, `socket`, `device`, `directory`, `symlink` (a
    /// link loop, or a magic link such as `/proc/self/root` that would lead
    /// out of the container's root), `too_large`, `not_utf8`, `empty`,
    /// `no_flag_file`, `several_files`, `too_many_entries`, `fuse`,
    /// `replaced`, `permission` or `io`. `None` when there is no flag at all
    /// (nothing at the path, or a link to nothing): not a refusal.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            FlagError::Io(e) => match e.raw_os_error().map(rustix::io::Errno::from_raw_os_error) {
                Some(rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR) => return None,
                Some(rustix::io::Errno::LOOP) => "symlink",
                Some(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => "permission",
                _ => "io",
            },
            FlagError::TooLarge { .. } => "too_large",
            FlagError::Empty => "empty",
            FlagError::NotUtf8 => "not_utf8",
            FlagError::NotRegular { kind } => match *kind {
                "character device" | "block device" => "device",
                "fifo" | "socket" | "directory" | "symlink" => kind,
                _ => "special",
            },
            FlagError::NoFlagFile => "no_flag_file",
            FlagError::SeveralFiles { .. } => "several_files",
            FlagError::TooManyEntries { .. } => "too_many_entries",
            FlagError::Fuse => "fuse",
            FlagError::Replaced => "replaced",
        })
    }
}

impl From<rustix::io::Errno> for FlagError {
    fn from(errno: rustix::io::Errno) -> Self {
        FlagError::Io(errno.into())
    }
}

/// The privilege that decides the kernel's ptrace access check on another
/// process's `/proc/<pid>/root`, the check a search must pass to read that
/// process's flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Privilege {
    /// The effective uid is 0.
    pub root: bool,
    /// `CAP_SYS_PTRACE` is in the effective capability set.
    pub sys_ptrace: bool,
}

/// `CAP_SYS_PTRACE` from `<linux/capability.h>`: its bit in `CapEff`.
const CAP_SYS_PTRACE: u32 = 19;

impl Privilege {
    /// This thread's privilege (the check is made on the calling thread's
    /// credentials), from `/proc/thread-self/status`; nothing is assumed
    /// where it cannot be read.
    pub fn current() -> Self {
        std::fs::read_to_string("/proc/thread-self/status")
            .map(|status| Self::from_status(&status))
            .unwrap_or_default()
    }

    /// Parses the `Uid:` and `CapEff:` lines of a `/proc/<pid>/status` text.
    fn from_status(status: &str) -> Self {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
        // `Uid:` lists the real, effective, saved and file-system uids.
        let root = field("Uid:").and_then(|f| f.split_ascii_whitespace().nth(1)) == Some("0");
        let sys_ptrace = field("CapEff:")
            .and_then(|f| u64::from_str_radix(f.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << CAP_SYS_PTRACE) != 0);
        Privilege { root, sys_ptrace }
    }
}

/// How many refused pids a message names before it only counts the rest.
const DENIED_SHOWN: usize = 10;

/// Says which processes refused us and why, in words that are true of this
/// process: advice to become root with `SYS_PTRACE` only where it is not.
/// An added capability is not effective for a non-root user in Kubernetes,
/// which sets no ambient capabilities, hence "as root".
fn denied_note(denied: &[u32], privilege: Privilege) -> String {
    let (pids, their) = match denied {
        [] => return String::new(),
        [_] => ("pid", "its root directory"),
        _ => ("pids", "their root directories"),
    };
    let mut list = String::new();
    for (i, pid) in denied.iter().take(DENIED_SHOWN).enumerate() {
        let _ = write!(list, "{}{pid}", if i == 0 { "" } else { ", " });
    }
    if denied.len() > DENIED_SHOWN {
        let _ = write!(list, " and {} more", denied.len() - DENIED_SHOWN);
    }
    let why = match (privilege.root, privilege.sys_ptrace) {
        (true, true) => {
            "the kernel's ptrace access check denied it although this process is root with \
             CAP_SYS_PTRACE (a process of another user namespace, or protected by a security \
             module)"
        }
        (false, true) => {
            "the kernel's ptrace access check denied it although this process has \
             CAP_SYS_PTRACE (a process of another user namespace, or protected by a security \
             module)"
        }
        (true, false) => {
            "permission denied by the kernel's ptrace access check: this process is root but \
             CAP_SYS_PTRACE is not in its effective set; add the SYS_PTRACE capability, or run \
             as the monitored container's uid and gid"
        }
        (false, false) => {
            "permission denied by the kernel's ptrace access check: run as root with the \
             SYS_PTRACE capability, or as the monitored container's uid and gid"
        }
    };
    format!("; {pids} {list} refused access to {their}: {why}")
}

/// Names the processes whose flag was refused, and why, so that a flag made
/// wrongly (two ConfigMap keys, a FIFO) is not a silent "not found".
fn refused_note(refused: &[(u32, &'static str)]) -> String {
    let Some(((first, why), rest)) = refused.split_first() else {
        return String::new();
    };
    let mut list = format!("{first} ({})", why.replace('_', " "));
    for (pid, why) in rest.iter().take(DENIED_SHOWN - 1) {
        let _ = write!(list, ", {pid} ({})", why.replace('_', " "));
    }
    if refused.len() > DENIED_SHOWN {
        let _ = write!(list, " and {} more", refused.len() - DENIED_SHOWN);
    }
    let flags = if refused.len() == 1 { "flag" } else { "flags" };
    format!("; {flags} refused: pid {list}")
}

fn list_cgroups(cgroups: &[(PathBuf, Vec<u32>)]) -> String {
    let mut out = String::new();
    for (i, (path, pids)) in cgroups.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(out, "{} (pid", path.display());
        if pids.len() > 1 {
            out.push('s');
        }
        for (j, pid) in pids.iter().enumerate() {
            let _ = write!(out, "{}{pid}", if j == 0 { " " } else { ", " });
        }
        out.push(')');
    }
    out
}

/// `path` with `flag_path` inside it, for messages: `/proc/42/root/etc/pid_flag`.
pub(super) fn inside(root: &Path, flag_path: &Path) -> PathBuf {
    root.join(flag_path.strip_prefix("/").unwrap_or(flag_path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_lists_every_cgroup() {
        let e = DiscoverError::Ambiguous {
            cgroups: vec![
                (PathBuf::from("/a"), vec![1, 2]),
                (PathBuf::from("/b"), vec![3]),
            ],
        };
        assert_eq!(
            e.to_string(),
            "processes with the flag are in 2 cgroups: /a (pids 1, 2), /b (pid 3)"
        );
    }

    fn not_found(denied: Vec<u32>, privilege: Privilege) -> String {
        DiscoverError::NotFound {
            proc_root: "/proc".into(),
            flag_path: "/etc/pid_flag".into(),
            own_flag: "/etc/pid_flag_sc".into(),
            denied,
            privilege,
            refused: Box::default(),
        }
        .to_string()
    }

    const NOT_FOUND: &str =
        "no process under /proc has /etc/pid_flag matching the flag in /etc/pid_flag_sc";

    #[test]
    fn not_found_without_refusals_says_nothing_of_privilege() {
        for root in [false, true] {
            for sys_ptrace in [false, true] {
                let privilege = Privilege { root, sys_ptrace };
                assert_eq!(not_found(vec![], privilege), NOT_FOUND);
            }
        }
    }

    #[test]
    fn not_found_tells_an_unprivileged_process_to_become_root() {
        let plain = Privilege::default();
        assert_eq!(
            not_found(vec![7], plain),
            format!(
                "{NOT_FOUND}; pid 7 refused access to its root directory: permission denied by \
                 the kernel's ptrace access check: run as root with the SYS_PTRACE capability, \
                 or as the monitored container's uid and gid"
            )
        );
        let root = Privilege {
            root: true,
            sys_ptrace: false,
        };
        let text = not_found(vec![7, 8], root);
        assert!(
            text.ends_with(
                "; pids 7, 8 refused access to their root directories: permission denied by \
                 the kernel's ptrace access check: this process is root but CAP_SYS_PTRACE is \
                 not in its effective set; add the SYS_PTRACE capability, or run as the \
                 monitored container's uid and gid"
            ),
            "{text}"
        );
        assert!(!text.contains("run as root"), "{text}");
    }

    #[test]
    fn not_found_as_root_with_cap_sys_ptrace_blames_the_kernel_check() {
        let full = Privilege {
            root: true,
            sys_ptrace: true,
        };
        assert_eq!(
            not_found(vec![1], full),
            format!(
                "{NOT_FOUND}; pid 1 refused access to its root directory: the kernel's ptrace \
                 access check denied it although this process is root with CAP_SYS_PTRACE (a \
                 process of another user namespace, or protected by a security module)"
            )
        );
        let cap_only = Privilege {
            root: false,
            sys_ptrace: true,
        };
        let text = not_found(vec![1], cap_only);
        assert!(
            text.contains("although this process has CAP_SYS_PTRACE"),
            "{text}"
        );
        for text in [not_found(vec![1], full), text] {
            assert!(!text.contains("run as root"), "{text}");
        }
    }

    #[test]
    fn not_found_names_the_refused_flags_and_why() {
        let refused = |refused| {
            DiscoverError::NotFound {
                proc_root: "/proc".into(),
                flag_path: "/etc/pid_flag".into(),
                own_flag: "/etc/pid_flag_sc".into(),
                denied: vec![],
                privilege: Privilege::default(),
                refused: Vec::into_boxed_slice(refused),
            }
            .to_string()
        };
        assert_eq!(
            refused(vec![(7, "fifo")]),
            format!("{NOT_FOUND}; flag refused: pid 7 (fifo)")
        );
        assert_eq!(
            refused(vec![(7, "not_utf8"), (9, "several_files")]),
            format!("{NOT_FOUND}; flags refused: pid 7 (not utf8), 9 (several files)")
        );
        let many = refused((1..=12).map(|p| (p, "too_large")).collect());
        assert!(
            many.ends_with("9 (too large), 10 (too large) and 2 more"),
            "{many}"
        );
    }

    #[test]
    fn a_missing_flag_is_no_refusal() {
        let io = |errno: rustix::io::Errno| FlagError::from(errno).reason();
        assert_eq!(io(rustix::io::Errno::NOENT), None);
        assert_eq!(io(rustix::io::Errno::NOTDIR), None);
        assert_eq!(io(rustix::io::Errno::LOOP), Some("symlink"));
        assert_eq!(io(rustix::io::Errno::ACCESS), Some("permission"));
        assert_eq!(io(rustix::io::Errno::IO), Some("io"));
        let kind = |kind| FlagError::NotRegular { kind }.reason();
        assert_eq!(kind("character device"), Some("device"));
        assert_eq!(kind("block device"), Some("device"));
        assert_eq!(kind("fifo"), Some("fifo"));
        assert_eq!(kind("special file"), Some("special"));
    }

    #[test]
    fn not_found_names_at_most_ten_pids() {
        let text = not_found((1..=13).collect(), Privilege::default());
        assert!(
            text.contains("; pids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 3 more refused access to their root directories: "),
            "{text}"
        );
        let text = not_found((1..=10).collect(), Privilege::default());
        assert!(
            text.contains("; pids 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 refused"),
            "{text}"
        );
    }

    #[test]
    fn privilege_from_status() {
        let status = |uid: &str, cap_eff: &str| {
            format!(
                "Name:\tpsi\nUid:\t{uid}\nGid:\t0\t0\t0\t0\nCapInh:\t0000000000000000\n\
                 CapPrm:\t000001ffffffffff\nCapEff:\t{cap_eff}\n"
            )
        };
        let p = |uid, cap| Privilege::from_status(&status(uid, cap));
        // The root of this machine: every capability but CAP_SYS_RESOURCE.
        assert_eq!(
            p("0\t0\t0\t0", "000001fffeffffff"),
            Privilege {
                root: true,
                sys_ptrace: true
            }
        );
        // Kubernetes' root with every capability dropped but SYS_PTRACE.
        assert_eq!(
            p("0\t0\t0\t0", "0000000000080000"),
            Privilege {
                root: true,
                sys_ptrace: true
            }
        );
        // Root with every capability dropped.
        assert_eq!(
            p("0\t0\t0\t0", "0000000000000000"),
            Privilege {
                root: true,
                sys_ptrace: false
            }
        );
        // A user whose effective uid is not 0 (real uid 0, set-uid away).
        assert_eq!(
            p("0\t1000\t1000\t1000", "0000000000000000"),
            Privilege::default()
        );
        assert_eq!(
            p("1000\t1000\t1000\t1000", "0000000000080000"),
            Privilege {
                root: false,
                sys_ptrace: true
            }
        );
        assert_eq!(Privilege::from_status(""), Privilege::default());
        assert_eq!(
            p("0\t0\t0\t0", "garbage"),
            Privilege {
                root: true,
                sys_ptrace: false
            }
        );
    }

    #[test]
    fn privilege_of_this_thread_agrees_with_capget() -> Result<(), Box<dyn std::error::Error>> {
        let caps = rustix::thread::capabilities(None)?;
        let want = Privilege {
            root: rustix::process::geteuid().is_root(),
            sys_ptrace: caps
                .effective
                .contains(rustix::thread::CapabilitySet::SYS_PTRACE),
        };
        assert_eq!(Privilege::current(), want);
        Ok(())
    }

    /// On the real `/proc`, where some process may refuse even root (here
    /// pid 1, a process this sandbox's security module protects).
    #[test]
    fn a_root_search_with_cap_sys_ptrace_does_not_say_to_run_as_root()
    -> Result<(), Box<dyn std::error::Error>> {
        let privilege = Privilege::current();
        if !(privilege.root && privilege.sys_ptrace) {
            psi_testkit::ci::missing("not running as root with CAP_SYS_PTRACE");
            return Ok(());
        }
        let dir = tempfile::tempdir()?;
        let own_flag = dir.path().join("pid_flag_sc");
        std::fs::write(&own_flag, format!("no-such-flag-{}", std::process::id()))?;
        let config = super::super::Config {
            own_flag,
            ..super::super::Config::default()
        };
        let e = super::super::discover(&config)
            .err()
            .ok_or("no process carries this flag")?;
        let text = e.to_string();
        eprintln!("{text}");
        let DiscoverError::NotFound {
            denied,
            privilege: searched_with,
            ..
        } = &e
        else {
            return Err(format!("not NotFound: {e:?}").into());
        };
        assert_eq!(*searched_with, privilege);
        assert!(!text.contains("run as root"), "{text}");
        if !denied.is_empty() {
            assert!(
                text.contains("although this process is root with CAP_SYS_PTRACE"),
                "{text}"
            );
        }
        Ok(())
    }

    #[test]
    fn inside_joins_absolute_paths() {
        assert_eq!(
            inside(Path::new("/proc/42/root"), Path::new("/etc/pid_flag")),
            Path::new("/proc/42/root/etc/pid_flag")
        );
    }
}
