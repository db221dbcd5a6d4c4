//! Linux pressure stall information (PSI), parsed without allocating.
//!
//! The kernel reports how long tasks stall on CPU, memory, IO and IRQ in
//! pressure files: `/proc/pressure/{cpu,memory,io,irq}` for the whole system
//! and `{cpu,memory,io,irq}.pressure` in every cgroup v2 directory. Each file
//! holds up to two lines:
//!
//! ```text
//! some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789
//! full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432
//! ```
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
//! With the `std` feature, [`read`] reads real files into caller-owned or
//! stack buffers, and [`read::PressureFile`] keeps a file open and re-reads it
//! with `pread` at offset 0, which is what an exporter wants on every scrape:
//!
//! ```no_run
//! # #[cfg(feature = "std")] {
//! use psi_core::{Resource, read::PressureFile};
//!
//! let mut cpu = PressureFile::open("/sys/fs/cgroup/cpu.pressure")?;
//! let now = cpu.read()?;
//! println!("{now}");
//! # }
//! # Ok::<(), psi_core::read::ReadError>(())
//! ```
//!
//! # Features
//!
//! | feature      | default | what it adds |
//! |--------------|---------|--------------|
//! | `std`        | yes     | [`read`]: reading files and cgroups with typed errors; [`cgroup`]: the mount, what a directory is, the tree walk, pod and container identity and names; [`target`]: what a program reads; [`node`]: every cgroup of a node; [`discover`]: pid_flag discovery; [`expose`]: the Prometheus text writer; [`json`]; [`report`]; [`trigger`]: kernel PSI triggers (Linux) |
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
//! | [`read`] | files read once or kept open, [`read::ReadError`] and its [`read::Reason`] |
//! | [`cgroup`] | the cgroup2 mount, [`cgroup::Kind`] and the not-measured rule, [`cgroup::walk`], [`cgroup::kube`], [`cgroup::logs`] |
//! | [`target`] | what a program reads: a directory, its kind, its cgroup, pids and identity |
//! | [`node`] | node mode: every selected cgroup of a node, kept open, read and labelled |
//! | [`discover`] | the container found by its pid_flag, its cgroup, its liveness |
//! | [`trigger`] | kernel PSI triggers and a poll-based monitor |
//! | [`expose`] | the text-format encoder and psi's metric families |
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
