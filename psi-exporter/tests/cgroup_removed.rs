//! The monitored cgroup removed under a running exporter (issue 14).
//!
//! A pod's container may be moved to another cgroup and its old cgroup
//! removed, as a runtime does when it re-parents a container. The exporter
//! must leave the removed cgroup at the scrape that finds it gone and follow
//! the process, not keep the dead target until irq's one-minute "unsupported"
//! cache expires. Needs root and cgroup v2; in CI these tests must run.

mod support;

use std::time::Duration;

use psi_testkit::cgroup::{self, TestCgroup, remove_dir_retrying};
use psi_testkit::http::{free_port, sample};
use psi_testkit::process::eventually;
use support::{
    Pod, Scraper, all_ok, is_complete, metrics, promtool_check_all, start_exporter_on,
    wait_for_target,
};

/// Well under the 60 s of the unsupported-file cache that kept the dead
/// target before, and above a rediscovery interval (200 ms here) plus a few
/// scrapes on a loaded machine.
const FOLLOW_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn a_removed_cgroup_is_left_for_the_one_the_process_moved_to() {
    let Some(root) = cgroup::root() else { return };
    let pod = Pod::start(&root, "moved");
    let b = TestCgroup::new(&root, "moved-b").expect("cgroup B");
    let port = free_port().expect("port");
    let mut exporter = pod.exporter(port, &[]);
    let Pod {
        container, app: a, ..
    } = pod;
    let pid = container.child.id();
    let body = wait_for_target(port, pid);
    assert!(
        body.contains(&format!("path=\"/proc/{pid}/root/sys/fs/cgroup\"")),
        "the target is first A, through the container's own view: {body}"
    );

    b.add_pid(pid).expect("move the monitored process to B");
    let a_path = a.path().to_owned();
    a.remove().expect("rmdir A once it is empty");
    assert!(!a_path.exists());

    let want_path = format!("path=\"{}\"", b.path().display());
    let want_pids = format!("pids=\"{pid}\"");
    let followed = eventually(FOLLOW_LIMIT, || {
        let body = metrics(port);
        let up = sample(&body, "psi_target_up") == Some(1.0);
        (up && body.contains(&want_path) && body.contains(&want_pids)).then_some(body)
    });
    assert!(
        followed.is_some(),
        "within {FOLLOW_LIMIT:?} of the rmdir, pid {pid} is followed into {}:\n{}",
        b.path().display(),
        metrics(port)
    );
    assert!(
        matches!(exporter.child.try_wait(), Ok(None)),
        "the exporter followed the move without restarting"
    );
}

/// `--cgroup` names a path, not a directory: removed, its files are reopened
/// (every resource then says `gone`, none keeps a cached `unsupported`), and a
/// cgroup re-created at the path is read again.
#[test]
fn a_fixed_cgroup_removed_and_re_created_is_followed() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "fixed").expect("cgroup");
    let path = cg.path().to_owned();
    let port = free_port().expect("port");
    let _exporter = start_exporter_on(port, &path);
    let body = metrics(port);
    assert_eq!(sample(&body, "psi_target_up"), Some(1.0), "{body}");

    remove_dir_retrying(&path).expect("rmdir the cgroup");
    let irq_gone = "psi_read_errors_total{resource=\"irq\",reason=\"gone\"";
    let gone = eventually(FOLLOW_LIMIT, || {
        let body = metrics(port);
        (sample(&body, "psi_target_up") == Some(0.0) && sample(&body, irq_gone).is_some())
            .then_some(body)
    });
    assert!(
        gone.is_some(),
        "a removed cgroup is down and every resource reads gone, irq included:\n{}",
        metrics(port)
    );

    std::fs::create_dir(&path).expect("re-create the cgroup at the same path");
    let back = eventually(FOLLOW_LIMIT, || {
        let body = metrics(port);
        (sample(&body, "psi_target_up") == Some(1.0)).then_some(body)
    });
    assert!(
        back.is_some(),
        "the re-created cgroup is read again:\n{}",
        metrics(port)
    );
    let want = format!("path=\"{}\"", path.display());
    assert!(back.is_some_and(|b| b.contains(&want)));
}

/// The monitored container moved back and forth between two cgroups, the
/// one it left removed and made again each time, while scrapes run: every
/// scrape is whole, each move is followed, and the gone reads are counted.
#[test]
fn moves_and_removals_in_a_loop_under_scrapes() {
    let Some(root) = cgroup::root() else { return };
    let pod = Pod::start(&root, "moves");
    let b = TestCgroup::new(&root, "moves-b").expect("cgroup B");
    let port = free_port().expect("port");
    let mut exporter = pod.exporter(port, &["--rediscover-interval", "10ms"]);
    let pid = pod.pid();
    wait_for_target(port, pid);
    let scraper = Scraper::start(port, "/metrics");
    let (a_path, b_path) = (pod.app.path().to_owned(), b.path().to_owned());
    for round in 0..10 {
        let (from, to) = if round % 2 == 0 {
            (&a_path, &b_path)
        } else {
            (&b_path, &a_path)
        };
        std::fs::write(to.join("cgroup.procs"), pid.to_string()).expect("move the process");
        remove_dir_retrying(from).expect("rmdir the cgroup it left");
        let want = format!("path=\"{}\"", to.display());
        let followed = eventually(FOLLOW_LIMIT, || metrics(port).contains(&want).then_some(()));
        assert!(
            followed.is_some(),
            "round {round}: followed into {}",
            to.display()
        );
        std::fs::create_dir(from).expect("make it again");
    }
    let responses = scraper.stop();
    let bodies = all_ok(&responses);
    assert!(bodies.iter().all(|b| is_complete(b)), "every scrape whole");
    promtool_check_all(bodies.iter().copied());
    let last = metrics(port);
    let gone = sample(
        &last,
        "psi_read_errors_total{resource=\"cpu\",reason=\"gone\"}",
    );
    assert!(gone.is_some_and(|n| n > 0.0), "{last}");
    assert!(matches!(exporter.child.try_wait(), Ok(None)));
}
