//! The zero-allocation promises, checked with a counting global allocator:
//! `parse` of every real file, the decimal writers, and re-reads of a
//! kept-open `PressureFile`, and the exposition writer once its buffer has grown.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use psi_core::decimal::{MAX_LEN, ratio, seconds};
use psi_core::parse;

/// `System`, counting the allocations made on a thread while that thread is
/// inside [`allocations`]. Other test threads run in parallel and allocate
/// freely; they are not counted because the counter is thread-local.
struct Counting;

thread_local! {
    // Both are const-initialised without destructors, so touching them from
    // inside the allocator never allocates itself.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with` because the allocator can run while the thread is being torn down.
    let measuring = MEASURING.try_with(Cell::get).unwrap_or(false);
    if measuring {
        let _ = COUNT.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees carry over; the counting touches only
// thread-local `Cell`s and never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is `System`'s.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns its result with the number of allocations (and
/// reallocations) it made on this thread.
fn allocations<R>(f: impl FnOnce() -> R) -> (R, usize) {
    COUNT.with(|c| c.set(0));
    MEASURING.with(|m| m.set(true));
    let r = f();
    MEASURING.with(|m| m.set(false));
    (r, COUNT.with(Cell::get))
}

use common::REAL;

#[test]
fn the_counter_counts() {
    let (v, n) = allocations(|| vec![1u8; 16]);
    assert_eq!(n, 1, "the counting allocator must see a Vec's allocation");
    drop(v);
    let (s, n) = allocations(|| 12.5f64.to_string());
    assert!(n >= 1, "to_string allocates");
    assert_eq!(s, "12.5");
}

#[test]
fn parse_real_files_allocates_nothing() {
    for (name, bytes) in REAL {
        let (result, n) = allocations(|| parse(std::hint::black_box(bytes)));
        assert!(result.is_ok(), "{name}: {result:?}");
        assert_eq!(n, 0, "parse of {name} allocated {n} times");
    }
}

/// Every file in tests/data, including any added later and the captures of
/// other files (`cpu-stat-*`), which `parse` rejects: success or error, no
/// allocation.
#[test]
fn parse_every_data_file_allocates_nothing() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("tests/data") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        let (_, n) = allocations(|| parse(std::hint::black_box(&bytes)));
        assert_eq!(n, 0, "parse of {} allocated {n} times", path.display());
        seen += 1;
    }
    assert!(seen >= REAL.len(), "tests/data has only {seen} files");
}

#[test]
fn parse_errors_allocate_nothing() {
    for bad in [
        &b""[..],
        b"some",
        b"some avg10=0.1 avg60=0.00 avg300=0.00 total=0",
        b"full avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616",
        b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nsome avg10=0.00 avg60=0.00 avg300=0.00 total=0",
    ] {
        let (result, n) = allocations(|| parse(std::hint::black_box(bad)));
        assert!(result.is_err());
        assert_eq!(n, 0, "parse of {bad:?} allocated {n} times");
    }
}

#[test]
fn decimal_writers_allocate_nothing() {
    let micros = [0, 1, 999_999, 1_000_000, 123_456_789, u64::MAX];
    let hundredths = [0, 1, 1234, 10_000, u32::MAX];
    let ((), n) = allocations(|| {
        let mut buf = [0u8; MAX_LEN];
        for m in micros {
            std::hint::black_box(seconds(std::hint::black_box(m), &mut buf));
        }
        for h in hundredths {
            std::hint::black_box(ratio(std::hint::black_box(h), &mut buf));
        }
    });
    assert_eq!(n, 0, "the decimal writers allocated {n} times");
}

// Kept-open `PressureFile` re-reads: after the first read (which opens the
// file if needed), every further read is one `pread` and a parse into the
// reader's own buffer, with no allocation.
#[test]
fn pressure_file_rereads_allocate_nothing() {
    use psi_core::read::PressureFile;

    let path = "/proc/pressure/cpu";
    if !std::path::Path::new(path).exists() {
        psi_testkit::ci::missing("/proc/pressure/cpu does not exist (kernel without PSI)");
        return;
    }
    let mut file = PressureFile::open(path).expect("open /proc/pressure/cpu");
    file.read().expect("first read");
    let (results, n) = allocations(|| {
        let mut ok = 0;
        for _ in 0..100 {
            if std::hint::black_box(file.read()).is_ok() {
                ok += 1;
            }
        }
        ok
    });
    assert_eq!(results, 100, "every re-read must succeed");
    assert_eq!(n, 0, "100 re-reads allocated {n} times");
}

