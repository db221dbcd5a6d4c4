//! The exact stall rate between two readings of one line.
//!
//! The kernel's averages are exponentially weighted and updated every two
//! seconds; the rate over a chosen interval comes from `total`, which grows
//! by every microsecond of stall. A [`Rate`] keeps the two integers, so it
//! compares and prints exactly.
//!
//! ```
//! use psi_core::{Record, rate::Rate};
//!
//! let before = Record { total: 1_000_000, ..Record::default() };
//! let after = Record { total: 1_250_000, ..Record::default() };
//! let rate = Rate::between(&before, &after, 1_000_000).expect("time passed");
//! assert_eq!(rate.to_string(), "25.00"); // percent of the interval spent stalled
//! assert_eq!(rate.hundredths(), 2500);
//! ```

use core::cmp::Ordering;
use core::fmt;

use crate::Record;

/// `stall_us` of stall in `elapsed_us` of monotonic time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    /// The growth of `total` over the interval, in microseconds.
    pub stall_us: u64,
    /// The interval, in microseconds (never zero).
    pub elapsed_us: u64,
}

impl Rate {
    /// The rate from `before` to `after`, `elapsed_us` apart; `None` when no
    /// time passed or `total` went down (a cgroup removed and made again
    /// under the same name).
    pub fn between(before: &Record, after: &Record, elapsed_us: u64) -> Option<Rate> {
        let stall_us = after.total.checked_sub(before.total)?;
        (elapsed_us > 0).then_some(Rate {
            stall_us,
            elapsed_us,
        })
    }

    /// The rate in hundredths of a percent, rounded half up.
    pub fn hundredths(&self) -> u64 {
        let num = u128::from(self.stall_us) * 10_000 * 2 + u128::from(self.elapsed_us);
        let den = u128::from(self.elapsed_us).max(1) * 2;
        u64::try_from(num / den).unwrap_or(u64::MAX)
    }

    /// The rate as a ratio (`0.25` for a quarter of the time), as the
    /// nearest `f64`.
    pub fn ratio(&self) -> f64 {
        self.stall_us as f64 / self.elapsed_us.max(1) as f64
    }

    /// Whether the exact rate is above `max` hundredths of a percent.
    pub fn exceeds_hundredths(&self, max: u64) -> bool {
        u128::from(self.stall_us) * 10_000 > u128::from(max) * u128::from(self.elapsed_us)
    }

    /// Compares two rates exactly (`1/2` equals `2/4`).
    pub fn compare(&self, other: &Rate) -> Ordering {
        let a = u128::from(self.stall_us) * u128::from(other.elapsed_us);
        let b = u128::from(other.stall_us) * u128::from(self.elapsed_us);
        a.cmp(&b)
    }
}

impl fmt::Display for Rate {
    /// The percentage with two decimals: `51.23`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = self.hundredths();
        write!(f, "{}.{:02}", h / 100, h % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(stall_us: u64, elapsed_us: u64) -> Rate {
        Rate {
            stall_us,
            elapsed_us,
        }
    }

    #[test]
    fn rates_round_half_up_from_integers() {
        assert_eq!(r(0, 1_000_000).hundredths(), 0);
        assert_eq!(r(512_345, 1_000_000).to_string(), "51.23");
        assert_eq!(r(512_345, 1_000_000).hundredths(), 5123);
        assert_eq!(r(512_350, 1_000_000).hundredths(), 5124);
        assert_eq!(r(1_000_000, 1_000_000).hundredths(), 10_000);
        assert_eq!(r(1, 3).hundredths(), 3333);
        assert_eq!(r(2, 3).hundredths(), 6667);
        assert!(r(500_001, 10_000_000).exceeds_hundredths(500));
        assert!(!r(500_000, 10_000_000).exceeds_hundredths(500));
        assert_eq!(r(u64::MAX, 1).hundredths(), u64::MAX);
    }

    #[test]
    fn between_two_records() {
        let rec = |total| Record {
            total,
            ..Record::default()
        };
        assert_eq!(Rate::between(&rec(5), &rec(9), 8), Some(r(4, 8)));
        assert_eq!(
            Rate::between(&rec(9), &rec(5), 8),
            None,
            "a counter that went down"
        );
        assert_eq!(Rate::between(&rec(5), &rec(9), 0), None, "no time passed");
    }

    #[test]
    fn exact_order() {
        assert_eq!(r(1, 3).compare(&r(333_333, 1_000_000)), Ordering::Greater);
        assert_eq!(r(2, 4).compare(&r(1, 2)), Ordering::Equal);
    }
}
