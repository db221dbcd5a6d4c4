//! The Prometheus text format (0.0.4), written into a reused buffer.

use crate::Percent;
use crate::decimal::Fixed;

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type (the ones psi writes; others may come).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricType {
    /// A cumulative value that only goes up (resets on restart).
    Counter,
    /// A value that goes up and down.
    Gauge,
}

impl MetricType {
    fn name(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
        }
    }
}

/// A sample's value, printed exactly (new kinds of number may come).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// An integer, printed as is.
    Int(u64),
    /// Microseconds, printed as seconds (`1500000` -> `1.5`).
    Seconds(u64),
    /// A kernel average printed as a ratio (`Percent(1234)` -> `0.1234`).
    Ratio(Percent),
    /// A kernel average printed in percent, as the kernel does (`12.34`).
    Percent(Percent),
    /// Any other number (durations measured by the exporter, for instance).
    Float(f64),
}

impl Value {
    /// The value as the nearest `f64`, for encoders that take floats (the
    /// `prometheus` crate's): integers exact up to 2^53, seconds, ratios
    /// and percent correctly rounded from the exact decimal.
    pub fn to_f64(self) -> f64 {
        match self {
            Value::Int(v) => v as f64,
            Value::Seconds(us) => crate::decimal::seconds_f64(us),
            Value::Ratio(p) => p.ratio(),
            Value::Percent(p) => p.percent(),
            Value::Float(v) => v,
        }
    }
}

/// A family's `# HELP` and `# TYPE` lines, rendered when compiling, for
/// [`Encoder::header`]: `header!("name", counter, "help")` or
/// `header!("name", gauge, "help")`. The name and help must be string
/// literals (or `concat!` of them) with no backslash and no newline, so that
/// [`Encoder::family`] would escape nothing in them; anything else does not
/// compile.
///
/// ```
/// let h = psi_core::header!("jobs_total", counter, "Jobs run");
/// assert_eq!(h, "# HELP jobs_total Jobs run\n# TYPE jobs_total counter\n");
/// ```
///
/// ```compile_fail
/// let h = psi_core::header!("jobs_total", counter, "Jobs\nrun");
/// ```
#[macro_export]
macro_rules! header {
    ($name:expr, counter, $help:expr) => {
        $crate::header!(@render $name, "counter", $help)
    };
    ($name:expr, gauge, $help:expr) => {
        $crate::header!(@render $name, "gauge", $help)
    };
    (@render $name:expr, $kind:literal, $help:expr) => {{
        const _: () = assert!(
            $crate::expose::plain($name) && $crate::expose::plain($help),
            "a header! name or help text would need escaping"
        );
        concat!("# HELP ", $name, " ", $help, "\n# TYPE ", $name, " ", $kind, "\n")
    }};
}

/// True when `text` has no backslash and no newline: it goes into a
/// `# HELP` line as it is. [`header!`] checks its texts with it when
/// compiling.
#[doc(hidden)]
pub const fn plain(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' || bytes[i] == b'\n' {
            return false;
        }
        i += 1;
    }
    true
}

