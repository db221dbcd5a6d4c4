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
        "no process under {} has {} matching the flag in {}{}",
        proc_root.display(),
        flag_path.display(),
        own_flag.display(),
        denied_note(*denied)
    )]
    NotFound {
        /// The proc root that was scanned.
        proc_root: PathBuf,
        /// Where the flag was looked for inside each process's root.
        flag_path: PathBuf,
        /// This process's own flag.
        own_flag: PathBuf,
        /// How many processes could not be inspected for lack of permission.
        denied: usize,
    },
    /// The processes with our flag are in more than one cgroup.
    #[error("processes with the flag are in {} cgroups: {}; pass --cgroup to choose one", cgroups.len(), list_cgroups(cgroups))]
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
    /// No `cgroup2` line in `mountinfo`.
    #[error("no cgroup v2 mount found in {}; mount cgroup2 or pass --cgroup", path.display())]
    NoCgroup2Mount {
        /// The `mountinfo` file.
        path: PathBuf,
    },
    /// The process's cgroup lies outside what this process's cgroup2 mount
    /// shows (another cgroup namespace, or a mount of a subtree).
    #[error(
        "cgroup {cgroup} of pid {pid} is not reachable from the cgroup2 mount at {}; \
         share the host's cgroup namespace or pass --cgroup",
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

impl From<rustix::io::Errno> for FlagError {
    fn from(errno: rustix::io::Errno) -> Self {
        FlagError::Io(errno.into())
    }
}

impl FlagError {
    /// The OS error code, when the cause is an I/O error.
    pub(super) fn errno(&self) -> Option<i32> {
        match self {
            FlagError::Io(e) => e.raw_os_error(),
            _ => None,
        }
    }
}

/// What lets a reader pass the kernel's ptrace access check on another
/// process's `/proc/<pid>/root`: an added capability is not effective for a
/// non-root user in Kubernetes, which sets no ambient capabilities.
const DENIED_HINT: &str = "permission denied: run as root with the SYS_PTRACE capability, \
                           or as the monitored container's uid and gid";

fn denied_note(denied: usize) -> String {
    match denied {
        0 => String::new(),
        1 => format!("; 1 process could not be inspected ({DENIED_HINT})"),
        n => format!("; {n} processes could not be inspected ({DENIED_HINT})"),
    }
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
            "processes with the flag are in 2 cgroups: /a (pids 1, 2), /b (pid 3); \
             pass --cgroup to choose one"
        );
    }

    #[test]
    fn not_found_mentions_denied_processes() {
        let mut e = DiscoverError::NotFound {
            proc_root: "/proc".into(),
            flag_path: "/etc/pid_flag".into(),
            own_flag: "/etc/pid_flag_sc".into(),
            denied: 0,
        };
        assert_eq!(
            e.to_string(),
            "no process under /proc has /etc/pid_flag matching the flag in /etc/pid_flag_sc"
        );
        if let DiscoverError::NotFound { denied, .. } = &mut e {
            *denied = 3;
        }
        assert!(e.to_string().ends_with(
            "; 3 processes could not be inspected (permission denied: run as root with the \
             SYS_PTRACE capability, or as the monitored container's uid and gid)"
        ));
    }

    #[test]
    fn inside_joins_absolute_paths() {
        assert_eq!(
            inside(Path::new("/proc/42/root"), Path::new("/etc/pid_flag")),
            Path::new("/proc/42/root/etc/pid_flag")
        );
    }
}
