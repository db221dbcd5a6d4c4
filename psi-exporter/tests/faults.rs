//! Faults (issue 13): the machine breaking under a running exporter, each on
//! the real kernel. Each fault has a defined behaviour (psi-exporter's
//! README, "Faults"), a counter or a metric that shows it, no panic and no
//! hang. Needs root and cgroup v2, and `strace` for one test; in CI these
//! tests must run.

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use psi_testkit::cgroup::{self, TestCgroup, remove_dir_retrying};
use psi_testkit::ci;
use psi_testkit::fakeproc::FakeProc;
use psi_testkit::http::{self, free_port, sample};
use psi_testkit::ns;
use psi_testkit::process::{Process, eventually};
use support::kubelet::{Pods, node_exporter};
use support::{
    Pod, Scraper, all_ok, cgroups_of, is_complete, metrics, no_duplicate_series,
    promtool_check_all, psi_pids, start_exporter_on, wait_for_pid,
};

/// A generous bound on anything the exporter should do at once: a loaded
/// 2-CPU machine is slow, a hang is forever.
const LIMIT: Duration = Duration::from_secs(10);

/// The pressure families of one resource that must be absent, never zero,
/// when it cannot be read.
const CPU_FAMILIES: [&str; 3] = [
    "psi_cpu_waiting_seconds_total",
    "psi_cpu_waiting_ratio",
    "cgroup_monitor_sc_monitored_cpu_psi",
];

fn errors(body: &str, resource: &str, reason: &str) -> f64 {
    let series = format!("psi_read_errors_total{{resource=\"{resource}\",reason=\"{reason}\"}}");
    sample(body, &series).unwrap_or(0.0)
}

fn has_series(body: &str, family: &str) -> bool {
    body.lines()
        .any(|l| l.starts_with(family) && l[family.len()..].starts_with([' ', '{']))
}

fn alive(process: &mut Process) -> bool {
    matches!(process.child.try_wait(), Ok(None))
}

// ------------------------------------------------ the cgroup removed mid-scrape

#[test]
fn the_monitored_cgroup_removed_and_re_created_mid_scrape() {
    let Some(root) = cgroup::root() else { return };
    let cg = TestCgroup::new(&root, "mid-scrape").expect("cgroup");
    let path = cg.path().to_owned();
    let port = free_port().expect("port");
    let mut exporter = start_exporter_on(port, &path);
    let scraper = Scraper::start(port, "/metrics");
    for round in 0..40 {
        remove_dir_retrying(&path).expect("rmdir the cgroup");
        // Every other round lets a whole scrape see each state (the second
        // response to come began after the change); the others race the
        // rmdir and the mkdir with the scrapes in flight.
        if round % 2 == 0 {
            scraper.wait_for(2);
        }
        std::fs::create_dir(&path).expect("re-create the cgroup");
        if round % 2 == 0 {
            scraper.wait_for(2);
        }
    }
    scraper.wait_for(1);
    let responses = scraper.stop();
    let bodies = all_ok(&responses);
    let mut last_gone = 0.0;
    for body in &bodies {
        assert!(is_complete(body), "a whole body:\n{body}");
        no_duplicate_series(body);
        let gone = errors(body, "cpu", "gone");
        assert!(gone >= last_gone, "a counter never falls");
        last_gone = gone;
        if sample(body, "psi_target_up") == Some(0.0) {
            for family in CPU_FAMILIES {
                assert!(!has_series(body, family), "no zero for {family}:\n{body}");
            }
        }
    }
    let shapes = promtool_check_all(bodies.iter().copied());
    assert!(last_gone > 0.0, "the gone counter rose");
    assert!(
        bodies
            .iter()
            .any(|b| sample(b, "psi_target_up") == Some(0.0)),
        "some scrape saw the cgroup gone ({} scrapes, {shapes} shapes)",
        bodies.len()
    );
    let back = eventually(LIMIT, || {
        let body = metrics(port);
        (sample(&body, "psi_target_up") == Some(1.0)).then_some(body)
    });
    assert!(back.is_some_and(|b| has_series(&b, "psi_cpu_waiting_seconds_total")));
    assert!(alive(&mut exporter), "no panic, no exit");
}

