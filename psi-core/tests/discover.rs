//! pid_flag discovery on a fake `/proc` tree in a temporary directory
//! (`psi_testkit::fakeproc`), plus a few checks on the real `/proc`.
//!
//! A fake `<pid>/root` is a plain directory: `RESOLVE_IN_ROOT` works on any
//! directory descriptor, so the escapes tested here are the real ones.
#![cfg(feature = "std")]

use std::error::Error;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use psi_core::discover::{
    Config, DiscoverError, FLAG_LIMIT, FlagError, cgroup_of, discover, find_pids, flag_of,
    read_flag_at,
};
use psi_testkit::fakeproc::{FakeProc, configmap, mkfifo};

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// Discovery's configuration over a fake tree.
trait FakeConfig {
    /// Its `/proc`, its own flag, [`FakeProc::FLAG_PATH`] and its cgroup2 mount.
    fn config(&self) -> Config;
}

impl FakeConfig for FakeProc {
    fn config(&self) -> Config {
        Config {
            proc_root: self.proc(),
            own_flag: self.own_flag(),
            flag_path: PathBuf::from(FakeProc::FLAG_PATH),
            cgroup_mount: Some(self.cgroups()),
        }
    }
}

/// Runs `f` on a thread and fails if it does not return within 10 s: a
/// FIFO read by mistake blocks forever.
fn within<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|_| "the call blocked for 10 s".into())
}

fn flag_source(e: &DiscoverError) -> Option<&FlagError> {
    match e {
        DiscoverError::Flag { source, .. } => Some(source),
        _ => None,
    }
}

/// Asserts that `err` refused a flag for being a `kind` (fifo, socket, ...).
fn assert_not_regular(err: &DiscoverError, kind: &str) {
    assert!(
        matches!(flag_source(err), Some(FlagError::NotRegular { kind: k }) if *k == kind),
        "{err:?}"
    );
}

// ---------------------------------------------------------------- own flag

#[test]
fn own_flag_file_is_trimmed() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), " \n\tflag-a \r\n")?;
    assert_eq!(read_flag_at(&fake.own_flag())?, "flag-a");
    Ok(())
}

#[test]
fn own_flag_configmap_directory() -> Result {
    let fake = FakeProc::new()?;
    configmap(&fake.own_flag(), "pid_flag", "flag-a\n")?;
    assert_eq!(read_flag_at(&fake.own_flag())?, "flag-a");
    Ok(())
}

#[test]
fn own_flag_directory_with_pid_flag_among_other_files() -> Result {
    let fake = FakeProc::new()?;
    let dir = fake.own_flag();
    fs::create_dir(&dir)?;
    fs::write(dir.join("other"), "nope")?;
    fs::write(dir.join("pid_flag"), "flag-a")?;
    fs::write(dir.join("zzz"), "nope")?;
    assert_eq!(read_flag_at(&dir)?, "flag-a");
    Ok(())
}

#[test]
fn own_flag_directory_with_one_file_of_another_name() -> Result {
    let fake = FakeProc::new()?;
    configmap(&fake.own_flag(), "flag", "flag-a")?;
    fs::create_dir(fake.own_flag().join("subdir"))?;
    assert_eq!(read_flag_at(&fake.own_flag())?, "flag-a");
    Ok(())
}

#[test]
fn own_flag_directory_without_a_flag() -> Result {
    let fake = FakeProc::new()?;
    let dir = fake.own_flag();
    fs::create_dir(&dir)?;
    let err = read_flag_at(&dir).err().ok_or("empty dir accepted")?;
    assert!(
        matches!(flag_source(&err), Some(FlagError::NoFlagFile)),
        "{err:?}"
    );
    // Hidden kubelet entries are not flags.
    fs::create_dir(dir.join("..2024_01_01"))?;
    fs::write(dir.join("..2024_01_01/x"), "flag")?;
    symlink("..2024_01_01", dir.join("..data"))?;
    assert!(matches!(
        flag_source(&read_flag_at(&dir).err().ok_or("accepted")?),
        Some(FlagError::NoFlagFile)
    ));
    Ok(())
}

