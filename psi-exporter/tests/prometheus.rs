//! A real Prometheus server (Debian's `prometheus`) scraping the exporter
//! every second while the monitored container is under CPU stress, with a
//! kernel PSI trigger armed on it. Needs
//! root, cgroup v2 and `prometheus`; in CI this test must run.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use psi_testkit::cgroup::{self};
use psi_testkit::ci::tool;
use psi_testkit::http::{self, free_port};
use psi_testkit::process::eventually;
use support::{Pod, wait_for_target};

/// Runs an instant query and returns the first result's value.
fn query(port: u16, promql: &str) -> Option<f64> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = http::get(port, &format!("/api/v1/query?query={encoded}")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    assert_eq!(json["status"], "success", "{promql}: {}", r.body);
    json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn prometheus_sees_the_monitored_cgroup_stall_rate_rise() {
    let Some(root) = cgroup::root() else { return };
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let mut pod = Pod::start(&root, "prom");
    let port = free_port().expect("port");
    let _exporter = pod.exporter(port, &["--trigger", "cpu some 500ms 2s"]);
    wait_for_target(port, pod.pid());

    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: psi\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    )
    .expect("write config");
    let prom_port = free_port().expect("port");
    let mut command = Command::new(prometheus);
    command
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _prometheus = http::serve(&mut command, prom_port, Duration::from_secs(30));

    pod.app.burn(4).expect("busy loops in the monitored cgroup");
    let up = eventually(Duration::from_secs(30), || {
        query(prom_port, "up{job=\"psi\"}").filter(|&v| v == 1.0)
    });
    assert_eq!(up, Some(1.0), "prometheus scrapes the exporter");
    let rate = eventually(Duration::from_secs(40), || {
        query(
            prom_port,
            "rate(psi_cpu_waiting_seconds_total{job=\"psi\"}[5s])",
        )
        .filter(|&v| v > 0.0)
    });
    let rate = rate.expect("rate() of the monitored cgroup's cpu waiting counter rises above zero");
    // `some` is a share of wall-clock time: never more than one second a second.
    assert!(rate <= 1.01, "rate {rate}");
    let legacy = query(
        prom_port,
        "cgroup_monitor_sc_monitored_cpu_psi{job=\"psi\",type=\"some\",window=\"total\"}",
    );
    assert!(
        legacy.is_some_and(|v| v > 0.0),
        "legacy gauge scraped: {legacy:?}"
    );
    let available = query(
        prom_port,
        "psi_pressure_available{job=\"psi\",resource=\"cpu\"}",
    );
    assert_eq!(available, Some(1.0));
    eprintln!("rate(psi_cpu_waiting_seconds_total[5s]) = {rate}");
}
