//! psi's metric families: names, help, types and labels, written for any
//! number of targets.
//!
//! This is the one home of every family's name, help text, type and
//! labels. [`write_pressure`] and [`write_read_errors`] write them in the
//! text format; the `prometheus` feature's collector builds protobuf
//! families from the same walk ([`Sink`]), so the two cannot drift apart.

use super::encoder::{Encoder, Labels, MetricType, Value};
use crate::cpu_stat::CpuStat;
use crate::read::ErrorCounts;
use crate::{Line, PerResource, Percent, Pressure, Record, Resource};

/// Which families [`write_pressure`] writes. All are on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Families {
    /// `psi_<resource>_{waiting,stalled}_seconds_total`: counters in seconds.
    pub standard: bool,
    /// `psi_<resource>_{waiting,stalled}_ratio{window}`: the kernel averages as ratios.
    pub averages: bool,
    /// `cgroup_monitor_sc_monitored_{cpu,io,mem}_psi{type,window}`: the Go sidecar's gauges.
    pub legacy: bool,
    /// `psi_cpu_throttled_*` from `cpu.stat`, where the file has them.
    pub throttling: bool,
    /// `psi_pressure_available{resource}`, 1 or 0 for each resource of each
    /// target. Node mode leaves it out: four series per cgroup would say
    /// what the absence of a pressure series and `psi_read_errors_total`
    /// already say.
    pub availability: bool,
}

impl Default for Families {
    fn default() -> Self {
        Families {
            standard: true,
            averages: true,
            legacy: true,
            throttling: true,
            availability: true,
        }
    }
}

/// What one target read at this scrape, and the labels that name it.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot<'a> {
    /// Labels that identify the target (e.g. `cgroup`), put on every sample.
    pub labels: &'a Labels,
    /// The pressure of each resource; `None` where it could not be read
    /// (absent from the output, never a zero). Lines the kernel does not
    /// measure are already left out by the reader
    /// ([`Kind::measured`](crate::cgroup::Kind::measured)).
    pub pressure: PerResource<Option<Pressure>>,
    /// The cgroup's `cpu.stat`, if read.
    pub cpu_stat: Option<CpuStat>,
}

impl Snapshot<'_> {
    /// The record to export for `resource` and `line`, if there is one.
    pub fn record(&self, resource: Resource, line: Line) -> Option<&Record> {
        self.pressure[resource].as_ref()?.get(line)
    }
}

/// A family psi writes: its name, help and type, and its header rendered
/// when compiling ([`header!`](crate::header)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Family {
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    pub(crate) kind: MetricType,
    header: &'static str,
}

/// One series of a family, less the target's labels: the family's own
/// labels (`window="10s"`), and what [`Encoder::known`] writes before the
/// value for a target without labels (`name{window="10s"} `), rendered when
/// compiling from the same literals. A series whose labels are known only
/// when running (`psi_read_errors_total`'s) has no prefix, and no target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Series<'a> {
    pub(crate) prefix: Option<&'static str>,
    pub(crate) labels: &'a [(&'static str, &'static str)],
}

/// Where the walk over psi's families goes: the text format
/// ([`write_pressure`]) or the `prometheus` feature's protobuf families.
/// Every sample follows the [`family`](Sink::family) call of its family.
pub(crate) trait Sink {
    /// A family starts.
    fn family(&mut self, family: &Family);
    /// One sample of the family last started: `target` indexes the targets
    /// the walk was given (`None` for a sample of no target).
    fn sample(&mut self, family: &Family, series: Series<'_>, target: Option<usize>, value: Value);
}

/// The text format: headers and prefixes rendered when compiling.
struct Text<'e, 'b, 't> {
    enc: &'e mut Encoder<'b>,
    targets: &'t [Snapshot<'t>],
}

impl Sink for Text<'_, '_, '_> {
    fn family(&mut self, family: &Family) {
        self.enc.header(family.header);
    }

    fn sample(&mut self, family: &Family, series: Series<'_>, target: Option<usize>, value: Value) {
        match series.prefix {
            Some(prefix) => {
                let labels = target
                    .and_then(|i| self.targets.get(i))
                    .map_or(Labels::none(), |t| t.labels);
                self.enc.known(prefix, family.name, labels, value);
            }
            None => self.enc.sample(family.name, &[], series.labels, value),
        }
    }
}

macro_rules! family {
    ($name:expr, $kind:tt, $help:expr) => {
        Family {
            name: $name,
            help: $help,
            kind: family!(@kind $kind),
            header: crate::header!($name, $kind, $help),
        }
    };
    (@kind counter) => {
        MetricType::Counter
    };
    (@kind gauge) => {
        MetricType::Gauge
    };
}