#[test]
fn own_flag_directory_with_two_files() -> Result {
    let fake = FakeProc::new()?;
    let dir = fake.own_flag();
    fs::create_dir(&dir)?;
    fs::write(dir.join("a"), "flag-a")?;
    fs::write(dir.join("b"), "flag-b")?;
    let err = read_flag_at(&dir).err().ok_or("ambiguous dir accepted")?;
    assert!(
        matches!(
            flag_source(&err),
            Some(FlagError::SeveralFiles { count: 2 })
        ),
        "{err:?}"
    );
    Ok(())
}

#[test]
fn own_flag_refusals() -> Result {
    let fake = FakeProc::new()?;
    let path = fake.own_flag();
    let refused = |content: &[u8]| -> Result<FlagError> {
        fs::write(&path, content)?;
        match read_flag_at(&path) {
            Err(DiscoverError::Flag { path: p, source }) => {
                assert_eq!(p, path);
                Ok(source)
            }
            other => Err(format!("{other:?}").into()),
        }
    };
    assert!(matches!(refused(b"")?, FlagError::Empty));
    assert!(matches!(refused(b" \n\t\n")?, FlagError::Empty));
    assert!(matches!(refused(b"\xff\xfe")?, FlagError::NotUtf8));
    let big = vec![b'x'; FLAG_LIMIT + 1];
    assert!(matches!(
        refused(&big)?,
        FlagError::TooLarge { limit: FLAG_LIMIT }
    ));
    fs::write(&path, &big[..FLAG_LIMIT])?;
    assert_eq!(read_flag_at(&path)?.len(), FLAG_LIMIT);
    Ok(())
}

#[test]
fn own_flag_missing_names_the_path_once() -> Result {
    let fake = FakeProc::new()?;
    let err = read_flag_at(&fake.own_flag())
        .err()
        .ok_or("missing flag accepted")?;
    let text = err.to_string();
    assert_eq!(
        text,
        format!("cannot read the flag at {}", fake.own_flag().display())
    );
    let source = err.source().ok_or("no source")?;
    assert!(!source.to_string().contains("pid_flag_sc"));
    Ok(())
}

#[test]
fn own_flag_fifo_does_not_hang() -> Result {
    let fake = FakeProc::new()?;
    mkfifo(&fake.own_flag())?;
    let path = fake.own_flag();
    let err = within(move || read_flag_at(&path))?
        .err()
        .ok_or("fifo accepted")?;
    assert_not_regular(&err, "fifo");
    Ok(())
}

// ---------------------------------------------------------------- finding pids

#[test]
fn file_flag_matches() -> Result {
    let fake = FakeProc::new()?;
    fake.process(100, "flag-a\n")?;
    fake.process(200, "flag-b\n")?;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [100]);
    assert_eq!(find_pids(&fake.config(), " flag-b\n")?, [200]);
    assert_eq!(find_pids(&fake.config(), "flag-c")?, [0u32; 0]);
    Ok(())
}

#[test]
fn configmap_flag_matches() -> Result {
    let fake = FakeProc::new()?;
    let root = fake.root(100)?;
    configmap(&root.join("etc/pid_flag"), "pid_flag", "flag-a\n")?;
    let root = fake.root(101)?;
    configmap(&root.join("etc/pid_flag"), "some-key", "flag-a\n")?;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [100, 101]);
    assert_eq!(flag_of(&fake.config(), 100)?, "flag-a");
    Ok(())
}

#[test]
fn whitespace_is_trimmed_on_both_sides() -> Result {
    let fake = FakeProc::new()?;
    fake.process(100, "\n\t  flag-a \r\n\n")?;
    fake.process(101, "flag-a")?;
    fake.process(102, "flag-a2")?;
    fake.process(103, "flag -a")?;
    assert_eq!(find_pids(&fake.config(), "  flag-a\n")?, [100, 101]);
    Ok(())
}

#[test]
fn this_process_is_skipped() -> Result {
    let fake = FakeProc::new()?;
    fake.process(FakeProc::SELF_PID, "flag-a")?;
    fake.process(100, "flag-a")?;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [100]);
    Ok(())
}

#[test]
fn no_match_names_the_files() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    fake.process(100, "flag-b")?;
    let err = discover(&fake.config()).err().ok_or("found something")?;
    assert!(
        matches!(&err, DiscoverError::NotFound { denied, .. } if denied.is_empty()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no process under {} has /etc/pid_flag matching the flag in {}",
            fake.proc().display(),
            fake.own_flag().display()
        )
    );
    Ok(())
}

