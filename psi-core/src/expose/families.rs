//! psi's metric families: names, help, types and labels, written for any
//! number of targets.

use super::encoder::{Encoder, Labels, Value};
use crate::cpu_stat::CpuStat;
use crate::{Line, PerResource, Percent, Pressure, Record, Resource};

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
            header: crate::header!($name, $kind, $help),
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

const AVAILABLE: Known = known!(
    "psi_pressure_available",
    gauge,
    "Whether the resource's pressure could be read (1) or not (0; see psi_read_errors_total)"
);

/// `psi_pressure_available{resource="..."} ` for each resource.
const AVAILABLE_PREFIX: PerResource<&str> = PerResource::from_array([
    "psi_pressure_available{resource=\"cpu\"} ",
    "psi_pressure_available{resource=\"memory\"} ",
    "psi_pressure_available{resource=\"io\"} ",
    "psi_pressure_available{resource=\"irq\"} ",
]);

/// Writes the pressure families of `targets`: for each resource the standard
/// counters, the averages, the legacy gauges and (cpu) the throttling
/// counters, each family's header once, then `psi_pressure_available`.
pub fn write_pressure(enc: &mut Encoder<'_>, families: &Families, targets: &[Snapshot<'_>]) {
    for (resource, names) in NAMES.iter() {
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
                        enc.known(prefix, family.name, t.labels, v);
                    }
                }
            }
            if families.averages
                && let Some((family, prefixes)) = names.ratio.get(idx)
            {
                enc.header(family.header);
                for t in targets {
                    if let Some(r) = t.record(resource, line) {
                        for (prefix, avg) in prefixes.iter().zip(averages(r)) {
                            enc.known(prefix, family.name, t.labels, Value::Ratio(avg));
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
    if !families.availability {
        return;
    }
    enc.header(AVAILABLE.header);
    for t in targets {
        for (resource, prefix) in AVAILABLE_PREFIX.iter() {
            let ok = t.pressure[resource].is_some();
            let v = Value::Int(u64::from(ok));
            enc.known(prefix, AVAILABLE.name, t.labels, v);
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
            let values = averages(r).map(Value::Percent);
            let values = [values[0], values[1], values[2], Value::Int(r.total)];
            for (prefix, v) in prefixes.iter().zip(values) {
                enc.known(prefix, family.name, t.labels, v);
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
                enc.known(prefix, family.name, t.labels, v);
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
