//! Failed reads counted by resource and reason: what
//! `psi_read_errors_total{resource,reason}` exports.

use super::error::{ReadError, Reason};
use crate::{PerResource, Resource};

/// Failed reads, by [`Resource`] and [`Reason`]: the exporter's, a node's
/// and the `prometheus` collector's `psi_read_errors_total`.
///
/// ```
/// use psi_core::Resource;
/// use psi_core::read::{ErrorCounts, PressureSet, Reason};
///
/// let mut counts = ErrorCounts::default();
/// let reading = PressureSet::cgroup("/nonexistent").read_all();
/// counts.count_reading(&reading);
/// assert_eq!(counts.get(Resource::Cpu, Reason::Gone), 1);
/// assert_eq!(counts.iter().count(), 4);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ErrorCounts(PerResource<[u64; Reason::ALL.len()]>);

impl ErrorCounts {
    /// One failure of each resource for each reason: what describes every
    /// series `psi_read_errors_total` can have.
    #[cfg(feature = "prometheus")]
    pub(crate) const EVERY: ErrorCounts =
        ErrorCounts(PerResource::from_array([[1; Reason::ALL.len()]; 4]));

    /// Counts one failed read of `resource`.
    pub fn count(&mut self, resource: Resource, error: &ReadError) {
        if let Some(n) = self.0[resource].get_mut(error.reason().index()) {
            *n = n.saturating_add(1);
        }
    }

    /// Counts every failure of a reading.
    pub fn count_reading(&mut self, reading: &super::Reading) {
        for (resource, e) in reading.errors() {
            self.count(resource, e);
        }
    }

    /// The count for `resource` and `reason`.
    pub fn get(&self, resource: Resource, reason: Reason) -> u64 {
        self.0[resource]
            .get(reason.index())
            .copied()
            .unwrap_or_default()
    }

    /// Every count that is not zero, by resource ([`Resource::ALL`] order),
    /// then reason ([`Reason::ALL`] order).
    pub fn iter(&self) -> impl Iterator<Item = (Resource, Reason, u64)> + '_ {
        self.0.iter().flat_map(|(resource, counts)| {
            Reason::ALL
                .iter()
                .zip(counts)
                .filter(|&(_, &n)| n > 0)
                .map(move |(&reason, &n)| (resource, reason, n))
        })
    }
}