/// Writes the text exposition format into a `Vec<u8>` the caller reuses.
#[derive(Debug)]
pub struct Encoder<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> Encoder<'a> {
    /// An encoder that appends to `out`.
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        Encoder { out }
    }

    /// Writes a family's `# HELP` and `# TYPE` lines. `help` must be one line.
    pub fn family(&mut self, name: &str, kind: MetricType, help: &str) {
        self.put(b"# HELP ");
        self.put(name.as_bytes());
        self.put(b" ");
        escape_help(self.out, help);
        self.put(b"\n# TYPE ");
        self.put(name.as_bytes());
        self.put(b" ");
        self.put(kind.name().as_bytes());
        self.put(b"\n");
    }

    /// Writes a family's header rendered by [`header!`](crate::header): one
    /// copy, where [`family`](Self::family) writes nine pieces and scans the
    /// help text for what to escape.
    pub fn header(&mut self, header: &'static str) {
        self.put(header.as_bytes());
    }

    /// Writes one sample: `name{labels...,extra...} value`.
    pub fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        extra: &[(&str, &str)],
        value: Value,
    ) {
        self.put(name.as_bytes());
        let mut first = true;
        for (key, val) in labels.iter().chain(extra) {
            self.put(if first { b"{" } else { b"," });
            first = false;
            self.put(key.as_bytes());
            self.put(b"=\"");
            escape_label(self.out, val);
            self.put(b"\"");
        }
        if !first {
            self.put(b"}");
        }
        self.put(b" ");
        self.value_line(value);
    }

    /// A sample of a family known when compiling: `prefix` is what
    /// [`sample`](Self::sample) writes before the value for a target without
    /// labels (`name{extra...} `), written in one copy when `labels` is
    /// empty.
    ///
    /// A labelled target's labels go in front of the prefix's own
    /// (`name{<labels>,window="10s"} `), already rendered: a sample costs a
    /// few copies, and no label is escaped twice.
    pub(super) fn known(
        &mut self,
        prefix: &'static str,
        name: &str,
        labels: &Labels,
        value: Value,
    ) {
        if labels.is_empty() {
            self.put(prefix.as_bytes());
        } else {
            self.put(name.as_bytes());
            self.put(b"{");
            self.put(labels.0.as_bytes());
            match prefix.get(name.len() + 1..) {
                // `name{window="10s"} `: its labels follow ours.
                Some(rest) if prefix.as_bytes().get(name.len()) == Some(&b'{') => {
                    self.put(b",");
                    self.put(rest.as_bytes());
                }
                // `name `: ours are all.
                _ => self.put(b"} "),
            }
        }
        self.value_line(value);
    }

    /// The value and the newline, written straight into the buffer: going
    /// through a stack buffer would copy bytes just stored one at a time
    /// with wide loads, which wait for those stores (no store forwarding).
    fn value_line(&mut self, value: Value) {
        let number = match value {
            Value::Int(v) => Fixed::integer(v),
            Value::Seconds(us) => Fixed::seconds(us),
            Value::Ratio(p) => Fixed::ratio(p.hundredths()),
            Value::Percent(p) => {
                let h = p.hundredths();
                self.number(Fixed::integer(u64::from(h / 100)));
                let decimals = [b'0' + (h % 100 / 10) as u8, b'0' + (h % 10) as u8];
                self.out
                    .extend_from_slice(&[b'.', decimals[0], decimals[1], b'\n']);
                return;
            }
            Value::Float(v) => {
                self.float(v);
                self.out.push(b'\n');
                return;
            }
        };
        self.number(number);
        self.out.push(b'\n');
    }

    /// Appends a number, written in place in the buffer.
    fn number(&mut self, number: Fixed) {
        let start = self.out.len();
        self.out.resize(start + number.len(), b'0');
        if let Some(room) = self.out.get_mut(start..) {
            number.write(room);
        }
    }

    fn float(&mut self, v: f64) {
        use std::io::Write;
        if v.is_nan() {
            self.put(b"NaN");
        } else if v.is_infinite() {
            self.put(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        } else {
            // Writing into a Vec cannot fail.
            let _ = write!(self.out, "{v}");
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }
}

/// A target's labels, rendered once into the text format
/// (`cgroup="/app",qos="burstable"`, values escaped) and put on every sample
/// of that target.
///
/// ```
/// let labels = psi_core::expose::Labels::new(&[("cgroup", "/a\"b")]);
/// assert_eq!(labels.as_str(), r#"cgroup="/a\"b""#);
/// assert!(psi_core::expose::Labels::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(String);

impl Labels {
    /// No labels: a single target, as the sidecar exports it.
    pub fn none() -> &'static Labels {
        static NONE: Labels = Labels(String::new());
        &NONE
    }

    /// Renders `pairs`, in order. Keys must be valid label names (they are
    /// written as they are); values are escaped.
    pub fn new(pairs: &[(&str, &str)]) -> Labels {
        let mut out = Vec::new();
        for (i, (key, value)) in pairs.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label(&mut out, value);
            out.push(b'"');
        }
        // Only ASCII was added around the UTF-8 of the pairs.
        Labels(String::from_utf8(out).unwrap_or_default())
    }

    /// True for no labels at all.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The rendered labels, without braces.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Escapes a label value: backslash, double quote and newline.
fn escape_label(out: &mut Vec<u8>, value: &str) {
    let mut bytes = value.as_bytes();
    while let Some(i) = memchr::memchr3(b'\\', b'"', b'\n', bytes) {
        escape_at(out, &mut bytes, i);
    }
    out.extend_from_slice(bytes);
}

/// Escapes help text: backslash and newline.
fn escape_help(out: &mut Vec<u8>, value: &str) {
    let mut bytes = value.as_bytes();
    while let Some(i) = memchr::memchr2(b'\\', b'\n', bytes) {
        escape_at(out, &mut bytes, i);
    }
    out.extend_from_slice(bytes);
}

/// Copies `bytes` up to the special byte at `i`, writes its escape, and
/// moves `bytes` past it.
fn escape_at(out: &mut Vec<u8>, bytes: &mut &[u8], i: usize) {
    out.extend_from_slice(bytes.get(..i).unwrap_or_default());
    out.extend_from_slice(match bytes.get(i) {
        Some(b'\n') => b"\\n",
        Some(b'"') => b"\\\"",
        _ => b"\\\\",
    });
    *bytes = bytes.get(i + 1..).unwrap_or_default();
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(crate) fn text(f: impl FnOnce(&mut Encoder<'_>)) -> String {
        let mut out = Vec::new();
        f(&mut Encoder::new(&mut out));
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn label_values_are_escaped() {
        let t = text(|e| e.sample("m", &[("a", "x\\y\"z\nw")], &[], Value::Int(1)));
        assert_eq!(t, "m{a=\"x\\\\y\\\"z\\nw\"} 1\n");
    }

    #[test]
    fn help_is_escaped_and_type_written() {
        let t = text(|e| e.family("m", MetricType::Counter, "a\\b\nc"));
        assert_eq!(t, "# HELP m a\\\\b\\nc\n# TYPE m counter\n");
    }

    #[test]
    fn values_are_exact() {
        let t = text(|e| {
            e.sample("a", &[], &[], Value::Seconds(300_000));
            e.sample("b", &[], &[], Value::Ratio(Percent(3000)));
            e.sample("c", &[], &[], Value::Percent(Percent(5)));
            e.sample("d", &[], &[], Value::Float(f64::NAN));
            e.sample("e", &[], &[], Value::Float(0.25));
        });
        assert_eq!(t, "a 0.3\nb 0.3\nc 0.05\nd NaN\ne 0.25\n");
    }
}
