//! `psi_core::duration::parse` and `Human`.
//!
//! - On any UTF-8, `parse` never panics and agrees, value and error, with a
//!   slow reference of the module docs: the number is read digit by digit
//!   in exact `u128` arithmetic, and a fraction finer than a nanosecond is
//!   `Precision` for every unit (`0.0000001ms`, `1.1234567us`,
//!   `1.0000000001s`), never rounded or dropped.
//! - `Human(d)`, for every duration `parse` gives and for any `Duration`
//!   made of the input's bytes, reads back as `d`; it is a whole number
//!   (no leading zeros) in the largest of `m`, `s`, `ms`, `us` that keeps
//!   it whole (`0s` for zero), and has a decimal point, in seconds with
//!   nine decimals, exactly when `d` is not a whole number of microseconds.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use psi_core::duration::{DurationError, Human, parse};

/// The most decimals `parse` reads, for every unit. Not in the docs: for
/// `m`, ten decimals can still be whole nanoseconds (`0.0000000001m` is
/// 6 ns), and `1.0000000000s` is exactly 1 s, yet both are `Precision`.
const MAX_DECIMALS: usize = 9;

/// The grammar in the module docs, checked in the order `parse` reports
/// errors: unit, digits, decimals, size.
fn reference(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = s.split_at(number_len);
    // The unit in nanoseconds, and how many decimals of it are still whole
    // nanoseconds (all of them, up to MAX_DECIMALS, for a minute).
    let (unit_nanos, exact_decimals): (u128, usize) = match unit {
        "" | "s" => (1_000_000_000, 9),
        "ms" => (1_000_000, 6),
        "us" | "µs" => (1_000, 3),
        "m" => (60 * 1_000_000_000, MAX_DECIMALS),
        _ if number.is_empty() => return Err(DurationError::Syntax),
        _ => return Err(DurationError::Unit),
    };
    let parts: Vec<&str> = number.split('.').collect();
    let (int, frac) = match parts[..] {
        [int] => (int, ""),
        [int, frac] => (int, frac),
        _ => return Err(DurationError::Syntax),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(DurationError::Syntax);
    }
    if frac.len() > MAX_DECIMALS {
        return Err(DurationError::Precision);
    }
    // Finer than a nanosecond: a digit other than 0 past the last decimal
    // that is still a whole nanosecond of the unit.
    if frac.bytes().skip(exact_decimals).any(|b| b != b'0') {
        return Err(DurationError::Precision);
    }
    let mut whole: u128 = 0;
    for b in int.bytes() {
        whole = whole
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(b - b'0')))
            .ok_or(DurationError::Overflow)?;
    }
    // frac has at most 9 digits, so frac · unit fits, and divides exactly
    // by 10^k after the check above.
    let frac_value: u128 = frac.bytes().fold(0, |n, b| n * 10 + u128::from(b - b'0'));
    let frac_units = frac_value * unit_nanos;
    let scale = 10u128.pow(frac.len() as u32);
    assert_eq!(frac_units % scale, 0, "the reference's own precision rule");
    let nanos = whole
        .checked_mul(unit_nanos)
        .and_then(|n| n.checked_add(frac_units / scale))
        .ok_or(DurationError::Overflow)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// What `Human(d)` promises.
fn check_human(d: Duration) {
    let human = Human(d).to_string();
    assert_eq!(parse(&human), Ok(d), "{d:?} written as {human:?}");
    let ns = d.as_nanos();
    if !ns.is_multiple_of(1000) {
        let want = format!("{}.{:09}s", d.as_secs(), d.subsec_nanos());
        assert_eq!(human, want, "{d:?} below a microsecond's precision");
        return;
    }
    let digits = human.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = human.split_at(digits);
    assert!(
        !number.is_empty() && (number == "0" || !number.starts_with('0')),
        "{human:?} for {d:?}"
    );
    let n: u128 = number.parse().expect("a number that fits");
    // How many of the unit make the next larger one; None for the largest.
    let next = match unit {
        "m" => None,
        "s" => Some(60),
        "ms" | "us" => Some(1000),
        _ => panic!("{human:?} for {d:?}: unit {unit:?}"),
    };
    if n == 0 {
        assert_eq!(human, "0s", "zero");
    } else if let Some(next) = next {
        assert!(
            !n.is_multiple_of(next),
            "{human:?} for {d:?} is whole in a larger unit"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    // Any duration, from the input's first 12 bytes.
    if let Some((secs, nanos)) = data.split_first_chunk::<8>().and_then(|(s, rest)| {
        let (n, _) = rest.split_first_chunk::<4>()?;
        Some((
            u64::from_le_bytes(*s),
            u32::from_le_bytes(*n) % 1_000_000_000,
        ))
    }) {
        check_human(Duration::new(secs, nanos));
    }

    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse(text);
    assert_eq!(
        got,
        reference(text),
        "parse({text:?}) against the reference"
    );
    match got {
        Ok(d) => check_human(d),
        // The message must render without panicking.
        Err(e) => drop(e.to_string()),
    }
});
