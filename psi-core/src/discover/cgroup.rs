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
use crate::cgroup::{self, Mount};

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

/// The cgroup v2 directory of process `pid`.
///
/// First the process's own view, `<proc_root>/<pid>/root/sys/fs/cgroup`, if
/// it holds `cgroup.controllers` or `cpu.pressure`: a container with a private
/// cgroup namespace mounts its own cgroup there. That view is used only when
///
/// - the directory resolved inside the process's root (with
///   `RESOLVE_IN_ROOT`) is the very directory the returned path leads to, so
///   a symlink cannot point this process at a cgroup of its own choosing;
/// - it is on a cgroup2 file system: the files are then read through that
///   path, where an absolute symlink (in a tmpfs made to look like a
///   cgroup) would resolve from this process's root and read a file of the
///   host;
/// - the process is not in this process's cgroup namespace (compared through
///   `<proc_root>/{self,<pid>}/ns/cgroup` when both can be read): there its
///   `/sys/fs/cgroup` is the namespace's root, not its cgroup, which is what
///   a plain process on the host would give.
///
/// Otherwise the `0::` line of `<proc_root>/<pid>/cgroup` is joined onto the
/// cgroup2 mount: [`Config::cgroup_mount`], or the one found in
/// `<proc_root>/self/mountinfo` by [`cgroup::find_mount`].
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
    let cgroup = cgroup_entry(&text).ok_or_else(|| DiscoverError::NoUnifiedEntry {
        path: cgroup_file.clone(),
    })?;
    let mount = match &config.cgroup_mount {
        Some(point) => Mount {
            point: point.clone(),
            root: PathBuf::from("/"),
        },
        None => cgroup::find_mount(&config.proc_root)?,
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
    // Its pressure files are read through `/proc/<pid>/root/...`, where
    // an absolute symlink resolves from this process's root, not the
    // container's: only a cgroup2 file system, which holds no symlinks and
    // no file the container made, is safe to read that way. A tmpfs made
    // to look like one is not the container's cgroup anyway.
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    let on_cgroup2 = rustix::fs::fstatfs(&dir)
        .is_ok_and(|st| i64::from(st.f_type) == crate::fs::CGROUP2_SUPER_MAGIC);
    if !on_cgroup2 {
        return None;
    }
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

/// The cgroup v2 path of a `/proc/<pid>/cgroup` text: what follows `0::` on
/// its unified line, if that starts with `/`. cgroup v1 lines
/// (`12:pids:/...`) are skipped. The path is as the kernel wrote it for the
/// reader, so it may climb out of the reader's cgroup namespace (`/../x`).
///
/// ```
/// let text = b"1:name=systemd:/x\n0::/kubepods/pod1/abc\n";
/// assert_eq!(psi_core::discover::cgroup_entry(text), Some(&b"/kubepods/pod1/abc"[..]));
/// ```
pub fn cgroup_entry(text: &[u8]) -> Option<&[u8]> {
    text.split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"0::"))
        .filter(|path| path.starts_with(b"/"))
}

fn read_kernel_file(path: &Path) -> Result<Vec<u8>, DiscoverError> {
    cgroup::read_kernel_file(path).map_err(|source| DiscoverError::Read {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_entry_skips_v1_lines() {
        let text = b"12:pids:/user.slice\n1:name=systemd:/x\n0::/kubepods/pod1/abc\n";
        assert_eq!(cgroup_entry(text), Some(&b"/kubepods/pod1/abc"[..]));
        assert_eq!(cgroup_entry(b"0::/\n"), Some(&b"/"[..]));
        assert_eq!(cgroup_entry(b"1:cpu:/\n"), None);
        assert_eq!(cgroup_entry(b"0::\n"), None);
        assert_eq!(cgroup_entry(b"0::/../sibling\n"), Some(&b"/../sibling"[..]));
    }
}
