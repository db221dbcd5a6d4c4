//! The exporter's state and what each endpoint answers, without any HTTP.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use psi_core::expose::{self, Encoder, Families, Labels, Snapshot, Value};
use psi_core::json::{self, Object};
use psi_core::read::ErrorCounts;

use crate::node::NodeSource;
use crate::target::{Mode, Scraped, Tracker};
use crate::triggers::Triggers;

/// What the exporter exports.
#[derive(Debug)]
pub enum Source {
    /// One target, the Go sidecar's drop-in.
    Sidecar(Box<Tracker>),
    /// Every selected cgroup of a node.
    Node(Box<NodeSource>),
}

/// The `/metrics` bodies, reused: hyper is handed each one as it is, and it
/// comes back here when hyper drops it. A node's body is megabytes; a fresh
/// one a scrape would be allocated and given back to the system every time
/// (or, once the allocator has raised its mmap threshold, kept twice).
#[derive(Debug, Clone, Default)]
struct Bodies(Arc<Mutex<Vec<Vec<u8>>>>);

/// A body on its way out, returned to its [`Bodies`] when dropped.
struct Lent {
    body: Vec<u8>,
    home: Bodies,
}

impl AsRef<[u8]> for Lent {
    fn as_ref(&self) -> &[u8] {
        &self.body
    }
}

impl Drop for Lent {
    fn drop(&mut self) {
        let mut body = std::mem::take(&mut self.body);
        body.clear();
        let mut free = self.home.0.lock().unwrap_or_else(PoisonError::into_inner);
        // Two at most: one being written, one being sent.
        if free.len() < 2 {
            free.push(body);
        }
    }
}

impl Bodies {
    /// An empty buffer, one given back if there is one.
    fn take(&self) -> Vec<u8> {
        let mut free = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        free.pop().unwrap_or_else(|| Vec::with_capacity(16 * 1024))
    }

    /// `body` as the bytes hyper sends, to come back here afterwards.
    fn send(&self, body: Vec<u8>) -> Bytes {
        Bytes::from_owner(Lent {
            body,
            home: self.clone(),
        })
    }
}

/// Everything the endpoints need: the target, the counters, reused buffers.
#[derive(Debug)]
pub struct App {
    source: Source,
    families: Families,
    read_errors: ErrorCounts,
    scrapes: u64,
    bodies: Bodies,
    triggers: Triggers,
    connections: Arc<crate::stats::Stats>,
}

impl App {
    /// An exporter of `source` writing `families`, and the HTTP server's
    /// counters `connections`.
    pub fn new(
        source: Source,
        families: Families,
        triggers: Triggers,
        connections: Arc<crate::stats::Stats>,
    ) -> Self {
        let app = App {
            source,
            families,
            read_errors: ErrorCounts::default(),
            scrapes: 0,
            bodies: Bodies::default(),
            triggers,
            connections,
        };
        app.follow_target();
        app
    }

    /// The HTTP server's counters, written in `/metrics`.
    pub fn connections(&self) -> Arc<crate::stats::Stats> {
        self.connections.clone()
    }

    /// Points the triggers at the current target (they re-arm when it changes).
    fn follow_target(&self) {
        // Without triggers there is nothing to point: no path clone per scrape.
        let Source::Sidecar(target) = &self.source else {
            return;
        };
        if self.triggers.is_empty() {
            return;
        }
        let place = target
            .active()
            .map(|a| (a.target.dir.clone(), a.target.kind));
        self.triggers.follow(place);
    }

    /// Refreshes the sidecar's target and reads it, counting failures by
    /// resource and reason.
    fn read(&mut self) -> Option<Scraped> {
        let Source::Sidecar(target) = &mut self.source else {
            return None;
        };
        target.refresh();
        let scraped = target.read();
        self.follow_target();
        let scraped = scraped?;
        self.read_errors.count_reading(&scraped.reading);
        Some(scraped)
    }

