//! psi's metric families in a program's own [`::prometheus::Registry`]
//! (feature `prometheus`).
//!
//! [`PsiCollector`] is a [`::prometheus::core::Collector`] over one or more
//! targets: the system, cgroups, the cgroup of a pid. It reads their
//! pressure files at collect time, through files it keeps open, and yields
//! the families `psi-exporter` serves, with the same names, help, types
//! and labels (they come from one table, [`crate::expose`]'s): counters in
//! seconds, the kernel averages as ratios, `cpu.stat`'s throttling,
//! `psi_pressure_available{resource}` and
//! `psi_read_errors_total{resource,reason}`. A resource that cannot be read
//! is absent from the pressure families, never a zero, and counted in
//! `psi_read_errors_total`.
//!
//! Three lines put the whole system's pressure beside a program's own
//! metrics:
//!
//! ```no_run
//! let registry = prometheus::Registry::new();
//! let psi = psi_core::prometheus::PsiCollector::system()?;
//! registry.register(Box::new(psi))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Several targets go in one collector, each named by its labels (every
//! target the same label names, each its own values):
//!
//! ```no_run
//! use psi_core::prometheus::PsiCollector;
//!
//! let mount = psi_core::cgroup::find_mount("/proc".as_ref())?.point;
//! let psi = PsiCollector::builder()
//!     .system(&[("target", "system")])
//!     .cgroup("system.slice", Some(&mount), &[("target", "system.slice")])?
//!     .pid(std::process::id(), &[("target", "self")])?
//!     .build()?;
//! let registry = prometheus::Registry::new();
//! registry.register(Box::new(psi))?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A registry takes one `PsiCollector`: a second would describe the same
//! families again, which [`Registry::register`](::prometheus::Registry::register)
//! refuses. The Go sidecar's legacy gauges are off by default here
//! ([`Builder::families`] turns them on).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use ::prometheus::core::{Collector, Desc};
use ::prometheus::proto::{self, LabelPair, Metric, MetricFamily};

use crate::cgroup::DirError;
use crate::cgroup::Kind;
use crate::cpu_stat::CpuStat;
use crate::discover::{self, DiscoverError};
use crate::expose::{
    Families, Family, Labels, MetricType, Series, Sink, Snapshot, Value, walk_pressure,
    walk_read_errors,
};
use crate::read::{CpuStatFile, ErrorCounts, PressureSet};
use crate::target::Target;
use crate::{PerResource, Pressure, Record};

/// Why a [`PsiCollector`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// A cgroup path is not a directory of pressure files.
    #[error(transparent)]
    Dir(#[from] DirError),
    /// The cgroup of a pid could not be found.
    #[error(transparent)]
    Discover(#[from] DiscoverError),
    /// Two targets have the same labels: their series would collide.
    #[error("two targets have the labels {{{labels}}} (each target needs its own)")]
    SameLabels {
        /// The labels, rendered as in the text format.
        labels: String,
    },
    /// Targets have different label names.
    #[error(
        "targets have different label names ({first} and {other}; every target needs the same)"
    )]
    LabelNames {
        /// The first target's label names, comma-separated.
        first: String,
        /// Another target's.
        other: String,
    },
    /// A label name is not valid, or is one of psi's own (`window`,
    /// `type`, `resource`, `reason`).
    #[error("invalid metric description")]
    Desc(#[source] ::prometheus::Error),
}

/// A target's label pairs as the caller gave them.
type Pairs = Vec<(String, String)>;

/// Builds a [`PsiCollector`] over several targets.
#[derive(Debug)]
#[must_use]
pub struct Builder {
    targets: Vec<(Target, Pairs)>,
    families: Families,
}

impl Builder {
    /// Adds `target`, its samples labelled with `labels`.
    pub fn target(mut self, target: Target, labels: &[(&str, &str)]) -> Self {
        let pairs = labels
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self.targets.push((target, pairs));
        self
    }

