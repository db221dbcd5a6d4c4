//! Prometheus text exposition (format 0.0.4), streamed into a reused buffer
//! (feature `std`).
//!
//! [`Encoder`] writes `# HELP`/`# TYPE` headers and samples, escaping label
//! values and printing numbers with the exact writers of [`crate::decimal`]: a
//! scrape that reuses its `Vec<u8>` allocates nothing once the buffer has
//! grown to size. [`write_pressure`] writes the pressure families of any
//! number of targets, each family's header once. A family whose name and
//! help are known when compiling can have its header rendered then, with
//! [`header!`](crate::header), and written with [`Encoder::header`] in one
//! copy.
//!
//! ```
//! use psi_core::expose::{Encoder, Families, Labels, Snapshot, write_pressure};
//! use psi_core::{PerResource, Resource};
//!
//! let cpu = psi_core::parse(b"some avg10=1.50 avg60=0.00 avg300=0.00 total=2500000\n")?;
//! let mut pressure = PerResource::default();
//! pressure[Resource::Cpu] = Some(cpu);
//! let labels = Labels::new(&[("cgroup", "/app")]);
//! let target = Snapshot { labels: &labels, pressure, cpu_stat: None };
//!
//! let mut out = Vec::new();
//! write_pressure(&mut Encoder::new(&mut out), &Families::default(), &[target]);
//! let text = String::from_utf8(out).unwrap();
//! assert!(text.contains("psi_cpu_waiting_seconds_total{cgroup=\"/app\"} 2.5\n"));
//! assert!(text.contains("psi_cpu_waiting_ratio{cgroup=\"/app\",window=\"10s\"} 0.015\n"));
//! assert!(text.contains("cgroup_monitor_sc_monitored_cpu_psi{cgroup=\"/app\",type=\"some\",window=\"total\"} 2500000\n"));
//! # Ok::<(), psi_core::ParseError>(())
//! ```

mod encoder;
mod families;

#[doc(hidden)]
pub use encoder::plain;
pub use encoder::{CONTENT_TYPE, Encoder, Labels, MetricType, Value};
pub use families::{Families, Snapshot, write_pressure, write_read_errors};

#[cfg(feature = "prometheus")]
pub(crate) use families::{Family, Series, Sink, walk_pressure, walk_read_errors};
