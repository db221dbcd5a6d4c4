//! Node mode on the real kernel: a cgroup tree built as the kubelet and the
//! runtimes name it (both cgroup drivers), a matching log tree, busy loops
//! in one container, and the exporter's labels, levels, values and churn.
//! Needs root and cgroup v2; in CI these tests must run.

mod support;

use std::collections::HashSet;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::http::{self, free_port, promtool_check, sample};
use psi_testkit::process::eventually;
use support::kubelet::{Pods, Tree, UID_A, UID_C, cid, node_exporter};
use support::{cgroups_of, metrics, no_duplicate_series};

/// The first series of `family` whose labels hold `cgroup="/<rel>"`.
fn series<'a>(body: &'a str, family: &str, rel: &str) -> Option<&'a str> {
    let needle = format!("{family}{{cgroup=\"/{rel}\"");
    body.lines().find(|l| l.starts_with(&needle))
}

#[test]
fn labels_levels_and_values_on_a_kubelet_tree() {
    let Some(root) = cgroup::root() else { return };
    let mut tree = Tree::build(&root);
    let nginx = tree.nginx();
    tree.cgroup(&nginx).burn(3).expect("busy loops in nginx");

    // The default level: pods only, named from the log directories.
    let port = free_port().expect("port");
    let _pods = tree.exporter(port, &[]);
    let body = metrics(port);
    promtool_check(&body);
    no_duplicate_series(&body);
    let pods = cgroups_of(&body, "psi_cpu_waiting_seconds_total");
    assert_eq!(pods.len(), 3, "{pods:?}");
    let web = series(
        &body,
        "psi_cpu_waiting_seconds_total",
        &format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            UID_A.replace('-', "_")
        ),
    )
    .expect("the web pod");
    assert!(
        web.contains(&format!(
            "namespace=\"shop\",pod=\"web\",qos=\"burstable\",pod_uid=\"{UID_A}\"}}"
        )),
        "{web}"
    );
    let job = series(
        &body,
        "psi_cpu_waiting_seconds_total",
        &format!("kubepods/besteffort/pod{UID_C}"),
    )
    .expect("the cgroupfs pod");
    assert!(
        job.contains("namespace=\"batch\",pod=\"job\",qos=\"besteffort\""),
        "{job}"
    );
    assert!(
        !body.contains("container_id="),
        "no container at the pod level"
    );
    assert!(!body.contains("_ratio"), "no averages unless asked");
    assert!(!body.contains("cgroup_monitor_sc"), "no legacy gauges");
    assert_eq!(sample(&body, "psi_node_cgroups"), Some(3.0));

    // Containers: names, bare ids, the sandbox left out, docker outside.
    let port = free_port().expect("port");
    let _containers = tree.exporter(port, &["--level", "container", "--averages"]);
    let body = metrics(port);
    promtool_check(&body);
    no_duplicate_series(&body);
    let containers = cgroups_of(&body, "psi_cpu_waiting_seconds_total");
    assert_eq!(
        containers.len(),
        4,
        "nginx, postgres, worker, docker: {containers:?}"
    );
    assert!(!body.contains(&cid('b')), "the sandbox is left out");
    assert_eq!(sample(&body, "psi_node_sandboxes"), Some(1.0));
    // Each cgroup's labels, after its `cgroup`, exactly.
    for (rel, labels) in [
        (
            nginx.clone(),
            format!(
                "namespace=\"shop\",pod=\"web\",container=\"nginx\",qos=\"burstable\",pod_uid=\"{UID_A}\",container_id=\"{}\"}}",
                cid('a')
            ),
        ),
        (
            format!("kubepods/besteffort/pod{UID_C}/crio-{}", cid('d')),
            format!(
                "namespace=\"batch\",pod=\"job\",container=\"worker\",qos=\"besteffort\",pod_uid=\"{UID_C}\",container_id=\"{}\"}}",
                cid('d')
            ),
        ),
        (
            format!("system.slice/docker-{}.scope", cid('e')),
            format!("container_id=\"{}\"}} 0", cid('e')),
        ),
    ] {
        let line = series(&body, "psi_cpu_waiting_seconds_total", &rel).expect("a series");
        let after = line.split_once("\",").map_or("", |(_, rest)| rest);
        assert!(
            after.starts_with(&labels) || line.ends_with(&labels),
            "{line}"
        );
    }
    assert!(body.contains("psi_cpu_waiting_ratio{cgroup="), "--averages");

    // The stressed container rises; each value is its own file, read just
    // before and after; an empty container cannot stall.
    let postgres = tree.postgres();
    let nginx_dir = tree.root.path().join(&nginx);
    let risen = eventually(Duration::from_secs(20), || {
        let before = some_total_us(&nginx_dir);
        let body = metrics(port);
        let after = some_total_us(&nginx_dir);
        let line = series(&body, "psi_cpu_waiting_seconds_total", &nginx)?;
        let reported = value_us(line)?;
        assert!(
            before <= reported && reported <= after,
            "{before} <= {reported} <= {after}"
        );
        (reported > 0).then_some(body)
    })
    .expect("nginx's cpu waiting rises");
    let idle = series(&risen, "psi_cpu_waiting_seconds_total", &postgres).expect("postgres");
    assert!(idle.ends_with("} 0"), "{idle}");

    // The node, the QoS levels and a filter.
    let port = free_port().expect("port");
    let _qos = tree.exporter(port, &["--level", "node,qos", "--exclude", "besteffort"]);
    let body = metrics(port);
    let got = cgroups_of(&body, "psi_memory_waiting_seconds_total");
    let want: HashSet<String> = [
        "/",
        "/kubepods.slice",
        "/kubepods.slice/kubepods-burstable.slice",
        "/kubepods",
    ]
    .map(str::to_owned)
    .into();
    assert_eq!(got, want);
    // The node's own cgroup is not the root cgroup: its cpu full is real.
    assert!(
        body.contains("psi_cpu_stalled_seconds_total{cgroup=\"/\"}"),
        "{body}"
    );

    // Everything, but only what --include lets through.
    let port = free_port().expect("port");
    let _all = tree.exporter(port, &["--level", "all", "--include", "^/system"]);
    let body = metrics(port);
    let got = cgroups_of(&body, "psi_io_waiting_seconds_total");
    let want: HashSet<String> = [
        "/system.slice".to_owned(),
        format!("/system.slice/docker-{}.scope", cid('e')),
    ]
    .into();
    assert_eq!(got, want);
}

