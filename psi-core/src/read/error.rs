//! Why a pressure file could not be read.

use std::io;
use std::path::Path;
use std::sync::Arc;

use crate::ParseError;

/// Why pressure stall information is disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisabledBy {
    /// The kernel refuses to report it (`EOPNOTSUPP`): booted with `psi=0`.
    Kernel,
    /// The cgroup's `cgroup.pressure` is `0`, which hides its pressure files.
    CgroupPressure,
}

impl std::fmt::Display for DisabledBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DisabledBy::Kernel => "the kernel was booted with psi=0; boot with psi=1 to enable it",
            DisabledBy::CgroupPressure => {
                "the cgroup's cgroup.pressure is 0; write 1 to it to enable it"
            }
        })
    }
}

/// The error from reading a pressure file: which file, and why.
///
/// The path is named once in the message; the underlying cause, where there
/// is one, is given by [`std::error::Error::source`]. The path is shared
/// with the reader that failed: an error a kept-open file gives at every
/// read (irq where the kernel has none) allocates nothing.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The kernel does not report this resource here (e.g. `irq` before 6.1,
    /// or a kernel built without `CONFIG_PSI`).
    #[error("{} does not exist: this kernel does not report that pressure", path.display())]
    Unsupported {
        /// The file that does not exist.
        path: Arc<Path>,
    },
    /// Pressure stall information is turned off.
    #[error("pressure stall information is disabled for {}: {by}", path.display())]
    Disabled {
        /// The file that could not be read.
        path: Arc<Path>,
        /// What turned it off.
        by: DisabledBy,
    },
    /// The cgroup was removed.
    #[error("the cgroup is gone: {} was removed", path.display())]
    Gone {
        /// The file whose cgroup was removed.
        path: Arc<Path>,
    },
    /// Not allowed to read the file.
    #[error("permission denied reading {}", path.display())]
    PermissionDenied {
        /// The file that could not be read.
        path: Arc<Path>,
        /// The system error.
        source: io::Error,
    },
    /// Any other I/O error.
    #[error("failed to read {}", path.display())]
    Io {
        /// The file that could not be read.
        path: Arc<Path>,
        /// The system error.
        source: io::Error,
    },
    /// The file does not hold what the kernel writes.
    #[error("failed to parse {}", path.display())]
    Parse {
        /// The file that could not be parsed.
        path: Arc<Path>,
        /// Where and what.
        source: ParseError,
    },
}

/// Why a read failed, in one word: the `reason` label of
/// `psi_read_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// [`ReadError::Unsupported`]: `unsupported`.
    Unsupported,
    /// [`ReadError::Disabled`]: `disabled`.
    Disabled,
    /// [`ReadError::Gone`]: `gone`.
    Gone,
    /// [`ReadError::PermissionDenied`]: `permission`.
    Permission,
    /// [`ReadError::Io`]: `io`.
    Io,
    /// [`ReadError::Parse`]: `parse`.
    Parse,
}

impl Reason {
    /// Every reason, in declaration order: for counters kept by reason
    /// (`[u64; Reason::ALL.len()]`, indexed by [`index`](Self::index)).
    pub const ALL: &'static [Reason] = &[
        Reason::Unsupported,
        Reason::Disabled,
        Reason::Gone,
        Reason::Permission,
        Reason::Io,
        Reason::Parse,
    ];

    /// The short, stable label: `unsupported`, `disabled`, `gone`,
    /// `permission`, `io` or `parse`.
    pub const fn name(self) -> &'static str {
        match self {
            Reason::Unsupported => "unsupported",
            Reason::Disabled => "disabled",
            Reason::Gone => "gone",
            Reason::Permission => "permission",
            Reason::Io => "io",
            Reason::Parse => "parse",
        }
    }

    /// Its place in [`Reason::ALL`], for an array of counters.
    pub const fn index(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl ReadError {
    /// Why, in one word.
    pub fn reason(&self) -> Reason {
        match self {
            ReadError::Unsupported { .. } => Reason::Unsupported,
            ReadError::Disabled { .. } => Reason::Disabled,
            ReadError::Gone { .. } => Reason::Gone,
            ReadError::PermissionDenied { .. } => Reason::Permission,
            ReadError::Io { .. } => Reason::Io,
            ReadError::Parse { .. } => Reason::Parse,
        }
    }

    /// The file this error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Unsupported { path }
            | ReadError::Disabled { path, .. }
            | ReadError::Gone { path }
            | ReadError::PermissionDenied { path, .. }
            | ReadError::Io { path, .. }
            | ReadError::Parse { path, .. } => path,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_in_their_index_order() {
        for (i, &r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r}");
        }
    }
}
