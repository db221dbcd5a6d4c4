//! Where the cgroup v2 hierarchy is mounted, from `mountinfo`.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::fs::{CGROUP2_SUPER_MAGIC, fs_type};

/// The most read from a kernel text file such as `mountinfo` or
/// `/proc/<pid>/cgroup`: a host with thousands of mounts is not unheard of.
const KERNEL_FILE_LIMIT: u64 = 16 << 20;

/// A cgroup2 mount: where it is, and which cgroup its root shows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mount {
    /// The mount point: `/sys/fs/cgroup` on a unified host,
    /// `/sys/fs/cgroup/unified` on a hybrid one.
    pub point: PathBuf,
    /// The cgroup shown at the mount point, as the kernel writes cgroups in
    /// `/proc/<pid>/cgroup`: `/` for the whole hierarchy, `/kubepods/...`
    /// for a bind mount of a subtree.
    pub root: PathBuf,
}

/// Why no cgroup v2 mount was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// `mountinfo` could not be read.
    #[error("failed to read {}", path.display())]
    Read {
        /// The `mountinfo` file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `mountinfo` has no `cgroup2` line: cgroup v2 is not mounted here.
    #[error("no cgroup v2 mount in {}", path.display())]
    NotMounted {
        /// The `mountinfo` file.
        path: PathBuf,
    },
}

/// The cgroup v2 mount this process sees, from
/// `<proc_root>/self/mountinfo`.
///
/// When several `cgroup2` lines are present, the last one that shows the
/// hierarchy's root and is really a cgroup2 file system at that path wins
/// (a later mount may hide an earlier one, never the reverse).
///
/// ```no_run
/// let mount = psi_core::cgroup::find_mount("/proc".as_ref())?;
/// println!("{}", mount.point.display());
/// # Ok::<(), psi_core::cgroup::MountError>(())
/// ```
pub fn find_mount(proc_root: &Path) -> Result<Mount, MountError> {
    mount_in(&proc_root.join("self/mountinfo"))
}

/// The cgroup v2 mount described by the `mountinfo` file at `path`.
pub fn mount_in(path: &Path) -> Result<Mount, MountError> {
    let text = read_kernel_file(path).map_err(|source| MountError::Read {
        path: path.to_owned(),
        source,
    })?;
    best_mount(parse_mountinfo(&text), |p| {
        fs_type(p) == Some(CGROUP2_SUPER_MAGIC)
    })
    .ok_or_else(|| MountError::NotMounted {
        path: path.to_owned(),
    })
}

/// Picks among cgroup2 mounts, in `mountinfo` order: the last that shows the
/// hierarchy's root and passes `verify`, else the last that shows the root,
/// else the last.
fn best_mount(mounts: Vec<Mount>, verify: impl Fn(&Path) -> bool) -> Option<Mount> {
    let root = Path::new("/");
    let verified = mounts
        .iter()
        .rposition(|m| m.root == root && verify(&m.point));
    let rooted = mounts.iter().rposition(|m| m.root == root);
    let index = verified.or(rooted).or(mounts.len().checked_sub(1))?;
    mounts.into_iter().nth(index)
}

/// Every `cgroup2` mount of a `mountinfo` text, in order. Lines that are not
/// `cgroup2` mounts, or not mount lines at all, are skipped.
///
/// A line is `id parent major:minor root point options [optional...] - fstype
/// source super-options`; `root` and `point` escape space, tab, newline and
/// backslash as `\ooo` octal.
///
/// ```
/// let text = b"41 31 0:38 / /sys/fs/cgroup/unified rw shared:10 - cgroup2 cgroup2 rw\n";
/// let mounts = psi_core::cgroup::parse_mountinfo(text);
/// assert_eq!(mounts[0].point, std::path::Path::new("/sys/fs/cgroup/unified"));
/// ```
pub fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = fields.iter().skip(6).position(|f| *f == b"-") else {
            continue;
        };
        if fields.get(6 + dash + 1) != Some(&&b"cgroup2"[..]) {
            continue;
        }
        let (Some(root), Some(point)) = (fields.get(3), fields.get(4)) else {
            continue;
        };
        mounts.push(Mount {
            root: PathBuf::from(OsStr::from_bytes(&unescape(root))),
            point: PathBuf::from(OsStr::from_bytes(&unescape(point))),
        });
    }
    mounts
}

