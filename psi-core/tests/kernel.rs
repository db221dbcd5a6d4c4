//! The std layer against the real kernel: real cgroups, real processes, real
//! stalls. Needs root and a cgroup v2 mount; in CI these must run.

use std::time::Duration;

use psi_core::cgroup::Kind;
use psi_core::read::{self, DisabledBy, PressureFile, PressureSet, ReadError};
use psi_core::{Pressure, Resource};
use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::process::eventually;

fn some_total(p: &Pressure) -> u64 {
    p.some.map_or(0, |r| r.total)
}

#[test]
fn stressed_cgroup_rises_while_an_empty_cgroup_stays_flat() {
    let Some(root) = cgroup::root() else { return };
    let mut busy = TestCgroup::new(&root, "busy").expect("create cgroup");
    let idle = TestCgroup::new(&root, "idle").expect("create cgroup");
    let mut busy_cpu = PressureFile::open(busy.path().join("cpu.pressure")).expect("open");
    let mut idle_set = PressureSet::cgroup(idle.path());
    let before = busy_cpu.read().expect("read busy");
    let idle_before = idle_set.read(Resource::Cpu).expect("read idle");

    // Four busy loops on two CPUs: each waits for a CPU about half the time.
    busy.burn(4).expect("start busy loops");
    let risen = eventually(Duration::from_secs(20), || {
        let now = busy_cpu.read().expect("read busy");
        let avg10 = now.some.map_or(0, |r| r.avg10.hundredths());
        (some_total(&now) > some_total(&before) && avg10 > 0).then_some(now)
    });
    let risen = risen.expect("some.total and avg10 rise in a cgroup with four busy loops");
    assert!(some_total(&risen) > some_total(&before));

    // A cgroup with no tasks can never stall, whatever else the machine does.
    let idle_after = idle_set.read(Resource::Cpu).expect("read idle");
    assert_eq!(idle_after, idle_before);
    assert_eq!(some_total(&idle_after), 0);
    for (resource, result) in idle_set.read_all().results() {
        if let Ok(p) = result {
            assert_eq!(some_total(p), 0, "{resource} of an empty cgroup");
        }
    }
}

#[test]
fn kept_open_read_equals_a_fresh_read_of_a_quiet_cgroup() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "quiet").expect("create cgroup");
    let mut kept = PressureFile::open(cg.path().join("memory.pressure")).expect("open");
    let first = read::cgroup(cg.path(), Resource::Memory).expect("fresh read");
    let kept_value = kept.read().expect("kept-open read");
    let last = read::cgroup(cg.path(), Resource::Memory).expect("fresh read");
    assert_eq!(first, last, "an empty cgroup's file does not change");
    assert_eq!(kept_value, first);
}

#[test]
fn cgroup_pressure_0_disables_and_1_restores_through_the_same_file() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "toggle").expect("create cgroup");
    let switch = cg.path().join("cgroup.pressure");
    let mut kept = PressureFile::open(cg.path().join("cpu.pressure")).expect("open");
    kept.read().expect("readable before");

    std::fs::write(&switch, "0").expect("write 0 to cgroup.pressure");
    let fresh = read::cgroup(cg.path(), Resource::Cpu).expect_err("hidden");
    assert!(
        matches!(
            fresh,
            ReadError::Disabled {
                by: DisabledBy::CgroupPressure,
                ..
            }
        ),
        "{fresh:?}"
    );
    let kept_err = kept
        .read()
        .expect_err("kept-open file reads ENODEV, reopen fails");
    assert!(
        matches!(
            kept_err,
            ReadError::Disabled {
                by: DisabledBy::CgroupPressure,
                ..
            }
        ),
        "{kept_err:?}"
    );
    assert_eq!(kept_err.reason(), read::Reason::Disabled);

    std::fs::write(&switch, "1").expect("write 1 to cgroup.pressure");
    let back = kept
        .read()
        .expect("the same PressureFile reopens once PSI is back");
    assert!(back.some.is_some());
}

