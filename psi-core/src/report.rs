//! An error with its causes, on one line (feature `std`).
//!
//! Library errors name what failed and give the cause through
//! [`source()`](std::error::Error::source), never both in one message.
//! Logs, `/psi` and the CLI want the whole story on one line:
//!
//! ```
//! use psi_core::report::Chain;
//!
//! let e = psi_core::cgroup::find_mount("/nonexistent".as_ref()).unwrap_err();
//! assert_eq!(
//!     Chain(&e).to_string(),
//!     "failed to read /nonexistent/self/mountinfo: No such file or directory (os error 2)"
//! );
//! ```

use std::error::Error;
use std::fmt;

/// Displays an error and each of its sources, joined with `: `.
#[derive(Debug, Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'a));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_once() {
        let dir = psi_testkit::files::dir(&[("cpu.pressure", "some avg10=x\n")]);
        let p = dir.path().join("cpu.pressure");
        let e = crate::read::path(&p).expect_err("garbage");
        assert_eq!(
            Chain(&e).to_string(),
            format!(
                "failed to parse {}: invalid digit in avg10 (byte 11, line 1)",
                p.display()
            )
        );
    }
}