#[test]
fn node_cgroups_removed_and_re_created_mid_scrape() {
    let Some(root) = cgroup::root() else { return };
    let pods = Pods::make(&root, "node-mid-scrape", 20);
    let want = pods.labels();
    let port = free_port().expect("port");
    // A walk at every scrape, so that walks race the removals too.
    let mut exporter = node_exporter(port, pods.root.path(), None, &["--rescan-interval", "0s"]);
    let scraper = Scraper::start(port, "/metrics");
    let churned: Vec<PathBuf> = pods.pods[..10]
        .iter()
        .map(|p| p.path().to_owned())
        .collect();
    for round in 0..30 {
        for dir in &churned {
            remove_dir_retrying(dir).expect("rmdir a pod");
        }
        if round % 2 == 0 {
            scraper.wait_for(2);
        }
        for dir in &churned {
            std::fs::create_dir(dir).expect("re-create a pod");
        }
        if round % 2 == 0 {
            scraper.wait_for(2);
        }
    }
    scraper.wait_for(1);
    let responses = scraper.stop();
    let bodies = all_ok(&responses);
    for body in &bodies {
        assert!(is_complete(body), "a whole body:\n{body}");
        no_duplicate_series(body);
        let n = sample(body, "psi_node_cgroups").expect("psi_node_cgroups");
        assert!((10.0..=20.0).contains(&n), "{n} cgroups");
        let seen = cgroups_of(body, "psi_cpu_waiting_seconds_total");
        assert!(seen.is_subset(&want), "only the pods: {seen:?}");
    }
    promtool_check_all(bodies.iter().copied());
    assert!(
        bodies
            .iter()
            .any(|b| sample(b, "psi_node_cgroups") == Some(10.0)),
        "some scrape saw the removed pods gone"
    );
    let body = metrics(port);
    assert_eq!(cgroups_of(&body, "psi_cpu_waiting_seconds_total"), want);
    assert!(alive(&mut exporter), "no panic, no exit");
}

// ------------------------------------------------ cgroup.pressure 0 and back

fn set_pressure(dir: &Path, on: bool) {
    std::fs::write(dir.join("cgroup.pressure"), if on { "1" } else { "0" })
        .expect("write cgroup.pressure");
}

#[test]
fn cgroup_pressure_switched_off_and_on_in_both_modes() {
    let Some(root) = cgroup::root() else { return };
    let pods = Pods::make(&root, "pressure-off", 1);
    let dir = pods.pods[0].path().to_owned();
    let label = pods.labels().into_iter().next().expect("the pod's label");
    let (sidecar_port, node_port) = (free_port().expect("port"), free_port().expect("port"));
    let mut sidecar = start_exporter_on(sidecar_port, &dir);
    let mut node = node_exporter(
        node_port,
        pods.root.path(),
        None,
        &["--rescan-interval", "0s", "--averages"],
    );
    let node_has = |body: &str, family: &str| cgroups_of(body, family).contains(&label);
    let on = |sidecar: &str, node: &str| {
        assert_eq!(sample(sidecar, "psi_target_up"), Some(1.0), "{sidecar}");
        for r in ["cpu", "memory", "io"] {
            let available = format!("psi_pressure_available{{resource=\"{r}\"}}");
            assert_eq!(sample(sidecar, &available), Some(1.0), "{sidecar}");
            let family = format!("psi_{r}_waiting_seconds_total");
            assert!(has_series(sidecar, &family), "{family}:\n{sidecar}");
            assert!(node_has(node, &family), "{family}:\n{node}");
        }
    };
    // Read once: the files are open from here on, in both.
    let (s, n) = (metrics(sidecar_port), metrics(node_port));
    on(&s, &n);
    let open = sample(&n, "psi_node_open_files").expect("psi_node_open_files");
    assert!(open >= 3.0, "cpu, memory and io kept open: {n}");

    for round in 0..2 {
        set_pressure(&dir, false);
        let (s, n) = (metrics(sidecar_port), metrics(node_port));
        for r in ["cpu", "memory", "io"] {
            let available = format!("psi_pressure_available{{resource=\"{r}\"}}");
            assert_eq!(sample(&s, &available), Some(0.0), "{s}");
            assert!(errors(&s, r, "disabled") >= f64::from(round + 1), "{s}");
            assert!(errors(&n, r, "disabled") >= f64::from(round + 1), "{n}");
            for family in [
                format!("psi_{r}_waiting_seconds_total"),
                format!("psi_{r}_waiting_ratio"),
            ] {
                assert!(!has_series(&s, &family), "no zero for {family}:\n{s}");
                assert!(!node_has(&n, &family), "no zero for {family}:\n{n}");
            }
        }
        assert!(!has_series(&s, "cgroup_monitor_sc_monitored_cpu_psi"));
        assert_eq!(sample(&s, "psi_target_up"), Some(0.0), "{s}");
        assert_eq!(
            sample(&n, "psi_node_cgroups"),
            Some(1.0),
            "still exported: {n}"
        );
        let psi = http::get(sidecar_port, "/psi").expect("/psi").body;
        let json: serde_json::Value = serde_json::from_str(&psi).expect("JSON");
        assert_eq!(json["errors"]["cpu"]["reason"], "disabled", "{psi}");
        assert!(json["pressure"]["cpu"].is_null(), "{psi}");
        let message = json["errors"]["cpu"]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.contains("cgroup.pressure is 0"), "{message}");

        set_pressure(&dir, true);
        let (s, n) = (metrics(sidecar_port), metrics(node_port));
        on(&s, &n);
    }
    // Off and on between two scrapes: the kept-open files read ENODEV and
    // are opened again, at once.
    let (s, n) = (metrics(sidecar_port), metrics(node_port));
    on(&s, &n);
    set_pressure(&dir, false);
    set_pressure(&dir, true);
    let (s, n) = (metrics(sidecar_port), metrics(node_port));
    on(&s, &n);
    assert_eq!(
        sample(&n, "psi_node_open_files"),
        Some(open),
        "reopened: {n}"
    );
    assert!(alive(&mut sidecar) && alive(&mut node));
}

