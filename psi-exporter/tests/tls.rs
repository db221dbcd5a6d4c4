//! `--web-config-file`: TLS, client certificates and bcrypt basic auth in
//! exporter-toolkit's format, against curl, `openssl s_client` and a real
//! Prometheus. Certificates are made here with openssl; nothing is
//! downloaded. Needs openssl, curl, prometheus (and root and cgroup v2 for
//! the Prometheus test); in CI these tests must run.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::ci::tool;
use psi_testkit::http::{self, free_port};
use psi_testkit::pki::Pki;
use psi_testkit::process::{Process, eventually};

const PASSWORD: &str = "s3cret";

/// No extra curl arguments.
const NONE: &[&str] = &[];

/// A bcrypt hash of `password` (cost 4, the lowest: tests stay fast).
fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

/// Writes `yaml` as `web.yml` in `dir`.
fn web_config(dir: &Path, yaml: &str) -> std::path::PathBuf {
    let path = dir.join("web.yml");
    std::fs::write(&path, yaml).expect("write the web config");
    path
}

/// A TLS web config with basic auth for `prometheus` with `password`, the
/// files relative to the config's directory as exporter-toolkit resolves
/// them.
fn tls_and_auth(password: &str) -> String {
    format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n\
         http_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n\
         basic_auth_users:\n  prometheus: {}\n",
        hash(password)
    )
}

/// The exporter in `--system` mode with the web config at `config`, on a
/// free port; waits until the TLS port accepts connections.
fn exporter(config: &Path, extra: &[&str]) -> (Process, u16) {
    let port = free_port().expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--system", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--web-config-file")
        .arg(config)
        .args(extra);
    (
        http::serve(&mut command, port, Duration::from_secs(10)),
        port,
    )
}

/// What curl writes to stdout for `url`, trusting the test CA, with `args`
/// (`-s`, a 10 s limit). [`setup`] has checked that curl is installed.
fn curl_out<A: AsRef<std::ffi::OsStr>>(pki: &Pki, url: &str, args: &[A]) -> String {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--cacert"])
        .arg(pki.path("ca.crt"))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// curl's status code for `url` (`000` when the connection or TLS fails).
fn curl<A: AsRef<std::ffi::OsStr>>(pki: &Pki, url: &str, args: &[A]) -> String {
    let mut all = vec![
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code}".into(),
    ];
    all.extend(args.iter().map(|a| a.as_ref().to_owned()));
    curl_out(pki, url, &all)
}

/// `/metrics` over TLS as `user:password`.
fn metrics_as(pki: &Pki, port: u16, credentials: &str) -> String {
    let url = format!("https://127.0.0.1:{port}/metrics");
    curl_out(pki, &url, &["-u", credentials])
}

/// A counter from `/metrics`, scraped over TLS with the right password.
fn counter(pki: &Pki, port: u16, series: &str) -> Option<f64> {
    http::sample(
        &metrics_as(pki, port, &format!("prometheus:{PASSWORD}")),
        series,
    )
}

/// A test CA with a server and a client certificate; `None` (or a panic in
/// CI) without openssl or curl.
fn setup() -> Option<(tempfile::TempDir, Pki)> {
    tool("curl", "curl")?;
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = Pki::new(dir.path())?;
    pki.server("server", "1001").expect("a server certificate");
    pki.client("client", "2001").expect("a client certificate");
    Some((dir, pki))
}