fn some_total_us(dir: &Path) -> u64 {
    psi_core::read::cgroup(dir, psi_core::Resource::Cpu)
        .expect("read the cgroup's cpu.pressure")
        .some
        .map_or(0, |r| r.total)
}

/// A sample's value in seconds, as microseconds.
fn value_us(line: &str) -> Option<u64> {
    let seconds: f64 = line.rsplit_once(' ')?.1.parse().ok()?;
    Some((seconds * 1e6).round() as u64)
}

/// Files the process holds open, sockets left out: a scrape's connection
/// closes a moment after its answer, and is not what is counted here.
fn fds(pid: u32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|l| !l.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn churn_never_duplicates_a_series_and_returns_what_it_took() {
    let Some(root) = cgroup::root() else { return };
    let top = TestCgroup::new(&root, "churn").expect("the tree's root");
    let pods = TestCgroup::named(top.path(), "kubepods").expect("kubepods");
    let port = free_port().expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--mode", "node", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--rescan-interval", "1s", "--level", "pod"])
        .arg("--cgroup-root")
        .arg(top.path());
    let exporter = http::serve(&mut command, port, Duration::from_secs(10));
    let pid = exporter.child.id();
    // Warm: the first scrapes grow the buffers once.
    for _ in 0..3 {
        metrics(port);
    }
    let (fds_before, rss_before) = (fds(pid), rss_kib(pid));

    let uid = |i: usize| format!("{i:08x}-0000-4000-8000-000000000000");
    let mut made: Vec<PathBuf> = Vec::new();
    for round in 0..5 {
        for i in 0..60 {
            let dir = pods.path().join(format!("pod{}", uid(round * 60 + i)));
            std::fs::create_dir(&dir).expect("mkdir a pod cgroup");
            made.push(dir);
        }
        // The next walk finds them.
        std::thread::sleep(Duration::from_millis(1100));
        let body = metrics(port);
        no_duplicate_series(&body);
        if round % 2 == 0 {
            promtool_check(&body);
        }
        assert_eq!(sample(&body, "psi_node_cgroups"), Some(made.len() as f64));
        // Half of them go before the next walk is due: the read finds
        // them gone and leaves them out of this very scrape.
        for dir in made.drain(..30) {
            cgroup::remove_dir_retrying(&dir).expect("rmdir");
        }
        let body = metrics(port);
        no_duplicate_series(&body);
        assert_eq!(
            sample(&body, "psi_node_cgroups"),
            Some(made.len() as f64),
            "round {round}"
        );
    }
    assert!(fds(pid) > fds_before, "the pods' files are kept open");
    for dir in made.drain(..) {
        cgroup::remove_dir_retrying(&dir).expect("rmdir");
    }
    let body = metrics(port);
    assert_eq!(sample(&body, "psi_node_cgroups"), Some(0.0), "{body}");
    assert_eq!(sample(&body, "psi_node_open_files"), Some(0.0), "{body}");
    assert_eq!(fds(pid), fds_before, "every descriptor is given back");
    let rss_after = rss_kib(pid);
    assert!(
        rss_after <= rss_before + 2048,
        "RSS back near its baseline: {rss_before} KiB before, {rss_after} KiB after"
    );
    drop(exporter);
    drop(pods);
}

