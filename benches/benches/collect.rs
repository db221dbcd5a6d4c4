//! One collect of the `prometheus` feature's `PsiCollector` beside the text
//! writer over the same target, both reading kept-open files.
//!
//! `cargo bench -p psi-benches --bench collect`; see BENCHMARKS.md.
//!
//! - `expose`: `PressureSet::read_all` + `cpu.stat`, then
//!   `expose::write_pressure` and `write_read_errors` into a reused buffer
//!   (what psi-exporter does at every scrape);
//! - `collect`: `Collector::collect`, the same reads, then protobuf
//!   families;
//! - `gather_text`: the collector in a `Registry`, `gather` (which sorts)
//!   and the `prometheus` crate's `TextEncoder` into a reused buffer: what
//!   a program's own `/metrics` costs.
//!
//! Two targets: `saved`, a saved cgroup (cpu, memory, io, a throttled
//! `cpu.stat`) in a temporary directory, and `system`, the real
//! `/proc/pressure` (irq unsupported there, as on this machine).

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use prometheus::core::Collector;
use prometheus::{Encoder as _, Registry, TextEncoder};
use psi_core::expose::{self, Encoder, Families, Labels, Snapshot};
use psi_core::prometheus::PsiCollector;
use psi_core::read::{CpuStatFile, ErrorCounts};
use psi_core::target::Target;

const CPU: &str = "some avg10=44.15 avg60=9.27 avg300=1.98 total=5938186\n\
                   full avg10=0.00 avg60=0.00 avg300=0.00 total=2595\n";
const IO: &str = "some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                  full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";
const CPU_STAT: &str =
    "usage_usec 181234567\nnr_periods 2210\nnr_throttled 1642\nthrottled_usec 80923412\n";

fn collect(c: &mut Criterion) {
    let saved = psi_testkit::files::dir(&[
        ("cpu.pressure", CPU),
        ("memory.pressure", IO),
        ("io.pressure", IO),
        ("cpu.stat", CPU_STAT),
    ]);
    let targets = [
        (
            "saved",
            Target::at(saved.path().to_owned(), None).expect("a saved cgroup"),
        ),
        ("system", Target::system(Path::new("/proc"))),
    ];
    // The exporter's families, for both.
    let families = Families::default();
    let mut g = c.benchmark_group("collect");
    for (name, target) in targets {
        let mut files = target.pressure_set();
        let mut cpu_stat = CpuStatFile::new(&target.dir);
        let mut errors = ErrorCounts::default();
        let mut out = Vec::with_capacity(16 * 1024);
        g.bench_function(format!("{name}/expose"), |b| {
            b.iter(|| {
                let reading = files.read_all();
                errors.count_reading(&reading);
                let snapshot = Snapshot {
                    labels: Labels::none(),
                    pressure: reading.values(),
                    cpu_stat: cpu_stat.read().ok(),
                };
                out.clear();
                let mut enc = Encoder::new(&mut out);
                expose::write_pressure(&mut enc, &families, black_box(&[snapshot]));
                expose::write_read_errors(&mut enc, &errors);
                out.len()
            });
        });
        let collector = PsiCollector::builder()
            .target(target, &[])
            .families(families)
            .build()
            .expect("a collector");
        g.bench_function(format!("{name}/collect"), |b| {
            b.iter(|| black_box(collector.collect()).len());
        });
        let registry = Registry::new();
        registry.register(Box::new(collector)).expect("registered");
        let encoder = TextEncoder::new();
        g.bench_function(format!("{name}/gather_text"), |b| {
            b.iter(|| {
                out.clear();
                encoder
                    .encode(&registry.gather(), &mut out)
                    .expect("encoded");
                out.len()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, collect);
criterion_main!(benches);
