//! `psi_core::duration::parse` on any UTF-8: it never panics; it agrees,
//! value and error, with a slow reference doing exact `u128` arithmetic on
//! the digits; and every duration it gives reads back from
//! `Human(d).to_string()`, which has a decimal point only below a
//! microsecond.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use psi_core::duration::{DurationError, Human, parse};

/// The grammar in the module docs, checked in the same order as `parse`
/// reports errors: unit, digits, decimals, size. The value is exact:
/// `int.frac` units is `(int · 10^k + frac) · unit / 10^k` nanoseconds,
/// rounded down (decimals finer than a nanosecond, possible with `ms` and
/// `us`, are dropped).
fn reference(text: &str) -> Result<Duration, DurationError> {
    let s = text.trim();
    let number_len = s
        .bytes()
        .take_while(|b| b.is_ascii_digit() || *b == b'.')
        .count();
    let (number, unit) = s.split_at(number_len);
    let unit_nanos: u128 = match unit {
        "" | "s" => 1_000_000_000,
        "ms" => 1_000_000,
        "us" | "µs" => 1_000,
        "m" => 60 * 1_000_000_000,
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
    if frac.len() > 9 {
        return Err(DurationError::Precision);
    }
    let mut scaled: u128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        scaled = scaled
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(b - b'0')))
            .ok_or(DurationError::Overflow)?;
    }
    let nanos = scaled
        .checked_mul(unit_nanos)
        .ok_or(DurationError::Overflow)?
        / 10u128.pow(frac.len() as u32);
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let got = parse(text);
    assert_eq!(
        got,
        reference(text),
        "parse({text:?}) against the reference"
    );
    let Ok(d) = got else { return };
    let human = Human(d).to_string();
    assert_eq!(parse(&human), Ok(d), "written back as {human:?}");
    let whole_micros = d.subsec_nanos().is_multiple_of(1000);
    assert_eq!(!human.contains('.'), whole_micros, "{human:?} for {d:?}");
});
