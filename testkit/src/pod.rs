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
    let flag_file = format!("/proc/{}/root{}", child.id(), layout.path());
    let comm = format!("/proc/{}/comm", child.id());
    ready(
        Process { child },
        cg,
        &format!("{flag_file} holding {flag:?}"),
        || {
            std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")
                && std::fs::read_to_string(&flag_file).is_ok_and(|f| f.trim() == flag)
        },
    )
}

/// Waits up to 10 s until `is_ready` says the container set up in `cg` is
/// (`what`, for the error), failing at once if its setup exits.
fn ready(
    mut container: Process,
    cg: &Path,
    what: &str,
    mut is_ready: impl FnMut() -> bool,
) -> io::Result<Process> {
    // Polled often: a test that restarts a container a hundred times waits
    // for this each time, and a setup takes a few milliseconds.
    let ready = eventually_every(Duration::from_secs(10), Duration::from_millis(5), || {
        // A setup step that failed ends the process: say so at once rather
        // than after the whole wait.
        if let Ok(Some(status)) = container.child.try_wait() {
            return Some(Err(io::Error::other(format!(
                "the container's setup in {} exited with {status}",
                cg.display()
            ))));
        }
        is_ready().then_some(Ok(()))
    });
    match ready {
        Some(Ok(())) => Ok(container),
        Some(Err(e)) => Err(e),
        None => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no {what} within 10 s"),
        )),
    }
}

/// A container with a root directory of its own, as a runtime gives one:
/// what [`start_rooted`] starts.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rooted<'a> {
    /// Shell commands run as root in the new root (the working directory)
    /// before the main process starts there: they make `etc/pid_flag`, or
    /// whatever a test needs. `$1`... are [`args`](Rooted::args).
    pub setup: &'a str,
    /// The setup's positional parameters.
    pub args: &'a [&'a str],
    /// The uid and gid the main process runs as, with no capability; root
    /// when `None`.
    pub user: Option<(u32, u32)>,
}

/// Starts a container's main process in the cgroup `cg` with a root of its
/// own, and waits (up to 10 s) until `/proc/<pid>/root` is that root.
///
/// The process joins `cg`, unshares a cgroup namespace and a private mount
/// namespace, mounts a tmpfs on `mount_point` (an empty directory, such as a
/// temporary one: the tmpfs is seen only inside the container) and makes it
/// a root: `/usr` bound read-only beside the host's `bin`, `lib`... links,
/// an empty `etc` and `tmp`, its own cgroup2 at `sys/fs/cgroup`, and `proc`.
/// Then it runs `spec.setup` there and `chroot`s into it to sleep, as
/// `spec.user` if given. Paths of the host, the sidecar's flag included,
/// are not in that root: a symlink to one leads nowhere unless whoever
/// follows it leaves the root. Needs root; stopped when the returned
/// [`Process`] drops.
pub fn start_rooted(cg: &Path, mount_point: &Path, spec: Rooted<'_>) -> io::Result<Process> {
    let user = match spec.user {
        Some((uid, gid)) => {
            format!(
                "setpriv --reuid={uid} --regid={gid} --clear-groups --inh-caps=-all --bounding-set=-all"
            )
        }
        None => String::new(),
    };
    // As in `start_container`, everything is a positional parameter: the
    // mount point, the setup, the user prefix, then the setup's own.
    let inner = "R=\"$1\" SETUP=\"$2\" AS=\"$3\"; shift 3; \
                 mount -t tmpfs -o mode=0755 tmpfs \"$R\" && cd \"$R\" && \
                 mkdir -p etc tmp usr proc sys/fs/cgroup && mount --bind -o ro /usr usr && \
                 for d in bin sbin lib lib32 lib64; do \
                   if [ -L /$d ]; then ln -s \"$(readlink /$d)\" $d; \
                   elif [ -d /$d ]; then mkdir $d && mount --bind -o ro /$d $d; fi; done && \
                 mount -t cgroup2 cgroup2 sys/fs/cgroup && mount -t proc proc proc && \
                 sh -ec \"$SETUP\" setup \"$@\" && touch .psi-rooted && \
                 exec chroot \"$R\" $AS sleep 600";
    let outer = "echo $$ > \"$1/cgroup.procs\" && shift && \
                 exec unshare -C -m --propagation private sh -c \"$@\"";
    let child = Command::new("sh")
        .args(["-c", outer, "sh"])
        .arg(cg)
        .arg(inner)
        .arg("sh")
        .arg(mount_point)
        .args([spec.setup, &user])
        .args(spec.args)
        .stdin(Stdio::null())
        .spawn()?;
    // The marker is in the new root only: seen once the chroot is done.
    let marker = format!("/proc/{}/root/.psi-rooted", child.id());
    ready(Process { child }, cg, &marker, || {
        Path::new(&marker).exists()
    })
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