#[test]
fn basic_auth_over_tls_refuses_a_wrong_password_and_counts_it() {
    let Some((dir, pki)) = setup() else { return };
    let config = web_config(dir.path(), &tls_and_auth(PASSWORD));
    let (_exporter, port) = exporter(&config, &[]);
    let url = format!("https://127.0.0.1:{port}/metrics");
    let right = format!("prometheus:{PASSWORD}");
    assert_eq!(curl(&pki, &url, &["-u", &right]), "200");
    assert_eq!(curl(&pki, &url, &["-u", "prometheus:wrong"]), "401");
    assert_eq!(curl(&pki, &url, &["-u", "nobody:wrong"]), "401");
    assert_eq!(curl(&pki, &url, NONE), "401", "no credentials");
    // /health is behind TLS and auth on this port too.
    let health = format!("https://127.0.0.1:{port}/health");
    assert_eq!(curl(&pki, &health, NONE), "401");
    // Plain HTTP to the TLS port: no answer.
    let plain = http::get(port, "/metrics");
    assert!(plain.is_err(), "plain HTTP is refused: {plain:?}");
    assert_eq!(
        counter(
            &pki,
            port,
            "psi_exporter_auth_failures_total{reason=\"wrong\"}"
        ),
        Some(2.0)
    );
    assert_eq!(
        counter(
            &pki,
            port,
            "psi_exporter_auth_failures_total{reason=\"missing\"}"
        ),
        Some(2.0)
    );
    assert!(
        counter(&pki, port, "psi_exporter_tls_handshake_errors_total").is_some_and(|n| n >= 1.0)
    );
    // The configured header is on every answer.
    let head =
        curl_out(&pki, &url, &["-D", "-", "-o", "/dev/null", "-u", &right]).to_ascii_lowercase();
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
}

#[test]
fn a_client_certificate_is_required_when_asked_and_health_stays_plain() {
    let Some((dir, pki)) = setup() else { return };
    let config = web_config(
        dir.path(),
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
    );
    let health_port = free_port().expect("port");
    let (_exporter, port) = exporter(
        &config,
        &["--health-listen", &format!("127.0.0.1:{health_port}")],
    );
    let url = format!("https://127.0.0.1:{port}/metrics");
    assert_eq!(
        curl(&pki, &url, NONE),
        "000",
        "refused without a certificate"
    );
    assert_eq!(curl(&pki, &url, &client_cert(&pki)), "200");
    // A certificate of another CA is refused too.
    let other = tempfile::tempdir().expect("tempdir");
    let stranger = Pki::new(other.path()).expect("a second CA");
    stranger
        .client("client", "3001")
        .expect("a stranger's certificate");
    assert_eq!(curl(&pki, &url, &client_cert(&stranger)), "000");
    // The probe port: /health alone, plain HTTP, no certificate.
    wait_port(health_port);
    let r = http::get(health_port, "/health").expect("GET /health");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with("ok:"), "{}", r.body);
    assert_eq!(
        http::get(health_port, "/metrics").expect("GET").status,
        404,
        "the probe port serves nothing else"
    );
}

/// curl's arguments to present `pki`'s client certificate.
fn client_cert(pki: &Pki) -> Vec<String> {
    let path = |name: &str| pki.path(name).to_string_lossy().into_owned();
    vec![
        "--cert".into(),
        path("client.crt"),
        "--key".into(),
        path("client.key"),
    ]
}

fn wait_port(port: u16) {
    assert!(http::wait_for_port(port, Duration::from_secs(10)));
}

