//! One module per subcommand.

pub mod check;
pub mod generate;
pub mod read;
pub mod top;
pub mod wait;
pub mod watch;

use crate::sample::Reading;
use crate::target::Target;
use crate::view;

/// Fails when a target gave nothing at all: every resource unavailable.
pub fn require_readable(targets: &[Target], readings: &[Reading]) -> anyhow::Result<()> {
    for (t, r) in targets.iter().zip(readings) {
        if !r.any_ok() {
            let why = psi_core::Resource::ALL
                .iter()
                .find_map(|&res| r.error(res))
                .map(|e| view::chain(e))
                .unwrap_or_default();
            anyhow::bail!("cannot read any pressure from {}: {why}", t.title());
        }
    }
    Ok(())
}
