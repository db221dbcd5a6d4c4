//! Prometheus text exposition (format 0.0.4), streamed into a reused buffer
//! (feature `std`).
//!
//! [`Encoder`] writes `# HELP`/`# TYPE` headers and samples, escaping label
//! values and printing numbers with the exact writers of [`crate::fmt`]: a
//! scrape that reuses its `Vec<u8>` allocates nothing once the buffer has
//! grown to size. [`write_pressure`] writes the pressure families of any
//! number of targets, each family's header once. A family whose name and
//! help are known when compiling can have its header rendered then, with
//! [`header!`](crate::header), and written with [`Encoder::header`] in one
//! copy.
//!
//! ```
//! use psi_core::expose::{Encoder, Families, Snapshot, write_pressure};
//! use psi_core::Resource;
//!
//! let cpu = psi_core::parse(b"some avg10=1.50 avg60=0.00 avg300=0.00 total=2500000\n")?;
//! let mut pressure = [None; 4];
//! pressure[Resource::Cpu.index()] = Some(cpu);
//! let target = Snapshot { labels: &[("cgroup", "/app")], pressure, cpu_stat: None, system: false };
//!
//! let mut out = Vec::new();
//! write_pressure(&mut Encoder::new(&mut out), &Families::default(), &[target]);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("psi_cpu_waiting_seconds_total{cgroup=\"/app\"} 2.5\n"));
//! assert!(text.contains("psi_cpu_waiting_ratio{cgroup=\"/app\",window=\"10s\"} 0.015\n"));
//! assert!(text.contains("cgroup_monitor_sc_monitored_cpu_psi{cgroup=\"/app\",type=\"some\",window=\"total\"} 2500000\n"));
//! # Ok::<(), psi_core::ParseError>(())
//! ```

use crate::cpu_stat::CpuStat;
use crate::fmt::Fixed;
use crate::{Line, Percent, Pressure, Record, Resource};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// A sample's value, printed exactly.
#[derive(Debug, Clone, Copy, PartialEq)]
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
    fn known(
        &mut self,
        prefix: &'static str,
        name: &str,
        labels: &[(&str, &str)],
        extra: &[(&str, &str)],
        value: Value,
    ) {
        if labels.is_empty() {
            self.put(prefix.as_bytes());
            self.value_line(value);
        } else {
            self.sample(name, labels, extra, value);
        }
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

/// Which families [`write_pressure`] writes. All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Families {
    /// `psi_<resource>_{waiting,stalled}_seconds_total`: counters in seconds.
    pub standard: bool,
    /// `psi_<resource>_{waiting,stalled}_ratio{window}`: the kernel averages as ratios.
    pub averages: bool,
    /// `cgroup_monitor_sc_monitored_{cpu,io,mem}_psi{type,window}`: the Go sidecar's gauges.
    pub legacy: bool,
    /// `psi_cpu_throttled_*` from `cpu.stat`, where the file has them.
    pub throttling: bool,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            standard: true,
            averages: true,
            legacy: true,
            throttling: true,
        }
    }
}

/// What one target read at this scrape.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Labels that identify the target (e.g. `cgroup`), put on every sample.
    pub labels: &'a [(&'a str, &'a str)],
    /// The pressure of each resource, indexed by [`Resource::index`]; `None`
    /// where it could not be read (absent from the output, never a zero).
    pub pressure: [Option<Pressure>; 4],
    /// The cgroup's `cpu.stat`, if read.
    pub cpu_stat: Option<CpuStat>,
    /// True for the system-wide `/proc/pressure` files, whose cpu `full` line
    /// the kernel fills with zeros: it is left out rather than exported as a
    /// fake zero.
    pub system: bool,
}

impl Snapshot<'_> {
    /// The record to export for `resource` and `line`, if there is a real one.
    pub fn record(&self, resource: Resource, line: Line) -> Option<&Record> {
        if self.system && resource == Resource::Cpu && line == Line::Full {
            return None;
        }
        self.pressure.get(resource.index())?.as_ref()?.get(line)
    }
}

