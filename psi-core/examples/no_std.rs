//! Parsing pressure without the standard library.
//!
//! ```text
//! cargo run -p psi-core --example no_std [FILE]
//! cargo build -p psi-core --no-default-features --examples   # checks it without std
//! ```
//!
//! What is `no_std` here, honestly: the module [`core_only`]. It takes bytes
//! and returns values or writes text into a caller's stack buffer, with
//! nothing but `core` and the part of psi-core that exists without its
//! `std` feature ([`psi_core::parse`], [`psi_core::rate`],
//! [`psi_core::decimal`]). This example has no `required-features`, so
//! `cargo build -p psi-core --no-default-features --examples` builds it
//! against a psi-core without `std`: a call into anything else would not
//! compile. Clippy's `std_instead_of_core` and `alloc_instead_of_core`
//! lints keep the module's own paths on `core`; it allocates nothing.
//!
//! `main` is not `no_std`: it is an ordinary program that reads a file
//! and prints. A freestanding binary needs its own target, a panic handler
//! and `panic = "abort"`, which one example in a workspace cannot have; in
//! firmware or a kernel module, `core_only` is the part you would keep.

use std::error::Error;

/// Two readings of a cgroup's `cpu.pressure`, one second apart, as they
/// might arrive over a serial line or a shared-memory ring.
const BEFORE: &[u8] = b"some avg10=44.15 avg60=9.27 avg300=1.98 total=5938186\n\
                        full avg10=0.00 avg60=0.00 avg300=0.00 total=2595\n";
const AFTER: &[u8] = b"some avg10=47.02 avg60=10.61 avg300=2.27 total=6438186\n\
                       full avg10=0.00 avg60=0.00 avg300=0.00 total=2595\n";

mod core_only {
    #![deny(
        clippy::std_instead_of_core,
        clippy::std_instead_of_alloc,
        clippy::alloc_instead_of_core
    )]

    use core::fmt::{self, Write};

    use psi_core::decimal::{self, Buf};
    use psi_core::rate::Rate;
    use psi_core::{ParseError, Pressure};

    /// The `some` line's stall rate between two readings `elapsed_us`
    /// apart, or `None` when either has no `some` line.
    pub fn some_rate(
        before: &[u8],
        after: &[u8],
        elapsed_us: u64,
    ) -> Result<Option<Rate>, ParseError> {
        let (a, b) = (psi_core::parse(before)?, psi_core::parse(after)?);
        Ok(match (a.some, b.some) {
            (Some(a), Some(b)) => Rate::between(&a, &b, elapsed_us),
            _ => None,
        })
    }

    /// A fixed-size text buffer on the stack.
    pub struct Line {
        bytes: [u8; 128],
        len: usize,
    }

    impl Line {
        pub fn new() -> Self {
            Line {
                bytes: [0; 128],
                len: 0,
            }
        }

        pub fn as_str(&self) -> &str {
            core::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
        }
    }

    impl Write for Line {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
            let room = self.bytes.get_mut(self.len..end).ok_or(fmt::Error)?;
            room.copy_from_slice(s.as_bytes());
            self.len = end;
            Ok(())
        }
    }

    /// One line about `p`: each line's avg10 and its total in seconds,
    /// exactly (`some avg10=44.15% total=5.938186s`).
    pub fn describe(p: &Pressure, out: &mut Line) -> fmt::Result {
        for line in psi_core::Line::ALL {
            if let Some(r) = p.get(line) {
                let mut buf: Buf = [0; decimal::MAX_LEN];
                let seconds = decimal::seconds(r.total, &mut buf);
                write!(out, "{line} avg10={}% total={seconds}s ", r.avg10)?;
            }
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let rate = core_only::some_rate(BEFORE, AFTER, 1_000_000)?;
    if let Some(rate) = rate {
        println!("saved readings: some {rate}% stalled over 1 s");
    }
    // A file named on the command line, read by the std part.
    if let Some(path) = std::env::args_os().nth(1) {
        let bytes = std::fs::read(&path)?;
        let p = psi_core::parse(&bytes)?;
        let mut line = core_only::Line::new();
        core_only::describe(&p, &mut line)?;
        println!(
            "{}: {}",
            std::path::Path::new(&path).display(),
            line.as_str().trim_end()
        );
    }
    Ok(())
}
