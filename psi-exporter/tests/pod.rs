//! The exporter as the Go sidecar ran: a simulated pod on the real kernel.
//!
//! The monitored "container" is a process in its own mount namespace with
//! `/etc/pid_flag/pid_flag` (a ConfigMap-style directory) on a private tmpfs
//! and a cgroup namespace rooted at its own cgroup, mounted on `/sys/fs/cgroup`,
//! as a container runtime sets it up.
//! The built exporter is started with the seed's layout: `PORT` in the
//! environment and its own flag in a directory. Needs root and cgroup v2; in
//! CI these tests must run.

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::http::{self, free_port, promtool_check, sample, wait_for_port};
use psi_testkit::process::{Process, eventually};
use support::{
    Pod, metrics, some_total_us, start_container, start_exporter, start_exporter_on,
    wait_for_target,
};

#[test]
fn follows_the_monitored_container_through_stress_and_restart() {
    let Some(root) = cgroup::root() else { return };
    let Pod {
        container,
        mut app,
        sidecar,
        flag,
        flag_dir,
    } = Pod::start(&root, "pod");
    let pid = container.child.id();
    let port = free_port().expect("port");
    let trigger = ["--trigger", "cpu some 500ms 2s"];
    let mut exporter = start_exporter(port, flag_dir.path(), &sidecar, &trigger);

    let body = wait_for_target(port, pid);
    assert!(
        body.contains(&format!("path=\"/proc/{pid}/root/sys/fs/cgroup\"")),
        "{body}"
    );
    assert_eq!(sample(&body, "psi_target_discoveries_total"), Some(1.0));
    promtool_check(&body);

    // Stress inside the monitored cgroup: its own stall rises.
    let idle_total = some_total_us(app.path());
    app.burn(4).expect("busy loops in the monitored cgroup");
    let risen = eventually(Duration::from_secs(20), || {
        let before = some_total_us(app.path());
        let body = metrics(port);
        let after = some_total_us(app.path());
        let seconds = sample(&body, "psi_cpu_waiting_seconds_total")?;
        let reported = (seconds * 1e6).round() as u64;
        // What /metrics says is the monitored cgroup's own file, read between
        // two reads of it: not the system's, not the sidecar's.
        assert!(
            before <= reported && reported <= after,
            "reported {reported} µs, the cgroup's file said {before} then {after}"
        );
        let avg10 = sample(&body, "psi_cpu_waiting_ratio{window=\"10s\"")?;
        (reported > idle_total && avg10 > 0.0).then_some(body)
    });
    let body = risen.expect("the monitored cgroup's cpu stall rises under stress");
    let legacy = sample(
        &body,
        "cgroup_monitor_sc_monitored_cpu_psi{type=\"some\",window=\"total\"",
    );
    assert!(legacy.is_some_and(|v| v > idle_total as f64), "{body}");
    promtool_check(&body);
    app.stop();

    // The container restarts: new process, new cgroup, same flag.
    drop(container);
    let app2 = TestCgroup::new(&root, "app2").expect("second app cgroup");
    let restarted = start_container(app2.path(), &flag);
    let new_pid = restarted.child.id();
    assert_ne!(new_pid, pid);
    let body = wait_for_target(port, new_pid);
    assert_eq!(
        sample(&body, "psi_target_discoveries_total"),
        Some(2.0),
        "{body}"
    );
    assert!(
        matches!(exporter.child.try_wait(), Ok(None)),
        "the exporter followed the restart without restarting"
    );
    promtool_check(&body);
}

