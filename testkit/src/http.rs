//! Talking to a server under test without an HTTP client crate: ports,
//! requests, the samples of a Prometheus exposition, and `promtool`.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::ci::tool;
use crate::process::{Process, eventually};

/// A free TCP port on 127.0.0.1 (bound and released: good enough for tests).
pub fn free_port() -> io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// Waits up to `limit` until something accepts connections on
/// 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    eventually(limit, || {
        TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    })
    .is_some()
}

/// Starts a server with `command` and waits up to `limit` until it listens
/// on 127.0.0.1:`port`; stopped when the returned process is dropped.
///
/// # Panics
///
/// When it cannot be started or does not listen in time: the test cannot go on.
pub fn serve(command: &mut Command, port: u16, limit: Duration) -> Process {
    let child = command
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {:?}: {e}", command.get_program()));
    let server = Process { child };
    assert!(
        wait_for_port(port, limit),
        "{:?} listens on {port} within {limit:?}",
        command.get_program()
    );
    server
}

/// A response read by [`request`].
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The header block, as received (status line included).
    pub headers: String,
    /// The body, decoded as UTF-8 with replacement characters.
    pub body: String,
}

/// A minimal HTTP/1.1 request to 127.0.0.1:`port` over a fresh connection
/// (`Connection: close`), with a 10 s read timeout.
pub fn request(port: u16, method: &str, path: &str) -> io::Result<Response> {
    request_on(TcpStream::connect(("127.0.0.1", port))?, method, path)
}

/// [`request`] over a connection opened earlier: one the server accepted
/// before others filled its limits.
pub fn request_on(mut stream: TcpStream, method: &str, path: &str) -> io::Result<Response> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("no status in {head:?}")))?;
    Ok(Response {
        status,
        headers: head.to_owned(),
        body: body.to_owned(),
    })
}

/// A client that sends `GET path` and never reads the answer, with a receive
/// buffer as small as the kernel allows: a server writing a body larger
/// than what the kernel buffers on both sides (its send buffer grows to a
/// few megabytes on loopback) is left blocked until it gives up on the
/// connection.
pub fn stalled_reader(port: u16, path: &str) -> io::Result<TcpStream> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&stream, 1)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    Ok(stream)
}

/// `GET path`, see [`request`].
pub fn get(port: u16, path: &str) -> io::Result<Response> {
    request(port, "GET", path)
}

/// The value of the first sample in a Prometheus text body whose name and
/// labels start with `series` (e.g. `psi_target_up` or `foo{a="b"}`).
pub fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(series)?;
        let value = rest.rsplit(' ').next()?;
        // The series must end where `series` does: `psi_cpu` is not a
        // prefix match for `psi_cpu_waiting_ratio`.
        matches!(rest.chars().next(), Some(' ' | '{' | ',' | '}')).then(|| value.parse().ok())?
    })
}

/// `promtool check metrics` on a body: the exposition is valid and lint-clean
/// (promtool prints nothing and exits 0). Skips, or fails in CI, without promtool.
pub fn promtool_check(body: &str) {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool's stdin")
        .write_all(body.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}{}\n{body}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