#[test]
fn a_rotated_certificate_is_served_without_a_restart_and_a_bad_file_keeps_the_old() {
    let Some((dir, pki)) = setup() else { return };
    let config = web_config(dir.path(), &tls_and_auth(PASSWORD));
    let (exporter, port) = exporter(&config, &[]);
    assert_eq!(pki.served_serial(port).expect("s_client"), "1001");
    let right = format!("prometheus:{PASSWORD}");
    let url = format!("https://127.0.0.1:{port}/metrics");

    // cert-manager's way: new files in place of the old.
    pki.server("next", "1002").expect("a new certificate");
    for ext in ["crt", "key"] {
        std::fs::rename(
            pki.path(&format!("next.{ext}")),
            pki.path(&format!("server.{ext}")),
        )
        .expect("rotate");
    }
    let rotated = eventually(Duration::from_secs(15), || {
        pki.served_serial(port).ok().filter(|s| s == "1002")
    });
    assert_eq!(
        rotated.as_deref(),
        Some("1002"),
        "the new certificate is served"
    );
    assert_eq!(curl(&pki, &url, &["-u", &right]), "200");

    // A new password on SIGHUP: written with the old modification time
    // (and the same length), so that only the signal can make it seen.
    let modified = std::fs::metadata(&config)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(&config, tls_and_auth("n3w")).expect("write");
    std::fs::File::options()
        .write(true)
        .open(&config)
        .and_then(|f| f.set_modified(modified))
        .expect("restore the mtime");
    std::thread::sleep(2 * Duration::from_secs(2));
    assert_eq!(
        curl(&pki, &url, &["-u", &right]),
        "200",
        "unchanged files are not reloaded"
    );
    exporter.signal("HUP").expect("SIGHUP");
    let new_password = eventually(Duration::from_secs(15), || {
        (curl(&pki, &url, &["-u", "prometheus:n3w"]) == "200").then_some(())
    });
    assert!(new_password.is_some(), "the new password works");
    assert_eq!(
        curl(&pki, &url, &["-u", &right]),
        "401",
        "the old one no longer"
    );

    // A broken file: the old configuration stays, and the gauge says so.
    std::fs::write(&config, "tls_server_config:\n  cert_file: [\n").expect("write");
    let failed = eventually(Duration::from_secs(15), || {
        let body = metrics_as(&pki, port, "prometheus:n3w");
        (http::sample(&body, "psi_exporter_web_config_last_reload_successful") == Some(0.0))
            .then_some(body)
    });
    let body = failed.expect("the failed reload is reported");
    assert_eq!(
        http::sample(
            &body,
            "psi_exporter_web_config_reloads_total{result=\"failure\"}"
        ),
        Some(1.0),
        "a bad file is tried once, not at every poll"
    );
    assert_eq!(pki.served_serial(port).expect("s_client"), "1002");
}

#[test]
fn an_invalid_file_at_start_exits_2_naming_the_field() {
    let Some((dir, _pki)) = setup() else { return };
    let tls = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
    let cases = [
        ("colour: blue\n", "colour"),
        ("tls_server_config:\n  cert_file: server.crt\n", "key_file"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  certfile: x\n",
            "certfile",
        ),
        (
            &format!("{tls}  client_auth_type: RequestClientCert\n"),
            "client_auth_type",
        ),
        (
            &format!("{tls}  client_auth_type: RequireAndVerifyClientCert\n"),
            "client_ca_file",
        ),
        (&format!("{tls}  min_version: TLS10\n"), "min_version"),
        (
            &format!("{tls}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
            "TLS_RSA_WITH_AES_128_CBC_SHA",
        ),
        (
            &format!("{tls}  curve_preferences: [CurveP521]\n"),
            "CurveP521",
        ),
        (
            &format!("{tls}  client_allowed_sans: [a]\n"),
            "client_allowed_sans",
        ),
        ("http_server_config:\n  http2: true\n", "http2"),
        (
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
            "X-Frame-Options",
        ),
        (
            "http_server_config:\n  headers:\n    X-Powered-By: psi\n",
            "X-Powered-By",
        ),
        (
            "basic_auth_users:\n  prometheus: plaintext\n",
            "basic_auth_users",
        ),
        ("rate_limit:\n  interval: 1s\n  burst: 5\n", "rate_limit"),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "missing.crt",
        ),
    ];
    for (yaml, field) in cases {
        let config = web_config(dir.path(), yaml);
        let out = Command::new(env!("CARGO_BIN_EXE_psi-exporter"))
            .args(["--system", "--listen", "127.0.0.1:0", "--web-config-file"])
            .arg(&config)
            .stdin(Stdio::null())
            .output()
            .expect("run the exporter");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{yaml}: {stderr}");
        assert!(
            stderr.contains(field) && stderr.contains("web.yml"),
            "{yaml}: the error names {field} and the file: {stderr}"
        );
    }
}