#[test]
fn cgroup_pressure_switched_off_keeps_the_discovered_target() {
    // Hidden files are not a removed cgroup: the container stays the target,
    // read through its own /sys/fs/cgroup, and is not searched for again.
    let Some(root) = cgroup::root() else { return };
    let pod = Pod::start(&root, "pressure-off-pod");
    let port = free_port().expect("port");
    let _exporter = pod.exporter(port, &[]);
    support::wait_for_target(port, pod.pid());
    set_pressure(pod.app.path(), false);
    let body = metrics(port);
    assert!(errors(&body, "cpu", "disabled") >= 1.0, "{body}");
    assert!(
        !has_series(&body, "psi_cpu_waiting_seconds_total"),
        "{body}"
    );
    assert!(body.contains(&format!("pids=\"{}\"", pod.pid())), "{body}");
    set_pressure(pod.app.path(), true);
    let body = metrics(port);
    assert!(has_series(&body, "psi_cpu_waiting_seconds_total"), "{body}");
    assert_eq!(
        sample(&body, "psi_target_discoveries_total"),
        Some(1.0),
        "{body}"
    );
}

// ------------------------------------------------ a container restarted 100 times

#[test]
fn a_container_killed_and_restarted_100_times_is_followed_each_time() {
    let Some(root) = cgroup::root() else { return };
    // Not taken apart: its container, first of its fields, must stop
    // before its cgroups go, even when an assertion fails.
    let mut pod = Pod::start(&root, "restart");
    let port = free_port().expect("port");
    let mut exporter = pod.exporter(port, &["--rediscover-interval", "10ms"]);
    let scraper = Scraper::start(port, "/metrics");
    const RESTARTS: u32 = 100;
    for restart in 0..=RESTARTS {
        let pid = pod.pid();
        assert!(
            wait_for_pid(port, pid, LIMIT),
            "restart {restart}: the exporter follows pid {pid}, not {:?}",
            psi_pids(port)
        );
        if restart == RESTARTS {
            break;
        }
        pod.restart();
    }
    let responses = scraper.stop();
    for body in all_ok(&responses) {
        assert!(is_complete(body), "{body}");
    }
    let body = metrics(port);
    assert_eq!(
        sample(&body, "psi_target_discoveries_total"),
        Some(f64::from(RESTARTS + 1)),
        "each process found once: {body}"
    );
    assert!(alive(&mut exporter));
}

// ------------------------------------------------ /proc entries vanishing

