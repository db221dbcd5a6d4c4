//! A real Prometheus server (Debian's `prometheus`) scraping the exporter
//! every second while the monitored container is under CPU stress, with a
//! kernel PSI trigger armed on it. Needs
//! root, cgroup v2 and `prometheus`; in CI this test must run.

mod support;

use std::time::Duration;

use psi_testkit::cgroup::{self};
use psi_testkit::ci::tool;
use psi_testkit::http::free_port;
use psi_testkit::process::eventually;
use support::{Pod, start_prometheus, wait_for_target};

/// Runs an instant query and returns the first result's value.
fn query(port: u16, promql: &str) -> Option<f64> {
    let result = support::query(port, promql)?;
    result.first()?["value"][1].as_str()?.parse().ok()
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
    let (_prometheus, prom_port) = start_prometheus(
        &prometheus,
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: psi\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n"
        ),
    );

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
