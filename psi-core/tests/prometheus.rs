//! The `prometheus` feature's collector against the text writer it must
//! agree with: the same families, help, types, series and values over the
//! same files, valid for `promtool`; and on a real cgroup.
#![cfg(feature = "prometheus")]

use std::collections::BTreeMap;
use std::path::Path;

use prometheus::{Encoder as _, Registry, TextEncoder};
use psi_core::expose::{self, Encoder, Families, Labels, Snapshot};
use psi_core::prometheus::PsiCollector;
use psi_core::read::{CpuStatFile, ErrorCounts};
use psi_core::target::Target;
use psi_testkit::cgroup::{self, TestCgroup};
use psi_testkit::http::promtool_check;

const STRESSED: &str = include_str!("data/cgroup-cpu-stressed");
const MEMORY: &str = include_str!("data/cgroup-memory");
const MAX: &str = include_str!("data/max-values");
const THROTTLED: &str = include_str!("data/cpu-stat-throttled");

/// A text exposition taken apart: each family's `# HELP` and `# TYPE`
/// lines, and each series (name and labels) with its value.
#[derive(Debug, PartialEq)]
struct Exposition {
    headers: BTreeMap<String, Vec<String>>,
    samples: BTreeMap<String, f64>,
}

fn exposition(text: &str) -> Exposition {
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for line in text.lines() {
        if let Some(header) = line.strip_prefix("# ") {
            let name = header.split(' ').nth(1).expect("a family name");
            headers
                .entry(name.to_owned())
                .or_default()
                .push(line.to_owned());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("a sample");
            let value: f64 = value.parse().expect("a number");
            let earlier = samples.insert(series.to_owned(), value);
            assert!(earlier.is_none(), "{series} twice in\n{text}");
        }
    }
    Exposition { headers, samples }
}

/// What the collector yields, through a registry and the crate's text
/// encoder, as a user's `/metrics` would serve it.
fn gathered(collector: PsiCollector) -> String {
    let registry = Registry::new();
    registry.register(Box::new(collector)).expect("registered");
    let mut out = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut out)
        .expect("encoded");
    String::from_utf8(out).expect("utf-8")
}

/// What psi_core::expose writes for the same targets, read once.
fn exposed(targets: &[(Target, Labels)], families: &Families) -> String {
    let mut errors = ErrorCounts::default();
    let mut read = Vec::new();
    for (target, _) in targets {
        let reading = target.pressure_set().read_all();
        errors.count_reading(&reading);
        let cpu_stat = CpuStatFile::new(&target.dir).read().ok();
        read.push((reading.values(), cpu_stat));
    }
    let snapshots: Vec<Snapshot<'_>> = targets
        .iter()
        .zip(&read)
        .map(|((_, labels), &(pressure, cpu_stat))| Snapshot {
            labels,
            pressure,
            cpu_stat,
        })
        .collect();
    let mut out = Vec::new();
    let mut enc = Encoder::new(&mut out);
    expose::write_pressure(&mut enc, families, &snapshots);
    expose::write_read_errors(&mut enc, &errors);
    String::from_utf8(out).expect("utf-8")
}

/// A saved cgroup: cpu, memory and io pressure and a throttled cpu.stat,
/// no irq (unsupported, as on a kernel without IRQ accounting).
fn saved() -> tempfile::TempDir {
    psi_testkit::files::dir(&[
        ("a/cpu.pressure", STRESSED),
        ("a/memory.pressure", MEMORY),
        ("a/io.pressure", MAX),
        ("a/cpu.stat", THROTTLED),
        ("b/cpu.pressure", MAX),
        (
            "b/irq.pressure",
            "full avg10=1.02 avg60=0.77 avg300=0.31 total=22330871\n",
        ),
        ("b/memory.pressure", "some avg10=garbage\n"),
    ])
}

fn copy(dir: &Path) -> Target {
    Target::at(dir.to_owned(), None).expect("a saved copy")
}

#[test]
fn one_target_yields_what_expose_writes() {
    let dir = saved();
    let families = Families::default();
    let collector = PsiCollector::builder()
        .target(copy(&dir.path().join("a")), &[])
        .families(families)
        .build()
        .expect("built");
    let text = gathered(collector);
    promtool_check(&text);
    let want = exposed(
        &[(copy(&dir.path().join("a")), Labels::default())],
        &families,
    );
    assert_eq!(exposition(&text), exposition(&want), "{text}\n---\n{want}");
    // Spot checks of what the comparison covers.
    for sample in [
        "psi_cpu_waiting_seconds_total 5.938186\n",
        "psi_cpu_waiting_ratio{window=\"10s\"} 0.4415\n",
        "psi_io_stalled_seconds_total 18446744073709.55\n",
        "psi_cpu_throttled_seconds_total 80.923412\n",
        "cgroup_monitor_sc_monitored_cpu_psi{type=\"some\",window=\"10s\"} 44.15\n",
        "psi_pressure_available{resource=\"irq\"} 0\n",
        "psi_read_errors_total{resource=\"irq\",reason=\"unsupported\"} 1\n",
    ] {
        assert!(text.contains(sample), "{sample} in\n{text}");
    }
    assert!(!text.contains("psi_irq_"), "no fake zeros:\n{text}");
}

