//! A minimal hyper 1.x server answering `GET /metrics` with a static body:
//! the ceiling any HTTP exporter built the same way can reach on a machine.
//!
//! Built like psi-exporter's server (tokio current-thread runtime, hyper http1,
//! keep-alive, `TCP_NODELAY`, the same response headers), minus everything
//! that produces the body. Used by `benches/exporter.sh`.
//!
//! ```text
//! cargo run --release -p psi-exporter --example static_server -- --port 9200 --size 2048
//! ```

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const USAGE: &str = "usage: static_server [--port N] [--size BYTES] [--host IP]\n\
    Serves GET /metrics with a static Prometheus-like body of BYTES bytes \
    (default 2048) on IP:N (default 127.0.0.1:9200; port 0 picks a free one, printed on stdout).";

struct Args {
    addr: SocketAddr,
    size: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut port: u16 = 9200;
    let mut size: usize = 2048;
    let mut host: std::net::IpAddr = Ipv4Addr::LOCALHOST.into();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(USAGE.to_owned());
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                port = value()?
                    .parse()
                    .map_err(|e| format!("--port: {e}\n{USAGE}"))?;
            }
            "--size" => {
                size = value()?
                    .parse()
                    .map_err(|e| format!("--size: {e}\n{USAGE}"))?;
            }
            "--host" => {
                host = value()?
                    .parse()
                    .map_err(|e| format!("--host: {e}\n{USAGE}"))?;
            }
            _ => return Err(format!("unknown argument {arg:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        addr: SocketAddr::new(host, port),
        size,
    })
}

/// A body of exactly `size` bytes of valid Prometheus text: a `# HELP` and
/// `# TYPE` header, counter samples about as long as psi-exporter's, and a
/// comment line padding the total to `size` (sizes under 64 are all padding).
fn body(size: usize) -> Bytes {
    let mut out = String::with_capacity(size);
    let header = "# HELP static_waiting_seconds_total A static counter.\n\
                  # TYPE static_waiting_seconds_total counter\n";
    if size >= 64 + header.len() {
        out.push_str(header);
        for n in 0u64.. {
            let line = format!(
                "static_waiting_seconds_total{{resource=\"cpu\",n=\"{n}\"}} {}.{:06}\n",
                n * 7919 % 100_000,
                n * 104_729 % 1_000_000
            );
            if out.len() + line.len() > size {
                break;
            }
            out.push_str(&line);
        }
    }
    match size - out.len() {
        0 => {}
        1 => out.push('\n'),
        rest => {
            out.push('#');
            out.extend(std::iter::repeat_n(' ', rest - 2));
            out.push('\n');
        }
    }
    debug_assert_eq!(out.len(), size);
    Bytes::from(out)
}

fn respond(body: &Bytes, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = if req.uri().path() != "/metrics" {
        (StatusCode::NOT_FOUND, Bytes::from_static(b"not found\n"))
    } else if req.method() != Method::GET && req.method() != Method::HEAD {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(b"method not allowed\n"),
        )
    } else {
        (StatusCode::OK, body.clone())
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

async fn serve(listener: TcpListener, body: Bytes) {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("static_server: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        let conn = builder.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let r = respond(&body, &req);
                async move { Ok::<_, Infallible>(r) }
            }),
        );
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let body = body(args.size);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("static_server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(args.addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("static_server: cannot listen on {}: {e}", args.addr);
                return ExitCode::FAILURE;
            }
        };
        match listener.local_addr() {
            Ok(local) => println!("listening on {local}, /metrics body {} bytes", body.len()),
            Err(e) => eprintln!("static_server: cannot read the bound address: {e}"),
        }
        tokio::select! {
            () = serve(listener, body) => {}
            _ = tokio::signal::ctrl_c() => {}
            () = sigterm() => {}
        }
        ExitCode::SUCCESS
    })
}

/// Resolves on SIGTERM; never, if the handler cannot be installed.
async fn sigterm() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
