//! The HTTP server's own counters, shown in `/metrics`: connections, TLS
//! handshakes, authentication, web configuration reloads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use psi_core::expose::{Encoder, Value};

/// Why the exporter closed a connection itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Idle (or still reading its headers) when a new connection needed its
    /// place at the cap.
    Evicted = 0,
    /// A new connection at the cap, with every connection busy.
    Refused = 1,
    /// Its headers took longer than the header timeout.
    HeaderTimeout = 2,
    /// Its response took longer than the write timeout.
    WriteTimeout = 3,
    /// Idle for longer than the idle timeout.
    IdleTimeout = 4,
}

impl Dropped {
    /// Every reason, in the order of their values.
    pub const ALL: [Dropped; 5] = [
        Dropped::Evicted,
        Dropped::Refused,
        Dropped::HeaderTimeout,
        Dropped::WriteTimeout,
        Dropped::IdleTimeout,
    ];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Dropped::Evicted => "evicted",
            Dropped::Refused => "refused",
            Dropped::HeaderTimeout => "header_timeout",
            Dropped::WriteTimeout => "write_timeout",
            Dropped::IdleTimeout => "idle_timeout",
        }
    }
}

/// Why a request was not let through basic auth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// No `Authorization: Basic` header, or one that does not decode.
    Missing = 0,
    /// An unknown user or a wrong password.
    Wrong = 1,
    /// Too many new credentials to check at once (bcrypt is slow by design).
    Busy = 2,
}

impl Denied {
    /// Every reason, in the order of their values.
    pub const ALL: [Denied; 3] = [Denied::Missing, Denied::Wrong, Denied::Busy];

    /// The `reason` label.
    pub fn name(self) -> &'static str {
        match self {
            Denied::Missing => "missing",
            Denied::Wrong => "wrong",
            Denied::Busy => "busy",
        }
    }
}

/// The counters, shared by the server, its connections and the app.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    open: AtomicU64,
    dropped: [AtomicU64; Dropped::ALL.len()],
    tls_failed: AtomicU64,
    denied: [AtomicU64; Denied::ALL.len()],
    /// Whether a web configuration file is in use (its families are shown).
    pub(crate) web_config: AtomicBool,
    /// Reloads of the web configuration file that took.
    pub(crate) reloads_ok: AtomicU64,
    /// Reloads refused (a bad file, or one that would lower protection).
    pub(crate) reloads_failed: AtomicU64,
    /// Whether the last load of the web configuration file took.
    pub(crate) last_reload_ok: AtomicBool,
}

fn add(n: &AtomicU64) {
    n.fetch_add(1, Ordering::Relaxed);
}

fn get(n: &AtomicU64) -> u64 {
    n.load(Ordering::Relaxed)
}

impl Stats {
    /// A connection was accepted.
    pub fn opened(&self) {
        add(&self.accepted);
        add(&self.open);
    }

    /// A connection ended.
    pub fn closed(&self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The exporter closed a connection for `why`.
    pub fn dropped(&self, why: Dropped) {
        add(&self.dropped[why as usize]);
    }

    /// Connections closed by the exporter for `why`, so far.
    pub fn dropped_for(&self, why: Dropped) -> u64 {
        get(&self.dropped[why as usize])
    }

    /// A TLS handshake failed.
    pub fn tls_failed(&self) {
        add(&self.tls_failed);
    }

    /// A request was refused by basic auth.
    pub fn denied(&self, why: Denied) {
        add(&self.denied[why as usize]);
    }

    /// Writes the server's families.
    pub fn write(&self, enc: &mut Encoder<'_>) {
        enc.header(psi_core::header!(
            "psi_exporter_connections_accepted_total",
            counter,
            "Connections accepted by the HTTP server"
        ));
        let v = Value::Int(get(&self.accepted));
        enc.sample("psi_exporter_connections_accepted_total", &[], &[], v);
        enc.header(psi_core::header!(
            "psi_exporter_connections",
            gauge,
            "Connections open now"
        ));
        let v = Value::Int(get(&self.open));
        enc.sample("psi_exporter_connections", &[], &[], v);
        enc.header(psi_core::header!(
            "psi_exporter_connections_dropped_total",
            counter,
            "Connections the exporter closed itself, by reason (evicted, refused, header_timeout, write_timeout, idle_timeout)"
        ));
        for why in Dropped::ALL {
            let v = Value::Int(self.dropped_for(why));
            let labels = [("reason", why.name())];
            enc.sample("psi_exporter_connections_dropped_total", &labels, &[], v);
        }
        if !self.web_config.load(Ordering::Relaxed) {
            return;
        }
        enc.header(psi_core::header!(
            "psi_exporter_tls_handshake_errors_total",
            counter,
            "TLS handshakes that failed (a client without a valid certificate, a plain-HTTP client, a scanner)"
        ));
        let v = Value::Int(get(&self.tls_failed));
        enc.sample("psi_exporter_tls_handshake_errors_total", &[], &[], v);
        enc.header(psi_core::header!(
            "psi_exporter_auth_failures_total",
            counter,
            "Requests refused by basic auth, by reason (missing, wrong, busy)"
        ));
        for why in Denied::ALL {
            let v = Value::Int(get(&self.denied[why as usize]));
            enc.sample(
                "psi_exporter_auth_failures_total",
                &[("reason", why.name())],
                &[],
                v,
            );
        }
        enc.header(psi_core::header!(
            "psi_exporter_web_config_last_reload_successful",
            gauge,
            "Whether the last load of the web configuration file succeeded"
        ));
        let v = Value::Int(u64::from(self.last_reload_ok.load(Ordering::Relaxed)));
        enc.sample(
            "psi_exporter_web_config_last_reload_successful",
            &[],
            &[],
            v,
        );
        enc.header(psi_core::header!(
            "psi_exporter_web_config_reloads_total",
            counter,
            "Reloads of the web configuration file, by result (success, failure)"
        ));
        for (result, n) in [
            ("success", &self.reloads_ok),
            ("failure", &self.reloads_failed),
        ] {
            let v = Value::Int(get(n));
            enc.sample(
                "psi_exporter_web_config_reloads_total",
                &[("result", result)],
                &[],
                v,
            );
        }
    }
}