#[test]
fn removed_cgroup_is_gone_for_a_kept_open_file() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "gone").expect("create cgroup");
    let path = cg.path().to_owned();
    let mut kept = PressureFile::open(path.join("io.pressure")).expect("open");
    kept.read().expect("readable before");
    cg.remove().expect("rmdir");
    let err = kept.read().expect_err("removed");
    assert!(matches!(err, ReadError::Gone { .. }), "{err:?}");
    assert_eq!(err.reason(), read::Reason::Gone);
    let err = read::cgroup(&path, Resource::Io).expect_err("removed");
    assert!(matches!(err, ReadError::Gone { .. }), "{err:?}");
}

#[test]
fn irq_is_unsupported_exactly_when_the_kernel_lacks_it() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "irq").expect("create cgroup");
    let system = read::system(Resource::Irq);
    let in_cgroup = read::cgroup(cg.path(), Resource::Irq);
    match system {
        Ok(p) => {
            assert!(
                p.some.is_none() && p.full.is_some(),
                "irq has a full line only"
            );
            assert!(in_cgroup.is_ok(), "{in_cgroup:?}");
        }
        Err(e) => {
            assert!(matches!(e, ReadError::Unsupported { .. }), "{e:?}");
            let err = in_cgroup.expect_err("no irq.pressure");
            assert!(matches!(err, ReadError::Unsupported { .. }), "{err:?}");
        }
    }
}

#[test]
fn an_unprivileged_reader_gets_permission_denied() {
    let Some(_) = cgroup::root() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("cpu.pressure");
    std::fs::copy("/proc/pressure/cpu", &file).expect("copy");
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    // Credentials are per thread in the kernel: drop to `nobody` in a thread of
    // our own, which is then discarded.
    let err = std::thread::spawn(move || {
        let nobody = rustix::process::Uid::from_raw(65534);
        rustix::thread::set_thread_uid(nobody).expect("setuid in this thread");
        read::path(&file)
    })
    .join()
    .expect("thread")
    .expect_err("not readable by nobody");
    assert!(matches!(err, ReadError::PermissionDenied { .. }), "{err:?}");
    assert_eq!(err.reason(), read::Reason::Permission);
}

#[test]
fn system_files_parse() {
    for resource in [Resource::Cpu, Resource::Memory, Resource::Io] {
        let p = read::system(resource).expect("system pressure is readable");
        assert!(p.some.is_some(), "{resource} has a some line");
    }
}

#[test]
fn the_root_cgroup_is_told_apart_and_its_cpu_full_is_left_out() {
    let Some(root) = cgroup::root() else { return };
    let child = TestCgroup::new(&root, "not-root").expect("create cgroup");
    assert_eq!(Kind::of(&root).expect("the mount"), Kind::Root);
    assert_eq!(Kind::of(child.path()).expect("a cgroup"), Kind::Cgroup);
    // Why the root is special: the kernel defines its cpu `full` as zero.
    let raw = read::path(&root.join("cpu.pressure")).expect("read").full;
    assert_eq!(raw.map(|r| r.total), Some(0));
    // So every reader leaves it out, where a child's is kept.
    assert_eq!(read::cgroup(&root, Resource::Cpu).expect("read").full, None);
    let mut set = PressureSet::cgroup(&root);
    assert_eq!(set.kind(), Kind::Root);
    assert_eq!(set.read(Resource::Cpu).expect("read").full, None);
    let mut child_set = PressureSet::cgroup(child.path());
    assert!(child_set.read(Resource::Cpu).expect("read").full.is_some());
    // A copy of the root's files is not the root: trusted as it is.
    let copy = tempfile::tempdir().expect("tempdir");
    std::fs::copy(root.join("cpu.pressure"), copy.path().join("cpu.pressure")).expect("copy");
    assert!(
        read::cgroup(copy.path(), Resource::Cpu)
            .expect("read")
            .full
            .is_some()
    );
}
