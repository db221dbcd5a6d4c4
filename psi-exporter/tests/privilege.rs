//! Least privilege (issue 13), shown on the real kernel: what the exporter
//! can do with only the privileges its manifests give it, and what it says
//! when one is missing.
//!
//! | run as | monitored process | result |
//! |---|---|---|
//! | root, only `CAP_SYS_PTRACE` | another uid's | found, exported |
//! | the app's uid and gid, no capability | its own uid's | found, exported |
//! | root, no capability | another uid's | not found; advice: add `SYS_PTRACE` |
//! | another uid, no capability | another uid's | not found; advice: root with `SYS_PTRACE`, or the app's uid and gid |
//! | uid 65534, no capability, node mode | (cgroups) | exported |
//! | every mount read-only | | found, exported; node mode too |
//!
//! Capabilities are dropped with `setpriv` (util-linux), mounts made
//! read-only in a private mount namespace with `unshare`. Needs root and
//! cgroup v2; in CI these tests must run.

mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;
use std::time::Duration;

use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::ci::tool;
use psi_testkit::http::{self, free_port, promtool_check, sample};
use psi_testkit::pod::{self, Rooted};
use psi_testkit::process::{Process, eventually};
use support::{Pod, exporter_via, metrics, sidecar_flag, start_exporter_via, status_field};

/// The monitored container's uid and gid (not root).
const APP: (u32, u32) = (4242, 4242);

/// `CapEff` with only `CAP_SYS_PTRACE` (bit 19), and with nothing.
const PTRACE_ONLY: &str = "0000000000080000";
const NO_CAPS: &str = "0000000000000000";

/// `setpriv` with every capability dropped but `keep` (`""` for none), as
/// `user` (uid and gid) or as root.
fn setpriv(setpriv: &str, keep: &str, user: Option<(u32, u32)>) -> Vec<String> {
    let mut args = vec![setpriv.to_owned()];
    if let Some((uid, gid)) = user {
        args.extend([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".to_owned(),
        ]);
    }
    args.push("--inh-caps=-all".to_owned());
    args.push(format!("--bounding-set=-all{keep}"));
    args.push("--".to_owned());
    args
}

/// A pod whose monitored container runs as [`APP`] with no capability,
/// in a root of its own; its flag readable by anyone who may look.
/// Fields drop in order: the container before its cgroup.
struct AppPod {
    container: Process,
    _app: TestCgroup,
    sidecar: TestCgroup,
    flag_dir: tempfile::TempDir,
    _root: tempfile::TempDir,
}

