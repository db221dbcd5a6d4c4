//! The HTTP side: routing (testable without a socket) and the server loop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONNECTION, CONTENT_ENCODING,
    CONTENT_TYPE, HeaderValue, RETRY_AFTER, VARY, WWW_AUTHENTICATE,
};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use std::net::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::auth::{Auth, Verdict};
use crate::conn::{Registry, Room, State, Timeouts, Tracked, Watchdog};
use crate::stats::{Denied, Dropped};
use crate::web::Live;

/// The app, shared by the connections (all on one thread; the lock is never contended long).
pub type Shared = Arc<Mutex<App>>;

/// Limits on what clients may do.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once. At the cap a new connection takes the place
    /// of the one idle the longest (see [`crate::conn`]); it is refused only
    /// when every connection is answering a request.
    pub max_connections: usize,
    /// How long a connection may spend in each phase.
    pub timeouts: Timeouts,
    /// Time in-flight requests get to finish after a shutdown signal.
    pub grace: Duration,
}

fn lock(app: &Shared) -> MutexGuard<'_, App> {
    // A panic while holding the lock cannot leave App half-written in a way
    // that matters to the next scrape, so a poisoned lock is used as is.
    app.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Bodies from this size up are gzip-compressed for a client that accepts
/// it. A sidecar's body (about 6 KB) is not worth the CPU (it would cost
/// several times the scrape); a node's (hundreds of KB) is: see
/// BENCHMARKS.md for the measurements behind the size and the level.
pub const GZIP_MIN: usize = 32 * 1024;

/// The gzip level: the fastest, which already shrinks the text format's
/// repeated label sets about tenfold.
const GZIP_LEVEL: u32 = 1;

/// Whether an `Accept-Encoding` header accepts gzip (`gzip` or `*`, with no
/// `q=0`).
pub fn accepts_gzip(header: Option<&HeaderValue>) -> bool {
    let Some(value) = header.and_then(|h| h.to_str().ok()) else {
        return false;
    };
    value.split(',').any(|part| {
        let mut pieces = part.split(';');
        let name = pieces.next().unwrap_or_default().trim();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        (name.eq_ignore_ascii_case("gzip") || name == "*") && q > 0.0
    })
}

/// `body` gzip-compressed, or `None` if compressing failed (it cannot, into
/// memory; the body is then sent as it is).
fn gzip(body: &[u8]) -> Option<Bytes> {
    use std::io::Write as _;
    let out = Vec::with_capacity(body.len() / 8);
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(GZIP_LEVEL));
    enc.write_all(body).ok()?;
    enc.finish().ok().map(Bytes::from)
}

/// Answers one request. GET and HEAD only (HEAD gets GET's headers and no
/// body); other methods 405, unknown paths 404. The request body is never read.
/// A body of [`GZIP_MIN`] bytes or more is gzip-compressed when `gzip_ok`.
pub fn respond(app: &Shared, method: &Method, path: &str, gzip_ok: bool) -> Response<Full<Bytes>> {
    let known = matches!(path, "/" | "/health" | "/psi" | "/metrics");
    if !known {
        return response(
            StatusCode::NOT_FOUND,
            TEXT,
            Bytes::from_static(b"not found: try /metrics, /psi or /health\n"),
        );
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = response(
            StatusCode::METHOD_NOT_ALLOWED,
            TEXT,
            Bytes::from_static(b"method not allowed: use GET or HEAD\n"),
        );
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let mut app = lock(app);
    let (content_type, body) = match path {
        "/metrics" => (psi_core::expose::CONTENT_TYPE, app.metrics()),
        "/psi" => ("application/json", app.psi_json()),
        "/health" => (TEXT, app.health()),
        _ => ("text/html; charset=utf-8", app.homepage()),
    };
    drop(app);
    // For HEAD, hyper sends GET's headers (Content-Length included) and no body.
    if gzip_ok
        && body.len() >= GZIP_MIN
        && let Some(compressed) = gzip(&body)
    {
        let mut r = response(StatusCode::OK, content_type, compressed);
        r.headers_mut()
            .insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r.headers_mut()
            .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
        return r;
    }
    let mut r = response(StatusCode::OK, content_type, body);
    r.headers_mut()
        .insert(VARY, HeaderValue::from_static("Accept-Encoding"));
    r
}

/// Connections open at once on `--health-listen`, apart from the main cap.
pub const HEALTH_CONNECTIONS: usize = 16;

/// Which listener a connection came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    /// `--listen`: every endpoint, with the web configuration's TLS, basic
    /// auth and headers.
    Main,
    /// `--health-listen`: `/health` alone, plain HTTP, for kubelet probes.
    Health,
}

