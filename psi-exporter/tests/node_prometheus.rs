//! A real Prometheus server (Debian's `prometheus`) scraping node mode every
//! second, with the shipped recording rules and alerts of deploy/rules, while
//! busy loops run in one container of a kubelet-shaped tree on the real
//! kernel. The body is large enough to be sent gzip-compressed, which is how
//! Prometheus asks for it. Needs root, cgroup v2 and `prometheus`; in CI this
//! test must run.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use psi_testkit::cgroup;
use psi_testkit::ci::tool;
use psi_testkit::http::{free_port, promtool_check};
use psi_testkit::process::eventually;
use support::kubelet::{Tree, cid};
use support::start_prometheus;

/// The exporter's threshold for compressing a body (`http::GZIP_MIN`).
const GZIP_MIN: usize = 32 * 1024;

/// A sample of an instant query: its labels and value.
struct Sample {
    labels: serde_json::Value,
    value: f64,
}

impl Sample {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels[name].as_str()
    }
}

/// Runs an instant query; `None` until Prometheus answers.
fn query(port: u16, promql: &str) -> Option<Vec<Sample>> {
    let result = support::query(port, promql)?;
    let samples = result.iter().map(|s| Sample {
        labels: s["metric"].clone(),
        value: s["value"][1]
            .as_str()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN),
    });
    Some(samples.collect())
}

/// `GET /metrics` with `Accept-Encoding: gzip`, as Prometheus sends it:
/// the header block and the body as received.
fn get_gzip(port: u16) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let headers = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    (headers, raw[end + 4..].to_vec())
}

/// Listens on a free port and keeps the header block of the first request
/// it gets, answering every request with an empty exposition: a scrape
/// target that shows what Prometheus asks for.
fn header_recorder() -> (u16, Arc<Mutex<Option<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(None));
    let keep = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let mut seen = keep.lock().unwrap_or_else(|e| e.into_inner());
            seen.get_or_insert_with(|| String::from_utf8_lossy(&head).to_ascii_lowercase());
            drop(seen);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (port, seen)
}

