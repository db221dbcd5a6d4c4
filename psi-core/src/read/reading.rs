//! What one read of a directory's pressure files gave.

use std::time::Instant;

use super::error::ReadError;
use crate::rate::Rate;
use crate::{Line, PerResource, Pressure, Record, Resource};

/// One read of a directory's pressure files: each resource's pressure, or
/// why it could not be read, or nothing where it was not read at all; and
/// the monotonic time of each read, for exact rates between two readings.
#[derive(Debug, Default)]
pub struct Reading {
    results: PerResource<Option<Result<Pressure, ReadError>>>,
    at: PerResource<Option<Instant>>,
}

impl Reading {
    /// Records the result of reading `resource` at `at`.
    pub fn set(&mut self, resource: Resource, result: Result<Pressure, ReadError>, at: Instant) {
        self.results[resource] = Some(result);
        self.at[resource] = Some(at);
    }

    /// The result for `resource`, `None` when it was not read.
    pub fn result(&self, resource: Resource) -> Option<&Result<Pressure, ReadError>> {
        self.results[resource].as_ref()
    }

    /// Every resource that was read, with its result, in [`Resource::ALL`] order.
    pub fn results(&self) -> impl Iterator<Item = (Resource, &Result<Pressure, ReadError>)> {
        self.results
            .iter()
            .filter_map(|(r, v)| Some((r, v.as_ref()?)))
    }

    /// The pressure of `resource`, if it was read.
    pub fn pressure(&self, resource: Resource) -> Option<&Pressure> {
        self.result(resource)?.as_ref().ok()
    }

    /// The record of one resource and line, if it was read and the kernel
    /// measures it there.
    pub fn record(&self, resource: Resource, line: Line) -> Option<&Record> {
        self.pressure(resource)?.get(line)
    }

    /// Why `resource` could not be read.
    pub fn error(&self, resource: Resource) -> Option<&ReadError> {
        self.result(resource)?.as_ref().err()
    }

    /// Every failed read, in [`Resource::ALL`] order.
    pub fn errors(&self) -> impl Iterator<Item = (Resource, &ReadError)> {
        self.results()
            .filter_map(|(r, v)| Some((r, v.as_ref().err()?)))
    }

    /// True when at least one resource was read.
    pub fn any_ok(&self) -> bool {
        self.results().any(|(_, r)| r.is_ok())
    }

    /// When `resource` was read.
    pub fn at(&self, resource: Resource) -> Option<Instant> {
        self.at[resource]
    }

    /// The values to export, `None` where a resource was not read or failed.
    pub fn values(&self) -> PerResource<Option<Pressure>> {
        PerResource::from_fn(|r| self.pressure(r).copied())
    }

    /// The stall rate of `resource`'s `line` from `before` to this reading:
    /// the growth of `total` over the time between the two reads. `None`
    /// when either lacks the line, or the counter went down (a cgroup made
    /// again under the same name).
    pub fn rate_since(&self, before: &Reading, resource: Resource, line: Line) -> Option<Rate> {
        let elapsed = self
            .at(resource)?
            .checked_duration_since(before.at(resource)?)?;
        Rate::between(
            before.record(resource, line)?,
            self.record(resource, line)?,
            u64::try_from(elapsed.as_micros()).ok()?,
        )
    }
}