/// Processes started and left to exit as fast as `threads` threads can,
/// each leaving its last child a zombie (listed in `/proc`, its root gone)
/// until it starts the next.
struct Churn {
    stop: Arc<AtomicBool>,
    started: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Churn {
    fn start(threads: usize) -> Churn {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Arc::new(AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (stop, started) = (stop.clone(), started.clone());
                std::thread::spawn(move || {
                    let mut last: Option<std::process::Child> = None;
                    while !stop.load(Ordering::Relaxed) {
                        let child = Command::new("true")
                            .stdin(Stdio::null())
                            .stdout(Stdio::null())
                            .spawn();
                        if let Some(mut previous) = last.take() {
                            let _ = previous.wait();
                        }
                        last = child.ok();
                        started.fetch_add(1, Ordering::Relaxed);
                    }
                    if let Some(mut previous) = last {
                        let _ = previous.wait();
                    }
                })
            })
            .collect();
        Churn {
            stop,
            started,
            threads,
        }
    }

    /// How many processes have come and gone so far.
    fn started(&self) -> usize {
        self.started.load(Ordering::Relaxed)
    }

    /// Stops, and says how many processes came and went.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        self.started.load(Ordering::Relaxed)
    }
}

#[test]
fn discovery_while_processes_come_and_go() {
    let Some(root) = cgroup::root() else { return };
    let mut pod = Pod::start(&root, "proc-churn");
    let config = psi_core::discover::Config {
        own_flag: pod.flag_dir.path().join("pid_flag_sc"),
        ..psi_core::discover::Config::default()
    };
    let churn = Churn::start(2);
    // The library: every search finds the container, none fails.
    let before = churn.started();
    for i in 0..150 {
        let found = psi_core::discover::discover(&config)
            .unwrap_or_else(|e| panic!("search {i} under churn: {}", psi_core::report::Chain(&e)));
        assert_eq!(found.pids, [pod.pid()], "search {i}");
    }
    let during = churn.started() - before;
    assert!(
        during >= 50,
        "processes came and went during the searches: {during}"
    );
    // The exporter, searching whenever its container restarts.
    let port = free_port().expect("port");
    let mut exporter = pod.exporter(port, &["--rediscover-interval", "10ms"]);
    let scraper = Scraper::start(port, "/psi");
    for restart in 0..10 {
        let pid = pod.pid();
        assert!(
            wait_for_pid(port, pid, LIMIT),
            "restart {restart}: pid {pid}"
        );
        if restart == 0 {
            // Killed and not yet reaped, it is a zombie: listed in /proc,
            // its root gone. It carries no flag any more, and is not the
            // target.
            pod.container.signal("KILL").expect("kill the container");
            let gone = eventually(LIMIT, || psi_pids(port).is_empty().then_some(()));
            assert!(gone.is_some(), "the zombie {pid} is not followed");
            let e = psi_core::discover::discover(&config).expect_err("only a zombie");
            assert!(
                matches!(e, psi_core::discover::DiscoverError::NotFound { .. }),
                "{e:?}"
            );
        }
        pod.restart();
    }
    let started = churn.stop();
    let responses = scraper.stop();
    for body in all_ok(&responses) {
        let json: serde_json::Value = serde_json::from_str(body).expect("JSON");
        // Between two containers, the reason is that none carries the
        // flag; a failed listing of /proc would say otherwise.
        if let Some(error) = json["error"].as_str() {
            assert!(error.starts_with("no process under /proc has"), "{error}");
        }
    }
    assert!(started >= 100, "processes came and went: {started}");
    assert!(alive(&mut exporter));
}