    /// Adds the whole system (`/proc/pressure`).
    pub fn system(self, labels: &[(&str, &str)]) -> Self {
        self.target(Target::system(Path::new("/proc")), labels)
    }

    /// Adds a cgroup directory as a person gives it
    /// ([`Target::resolve`]): absolute, or relative to `mount`, the cgroup
    /// v2 mount point ([`crate::cgroup::find_mount`]).
    pub fn cgroup(
        self,
        path: impl AsRef<Path>,
        mount: Option<&Path>,
        labels: &[(&str, &str)],
    ) -> Result<Self, CollectorError> {
        let target = Target::resolve(path.as_ref(), mount)?;
        Ok(self.target(target, labels))
    }

    /// Adds the cgroup of process `pid`, found now
    /// ([`discover::cgroup_of`] with the default configuration). The
    /// collector keeps reading that cgroup after the process has gone.
    pub fn pid(self, pid: u32, labels: &[(&str, &str)]) -> Result<Self, CollectorError> {
        let config = discover::Config::default();
        let dir = discover::cgroup_of(&config, pid)?;
        let mut target = Target::at(dir, config.cgroup_mount.as_deref())?;
        target.pids = vec![pid];
        Ok(self.target(target, labels))
    }

    /// Which families to yield: by default all but the Go sidecar's legacy
    /// gauges (`cgroup_monitor_sc_*`), which are for its dashboards.
    pub fn families(mut self, families: Families) -> Self {
        self.families = families;
        self
    }

    /// The collector; its files are opened at the first collect.
    pub fn build(self) -> Result<PsiCollector, CollectorError> {
        check_labels(&self.targets)?;
        let names: Vec<&str> = self
            .targets
            .first()
            .map(|(_, pairs)| pairs.iter().map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        let descs = descs(&self.families, &names)?;
        let targets = self
            .targets
            .into_iter()
            .map(|(target, pairs)| Watched::new(&target, &pairs))
            .collect();
        Ok(PsiCollector {
            descs,
            families: self.families,
            state: Mutex::new(State {
                targets,
                errors: ErrorCounts::default(),
            }),
        })
    }
}

/// Every target the same label names, no two the same labels.
fn check_labels(targets: &[(Target, Pairs)]) -> Result<(), CollectorError> {
    let names = |pairs: &Pairs| {
        pairs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    let Some((_, first)) = targets.first() else {
        return Ok(());
    };
    for (i, (_, pairs)) in targets.iter().enumerate() {
        if names(pairs) != names(first) {
            return Err(CollectorError::LabelNames {
                first: names(first),
                other: names(pairs),
            });
        }
        if targets.iter().take(i).any(|(_, earlier)| earlier == pairs) {
            let borrowed: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            return Err(CollectorError::SameLabels {
                labels: Labels::new(&borrowed).as_str().to_owned(),
            });
        }
    }
    Ok(())
}

/// A [`::prometheus::core::Collector`] of psi's families over a set of
/// targets, read at every collect (see the [module docs](self)).
#[derive(Debug)]
pub struct PsiCollector {
    descs: Vec<Desc>,
    families: Families,
    /// `collect` takes `&self`, and reading re-uses the kept-open files.
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    targets: Vec<Watched>,
    errors: ErrorCounts,
}

/// One target's kept-open files and labels.
#[derive(Debug)]
struct Watched {
    files: PressureSet,
    cpu_stat: Option<CpuStatFile>,
    labels: Vec<LabelPair>,
}

impl Watched {
    fn new(target: &Target, pairs: &Pairs) -> Self {
        let labels = pairs
            .iter()
            .map(|(k, v)| label(k.clone(), v.clone()))
            .collect();
        Watched {
            files: target.pressure_set(),
            // A cgroup's throttling sits beside its cpu pressure, as the
            // exporter has it; the system has no cpu.stat.
            cpu_stat: (target.kind != Kind::System).then(|| CpuStatFile::new(&target.dir)),
            labels,
        }
    }
}

impl PsiCollector {
    /// A collector of the whole system's pressure (`/proc/pressure`),
    /// without target labels.
    pub fn system() -> Result<PsiCollector, CollectorError> {
        Self::builder().system(&[]).build()
    }

    /// A builder for several targets, or one with labels.
    pub fn builder() -> Builder {
        Builder {
            targets: Vec::new(),
            families: Families {
                legacy: false,
                ..Families::default()
            },
        }
    }

    /// Reads every target now and returns its families, each with at least
    /// one sample: what [`Collector::collect`] returns.
    pub fn read(&self) -> Vec<MetricFamily> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let State { targets, errors } = &mut *state;
        let mut read: Vec<(PerResource<Option<Pressure>>, Option<CpuStat>)> =
            Vec::with_capacity(targets.len());
        for t in targets.iter_mut() {
            let reading = t.files.read_all();
            errors.count_reading(&reading);
            let cpu_stat = t.cpu_stat.as_mut().and_then(|f| f.read().ok());
            read.push((reading.values(), cpu_stat));
        }
        let snapshots: Vec<Snapshot<'_>> = read
            .iter()
            .map(|&(pressure, cpu_stat)| Snapshot {
                labels: Labels::none(),
                pressure,
                cpu_stat,
            })
            .collect();
        let labels: Vec<&[LabelPair]> = targets.iter().map(|t| t.labels.as_slice()).collect();
        let mut sink = Proto {
            targets: &labels,
            out: Vec::new(),
        };
        walk_pressure(&mut sink, &self.families, &snapshots);
        walk_read_errors(&mut sink, errors);
        sink.finish()
    }
}

impl Collector for PsiCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.read()
    }
}