#[test]
fn missing_proc_root_is_an_error() -> Result {
    let fake = FakeProc::new()?;
    let config = Config {
        proc_root: fake.path("nope"),
        ..fake.config()
    };
    let err = find_pids(&config, "flag").err().ok_or("scanned nothing")?;
    assert!(matches!(err, DiscoverError::Scan { .. }), "{err:?}");
    Ok(())
}

// ---------------------------------------------------------------- hostile flags

#[test]
fn fifo_flag_does_not_hang() -> Result {
    let fake = FakeProc::new()?;
    let root = fake.root(100)?;
    mkfifo(&root.join("etc/pid_flag"))?;
    // A FIFO inside a flag directory, under the expected name or alone.
    let root = fake.root(101)?;
    fs::create_dir(root.join("etc/pid_flag"))?;
    mkfifo(&root.join("etc/pid_flag/pid_flag"))?;
    let root = fake.root(102)?;
    fs::create_dir(root.join("etc/pid_flag"))?;
    mkfifo(&root.join("etc/pid_flag/key"))?;
    fake.process(103, "flag-a")?;

    let config = fake.config();
    assert_eq!(within(move || find_pids(&config, "flag-a"))??, [103]);
    let config = fake.config();
    let err = within(move || flag_of(&config, 100))?
        .err()
        .ok_or("fifo accepted")?;
    assert_not_regular(&err, "fifo");
    let config = fake.config();
    let err = within(move || flag_of(&config, 101))?
        .err()
        .ok_or("fifo accepted")?;
    assert_not_regular(&err, "fifo");
    Ok(())
}

#[test]
fn socket_and_device_flags_are_refused() -> Result {
    let fake = FakeProc::new()?;
    let root = fake.root(100)?;
    let _listener = std::os::unix::net::UnixListener::bind(root.join("etc/pid_flag"))?;
    let err = flag_of(&fake.config(), 100)
        .err()
        .ok_or("socket accepted")?;
    assert_not_regular(&err, "socket");
    // A terminal-like device: opening it at all could have side effects.
    // Creating one needs CAP_MKNOD (root); without it that part is missing.
    let root = fake.root(101)?;
    let dev = rustix::fs::mknodat(
        rustix::fs::CWD,
        root.join("etc/pid_flag"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o644),
        rustix::fs::makedev(1, 3),
    );
    if let Err(e) = dev {
        psi_testkit::ci::missing(&format!("mknod of a character device failed ({e})"));
    } else {
        let err = flag_of(&fake.config(), 101)
            .err()
            .ok_or("device accepted")?;
        assert!(
            matches!(
                flag_source(&err),
                Some(FlagError::NotRegular {
                    kind: "character device"
                })
            ),
            "{err:?}"
        );
    }
    Ok(())
}

#[test]
fn huge_flag_file_is_refused_unread() -> Result {
    let fake = FakeProc::new()?;
    let root = fake.root(100)?;
    // 100 MB, sparse: it costs no disk, and reading it would cost time.
    let file = fs::File::create(root.join("etc/pid_flag"))?;
    file.set_len(100 << 20)?;
    // A flag that is the match followed by a huge tail must not match either.
    let root = fake.root(101)?;
    let mut content = b"flag-a\n".to_vec();
    content.resize(FLAG_LIMIT + 1, b' ');
    fs::write(root.join("etc/pid_flag"), content)?;

    let read_before = thread_bytes_read()?;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [0u32; 0]);
    let err = flag_of(&fake.config(), 100)
        .err()
        .ok_or("huge file accepted")?;
    assert!(
        matches!(flag_source(&err), Some(FlagError::TooLarge { .. })),
        "{err:?}"
    );
    let err = flag_of(&fake.config(), 101)
        .err()
        .ok_or("long file accepted")?;
    assert!(
        matches!(flag_source(&err), Some(FlagError::TooLarge { .. })),
        "{err:?}"
    );
    // Refused from the size alone: this thread read nothing near 100 MB
    // (counted by the kernel, so load elsewhere cannot fake it).
    let read = thread_bytes_read()? - read_before;
    assert!(read < 1 << 20, "{read} bytes read");
    Ok(())
}