#[test]
fn prometheus_scrapes_node_mode_gzipped_and_the_shipped_rules_name_the_busy_pod() {
    let Some(root) = cgroup::root() else { return };
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let mut tree = Tree::build(&root);
    let nginx = tree.nginx();
    tree.cgroup(&nginx)
        .burn(3)
        .expect("busy loops in shop/web's nginx");

    // Every cgroup of the tree with the averages: about 70 KB, past the
    // gzip threshold (the three pods alone are under it).
    let port = free_port().expect("port");
    let _exporter = tree.exporter(port, &["--level", "all", "--averages"]);
    let plain = support::metrics(port);
    assert!(
        plain.len() >= GZIP_MIN,
        "the body ({} bytes) is past the gzip threshold",
        plain.len()
    );
    let (headers, body) = get_gzip(port);
    assert!(headers.starts_with("http/1.1 200"), "{headers}");
    assert!(
        headers.contains("\r\ncontent-encoding: gzip"),
        "a body of {} bytes asked for with gzip comes gzipped: {headers}",
        plain.len()
    );
    assert!(
        headers.contains("\r\ncontent-type: text/plain; version=0.0.4"),
        "{headers}"
    );
    let mut unzipped = String::new();
    flate2::read::GzDecoder::new(body.as_slice())
        .read_to_string(&mut unzipped)
        .expect("a gzip body");
    assert!(
        body.len() * 4 < unzipped.len(),
        "{} bytes gzipped to {}",
        unzipped.len(),
        body.len()
    );
    promtool_check(&unzipped);
    eprintln!("/metrics: {} bytes, {} gzipped", unzipped.len(), body.len());

    // Prometheus, as deploy/prometheus.yml's node job names the target, with
    // the shipped rules; and a second target that records what it asks for.
    let (recorder, asked) = header_recorder();
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/rules/psi.rules.yml");
    assert!(rules.is_file(), "{}", rules.display());
    let (_prometheus, prom_port) = start_prometheus(
        &prometheus,
        dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  \
             - job_name: psi-exporter-node\n    static_configs:\n      \
             - targets: ['127.0.0.1:{port}']\n        labels: {{node: test-node}}\n  \
             - job_name: recorder\n    static_configs:\n      - targets: ['127.0.0.1:{recorder}']\n",
            rules.display()
        ),
    );

    let up = eventually(Duration::from_secs(30), || {
        let up = query(prom_port, "up{job=\"psi-exporter-node\"}")?;
        (up.first()?.value == 1.0).then_some(())
    });
    assert!(up.is_some(), "prometheus scrapes the exporter");

    // The busy pod: its own cgroup and nginx rise, its sandbox stays idle.
    let web = eventually(Duration::from_secs(40), || {
        let samples = query(
            prom_port,
            "rate(psi_cpu_waiting_seconds_total{pod=\"web\"}[10s])",
        )?;
        let risen = samples.len() == 3
            && samples
                .iter()
                .filter(|s| s.label("container_id") != Some(&cid('b')))
                .all(|s| s.value > 0.0);
        risen.then_some(samples)
    })
    .expect("rate() of shop/web's cpu waiting rises above zero (its pod cgroup and nginx)");
    for s in &web {
        // `some` is a share of wall-clock time: never more than a second a second.
        assert!(s.value <= 1.01, "{} {}", s.labels, s.value);
        assert_eq!(s.label("namespace"), Some("shop"), "{}", s.labels);
        assert_eq!(s.label("node"), Some("test-node"), "{}", s.labels);
        match s.label("container_id") {
            None => assert_eq!(s.label("container"), None, "the pod cgroup"),
            Some(id) if id == cid('a') => assert_eq!(s.label("container"), Some("nginx")),
            Some(id) => {
                assert_eq!(id, cid('b'), "the sandbox, kept at --level all");
                assert_eq!(s.value, 0.0, "the sandbox runs nothing");
            }
        }
    }
    eprintln!(
        "rate(psi_cpu_waiting_seconds_total{{pod=\"web\"}}[10s]): {:?}",
        web.iter().map(|s| s.value).collect::<Vec<_>>()
    );

    // The idle pod: its series are there, and their rate is 0 (not absent).
    let db = query(
        prom_port,
        "rate(psi_cpu_waiting_seconds_total{pod=\"db\"}[10s])",
    )
    .expect("an answer");
    assert_eq!(db.len(), 2, "shop/db's pod cgroup and postgres");
    assert!(
        db.iter().all(|s| s.value == 0.0),
        "idle: {:?}",
        db.iter().map(|s| s.value).collect::<Vec<_>>()
    );

    // The shipped recording rules, on the exporter's real labels.
    let recorded = eventually(Duration::from_secs(20), || {
        let pods = query(prom_port, "namespace_pod:psi_cpu_waiting_seconds:rate5m")?;
        let containers = query(
            prom_port,
            "namespace_pod_container:psi_cpu_waiting_seconds:rate5m",
        )?;
        let value = |samples: &[Sample], key: &str, v: &str| {
            samples
                .iter()
                .find(|s| s.label(key) == Some(v))
                .map(|s| s.value)
        };
        let web = value(&pods, "pod", "web")?;
        let nginx = value(&containers, "container", "nginx")?;
        (web > 0.0 && nginx > 0.0).then_some((pods, containers))
    })
    .expect("the recording rules give shop/web and nginx a rate above zero");
    let (pods, containers) = recorded;
    let names = |samples: &[Sample], key: &str| {
        let mut v: Vec<String> = samples
            .iter()
            .filter_map(|s| s.label(key).map(str::to_owned))
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        names(&pods, "pod"),
        ["db", "job", "web"],
        "one series a pod"
    );
    assert_eq!(
        names(&containers, "container"),
        ["nginx", "postgres", "worker"],
        "one series a named container; no sandbox, no docker"
    );
    for s in pods.iter().chain(&containers) {
        if s.label("pod") != Some("web") {
            assert_eq!(s.value, 0.0, "{}", s.labels);
        }
    }

    // What Prometheus asked for: gzip.
    let asked = eventually(Duration::from_secs(10), || {
        asked.lock().unwrap_or_else(|e| e.into_inner()).clone()
    })
    .expect("prometheus scrapes the recorder");
    assert!(
        asked
            .lines()
            .any(|l| l.starts_with("accept-encoding:") && l.contains("gzip")),
        "{asked}"
    );
}