/// The description of every family `families` can yield, with the
/// targets' label names (`names`) before each family's own: found by the
/// same walk as the samples, over a target that has everything.
fn descs(families: &Families, names: &[&str]) -> Result<Vec<Desc>, CollectorError> {
    let record = Some(Record::default());
    let every = Snapshot {
        labels: Labels::none(),
        pressure: PerResource::from_fn(|_| {
            Some(Pressure {
                some: record,
                full: record,
            })
        }),
        cpu_stat: Some(CpuStat {
            usage_usec: Some(0),
            nr_periods: Some(0),
            nr_throttled: Some(0),
            throttled_usec: Some(0),
        }),
    };
    let mut sink = Descs {
        names,
        out: Vec::new(),
    };
    walk_pressure(&mut sink, families, &[every]);
    walk_read_errors(&mut sink, &ErrorCounts::EVERY);
    sink.out
        .into_iter()
        .map(|(family, labels)| {
            let desc = Desc::new(
                family.name.to_owned(),
                family.help.to_owned(),
                labels,
                Default::default(),
            );
            desc.map_err(CollectorError::Desc)
        })
        .collect()
}

/// Collects each family's label names from its first sample.
struct Descs<'a> {
    names: &'a [&'a str],
    out: Vec<(Family, Vec<String>)>,
}

impl Sink for Descs<'_> {
    fn family(&mut self, family: &Family) {
        self.out.push((*family, Vec::new()));
    }

    fn sample(&mut self, family: &Family, series: Series<'_>, target: Option<usize>, _: Value) {
        let Some((last, labels)) = self.out.last_mut() else {
            return;
        };
        if last.name != family.name || !labels.is_empty() {
            return;
        }
        let own = series.labels.iter().map(|&(k, _)| k);
        let theirs = self.names.iter().copied().filter(|_| target.is_some());
        *labels = theirs.chain(own).map(str::to_owned).collect();
    }
}

/// Protobuf families, as the `prometheus` crate's encoders take them.
struct Proto<'a> {
    targets: &'a [&'a [LabelPair]],
    out: Vec<MetricFamily>,
}