#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    let Some(root) = cgroup::root() else { return };
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let Some((dir, pki)) = setup() else { return };
    let mut busy = TestCgroup::new(&root, "tls-busy").expect("a cgroup");
    busy.burn(2).expect("busy loops");
    let config = web_config(dir.path(), &tls_and_auth(PASSWORD));
    let port = free_port().expect("port");
    let mut command = Command::new(env!("CARGO_BIN_EXE_psi-exporter"));
    command
        .args(["--listen", &format!("127.0.0.1:{port}"), "--cgroup"])
        .arg(busy.path())
        .arg("--web-config-file")
        .arg(&config);
    let _exporter = http::serve(&mut command, port, Duration::from_secs(10));

    let password_file = dir.path().join("password");
    std::fs::write(&password_file, PASSWORD).expect("write");
    let prom_dir = tempfile::tempdir().expect("tempdir");
    let (_prometheus, prom_port) = support::start_prometheus(
        &prometheus,
        prom_dir.path(),
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
             - job_name: psi\n    scheme: https\n    tls_config:\n      ca_file: {}\n      \
             server_name: localhost\n    basic_auth:\n      username: prometheus\n      \
             password_file: {}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            pki.path("ca.crt").display(),
            password_file.display()
        ),
    );
    let value = |promql: &str| -> Option<f64> {
        let result = support::query(prom_port, promql)?;
        result.first()?["value"][1].as_str()?.parse().ok()
    };
    let up = eventually(Duration::from_secs(30), || {
        value("up{job=\"psi\"}").filter(|&v| v == 1.0)
    });
    assert_eq!(up, Some(1.0), "Prometheus scrapes over TLS with basic auth");
    let rate = eventually(Duration::from_secs(40), || {
        value("rate(psi_cpu_waiting_seconds_total{job=\"psi\"}[5s])").filter(|&v| v > 0.0)
    });
    assert!(rate.is_some(), "rate() of the busy cgroup rises above zero");
    // One bcrypt check for all of Prometheus' scrapes: the rest were cached.
    assert_eq!(
        value("psi_exporter_auth_failures_total{job=\"psi\",reason=\"wrong\"}"),
        Some(0.0)
    );
}

#[test]
fn clients_that_never_finish_a_handshake_do_not_hold_the_cap() {
    let Some((dir, pki)) = setup() else { return };
    let config = web_config(dir.path(), &tls_and_auth(PASSWORD));
    let (_exporter, port) = exporter(&config, &["--max-connections", "4"]);
    // Four connections that never send a ClientHello fill the cap...
    let silent: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    // ...and a real client still gets in, in the place of the oldest.
    let url = format!("https://127.0.0.1:{port}/health");
    let right = format!("prometheus:{PASSWORD}");
    assert_eq!(curl(&pki, &url, &["-u", &right]), "200");
    assert!(
        counter(
            &pki,
            port,
            "psi_exporter_connections_dropped_total{reason=\"evicted\"}"
        )
        .is_some_and(|n| n >= 1.0)
    );
    drop(silent);
}

#[test]
fn a_half_written_file_never_turns_basic_auth_off() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = web_config(
        dir.path(),
        &format!("basic_auth_users:\n  prometheus: {}\n", hash(PASSWORD)),
    );
    let (_exporter, port) = exporter(&config, &[]);
    assert_eq!(http::get(port, "/metrics").expect("GET").status, 401);
    // Truncated mid-write: valid YAML, no users.
    std::fs::write(&config, "").expect("truncate");
    let refused = eventually(Duration::from_secs(20), || {
        let r = http::get(port, "/health").ok()?;
        (r.status == 401).then_some(())?;
        // Counters are behind auth too: read them with the password.
        let body = authorized_metrics(port)?;
        (http::sample(&body, "psi_exporter_web_config_last_reload_successful") == Some(0.0))
            .then_some(body)
    });
    let body = refused.expect("the empty file is refused and auth stays on");
    assert_eq!(
        http::sample(
            &body,
            "psi_exporter_web_config_reloads_total{result=\"failure\"}"
        ),
        Some(1.0)
    );
    assert_eq!(http::get(port, "/metrics").expect("GET").status, 401);
}

/// `/metrics` over plain HTTP with the right password, if it answers 200.
fn authorized_metrics(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let credentials = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("prometheus:{PASSWORD}"),
    );
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {credentials}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}