#[test]
fn a_pid_gone_between_listing_and_reading_is_skipped() {
    // The kernel cannot be made to reap a process between discovery's
    // listing of /proc and its reading of that pid: a fake /proc shows each
    // state that moment leaves, and a thread makes and removes pids while
    // discovery runs.
    let fake = FakeProc::new().expect("fake /proc");
    std::fs::write(fake.own_flag(), "flag-a\n").expect("own flag");
    fake.process(100, "flag-a").expect("the container");
    fake.in_cgroup(100, "/kubepods/pod-a").expect("its cgroup");
    // Listed, then gone: nothing below the name.
    fake.vanished(101).expect("a vanished pid");
    // Listed, its files gone but the directory still there.
    std::fs::create_dir(fake.proc().join("102")).expect("an emptied pid");
    // Its root there, its flag gone.
    fake.root(103).expect("a root without a flag");
    let config = psi_core::discover::Config {
        proc_root: fake.proc(),
        own_flag: fake.own_flag(),
        flag_path: PathBuf::from(FakeProc::FLAG_PATH),
        cgroup_mount: Some(fake.cgroups()),
    };
    let found = psi_core::discover::discover(&config).expect("found despite the vanished");
    assert_eq!(found.pids, [100]);
    assert_eq!(found.cgroup, fake.cgroups().join("kubepods/pod-a"));

    let stop = Arc::new(AtomicBool::new(false));
    let proc_dir = fake.proc();
    let flag = stop.clone();
    let racer = std::thread::spawn(move || {
        let mut made = 0usize;
        while !flag.load(Ordering::Relaxed) {
            for pid in 200..260 {
                let dir = proc_dir.join(pid.to_string());
                let _ = std::fs::create_dir_all(dir.join("root/etc"));
                let _ = std::fs::write(dir.join("root/etc/pid_flag"), "flag-b");
                let _ = std::fs::write(dir.join("cgroup"), "0::/other\n");
                let _ = std::fs::remove_dir_all(&dir);
                made += 1;
            }
        }
        made
    });
    for i in 0..300 {
        let found = psi_core::discover::discover(&config)
            .unwrap_or_else(|e| panic!("search {i}: {}", psi_core::report::Chain(&e)));
        assert_eq!(found.pids, [100], "search {i}");
    }
    stop.store(true, Ordering::Relaxed);
    let made = racer.join().expect("the racing thread");
    assert!(made > 0);
}

// ------------------------------------------------ no cgroup v2 mount at start

/// The exporter run with `args` where no cgroup v2 file system is mounted.
fn without_cgroup2(args: &[&str]) -> Command {
    let mountinfo = std::fs::read("/proc/self/mountinfo").expect("mountinfo");
    let points: Vec<_> = psi_core::cgroup::parse_mountinfo(&mountinfo)
        .into_iter()
        .map(|m| m.point)
        .collect();
    let mut command = ns::private_mounts(
        &ns::without_cgroup2(&points),
        Path::new(env!("CARGO_BIN_EXE_psi-exporter")),
    );
    command.args(args).stdout(Stdio::null());
    command
}

/// Runs a command that must fail: its exit code and stderr.
fn fails(mut command: Command) -> (Option<i32>, String) {
    let child = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    exit_and_stderr(Process { child })
}

/// Stops a server started with a piped stderr: its exit code and stderr.
fn stop(server: Process) -> (Option<i32>, String) {
    server.signal("TERM").expect("SIGTERM");
    exit_and_stderr(server)
}

/// Waits (a bounded time: never a hang) for the process to exit, then
/// reads its piped stderr.
fn exit_and_stderr(mut process: Process) -> (Option<i32>, String) {
    let status = process
        .wait_timeout(LIMIT)
        .expect("wait")
        .expect("it exits, without hanging");
    let mut stderr = String::new();
    if let Some(mut pipe) = process.child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (status.code(), stderr)
}