    /// The `/metrics` body, in the Prometheus text format.
    pub fn metrics(&mut self) -> Bytes {
        let start = Instant::now();
        self.scrapes += 1;
        let mut buf = self.bodies.take();
        let mut enc = Encoder::new(&mut buf);
        if let Source::Node(source) = &mut self.source {
            let node = source.node();
            node.read_counting(&mut self.read_errors);
            node.write(&mut enc, &self.families);
            source.write_own(&mut enc);
        } else {
            let scraped = self.read();
            let up = scraped.as_ref().is_some_and(|s| s.reading.any_ok());
            let snapshot = Snapshot {
                labels: Labels::none(),
                pressure: scraped
                    .as_ref()
                    .map(|s| s.reading.values())
                    .unwrap_or_default(),
                cpu_stat: scraped.as_ref().and_then(|s| s.cpu_stat),
            };
            expose::write_pressure(&mut enc, &self.families, &[snapshot]);
            self.write_target(&mut enc, up);
        }
        self.write_own(&mut enc);
        enc.header(psi_core::header!(
            "psi_exporter_scrape_duration_seconds",
            gauge,
            "Time this scrape took to read the target and write the metrics"
        ));
        let took = start.elapsed().as_secs_f64();
        enc.sample(
            "psi_exporter_scrape_duration_seconds",
            &[],
            &[],
            Value::Float(took),
        );
        self.bodies.send(buf)
    }

    /// The sidecar's own families: whether the target is up, what it is,
    /// how often it was found, its triggers.
    fn write_target(&self, enc: &mut Encoder<'_>, up: bool) {
        let Source::Sidecar(target) = &self.source else {
            return;
        };
        enc.header(psi_core::header!(
            "psi_target_up",
            gauge,
            "Whether the monitored target is known and at least one of its pressure files was read"
        ));
        enc.sample("psi_target_up", &[], &[], Value::Int(u64::from(up)));
        if let Some(active) = target.active() {
            enc.header(psi_core::header!(
                "psi_target_info",
                gauge,
                "The monitored target: how it was chosen, its directory and its processes"
            ));
            let path = active.target.dir.to_string_lossy();
            let pids = pid_list(&active.target.pids);
            let labels = [
                ("mode", target.mode().name()),
                ("path", path.as_ref()),
                ("pids", pids.as_str()),
            ];
            enc.sample("psi_target_info", &labels, &[], Value::Int(1));
        }
        if matches!(target.mode(), Mode::Discover(_)) {
            enc.header(psi_core::header!(
                "psi_target_discoveries_total",
                counter,
                "Times the monitored container was found by its pid_flag (it restarts: this rises)"
            ));
            let n = target.discoveries;
            enc.sample("psi_target_discoveries_total", &[], &[], Value::Int(n));
            enc.header(psi_core::header!(
                "psi_discovery_refused_flags",
                gauge,
                "Other processes' pid_flag files refused at the last search that found nothing, by reason (fifo, device, too_large, not_utf8, ...)"
            ));
            for &(reason, n) in target.refused() {
                let labels = [("reason", reason)];
                enc.sample("psi_discovery_refused_flags", &labels, &[], Value::Int(n));
            }
        }
        if !self.triggers.is_empty() {
            enc.header(psi_core::header!(
                "psi_trigger_events_total",
                counter,
                "Kernel PSI trigger events on the target, by trigger (resource, line, stall, window)"
            ));
            let mut armed = Vec::new();
            for (spec, is_armed, fired) in self.triggers.counts() {
                let spec = spec.to_string();
                enc.sample(
                    "psi_trigger_events_total",
                    &[("trigger", &spec)],
                    &[],
                    Value::Int(fired),
                );
                armed.push((spec, is_armed));
            }
            enc.header(psi_core::header!(
                "psi_trigger_armed",
                gauge,
                "Whether the trigger is registered with the kernel on the current target"
            ));
            for (spec, is_armed) in &armed {
                let v = Value::Int(u64::from(*is_armed));
                enc.sample("psi_trigger_armed", &[("trigger", spec)], &[], v);
            }
        }
    }

    /// The exporter's own families in both modes: errors, scrapes, build,
    /// connections.
    fn write_own(&self, enc: &mut Encoder<'_>) {
        expose::write_read_errors(enc, &self.read_errors);
        enc.header(psi_core::header!(
            "psi_exporter_scrapes_total",
            counter,
            "Requests for /metrics served"
        ));
        enc.sample(
            "psi_exporter_scrapes_total",
            &[],
            &[],
            Value::Int(self.scrapes),
        );
        enc.header(psi_core::header!(
            "psi_exporter_build_info",
            gauge,
            "The exporter's version, always 1"
        ));
        let version = [("version", env!("CARGO_PKG_VERSION"))];
        enc.sample("psi_exporter_build_info", &version, &[], Value::Int(1));
        self.connections.write(enc);
    }

