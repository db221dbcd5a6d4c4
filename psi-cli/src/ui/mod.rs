//! What the commands share to talk to people: styled text and tables
//! ([`style`]), the terminal ([`term`]) and the wall clock ([`clock`]).

pub mod clock;
pub mod style;
pub mod term;

/// Writes a line to stderr, as `eprintln!` does, except that a stderr that
/// cannot take it (a full disk, a closed pipe) loses the line rather than
/// panicking: `psi` then still exits with its own code.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use say;