/// Bytes this thread has read through read(2) and friends (`rchar`).
fn thread_bytes_read() -> std::result::Result<u64, Box<dyn std::error::Error>> {
    let io = fs::read_to_string("/proc/thread-self/io")?;
    let rchar = io
        .lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .ok_or("no rchar in /proc/thread-self/io")?;
    Ok(rchar.trim().parse()?)
}

#[test]
fn absolute_symlink_to_our_flag_does_not_match() -> Result {
    let fake = FakeProc::new()?;
    configmap(&fake.own_flag(), "pid_flag", "flag-a")?;
    // Without RESOLVE_IN_ROOT these links would lead to our own flag, and
    // any container could impersonate the monitored one.
    let ours = fake.own_flag().join("pid_flag");
    let root = fake.root(100)?;
    symlink(&ours, root.join("etc/pid_flag"))?;
    let root = fake.root(101)?;
    fs::create_dir(root.join("etc/pid_flag"))?;
    symlink(&ours, root.join("etc/pid_flag/pid_flag"))?;
    let root = fake.root(102)?;
    let up = "../".repeat(ours.components().count() + 8);
    symlink(
        format!("{up}{}", ours.display().to_string().trim_start_matches('/')),
        root.join("etc/pid_flag"),
    )?;
    let root = fake.root(103)?;
    symlink(fake.own_flag(), root.join("etc/pid_flag"))?;
    // A relative link through `..` that stays inside the root is fine, and so
    // is an absolute one that points inside the container.
    let root = fake.root(104)?;
    fs::create_dir_all(root.join("config"))?;
    fs::write(root.join("config/flag"), "flag-a")?;
    symlink("/config/flag", root.join("etc/pid_flag"))?;
    let root = fake.root(105)?;
    fs::create_dir_all(root.join("config"))?;
    fs::write(root.join("config/flag"), "flag-a")?;
    symlink("../../../../config/flag", root.join("etc/pid_flag"))?;

    // The escapes resolve on this machine: the test really tests something.
    assert_eq!(
        read_flag_at(&fake.proc().join("100/root/etc/pid_flag"))?,
        "flag-a"
    );
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [104, 105]);
    for pid in [100, 101, 102, 103] {
        assert!(flag_of(&fake.config(), pid).is_err(), "pid {pid}");
    }
    Ok(())
}

#[test]
fn unreadable_entries_are_skipped() -> Result {
    let fake = FakeProc::new()?;
    // A dangling symlink as the flag.
    let root = fake.root(100)?;
    symlink("/nowhere", root.join("etc/pid_flag"))?;
    // A directory where the flag file is expected.
    let root = fake.root(101)?;
    fs::create_dir_all(root.join("etc/pid_flag/pid_flag"))?;
    // An empty flag directory, and one with two candidates.
    let root = fake.root(102)?;
    fs::create_dir_all(root.join("etc/pid_flag"))?;
    let root = fake.root(103)?;
    fs::create_dir_all(root.join("etc/pid_flag"))?;
    fs::write(root.join("etc/pid_flag/a"), "flag-a")?;
    fs::write(root.join("etc/pid_flag/b"), "flag-a")?;
    // A root that is a file, and a root that is a dangling symlink.
    fs::create_dir_all(fake.proc().join("104"))?;
    fs::write(fake.proc().join("104/root"), "flag-a")?;
    fs::create_dir_all(fake.proc().join("105"))?;
    symlink("/nowhere", fake.proc().join("105/root"))?;
    // No flag at all.
    fake.root(106)?;
    // Non-pid entries.
    fs::create_dir_all(fake.proc().join("sys/root/etc"))?;
    fs::write(fake.proc().join("sys/root/etc/pid_flag"), "flag-a")?;
    fs::write(fake.proc().join("107"), "a file named like a pid")?;
    fake.process(200, "flag-a")?;

    assert_eq!(find_pids(&fake.config(), "flag-a")?, [200]);
    let err = flag_of(&fake.config(), 101).err().ok_or("dir accepted")?;
    assert_not_regular(&err, "directory");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot read the flag at {}",
            fake.proc().join("101/root/etc/pid_flag").display()
        )
    );
    Ok(())
}

