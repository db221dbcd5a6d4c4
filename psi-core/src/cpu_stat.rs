//! The throttling counters of a cgroup's `cpu.stat`.
//!
//! A cgroup limited by `cpu.max` shows CPU pressure that is really throttling:
//! its tasks are runnable but the cgroup has used its quota. `cpu.stat` tells
//! the two apart:
//!
//! ```text
//! usage_usec 49361869
//! user_usec 40094919
//! system_usec 9266950
//! nr_periods 120
//! nr_throttled 33
//! throttled_usec 1820000
//! ```
//!
//! The throttling fields exist only where the `cpu` controller is enabled.

use memchr::memchr;

/// The counters of `cpu.stat` that matter beside CPU pressure. Each is `None`
/// when the file does not have it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CpuStat {
    /// `usage_usec`: CPU time used, in microseconds.
    pub usage_usec: Option<u64>,
    /// `nr_periods`: enforcement periods that have elapsed.
    pub nr_periods: Option<u64>,
    /// `nr_throttled`: periods in which the cgroup was throttled.
    pub nr_throttled: Option<u64>,
    /// `throttled_usec`: time the cgroup's tasks were throttled, in microseconds.
    pub throttled_usec: Option<u64>,
}

/// Parses a `cpu.stat` file. Unknown keys are skipped; a known key whose value
/// is not a `u64` is left `None`. Never fails and never panics.
///
/// ```
/// let s = psi_core::cpu_stat::parse(b"usage_usec 10\nnr_periods 4\nnr_throttled 1\nthrottled_usec 2500\n");
/// assert_eq!(s.throttled_usec, Some(2500));
/// assert_eq!(s.nr_throttled, Some(1));
/// ```
pub fn parse(input: &[u8]) -> CpuStat {
    let mut out = CpuStat::default();
    let mut rest = input;
    while !rest.is_empty() {
        let len = memchr(b'\n', rest).unwrap_or(rest.len());
        let line = rest.get(..len).unwrap_or_default().trim_ascii_end();
        rest = rest.get(len + 1..).unwrap_or_default();
        let Some(space) = memchr(b' ', line) else {
            continue;
        };
        let (key, value) = (line.get(..space).unwrap_or_default(), line.get(space + 1..));
        let slot = match key {
            b"usage_usec" => &mut out.usage_usec,
            b"nr_periods" => &mut out.nr_periods,
            b"nr_throttled" => &mut out.nr_throttled,
            b"throttled_usec" => &mut out.throttled_usec,
            _ => continue,
        };
        *slot = value.and_then(parse_u64);
    }
    out
}

fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10)?;
        acc.checked_mul(10)?.checked_add(u64::from(d))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hugetlb_only_tree_has_no_throttling() {
        // Captured from this machine's cgroup v2 root, whose only controller is hugetlb.
        let s = parse(include_bytes!("../tests/data/cpu-stat-no-cpu-controller"));
        assert_eq!(s.usage_usec, Some(342_319_358));
        assert_eq!(
            (s.nr_periods, s.nr_throttled, s.throttled_usec),
            (None, None, None)
        );
    }

    #[test]
    fn cpu_controller_gives_throttling() {
        let s = parse(include_bytes!("../tests/data/cpu-stat-throttled"));
        assert_eq!(s.nr_periods, Some(2210));
        assert_eq!(s.nr_throttled, Some(1642));
        assert_eq!(s.throttled_usec, Some(80_923_412));
    }

    #[test]
    fn bad_values_are_none_not_zero() {
        let s = parse(b"throttled_usec -1\nnr_periods 18446744073709551616\nnr_throttled\nusage_usec 5 extra\n");
        assert_eq!(s, CpuStat::default());
    }

    #[test]
    fn empty_and_garbage_never_panic() {
        for input in [&b""[..], b"\n\n", b" ", b"throttled_usec ", b"\xff\xfe 1"] {
            let _ = parse(input);
        }
    }
}
