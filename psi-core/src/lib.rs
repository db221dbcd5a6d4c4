//! Linux pressure stall information (PSI), parsed without allocating,
//! read from the kernel's files, and exported.
//!
//! # What PSI is
//!
//! In the kernel's own words (`Documentation/accounting/psi.rst`, Johannes
//! Weiner): "When CPU, memory or IO devices are contended, workloads
//! experience latency spikes, throughput losses, and run the risk of OOM
//! kills." PSI measures that contention as time: how long tasks stalled,
//! waiting for a CPU, for memory (reclaim, refaults, swap-in), for block IO
//! and, since 6.1, lost to interrupts. Because it is measured in real
//! time, the same document goes on, "systems can be managed dynamically
//! using techniques such as load shedding, migrating jobs to other systems
//! or data centers, or strategically pausing or killing low priority or
//! restartable batch jobs."
//!
//! The kernel reports it in pressure files: `/proc/pressure/{cpu,memory,io,irq}`
//! for the whole system and `{cpu,memory,io,irq}.pressure` in every cgroup v2
//! directory. Each file holds up to two lines:
//!
//! ```text
//! some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789
//! full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432
//! ```
//!
//! `some` is the share of time at least one task stalled, `full` the share
//! in which all non-idle tasks stalled at once; `avg10`, `avg60` and
//! `avg300` are running averages in percent over 10, 60 and 300 seconds
//! (updated every 2 s), and `total` the cumulative stall time in
//! microseconds.
//!
//! # Parsing
//!
//! [`parse`] turns those bytes into a [`Pressure`] without allocating, without
//! floating-point parsing and without panicking on any input. Averages are kept
//! exactly, as integer hundredths of a percent ([`Percent`]); `total` is the
//! cumulative stall time in microseconds.
//!
//! ```
//! let p = psi_core::parse(b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n")?;
//! let some = p.some.expect("a some line");
//! assert_eq!(some.avg10.hundredths(), 12);
//! assert_eq!(some.avg300.ratio(), 0.105);
//! assert_eq!(some.total, 123_456_789);
//! assert!(p.full.is_none());
//! # Ok::<(), psi_core::ParseError>(())
//! ```
//!
//! # Reading
//!
//! With the `std` feature, [`read`] reads real files into caller-owned or
//! stack buffers, and [`read::PressureFile`] keeps a file open and re-reads it
//! with `pread` at offset 0, which is what an exporter wants on every scrape.
//! [`rate::Rate`] is the exact stall rate between two reads:
//!
//! ```no_run
//! # #[cfg(feature = "std")] {
//! use std::time::{Duration, Instant};
//! use psi_core::{rate::Rate, read::PressureFile};
//!
//! let mut cpu = PressureFile::open("/sys/fs/cgroup/cpu.pressure")?;
//! let (before, t0) = (cpu.read()?, Instant::now());
//! std::thread::sleep(Duration::from_secs(1));
//! let (after, t1) = (cpu.read()?, Instant::now());
//! if let (Some(a), Some(b)) = (before.some, after.some) {
//!     let elapsed_us = t1.duration_since(t0).as_micros() as u64;
//!     if let Some(rate) = Rate::between(&a, &b, elapsed_us) {
//!         println!("{rate}% of the last second waiting for a CPU");
//!     }
//! }
//! # }
//! # Ok::<(), psi_core::read::ReadError>(())
//! ```
//!
//! A file that cannot be read says why ([`read::Reason`]: unsupported,
//! disabled, gone, permission, io, parse): "no data" never looks like "no
//! pressure".
//!
//! # Exporting
//!
//! [`expose`] writes psi's metric families in the Prometheus text format,
//! exactly (µs to seconds and hundredths to ratios without floats); with the
//! `prometheus` feature, [`prometheus::PsiCollector`] yields the same
//! families into a program's own `prometheus::Registry`:
//!
//! ```no_run
//! # #[cfg(feature = "prometheus")] {
//! let registry = prometheus::Registry::new();
//! let psi = psi_core::prometheus::PsiCollector::system()?;
//! registry.register(Box::new(psi))?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The crate's `examples/` show each use end to end: `read` (the system and
//! a cgroup), `rate` (a kept-open file sampled in a loop), `serve` (the
//! collector behind a small HTTP server), `shed` (a worker pool that
//! refuses work while its own cgroup's CPU pressure is high), `trigger`
//! (woken by the kernel) and `no_std` (parsing with `core` only).
//!
//! # Features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `std`        | yes     | [`read`]: reading files and cgroups with typed errors; [`cgroup`]: the mount, what a directory is, the tree walk, pod and container identity and names; [`target`]: what a program reads; [`node`]: every cgroup of a node; [`discover`]: pid_flag discovery; [`expose`]: the Prometheus text writer; [`json`]; [`report`]; [`trigger`]: kernel PSI triggers (Linux) |
//! | `prometheus` | no      | [`prometheus`]: a `prometheus::core::Collector` of psi's families over the system, cgroups and pids, read at collect time (implies `std`; the `prometheus` crate without its default features) |
//! | `serde`      | no      | `Serialize` and `Deserialize` for [`Pressure`], [`Record`], [`Percent`], [`Resource`] and [`Line`], in the shape of the JSON envelope ([`json`]); without `std` too |
//!
//! Without `std` the crate is `#![no_std]`: it parses ([`parse`],
//! [`cpu_stat`], [`duration`]), formats ([`decimal`]) and computes
//! [`rate`]s.
//!
//! # Modules
//!
//! | module | what it holds |
//! |--------|---------------|
//! | [`parse`] and the types at the root | the pressure-file format: [`Pressure`], [`Record`], [`Percent`], [`Resource`], [`Line`], [`PerResource`] |
//! | [`decimal`] | exact µs-to-seconds and hundredths-to-ratio writers |
//! | [`rate`] | the exact stall rate between two records |
//! | [`duration`] | the one duration grammar (`500ms`, `2s`) |
//! | [`cpu_stat`] | `cpu.stat`'s throttling counters |
//! | [`read`] | files read once or kept open, [`read::ReadError`] and its [`read::Reason`], [`read::ErrorCounts`] |
//! | [`cgroup`] | the cgroup2 mount, [`cgroup::Kind`] and the not-measured rule, [`cgroup::walk`], [`cgroup::kube`], [`cgroup::logs`] |
//! | [`target`] | what a program reads: a directory, its kind, its cgroup, pids and identity |
//! | [`node`] | node mode: every selected cgroup of a node, kept open, read and labelled |
//! | [`discover`] | the container found by its pid_flag, its cgroup, its liveness |
//! | [`trigger`] | kernel PSI triggers and a poll-based monitor |
//! | [`expose`] | the text-format encoder and psi's metric families (their one home) |
//! | [`prometheus`] | the same families as a `prometheus` crate collector |
//! | [`json`] | the JSON envelope of a reading |
//! | [`report`] | an error and its causes on one line |
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]
#![warn(unreachable_pub)]

#[cfg(feature = "std")]
pub mod cgroup;
pub mod cpu_stat;
pub mod decimal;
#[cfg(feature = "std")]
pub mod discover;
pub mod duration;
mod error;
#[cfg(feature = "std")]
pub mod expose;
#[cfg(feature = "std")]
mod fs;
#[cfg(feature = "std")]
pub mod json;
#[cfg(feature = "std")]
pub mod node;
mod parse;
#[cfg(feature = "prometheus")]
pub mod prometheus;
pub mod rate;
#[cfg(feature = "std")]
pub mod read;
#[cfg(feature = "std")]
pub mod report;
#[cfg(feature = "serde")]
mod serde_impl;
#[cfg(feature = "std")]
pub mod target;
#[cfg(all(feature = "std", target_os = "linux"))]
pub mod trigger;
mod types;

pub use error::{Field, ParseError, ParseErrorKind};

/// Internals exposed for benchmarks, property tests and fuzzing; not part of
/// the API and not covered by semver.
#[doc(hidden)]
pub mod _benchable {
    pub use crate::parse::parse_general;
}
pub use parse::parse;
pub use types::{
    Line, PerResource, Percent, Pressure, Record, Resource, UnknownLine, UnknownResource,
};