impl AppPod {
    fn start(root: &std::path::Path, name: &str) -> AppPod {
        let flag = support::unique_flag(name);
        let app = TestCgroup::new(root, &format!("{name}-app")).expect("cgroup");
        let sidecar = TestCgroup::new(root, &format!("{name}-sidecar")).expect("cgroup");
        let flag_dir = sidecar_flag(&flag);
        // An exporter that is not root must be able to read its own flag.
        std::fs::set_permissions(flag_dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        let mount_point = tempfile::tempdir().expect("tempdir");
        let spec = Rooted {
            setup: "mkdir etc/pid_flag && printf '%s\\n' \"$1\" > etc/pid_flag/pid_flag",
            args: &[&flag],
            user: Some(APP),
        };
        let container = pod::start_rooted(app.path(), mount_point.path(), spec)
            .expect("start the monitored container");
        AppPod {
            container,
            _app: app,
            sidecar,
            flag_dir,
            _root: mount_point,
        }
    }

    fn pid(&self) -> u32 {
        self.container.child.id()
    }

    /// The exporter in the sidecar, through `wrapper`.
    fn exporter(&self, port: u16, wrapper: &[String]) -> Process {
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        start_exporter_via(&wrapper, port, self.flag_dir.path(), &self.sidecar, &[])
    }
}

/// Asserts the exporter runs with exactly `cap_eff` and uid `uid`.
fn assert_runs_with(exporter: &Process, cap_eff: &str, uid: u32) {
    let pid = exporter.child.id();
    assert_eq!(status_field(pid, "CapEff:").as_deref(), Some(cap_eff));
    let uids = status_field(pid, "Uid:").expect("Uid:");
    assert!(
        uids.split_whitespace().all(|u| u == uid.to_string()),
        "Uid: {uids}"
    );
}

/// Waits until the exporter exports the container at `pid`: up, its pid
/// named, and its cpu counter present.
fn assert_exports(port: u16, pid: u32) -> String {
    let body = support::wait_for_target(port, pid);
    assert!(
        sample(&body, "psi_cpu_waiting_seconds_total").is_some(),
        "{body}"
    );
    assert!(
        body.contains(&format!("path=\"/proc/{pid}/root/sys/fs/cgroup\"")),
        "read through the container's own cgroup view: {body}"
    );
    promtool_check(&body);
    body
}

/// An [`AppPod`] named `name` and its exporter, run by `setpriv` with only
/// the capabilities `keep` (`",+sys_ptrace"`, or `""` for none), as `user`
/// or as root; its port. `None` where root, cgroup v2 or setpriv is missing
/// (reported as [`tool`] does).
fn sidecar_as(name: &str, keep: &str, user: Option<(u32, u32)>) -> Option<(AppPod, Process, u16)> {
    let root = cgroup::root()?;
    let bin = tool("setpriv", "util-linux")?;
    let pod = AppPod::start(&root, name);
    let port = free_port().expect("port");
    let exporter = pod.exporter(port, &setpriv(&bin.to_string_lossy(), keep, user));
    Some((pod, exporter, port))
}

/// Asserts that the search failed for want of privilege, with `advice`.
fn assert_refused_with(port: u16, advice: &str) {
    let health = eventually(Duration::from_secs(10), || {
        let body = http::get(port, "/health").ok()?.body;
        body.contains("not found").then_some(body)
    })
    .expect("the search fails");
    let want = format!(
        " refused access to their root directories: permission denied by the kernel's \
         ptrace access check: {advice}"
    );
    assert!(health.contains(&want), "{want} in: {health}");
    assert_eq!(sample(&metrics(port), "psi_target_up"), Some(0.0));
}

#[test]
fn root_with_only_sys_ptrace_exports_another_users_container() {
    let Some((pod, exporter, port)) = sidecar_as("priv-ptrace", ",+sys_ptrace", None) else {
        return;
    };
    assert_runs_with(&exporter, PTRACE_ONLY, 0);
    assert_exports(port, pod.pid());
}

#[test]
fn the_apps_own_uid_and_gid_without_any_capability_exports_it() {
    let Some((pod, exporter, port)) = sidecar_as("priv-same-uid", "", Some(APP)) else {
        return;
    };
    assert_runs_with(&exporter, NO_CAPS, APP.0);
    assert_exports(port, pod.pid());
}

#[test]
fn root_without_sys_ptrace_is_told_to_add_it() {
    let Some((_pod, exporter, port)) = sidecar_as("priv-no-ptrace", "", None) else {
        return;
    };
    assert_runs_with(&exporter, NO_CAPS, 0);
    assert_refused_with(
        port,
        "this process is root but CAP_SYS_PTRACE is not in its effective set; add the \
         SYS_PTRACE capability, or run as the monitored container's uid and gid",
    );
}

#[test]
fn another_uid_without_capabilities_is_told_both_ways_that_work() {
    let other = (APP.0 + 1, APP.1 + 1);
    let Some((_pod, exporter, port)) = sidecar_as("priv-other-uid", "", Some(other)) else {
        return;
    };
    assert_runs_with(&exporter, NO_CAPS, other.0);
    assert_refused_with(
        port,
        "run as root with the SYS_PTRACE capability, or as the monitored container's uid \
         and gid",
    );
}

#[test]
fn node_mode_as_nobody_without_capabilities_exports_the_tree() {
    let Some(root) = cgroup::root() else { return };
    let Some(bin) = tool("setpriv", "util-linux") else {
        return;
    };
    let top = TestCgroup::new(&root, "priv-nobody").expect("cgroup");
    let _child = TestCgroup::named(top.path(), "app.slice").expect("cgroup");
    let port = free_port().expect("port");
    let wrapper = setpriv(&bin.to_string_lossy(), "", Some((65534, 65534)));
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let mut command = exporter_via(&wrapper);
    command
        .args(["--mode", "node", "--level", "all"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup-root"])
        .arg(top.path());
    let exporter = http::serve(&mut command, port, Duration::from_secs(10));
    assert_runs_with(&exporter, NO_CAPS, 65534);
    let body = metrics(port);
    promtool_check(&body);
    for resource in ["cpu", "memory", "io"] {
        let series = format!("psi_{resource}_waiting_seconds_total{{cgroup=\"/app.slice\"}}");
        assert!(sample(&body, &series).is_some(), "{series} in:\n{body}");
    }
    assert_eq!(sample(&body, "psi_node_cgroups"), Some(2.0), "{body}");
    assert!(!body.contains("reason=\"permission\""), "{body}");
}

/// Makes every mount of a private mount namespace read-only, checks that
/// a write fails, and execs the rest of its arguments.
const READ_ONLY: &str = "for m in $(awk '{print $2}' /proc/self/mounts); do \
                           mount -o remount,bind,ro \"$m\" 2>/dev/null || :; done; \
                         if touch /tmp/.psi-read-only-probe 2>/dev/null; then \
                           echo 'the root file system is still writable' >&2; exit 3; fi; \
                         exec \"$@\"";

/// Asserts that every mount the process sees is read-only: of mounts
/// stacked on one mount point, the last, which hides the others.
fn assert_all_read_only(pid: u32) {
    let mountinfo = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).expect("mountinfo");
    let mut visible = std::collections::HashMap::new();
    for line in mountinfo.lines() {
        // Field 5 is the mount point, field 6 the per-mount options.
        let mut fields = line.split(' ').skip(4);
        let (point, options) = (fields.next(), fields.next());
        visible.insert(
            point.unwrap_or_default(),
            (options.unwrap_or_default(), line),
        );
    }
    assert!(visible.contains_key("/"), "{mountinfo}");
    for (options, line) in visible.values() {
        assert!(
            options.split(',').any(|o| o == "ro"),
            "a writable mount: {line}"
        );
    }
}

#[test]
fn a_read_only_root_file_system_is_enough() {
    let Some(root) = cgroup::root() else { return };
    if tool("unshare", "util-linux").is_none() {
        return;
    }
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        READ_ONLY,
        "sh",
    ];

    // The sidecar, discovering the monitored container.
    let pod = Pod::start(&root, "priv-ro");
    let port = free_port().expect("port");
    let sidecar = start_exporter_via(&wrapper, port, pod.flag_dir.path(), &pod.sidecar, &[]);
    assert_all_read_only(sidecar.child.id());
    assert_exports(port, pod.pid());

    // Node mode, on a test tree.
    let top = TestCgroup::new(&root, "priv-ro-node").expect("cgroup");
    let _child = TestCgroup::named(top.path(), "app.slice").expect("cgroup");
    let port = free_port().expect("port");
    let mut command: Command = exporter_via(&wrapper);
    command
        .args(["--mode", "node", "--level", "all"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup-root"])
        .arg(top.path());
    let node = http::serve(&mut command, port, Duration::from_secs(10));
    assert_all_read_only(node.child.id());
    let body = metrics(port);
    promtool_check(&body);
    let series = "psi_cpu_waiting_seconds_total{cgroup=\"/app.slice\"}";
    assert!(sample(&body, series).is_some(), "{series} in:\n{body}");
}