/// A [`Series`] of `name` with the label pairs given, its prefix rendered
/// from the same literals: `series!(name, "window" = "10s")`.
macro_rules! series {
    ($name:expr) => {
        Series {
            prefix: Some(concat!($name, " ")),
            labels: &[],
        }
    };
    ($name:expr, $k:literal = $v:literal $(, $k2:literal = $v2:literal)*) => {
        Series {
            prefix: Some(concat!(
                $name, "{", $k, "=\"", $v, "\"" $(, ",", $k2, "=\"", $v2, "\"")*, "} "
            )),
            labels: &[($k, $v) $(, ($k2, $v2))*],
        }
    };
}

/// The families of one resource, `[some, full]`, with their series.
struct Names {
    /// `psi_<r>_{waiting,stalled}_seconds_total`.
    seconds: [(Family, Series<'static>); 2],
    /// `psi_<r>_{waiting,stalled}_ratio`, a series per window.
    ratio: [(Family, [Series<'static>; 3]); 2],
    /// The Go sidecar's gauge, a series per line and window (`10s`, `60s`,
    /// `300s`, `total`).
    legacy: Option<(Family, [[Series<'static>; 4]; 2])>,
}

/// The three windows of the kernel's averages.
macro_rules! windows {
    ($name:expr) => {
        [
            series!($name, "window" = "10s"),
            series!($name, "window" = "60s"),
            series!($name, "window" = "300s"),
        ]
    };
}

/// The four windows of a line of the Go sidecar's gauges.
macro_rules! legacy_windows {
    ($name:expr, $line:literal) => {
        [
            series!($name, "type" = $line, "window" = "10s"),
            series!($name, "type" = $line, "window" = "60s"),
            series!($name, "type" = $line, "window" = "300s"),
            series!($name, "type" = $line, "window" = "total"),
        ]
    };
}

macro_rules! legacy {
    ($name:literal) => {
        Some((
            family!(
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
                    family!(
                        concat!("psi_", $r, "_waiting_seconds_total"),
                        counter,
                        concat!(
                            "Time in seconds that at least one task waited on ",
                            $r,
                            " (PSI some total)"
                        )
                    ),
                    series!(concat!("psi_", $r, "_waiting_seconds_total")),
                ),
                (
                    family!(
                        concat!("psi_", $r, "_stalled_seconds_total"),
                        counter,
                        concat!(
                            "Time in seconds that all non-idle tasks were stalled on ",
                            $r,
                            " (PSI full total)"
                        )
                    ),
                    series!(concat!("psi_", $r, "_stalled_seconds_total")),
                ),
            ],
            ratio: [
                (
                    family!(
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
                    family!(
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

/// Each resource's families, built when compiling.
const NAMES: PerResource<Names> = PerResource::from_array([
    names(Resource::Cpu),
    names(Resource::Memory),
    names(Resource::Io),
    names(Resource::Irq),
]);

const fn names(resource: Resource) -> Names {
    match resource {
        Resource::Cpu => names!("cpu", legacy!("cgroup_monitor_sc_monitored_cpu_psi")),
        Resource::Memory => names!("memory", legacy!("cgroup_monitor_sc_monitored_mem_psi")),
        Resource::Io => names!("io", legacy!("cgroup_monitor_sc_monitored_io_psi")),
        Resource::Irq => names!("irq", None),
    }
}

fn averages(r: &Record) -> [Percent; 3] {
    [r.avg10, r.avg60, r.avg300]
}

const AVAILABLE: Family = family!(
    "psi_pressure_available",
    gauge,
    "Whether the resource's pressure could be read (1) or not (0; see psi_read_errors_total)"
);

/// `psi_pressure_available{resource="..."}` for each resource.
const AVAILABLE_SERIES: PerResource<Series<'static>> = PerResource::from_array([
    series!("psi_pressure_available", "resource" = "cpu"),
    series!("psi_pressure_available", "resource" = "memory"),
    series!("psi_pressure_available", "resource" = "io"),
    series!("psi_pressure_available", "resource" = "irq"),
]);

const READ_ERRORS: Family = family!(
    "psi_read_errors_total",
    counter,
    "Failed reads of a pressure file, by resource and reason (unsupported, disabled, gone, permission, io, parse)"
);

/// The `cpu.stat` families: a counter, its series, which field, and
/// whether it is in microseconds (exported as seconds).
type Throttling = (Family, Series<'static>, fn(&CpuStat) -> Option<u64>, bool);

const THROTTLING: [Throttling; 3] = [
    (
        family!(
            "psi_cpu_throttled_seconds_total",
            counter,
            "Time in seconds the cgroup was throttled by cpu.max (cpu.stat throttled_usec): cpu pressure that is really throttling"
        ),
        series!("psi_cpu_throttled_seconds_total"),
        |s| s.throttled_usec,
        true,
    ),
    (
        family!(
            "psi_cpu_throttled_periods_total",
            counter,
            "Enforcement periods in which the cgroup was throttled (cpu.stat nr_throttled)"
        ),
        series!("psi_cpu_throttled_periods_total"),
        |s| s.nr_throttled,
        false,
    ),
    (
        family!(
            "psi_cpu_periods_total",
            counter,
            "Enforcement periods that have elapsed (cpu.stat nr_periods)"
        ),
        series!("psi_cpu_periods_total"),
        |s| s.nr_periods,
        false,
    ),
];

/// Writes the pressure families of `targets`: for each resource the standard
/// counters, the averages, the legacy gauges and (cpu) the throttling
/// counters, each family's header once, then `psi_pressure_available`.
pub fn write_pressure(enc: &mut Encoder<'_>, families: &Families, targets: &[Snapshot<'_>]) {
    walk_pressure(&mut Text { enc, targets }, families, targets);
}

/// Writes `psi_read_errors_total{resource,reason}`: every count that is not
/// zero, under the family's header (written even with no sample, which the
/// text format allows).
///
/// ```
/// use psi_core::expose::{Encoder, write_read_errors};
/// use psi_core::read::{ErrorCounts, PressureFile};
///
/// let mut counts = ErrorCounts::default();
/// let error = PressureFile::new("/nonexistent/io.pressure").read().unwrap_err();
/// counts.count(psi_core::Resource::Io, &error);
/// let mut out = Vec::new();
/// write_read_errors(&mut Encoder::new(&mut out), &counts);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.ends_with("psi_read_errors_total{resource=\"io\",reason=\"gone\"} 1\n"));
/// ```
pub fn write_read_errors(enc: &mut Encoder<'_>, counts: &ErrorCounts) {
    walk_read_errors(&mut Text { enc, targets: &[] }, counts);
}

/// The walk behind [`write_pressure`], into any [`Sink`].
pub(crate) fn walk_pressure(sink: &mut impl Sink, families: &Families, targets: &[Snapshot<'_>]) {
    let records = |resource, line| {
        targets
            .iter()
            .enumerate()
            .filter_map(move |(i, t)| Some((Some(i), t.record(resource, line)?)))
    };
    for (resource, names) in NAMES.iter() {
        for line in Line::ALL {
            let idx = line as usize;
            if records(resource, line).next().is_none() {
                continue;
            }
            if families.standard
                && let Some((family, series)) = names.seconds.get(idx)
            {
                sink.family(family);
                for (i, r) in records(resource, line) {
                    sink.sample(family, *series, i, Value::Seconds(r.total));
                }
            }
            if families.averages
                && let Some((family, series)) = names.ratio.get(idx)
            {
                sink.family(family);
                for (i, r) in records(resource, line) {
                    for (s, avg) in series.iter().zip(averages(r)) {
                        sink.sample(family, *s, i, Value::Ratio(avg));
                    }
                }
            }
        }
        if families.legacy
            && let Some((family, series)) = &names.legacy
        {
            walk_legacy(sink, family, series, resource, targets);
        }
        if resource == Resource::Cpu && families.throttling {
            walk_throttling(sink, targets);
        }
    }
    if !families.availability {
        return;
    }
    sink.family(&AVAILABLE);
    for i in 0..targets.len() {
        for (resource, series) in AVAILABLE_SERIES.iter() {
            let ok = targets
                .get(i)
                .is_some_and(|t| t.pressure[resource].is_some());
            sink.sample(&AVAILABLE, *series, Some(i), Value::Int(u64::from(ok)));
        }
    }
}

/// The walk behind [`write_read_errors`], into any [`Sink`].
pub(crate) fn walk_read_errors(sink: &mut impl Sink, counts: &ErrorCounts) {
    sink.family(&READ_ERRORS);
    for (resource, reason, n) in counts.iter() {
        let labels = [("resource", resource.name()), ("reason", reason.name())];
        let series = Series {
            prefix: None,
            labels: &labels,
        };
        sink.sample(&READ_ERRORS, series, None, Value::Int(n));
    }
}

/// The Go sidecar's gauges: percent as the kernel prints it, total in µs.
fn walk_legacy(
    sink: &mut impl Sink,
    family: &Family,
    series: &[[Series<'static>; 4]; 2],
    resource: Resource,
    targets: &[Snapshot<'_>],
) {
    let any = targets
        .iter()
        .any(|t| Line::ALL.iter().any(|&l| t.record(resource, l).is_some()));
    if !any {
        return;
    }
    sink.family(family);
    for (i, t) in targets.iter().enumerate() {
        for (line, series) in Line::ALL.into_iter().zip(series) {
            let Some(r) = t.record(resource, line) else {
                continue;
            };
            let values = averages(r).map(Value::Percent);
            let values = [values[0], values[1], values[2], Value::Int(r.total)];
            for (s, v) in series.iter().zip(values) {
                sink.sample(family, *s, Some(i), v);
            }
        }
    }
}

fn walk_throttling(sink: &mut impl Sink, targets: &[Snapshot<'_>]) {
    for (family, series, pick, micros) in &THROTTLING {
        let value = |t: &Snapshot<'_>| t.cpu_stat.as_ref().and_then(pick);
        if !targets.iter().any(|t| value(t).is_some()) {
            continue;
        }
        sink.family(family);
        for (i, t) in targets.iter().enumerate() {
            if let Some(v) = value(t) {
                let v = if *micros {
                    Value::Seconds(v)
                } else {
                    Value::Int(v)
                };
                sink.sample(family, *series, Some(i), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expose::MetricType;
    use crate::expose::encoder::tests::text;

    fn snapshot(file: &[u8]) -> Snapshot<'static> {
        let p = crate::parse(file).expect("valid");
        let mut pressure = PerResource::default();
        pressure[Resource::Cpu] = Some(p);
        pressure[Resource::Io] = Some(p);
        Snapshot {
            labels: Labels::none(),
            pressure,
            cpu_stat: None,
        }
    }

    const FILE: &[u8] = b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                          full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";

    #[test]
    fn unreadable_resources_are_absent_and_marked_unavailable() {
        let t = text(|e| write_pressure(e, &Families::default(), &[snapshot(FILE)]));
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
    fn each_family_header_once_for_many_targets() {
        let (la, lb) = (
            Labels::new(&[("cgroup", "/a")]),
            Labels::new(&[("cgroup", "/b")]),
        );
        let mut a = snapshot(FILE);
        a.labels = &la;
        let mut b = a;
        b.labels = &lb;
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
            availability: true,
        };
        let t = text(|e| write_pressure(e, &off, &[snapshot(FILE)]));
        assert!(!t.contains("seconds_total"), "{t}");
        assert!(!t.contains("_ratio"), "{t}");
        assert!(!t.contains("cgroup_monitor"), "{t}");
        assert!(t.contains("psi_pressure_available"));
    }

    /// Every target readable, with throttling: every family and sample.
    fn everything(labels: &Labels) -> Snapshot<'_> {
        let p = crate::parse(FILE).expect("valid");
        Snapshot {
            labels,
            pressure: PerResource::from_fn(|_| Some(p)),
            cpu_stat: Some(crate::cpu_stat::parse(
                b"nr_periods 10\nnr_throttled 3\nthrottled_usec 1500000\n",
            )),
        }
    }

    #[test]
    fn known_prefixes_write_what_sample_writes() {
        // A target without labels is written from the prefixes rendered
        // when compiling, one with labels from their pieces; less the label,
        // the same text, and each sample what `sample` writes.
        let fast = text(|e| write_pressure(e, &Families::default(), &[everything(Labels::none())]));
        let labels = Labels::new(&[("x", "y\"z")]);
        let slow = text(|e| write_pressure(e, &Families::default(), &[everything(&labels)]));
        let x = "x=\"y\\\"z\"";
        assert_eq!(
            slow.replace(&format!("{{{x}}}"), "")
                .replace(&format!("{x},"), ""),
            fast
        );
        let by_sample = text(|e| {
            let extra = [("type", "full"), ("window", "total")];
            e.sample(
                "cgroup_monitor_sc_monitored_mem_psi",
                &[("x", "y\"z")],
                &extra,
                Value::Int(98765432),
            );
            e.sample(
                "psi_cpu_throttled_seconds_total",
                &[("x", "y\"z")],
                &[],
                Value::Seconds(1_500_000),
            );
        });
        for line in by_sample.lines() {
            assert!(slow.contains(&format!("{line}\n")), "{line} in {slow}");
        }
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
        let all = text(|e| write_pressure(e, &Families::default(), &[everything(Labels::none())]));
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
        let mut s = snapshot(FILE);
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
