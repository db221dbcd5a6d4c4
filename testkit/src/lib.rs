//! Test support for psi, one module per concern.
//!
//! | module | for |
//! | --- | --- |
//! | [`ci`] | what a test does without root, a cgroup v2 mount or a tool: fail in CI, skip elsewhere |
//! | [`cgroup`] | real cgroups holding real processes, removed even when a test fails |
//! | [`pod`] | a simulated pod: a container's main process in its own namespaces, with a pid_flag |
//! | [`fakeproc`] | a fake `/proc` tree for pid_flag discovery |
//! | [`files`] | directories of files made for a test: saved pressure files, kernel text |
//! | [`http`] | requests to a server under test, the samples of its exposition, `promtool` |
//! | [`ns`] | commands in a private mount namespace: no cgroup v2 mount, a read-only root |
//! | [`pki`] | a test CA, server and client certificates, made with `openssl` |
//! | [`process`] | child processes stopped on drop, and polling until something happens |
//!
//! Each item has one path: callers name the module
//! (`psi_testkit::cgroup::TestCgroup`), nothing is re-exported here.
//!
//! Tests that need root, a cgroup v2 mount or a Debian tool call
//! [`cgroup::root`] or [`ci::tool`] first. In CI (`CI=true`) a missing
//! requirement panics with what to install; on a developer's machine it
//! returns `None` and the test prints why it skipped:
//!
//! ```no_run
//! use psi_testkit::cgroup::{self, TestCgroup};
//!
//! let Some(root) = cgroup::root() else { return Ok(()) };
//! let mut busy = TestCgroup::new(&root, "example")?;
//! busy.burn(4)?;
//! // ... read busy.path().join("cpu.pressure"); the loops and the cgroup go on drop.
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(missing_docs)]

pub mod cgroup;
pub mod ci;
pub mod fakeproc;
pub mod files;
pub mod http;
pub mod ns;
pub mod pki;
pub mod pod;
pub mod process;
