//! Cgroup topology (feature `std`): where the cgroup v2 hierarchy is
//! mounted, what a directory of pressure files is, the one line the kernel
//! does not measure, the tree walk, pod and container identity from a path
//! ([`kube`]), and their names from the kubelet's log directories
//! ([`logs`]).
//!
//! ```no_run
//! use psi_core::cgroup::{self, Kind};
//!
//! let mount = cgroup::find_mount("/proc".as_ref())?;
//! for entry in cgroup::walk(&mount.point, 3) {
//!     let kind = Kind::of(&entry.path);
//!     let name = cgroup::relative(&mount.point, &entry.path).unwrap_or_default();
//!     let kube = cgroup::kube::Identity::from_path(name.as_ref());
//!     println!("{name} {kind:?} {kube:?}");
//! }
//! # Ok::<(), cgroup::MountError>(())
//! ```

mod kind;
pub mod kube;
pub mod logs;
mod mount;
mod walk;

use std::path::{Component, Path};

use crate::read::{ReadError, Reading};

pub use kind::{DirError, Kind};
pub(crate) use mount::read_kernel_file;
pub use mount::{Mount, MountError, find_mount, mount_in, parse_mountinfo};
pub use walk::{Entry, walk};

/// The cgroup of directory `dir` under the mount point `mount`, as the kernel
/// writes cgroups in `/proc/<pid>/cgroup`: `/` for the mount point itself,
/// `/kubepods.slice/...` below it. `None` when `dir` is not under `mount`
/// (or reaches it through `..`). Names that are not UTF-8 are written
/// lossily, with U+FFFD.
///
/// ```
/// use psi_core::cgroup::relative;
///
/// let mount = "/sys/fs/cgroup".as_ref();
/// assert_eq!(relative(mount, "/sys/fs/cgroup".as_ref()).as_deref(), Some("/"));
/// assert_eq!(relative(mount, "/sys/fs/cgroup/a/b".as_ref()).as_deref(), Some("/a/b"));
/// assert_eq!(relative(mount, "/tmp".as_ref()), None);
/// ```
pub fn relative(mount: &Path, dir: &Path) -> Option<String> {
    let rel = dir.strip_prefix(mount).ok()?;
    let mut out = String::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => {
                out.push('/');
                out.push_str(&name.to_string_lossy());
            }
            Component::CurDir => {}
            _ => return None,
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Some(out)
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
        Ok(_) => is_removed_view(dir),
    }
}

/// A cgroup2 directory without `cgroup.procs`: a removed cgroup still seen
/// through a mount of it. A saved copy is not on cgroup2.
pub(crate) fn is_removed_view(dir: &Path) -> bool {
    kind::fs_type(dir) == Some(kind::CGROUP2_SUPER_MAGIC) && !dir.join("cgroup.procs").exists()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pressure, Resource};
    use std::time::Instant;

    /// A reading of the four resources, one letter each: `o` read, `g`
    /// gone, `u` unsupported, `d` permission denied.
    fn reads(letters: &str) -> Reading {
        let mut r = Reading::default();
        for (resource, letter) in Resource::ALL.into_iter().zip(letters.bytes()) {
            let path = "/x".into();
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
