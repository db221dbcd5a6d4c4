//! A simulated pod without a container engine: a process set up as a
//! container runtime sets up a container's main process (DESIGN.md §5).
//!
//! The process joins a cgroup, then unshares a cgroup namespace rooted there
//! and a private mount namespace, mounts a tmpfs on `/etc` holding its
//! `pid_flag`, mounts cgroup2 on `/sys/fs/cgroup` and sleeps. From outside,
//! `/proc/<pid>/root/etc/pid_flag` is its flag and
//! `/proc/<pid>/root/sys/fs/cgroup` its cgroup, as for a real container: what
//! `psi read --pid-flag` and the exporter's discovery look for.

use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::process::{Process, eventually_every};

/// How the container's `/etc/pid_flag` holds its flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagLayout {
    /// `/etc/pid_flag` is a file holding the flag.
    File,
    /// `/etc/pid_flag` is a directory holding a file `pid_flag`: what a
    /// ConfigMap volume mounted there shows, as in the seed's manifests.
    Directory,
}

impl FlagLayout {
    /// The flag file's path inside the container.
    pub fn path(self) -> &'static str {
        match self {
            FlagLayout::File => "/etc/pid_flag",
            FlagLayout::Directory => "/etc/pid_flag/pid_flag",
        }
    }
}

/// Starts a container's main process in the cgroup `cg` with `flag` in its
/// `/etc/pid_flag`, laid out as `layout` says, and waits (up to 10 s) until
/// its flag shows through `/proc/<pid>/root` and its setup is over: the
/// process runs `sleep`, and none of the setup's commands, which carry the
/// flag too while they run, is left.
///
/// The process is stopped when the returned [`Process`] drops; its pid is
/// the container's (`sh` execs `unshare`, which execs `sh`, which execs
/// `sleep`). Needs root.
pub fn start_container(cg: &Path, flag: &str, layout: FlagLayout) -> io::Result<Process> {
    // The cgroup, the flag and its path are positional parameters rather than
    // text spliced into the scripts, so no quoting can go wrong. The cgroup
    // is joined before unsharing: the new cgroup namespace is rooted at the
    // cgroup the process is in, as a runtime roots a container's.
    let inner = "mount -t tmpfs tmpfs /etc && mkdir -p \"${2%/*}\" && \
                 printf '%s\\n' \"$1\" > \"$2\" && \
                 mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec sleep 600";
    let outer = "echo $$ > \"$1/cgroup.procs\" && \
                 exec unshare -C -m --propagation private sh -c \"$2\" sh \"$3\" \"$4\"";
    let child = Command::new("sh")
        .args(["-c", outer, "sh"])
        .arg(cg)
        .args([inner, flag, layout.path()])
        .stdin(Stdio::null())
        .spawn()?;
    let mut container = Process { child };
    let flag_file = format!("/proc/{}/root{}", container.child.id(), layout.path());
    // Polled often: a test that restarts a container a hundred times waits
    // for this each time, and the setup takes a few milliseconds.
    let ready = eventually_every(Duration::from_secs(10), Duration::from_millis(5), || {
        // A setup step that failed ends the process: say so at once rather
        // than after the whole wait.
        if let Ok(Some(status)) = container.child.try_wait() {
            return Some(Err(io::Error::other(format!(
                "the container's setup in {} exited with {status}",
                cg.display()
            ))));
        }
        let comm = format!("/proc/{}/comm", container.child.id());
        let set_up = std::fs::read_to_string(comm).is_ok_and(|c| c.trim() == "sleep");
        std::fs::read_to_string(&flag_file)
            .ok()
            .filter(|f| set_up && f.trim() == flag)
            .map(|_| Ok(()))
    });
    match ready {
        Some(Ok(())) => Ok(container),
        Some(Err(e)) => Err(e),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no {flag_file} holding {flag:?} within 10 s"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_that_fails_is_reported_rather_than_waited_for() {
        // Joining a cgroup that does not exist fails before any namespace is
        // made, so this needs no root.
        let err = start_container(Path::new("/nonexistent-cgroup"), "f", FlagLayout::File)
            .expect_err("no such cgroup");
        assert!(err.to_string().contains("exited with"), "{err}");
    }
}