#[test]
fn no_cgroup_v2_mount_at_start() {
    let Some(root) = cgroup::root() else { return };
    if ci::tool("unshare", "util-linux").is_none() {
        return;
    }
    let cg = TestCgroup::new(&root, "no-mount").expect("cgroup");
    let listen = |port: u16| format!("127.0.0.1:{port}");

    // Node mode has nothing to walk: exit 1, saying what to pass.
    let (code, stderr) = fails(without_cgroup2(&["--mode", "node", "--listen", &listen(1)]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no cgroup v2 mount"), "{stderr}");
    assert!(stderr.contains("--cgroup-root"), "{stderr}");
    assert!(
        !stderr.contains("absolute --cgroup"),
        "no advice about a flag node mode refuses: {stderr}"
    );

    // A relative --cgroup has nothing to be relative to.
    let (code, stderr) = fails(without_cgroup2(&[
        "--cgroup",
        "a/b",
        "--listen",
        &listen(1),
    ]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--cgroup a/b is relative"), "{stderr}");
    assert!(stderr.contains("no cgroup v2 mount"), "{stderr}");

    // An absolute one names a directory that is not there any more.
    let dir = cg.path().to_string_lossy().into_owned();
    let (code, stderr) = fails(without_cgroup2(&["--cgroup", &dir, "--listen", &listen(1)]));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains(&dir), "{stderr}");
    assert!(stderr.contains("no cgroup v2 mount"), "{stderr}");

    // The system needs no cgroup: --system, and no pid_flag, serve it.
    for (args, log) in [
        (&["--system"][..], "exporting the system-wide pressure"),
        (
            &["--pid-flag-file", "/nonexistent/pid_flag_sc"][..],
            "no pid_flag file",
        ),
    ] {
        let port = free_port().expect("port");
        let mut command = without_cgroup2(args);
        command
            .args(["--listen", &listen(port)])
            .stderr(Stdio::piped());
        let server = http::serve(&mut command, port, LIMIT);
        let body = metrics(port);
        assert_eq!(sample(&body, "psi_target_up"), Some(1.0), "{body}");
        assert!(body.contains("mode=\"system\""), "{body}");
        let (code, stderr) = stop(server);
        assert_eq!(code, Some(0), "{stderr}");
        assert!(stderr.contains(log), "{stderr}");
    }

    // Discovery reads a container through its own /sys/fs/cgroup, which
    // our mounts do not hide; the start says the fallback is gone.
    let pod = Pod::start(&root, "no-mount-pod");
    let port = free_port().expect("port");
    let flag = pod.flag_dir.path().join("pid_flag_sc");
    let mut command =
        without_cgroup2(&["--rediscover-interval", "10ms", "--listen", &listen(port)]);
    command
        .arg("--pid-flag-file")
        .arg(&flag)
        .stderr(Stdio::piped());
    let server = http::serve(&mut command, port, LIMIT);
    assert!(wait_for_pid(port, pod.pid(), LIMIT), "{:?}", psi_pids(port));
    let body = metrics(port);
    assert_eq!(sample(&body, "psi_target_up"), Some(1.0), "{body}");
    let view = format!("path=\"/proc/{}/root/sys/fs/cgroup\"", pod.pid());
    assert!(body.contains(&view), "{body}");
    let (code, stderr) = stop(server);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("no cgroup v2 mount"), "{stderr}");
}

// ------------------------------------------------ a read-only root, a full /tmp

/// What a traced system call may not do: open for writing, create, remove
/// or rename anything, or write to anything but a socket, a pipe, an
/// eventfd or /dev/null.
fn writes(trace: &str) -> Vec<&str> {
    trace
        .lines()
        .filter(|line| {
            // `-f` prefixes each line with a pid.
            let call = match line.split_once(' ') {
                Some((pid, rest)) if pid.bytes().all(|b| b.is_ascii_digit()) => rest,
                _ => line,
            }
            .trim_start();
            let name = call.split(['(', ' ']).next().unwrap_or_default();
            match name {
                "open" | "openat" | "openat2" => ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
                    .iter()
                    .any(|f| call.contains(f)),
                "write" | "pwrite64" | "writev" | "pwritev" | "pwritev2" => {
                    let fd = call
                        .split_once('<')
                        .and_then(|(_, rest)| rest.split_once('>'))
                        .map_or("", |(fd, _)| fd);
                    fd.starts_with('/') && !fd.starts_with("/dev/null")
                }
                // Exits, signals and the ends of calls begun on another line.
                "" | "+++" | "---" | "<..." => false,
                _ => true,
            }
        })
        .collect()
}

/// Runs the exporter with `args` under strace where / is read-only and
/// /tmp a full tmpfs; `check` scrapes it. Returns the trace.
fn traced_on_a_read_only_machine(
    strace: &Path,
    args: &[&str],
    port: u16,
    check: impl FnOnce(),
) -> String {
    let setup = [
        "mount -o remount,bind,ro /".to_owned(),
        "mount -t tmpfs -o size=16k,nr_inodes=2 psi-full /tmp".to_owned(),
        "{ dd if=/dev/zero of=/tmp/fill bs=4k 2>/dev/null; true; }".to_owned(),
        // The machine is as described: nothing can be written.
        "! touch /tmp/more 2>/dev/null".to_owned(),
        "! touch /psi-read-only 2>/dev/null".to_owned(),
        // The trace goes to the test's pipe; the exporter's log nowhere.
        "exec 3>&2 2>/dev/null".to_owned(),
    ];
    let mut command = ns::private_mounts(&setup, strace);
    command
        .args(["-f", "-qq", "-yy", "-o", "/dev/fd/3", "-e"])
        .arg("trace=open,openat,openat2,creat,write,pwrite64,writev,pwritev,pwritev2,truncate,ftruncate,rename,renameat,renameat2,unlink,unlinkat,mkdir,mkdirat,link,linkat,symlink,symlinkat")
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_psi-exporter"))
        .args(args)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.stdin(Stdio::null()).spawn().expect("start strace");
    // Read from the start: a trace that filled the pipe would stop the
    // exporter before it listens.
    let mut pipe = child.stderr.take().expect("the trace");
    let reader = std::thread::spawn(move || {
        let mut trace = String::new();
        let _ = pipe.read_to_string(&mut trace);
        trace
    });
    let mut server = Process { child };
    assert!(http::wait_for_port(port, LIMIT), "it listens on {port}");
    check();
    // SIGTERM to the exporter, strace's child: strace itself would detach
    // and leave it running. strace exits with its status.
    let tracee = std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", server.child.id()))
        .expect("strace's children");
    let tracee = tracee
        .trim()
        .parse()
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .expect("one child, the exporter");
    rustix::process::kill_process(tracee, rustix::process::Signal::TERM).expect("SIGTERM");
    let status = server.wait_timeout(LIMIT).expect("wait").expect("it stops");
    let trace = reader.join().expect("the trace reader");
    assert!(status.success(), "exit 0: {status}\n{trace}");
    trace
}

#[test]
fn a_read_only_root_and_a_full_tmp_change_nothing() {
    let Some(root) = cgroup::root() else { return };
    let Some(strace) = ci::tool("strace", "strace") else {
        return;
    };
    let pods = Pods::make(&root, "read-only", 3);
    let dir = pods.pods[0].path().to_string_lossy().into_owned();
    let port = free_port().expect("port");
    let trace = traced_on_a_read_only_machine(&strace, &["--cgroup", &dir], port, || {
        let body = metrics(port);
        assert_eq!(sample(&body, "psi_target_up"), Some(1.0), "{body}");
        assert!(has_series(&body, "psi_cpu_waiting_seconds_total"), "{body}");
        for path in ["/psi", "/health", "/"] {
            assert_eq!(http::get(port, path).expect(path).status, 200, "{path}");
        }
    });
    assert!(
        trace.contains("cpu.pressure"),
        "the trace saw the reads:\n{trace}"
    );
    assert_eq!(
        writes(&trace),
        Vec::<&str>::new(),
        "nothing opened for writing"
    );

    let port = free_port().expect("port");
    let root_dir = pods.root.path().to_string_lossy().into_owned();
    let trace = traced_on_a_read_only_machine(
        &strace,
        &["--mode", "node", "--cgroup-root", &root_dir],
        port,
        || {
            let body = metrics(port);
            assert_eq!(
                cgroups_of(&body, "psi_cpu_waiting_seconds_total"),
                pods.labels()
            );
        },
    );
    assert_eq!(
        writes(&trace),
        Vec::<&str>::new(),
        "nothing opened for writing"
    );
}

// ------------------------------------------------ logs that cannot be written

#[test]
fn logs_that_cannot_be_written_are_lost_not_fatal() {
    // stderr on a full disk (/dev/full: every write ENOSPC) or a pipe whose
    // reader is gone (EPIPE), at a log line per request. Needs no root.
    let full = std::fs::File::options()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    for (what, stderr) in [
        ("a full disk", Stdio::from(full)),
        ("a closed pipe", Stdio::piped()),
    ] {
        let port = free_port().expect("port");
        let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
        command
            .args(["--system", "--log-level", "debug"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stderr(stderr);
        let mut server = http::serve(&mut command, port, LIMIT);
        drop(server.child.stderr.take());
        for _ in 0..3 {
            let r = http::get(port, "/metrics").unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(r.status, 200, "{what}");
            assert!(is_complete(&r.body), "{what}");
        }
        assert!(alive(&mut server), "{what}: no panic");
        server.signal("TERM").expect("SIGTERM");
        let status = server.wait_timeout(LIMIT).expect("wait").expect("it stops");
        assert!(status.success(), "{what}: exit 0, not {status}");
    }
}

// ------------------------------------------------ SIGTERM during a scrape

/// Whether the process holds a pressure file open now: with no descriptor
/// to keep (`ulimit -n 64`), only while a scrape reads.
fn scraping(pid: u32) -> bool {
    std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|l| l.extension().is_some_and(|e| e == "pressure"))
        })
    })
}