/// What every connection's requests need.
struct Ctx {
    app: Shared,
    web: Arc<Live>,
    auth: Auth,
}

/// The answer to a request basic auth refused: `401` with a challenge, or
/// `429` when too many new credentials are being checked; the connection is
/// closed after it.
fn refused(why: Denied) -> Response<Full<Bytes>> {
    let mut r = if why == Denied::Busy {
        let mut r = response(
            StatusCode::TOO_MANY_REQUESTS,
            TEXT,
            Bytes::from_static(b"too many new credentials to check: retry in a second\n"),
        );
        r.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else {
        let mut r = response(
            StatusCode::UNAUTHORIZED,
            TEXT,
            Bytes::from_static(b"unauthorized: send the user and password of basic_auth_users\n"),
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"psi-exporter\""),
        );
        r
    };
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

async fn answer(ctx: &Ctx, port: Port, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if port == Port::Health {
        if path != "/health" {
            return response(
                StatusCode::NOT_FOUND,
                TEXT,
                Bytes::from_static(b"not found: this port serves /health only\n"),
            );
        }
        return respond(&ctx.app, req.method(), path, false);
    }
    let web = ctx.web.current();
    let mut r = match ctx
        .auth
        .check(&web.users, req.headers().get(AUTHORIZATION))
        .await
    {
        Verdict::Allowed => {
            let gzip_ok = accepts_gzip(req.headers().get(ACCEPT_ENCODING));
            respond(&ctx.app, req.method(), path, gzip_ok)
        }
        Verdict::Refused(why) => refused(why),
    };
    for (name, value) in &web.headers {
        r.headers_mut().insert(name.clone(), value.clone());
    }
    r
}

async fn handle(
    ctx: Arc<Ctx>,
    port: Port,
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.begin_request();
    let r = answer(&ctx, port, &req).await;
    tracing::debug!(method = %req.method(), path = req.uri().path(), status = r.status().as_u16(), "request");
    state.end_request();
    Ok(r)
}

/// Serves one connection's requests over `io` (plain or TLS).
async fn serve_connection<I>(
    builder: http1::Builder,
    io: I,
    port: Port,
    state: Arc<State>,
    ctx: Arc<Ctx>,
    watcher: Watcher,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(Tracked::new(io, state.clone()));
    let service = service_fn(move |req| handle(ctx.clone(), port, state.clone(), req));
    watcher.watch(builder.serve_connection(io, service)).await
}

/// The listeners: `--listen`, and `--health-listen` if given.
#[derive(Debug)]
pub struct Listeners {
    /// Every endpoint.
    pub main: TcpListener,
    /// `/health` alone, plain HTTP.
    pub health: Option<TcpListener>,
}

async fn accept(listeners: &Listeners) -> (std::io::Result<(TcpStream, SocketAddr)>, Port) {
    let health = async {
        match &listeners.health {
            Some(l) => l.accept().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        a = listeners.main.accept() => (a, Port::Main),
        a = health => (a, Port::Health),
    }
}

/// Serves `app` on the listeners until `shutdown` resolves, then lets
/// in-flight requests finish for at most `limits.grace`. TLS, basic auth and
/// headers come from `web`, which may be reloaded meanwhile.
pub async fn serve(
    listeners: Listeners,
    app: Shared,
    web: Arc<Live>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let stats = lock(&app).connections();
    // The probe port has its own few places: clients of the main port, however
    // many and however slow, cannot keep the kubelet's probes out.
    let registries = [
        (Registry::new(stats.clone()), limits.max_connections),
        (Registry::new(stats.clone()), HEALTH_CONNECTIONS),
    ];
    let ctx = Arc::new(Ctx {
        app,
        web: web.clone(),
        auth: Auth::new(stats.clone()),
    });
    tokio::spawn(web.clone().watch());
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // hyper's header timeout also runs while a kept-alive connection waits
    // for its next request; the connection's watchdog times each phase.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .max_buf_size(16 * 1024)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (accepted, port) = tokio::select! {
            a = accept(&listeners) => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(conn) => conn,
            Err(e) => {
                // EMFILE and friends: wait a little rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (registry, cap) = &registries[usize::from(port == Port::Health)];
        match registry.make_room(*cap) {
            Room::Free => {}
            // The evicted connection's task closes its socket before this
            // one is served, so the cap holds.
            Room::Evicted => tokio::task::yield_now().await,
            Room::Full => {
                let refused = registry.refused();
                // Once, then every thousandth: a flood must not flood the log.
                if refused % 1000 == 1 {
                    tracing::warn!(%peer, max = cap, refused, "every connection is answering a request; closing new ones");
                }
                drop(stream);
                continue;
            }
        }
        let _ = stream.set_nodelay(true);
        let (place, evicted) = registry.enter();
        let watchdog = Watchdog::new(place.state.clone(), limits.timeouts);
        // The certificate in force when the connection came.
        let tls = match port {
            Port::Main => web.current().tls.clone().map(TlsAcceptor::from),
            Port::Health => None,
        };
        let served = {
            let (builder, state, ctx, watcher, stats) = (
                builder.clone(),
                place.state.clone(),
                ctx.clone(),
                graceful.watcher(),
                stats.clone(),
            );
            async move {
                let Some(tls) = tls else {
                    return serve_connection(builder, stream, port, state, ctx, watcher).await;
                };
                match tls.accept(stream).await {
                    Ok(stream) => {
                        serve_connection(builder, stream, port, state, ctx, watcher).await
                    }
                    Err(e) => {
                        stats.tls_failed();
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        Ok(())
                    }
                }
            }
        };
        tokio::spawn(async move {
            // In this order: an evicted connection goes before it can take
            // a new request, and the watchdog sees what serving changed.
            let why = tokio::select! {
                biased;
                Ok(()) = evicted => Some(Dropped::Evicted),
                ended = served => {
                    if let Err(e) = ended {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    None
                }
                why = watchdog => Some(why),
            };
            if let Some(why) = why {
                tracing::debug!(%peer, reason = why.name(), "closing the connection");
                place.dropped(why);
            }
            // Dropping the place (and the connection) closes the socket and
            // leaves the registry.
            drop(place);
        });
    }
    drop(listeners);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(limits.grace) => tracing::warn!("grace period over; closing connections"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Mode, Tracker};
    use http_body_util::BodyExt;
    use psi_core::expose::Families;
    use psi_core::target::Target;

    fn app(dir: &std::path::Path) -> Shared {
        let target = Target::at(dir.to_owned(), None).expect("a copy of a cgroup");
        let target = Tracker::new(Mode::Cgroup(target), None, Duration::from_secs(1), true);
        let triggers = crate::triggers::Triggers::start(Vec::new()).expect("no thread to start");
        Arc::new(Mutex::new(App::new(
            crate::app::Source::Sidecar(Box::new(target)),
            Families::default(),
            triggers,
            Arc::default(),
        )))
    }

    fn fake_cgroup() -> tempfile::TempDir {
        psi_testkit::files::dir(&[
            (
                "cpu.pressure",
                "some avg10=1.00 avg60=0.50 avg300=0.25 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            ),
            ("memory.pressure", "garbage\n"),
        ])
    }

    async fn body(r: Response<Full<Bytes>>) -> String {
        let bytes = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test(flavor = "current_thread")]
    async fn unknown_path_is_404_and_other_methods_405() {
        let dir = fake_cgroup();
        let app = app(dir.path());
        assert_eq!(
            respond(&app, &Method::GET, "/nope", false).status(),
            StatusCode::NOT_FOUND
        );
        let r = respond(&app, &Method::POST, "/metrics", false);
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        assert_eq!(
            respond(&app, &Method::DELETE, "/", false).status(),
            StatusCode::METHOD_NOT_ALLOWED
        );
    }

    #[tokio::test(flavor = "current_thread")]
    async fn metrics_show_what_was_read_and_explain_what_was_not() {
        let dir = fake_cgroup();
        let app = app(dir.path());
        let r = respond(&app, &Method::GET, "/metrics", false);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()[CONTENT_TYPE], psi_core::expose::CONTENT_TYPE);
        let text = body(r).await;
        assert!(text.contains("psi_cpu_waiting_seconds_total 2\n"), "{text}");
        assert!(
            text.contains(
                "cgroup_monitor_sc_monitored_cpu_psi{type=\"some\",window=\"10s\"} 1.00\n"
            )
        );
        assert!(
            !text.contains("psi_memory_waiting"),
            "unparsable memory is absent: {text}"
        );
        assert!(text.contains("psi_pressure_available{resource=\"memory\"} 0\n"));
        assert!(text.contains("psi_read_errors_total{resource=\"memory\",reason=\"parse\"} 1\n"));
        assert!(text.contains("psi_read_errors_total{resource=\"io\",reason=\"unsupported\"} 1\n"));
        assert!(text.contains("psi_target_up 1\n"));
        assert!(text.contains("psi_exporter_scrapes_total 1\n"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn head_has_get_headers_and_psi_is_json() {
        let dir = fake_cgroup();
        let app = app(dir.path());
        let r = respond(&app, &Method::HEAD, "/health", false);
        assert_eq!(r.status(), StatusCode::OK);
        let r = respond(&app, &Method::GET, "/psi", false);
        assert_eq!(r.headers()[CONTENT_TYPE], "application/json");
        let text = body(r).await;
        assert!(
            text.starts_with("{\"mode\":\"cgroup\",\"target\":{\"kind\":\"copy\",\"path\":"),
            "{text}"
        );
        assert!(
            text.contains("\"cpu\":{\"some\":{\"avg10\":1.00,"),
            "{text}"
        );
        assert!(
            text.contains("\"memory\":{\"reason\":\"parse\",\"message\":\"failed to parse "),
            "{text}"
        );
        let health = body(respond(&app, &Method::GET, "/health", false)).await;
        assert!(health.starts_with("ok: exporting "), "{health}");
        let home = body(respond(&app, &Method::GET, "/", false)).await;
        assert!(home.contains("<a href=\"metrics\">"), "{home}");
    }

    #[test]
    fn accept_encoding_gzip_forms() {
        let h = |v: &'static str| accepts_gzip(Some(&HeaderValue::from_static(v)));
        assert!(h("gzip"));
        assert!(h("deflate, GZIP;q=0.5"));
        assert!(h("*"));
        assert!(!h("gzip;q=0"));
        assert!(!h("identity"));
        assert!(!h("gzipx"));
        assert!(!accepts_gzip(None));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_large_body_is_gzipped_when_asked_a_small_one_never() {
        let dir = fake_cgroup();
        let app = app(dir.path());
        // The sidecar's body is under the threshold: sent as it is.
        let r = respond(&app, &Method::GET, "/metrics", true);
        assert!(r.headers().get(CONTENT_ENCODING).is_none());
        let big = vec![b'x'; GZIP_MIN * 2];
        let packed = gzip(&big).expect("gzip");
        assert!(packed.len() < big.len() / 10, "{} bytes", packed.len());
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&packed[..]), &mut back)
            .expect("gunzip");
        assert_eq!(back, big);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_systems_cpu_full_is_null_in_psi_and_absent_from_metrics() {
        // The kernel fills it with zeros: /psi says null, as `psi read` does,
        // and /metrics leaves it out.
        let proc_root = psi_testkit::files::dir(&[(
            "pressure/cpu",
            "some avg10=1.00 avg60=0.50 avg300=0.25 total=2000000\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        )]);
        let target = Tracker::new(
            Mode::System(proc_root.path().to_owned()),
            None,
            Duration::from_secs(1),
            true,
        );
        let triggers = crate::triggers::Triggers::start(Vec::new()).expect("no thread to start");
        let app = Arc::new(Mutex::new(App::new(
            crate::app::Source::Sidecar(Box::new(target)),
            Families::default(),
            triggers,
            Arc::default(),
        )));
        let text = body(respond(&app, &Method::GET, "/psi", false)).await;
        let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(json["target"]["kind"], "system", "{text}");
        assert_eq!(
            json["pressure"]["cpu"]["full"],
            serde_json::Value::Null,
            "{text}"
        );
        assert_eq!(
            json["pressure"]["cpu"]["some"]["total"], 2_000_000,
            "{text}"
        );
        let metrics = body(respond(&app, &Method::GET, "/metrics", false)).await;
        assert!(
            metrics.contains("psi_cpu_waiting_seconds_total 2\n"),
            "{metrics}"
        );
        assert!(!metrics.contains("psi_cpu_stalled"), "{metrics}");
    }
}