#[test]
fn labelled_targets_yield_what_expose_writes_and_errors_accumulate() {
    let dir = saved();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let collector = PsiCollector::builder()
        .target(copy(&a), &[("cgroup", "/a")])
        .target(copy(&b), &[("cgroup", "/b")])
        .build()
        .expect("built");
    let families = Families {
        legacy: false,
        ..Families::default()
    };
    let targets = [
        (copy(&a), Labels::new(&[("cgroup", "/a")])),
        (copy(&b), Labels::new(&[("cgroup", "/b")])),
    ];
    let registry = Registry::new();
    registry.register(Box::new(collector)).expect("registered");
    let text = |registry: &Registry| {
        TextEncoder::new()
            .encode_to_string(&registry.gather())
            .expect("encoded")
    };
    let first = text(&registry);
    promtool_check(&first);
    assert_eq!(
        exposition(&first),
        exposition(&exposed(&targets, &families))
    );
    assert!(first.contains("psi_memory_waiting_seconds_total{cgroup=\"/a\"} 0\n"));
    assert!(!first.contains("psi_memory_waiting_seconds_total{cgroup=\"/b\"}"));
    assert!(
        !first.contains("cgroup_monitor_sc_"),
        "legacy is off by default"
    );

    // Failures are counted at every collect, as the exporter counts them
    // at every scrape.
    let second = exposition(&text(&registry));
    let errors = |e: &Exposition, resource: &str, reason: &str| {
        let series =
            format!("psi_read_errors_total{{resource=\"{resource}\",reason=\"{reason}\"}}");
        e.samples.get(&series).copied()
    };
    assert_eq!(errors(&second, "memory", "parse"), Some(2.0));
    assert_eq!(errors(&second, "irq", "unsupported"), Some(2.0));
    assert_eq!(errors(&second, "io", "unsupported"), Some(2.0));
}

#[test]
fn a_real_cgroup_under_load() {
    let Some(root) = cgroup::root() else { return };
    let mut busy = TestCgroup::new(&root, "prometheus").expect("cgroup");
    busy.burn(4).expect("busy loops");
    let mount = psi_core::cgroup::find_mount(Path::new("/proc"))
        .expect("cgroup2 mount")
        .point;
    let target = || Target::at(busy.path().to_owned(), Some(&mount)).expect("a cgroup");
    let collector = PsiCollector::builder()
        .target(target(), &[])
        .build()
        .expect("built");
    let registry = Registry::new();
    registry.register(Box::new(collector)).expect("registered");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let families = Families {
        legacy: false,
        ..Families::default()
    };
    let before = exposition(&exposed(&[(target(), Labels::default())], &families));
    let text = TextEncoder::new()
        .encode_to_string(&registry.gather())
        .expect("encoded");
    promtool_check(&text);
    let after = exposition(&text);
    assert_eq!(after.headers, before.headers);
    assert_eq!(
        after.samples.keys().collect::<Vec<_>>(),
        before.samples.keys().collect::<Vec<_>>()
    );
    // Read a moment later, the counters have not gone down, and the cgroup
    // has stalled on cpu.
    for (series, value) in &before.samples {
        if series.contains("seconds_total") {
            assert!(after.samples[series] >= *value, "{series}");
        }
    }
    assert!(
        after.samples["psi_cpu_waiting_seconds_total"] > 0.0,
        "{text}"
    );
    assert_eq!(
        after.samples["psi_pressure_available{resource=\"cpu\"}"],
        1.0
    );
}

#[test]
fn a_cgroup_by_its_relative_path_and_by_a_pid_in_it_are_one_target() {
    let Some(root) = cgroup::root() else { return };
    let mut cg = TestCgroup::new(&root, "prometheus-builder").expect("cgroup");
    let pid = cg
        .spawn(std::process::Command::new("sleep").arg("30"))
        .expect("a process in the cgroup");
    let name = cg.path().file_name().expect("a name").to_owned();
    let collector = PsiCollector::builder()
        .cgroup(&name, Some(&root), &[("via", "path")])
        .expect("the cgroup")
        .pid(pid, &[("via", "pid")])
        .expect("the pid's cgroup")
        .build()
        .expect("built");
    let got = exposition(&gathered(collector));
    // Both name one cgroup, whose only process sleeps: every series of one
    // is a series of the other, with the same value.
    let of = |via: &str| -> BTreeMap<String, f64> {
        let label = format!("via=\"{via}\"");
        got.samples
            .iter()
            .filter(|(series, _)| series.contains(&label))
            .map(|(series, &v)| (series.replace(&label, ""), v))
            .collect()
    };
    assert!(
        of("path").contains_key("psi_pressure_available{,resource=\"cpu\"}"),
        "{got:?}"
    );
    assert_eq!(of("path"), of("pid"));
}
