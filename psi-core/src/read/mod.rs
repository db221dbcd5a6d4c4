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

mod error;
mod kept;
mod open;
mod reading;

use std::path::Path;

pub use error::{DisabledBy, ReadError, Reason};
pub use kept::{CpuStatFile, PressureFile, PressureSet};
pub use open::BUF_LEN;
pub use reading::Reading;

pub(crate) use open::is_cgroup_file;

use crate::cgroup::Kind;
use crate::cpu_stat::CpuStat;
use crate::{Pressure, Resource};

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
}
