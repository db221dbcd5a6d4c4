//! The web configuration file (`--web-config-file`), in the format every
//! Prometheus exporter reads through exporter-toolkit's `--web.config.file`:
//! TLS, client certificates, bcrypt basic auth and response headers.
//!
//! Strict: a field this exporter does not honour is an error that names it,
//! never ignored. Relative file names are taken from the configuration
//! file's directory, as exporter-toolkit does. [`Live`] holds the
//! configuration in force and reloads it when any of its files changes (a
//! certificate rotated in place) or on SIGHUP; a bad new file keeps the old
//! configuration.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use hyper::header::{HeaderName, HeaderValue};
use rustls::crypto::SupportedKxGroup;
use rustls::crypto::ring::{cipher_suite, kx_group};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

use crate::stats::Stats;

/// A web configuration file that cannot be used, and why (the message names
/// the field). At start the exporter exits 2 with it; at a reload the old
/// configuration stays.
#[derive(Debug, thiserror::Error)]
#[error("web config {}: {message}", path.display())]
pub struct ConfigError {
    /// The configuration file.
    pub path: PathBuf,
    /// What is wrong, naming the field.
    pub message: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tls_server_config: Option<TlsConfig>,
    http_server_config: Option<HttpConfig>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
    rate_limit: Option<serde_yaml_ng::Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsConfig {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
    client_auth_type: Option<String>,
    #[serde(default)]
    client_allowed_sans: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    #[serde(default)]
    cipher_suites: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
    #[serde(default)]
    curve_preferences: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpConfig {
    http2: Option<bool>,
    headers: Option<Headers>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Headers {
    #[serde(rename = "Content-Security-Policy")]
    content_security_policy: Option<String>,
    #[serde(rename = "X-Frame-Options")]
    x_frame_options: Option<String>,
    #[serde(rename = "X-Content-Type-Options")]
    x_content_type_options: Option<String>,
    #[serde(rename = "X-XSS-Protection")]
    x_xss_protection: Option<String>,
    #[serde(rename = "Strict-Transport-Security")]
    strict_transport_security: Option<String>,
}

/// A file the configuration was built from, as it was then: a change of
/// any of these (a Secret's atomic swap changes the inode) means a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    path: PathBuf,
    stamp: Option<(u64, u64, i64, i64, u64)>,
}

impl Seen {
    fn now(path: &Path) -> Seen {
        // Followed through symlinks: a Secret volume's files are links into
        // a `..data` directory that is swapped whole.
        let stamp = std::fs::metadata(path)
            .ok()
            .map(|m| (m.dev(), m.ino(), m.mtime(), m.mtime_nsec(), m.len()));
        Seen {
            path: path.to_owned(),
            stamp,
        }
    }
}

/// A web configuration, ready to serve with.
#[derive(Debug, Clone, Default)]
pub struct Web {
    /// TLS, when `tls_server_config` is given.
    pub tls: Option<Arc<ServerConfig>>,
    /// Basic auth users and their bcrypt hashes; empty: no authentication.
    pub users: BTreeMap<String, String>,
    /// Headers added to every response.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    client_auth: ClientAuth,
}

impl Web {
    /// Reads and checks the file at `path`, and every file it names, noting
    /// in `seen` each file as it was just before it was read, whether the
    /// load succeeds or not.
    fn load(path: &Path, seen: &mut Vec<Seen>) -> Result<Web, ConfigError> {
        let fail = |message: String| ConfigError {
            path: path.to_owned(),
            message,
        };
        seen.push(Seen::now(path));
        let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml_ng::from_str(&text).map_err(|e| fail(e.to_string()))?
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        if file.rate_limit.is_some() {
            return Err(fail(
                "rate_limit is not supported: remove it (the exporter caps connections itself, see --max-connections)".into(),
            ));
        }
        let tls = match &file.tls_server_config {
            Some(tls) => Some(Arc::new(
                server_config(tls, dir, seen)
                    .map_err(|m| fail(format!("tls_server_config: {m}")))?,
            )),
            None => None,
        };
        for (user, hash) in &file.basic_auth_users {
            hash.parse::<bcrypt::HashParts>().map_err(|e| {
                fail(format!(
                    "basic_auth_users: {user:?}: not a bcrypt hash ({e}): make one with `htpasswd -nBC 10 \"\" | tr -d ':\\n'`"
                ))
            })?;
        }
        let headers = match &file.http_server_config {
            Some(http) => {
                http_config(http).map_err(|m| fail(format!("http_server_config: {m}")))?
            }
            None => Vec::new(),
        };
        let client_auth = match &file.tls_server_config {
            // Checked by server_config already.
            Some(tls) => client_auth(tls.client_auth_type.as_deref()).unwrap_or_default(),
            None => ClientAuth::None,
        };
        Ok(Web {
            tls,
            users: file.basic_auth_users,
            headers,
            client_auth,
        })
    }

    /// How `new` would lower protection from `self`, if it would: a reload
    /// never does that (restart for it), so that a half-written file cannot
    /// turn authentication off.
    fn lowered_by(&self, new: &Web) -> Option<&'static str> {
        if self.tls.is_some() != new.tls.is_some() {
            return Some("TLS cannot be switched on or off by a reload");
        }
        if !self.users.is_empty() && new.users.is_empty() {
            return Some("basic auth cannot be turned off by a reload");
        }
        if new.client_auth < self.client_auth {
            return Some("client certificates cannot be verified less by a reload");
        }
        None
    }
}

/// Reads a PEM value given inline (`inline`) or as a file (`file`, relative
/// to `dir`), exactly one of them.
fn pem(
    inline: Option<&String>,
    file: Option<&PathBuf>,
    names: (&str, &str),
    dir: &Path,
    seen: &mut Vec<Seen>,
) -> Result<Option<Vec<u8>>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "{} and {} are both set: give one",
            names.0, names.1
        )),
        (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
        (None, Some(file)) => {
            let path = dir.join(file);
            seen.push(Seen::now(&path));
            std::fs::read(&path)
                .map(Some)
                .map_err(|e| format!("{} {}: {e}", names.1, path.display()))
        }
        (None, None) => Ok(None),
    }
}

