//! JSON for readings: the exporter's `/psi` and the CLI's `--format json`
//! (feature `std`). Written straight into a reused buffer, like [`crate::expose`].
//!
//! Both write one envelope: an [`Object`] with the [`target`] the reading is
//! of (`kind`, `path`, `cgroup`, `pids`, `kubernetes`), then its
//! [`reading`]: `pressure`, by resource, `null` where it could not be read,
//! and `errors`, by resource, the `reason` and `message` of each failure.
//! Each program adds its own members around them (`time`, `mode`, `rates`).
//!
//! A [`Pressure`] is an object with `some` and `full`, each `null` or an object
//! of `avg10`, `avg60`, `avg300` (percent, as the kernel prints them, two
//! decimals) and `total` (microseconds, an integer):
//!
//! ```
//! let p = psi_core::parse(b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n")?;
//! let mut out = Vec::new();
//! psi_core::json::pressure(&mut out, &p);
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     r#"{"some":{"avg10":0.12,"avg60":1.05,"avg300":10.50,"total":123456789},"full":null}"#
//! );
//! # Ok::<(), psi_core::ParseError>(())
//! ```

use std::io::Write;

use crate::read::Reading;
use crate::report::Chain;
use crate::target::Target;
use crate::{Line, Pressure};

/// A JSON object being written: [`key`](Self::key) writes the comma before
/// every member but the first.
#[derive(Debug)]
pub struct Object<'a> {
    out: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Starts an object at the end of `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Object { out, empty: true }
    }

    /// Writes a member's key; the caller writes its value into the buffer
    /// returned.
    pub fn key(&mut self, key: &str) -> &mut Vec<u8> {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        string(self.out, key);
        self.out.push(b':');
        self.out
    }

    /// A member whose value is a string, or `null`.
    pub fn string(&mut self, key: &str, value: Option<&str>) {
        let out = self.key(key);
        match value {
            Some(v) => string(out, v),
            None => out.extend_from_slice(b"null"),
        }
    }

    /// Ends the object.
    pub fn end(self) {
        self.out.push(b'}');
    }
}

/// Writes the member `"target":{"kind":…,"path":…,"cgroup":…,"pids":[…],"kubernetes":…}`,
/// or `"target":null` when there is none.
pub fn target(obj: &mut Object<'_>, target: Option<&Target>) {
    let out = obj.key("target");
    let Some(t) = target else {
        out.extend_from_slice(b"null");
        return;
    };
    let mut o = Object::new(out);
    o.string("kind", Some(t.kind.name()));
    o.string("path", Some(&t.dir.to_string_lossy()));
    o.string("cgroup", t.cgroup.as_deref());
    let out = o.key("pids");
    out.push(b'[');
    for (i, pid) in t.pids.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = write!(out, "{pid}");
    }
    out.push(b']');
    let out = o.key("kubernetes");
    match &t.kube {
        None => out.extend_from_slice(b"null"),
        Some(k) => {
            let mut kube = Object::new(out);
            kube.string("qos", k.qos.map(|q| q.name()));
            kube.string("pod_uid", k.pod_uid.as_deref());
            kube.string("container_id", k.container_id.as_deref());
            kube.end();
        }
    }
    o.end();
}

/// Writes the members `"pressure":{…}` (each resource read, an object or
/// `null`) and `"errors":{…}` (each resource that failed, its `reason` and
/// `message`). Without a reading both are empty objects.
pub fn reading(obj: &mut Object<'_>, reading: Option<&Reading>) {
    let mut p = Object::new(obj.key("pressure"));
    for (resource, result) in reading.into_iter().flat_map(Reading::results) {
        let out = p.key(resource.name());
        match result {
            Ok(value) => pressure(out, value),
            Err(_) => out.extend_from_slice(b"null"),
        }
    }
    p.end();
    let mut errors = Object::new(obj.key("errors"));
    for (resource, e) in reading.into_iter().flat_map(Reading::errors) {
        let mut o = Object::new(errors.key(resource.name()));
        o.string("reason", Some(e.reason().name()));
        o.string("message", Some(&Chain(e).to_string()));
        o.end();
    }
    errors.end();
}

/// Writes `p` as a JSON object.
pub fn pressure(out: &mut Vec<u8>, p: &Pressure) {
    out.push(b'{');
    for (i, line) in Line::ALL.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, line.name());
        out.push(b':');
        match p.get(line) {
            None => out.extend_from_slice(b"null"),
            // Writing into a Vec cannot fail.
            Some(r) => {
                let _ = write!(
                    out,
                    r#"{{"avg10":{},"avg60":{},"avg300":{},"total":{}}}"#,
                    r.avg10, r.avg60, r.avg300, r.total
                );
            }
        }
    }
    out.push(b'}');
}

/// Writes `s` as a JSON string, escaping quotes, backslashes and control characters.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_json_requires() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }

    #[test]
    fn an_envelope() {
        let dir = psi_testkit::files::dir(&[(
            "cpu.pressure",
            "some avg10=1.00 avg60=0.00 avg300=0.00 total=5\n",
        )]);
        let mut set = crate::read::PressureSet::cgroup(dir.path());
        let now = set.read_only(&[crate::Resource::Cpu, crate::Resource::Io]);
        let mut out = Vec::new();
        let mut obj = Object::new(&mut out);
        obj.string("mode", Some("cgroup"));
        let t = Target {
            kind: set.kind(),
            dir: "/x\"y".into(),
            cgroup: None,
            pids: vec![1, 2],
            kube: None,
        };
        target(&mut obj, Some(&t));
        reading(&mut obj, Some(&now));
        obj.end();
        let text = String::from_utf8(out).expect("utf-8");
        let want = format!(
            concat!(
                r#"{{"mode":"cgroup","target":{{"kind":"copy","path":"/x\"y","cgroup":null,"pids":[1,2],"kubernetes":null}},"#,
                r#""pressure":{{"cpu":{{"some":{{"avg10":1.00,"avg60":0.00,"avg300":0.00,"total":5}},"full":null}},"io":null}},"#,
                r#""errors":{{"io":{{"reason":"unsupported","message":"{}/io.pressure does not exist: this kernel does not report that pressure"}}}}}}"#
            ),
            dir.path().display()
        );
        assert_eq!(text, want);
    }

    #[test]
    fn full_only() {
        let p = crate::parse(b"full avg10=1.00 avg60=0.00 avg300=0.00 total=5\n").expect("valid");
        let mut out = Vec::new();
        pressure(&mut out, &p);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"some":null,"full":{"avg10":1.00,"avg60":0.00,"avg300":0.00,"total":5}}"#
        );
    }
}