#[test]
fn pids_without_root_are_skipped() -> Result {
    let fake = FakeProc::new()?;
    fs::create_dir_all(fake.proc().join("100"))?;
    fs::create_dir_all(fake.proc().join("101/fd"))?;
    fake.process(102, "flag-a")?;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [102]);
    Ok(())
}

#[test]
fn pids_vanishing_mid_scan() -> Result {
    let fake = FakeProc::new()?;
    fake.process(7, "flag-a")?;
    for pid in 1000..1400 {
        fake.process(pid, if pid % 2 == 0 { "flag-b" } else { "flag-a" })?;
    }
    let proc = fake.proc();
    let reaper = std::thread::spawn(move || -> std::io::Result<()> {
        for pid in (1000..1400).rev() {
            let dir = proc.join(pid.to_string());
            // Remove the flag first, then the root, then the pid: every
            // half-gone state is seen by some scan.
            fs::remove_file(dir.join("root/etc/pid_flag"))?;
            fs::remove_dir_all(dir.join("root"))?;
            fs::remove_dir_all(dir)?;
        }
        Ok(())
    });
    let mut scans = 0;
    while !reaper.is_finished() || scans == 0 {
        let pids = find_pids(&fake.config(), "flag-a")?;
        assert_eq!(pids.first(), Some(&7));
        assert!(pids.iter().all(|p| *p == 7 || p % 2 == 1), "{pids:?}");
        scans += 1;
    }
    reaper.join().map_err(|_| "reaper panicked")??;
    assert_eq!(find_pids(&fake.config(), "flag-a")?, [7]);
    Ok(())
}

// ---------------------------------------------------------------- cgroups

#[test]
fn several_pids_in_one_cgroup_are_one_target() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    for pid in [300, 100, 200] {
        fake.process(pid, "flag-a")?;
        fake.in_cgroup(pid, "/pod/a")?;
    }
    let target = discover(&fake.config())?;
    assert_eq!(target.pids, [100, 200, 300]);
    assert_eq!(target.cgroup, fake.cgroups().join("pod/a"));
    assert_eq!(target.flag(), "flag-a");
    Ok(())
}

#[test]
fn one_cgroup_seen_through_different_paths_is_one_target() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    // Pid 100 is in /pod/a; pid 101 shares its root (another process of the
    // same container) and its cgroup; pid 102 is in /pod/b, a path that
    // leads to the same directory.
    fake.process(100, "flag-a")?;
    fake.in_cgroup(100, "/pod/a")?;
    fs::create_dir_all(fake.proc().join("101"))?;
    symlink(fake.proc().join("100/root"), fake.proc().join("101/root"))?;
    fs::write(fake.proc().join("101/cgroup"), "0::/pod/a\n")?;
    fake.process(102, "flag-a")?;
    fs::write(fake.proc().join("102/cgroup"), "0::/pod/b\n")?;
    symlink(fake.cgroups().join("pod/a"), fake.cgroups().join("pod/b"))?;

    let target = discover(&fake.config())?;
    assert_eq!(target.pids, [100, 101, 102]);
    assert_eq!(target.cgroup, fake.cgroups().join("pod/a"));
    Ok(())
}

#[test]
fn several_cgroups_are_ambiguous() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    for (pid, cgroup) in [(100, "/pod/a"), (101, "/pod/b"), (102, "/pod/a")] {
        fake.process(pid, "flag-a")?;
        fake.in_cgroup(pid, cgroup)?;
    }
    fake.process(103, "flag-a")?;
    fake.in_cgroup(103, "/pod/c")?;
    match discover(&fake.config()) {
        Err(DiscoverError::Ambiguous { cgroups }) => assert_eq!(
            cgroups,
            [
                (fake.cgroups().join("pod/a"), vec![100, 102]),
                (fake.cgroups().join("pod/b"), vec![101]),
                (fake.cgroups().join("pod/c"), vec![103]),
            ]
        ),
        other => return Err(format!("{other:?}").into()),
    }
    Ok(())
}