/// Undoes the kernel's `\ooo` octal escapes (`mangle` in fs/proc_namespace.c).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&first, tail)) = rest.split_first() {
        let octal = tail
            .get(..3)
            .filter(|d| first == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u16, |n, b| n * 8 + u16::from(b - b'0')));
        match octal.and_then(|n| u8::try_from(n).ok()) {
            Some(byte) => {
                out.push(byte);
                rest = tail.get(3..).unwrap_or_default();
            }
            None => {
                out.push(first);
                rest = tail;
            }
        }
    }
    out
}

/// Reads a kernel text file (`mountinfo`, `/proc/<pid>/cgroup`) whole, up to
/// a generous limit.
pub(crate) fn read_kernel_file(path: &Path) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut text = Vec::new();
    File::open(path)?
        .take(KERNEL_FILE_LIMIT)
        .read_to_end(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(root: &str, point: &str) -> Mount {
        Mount {
            root: root.into(),
            point: point.into(),
        }
    }

    #[test]
    fn mountinfo_hybrid_host() {
        let text = b"25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
            31 25 0:26 / /sys/fs/cgroup ro,nosuid shared:9 - tmpfs tmpfs ro,mode=755\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw\n\
            42 31 0:39 / /sys/fs/cgroup/cpu rw,relatime shared:11 - cgroup cgroup rw,cpu\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![mount("/", "/sys/fs/cgroup/unified")]
        );
    }

    #[test]
    fn mountinfo_without_optional_fields() {
        let text = b"41 31 0:38 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(parse_mountinfo(text), vec![mount("/", "/sys/fs/cgroup")]);
    }

    #[test]
    fn mountinfo_escapes() {
        let text = b"41 31 0:38 /a\\040b /mnt/cg\\040root\\134x\\011y rw - cgroup2 none rw\n";
        assert_eq!(
            parse_mountinfo(text),
            vec![mount("/a b", "/mnt/cg root\\x\ty")]
        );
    }

    #[test]
    fn mountinfo_dash_in_a_path_is_not_the_separator() {
        let text = b"41 31 0:38 / /mnt/- rw shared:1 - cgroup2 cgroup2 rw\n\
            42 31 0:38 / /- rw - tmpfs cgroup2 rw\n";
        assert_eq!(parse_mountinfo(text), vec![mount("/", "/mnt/-")]);
    }

    #[test]
    fn mountinfo_ignores_garbage() {
        assert_eq!(parse_mountinfo(b""), vec![]);
        assert_eq!(parse_mountinfo(b"- cgroup2\n1 2 3\n\n"), vec![]);
        assert_eq!(parse_mountinfo(b"1 2 3 / /x rw - cgroup\n"), vec![]);
    }

    #[test]
    fn unescape_leaves_incomplete_escapes() {
        assert_eq!(unescape(b"a\\04"), b"a\\04");
        assert_eq!(unescape(b"a\\08x"), b"a\\08x");
        assert_eq!(unescape(b"\\777"), b"\\777");
        assert_eq!(unescape(b"\\"), b"\\");
        assert_eq!(unescape(b"\\101\\102"), b"AB");
    }

    #[test]
    fn best_mount_prefers_the_last_verified_root() {
        let mounts = || {
            vec![
                mount("/", "/sys/fs/cgroup/unified"),
                mount("/sub", "/sub"),
                mount("/", "/hidden"),
            ]
        };
        let pick = |verify: fn(&Path) -> bool| best_mount(mounts(), verify).map(|m| m.point);
        assert_eq!(pick(|_| false), Some("/hidden".into()));
        assert_eq!(
            pick(|p| p == Path::new("/sys/fs/cgroup/unified")),
            Some("/sys/fs/cgroup/unified".into())
        );
        assert_eq!(
            best_mount(vec![mount("/a", "/x"), mount("/b", "/y")], |_| true).map(|m| m.point),
            Some("/y".into())
        );
        assert_eq!(best_mount(vec![], |_| true), None);
    }
}
