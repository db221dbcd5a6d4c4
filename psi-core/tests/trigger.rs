//! Kernel PSI triggers on real cgroups under real stress. Needs root and a
//! cgroup v2 mount; in CI these must run.

use std::time::{Duration, Instant};

use psi_core::trigger::{EventKind, Monitor, Trigger, TriggerError};
use psi_testkit::cgroup::{self, TestCgroup};

/// 500 ms of some-stall within 2 s: the kernel accepts 2 s windows from any
/// opener, with or without CAP_SYS_RESOURCE.
fn cpu_trigger() -> Trigger {
    "cpu some 500ms 2s".parse().expect("valid trigger")
}

#[test]
fn fires_under_stress_and_not_while_idle() {
    let Some(root) = cgroup::root() else { return };
    let mut busy = TestCgroup::new(&root, "trig-busy").expect("cgroup");
    let mut monitor = Monitor::new();
    let id = monitor
        .add_cgroup(busy.path(), cpu_trigger())
        .expect("register");

    // No task, no stall: two whole windows pass without an event.
    let idle = monitor.wait(Some(Duration::from_secs(4))).expect("wait");
    assert!(idle.is_empty(), "an empty cgroup never fires: {idle:?}");

    let started = Instant::now();
    busy.burn(4).expect("busy loops");
    let events = monitor.wait(Some(Duration::from_secs(15))).expect("wait");
    let latency = started.elapsed();
    assert!(
        events
            .iter()
            .any(|e| e.id == id && e.kind == EventKind::Fired),
        "four busy loops on two CPUs fire the trigger: {events:?}"
    );
    eprintln!("stall onset to event: {latency:?}");
}

#[test]
fn two_cgroups_report_the_right_trigger() {
    let Some(root) = cgroup::root() else { return };
    let mut busy = TestCgroup::new(&root, "trig-a").expect("cgroup");
    let quiet = TestCgroup::new(&root, "trig-b").expect("cgroup");
    let mut monitor = Monitor::new();
    let busy_id = monitor
        .add_cgroup(busy.path(), cpu_trigger())
        .expect("register");
    let quiet_id = monitor
        .add_cgroup(quiet.path(), cpu_trigger())
        .expect("register");
    busy.burn(4).expect("busy loops");
    let events = monitor.wait(Some(Duration::from_secs(15))).expect("wait");
    assert!(events.iter().any(|e| e.id == busy_id), "{events:?}");
    assert!(
        events.iter().all(|e| e.id != quiet_id),
        "the quiet cgroup never fires: {events:?}"
    );
}

#[test]
fn a_removed_cgroup_is_reported_not_hung_on() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "trig-gone").expect("cgroup");
    let mut monitor = Monitor::new();
    let id = monitor
        .add_cgroup(cg.path(), cpu_trigger())
        .expect("register");
    cg.remove().expect("rmdir");
    let events = monitor.wait(Some(Duration::from_secs(30))).expect("wait");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!((events[0].id, events[0].kind), (id, EventKind::Gone));
    assert!(
        monitor.is_empty(),
        "a gone trigger is removed from the monitor"
    );
}

#[test]
fn refusals_are_explained_in_the_kernels_terms() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "trig-refuse").expect("cgroup");
    let privileged = psi_core::trigger::has_cap_sys_resource();
    // A 1 s window: only a CAP_SYS_RESOURCE opener may use it.
    let odd: Trigger = "cpu some 150ms 1s".parse().expect("valid syntax");
    let result = Monitor::new().add_cgroup(cg.path(), odd);
    if privileged {
        assert!(result.is_ok(), "{result:?}");
    } else {
        let err = result.expect_err("refused without CAP_SYS_RESOURCE");
        assert!(matches!(err, TriggerError::Refused { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("without CAP_SYS_RESOURCE the window must be a multiple of 2s"),
            "{err}"
        );
    }
    // A missing file.
    let err = Monitor::new()
        .add_cgroup(cg.path().join("nope"), cpu_trigger())
        .expect_err("no such cgroup");
    assert!(err.to_string().contains("no such pressure file"), "{err}");
}
