//! A fake `/proc` in a temporary directory, for testing pid_flag discovery
//! against any tree a hostile or broken container could show.
//!
//! [`FakeProc`] lays out what discovery reads: `<proc>/<pid>/root/etc/pid_flag`,
//! `<proc>/<pid>/cgroup`, a process's own cgroup-namespaced
//! `<proc>/<pid>/root/sys/fs/cgroup`, a `self` link, this process's own flag
//! and a cgroup2 mount. A fake `<pid>/root` is a plain directory:
//! `RESOLVE_IN_ROOT` works on any directory descriptor, so escapes through
//! symlinks behave there as in a real container's root. [`configmap`] and
//! [`mkfifo`] make the awkward files a flag can be.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

/// A fake `/proc`, our own flag, and a cgroup2 mount, in a temporary
/// directory removed on drop.
///
/// Layout, under [`path("")`](FakeProc::path):
/// - `proc/`: the fake `/proc` ([`proc`](FakeProc::proc)), with
///   `self -> 999` ([`SELF_PID`](FakeProc::SELF_PID)) and `999/root/etc`;
/// - `own/pid_flag_sc`: where our own flag goes ([`own_flag`](FakeProc::own_flag)),
///   not created, so that a test can make it a file, a directory or a FIFO;
/// - `cgroup/`: the cgroup2 mount ([`cgroups`](FakeProc::cgroups)).
#[derive(Debug)]
pub struct FakeProc {
    dir: tempfile::TempDir,
}

impl FakeProc {
    /// This process's pid in the fake tree (`<proc>/self -> 999`).
    pub const SELF_PID: u32 = 999;

    /// Where [`process`](FakeProc::process) puts a process's flag, inside
    /// its root.
    pub const FLAG_PATH: &str = "/etc/pid_flag";

    /// Makes the tree in a new temporary directory.
    pub fn new() -> io::Result<FakeProc> {
        let fake = FakeProc {
            dir: tempfile::tempdir()?,
        };
        fake.root(Self::SELF_PID)?;
        symlink(Self::SELF_PID.to_string(), fake.proc().join("self"))?;
        fs::create_dir_all(fake.path("own"))?;
        fs::create_dir_all(fake.cgroups())?;
        Ok(fake)
    }

    /// `rel` under the temporary directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The fake `/proc`.
    pub fn proc(&self) -> PathBuf {
        self.path("proc")
    }

    /// The fake cgroup2 mount.
    pub fn cgroups(&self) -> PathBuf {
        self.path("cgroup")
    }

    /// Where our own flag goes (the sidecar's `/etc/pid_flag_sc`); nothing is
    /// there until a test puts it.
    pub fn own_flag(&self) -> PathBuf {
        self.path("own/pid_flag_sc")
    }

    /// Creates `<proc>/<pid>/root/etc` and returns the root.
    pub fn root(&self, pid: u32) -> io::Result<PathBuf> {
        let root = self.proc().join(pid.to_string()).join("root");
        fs::create_dir_all(root.join("etc"))?;
        Ok(root)
    }

    /// A process whose [`FLAG_PATH`](FakeProc::FLAG_PATH) is a file holding
    /// `flag`; returns its root.
    pub fn process(&self, pid: u32, flag: &str) -> io::Result<PathBuf> {
        let root = self.root(pid)?;
        fs::write(root.join(Self::FLAG_PATH.trim_start_matches('/')), flag)?;
        Ok(root)
    }

    /// Puts `pid` in the cgroup `cgroup` (an absolute path as in
    /// `/proc/<pid>/cgroup`): writes `<proc>/<pid>/cgroup`, with a cgroup v1
    /// line before the unified one as on a hybrid host, and creates the
    /// cgroup's directory under the mount.
    pub fn in_cgroup(&self, pid: u32, cgroup: &str) -> io::Result<()> {
        let dir = self.proc().join(pid.to_string());
        fs::create_dir_all(&dir)?;
        fs::write(dir.join("cgroup"), format!("1:cpu:/v1\n0::{cgroup}\n"))?;
        fs::create_dir_all(self.cgroups().join(cgroup.trim_start_matches('/')))?;
        Ok(())
    }

    /// A process that was listed and is gone: `<proc>/<pid>` names nothing
    /// (a dangling symlink), so every open below it fails with `ENOENT`, as
    /// for a process reaped between the listing of `/proc` and the reading
    /// of its files, which the kernel cannot be made to do on cue.
    pub fn vanished(&self, pid: u32) -> io::Result<()> {
        symlink(format!("{pid}-reaped"), self.proc().join(pid.to_string()))
    }

    /// Gives `pid` its own cgroup-namespaced `/sys/fs/cgroup`, recognisable as
    /// a cgroup by its `cgroup.controllers`; returns it. It is not on
    /// cgroup2, so discovery does not use it (what a container's tmpfs made
    /// to look like a cgroup gets): a real view needs a real container
    /// (`crate::pod`).
    pub fn own_view(&self, pid: u32) -> io::Result<PathBuf> {
        let view = self.root(pid)?.join("sys/fs/cgroup");
        fs::create_dir_all(&view)?;
        fs::write(view.join("cgroup.controllers"), "cpu io memory\n")?;
        Ok(view)
    }
}

/// Makes `dir` a ConfigMap volume as the kubelet lays it out: a timestamped
/// directory holding the file `key` with `content`, `..data` pointing at it,
/// and a relative symlink `key -> ..data/key`.
pub fn configmap(dir: &Path, key: &str, content: &str) -> io::Result<()> {
    let stamp = "..2024_11_26_13_48_00.123456789";
    fs::create_dir_all(dir.join(stamp))?;
    fs::write(dir.join(stamp).join(key), content)?;
    symlink(stamp, dir.join("..data"))?;
    symlink(format!("..data/{key}"), dir.join(key))?;
    Ok(())
}

/// Makes a FIFO at `path`: a flag that blocks forever whoever opens it for
/// reading without `O_NONBLOCK`.
pub fn mkfifo(path: &Path) -> io::Result<()> {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )?;
    Ok(())
}
