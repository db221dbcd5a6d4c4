//! What a directory of pressure files is, and which of its lines the kernel
//! really measures.

use std::io;
use std::path::{Path, PathBuf};

use crate::{Line, Pressure, Resource};

use crate::fs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, fs_type, is_removed_cgroup};

/// What a directory of pressure files is.
///
/// The kind decides how the files are named (`cpu` or `cpu.pressure`) and
/// which lines are measured ([`measures`](Self::measures)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The whole system: `/proc/pressure`, or a copy of it, with files
    /// named `cpu`, `memory`, `io`, `irq`.
    System,
    /// The root cgroup of a live cgroup v2 hierarchy (the only cgroup
    /// without `cgroup.type`): the whole system's pressure again.
    Root,
    /// Any other cgroup of a live cgroup v2 hierarchy.
    Cgroup,
    /// Files in the cgroup layout (`cpu.pressure`, ...) on a file system
    /// that is not cgroup2: a saved copy, trusted as it is.
    Copy,
}

/// Why a directory holds no pressure files to read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// Nothing is there.
    #[error("{} does not exist", path.display())]
    Missing {
        /// The directory.
        path: PathBuf,
    },
    /// Not allowed to look.
    #[error("permission denied on {}", path.display())]
    PermissionDenied {
        /// The directory.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// Any other failure to look at it.
    #[error("cannot use {}", path.display())]
    Io {
        /// The directory.
        path: PathBuf,
        /// The system error.
        source: io::Error,
    },
    /// A file, where a directory was wanted.
    #[error("{} is a file, not a directory of pressure files", path.display())]
    NotADirectory {
        /// The file.
        path: PathBuf,
    },
    /// A directory of a cgroup v1 hierarchy, which has no pressure files.
    #[error("{} is in a cgroup v1 hierarchy, which has no pressure files", path.display())]
    CgroupV1 {
        /// The directory.
        path: PathBuf,
    },
    /// A directory with neither layout's files.
    #[error("{} holds no pressure files: it is not a cgroup v2 directory", path.display())]
    NoPressureFiles {
        /// The directory.
        path: PathBuf,
    },
}

impl DirError {
    /// The directory this error is about.
    pub fn path(&self) -> &Path {
        match self {
            DirError::Missing { path }
            | DirError::PermissionDenied { path, .. }
            | DirError::Io { path, .. }
            | DirError::NotADirectory { path }
            | DirError::CgroupV1 { path }
            | DirError::NoPressureFiles { path } => path,
        }
    }
}

impl Kind {
    /// Looks at `dir`: its file system (cgroup2, cgroup v1 or another) and,
    /// on cgroup2, whether it has `cgroup.type`; elsewhere, which layout of
    /// pressure files it holds.
    pub fn of(dir: &Path) -> Result<Kind, DirError> {
        let path = || dir.to_owned();
        let meta = std::fs::metadata(dir).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => DirError::Missing { path: path() },
            io::ErrorKind::PermissionDenied => DirError::PermissionDenied {
                path: path(),
                source: e,
            },
            _ => DirError::Io {
                path: path(),
                source: e,
            },
        })?;
        if !meta.is_dir() {
            return Err(DirError::NotADirectory { path: path() });
        }
        match fs_type(dir) {
            Some(CGROUP2_SUPER_MAGIC) if dir.join("cgroup.type").exists() => Ok(Kind::Cgroup),
            // The root is the one cgroup without `cgroup.type`; a removed
            // cgroup seen through a mount of it has neither that nor
            // `cgroup.procs`.
            Some(CGROUP2_SUPER_MAGIC) if is_removed_cgroup(dir) => {
                Err(DirError::Missing { path: path() })
            }
            Some(CGROUP2_SUPER_MAGIC) => Ok(Kind::Root),
            Some(CGROUP_SUPER_MAGIC) => Err(DirError::CgroupV1 { path: path() }),
            _ => {
                let has = |name: &str| dir.join(name).exists();
                if has("cgroup.procs")
                    || has("cgroup.pressure")
                    || Resource::ALL.iter().any(|r| has(r.cgroup_file()))
                {
                    Ok(Kind::Copy)
                } else if ["cpu", "memory", "io"]
                    .iter()
                    .any(|n| dir.join(n).is_file())
                {
                    Ok(Kind::System)
                } else {
                    Err(DirError::NoPressureFiles { path: path() })
                }
            }
        }
    }

    /// The name of `resource`'s file in a directory of this kind: `cpu` for
    /// the system, `cpu.pressure` for the others.
    pub const fn file_name(self, resource: Resource) -> &'static str {
        match self {
            Kind::System => resource.name(),
            Kind::Root | Kind::Cgroup | Kind::Copy => resource.cgroup_file(),
        }
    }

    /// A word for people and JSON: `system`, `root`, `cgroup` or `copy`.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::System => "system",
            Kind::Root => "root",
            Kind::Cgroup => "cgroup",
            Kind::Copy => "copy",
        }
    }

    /// True for the whole system's numbers: `/proc/pressure` and the root
    /// cgroup.
    pub const fn is_whole_system(self) -> bool {
        matches!(self, Kind::System | Kind::Root)
    }

    /// Whether the kernel measures `resource`'s `line` in a directory of
    /// this kind. The one line it does not is cpu `full` for the whole
    /// system (`/proc/pressure/cpu` and the root cgroup): all non-idle
    /// tasks of the machine can never be waiting for a CPU at once, so the
    /// kernel prints zeros there, and a zero would read as "no pressure".
    /// A saved copy is trusted as it is.
    pub fn measures(self, resource: Resource, line: Line) -> bool {
        !(self.is_whole_system() && resource == Resource::Cpu && line == Line::Full)
    }

    /// `pressure` without the lines this kind does not measure.
    pub fn measured(self, resource: Resource, mut pressure: Pressure) -> Pressure {
        for line in Line::ALL {
            if !self.measures(resource, line) {
                match line {
                    Line::Some => pressure.some = None,
                    Line::Full => pressure.full = None,
                }
            }
        }
        pressure
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_whole_systems_cpu_full_is_not_measured() {
        // Every line the kernel leaves unmeasured, written out.
        let unmeasured = [
            (Kind::System, Resource::Cpu, Line::Full),
            (Kind::Root, Resource::Cpu, Line::Full),
        ];
        let mut hidden = Vec::new();
        for kind in [Kind::System, Kind::Root, Kind::Cgroup, Kind::Copy] {
            for resource in Resource::ALL {
                for line in Line::ALL {
                    if !kind.measures(resource, line) {
                        hidden.push((kind, resource, line));
                    }
                }
            }
        }
        assert_eq!(hidden, unmeasured);
    }

    #[test]
    fn a_copy_of_a_non_root_cgroup_is_a_copy() {
        // No cgroup.type, as in any copy: it used to be taken for the root.
        let dir = psi_testkit::files::dir(&[("cpu.pressure", "")]);
        assert_eq!(Kind::of(dir.path()).expect("a copy"), Kind::Copy);
    }

    #[test]
    fn layouts_and_refusals() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            Kind::of(dir.path()),
            Err(DirError::NoPressureFiles { .. })
        ));
        std::fs::write(dir.path().join("cpu"), "").expect("write");
        assert_eq!(Kind::of(dir.path()).expect("system layout"), Kind::System);
        assert!(matches!(
            Kind::of(&dir.path().join("cpu")),
            Err(DirError::NotADirectory { .. })
        ));
        assert!(matches!(
            Kind::of(&dir.path().join("nope")),
            Err(DirError::Missing { .. })
        ));
    }
}
