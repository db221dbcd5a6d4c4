//! One module per subcommand.

pub mod check;
pub mod generate;
pub mod read;
pub mod top;
pub mod wait;
pub mod watch;

use psi_core::read::Reading;
use psi_core::report::Chain;
use psi_core::target::Target;

use crate::view;

/// Fails when a target gave nothing at all: every resource unavailable.
pub fn require_readable(targets: &[Target], readings: &[Reading]) -> anyhow::Result<()> {
    for (t, r) in targets.iter().zip(readings) {
        if !r.any_ok() {
            let why = r
                .errors()
                .next()
                .map(|(_, e)| Chain(e).to_string())
                .unwrap_or_default();
            anyhow::bail!("cannot read any pressure from {}: {why}", view::title(t));
        }
    }
    Ok(())
}