#[test]
fn http_endpoints_methods_and_shutdown_while_a_request_is_in_flight() {
    let Some(root) = cgroup::root() else { return };
    let pod = Pod::start(&root, "http");
    let port = free_port().expect("port");
    let mut exporter = pod.exporter(port, &[]);
    wait_for_target(port, pod.pid());

    assert_eq!(http::get(port, "/nope").expect("GET").status, 404);
    let post = http::request(port, "POST", "/metrics").expect("POST");
    assert_eq!(post.status, 405);
    assert!(
        post.headers
            .to_ascii_lowercase()
            .contains("allow: get, head"),
        "{}",
        post.headers
    );

    let health = http::get(port, "/health").expect("GET /health");
    assert_eq!(health.status, 200);
    assert!(
        health.body.starts_with("ok: exporting /proc/"),
        "{}",
        health.body
    );

    let psi = http::get(port, "/psi").expect("GET /psi");
    assert_eq!(psi.status, 200);
    assert!(psi.headers.contains("application/json"));
    let json: serde_json::Value = serde_json::from_str(&psi.body).expect("/psi is JSON");
    assert_eq!(json["mode"], "discover", "{}", psi.body);
    assert_eq!(json["target"]["kind"], "cgroup", "{}", psi.body);
    assert!(
        json["target"]["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/proc/")),
        "{}",
        psi.body
    );
    assert!(
        psi.body.contains("\"cpu\":{\"some\":{\"avg10\":"),
        "{}",
        psi.body
    );

    let head = http::request(port, "HEAD", "/health").expect("HEAD");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert!(
        head.headers
            .to_ascii_lowercase()
            .contains("content-length: "),
        "{}",
        head.headers
    );

    let home = http::get(port, "/").expect("GET /");
    assert!(home.body.contains("href=\"metrics\""), "{}", home.body);

    // A client stuck half-way through its headers, and a complete request
    // sent just before SIGTERM: the latter is answered, and the exporter
    // exits within a second anyway.
    use std::io::{Read, Write};
    let mut stuck = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stuck
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("half a request");
    let mut inflight = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    inflight
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("request");
    std::thread::sleep(Duration::from_millis(50));
    let sent = Instant::now();
    exporter.signal("TERM").expect("SIGTERM");
    let status = exporter
        .wait_timeout(Duration::from_secs(1))
        .expect("wait")
        .unwrap_or_else(|| panic!("the exporter exits within 1 s of SIGTERM"));
    assert!(status.success(), "{status:?}");
    eprintln!("exited {:?} after SIGTERM", sent.elapsed());
    let mut answer = String::new();
    inflight
        .set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    let _ = inflight.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "the in-flight scrape was answered: {answer:?}"
    );
}

#[test]
fn without_a_pid_flag_it_exports_the_system() {
    // No root needed: /proc/pressure is world-readable.
    let port = free_port().expect("port");
    let child = Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
        .env("PORT", port.to_string())
        .args([
            "--listen",
            "127.0.0.1",
            "--pid-flag-file",
            "/nonexistent/pid_flag_sc",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start psi-exporter");
    let mut exporter = Process { child };
    assert!(wait_for_port(port, Duration::from_secs(10)));
    let body = metrics(port);
    assert!(
        body.contains("psi_target_info{mode=\"system\",path=\"/proc/pressure\""),
        "{body}"
    );
    assert!(
        sample(&body, "psi_cpu_waiting_seconds_total").is_some(),
        "{body}"
    );
    assert!(
        !body.contains("psi_cpu_stalled_seconds_total"),
        "the system's cpu full line is a fake zero: {body}"
    );
    exporter.signal("TERM").expect("SIGTERM");
    exporter
        .wait_timeout(Duration::from_secs(5))
        .expect("wait")
        .expect("the exporter exits within 5 s of SIGTERM");
    let mut log = String::new();
    std::io::Read::read_to_string(&mut exporter.child.stderr.take().expect("stderr"), &mut log)
        .expect("read log");
    assert!(
        log.contains("no pid_flag file: exporting the system-wide /proc/pressure"),
        "{log}"
    );
}

#[test]
fn the_root_cgroup_has_no_fake_cpu_full() {
    let Some(root) = cgroup::root() else { return };
    let port = free_port().expect("port");
    let _exporter = start_exporter_on(port, &root);
    let body = metrics(port);
    assert!(
        sample(&body, "psi_cpu_waiting_seconds_total").is_some(),
        "{body}"
    );
    assert!(!body.contains("psi_cpu_stalled_seconds_total"), "{body}");
    assert!(
        sample(&body, "psi_io_stalled_seconds_total").is_some(),
        "{body}"
    );
}