    /// The `/psi` body: the current reading as JSON, for debugging, in the
    /// envelope `psi read --format json` writes ([`psi_core::json`]), with
    /// the `mode` first and the discovery `error` while no target is known.
    pub fn psi_json(&mut self) -> Bytes {
        let scraped = self.read();
        let mut out = Vec::with_capacity(1024);
        let mut obj = Object::new(&mut out);
        match &mut self.source {
            Source::Sidecar(target) => {
                obj.string("mode", Some(target.mode().name()));
                let active = target.active();
                json::target(&mut obj, active.map(|a| &a.target));
                let error = target.last_error().filter(|_| active.is_none());
                obj.string("error", error);
                json::reading(&mut obj, scraped.as_ref().map(|s| &s.reading));
            }
            Source::Node(source) => {
                source.node();
                obj.string("mode", Some("node"));
                source.json(&mut obj);
            }
        }
        obj.end();
        out.push(b'\n');
        Bytes::from(out)
    }

    /// The `/health` body: the server answers, and this says the target's state.
    pub fn health(&mut self) -> Bytes {
        let text = match &mut self.source {
            Source::Node(source) => source.health(),
            Source::Sidecar(target) => sidecar_health(target),
        };
        // One line, whatever a path holds: a cgroup name may carry a
        // carriage return or a tab, and a probe's reader must not be shown
        // a second line that the exporter did not write.
        let mut line = one_line(text.trim_end());
        line.push('\n');
        Bytes::from(line)
    }

    /// The `/` page: links and the current target.
    pub fn homepage(&mut self) -> Bytes {
        let health = self.health();
        let state = html_escape(String::from_utf8_lossy(&health).trim());
        Bytes::from(format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>psi-exporter</title></head>\n\
             <body><h1>psi-exporter {}</h1>\n<p>Linux pressure stall information as Prometheus metrics.</p>\n\
             <p>Target: {state}</p>\n<ul>\n<li><a href=\"metrics\">/metrics</a>: Prometheus metrics</li>\n\
             <li><a href=\"psi\">/psi</a>: current readings as JSON</li>\n\
             <li><a href=\"health\">/health</a>: health probe</li>\n</ul></body></html>\n",
            env!("CARGO_PKG_VERSION")
        ))
    }
}

/// The sidecar's `/health` text: the target, or why there is none.
fn sidecar_health(target: &mut Tracker) -> String {
    target.refresh();
    match (target.active(), target.last_error()) {
        (Some(active), _) => format!(
            "ok: exporting {} ({}{})",
            active.target.dir.display(),
            target.mode().name(),
            if active.target.pids.is_empty() {
                String::new()
            } else {
                format!(", pids {}", pid_list(&active.target.pids))
            }
        ),
        (None, Some(e)) => format!("ok: serving, but the monitored container is not found: {e}"),
        (None, None) => "ok: serving, searching for the monitored container".to_owned(),
    }
}

fn pid_list(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `s` with each character that `escape` has an escape for replaced by it.
fn escaped(s: &str, escape: impl Fn(char) -> Option<Cow<'static, str>>) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match escape(c) {
            Some(e) => out.push_str(&e),
            None => out.push(c),
        }
    }
    out
}

/// Everything HTML gives a meaning to, in text and in attribute values.
fn html_escape(s: &str) -> String {
    escaped(s, |c| {
        Some(Cow::Borrowed(match c {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            '"' => "&quot;",
            '\'' => "&#39;",
            _ => return None,
        }))
    })
}

/// `/health`'s escaping: a backslash doubled, `\n`, `\r` and `\t` as
/// those two characters, any other control character as `\xNN` (`\u{NNNN}`
/// above U+00FF), so that the body is one line of printable text.
fn one_line(s: &str) -> String {
    escaped(s, |c| {
        let code = u32::from(c);
        Some(match c {
            '\\' => Cow::Borrowed("\\\\"),
            '\n' => Cow::Borrowed("\\n"),
            '\r' => Cow::Borrowed("\\r"),
            '\t' => Cow::Borrowed("\\t"),
            c if c.is_control() && code <= 0xff => Cow::Owned(format!("\\x{code:02x}")),
            c if c.is_control() => Cow::Owned(format!("\\u{{{code:04x}}}")),
            _ => return None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_text_is_one_printable_line() {
        assert_eq!(one_line("a\\b\nc\rd\te"), "a\\\\b\\nc\\rd\\te");
        assert_eq!(one_line("\u{1}\u{7f}\u{85}é"), "\\x01\\x7f\\x85é");
        assert_eq!(one_line("plain /sys/fs/cgroup"), "plain /sys/fs/cgroup");
    }

    #[test]
    fn html_escapes_what_html_reads() {
        assert_eq!(
            html_escape("<script>\"a\\b'&"),
            "&lt;script&gt;&quot;a\\b&#39;&amp;"
        );
    }
}