/// Reads what the server sends until it closes: `Ok(0 bytes)` is a clean
/// close; a reset counts as closed too, a timeout as a hang.
fn read_until_closed(mut stream: TcpStream) -> Result<Vec<u8>, std::io::Error> {
    stream.set_read_timeout(Some(LIMIT))?;
    let mut got = Vec::new();
    match stream.read_to_end(&mut got) {
        Ok(_) => Ok(got),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(got),
        Err(e) => Err(e),
    }
}

#[test]
fn sigterm_during_a_slow_scrape() {
    let Some(root) = cgroup::root() else { return };
    let pods = Pods::make(&root, "sigterm", 1000);
    let want = pods.labels();
    let port = free_port().expect("port");
    let mut exporter = node_exporter(port, pods.root.path(), Some(64), &[]);
    let pid = exporter.child.id();
    assert!(is_complete(&metrics(port)));

    // An idle kept-alive connection, one half-way through its headers, and
    // one whose client stopped reading its answer: none may delay the exit
    // past the grace period.
    let idle = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut half = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    half.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("half a request");
    let stalled = http::stalled_reader(port, "/metrics").expect("a stalled reader");
    // Its scrape is over once its answer starts to come: the next scrape
    // caught reading is the in-flight request's.
    stalled.set_read_timeout(Some(LIMIT)).expect("a timeout");
    let started = stalled.peek(&mut [0; 1]).expect("its answer starts");
    assert_eq!(started, 1);

    // A request whose scrape is reading when SIGTERM comes.
    let mut caught = None;
    for _ in 0..20 {
        let request = std::thread::spawn(move || http::get(port, "/metrics"));
        let mut hit = false;
        while !request.is_finished() && !hit {
            hit = scraping(pid);
        }
        if hit {
            exporter.signal("TERM").expect("SIGTERM");
            caught = Some(request);
            break;
        }
        let missed = request.join().expect("a request").expect("a scrape");
        assert!(is_complete(&missed.body));
    }
    let request = caught.expect("a scrape caught in progress within 20 tries");
    let response = request
        .join()
        .expect("the request thread")
        .expect("the in-flight request is answered");
    assert_eq!(response.status, 200);
    assert!(is_complete(&response.body), "a whole body");
    assert_eq!(
        cgroups_of(&response.body, "psi_io_waiting_seconds_total"),
        want
    );
    let length: usize = response
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("content-length: "))
        .and_then(|v| v.trim().parse().ok())
        .expect("content-length");
    assert_eq!(length, response.body.len());

    let status = exporter
        .wait_timeout(LIMIT)
        .expect("wait")
        .expect("the exporter exits within the limit");
    assert!(status.success(), "exit 0: {status}");
    // Idle and half-sent connections are closed, not left hanging.
    assert_eq!(read_until_closed(idle).expect("closed").len(), 0);
    let answer = read_until_closed(half).expect("closed");
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    // The client that stopped reading held nothing up: what the kernel
    // buffers for it is the kernel's, and the rest would have been cut at
    // the end of the grace period.
    drop(stalled);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the port is released"
    );
}

#[test]
fn sigterm_while_starting_up_is_an_exit_0_once_up() {
    // Node mode logs its descriptor budget, then walks the tree before it
    // listens: SIGTERM there is kept, and served as soon as the server is up.
    let Some(root) = cgroup::root() else { return };
    let pods = Pods::make(&root, "sigterm-start", 200);
    let port = free_port().expect("port");
    let child = Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
        .args(["--mode", "node", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--cgroup-root")
        .arg(pods.root.path())
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start");
    let mut exporter = Process { child };
    let mut log = support::log_until(&mut exporter, "descriptor budget");
    exporter.signal("TERM").expect("SIGTERM");
    let status = exporter
        .wait_timeout(LIMIT)
        .expect("wait")
        .expect("it stops");
    let mut rest = String::new();
    let _ = log.read_to_string(&mut rest);
    assert_eq!(status.code(), Some(0), "exit 0, not {status}:\n{rest}");
    assert!(rest.contains("SIGTERM: shutting down"), "{rest}");
}
