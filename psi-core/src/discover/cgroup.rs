//! From a pid to its cgroup v2 directory.

use std::ffi::OsStr;
use std::fs::File;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use rustix::fd::AsFd as _;
use rustix::fs::OFlags;

use super::Config;
use super::error::DiscoverError;
use super::flag::open_in_root;

/// `CGROUP2_SUPER_MAGIC` from `<linux/magic.h>`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The most read from `/proc/<pid>/cgroup` or `mountinfo`: both are kernel
/// text, but a host with thousands of mounts is not unheard of.
const KERNEL_FILE_LIMIT: u64 = 16 << 20;

/// A resolved cgroup directory and its identity.
#[derive(Debug)]
pub(super) struct Resolved {
    /// The path this process reads the cgroup's files through.
    pub(super) path: PathBuf,
    /// Device and inode of the directory: the same cgroup seen through two
    /// mounts (two containers' views, or a view and the host's mount) has
    /// one identity although the paths differ.
    pub(super) id: (u64, u64),
}

/// A cgroup2 mount: where it is, and which cgroup its root shows.
#[derive(Debug, PartialEq, Eq)]
struct Mount {
    point: PathBuf,
    root: PathBuf,
}

/// The cgroup v2 directory of process `pid`.
///
/// First the process's own view, `<proc_root>/<pid>/root/sys/fs/cgroup`, if
/// it holds `cgroup.controllers` or `cpu.pressure`: a container with a private
/// cgroup namespace mounts its own cgroup there. That view is used only when
///
/// - the directory resolved inside the process's root (with
///   `RESOLVE_IN_ROOT`) is the very directory the returned path leads to, so
///   a symlink cannot point this process at a cgroup of its own choosing;
/// - the process is not in this process's cgroup namespace (compared through
///   `<proc_root>/{self,<pid>}/ns/cgroup` when both can be read): there its
///   `/sys/fs/cgroup` is the namespace's root, not its cgroup, which is what
///   a plain process on the host would give.
///
/// Otherwise the `0::` line of `<proc_root>/<pid>/cgroup` is joined onto the
/// cgroup2 mount: [`Config::cgroup_mount`], or the one found in
/// `<proc_root>/self/mountinfo` by [`cgroup2_mount`].
///
/// ```no_run
/// let config = psi_core::discover::Config::default();
/// let dir = psi_core::discover::cgroup_of(&config, std::process::id())?;
/// println!("{}", dir.join("cpu.pressure").display());
/// # Ok::<(), psi_core::discover::DiscoverError>(())
/// ```
pub fn cgroup_of(config: &Config, pid: u32) -> Result<PathBuf, DiscoverError> {
    resolve(config, pid).map(|r| r.path)
}

pub(super) fn resolve(config: &Config, pid: u32) -> Result<Resolved, DiscoverError> {
    let pid_dir = config.proc_root.join(pid.to_string());
    if let Some(own) = namespaced_view(config, &pid_dir) {
        return Ok(own);
    }
    let cgroup_file = pid_dir.join("cgroup");
    let text = read_kernel_file(&cgroup_file)?;
    let cgroup = unified_entry(&text).ok_or_else(|| DiscoverError::NoUnifiedEntry {
        path: cgroup_file.clone(),
    })?;
    let mount = match &config.cgroup_mount {
        Some(point) => Mount {
            point: point.clone(),
            root: PathBuf::from("/"),
        },
        None => find_mount(&config.proc_root.join("self/mountinfo"))?,
    };
    let unreachable = || DiscoverError::Unreachable {
        pid,
        cgroup: String::from_utf8_lossy(cgroup).into_owned(),
        mount: mount.point.clone(),
    };
    // A cgroup outside this process's cgroup namespace reads as `/../x`; one
    // outside the mounted subtree does not start with the mount's root.
    let rel = Path::new(OsStr::from_bytes(cgroup))
        .strip_prefix(&mount.root)
        .map_err(|_| unreachable())?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(unreachable());
    }
    // `join("")` would add a trailing slash.
    let path = if rel.as_os_str().is_empty() {
        mount.point.clone()
    } else {
        mount.point.join(rel)
    };
    let meta = std::fs::metadata(&path).map_err(|source| DiscoverError::CgroupDir {
        path: path.clone(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DiscoverError::CgroupDir {
            path,
            source: std::io::Error::from(std::io::ErrorKind::NotADirectory),
        });
    }
    Ok(Resolved {
        path,
        id: (meta.dev(), meta.ino()),
    })
}

