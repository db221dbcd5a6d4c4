//! A cgroup tree built on the real kernel as the kubelet and the runtimes
//! name it (both cgroup drivers), with a matching tree of kubelet log
//! directories, and the exporter in node mode on it.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use psi_testkit::cgroup::TestCgroup;
use psi_testkit::http;
use psi_testkit::process::Process;

/// The burstable pod `shop/web` (systemd driver).
pub const UID_A: &str = "5f3c2a1e-8b7d-4c6a-9e0f-1a2b3c4d5e6f";
/// The guaranteed pod `shop/db` (systemd driver).
pub const UID_B: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
/// The besteffort pod `batch/job` (cgroupfs driver).
pub const UID_C: &str = "11112222-3333-4444-5555-666677778888";

/// A 64-hex container id made of one repeated digit.
pub fn cid(digit: char) -> String {
    std::iter::repeat_n(digit, 64).collect()
}

/// The tree, relative to its root, each with its cgroup (dropped deepest
/// first, after their loops stop).
pub struct Tree {
    cgroups: Vec<(String, TestCgroup)>,
    /// The tree's root: the exporter's --cgroup-root.
    pub root: TestCgroup,
    /// `pods/` and `containers/`, as /var/log has them.
    pub logs: tempfile::TempDir,
}

impl Tree {
    /// - systemd driver: a burstable pod `shop/web` (A) with container
    ///   `nginx` (id `a…`) and its sandbox (`b…`, no log entry); a
    ///   guaranteed pod `shop/db` (B) with container `postgres` (`c…`);
    /// - cgroupfs driver: a besteffort pod `batch/job` (C) with container
    ///   `worker` (`d…`, CRI-O's `crio-` prefix);
    /// - a docker container outside Kubernetes (`e…`), and `system.slice`.
    pub fn build(root: &Path) -> Tree {
        let top = TestCgroup::new(root, "node").expect("the tree's root");
        let a = format!("kubepods-burstable-pod{}.slice", UID_A.replace('-', "_"));
        let b = format!("kubepods-pod{}.slice", UID_B.replace('-', "_"));
        let dirs = [
            "kubepods.slice".to_owned(),
            "kubepods.slice/kubepods-burstable.slice".to_owned(),
            format!("kubepods.slice/kubepods-burstable.slice/{a}"),
            format!(
                "kubepods.slice/kubepods-burstable.slice/{a}/cri-containerd-{}.scope",
                cid('a')
            ),
            format!(
                "kubepods.slice/kubepods-burstable.slice/{a}/cri-containerd-{}.scope",
                cid('b')
            ),
            format!("kubepods.slice/{b}"),
            format!("kubepods.slice/{b}/cri-containerd-{}.scope", cid('c')),
            "kubepods".to_owned(),
            "kubepods/besteffort".to_owned(),
            format!("kubepods/besteffort/pod{UID_C}"),
            format!("kubepods/besteffort/pod{UID_C}/crio-{}", cid('d')),
            "system.slice".to_owned(),
            format!("system.slice/docker-{}.scope", cid('e')),
        ];
        let cgroups = dirs
            .iter()
            .map(|d| {
                let path = top.path().join(d);
                let parent = path.parent().expect("a parent").to_owned();
                let name = path
                    .file_name()
                    .expect("a name")
                    .to_string_lossy()
                    .into_owned();
                (
                    d.clone(),
                    TestCgroup::named(&parent, &name).expect("mkdir the cgroup"),
                )
            })
            .collect();
        let logs = tempfile::tempdir().expect("tempdir");
        for (ns, pod, uid, containers) in [
            ("shop", "web", UID_A, &["nginx"][..]),
            ("shop", "db", UID_B, &["postgres"][..]),
            ("batch", "job", UID_C, &["worker"][..]),
        ] {
            for c in containers {
                std::fs::create_dir_all(logs.path().join(format!("pods/{ns}_{pod}_{uid}/{c}")))
                    .expect("pod log dir");
            }
        }
        std::fs::create_dir(logs.path().join("containers")).expect("mkdir");
        for (pod, ns, container, id) in [
            ("web", "shop", "nginx", cid('a')),
            ("db", "shop", "postgres", cid('c')),
            ("job", "batch", "worker", cid('d')),
        ] {
            let link = logs
                .path()
                .join(format!("containers/{pod}_{ns}_{container}-{id}.log"));
            std::os::unix::fs::symlink("/nonexistent/0.log", link).expect("symlink");
        }
        Tree {
            cgroups,
            root: top,
            logs,
        }
    }

