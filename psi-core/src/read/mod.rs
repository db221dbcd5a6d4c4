//! Reading pressure files and cgroups (feature `std`).
//!
//! Every function here reads into a stack or caller-owned buffer and parses
//! with [`parse`](crate::parse()): nothing is allocated on success. Failures are
//! a [`ReadError`] that says *why* the pressure could not be read, because
//! "no data" must never look like "no pressure":
//!
//! | case | [`ReadError`] | [`Reason`] |
//! |------|---------------|--------------------|
//! | the file is absent in a live cgroup (or `/proc/pressure`) whose `cgroup.pressure` is not `0` | `Unsupported` | `unsupported` |
//! | reads fail with `EOPNOTSUPP` (booted with `psi=0`), or the file is hidden because `cgroup.pressure` is `0` | `Disabled` | `disabled` |
//! | the cgroup directory was removed (`ENODEV` on a kept-open file, which is reopened once first) | `Gone` | `gone` |
//! | `EACCES` or `EPERM` | `PermissionDenied` | `permission` |
//! | any other I/O error | `Io` | `io` |
//! | the contents are not a pressure file | `Parse` | `parse` |
//!
//! ```no_run
//! use psi_core::{Resource, read};
//!
//! let cpu = read::system(Resource::Cpu)?;
//! let mut cgroup = read::PressureSet::cgroup("/sys/fs/cgroup/system.slice");
//! for (resource, result) in cgroup.read_all().results() {
//!     match result {
//!         Ok(p) => println!("{resource}: {p}"),
//!         Err(e) => println!("{resource}: {e} ({})", e.reason()),
//!     }
//! }
//! # Ok::<(), read::ReadError>(())
//! ```

mod counts;
mod error;
mod kept;
mod open;
mod reading;

use std::path::Path;

pub use counts::ErrorCounts;
pub use error::{DisabledBy, ReadError, Reason};
pub use kept::{CpuStatFile, PressureFile, PressureSet};
pub use open::BUF_LEN;
pub use reading::Reading;

pub(crate) use open::is_cgroup_file;

use crate::cgroup::Kind;
use crate::cpu_stat::CpuStat;
use crate::{Line, Pressure, Resource};

/// Reads the system-wide `/proc/pressure/<resource>`, without the lines the
/// kernel does not measure there (see [`Kind::measures`]).
pub fn system(resource: Resource) -> Result<Pressure, ReadError> {
    system_at(Path::new("/proc"), resource)
}

/// Reads `<proc_root>/pressure/<resource>`, for a procfs mounted elsewhere.
pub fn system_at(proc_root: &Path, resource: Resource) -> Result<Pressure, ReadError> {
    let p = path(&proc_root.join("pressure").join(resource.name()))?;
    Ok(Kind::System.measured(resource, p))
}

/// Reads `<dir>/<resource>.pressure` of a cgroup v2 directory, without the
/// lines the kernel does not measure there (the root cgroup's cpu `full`).
pub fn cgroup(dir: &Path, resource: Resource) -> Result<Pressure, ReadError> {
    let p = path(&dir.join(resource.cgroup_file()))?;
    // Only a line that may be unmeasured (measured nowhere but below the
    // root) is worth looking at the directory for.
    if Line::ALL
        .iter()
        .all(|&l| p.get(l).is_none() || Kind::Root.measures(resource, l))
    {
        return Ok(p);
    }
    let kind = Kind::of(dir).unwrap_or(Kind::Cgroup);
    Ok(kind.measured(resource, p))
}

/// Reads one pressure file as it is: open, one read into a stack buffer,
/// close.
pub fn path(path: &Path) -> Result<Pressure, ReadError> {
    let mut buf = [0u8; BUF_LEN];
    let data = open::read_once(path, &mut buf)?;
    open::parse_pressure(path, data)
}

/// Reads the throttling counters of a cgroup's `cpu.stat`.
pub fn cpu_stat(dir: &Path) -> Result<CpuStat, ReadError> {
    let mut buf = [0u8; BUF_LEN];
    let data = open::read_once(&dir.join("cpu.stat"), &mut buf)?;
    Ok(crate::cpu_stat::parse(data))
}

