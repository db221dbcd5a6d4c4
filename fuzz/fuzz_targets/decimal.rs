//! `psi_core::decimal::{seconds, ratio}` against a slow reference built from
//! integer division and `format!`, on a `u64` and a `u32` taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::Percent;
use psi_core::decimal::{MAX_LEN, Ratio, Seconds, ratio, seconds};

/// `int.frac` with `frac` zero-padded to `places`, then trailing zeros and a
/// bare point dropped.
fn reference(int: u64, frac: u64, places: usize) -> String {
    let s = format!("{int}.{frac:0places$}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fuzz_target!(|data: &[u8]| {
    // The first 8 bytes (zero-padded) are the microseconds, the next 4 the hundredths.
    let mut bytes = [0u8; 12];
    let n = data.len().min(12);
    bytes[..n].copy_from_slice(&data[..n]);
    let micros = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes"));
    let hundredths = u32::from_le_bytes(bytes[8..].try_into().expect("4 bytes"));

    let mut buf = [0u8; MAX_LEN];
    let want = reference(micros / 1_000_000, micros % 1_000_000, 6);
    assert_eq!(seconds(micros, &mut buf), want, "seconds({micros})");
    assert_eq!(Seconds(micros).to_string(), want);

    let h = u64::from(hundredths);
    let want = reference(h / 10_000, h % 10_000, 4);
    assert_eq!(ratio(hundredths, &mut buf), want, "ratio({hundredths})");
    assert_eq!(Ratio(Percent(hundredths)).to_string(), want);
});
