//! Writing the pressure families of one target in the text exposition format,
//! as the exporter does at every scrape.
//!
//! `cargo bench -p psi-benches --bench expose`; see BENCHMARKS.md for figures.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use psi_core::cgroup::Kind;
use psi_core::expose::{Encoder, Families, Labels, Snapshot, write_pressure};
use psi_core::{PerResource, Resource};

const CPU: &[u8] = b"some avg10=0.03 avg60=0.10 avg300=0.11 total=1314493452\n\
                     full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
const MEMORY: &[u8] = b"some avg10=0.00 avg60=0.00 avg300=0.00 total=17299214\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=11511729\n";
const IO: &[u8] = b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                    full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";

/// The three files as the reader gives them for `kind` (the system's cpu
/// `full` line left out).
fn snapshot(labels: &Labels, kind: Kind) -> Snapshot<'_> {
    let mut pressure = PerResource::default();
    for (resource, file) in [
        (Resource::Cpu, CPU),
        (Resource::Memory, MEMORY),
        (Resource::Io, IO),
    ] {
        pressure[resource] = psi_core::parse(file)
            .ok()
            .map(|p| kind.measured(resource, p));
    }
    Snapshot {
        labels,
        pressure,
        cpu_stat: None,
    }
}

fn expose(c: &mut Criterion) {
    let mut g = c.benchmark_group("expose");
    let families = Families::default();
    let mut out = Vec::with_capacity(16 * 1024);
    // The exporter's system and sidecar modes: no target labels; and a
    // node-wide exporter, whose every sample carries the cgroup's labels.
    let labels = Labels::new(&[
        ("cgroup", "/kubepods/burstable/pod1234/abcdef"),
        ("container", "app"),
    ]);
    for (name, target) in [
        ("system", snapshot(Labels::none(), Kind::System)),
        ("labelled", snapshot(&labels, Kind::Cgroup)),
    ] {
        let targets = [target];
        g.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                write_pressure(&mut Encoder::new(&mut out), &families, black_box(&targets));
                out.len()
            });
        });
    }
    g.finish();
}

criterion_group!(benches, expose);
criterion_main!(benches);