/// Whether the cgroup at `dir` is gone, judged from one reading of its
/// pressure files: the one rule of when a reader leaves a cgroup (the
/// exporter's monitored cgroup, a cgroup of node mode).
///
/// Nothing was read, and either
/// - every resource that is not unsupported reads gone (a kept-open file
///   answers "unsupported" from a one-minute cache, irq on kernels without
///   it in cgroups, long after its cgroup was removed);
/// - or the directory is no longer a cgroup: its path leads nowhere, or to a
///   cgroup2 directory without `cgroup.procs`, which every cgroup has (a
///   removed cgroup seen through a mount of it, such as a container's own
///   `/sys/fs/cgroup`, stays an empty directory).
///
/// The directory is looked at only when nothing was read, so a healthy read
/// costs no system call here.
pub fn is_gone(dir: &Path, reading: &Reading) -> bool {
    if reading.any_ok() {
        return false;
    }
    let gone = |e: &ReadError| matches!(e, ReadError::Gone { .. });
    let unsupported = |e: &ReadError| matches!(e, ReadError::Unsupported { .. });
    let errors = || reading.errors().map(|(_, e)| e);
    if errors().any(gone) && errors().all(|e| gone(e) || unsupported(e)) {
        return true;
    }
    match std::fs::metadata(dir) {
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        Ok(_) => crate::fs::is_removed_cgroup(dir),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_system_file_is_unsupported() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = system_at(dir.path(), Resource::Irq).expect_err("no such file");
        assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
    }

    #[test]
    fn missing_file_in_missing_dir_is_gone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = cgroup(&dir.path().join("removed"), Resource::Cpu).expect_err("gone");
        assert!(matches!(e, ReadError::Gone { .. }), "{e:?}");
    }

    #[test]
    fn garbage_is_a_parse_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("cpu.pressure");
        std::fs::write(&p, "some avg10=zero\n").expect("write");
        let e = path(&p).expect_err("garbage");
        assert_eq!(e.reason(), Reason::Parse);
        assert_eq!(e.to_string(), format!("failed to parse {}", p.display()));
        let source = std::error::Error::source(&e).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("invalid digit in avg10 (byte 11, line 1)")
        );
    }

    use crate::Pressure;
    use std::time::Instant;

    /// A reading of the four resources, one letter each: `o` read, `g`
    /// gone, `u` unsupported, `d` permission denied.
    fn reads(letters: &str) -> Reading {
        let mut r = Reading::default();
        for (resource, letter) in Resource::ALL.into_iter().zip(letters.bytes()) {
            let path = Path::new("/x").into();
            let result = match letter {
                b'o' => Ok(Pressure::default()),
                b'g' => Err(ReadError::Gone { path }),
                b'u' => Err(ReadError::Unsupported { path }),
                _ => Err(ReadError::PermissionDenied {
                    path,
                    source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
                }),
            };
            r.set(resource, result, Instant::now());
        }
        r
    }

    #[test]
    fn a_cgroup_is_gone_when_nothing_but_unsupported_says_otherwise() {
        let live = tempfile::tempdir().expect("tempdir");
        let removed = live.path().join("removed");
        // (what, reads, gone with the directory there, gone without it)
        let cases = [
            ("all read", "oooo", false, false),
            ("one read", "oggg", false, false),
            ("irq cached as unsupported", "gggu", true, true),
            ("all gone", "gggg", true, true),
            ("no PSI in cgroups", "uuuu", false, true),
            ("a permission error is no proof", "ggdu", false, true),
            ("all denied", "dddd", false, true),
            ("irq first", "uggg", true, true),
        ];
        for (what, letters, there, not_there) in cases {
            assert_eq!(
                is_gone(live.path(), &reads(letters)),
                there,
                "{what}, directory there"
            );
            assert_eq!(
                is_gone(&removed, &reads(letters)),
                not_there,
                "{what}, no directory"
            );
        }
    }
}
