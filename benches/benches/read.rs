//! Reading one real pressure file: open + read + close every time, against a
//! kept-open `PressureFile` re-read with `pread` at offset 0.
//!
//! `cargo bench -p psi-benches --bench read`. As root it reads the
//! `cpu.pressure` of a cgroup it creates (`<cgroup2>/psi-test-bench-<pid>-0`,
//! removed at the end); otherwise `/proc/pressure/cpu`, with a note.

use std::fs::File;
use std::hint::black_box;
use std::io::Read;
use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use psi_core::read::PressureFile;
use psi_testkit::cgroup::{self, TestCgroup};

/// Open, read into a stack buffer, close, parse: what a reader without a
/// kept-open file does on every scrape. One `read` suffices: the kernel hands
/// over the whole (sub-page) file at once, as `PressureFile`'s `pread` relies on.
fn open_read_parse(path: &Path) -> psi_core::Pressure {
    let mut buf = [0u8; 256];
    let n = File::open(path)
        .and_then(|mut file| file.read(&mut buf))
        .expect("open and read");
    psi_core::parse(&buf[..n]).expect("parse")
}

fn read(c: &mut Criterion) {
    // An empty cgroup made for the bench, removed on drop.
    let cgroup = cgroup::root().and_then(|root| TestCgroup::new(&root, "bench").ok());
    let path = match &cgroup {
        Some(cg) => cg.path().join("cpu.pressure"),
        None => {
            eprintln!("note: not root or no cgroup v2 mount: reading /proc/pressure/cpu instead");
            PathBuf::from("/proc/pressure/cpu")
        }
    };
    eprintln!("reading {}", path.display());
    let len = std::fs::read(&path).expect("read the pressure file").len();

    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("open-read-close", |b| {
        b.iter(|| open_read_parse(black_box(&path)));
    });
    g.bench_function("std-fs-read", |b| {
        b.iter(|| psi_core::parse(&std::fs::read(black_box(&path)).expect("read")).expect("parse"));
    });
    let mut kept = PressureFile::open(&path).expect("open");
    kept.read().expect("first read");
    g.bench_function("kept-open-pread", |b| {
        b.iter(|| black_box(&mut kept).read().expect("read"));
    });
    g.finish();
    drop(kept);
    drop(cgroup);
}

criterion_group!(benches, read);
criterion_main!(benches);