/// The exposition writer allocates per scrape at most to grow its buffer:
/// once the reused `Vec` has grown, writing every family of many targets,
/// with escaped label values, allocates nothing at all.
#[test]
fn exposition_allocates_nothing_per_series_after_warm_up() {
    use psi_core::Resource;
    use psi_core::expose::{Encoder, Families, Snapshot, write_pressure};

    let cpu_stat =
        psi_core::cpu_stat::parse(include_bytes!("data/cpu-stat-throttled")).throttled_usec;
    assert!(cpu_stat.is_some());
    let p = parse(include_bytes!("data/cgroup-cpu-stressed")).expect("valid");
    let labels: Vec<psi_core::expose::Labels> = (0..50)
        .map(|_| psi_core::expose::Labels::new(&[("cgroup", "/kube\"pods\\slice\n")]))
        .collect();
    let targets: Vec<Snapshot<'_>> = labels
        .iter()
        .map(|l| {
            let mut pressure = psi_core::PerResource::default();
            for r in [Resource::Cpu, Resource::Memory, Resource::Io] {
                pressure[r] = Some(p);
            }
            Snapshot {
                labels: l,
                pressure,
                cpu_stat: Some(psi_core::cpu_stat::parse(include_bytes!(
                    "data/cpu-stat-throttled"
                ))),
            }
        })
        .collect();
    let mut out = Vec::new();
    write_pressure(&mut Encoder::new(&mut out), &Families::default(), &targets);
    let warm = out.len();
    let ((), n) = allocations(|| {
        for _ in 0..10 {
            out.clear();
            write_pressure(&mut Encoder::new(&mut out), &Families::default(), &targets);
        }
    });
    assert_eq!(out.len(), warm);
    assert!(warm > 50 * 1000, "{warm} bytes for 50 targets");
    assert_eq!(
        n,
        0,
        "allocations writing {} series ten times",
        out.iter().filter(|&&b| b == b'\n').count()
    );
}

/// Node mode's steady state: once warm, a scrape (read every cgroup, write
/// every family) allocates the same number of times for 10 cgroups as for
/// 200, so nothing per cgroup, whatever the kernel lacks (irq here is
/// missing from the copies, as from this kernel's cgroups).
#[test]
fn a_node_scrape_allocates_nothing_per_cgroup() {
    use psi_core::expose::{Encoder, Families};
    use psi_core::node::{Config, Levels, Node};

    let per_scrape = |cgroups: usize| {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = std::str::from_utf8(include_bytes!("data/cgroup-cpu-stressed")).expect("text");
        for i in 0..cgroups {
            let uid = format!("{i:08x}-0000-4000-8000-000000000000");
            let pod = dir.path().join(format!("kubepods/besteffort/pod{uid}"));
            psi_testkit::files::write(
                &pod,
                &[
                    ("cpu.pressure", text),
                    ("memory.pressure", text),
                    ("io.pressure", text),
                ],
            );
        }
        let mut node = Node::new(Config::new(dir.path().to_owned(), Levels::POD));
        node.rescan();
        assert_eq!(node.len(), cgroups);
        let families = Families::default();
        let mut out = Vec::new();
        let mut errors = 0;
        let mut scrape = |out: &mut Vec<u8>| {
            out.clear();
            node.read(|_, _| errors += 1);
            node.write(&mut Encoder::new(out), &families);
        };
        // Warm: the files open and the buffers grow.
        scrape(&mut out);
        scrape(&mut out);
        let ((), n) = allocations(|| scrape(&mut out));
        assert!(out.len() > cgroups * 1000, "{} bytes", out.len());
        n
    };
    let (few, many) = (per_scrape(10), per_scrape(200));
    assert_eq!(
        few, many,
        "allocations per scrape: {few} for 10 cgroups, {many} for 200"
    );
}
