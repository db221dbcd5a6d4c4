//! What file system a path is on: the leaf that the cgroup topology and
//! the readers both stand on.

use std::path::Path;

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
pub(crate) const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
/// `CGROUP_SUPER_MAGIC` from `<linux/magic.h>`: a cgroup v1 hierarchy.
pub(crate) const CGROUP_SUPER_MAGIC: i64 = 0x0027_e0eb;

/// The file system's magic number, or `None` when it cannot be had.
pub(crate) fn fs_type(path: &Path) -> Option<i64> {
    // `f_type` is a signed long of architecture-dependent width.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    rustix::fs::statfs(path).ok().map(|st| i64::from(st.f_type))
}

/// True for a directory on cgroup2 without `cgroup.procs`, which every live
/// cgroup has: a removed cgroup still seen through a mount of it (a
/// container's own `/sys/fs/cgroup`). A saved copy is not on cgroup2; a
/// `cgroup.procs` that cannot be looked at is not taken for absent.
pub(crate) fn is_removed_cgroup(dir: &Path) -> bool {
    fs_type(dir) == Some(CGROUP2_SUPER_MAGIC)
        && matches!(dir.join("cgroup.procs").try_exists(), Ok(false))
}
