//! Reading a target's pressure files, and stall rates between two readings
//! computed exactly from the kernel's `total` counters.

use std::fmt;
use std::path::Path;
use std::time::Instant;

use psi_core::read::{PressureFile, ReadError};
use psi_core::{Line, Pressure, Record, Resource};

/// A target's four pressure files, kept open between reads.
#[derive(Debug)]
pub struct Files {
    files: [PressureFile; 4],
    whole_system: bool,
}

impl Files {
    /// The files of a directory: `cpu.pressure`, ... in a cgroup layout,
    /// `cpu`, ... in the layout of `/proc/pressure`. `whole_system` drops
    /// the cpu `full` line, which the kernel fills with zeros there.
    pub fn new(dir: &Path, system_layout: bool, whole_system: bool) -> Self {
        Files {
            files: Resource::ALL.map(|r| {
                let name = if system_layout {
                    r.name()
                } else {
                    r.cgroup_file()
                };
                PressureFile::new(dir.join(name))
            }),
            whole_system,
        }
    }

    /// Reads every resource, each stamped with the monotonic time right after
    /// its read.
    pub fn read(&mut self) -> Reading {
        self.read_only(&Resource::ALL)
    }

    /// Reads only `resources`; the others are left as not read.
    pub fn read_only(&mut self, resources: &[Resource]) -> Reading {
        let mut reading = Reading::empty();
        for &r in resources {
            let mut result = self.files[r.index()].read();
            if self.whole_system
                && r == Resource::Cpu
                && let Ok(p) = &mut result
            {
                // The kernel fills the system-wide cpu `full` line with zeros:
                // it is not measured, and a zero would read as "no pressure".
                p.full = None;
            }
            reading.results[r.index()] = Some(result);
            reading.at[r.index()] = Instant::now();
        }
        reading
    }
}

/// One read of a target: each resource's pressure, or why it is unavailable.
#[derive(Debug)]
pub struct Reading {
    /// By [`Resource::index`]; `None` when the resource was not read.
    pub results: [Option<Result<Pressure, ReadError>>; 4],
    /// When each resource was read (monotonic).
    pub at: [Instant; 4],
}

impl Reading {
    fn empty() -> Self {
        Reading {
            results: [None, None, None, None],
            at: [Instant::now(); 4],
        }
    }

    /// The pressure of `resource`, if it was read.
    pub fn pressure(&self, resource: Resource) -> Option<&Pressure> {
        self.results[resource.index()].as_ref()?.as_ref().ok()
    }

    /// The record of one resource and line, if it was read and exists.
    pub fn record(&self, resource: Resource, line: Line) -> Option<&Record> {
        self.pressure(resource)?.get(line)
    }

    /// Why `resource` could not be read.
    pub fn error(&self, resource: Resource) -> Option<&ReadError> {
        self.results[resource.index()].as_ref()?.as_ref().err()
    }

    /// True when at least one resource was read.
    pub fn any_ok(&self) -> bool {
        self.results.iter().flatten().any(Result::is_ok)
    }

    /// The values for exposition, `None` where unavailable.
    pub fn values(&self) -> [Option<Pressure>; 4] {
        Resource::ALL.map(|r| self.pressure(r).copied())
    }
}

/// The stall rate over an interval: `stall_us` of stall in `elapsed_us` of
/// (monotonic) time. Kept as the two integers; compared and printed exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// The growth of `total` over the interval, in microseconds.
    pub stall_us: u64,
    /// The interval, in microseconds (never zero).
    pub elapsed_us: u64,
}

impl Rate {
    /// The rate between two readings of `resource`'s `line`; `None` when
    /// either lacks it, no time passed, or `total` went down (the cgroup was
    /// removed and made again under the same name).
    pub fn between(
        before: &Reading,
        after: &Reading,
        resource: Resource,
        line: Line,
    ) -> Option<Rate> {
        let old = before.record(resource, line)?.total;
        let new = after.record(resource, line)?.total;
        let stall_us = new.checked_sub(old)?;
        let i = resource.index();
        let elapsed = after.at[i].checked_duration_since(before.at[i])?;
        let elapsed_us = u64::try_from(elapsed.as_micros()).ok().filter(|&e| e > 0)?;
        Some(Rate {
            stall_us,
            elapsed_us,
        })
    }

    /// The rate in hundredths of a percent, rounded half up.
    pub fn hundredths(&self) -> u64 {
        let num = u128::from(self.stall_us) * 10_000 * 2 + u128::from(self.elapsed_us);
        let den = u128::from(self.elapsed_us) * 2;
        u64::try_from(num / den).unwrap_or(u64::MAX)
    }

    /// Whether the exact rate is above `max` hundredths of a percent.
    pub fn exceeds_hundredths(&self, max: u64) -> bool {
        u128::from(self.stall_us) * 10_000 > u128::from(max) * u128::from(self.elapsed_us)
    }
}

impl fmt::Display for Rate {
    /// The percentage with two decimals: `51.23`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::rule::Hundredths(self.hundredths()).fmt(f)
    }
}

/// `total` microseconds as seconds with six decimals, exactly: `367.315389`.
pub fn seconds6(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_round_half_up_from_integers() {
        let r = |stall_us, elapsed_us| Rate {
            stall_us,
            elapsed_us,
        };
        assert_eq!(r(0, 1_000_000).to_string(), "0.00");
        assert_eq!(r(512_345, 1_000_000).to_string(), "51.23");
        assert_eq!(r(512_350, 1_000_000).to_string(), "51.24");
        assert_eq!(r(1_000_000, 1_000_000).to_string(), "100.00");
        assert_eq!(r(1, 3).hundredths(), 3333);
        assert_eq!(r(2, 3).hundredths(), 6667);
        assert!(r(500_001, 10_000_000).exceeds_hundredths(500));
        assert!(!r(500_000, 10_000_000).exceeds_hundredths(500));
        assert_eq!(r(u64::MAX, 1).hundredths(), u64::MAX);
    }

    #[test]
    fn rate_between_two_saved_copies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("cpu.pressure");
        std::fs::write(&file, "some avg10=1.00 avg60=0.00 avg300=0.00 total=1000\n")
            .expect("write");
        let mut files = Files::new(dir.path(), false, false);
        let a = files.read();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "some avg10=1.00 avg60=0.00 avg300=0.00 total=2000\n")
            .expect("write");
        let b = files.read();
        let rate = Rate::between(&a, &b, Resource::Cpu, Line::Some).expect("a rate");
        assert_eq!(rate.stall_us, 1000);
        assert!(rate.elapsed_us >= 20_000, "{rate:?}");
        assert_eq!(
            Rate::between(&b, &a, Resource::Cpu, Line::Some),
            None,
            "time runs forward"
        );
        assert_eq!(
            Rate::between(&a, &b, Resource::Cpu, Line::Full),
            None,
            "no full line"
        );
        assert_eq!(
            b.error(Resource::Irq).map(ReadError::reason),
            Some("unsupported")
        );
        assert!(b.any_ok());
    }

    #[test]
    fn seconds_with_six_decimals() {
        assert_eq!(seconds6(0), "0.000000");
        assert_eq!(seconds6(367_315_389), "367.315389");
    }
}