/// The process's own `/sys/fs/cgroup`, if it is its cgroup and safe to use.
fn namespaced_view(config: &Config, pid_dir: &Path) -> Option<Resolved> {
    if same_cgroup_namespace(&config.proc_root, pid_dir) == Some(true) {
        return None;
    }
    let root = File::from(
        rustix::fs::open(
            pid_dir.join("root"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()?,
    );
    let dir = File::from(
        open_in_root(
            root.as_fd(),
            Path::new("/sys/fs/cgroup"),
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        )
        .ok()?,
    );
    let holds = |name: &str| {
        rustix::fs::statat(&dir, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
            .is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file())
    };
    if !holds("cgroup.controllers") && !holds("cpu.pressure") {
        return None;
    }
    let inside = dir.metadata().ok()?;
    let path = pid_dir.join("root/sys/fs/cgroup");
    let through_path = std::fs::metadata(&path).ok()?;
    if (inside.dev(), inside.ino()) != (through_path.dev(), through_path.ino()) {
        return None;
    }
    Some(Resolved {
        path,
        id: (inside.dev(), inside.ino()),
    })
}

/// Whether the process is in this process's cgroup namespace; `None` when
/// either namespace link cannot be read.
fn same_cgroup_namespace(proc_root: &Path, pid_dir: &Path) -> Option<bool> {
    let ours = std::fs::metadata(proc_root.join("self/ns/cgroup")).ok()?;
    let theirs = std::fs::metadata(pid_dir.join("ns/cgroup")).ok()?;
    Some((ours.dev(), ours.ino()) == (theirs.dev(), theirs.ino()))
}

/// The mount point of the cgroup v2 hierarchy in a `mountinfo` file (such as
/// `/proc/self/mountinfo`): `/sys/fs/cgroup` on a unified host,
/// `/sys/fs/cgroup/unified` on a hybrid one.
///
/// When several `cgroup2` lines are present, the last one that shows the
/// hierarchy's root and is really a cgroup2 file system at that path wins
/// (a later mount may hide an earlier one, never the reverse).
///
/// ```no_run
/// let mount = psi_core::discover::cgroup2_mount("/proc/self/mountinfo".as_ref())?;
/// # Ok::<(), psi_core::discover::DiscoverError>(())
/// ```
pub fn cgroup2_mount(mountinfo: &Path) -> Result<PathBuf, DiscoverError> {
    find_mount(mountinfo).map(|m| m.point)
}

fn find_mount(mountinfo: &Path) -> Result<Mount, DiscoverError> {
    let text = read_kernel_file(mountinfo)?;
    best_mount(parse_mountinfo(&text), is_cgroup2).ok_or_else(|| DiscoverError::NoCgroup2Mount {
        path: mountinfo.to_owned(),
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

fn is_cgroup2(point: &Path) -> bool {
    // `f_type` is a signed long of architecture-dependent width.
    #[allow(clippy::unnecessary_cast)]
    rustix::fs::statfs(point).is_ok_and(|st| st.f_type as i64 == CGROUP2_SUPER_MAGIC)
}

/// Every `cgroup2` mount of a `mountinfo` text, in order.
///
/// A line is `id parent major:minor root point options [optional...] - fstype
/// source super-options`; `root` and `point` escape space, tab, newline and
/// backslash as `\ooo` octal.
fn parse_mountinfo(text: &[u8]) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
        let Some(dash) = fields.iter().skip(6).position(|f| *f == b"-") else {
            continue;
        };
        if fields.get(6 + dash + 1) != Some(&&b"cgroup2"[..]) {
            continue;
        }
        mounts.push(Mount {
            root: PathBuf::from(OsStr::from_bytes(&unescape(fields[3]))),
            point: PathBuf::from(OsStr::from_bytes(&unescape(fields[4]))),
        });
    }
    mounts
}

/// Undoes the kernel's `\ooo` octal escapes (`mangle` in fs/proc_namespace.c).
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        let octal = field
            .get(i + 1..i + 4)
            .filter(|d| field[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u16, |n, b| n * 8 + u16::from(b - b'0')));
        match octal.and_then(|n| u8::try_from(n).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(field[i]);
                i += 1;
            }
        }
    }
    out
}

/// The path of the `0::` line of a `/proc/<pid>/cgroup` text.
fn unified_entry(text: &[u8]) -> Option<&[u8]> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"0::"))
        .filter(|path| path.starts_with(b"/"))
}

fn read_kernel_file(path: &Path) -> Result<Vec<u8>, DiscoverError> {
    use std::io::Read as _;
    let read = || {
        let mut text = Vec::new();
        File::open(path)?
            .take(KERNEL_FILE_LIMIT)
            .read_to_end(&mut text)?;
        Ok(text)
    };
    read().map_err(|source| DiscoverError::Read {
        path: path.to_owned(),
        source,
    })
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

    #[test]
    fn unified_entry_skips_v1_lines() {
        let text = b"12:pids:/user.slice\n1:name=systemd:/x\n0::/kubepods/pod1/abc\n";
        assert_eq!(unified_entry(text), Some(&b"/kubepods/pod1/abc"[..]));
        assert_eq!(unified_entry(b"0::/\n"), Some(&b"/"[..]));
        assert_eq!(unified_entry(b"1:cpu:/\n"), None);
        assert_eq!(unified_entry(b"0::\n"), None);
        assert_eq!(
            unified_entry(b"0::/../sibling\n"),
            Some(&b"/../sibling"[..])
        );
    }
}
