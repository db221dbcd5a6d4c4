//! The exit codes of `psi`, the same for every command.

use std::process::ExitCode;

/// How `psi` ends. Usage errors found by clap also exit 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: done; every `check` rule holds; a `wait` trigger fired.
    Success,
    /// 1: `check` found a rule breached.
    Breached,
    /// 2: a usage error, a target that cannot be read, a kernel refusal.
    Error,
    /// 124: `wait --timeout` passed before a trigger fired (as `timeout(1)`).
    Timeout,
    /// 130: interrupted by SIGINT (Ctrl-C), SIGTERM or SIGHUP, as shells report 128 + 2.
    Interrupted,
}

impl Exit {
    /// The number the process exits with.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Breached => 1,
            Exit::Error => 2,
            Exit::Timeout => 124,
            Exit::Interrupted => 130,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e.code())
    }
}