/// How clients must prove who they are, weakest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
enum ClientAuth {
    #[default]
    None,
    VerifyIfGiven,
    Require,
}

fn client_auth(name: Option<&str>) -> Result<ClientAuth, String> {
    match name.unwrap_or("NoClientCert") {
        "NoClientCert" => Ok(ClientAuth::None),
        "VerifyClientCertIfGiven" => Ok(ClientAuth::VerifyIfGiven),
        "RequireAndVerifyClientCert" => Ok(ClientAuth::Require),
        odd @ ("RequestClientCert" | "RequireAnyClientCert") => Err(format!(
            "client_auth_type {odd} is not supported: it accepts certificates without verifying them; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
        )),
        other => Err(format!(
            "client_auth_type {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
        )),
    }
}

fn version(name: &str, field: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match name {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(format!(
            "{field} {name} is not supported: TLS 1.2 is the oldest version served"
        )),
        other => Err(format!("{field} {other:?} is not one of TLS12, TLS13")),
    }
}

/// The TLS 1.2 suites by their Go names (TLS 1.3's are always on, as in Go).
fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    Ok(match name {
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        }
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
        }
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" => {
            cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        other => {
            return Err(format!(
                "cipher_suites: {other} is not supported (only the ECDHE AEAD suites are: TLS_ECDHE_{{ECDSA,RSA}}_WITH_{{AES_128_GCM_SHA256,AES_256_GCM_SHA384,CHACHA20_POLY1305}})"
            ));
        }
    })
}

fn curve(name: &str) -> Result<&'static dyn SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        other => Err(format!(
            "curve_preferences: {other} is not supported (X25519, CurveP256, CurveP384 are)"
        )),
    }
}