/// A process's own `/sys/fs/cgroup` is used only on cgroup2, where no
/// symlink can be: its files are read through `/proc/<pid>/root/...`, where
/// an absolute link would resolve from our root. A fake view, however much
/// it looks like a cgroup, is not used. (A real container's view is, as the
/// exporter's tests on the kernel show: `tests/pod.rs`, `tests/hostile.rs`.)
#[test]
fn own_view_not_on_cgroup2_is_not_used() -> Result {
    let fake = FakeProc::new()?;
    fake.in_cgroup(100, "/pod/a")?;
    let view = fake.own_view(100)?;
    fs::write(view.join("cpu.pressure"), "")?;
    assert_eq!(
        cgroup_of(&fake.config(), 100)?,
        fake.cgroups().join("pod/a")
    );
    Ok(())
}

#[test]
fn own_view_symlinked_out_of_the_root_is_not_used() -> Result {
    let fake = FakeProc::new()?;
    fake.in_cgroup(100, "/pod/a")?;
    // A container pointing its /sys/fs/cgroup at a cgroup of its choosing,
    // through an absolute link that would resolve in our root.
    let elsewhere = fake.cgroups().join("pod/victim");
    fs::create_dir_all(&elsewhere)?;
    fs::write(elsewhere.join("cgroup.controllers"), "")?;
    let sys_fs = fake.root(100)?.join("sys/fs");
    fs::create_dir_all(&sys_fs)?;
    symlink(&elsewhere, sys_fs.join("cgroup"))?;
    assert_eq!(
        cgroup_of(&fake.config(), 100)?,
        fake.cgroups().join("pod/a")
    );
    Ok(())
}

#[test]
fn own_view_in_our_cgroup_namespace_is_the_namespace_root() -> Result {
    let fake = FakeProc::new()?;
    fake.in_cgroup(100, "/pod/a")?;
    fake.own_view(100)?;
    // Same cgroup namespace as this process: its /sys/fs/cgroup is the
    // namespace's root, not its cgroup.
    let ns = fake.path("cgroupns");
    fs::write(&ns, "")?;
    for pid in [FakeProc::SELF_PID, 100] {
        let dir = fake.proc().join(pid.to_string()).join("ns");
        fs::create_dir_all(&dir)?;
        symlink(&ns, dir.join("cgroup"))?;
    }
    assert_eq!(
        cgroup_of(&fake.config(), 100)?,
        fake.cgroups().join("pod/a")
    );
    Ok(())
}

#[test]
fn cgroup_mount_from_mountinfo() -> Result {
    let fake = FakeProc::new()?;
    let mount = fake.path("cg root");
    fs::create_dir_all(mount.join("pod/a"))?;
    let escaped = mount.display().to_string().replace(' ', "\\040");
    fs::write(
        fake.proc().join("self/mountinfo"),
        format!(
            "25 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
             31 25 0:26 / /sys/fs/cgroup ro shared:9 - tmpfs tmpfs ro\n\
             41 31 0:38 / {escaped} rw,relatime shared:10 - cgroup2 cgroup2 rw\n\
             42 31 0:39 / /sys/fs/cgroup/cpu rw shared:11 - cgroup cgroup rw,cpu\n"
        ),
    )?;
    assert_eq!(psi_core::cgroup::find_mount(&fake.proc())?.point, mount);
    fake.process(100, "x")?;
    fs::write(fake.proc().join("100/cgroup"), "0::/pod/a\n")?;
    let config = Config {
        cgroup_mount: None,
        ..fake.config()
    };
    assert_eq!(cgroup_of(&config, 100)?, mount.join("pod/a"));
    // The root cgroup is the mount point itself, without a trailing slash.
    fs::write(fake.proc().join("100/cgroup"), "0::/\n")?;
    assert_eq!(cgroup_of(&config, 100)?, mount);
    Ok(())
}