impl Proto<'_> {
    /// The families with at least one sample: the text encoder refuses an
    /// empty one.
    fn finish(mut self) -> Vec<MetricFamily> {
        self.out.retain(|f| !f.get_metric().is_empty());
        self.out
    }
}

impl Sink for Proto<'_> {
    fn family(&mut self, family: &Family) {
        let mut f = MetricFamily::default();
        f.set_name(family.name.to_owned());
        f.set_help(family.help.to_owned());
        f.set_field_type(match family.kind {
            MetricType::Counter => proto::MetricType::COUNTER,
            MetricType::Gauge => proto::MetricType::GAUGE,
        });
        self.out.push(f);
    }

    fn sample(&mut self, family: &Family, series: Series<'_>, target: Option<usize>, value: Value) {
        let Some(f) = self.out.last_mut().filter(|f| f.name() == family.name) else {
            return;
        };
        let theirs = target
            .and_then(|i| self.targets.get(i))
            .copied()
            .unwrap_or_default();
        let mut labels = Vec::with_capacity(theirs.len() + series.labels.len());
        labels.extend_from_slice(theirs);
        labels.extend(
            series
                .labels
                .iter()
                .map(|&(k, v)| label(k.to_owned(), v.to_owned())),
        );
        let mut metric = Metric::from_label(labels);
        let v = value.to_f64();
        match family.kind {
            MetricType::Counter => {
                let mut c = proto::Counter::default();
                c.set_value(v);
                metric.set_counter(c);
            }
            MetricType::Gauge => {
                let mut g = proto::Gauge::default();
                g.set_value(v);
                metric.set_gauge(g);
            }
        }
        f.mut_metric().push(metric);
    }
}

fn label(name: String, value: String) -> LabelPair {
    let mut pair = LabelPair::default();
    pair.set_name(name);
    pair.set_value(value);
    pair
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_description_is_valid_and_psi_labels_are_refused() {
        let all = Families::default();
        let descs = descs(&all, &["cgroup"]).expect("valid");
        let names: Vec<&str> = descs.iter().map(|d| d.fq_name.as_str()).collect();
        for name in [
            "psi_cpu_waiting_seconds_total",
            "psi_irq_stalled_ratio",
            "cgroup_monitor_sc_monitored_mem_psi",
            "psi_cpu_throttled_periods_total",
            "psi_pressure_available",
            "psi_read_errors_total",
        ] {
            assert!(names.contains(&name), "{name} in {names:?}");
        }
        let ratio = descs
            .iter()
            .find(|d| d.fq_name == "psi_io_waiting_ratio")
            .expect("ratio");
        assert_eq!(ratio.variable_labels, ["cgroup", "window"]);
        let errors = descs
            .iter()
            .find(|d| d.fq_name == "psi_read_errors_total")
            .expect("errors");
        assert_eq!(errors.variable_labels, ["resource", "reason"]);
        let clash = PsiCollector::builder().system(&[("window", "x")]).build();
        assert!(matches!(clash, Err(CollectorError::Desc(_))), "{clash:?}");
    }

    #[test]
    fn targets_need_the_same_label_names_and_their_own_values() {
        let dir = psi_testkit::files::dir(&[("a/cpu.pressure", ""), ("b/cpu.pressure", "")]);
        let a = || Target::at(dir.path().join("a"), None).expect("a copy");
        let same = PsiCollector::builder()
            .target(a(), &[("t", "x")])
            .target(a(), &[("t", "x")])
            .build();
        let e = same.expect_err("same labels");
        assert_eq!(
            e.to_string(),
            "two targets have the labels {t=\"x\"} (each target needs its own)"
        );
        let mixed = PsiCollector::builder()
            .target(a(), &[("t", "x")])
            .target(a(), &[("u", "x")])
            .build();
        assert!(matches!(mixed, Err(CollectorError::LabelNames { .. })));
    }
}
