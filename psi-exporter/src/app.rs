//! The exporter's state and what each endpoint answers, without any HTTP.

use std::time::Instant;

use bytes::Bytes;
use psi_core::Resource;
use psi_core::expose::{self, Encoder, Families, Snapshot, Value};
use psi_core::json;
use psi_core::read::ReadError;

use crate::target::{Mode, Readings, Target};
use crate::triggers::{Place, Triggers};

/// Everything the endpoints need: the target, the counters, a reused buffer.
#[derive(Debug)]
pub struct App {
    target: Target,
    families: Families,
    read_errors: [[u64; ReadError::REASONS.len()]; 4],
    scrapes: u64,
    buf: Vec<u8>,
    triggers: Triggers,
}

impl App {
    /// An exporter of `target` writing `families`.
    pub fn new(target: Target, families: Families, triggers: Triggers) -> Self {
        let app = App {
            target,
            families,
            read_errors: [[0; ReadError::REASONS.len()]; 4],
            scrapes: 0,
            buf: Vec::with_capacity(16 * 1024),
            triggers,
        };
        app.follow_target();
        app
    }

    /// Points the triggers at the current target (they re-arm when it changes).
    fn follow_target(&self) {
        // Without triggers there is nothing to point: no path clone per scrape.
        if self.triggers.is_empty() {
            return;
        }
        let place = self.target.current().map(|c| match self.target.mode() {
            Mode::System(proc_root) => Place::System(proc_root.clone()),
            _ => Place::Cgroup(c.path.clone()),
        });
        self.triggers.follow(place);
    }

    /// Refreshes the target and reads it, counting failures by resource and reason.
    fn read(&mut self) -> Option<Readings> {
        self.target.refresh();
        let readings = self.target.read();
        self.follow_target();
        let readings = readings?;
        for (resource, result) in Resource::ALL.iter().zip(&readings.pressure) {
            if let Err(e) = result
                && let Some(n) = self.read_errors[resource.index()].get_mut(e.reason_index())
            {
                *n += 1;
            }
        }
        Some(readings)
    }

    /// The `/metrics` body, in the Prometheus text format.
    pub fn metrics(&mut self) -> Bytes {
        let start = Instant::now();
        self.scrapes += 1;
        let readings = self.read();
        let up = readings
            .as_ref()
            .is_some_and(|r| r.pressure.iter().any(Result::is_ok));
        let snapshot = Snapshot {
            labels: &[],
            pressure: readings.as_ref().map(Readings::values).unwrap_or_default(),
            cpu_stat: readings.as_ref().and_then(|r| r.cpu_stat),
            system: self.target.is_system(),
        };
        let mut buf = std::mem::take(&mut self.buf);
        let mut enc = Encoder::new(&mut buf);
        expose::write_pressure(&mut enc, &self.families, &[snapshot]);
        self.write_own(&mut enc, up);
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
        // The body is handed to hyper as it is; the next scrape starts from a
        // buffer of the same size, so it grows at most once.
        self.buf = Vec::with_capacity(buf.len().next_power_of_two());
        Bytes::from(buf)
    }

    /// The exporter's own families: errors, target, scrapes, build.
    fn write_own(&self, enc: &mut Encoder<'_>, up: bool) {
        enc.header(psi_core::header!(
            "psi_read_errors_total",
            counter,
            "Failed reads of a pressure file, by resource and reason (unsupported, disabled, gone, permission, io, parse)"
        ));
        for resource in Resource::ALL {
            for (reason, &n) in ReadError::REASONS
                .iter()
                .zip(&self.read_errors[resource.index()])
            {
                if n > 0 {
                    let labels = [("resource", resource.name()), ("reason", *reason)];
                    enc.sample("psi_read_errors_total", &labels, &[], Value::Int(n));
                }
            }
        }
        enc.header(psi_core::header!(
            "psi_target_up",
            gauge,
            "Whether the monitored target is known and at least one of its pressure files was read"
        ));
        enc.sample("psi_target_up", &[], &[], Value::Int(u64::from(up)));
        if let Some(current) = self.target.current() {
            enc.header(psi_core::header!(
                "psi_target_info",
                gauge,
                "The monitored target: how it was chosen, its directory and its processes"
            ));
            let path = current.path.to_string_lossy();
            let pids = pid_list(&current.pids);
            let labels = [
                ("mode", self.target.mode().name()),
                ("path", path.as_ref()),
                ("pids", pids.as_str()),
            ];
            enc.sample("psi_target_info", &labels, &[], Value::Int(1));
        }
        if matches!(self.target.mode(), Mode::Discover(_)) {
            enc.header(psi_core::header!(
                "psi_target_discoveries_total",
                counter,
                "Times the monitored container was found by its pid_flag (it restarts: this rises)"
            ));
            let n = self.target.discoveries;
            enc.sample("psi_target_discoveries_total", &[], &[], Value::Int(n));
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
    }

    /// The `/psi` body: the current readings as JSON, for debugging.
    pub fn psi_json(&mut self) -> Bytes {
        let readings = self.read();
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(b"{\"mode\":");
        json::string(&mut out, self.target.mode().name());
        out.extend_from_slice(b",\"target\":");
        match self.target.current() {
            Some(current) => {
                out.extend_from_slice(b"{\"path\":");
                json::string(&mut out, &current.path.to_string_lossy());
                out.extend_from_slice(
                    format!(",\"pids\":[{}]}}", pid_list(&current.pids)).as_bytes(),
                );
            }
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"error\":");
        match self.target.last_error() {
            Some(e) if self.target.current().is_none() => json::string(&mut out, e),
            _ => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"pressure\":{");
        let mut errors = Vec::new();
        for (i, resource) in Resource::ALL.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(&mut out, resource.name());
            out.push(b':');
            match readings.as_ref().map(|r| &r.pressure[resource.index()]) {
                Some(Ok(p)) => json::pressure(&mut out, p),
                Some(Err(e)) => {
                    out.extend_from_slice(b"null");
                    errors.push((resource, e.reason(), crate::target::error_chain(e)));
                }
                None => out.extend_from_slice(b"null"),
            }
        }
        out.extend_from_slice(b"},\"errors\":{");
        for (i, (resource, reason, message)) in errors.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            json::string(&mut out, resource.name());
            out.extend_from_slice(b":{\"reason\":");
            json::string(&mut out, reason);
            out.extend_from_slice(b",\"message\":");
            json::string(&mut out, message);
            out.push(b'}');
        }
        out.extend_from_slice(b"}}\n");
        Bytes::from(out)
    }

    /// The `/health` body: the server answers, and this says the target's state.
    pub fn health(&mut self) -> Bytes {
        self.target.refresh();
        let text = match (self.target.current(), self.target.last_error()) {
            (Some(current), _) => format!(
                "ok: exporting {} ({}{})\n",
                current.path.display(),
                self.target.mode().name(),
                if current.pids.is_empty() {
                    String::new()
                } else {
                    format!(", pids {}", pid_list(&current.pids))
                }
            ),
            (None, Some(e)) => {
                format!("ok: serving, but the monitored container is not found: {e}\n")
            }
            (None, None) => "ok: serving, searching for the monitored container\n".to_owned(),
        };
        Bytes::from(text)
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

fn pid_list(pids: &[u32]) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
