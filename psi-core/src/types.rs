//! The values a pressure file holds.

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

/// A resource the kernel reports pressure for.
///
/// New resources arrive with new kernels (`irq` came in 6.1), so the enum is
/// non-exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Resource {
    /// CPU: tasks runnable but waiting for a CPU (`cpu`).
    Cpu,
    /// Memory: tasks stalled on reclaim, refaults or swap-in (`memory`).
    Memory,
    /// IO: tasks waiting on block IO (`io`).
    Io,
    /// IRQ: time lost to hard and soft interrupts (`irq`, kernel 6.1+, `full` only).
    Irq,
}

impl Resource {
    /// Every resource, in the kernel's order.
    pub const ALL: [Resource; 4] = [Resource::Cpu, Resource::Memory, Resource::Io, Resource::Irq];

    /// The kernel's name: `cpu`, `memory`, `io` or `irq`.
    pub const fn name(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu",
            Resource::Memory => "memory",
            Resource::Io => "io",
            Resource::Irq => "irq",
        }
    }

    /// The file name in a cgroup v2 directory: `cpu.pressure`, `memory.pressure`, ...
    pub const fn cgroup_file(self) -> &'static str {
        match self {
            Resource::Cpu => "cpu.pressure",
            Resource::Memory => "memory.pressure",
            Resource::Io => "io.pressure",
            Resource::Irq => "irq.pressure",
        }
    }

    /// Its place in [`Resource::ALL`], which is where [`PerResource`] keeps
    /// its value.
    const fn index(self) -> usize {
        match self {
            Resource::Cpu => 0,
            Resource::Memory => 1,
            Resource::Io => 2,
            Resource::Irq => 3,
        }
    }
}

/// One value for each [`Resource`]: `PerResource<Option<Pressure>>` is what a
/// cgroup read, `PerResource<u64>` a counter per resource. Indexed by
/// resource, iterated in [`Resource::ALL`] order.
///
/// ```
/// use psi_core::{PerResource, Resource};
///
/// let mut reads = PerResource::from_fn(|_| 0u64);
/// reads[Resource::Io] += 1;
/// assert_eq!(reads[Resource::Io], 1);
/// let names: Vec<&str> = reads.iter().map(|(r, _)| r.name()).collect();
/// assert_eq!(names, ["cpu", "memory", "io", "irq"]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PerResource<T>([T; 4]);

impl<T> PerResource<T> {
    /// The values in [`Resource::ALL`] order, for tables built when compiling.
    #[cfg_attr(not(feature = "std"), allow(dead_code))]
    pub(crate) const fn from_array(values: [T; 4]) -> Self {
        PerResource(values)
    }

    /// A value for each resource, made by `f`, called in [`Resource::ALL`] order.
    pub fn from_fn(mut f: impl FnMut(Resource) -> T) -> Self {
        PerResource(Resource::ALL.map(&mut f))
    }

    /// Each value turned into another by `f`, which is told the resource.
    pub fn map<U>(self, mut f: impl FnMut(Resource, T) -> U) -> PerResource<U> {
        let [cpu, memory, io, irq] = self.0;
        PerResource([
            f(Resource::Cpu, cpu),
            f(Resource::Memory, memory),
            f(Resource::Io, io),
            f(Resource::Irq, irq),
        ])
    }

    /// References to each value.
    pub fn each_ref(&self) -> PerResource<&T> {
        PerResource(self.0.each_ref())
    }

    /// Each resource with its value, in [`Resource::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Resource, &T)> {
        Resource::ALL.into_iter().zip(&self.0)
    }

    /// Each resource with a mutable reference to its value.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (Resource, &mut T)> {
        Resource::ALL.into_iter().zip(&mut self.0)
    }

    /// The values, in [`Resource::ALL`] order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.0.iter()
    }
}

impl<T> core::ops::Index<Resource> for PerResource<T> {
    type Output = T;

    fn index(&self, resource: Resource) -> &T {
        // The array has one slot per variant of Resource.
        &self.0[resource.index()]
    }
}

impl<T> core::ops::IndexMut<Resource> for PerResource<T> {
    fn index_mut(&mut self, resource: Resource) -> &mut T {
        &mut self.0[resource.index()]
    }
}

/// `Display` as the kernel's word (`name()`), and `FromStr` back from it
/// (one of `ALL`), for the kernel's enums.
macro_rules! kernel_word {
    ($ty:ident, $err:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $ty {
            type Err = $err;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL.into_iter().find(|v| v.name() == s).ok_or($err)
            }
        }
    };
}

kernel_word!(Resource, UnknownResource);
kernel_word!(Line, UnknownLine);