/// A family known when compiling: its name and its header from [`header!`].
#[derive(Debug, Clone, Copy)]
struct Known {
    name: &'static str,
    header: &'static str,
}

/// The families of one resource, `[some, full]`, with the start of each
/// sample of a target without labels (see [`Encoder::known`]).
struct Names {
    /// `psi_<r>_{waiting,stalled}_seconds_total`, and `name `.
    seconds: [(Known, &'static str); 2],
    /// `psi_<r>_{waiting,stalled}_ratio`, and `name{window="..."} ` per window.
    ratio: [(Known, [&'static str; 3]); 2],
    /// The Go sidecar's gauge, and `name{type="...",window="..."} ` per line
    /// and window (`10s`, `60s`, `300s`, `total`).
    legacy: Option<(Known, [[&'static str; 4]; 2])>,
}

macro_rules! known {
    ($name:expr, $kind:tt, $help:expr) => {
        Known {
            name: $name,
            header: header!($name, $kind, $help),
        }
    };
}

/// `name{window="10s"} `, ... for the three windows.
macro_rules! windows {
    ($name:expr) => {
        [
            concat!($name, "{window=\"10s\"} "),
            concat!($name, "{window=\"60s\"} "),
            concat!($name, "{window=\"300s\"} "),
        ]
    };
}

/// `name{type="some",window="10s"} `, ... for the four windows of a line.
macro_rules! legacy_windows {
    ($name:expr, $line:literal) => {
        [
            concat!($name, "{type=\"", $line, "\",window=\"10s\"} "),
            concat!($name, "{type=\"", $line, "\",window=\"60s\"} "),
            concat!($name, "{type=\"", $line, "\",window=\"300s\"} "),
            concat!($name, "{type=\"", $line, "\",window=\"total\"} "),
        ]
    };
}

macro_rules! legacy {
    ($name:literal) => {
        Some((
            known!(
                $name,
                gauge,
                "Legacy sidecar gauge: the monitored container's pressure as the kernel prints it (percent for 10s/60s/300s, microseconds for total)"
            ),
            [legacy_windows!($name, "some"), legacy_windows!($name, "full")],
        ))
    };
}

macro_rules! names {
    ($r:literal, $legacy:expr) => {
        Names {
            seconds: [
                (
                    known!(
                        concat!("psi_", $r, "_waiting_seconds_total"),
                        counter,
                        concat!(
                            "Time in seconds that at least one task waited on ",
                            $r,
                            " (PSI some total)"
                        )
                    ),
                    concat!("psi_", $r, "_waiting_seconds_total "),
                ),
                (
                    known!(
                        concat!("psi_", $r, "_stalled_seconds_total"),
                        counter,
                        concat!(
                            "Time in seconds that all non-idle tasks were stalled on ",
                            $r,
                            " (PSI full total)"
                        )
                    ),
                    concat!("psi_", $r, "_stalled_seconds_total "),
                ),
            ],
            ratio: [
                (
                    known!(
                        concat!("psi_", $r, "_waiting_ratio"),
                        gauge,
                        concat!(
                            "Share of time at least one task waited on ",
                            $r,
                            ", the kernel's running average over window"
                        )
                    ),
                    windows!(concat!("psi_", $r, "_waiting_ratio")),
                ),
                (
                    known!(
                        concat!("psi_", $r, "_stalled_ratio"),
                        gauge,
                        concat!(
                            "Share of time all non-idle tasks were stalled on ",
                            $r,
                            ", the kernel's running average over window"
                        )
                    ),
                    windows!(concat!("psi_", $r, "_stalled_ratio")),
                ),
            ],
            legacy: $legacy,
        }
    };
}

/// Each resource's families, by [`Resource::index`], built when compiling.
const NAMES: [Names; 4] = [
    names(Resource::Cpu),
    names(Resource::Memory),
    names(Resource::Io),
    names(Resource::Irq),
];

const fn names(resource: Resource) -> Names {
    match resource {
        Resource::Cpu => names!("cpu", legacy!("cgroup_monitor_sc_monitored_cpu_psi")),
        Resource::Memory => names!("memory", legacy!("cgroup_monitor_sc_monitored_mem_psi")),
        Resource::Io => names!("io", legacy!("cgroup_monitor_sc_monitored_io_psi")),
        Resource::Irq => names!("irq", None),
    }
}

const WINDOWS: [&str; 3] = ["10s", "60s", "300s"];

fn averages(r: &Record) -> [Percent; 3] {
    [r.avg10, r.avg60, r.avg300]
}

const AVAILABLE: Known = known!(
    "psi_pressure_available",
    gauge,
    "Whether the resource's pressure could be read (1) or not (0; see psi_read_errors_total)"
);

/// `psi_pressure_available{resource="..."} `, by [`Resource::index`].
const AVAILABLE_PREFIX: [&str; 4] = [
    "psi_pressure_available{resource=\"cpu\"} ",
    "psi_pressure_available{resource=\"memory\"} ",
    "psi_pressure_available{resource=\"io\"} ",
    "psi_pressure_available{resource=\"irq\"} ",
];

/// Writes the pressure families of `targets`: for each resource the standard
/// counters, the averages, the legacy gauges and (cpu) the throttling
/// counters, each family's header once, then `psi_pressure_available`.
pub fn write_pressure(enc: &mut Encoder<'_>, families: &Families, targets: &[Snapshot<'_>]) {
    for resource in Resource::ALL {
        let Some(names) = NAMES.get(resource.index()) else {
            continue;
        };
        for line in Line::ALL {
            let idx = line as usize;
            let present = |t: &&Snapshot<'_>| t.record(resource, line).is_some();
            if !targets.iter().any(|t| present(&t)) {
                continue;
            }
            if families.standard
                && let Some((family, prefix)) = names.seconds.get(idx)
            {
                enc.header(family.header);
                for t in targets {
                    if let Some(r) = t.record(resource, line) {
                        let v = Value::Seconds(r.total);
                        enc.known(prefix, family.name, t.labels, &[], v);
                    }
                }
            }
            if families.averages
                && let Some((family, prefixes)) = names.ratio.get(idx)
            {
                enc.header(family.header);
                for t in targets {
                    if let Some(r) = t.record(resource, line) {
                        for ((window, prefix), avg) in WINDOWS.iter().zip(prefixes).zip(averages(r))
                        {
                            let extra = [("window", *window)];
                            enc.known(prefix, family.name, t.labels, &extra, Value::Ratio(avg));
                        }
                    }
                }
            }
        }
        if families.legacy
            && let Some((family, prefixes)) = &names.legacy
        {
            write_legacy(enc, family, prefixes, resource, targets);
        }
        if resource == Resource::Cpu && families.throttling {
            write_throttling(enc, targets);
        }
    }
    enc.header(AVAILABLE.header);
    for t in targets {
        for (resource, prefix) in Resource::ALL.into_iter().zip(AVAILABLE_PREFIX) {
            let ok = t
                .pressure
                .get(resource.index())
                .is_some_and(Option::is_some);
            let extra = [("resource", resource.name())];
            let v = Value::Int(u64::from(ok));
            enc.known(prefix, AVAILABLE.name, t.labels, &extra, v);
        }
    }
}

/// The Go sidecar's gauges: percent as the kernel prints it, total in µs.
fn write_legacy(
    enc: &mut Encoder<'_>,
    family: &Known,
    prefixes: &[[&'static str; 4]; 2],
    resource: Resource,
    targets: &[Snapshot<'_>],
) {
    let any = targets
        .iter()
        .any(|t| Line::ALL.iter().any(|&l| t.record(resource, l).is_some()));
    if !any {
        return;
    }
    enc.header(family.header);
    for t in targets {
        for (line, prefixes) in Line::ALL.into_iter().zip(prefixes) {
            let Some(r) = t.record(resource, line) else {
                continue;
            };
            let ty = ("type", line.name());
            let values = averages(r).map(Value::Percent);
            let values = [values[0], values[1], values[2], Value::Int(r.total)];
            let windows = [WINDOWS[0], WINDOWS[1], WINDOWS[2], "total"];
            for ((window, prefix), v) in windows.into_iter().zip(prefixes).zip(values) {
                enc.known(prefix, family.name, t.labels, &[ty, ("window", window)], v);
            }
        }
    }
}

fn write_throttling(enc: &mut Encoder<'_>, targets: &[Snapshot<'_>]) {
    type Pick = fn(&CpuStat) -> Option<u64>;
    let families: [(Known, &str, Pick, bool); 3] = [
        (
            known!(
                "psi_cpu_throttled_seconds_total",
                counter,
                "Time in seconds the cgroup was throttled by cpu.max (cpu.stat throttled_usec): cpu pressure that is really throttling"
            ),
            "psi_cpu_throttled_seconds_total ",
            |s| s.throttled_usec,
            true,
        ),
        (
            known!(
                "psi_cpu_throttled_periods_total",
                counter,
                "Enforcement periods in which the cgroup was throttled (cpu.stat nr_throttled)"
            ),
            "psi_cpu_throttled_periods_total ",
            |s| s.nr_throttled,
            false,
        ),
        (
            known!(
                "psi_cpu_periods_total",
                counter,
                "Enforcement periods that have elapsed (cpu.stat nr_periods)"
            ),
            "psi_cpu_periods_total ",
            |s| s.nr_periods,
            false,
        ),
    ];
    for (family, prefix, pick, micros) in families {
        let value = |t: &Snapshot<'_>| t.cpu_stat.as_ref().and_then(pick);
        if !targets.iter().any(|t| value(t).is_some()) {
            continue;
        }
        enc.header(family.header);
        for t in targets {
            if let Some(v) = value(t) {
                let v = if micros {
                    Value::Seconds(v)
                } else {
                    Value::Int(v)
                };
                enc.known(prefix, family.name, t.labels, &[], v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Encoder<'_>)) -> String {
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

    fn snapshot(file: &[u8], system: bool) -> Snapshot<'static> {
        let p = crate::parse(file).expect("valid");
        let mut pressure = [None; 4];
        pressure[Resource::Cpu.index()] = Some(p);
        pressure[Resource::Io.index()] = Some(p);
        Snapshot {
            labels: &[],
            pressure,
            cpu_stat: None,
            system,
        }
    }

    const FILE: &[u8] = b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                          full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";

    #[test]
    fn unreadable_resources_are_absent_and_marked_unavailable() {
        let t = text(|e| write_pressure(e, &Families::default(), &[snapshot(FILE, false)]));
        assert!(!t.contains("psi_memory_"), "{t}");
        assert!(!t.contains("mem_psi"), "{t}");
        assert!(t.contains("psi_pressure_available{resource=\"memory\"} 0\n"));
        assert!(t.contains("psi_pressure_available{resource=\"cpu\"} 1\n"));
        assert!(t.contains("psi_cpu_stalled_seconds_total 98.765432\n"));
        assert!(t.contains("psi_io_waiting_ratio{window=\"300s\"} 0.105\n"));
        assert!(
            t.contains("cgroup_monitor_sc_monitored_io_psi{type=\"full\",window=\"10s\"} 0.00\n")
        );
        assert!(t.contains(
            "cgroup_monitor_sc_monitored_cpu_psi{type=\"some\",window=\"total\"} 123456789\n"
        ));
    }

    #[test]
    fn system_cpu_full_is_left_out() {
        let t = text(|e| write_pressure(e, &Families::default(), &[snapshot(FILE, true)]));
        assert!(!t.contains("psi_cpu_stalled"), "{t}");
        assert!(t.contains("psi_io_stalled_seconds_total"));
    }

    #[test]
    fn each_family_header_once_for_many_targets() {
        let mut a = snapshot(FILE, false);
        a.labels = &[("cgroup", "/a")];
        let mut b = a;
        b.labels = &[("cgroup", "/b")];
        let t = text(|e| write_pressure(e, &Families::default(), &[a, b]));
        assert_eq!(
            t.matches("# TYPE psi_cpu_waiting_seconds_total counter")
                .count(),
            1
        );
        assert!(t.contains("psi_cpu_waiting_seconds_total{cgroup=\"/a\"} 123.456789\n"));
        assert!(t.contains("psi_cpu_waiting_seconds_total{cgroup=\"/b\"} 123.456789\n"));
    }

    #[test]
    fn families_switch_off() {
        let off = Families {
            standard: false,
            averages: false,
            legacy: false,
            throttling: false,
        };
        let t = text(|e| write_pressure(e, &off, &[snapshot(FILE, false)]));
        assert!(!t.contains("seconds_total"), "{t}");
        assert!(!t.contains("_ratio"), "{t}");
        assert!(!t.contains("cgroup_monitor"), "{t}");
        assert!(t.contains("psi_pressure_available"));
    }

    /// Every target readable, with throttling: every family and sample.
    fn everything<'a>(labels: &'a [(&'a str, &'a str)]) -> Snapshot<'a> {
        let p = crate::parse(FILE).expect("valid");
        Snapshot {
            labels,
            pressure: [Some(p); 4],
            cpu_stat: Some(crate::cpu_stat::parse(
                b"nr_periods 10\nnr_throttled 3\nthrottled_usec 1500000\n",
            )),
            system: false,
        }
    }

    #[test]
    fn known_prefixes_write_what_sample_writes() {
        // A target with a label goes through `sample`, one without through
        // the prefixes rendered when compiling; less the label, the same text.
        let fast = text(|e| write_pressure(e, &Families::default(), &[everything(&[])]));
        let slow = text(|e| write_pressure(e, &Families::default(), &[everything(&[("x", "y")])]));
        assert_eq!(slow.replace("{x=\"y\"}", "").replace("x=\"y\",", ""), fast);
        for sample in [
            "psi_irq_stalled_ratio{window=\"300s\"} 0.0225\n",
            "cgroup_monitor_sc_monitored_mem_psi{type=\"full\",window=\"total\"} 98765432\n",
            "psi_cpu_throttled_seconds_total 1.5\n",
            "psi_pressure_available{resource=\"irq\"} 1\n",
        ] {
            assert!(fast.contains(sample), "{sample} in {fast}");
        }
    }

    #[test]
    fn known_headers_are_what_family_writes() {
        let all = text(|e| write_pressure(e, &Families::default(), &[everything(&[])]));
        let headers: Vec<&str> = all.lines().filter(|l| l.starts_with('#')).collect();
        assert_eq!(headers.len() % 2, 0);
        for pair in headers.chunks(2) {
            let (help, ty) = (pair[0], pair[1]);
            let name = help.split(' ').nth(2).expect("name");
            let text_of_help = help.splitn(4, ' ').nth(3).expect("help");
            let kind = match ty.rsplit(' ').next() {
                Some("counter") => MetricType::Counter,
                _ => MetricType::Gauge,
            };
            let again = text(|e| e.family(name, kind, text_of_help));
            assert_eq!(again, format!("{help}\n{ty}\n"));
        }
    }

    #[test]
    fn throttling_where_cpu_stat_has_it() {
        let mut s = snapshot(FILE, false);
        s.cpu_stat = Some(crate::cpu_stat::parse(
            b"nr_periods 10\nnr_throttled 3\nthrottled_usec 1500000\n",
        ));
        let t = text(|e| write_pressure(e, &Families::default(), &[s]));
        assert!(t.contains("psi_cpu_throttled_seconds_total 1.5\n"), "{t}");
        assert!(t.contains("psi_cpu_throttled_periods_total 3\n"));
        assert!(t.contains("psi_cpu_periods_total 10\n"));
        s.cpu_stat = Some(crate::cpu_stat::parse(b"usage_usec 5\n"));
        let t = text(|e| write_pressure(e, &Families::default(), &[s]));
        assert!(!t.contains("throttled"), "{t}");
    }
}
