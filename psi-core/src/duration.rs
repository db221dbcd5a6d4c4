//! The one duration grammar of psi: flags of both binaries, the trigger
//! spec and the CLI's rules.
//!
//! A duration is a decimal number and a unit, `us` (or `µs`), `ms`, `s` or
//! `m`: `250us`, `500ms`, `1.5s`, `2m`. A bare number is seconds, as for
//! `sleep(1)`; write the kernel's microseconds as `150000us`. Parsed
//! exactly, without floating point, to the nanosecond, with at most nine
//! decimals.
//!
//! ```
//! use core::time::Duration;
//! use psi_core::duration::{Human, parse};
//!
//! assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
//! assert_eq!(parse("2"), Ok(Duration::from_secs(2)));
//! assert_eq!(parse("150000us"), Ok(Duration::from_millis(150)));
//! assert_eq!(Human(Duration::from_millis(1500)).to_string(), "1500ms");
//! assert!(parse("2h").is_err());
//! ```

use core::fmt;
use core::time::Duration;

/// What is wrong with a duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    /// Not a number followed by a unit.
    #[error("not a duration such as 500ms, 2s or 1m")]
    Syntax,
    /// A unit other than `us`, `µs`, `ms`, `s`, `m`.
    #[error("unknown unit (use us, ms, s or m)")]
    Unit,
    /// Finer than a nanosecond (`0.0000001ms`), or more than nine decimals
    /// (`1.0000000001s`).
    #[error("finer than a nanosecond, or more than nine decimals")]
    Precision,
    /// Beyond what a [`Duration`] holds.
    #[error("too large")]
    Overflow,
}

/// Parses a duration (see the [module docs](self)). Spaces around it are
/// ignored.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let nanos_per_unit: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "m" => 60_000_000_000,
        _ if number.is_empty() => return Err(DurationError::Syntax),
        _ => return Err(DurationError::Unit),
    };
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !digits(int) || !digits(frac) {
        return Err(DurationError::Syntax);
    }
    if frac.len() > 9 {
        return Err(DurationError::Precision);
    }
    let value = |t: &str| -> Result<u128, DurationError> {
        if t.is_empty() {
            return Ok(0);
        }
        t.parse().map_err(|_| DurationError::Overflow)
    };
    let scale = 10u128.pow(frac.len() as u32);
    let frac_units = value(frac)? * nanos_per_unit;
    if !frac_units.is_multiple_of(scale) {
        return Err(DurationError::Precision);
    }
    let frac_nanos = frac_units / scale;
    let nanos = value(int)?
        .checked_mul(nanos_per_unit)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or(DurationError::Overflow)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    // The remainder is below 10^9, so it fits.
    let sub = u32::try_from(nanos % 1_000_000_000).unwrap_or(0);
    Ok(Duration::new(secs, sub))
}

/// Displays a duration in the largest of `m`, `s`, `ms`, `us` that keeps it
/// whole (`90s` rather than `1.5m`, `1500ms`), in the grammar [`parse`]
/// reads back; one that is not whole microseconds, in seconds with nine
/// decimals (`0.000001001s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Human(pub Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0.as_nanos();
        if ns != 0 && ns.is_multiple_of(60_000_000_000) {
            write!(f, "{}m", ns / 60_000_000_000)
        } else if ns.is_multiple_of(1_000_000_000) {
            write!(f, "{}s", ns / 1_000_000_000)
        } else if ns.is_multiple_of(1_000_000) {
            write!(f, "{}ms", ns / 1_000_000)
        } else if ns.is_multiple_of(1000) {
            write!(f, "{}us", ns / 1000)
        } else {
            write!(f, "{}.{:09}s", ns / 1_000_000_000, ns % 1_000_000_000)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $text:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($text), $want);
            }
        )*};
    }

    cases! {
        seconds_bare: "2" => Ok(Duration::from_secs(2));
        seconds: "2s" => Ok(Duration::from_secs(2));
        fraction: "1.5s" => Ok(Duration::from_millis(1500));
        leading_dot: ".5s" => Ok(Duration::from_millis(500));
        millis: "500ms" => Ok(Duration::from_millis(500));
        micros: "250us" => Ok(Duration::from_micros(250));
        micro_sign: "250µs" => Ok(Duration::from_micros(250));
        minutes: "1m" => Ok(Duration::from_secs(60));
        nanosecond: "0.000000001s" => Ok(Duration::from_nanos(1));
        spaces: " 3s " => Ok(Duration::from_secs(3));
        zero: "0" => Ok(Duration::ZERO);
        empty: "" => Err(DurationError::Syntax);
        only_unit: "ms" => Err(DurationError::Syntax);
        lone_dot: ".s" => Err(DurationError::Syntax);
        two_dots: "1.2.3s" => Err(DurationError::Syntax);
        sign: "-1s" => Err(DurationError::Syntax);
        hours: "2h" => Err(DurationError::Unit);
        too_precise: "1.0000000001s" => Err(DurationError::Precision);
        too_precise_millis: "0.0000001ms" => Err(DurationError::Precision);
        too_precise_micros: "1.1234567us" => Err(DurationError::Precision);
        fine_micros: "1.001us" => Ok(Duration::from_nanos(1001));
        too_large: "99999999999999999999999999999999999999999s" => Err(DurationError::Overflow);
        beyond_duration: "18446744073709551616s" => Err(DurationError::Overflow);
    }

    #[test]
    fn human_reads_back() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(90),
            Duration::from_secs(120),
            Duration::from_millis(1500),
            Duration::from_micros(250),
            Duration::from_nanos(1),
        ] {
            assert_eq!(parse(&Human(d).to_string()), Ok(d), "{}", Human(d));
        }
        assert_eq!(Human(Duration::from_secs(90)).to_string(), "90s");
        assert_eq!(Human(Duration::from_secs(120)).to_string(), "2m");
        assert_eq!(Human(Duration::ZERO).to_string(), "0s");
    }
}