#[test]
fn past_the_descriptor_budget_every_cgroup_is_still_read() {
    // `ulimit -n 64` over 1,000 pods: nothing can stay open, so each file is
    // opened, read and closed at each scrape, and every pod is in every
    // scrape, by name, even while idle connections take what descriptors
    // they can.
    let Some(root) = cgroup::root() else { return };
    let pods = Pods::make(&root, "nofile", 1000);
    let want = pods.labels();
    assert_eq!(want.len(), 1000);
    let port = free_port().expect("port");
    let _exporter = node_exporter(port, pods.root.path(), Some(64), &[]);
    // More connections than descriptors. Over the cap the oldest idle one
    // makes room for the new: the last ones opened are served.
    let mut idle: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    for round in 0..3 {
        let newest = idle.pop().expect("a connection");
        let r = http::request_on(newest, "GET", "/metrics").expect("a scrape");
        assert_eq!(r.status, 200);
        let body = r.body;
        if round == 0 {
            // The cap is what the descriptors allow, not the 256 asked: idle
            // connections were closed to keep room for the reads, rather
            // than left to fill the table (EMFILE) until they time out.
            let evicted = "psi_exporter_connections_dropped_total{reason=\"evicted\"}";
            assert!(sample(&body, evicted) >= Some(1.0), "{evicted}");
        }
        no_duplicate_series(&body);
        assert_eq!(sample(&body, "psi_node_cgroups"), Some(1000.0));
        assert_eq!(sample(&body, "psi_node_open_files"), Some(0.0));
        for family in [
            "psi_cpu_waiting_seconds_total",
            "psi_memory_waiting_seconds_total",
            "psi_io_waiting_seconds_total",
        ] {
            let got = cgroups_of(&body, family);
            let errors: Vec<&str> = body
                .lines()
                .filter(|l| l.contains("errors_total{"))
                .collect();
            assert!(
                got == want,
                "{family}: {} of {} pods; {errors:?}",
                got.len(),
                want.len()
            );
        }
    }
}