    /// The cgroup at `rel` below the root.
    pub fn cgroup(&mut self, rel: &str) -> &mut TestCgroup {
        let found = self.cgroups.iter_mut().find(|(r, _)| r == rel);
        &mut found.expect("a cgroup of the tree").1
    }

    /// The `nginx` container of `shop/web`, below the root.
    pub fn nginx(&self) -> String {
        let a = format!("kubepods-burstable-pod{}.slice", UID_A.replace('-', "_"));
        format!(
            "kubepods.slice/kubepods-burstable.slice/{a}/cri-containerd-{}.scope",
            cid('a')
        )
    }

    /// The `postgres` container of `shop/db`, below the root.
    pub fn postgres(&self) -> String {
        format!(
            "kubepods.slice/kubepods-pod{}.slice/cri-containerd-{}.scope",
            UID_B.replace('-', "_"),
            cid('c')
        )
    }

    /// Starts the exporter in node mode on this tree with `extra` flags.
    pub fn exporter(&self, port: u16, extra: &[&str]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
        command
            .args(["--mode", "node", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--cgroup-root")
            .arg(self.root.path())
            .arg("--pod-logs-dir")
            .arg(self.logs.path().join("pods"))
            .arg("--container-logs-dir")
            .arg(self.logs.path().join("containers"))
            .args(extra);
        http::serve(&mut command, port, Duration::from_secs(10))
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        // Deepest first: a cgroup with children cannot be removed.
        while let Some((_, cg)) = self.cgroups.pop() {
            drop(cg);
        }
    }
}

/// Many empty pod cgroups, `kubepods/pod<uid>` under a test cgroup (the
/// exporter's `--cgroup-root`): a large node, made in a few seconds.
pub struct Pods {
    /// The pods, dropped first.
    pub pods: Vec<TestCgroup>,
    /// `kubepods`, then the root.
    kubepods: TestCgroup,
    /// The tree's root.
    pub root: TestCgroup,
}

impl Pods {
    /// `n` pods under a new test cgroup named after `name`.
    pub fn make(parent: &Path, name: &str, n: usize) -> Pods {
        let root = TestCgroup::new(parent, name).expect("the tree's root");
        let kubepods = TestCgroup::named(root.path(), "kubepods").expect("kubepods");
        let pods = (0..n)
            .map(|i| {
                let uid = format!("{i:08x}-2222-4000-8000-000000000000");
                TestCgroup::named(kubepods.path(), &format!("pod{uid}")).expect("mkdir a pod")
            })
            .collect();
        Pods {
            pods,
            kubepods,
            root,
        }
    }

    /// The `cgroup` label of every pod.
    pub fn labels(&self) -> std::collections::HashSet<String> {
        self.pods
            .iter()
            .filter_map(|p| psi_core::cgroup::relative(self.root.path(), p.path()))
            .collect()
    }

    /// `kubepods`.
    pub fn kubepods(&self) -> &Path {
        self.kubepods.path()
    }
}

/// Starts the exporter in node mode on `root` with `extra` flags, its soft
/// and hard limits on open files set to `nofile` when given (`ulimit -n`).
pub fn node_exporter(port: u16, root: &Path, nofile: Option<u32>, extra: &[&str]) -> Process {
    let exe = env!("CARGO_BIN_EXE_psi-exporter");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(match nofile {
            Some(n) => format!("ulimit -n {n} && exec \"$0\" \"$@\""),
            None => "exec \"$0\" \"$@\"".to_owned(),
        })
        .arg(exe)
        .args(["--mode", "node", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--cgroup-root")
        .arg(root)
        .args(extra);
    http::serve(&mut command, port, Duration::from_secs(10))
}
