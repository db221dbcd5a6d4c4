//! Parsing pressure files and writing their numbers, beside procfs-core.
//!
//! `cargo bench -p psi-benches --bench parse`; see BENCHMARKS.md for figures.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use procfs_core::{CpuPressure, FromBufRead};
use psi_core::decimal::{MAX_LEN, ratio, seconds};

/// A typical two-line file (`/proc/pressure/io` on a busy machine).
const TYPICAL: &[u8] = b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                         full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";

/// A cpu file from a kernel before 5.13: `some` only.
const CPU_SOME_ONLY: &[u8] = b"some avg10=0.45 avg60=0.30 avg300=0.12 total=4567890\n";

/// The longest values the kernel can print: the worst case for digit loops.
const MAX_VALUES: &[u8] = b"some avg10=100.00 avg60=100.00 avg300=100.00 total=18446744073709551615\n\
                            full avg10=100.00 avg60=100.00 avg300=100.00 total=18446744073709551615\n";

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (name, input) in [
        ("typical", TYPICAL),
        ("cpu-some-only", CPU_SOME_ONLY),
        ("max-values", MAX_VALUES),
    ] {
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(name, |b| {
            b.iter(|| psi_core::parse(black_box(input)));
        });
    }
    g.finish();
}

/// Both parsers on the same input, in one group, so one run gives the ratio.
/// procfs-core reads from a `BufRead`; a `&[u8]` is one, so no `BufReader`
/// (and its 8 KiB buffer) is added to its cost. It needs both lines, so the
/// one-line cpu file is not compared (procfs-core rejects it).
fn versus_procfs(c: &mut Criterion) {
    for (group, input) in [("typical", TYPICAL), ("max-values", MAX_VALUES)] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function("psi-core", |b| {
            b.iter(|| psi_core::parse(black_box(input)));
        });
        g.bench_function("procfs-core", |b| {
            b.iter(|| CpuPressure::from_buf_read(black_box(input)));
        });
        g.finish();
    }
}

fn decimal(c: &mut Criterion) {
    let mut g = c.benchmark_group("decimal");
    g.throughput(Throughput::Elements(1));
    for (name, micros) in [
        ("seconds/typical", 123_456_789u64),
        ("seconds/whole", 5_000_000),
        ("seconds/max", u64::MAX),
    ] {
        g.bench_function(name, |b| {
            let mut buf = [0u8; MAX_LEN];
            b.iter(|| seconds(black_box(micros), &mut buf).len());
        });
    }
    for (name, hundredths) in [
        ("ratio/typical", 1234u32),
        ("ratio/zero", 0),
        ("ratio/max", u32::MAX),
    ] {
        g.bench_function(name, |b| {
            let mut buf = [0u8; MAX_LEN];
            b.iter(|| ratio(black_box(hundredths), &mut buf).len());
        });
    }
    // What the writers replace: `f64` formatting into a `String`.
    g.bench_function("seconds/f64-to_string", |b| {
        b.iter(|| (black_box(123_456_789u64) as f64 / 1e6).to_string());
    });
    g.finish();
}

criterion_group!(benches, parse, versus_procfs, decimal);
criterion_main!(benches);