/// The error from parsing a [`Resource`] name that is none of `cpu`, `memory`, `io`, `irq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown resource (expected cpu, memory, io or irq)")]
pub struct UnknownResource;

/// Which of the two lines of a pressure file. Exhaustive on purpose: the
/// kernel's `psi_show` has printed these two since PSI began, and
/// [`Pressure`] has a field for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Line {
    /// `some`: at least one task stalled (node_exporter calls this "waiting").
    Some,
    /// `full`: all non-idle tasks stalled at once ("stalled").
    Full,
}

impl Line {
    /// Both lines, in the kernel's order.
    pub const ALL: [Line; 2] = [Line::Some, Line::Full];

    /// The kernel's word: `some` or `full`.
    pub const fn name(self) -> &'static str {
        match self {
            Line::Some => "some",
            Line::Full => "full",
        }
    }
}

/// The error from parsing a [`Line`] that is neither `some` nor `full`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown line (expected some or full)")]
pub struct UnknownLine;

/// A kernel average: a percentage with exactly two decimals, kept as an
/// integer number of hundredths of a percent (`12.34` is `Percent(1234)`).
///
/// Displays the way the kernel prints it (`12.34`). With feature `serde`
/// it is a number in percent (`12.34`), exact both ways for every `u32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(pub u32);

impl Percent {
    /// Zero percent.
    pub const ZERO: Percent = Percent(0);

    /// From a count of hundredths of a percent (`1234` is 12.34 %).
    pub const fn from_hundredths(hundredths: u32) -> Self {
        Percent(hundredths)
    }

    /// The exact value in hundredths of a percent.
    pub const fn hundredths(self) -> u32 {
        self.0
    }

    /// The value in percent (`12.34`), as the nearest `f64`.
    pub fn percent(self) -> f64 {
        f64::from(self.0) / 100.0
    }

    /// The value as a ratio between 0 and 1 (`0.1234`), as the nearest `f64`.
    pub fn ratio(self) -> f64 {
        f64::from(self.0) / 10_000.0
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// One line of a pressure file: three running averages and a total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Record {
    /// `avg10`: share of the last 10 seconds spent stalled.
    pub avg10: Percent,
    /// `avg60`: share of the last 60 seconds spent stalled.
    pub avg60: Percent,
    /// `avg300`: share of the last 300 seconds spent stalled.
    pub avg300: Percent,
    /// `total`: cumulative stall time, in microseconds.
    pub total: u64,
}

impl Record {
    /// `total` as a [`Duration`] (exact).
    pub const fn total_duration(&self) -> Duration {
        Duration::from_micros(self.total)
    }

    /// `total` in seconds, as the nearest `f64`.
    pub fn total_seconds(&self) -> f64 {
        crate::decimal::seconds_f64(self.total)
    }
}

/// The contents of one pressure file.
///
/// `irq` files have only `full`; cpu files before Linux 5.13 only `some`.
/// Displays in the kernel's own format, `some` before `full`, each line
/// ending in a newline, so that [`parse`](crate::parse) reads it back equal.
///
/// With feature `serde` it has the JSON envelope's shape:
/// `{"some":{"avg10":0.12,"avg60":1.05,"avg300":10.5,"total":123456789},"full":null}`
/// (`Resource` and `Line` are the kernel's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Pressure {
    /// The `some` line: at least one task stalled.
    pub some: Option<Record>,
    /// The `full` line: all non-idle tasks stalled at once.
    pub full: Option<Record>,
}

impl Pressure {
    /// The record for `line`, if the file has it.
    pub const fn get(&self, line: Line) -> Option<&Record> {
        match line {
            Line::Some => self.some.as_ref(),
            Line::Full => self.full.as_ref(),
        }
    }
}

impl fmt::Display for Record {
    /// Writes the fields as the kernel does, without the line word:
    /// `avg10=0.12 avg60=1.05 avg300=10.50 total=123456789`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "avg10={} avg60={} avg300={} total={}",
            self.avg10, self.avg60, self.avg300, self.total
        )
    }
}

impl fmt::Display for Pressure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in Line::ALL {
            if let Some(record) = self.get(line) {
                writeln!(f, "{line} {record}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_words_read_back() {
        for r in Resource::ALL {
            assert_eq!(r.to_string().parse::<Resource>(), Ok(r));
        }
        for l in Line::ALL {
            assert_eq!(l.to_string().parse::<Line>(), Ok(l));
        }
        assert_eq!("disk".parse::<Resource>(), Err(UnknownResource));
        assert_eq!("Some".parse::<Line>(), Err(UnknownLine));
    }
}