#[test]
fn cgroup_errors_say_what_to_do() -> Result {
    let fake = FakeProc::new()?;
    fake.process(100, "x")?;
    let config = Config {
        cgroup_mount: None,
        ..fake.config()
    };
    let mountinfo = fake.proc().join("self/mountinfo");
    fs::write(&mountinfo, "25 1 8:1 / / rw - ext4 /dev/sda1 rw\n")?;
    fs::write(fake.proc().join("100/cgroup"), "0::/pod/a\n")?;
    let err = cgroup_of(&config, 100).err().ok_or("resolved")?;
    assert_eq!(
        err.to_string(),
        format!("no cgroup v2 mount in {}", mountinfo.display())
    );
    assert!(matches!(
        err,
        DiscoverError::Mount(psi_core::cgroup::MountError::NotMounted { .. })
    ));

    // Outside our cgroup namespace.
    fs::write(fake.proc().join("100/cgroup"), "0::/../sibling\n")?;
    let err = cgroup_of(&fake.config(), 100).err().ok_or("resolved")?;
    assert!(
        matches!(err, DiscoverError::Unreachable { pid: 100, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("/../sibling"), "{err}");
    // cgroup v1 only.
    fs::write(fake.proc().join("100/cgroup"), "1:cpu:/x\n")?;
    let err = cgroup_of(&fake.config(), 100).err().ok_or("resolved")?;
    assert!(
        matches!(err, DiscoverError::NoUnifiedEntry { .. }),
        "{err:?}"
    );
    // A cgroup that no longer exists.
    fs::write(fake.proc().join("100/cgroup"), "0::/gone (deleted)\n")?;
    let err = cgroup_of(&fake.config(), 100).err().ok_or("resolved")?;
    assert!(matches!(err, DiscoverError::CgroupDir { .. }), "{err:?}");
    // A process that does not exist.
    let err = cgroup_of(&fake.config(), 4242).err().ok_or("resolved")?;
    assert!(matches!(err, DiscoverError::Read { .. }), "{err:?}");
    Ok(())
}

#[test]
fn a_matching_pid_without_a_cgroup_is_an_error() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    fake.process(100, "flag-a")?;
    fake.in_cgroup(100, "/pod/a")?;
    // 101 carries the flag but its cgroup cannot be resolved while it still
    // exists: that is reported rather than guessed around. (A pid that
    // exits between the scan and the resolution is left out instead.)
    fake.process(101, "flag-a")?;
    let err = discover(&fake.config()).err().ok_or("resolved")?;
    assert!(matches!(err, DiscoverError::Read { .. }), "{err:?}");
    Ok(())
}

// ---------------------------------------------------------------- liveness

#[test]
fn target_dies_with_its_processes_and_their_flag() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    for pid in [100, 101] {
        fake.process(pid, "flag-a")?;
        fake.in_cgroup(pid, "/pod/a")?;
    }
    let config = fake.config();
    let target = discover(&config)?;
    assert!(target.is_alive(&config));
    fs::remove_dir_all(fake.proc().join("100"))?;
    assert!(target.is_alive(&config), "101 still runs");
    // 101's pid reused by a process without the flag.
    fs::write(fake.proc().join("101/root/etc/pid_flag"), "flag-b")?;
    assert!(!target.is_alive(&config));
    Ok(())
}

#[test]
fn target_dies_when_its_pid_is_reused() -> Result {
    let fake = FakeProc::new()?;
    fs::write(fake.own_flag(), "flag-a")?;
    fake.process(100, "flag-a")?;
    fake.in_cgroup(100, "/pod/a")?;
    let stat = |start: u64| {
        format!("100 (sleep) S 1 100 100 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n")
    };
    fs::write(fake.proc().join("100/stat"), stat(5000))?;
    let config = fake.config();
    let target = discover(&config)?;
    assert!(target.is_alive(&config));
    // Same pid, same flag (the container restarted), but a new process.
    fs::write(fake.proc().join("100/stat"), stat(9000))?;
    assert!(!target.is_alive(&config));
    Ok(())
}

// ---------------------------------------------------------------- the real /proc

#[test]
fn real_cgroup2_mount() -> Result {
    let mount = psi_core::cgroup::find_mount(Path::new("/proc"))?.point;
    assert!(
        mount.join("cgroup.controllers").is_file(),
        "{}",
        mount.display()
    );
    Ok(())
}

#[test]
fn real_cgroup_of_this_process() -> Result {
    let me = std::process::id();
    let dir = cgroup_of(&Config::default(), me)?;
    let procs = fs::read_to_string(dir.join("cgroup.procs"))?;
    assert!(
        procs.lines().any(|l| l == me.to_string()),
        "pid {me} not in {}",
        dir.display()
    );
    Ok(())
}

#[test]
fn real_proc_scan() -> Result {
    // Every process on the machine is examined, none has this flag, and
    // whatever their roots hold, the scan neither fails nor hangs.
    let pids = within(|| find_pids(&Config::default(), "psi-core-test-no-such-flag"))??;
    assert_eq!(pids, [0u32; 0]);
    Ok(())
}