fn server_config(t: &TlsConfig, dir: &Path, seen: &mut Vec<Seen>) -> Result<ServerConfig, String> {
    if !t.client_allowed_sans.is_empty() {
        return Err(
            "client_allowed_sans is not supported: remove it, or verify clients by their CA alone"
                .into(),
        );
    }
    let cert = pem(
        t.cert.as_ref(),
        t.cert_file.as_ref(),
        ("cert", "cert_file"),
        dir,
        seen,
    )?
    .ok_or("cert_file (or cert) is missing")?;
    let key = pem(
        t.key.as_ref(),
        t.key_file.as_ref(),
        ("key", "key_file"),
        dir,
        seen,
    )?
    .ok_or("key_file (or key) is missing")?;
    let ca = pem(
        t.client_ca.as_ref(),
        t.client_ca_file.as_ref(),
        ("client_ca", "client_ca_file"),
        dir,
        seen,
    )?;
    let auth = client_auth(t.client_auth_type.as_deref())?;

    let certs = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cert_file: not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("cert_file: no certificate in it".into());
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| format!("key_file: no PEM private key: {e}"))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if !t.cipher_suites.is_empty() {
        let mut suites = t
            .cipher_suites
            .iter()
            .map(|n| cipher_suite(n))
            .collect::<Result<Vec<_>, _>>()?;
        suites.extend(
            provider
                .cipher_suites
                .iter()
                .filter(|s| s.version() == &rustls::version::TLS13),
        );
        provider.cipher_suites = suites;
    }
    if !t.curve_preferences.is_empty() {
        provider.kx_groups = t
            .curve_preferences
            .iter()
            .map(|n| curve(n))
            .collect::<Result<Vec<_>, _>>()?;
    }
    let provider = Arc::new(provider);
    let min = version(t.min_version.as_deref().unwrap_or("TLS12"), "min_version")?;
    let max = version(t.max_version.as_deref().unwrap_or("TLS13"), "max_version")?;
    let versions: Vec<&'static SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| {
                (u16::from(min.version)..=u16::from(max.version)).contains(&u16::from(v.version))
            })
            .collect();
    if versions.is_empty() {
        return Err("min_version is above max_version".into());
    }
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("min_version, max_version, cipher_suites: {e}"))?;
    let builder = match (auth, ca) {
        (ClientAuth::None, Some(_)) => {
            return Err("client_ca_file is set but client_auth_type is NoClientCert: set client_auth_type: RequireAndVerifyClientCert".into());
        }
        (ClientAuth::None, None) => builder.with_no_client_auth(),
        (_, None) => return Err("client_auth_type verifies client certificates: client_ca_file (or client_ca) is missing".into()),
        (auth, Some(ca)) => {
            let mut roots = RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(&ca) {
                let c = c.map_err(|e| format!("client_ca_file: not PEM certificates: {e}"))?;
                roots.add(c).map_err(|e| format!("client_ca_file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth == ClientAuth::VerifyIfGiven {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| format!("client_ca_file: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file, key_file: {e}"))?;
    config.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn http_config(h: &HttpConfig) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    if h.http2 == Some(true) {
        return Err("http2: true is not supported: the exporter serves HTTP/1.1; remove the line or set it to false".into());
    }
    let Some(headers) = &h.headers else {
        return Ok(Vec::new());
    };
    if let Some(v) = &headers.x_frame_options
        && !v.is_empty()
        && !v.eq_ignore_ascii_case("deny")
        && !v.eq_ignore_ascii_case("sameorigin")
    {
        return Err(format!(
            "headers: X-Frame-Options {v:?} is not deny or sameorigin"
        ));
    }
    if let Some(v) = &headers.x_content_type_options
        && !v.is_empty()
        && !v.eq_ignore_ascii_case("nosniff")
    {
        return Err(format!(
            "headers: X-Content-Type-Options {v:?} is not nosniff"
        ));
    }
    let all = [
        ("content-security-policy", &headers.content_security_policy),
        ("x-frame-options", &headers.x_frame_options),
        ("x-content-type-options", &headers.x_content_type_options),
        ("x-xss-protection", &headers.x_xss_protection),
        (
            "strict-transport-security",
            &headers.strict_transport_security,
        ),
    ];
    let mut out = Vec::new();
    for (name, value) in all {
        let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        let value = HeaderValue::from_str(value)
            .map_err(|_| format!("headers: {name}: {value:?} is not a valid header value"))?;
        out.push((HeaderName::from_static(name), value));
    }
    Ok(out)
}

/// The web configuration in force, reloaded when its files change or on
/// SIGHUP.
#[derive(Debug)]
pub struct Live {
    path: Option<PathBuf>,
    current: RwLock<Arc<Web>>,
    /// The files of the last load, good or bad, as they were just before
    /// it read them: a change from these means a reload.
    attempted: Mutex<Vec<Seen>>,
    stats: Arc<Stats>,
}

/// How often the files are looked at for a change (a `stat` each).
pub const POLL: Duration = Duration::from_secs(2);

impl Live {
    /// The configuration in the file at `path`, counting its reloads in
    /// `stats`.
    pub fn load(path: &Path, stats: Arc<Stats>) -> Result<Arc<Live>, ConfigError> {
        let mut seen = Vec::new();
        let web = Web::load(path, &mut seen)?;
        stats.web_config.store(true, Ordering::Relaxed);
        stats.last_reload_ok.store(true, Ordering::Relaxed);
        Ok(Arc::new(Live {
            path: Some(path.to_owned()),
            current: RwLock::new(Arc::new(web)),
            attempted: Mutex::new(seen),
            stats,
        }))
    }

    /// No file: plain HTTP, no authentication.
    pub fn plain(stats: Arc<Stats>) -> Arc<Live> {
        Arc::new(Live {
            path: None,
            current: RwLock::new(Arc::new(Web::default())),
            attempted: Mutex::new(Vec::new()),
            stats,
        })
    }

    /// The files of the last load as they are now.
    fn restamp(&self) -> Vec<Seen> {
        let attempted = self
            .attempted
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        attempted.iter().map(|s| Seen::now(&s.path)).collect()
    }

    /// Whether a file of the last load has changed since it was read.
    fn changed(&self, now: &[Seen]) -> bool {
        *self
            .attempted
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            != now
    }

    /// The configuration in force now.
    pub fn current(&self) -> Arc<Web> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the file again; keeps the old configuration if the new one is
    /// bad or would lower protection ([`Web::lowered_by`]). Either way the
    /// files as they were read become the ones to watch, so that a bad file
    /// is tried (and logged) once, not at every poll.
    pub fn reload(&self, why: &str) {
        let Some(path) = &self.path else { return };
        let mut seen = Vec::new();
        let loaded = Web::load(path, &mut seen);
        *self
            .attempted
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = seen;
        let ok = match loaded {
            Ok(web) => match self.current().lowered_by(&web) {
                Some(refusal) => {
                    tracing::error!(why, file = %path.display(), "web config: {refusal}: restart the exporter to do it; keeping the old configuration");
                    false
                }
                None => {
                    *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(web);
                    tracing::info!(why, file = %path.display(), "web config reloaded");
                    true
                }
            },
            Err(e) => {
                tracing::error!(why, "{e}; keeping the old configuration");
                false
            }
        };
        let n = if ok {
            &self.stats.reloads_ok
        } else {
            &self.stats.reloads_failed
        };
        n.fetch_add(1, Ordering::Relaxed);
        self.stats.last_reload_ok.store(ok, Ordering::Relaxed);
    }

    /// Reloads on SIGHUP, and when the files have changed and then stayed
    /// the same for one [`POLL`] (a file being written is not read half
    /// done), forever.
    pub async fn watch(self: Arc<Self>) {
        use tokio::signal::unix::{SignalKind, signal};
        if self.path.is_none() {
            return;
        }
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP; the web config is still reloaded when it changes");
                None
            }
        };
        let mut pending: Option<Vec<Seen>> = None;
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hangup = async {
                match hup.as_mut() {
                    Some(h) => h.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => self.reload("SIGHUP"),
                _ = tick.tick() => {
                    let now = self.restamp();
                    if !self.changed(&now) {
                        pending = None;
                    } else if pending.as_ref() == Some(&now) {
                        self.reload("a file changed");
                        pending = None;
                    } else {
                        pending = Some(now);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web(users: &[&str], client_auth: ClientAuth) -> Web {
        Web {
            users: users
                .iter()
                .map(|u| ((*u).to_owned(), String::new()))
                .collect(),
            client_auth,
            ..Web::default()
        }
    }

    #[test]
    fn a_reload_may_raise_protection_never_lower_it() {
        let open = web(&[], ClientAuth::None);
        let auth = web(&["prometheus"], ClientAuth::None);
        let mtls = web(&["prometheus"], ClientAuth::Require);
        assert_eq!(open.lowered_by(&auth), None, "turning auth on");
        assert_eq!(auth.lowered_by(&mtls), None, "requiring certificates");
        assert_eq!(auth.lowered_by(&web(&["other"], ClientAuth::None)), None);
        assert!(auth.lowered_by(&open).is_some(), "emptying the users");
        assert!(
            mtls.lowered_by(&auth).is_some(),
            "certificates no longer required"
        );
        assert!(
            mtls.lowered_by(&web(&["prometheus"], ClientAuth::VerifyIfGiven))
                .is_some()
        );
    }

    #[test]
    fn headers_are_checked_as_exporter_toolkit_checks_them() {
        let config = |yaml: &str| -> Result<Vec<(HeaderName, HeaderValue)>, String> {
            let http: HttpConfig = serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())?;
            http_config(&http)
        };
        let ok = config("headers:\n  X-Frame-Options: DENY\n  X-Content-Type-Options: nosniff\n  Content-Security-Policy: \"\"\n")
            .expect("valid headers");
        let names: Vec<_> = ok.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["x-frame-options", "x-content-type-options"],
            "a blank one is unset"
        );
        for bad in [
            "headers:\n  X-Frame-Options: allow-from x\n",
            "headers:\n  X-Content-Type-Options: sniff\n",
            "headers:\n  Strict-Transport-Security: \"a\\nb\"\n",
            "headers:\n  Server: psi\n",
            "http2: true\n",
        ] {
            assert!(config(bad).is_err(), "{bad}");
        }
        assert!(config("http2: false\n").is_ok());
    }
}
