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

pub use kind::{DirError, Kind};
pub(crate) use mount::read_kernel_file;
pub use mount::{Mount, MountError, find_mount, mount_in, parse_mountinfo};
pub use walk::{Entry, walk, walk_where};

/// The cgroup of directory `dir` under the mount point `mount`, as the kernel
/// writes cgroups in `/proc/<pid>/cgroup`: `/` for the mount point itself,
/// `/kubepods.slice/...` below it. `.` and `..` are resolved in the text
/// (`mount/a/../b` is `/b`); `None` when `dir` is not under `mount`, or
/// climbs out of it. Names that are not UTF-8 are written lossily, with
/// U+FFFD.
///
/// ```
/// use psi_core::cgroup::relative;
///
/// let mount = "/sys/fs/cgroup".as_ref();
/// assert_eq!(relative(mount, "/sys/fs/cgroup".as_ref()).as_deref(), Some("/"));
/// assert_eq!(relative(mount, "/sys/fs/cgroup/a/b".as_ref()).as_deref(), Some("/a/b"));
/// assert_eq!(relative(mount, "/sys/fs/cgroup/a/../b".as_ref()).as_deref(), Some("/b"));
/// assert_eq!(relative(mount, "/sys/fs/cgroup/..".as_ref()), None);
/// assert_eq!(relative(mount, "/tmp".as_ref()), None);
/// ```
pub fn relative(mount: &Path, dir: &Path) -> Option<String> {
    let rel = dir.strip_prefix(mount).ok()?;
    let mut names = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(name) => names.push(name.to_string_lossy()),
            Component::CurDir => {}
            Component::ParentDir => {
                names.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    if names.is_empty() {
        return Some("/".to_owned());
    }
    let mut out = String::new();
    for name in names {
        out.push('/');
        out.push_str(&name);
    }
    Some(out)
}
