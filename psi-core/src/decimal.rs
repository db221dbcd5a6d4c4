//! Exact decimal writers for exposition, without floating point.
//!
//! Prometheus wants seconds and ratios; the kernel gives microseconds and
//! hundredths of a percent. Going through `f64` would print `0.30000000000000004`
//! where the kernel meant `0.3`, so these writers place the decimal point in
//! the integer's digits instead. Trailing zeros after the point are dropped,
//! and so is a point with nothing after it (`1000000` µs is `1`).
//!
//! ```
//! use psi_core::decimal::{Ratio, Seconds};
//! use psi_core::Percent;
//!
//! assert_eq!(Seconds(123_456_789).to_string(), "123.456789");
//! assert_eq!(Seconds(1_500_000).to_string(), "1.5");
//! assert_eq!(Ratio(Percent(1234)).to_string(), "0.1234");
//! assert_eq!(Ratio(Percent(10_000)).to_string(), "1");
//! ```

use core::fmt;

use crate::types::Percent;

/// The size of a buffer that holds any number these writers produce.
pub const MAX_LEN: usize = 24;

/// A stack buffer for [`seconds`] and [`ratio`].
pub type Buf = [u8; MAX_LEN];

/// `micros` microseconds in seconds, as the nearest `f64`: one division of
/// two exact operands (below 2^53 µs, 285 years) rounds once, correctly.
pub fn seconds_f64(micros: u64) -> f64 {
    micros as f64 / 1_000_000.0
}

/// Writes `micros` microseconds as seconds (`123456789` -> `123.456789`) into
/// `buf` and returns the text.
pub fn seconds(micros: u64, buf: &mut Buf) -> &str {
    ascii(fixed(Fixed::seconds(micros), buf))
}

/// Writes `hundredths` of a percent as a ratio (`1234` -> `0.1234`) into `buf`
/// and returns the text.
pub fn ratio(hundredths: u32, buf: &mut Buf) -> &str {
    ascii(fixed(Fixed::ratio(hundredths), buf))
}

/// Writes an unsigned integer into `buf` and returns the text.
pub fn integer(value: u64, buf: &mut Buf) -> &str {
    ascii(fixed(Fixed::integer(value), buf))
}

/// The text of what [`fixed`] wrote: only ASCII digits and a dot, so this never fails.
fn ascii(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or_default()
}

/// Writes `number` at the end of `buf` and returns the bytes written.
/// Every caller's number fits (at most 21 bytes, `seconds(u64::MAX)`); one
/// that did not would come out empty rather than panic.
fn fixed(number: Fixed, buf: &mut Buf) -> &[u8] {
    let out = MAX_LEN
        .checked_sub(number.len())
        .and_then(|start| buf.get_mut(start..))
        .unwrap_or_default();
    number.write(out);
    out
}

/// A number `int.frac` with its trailing zeros dropped, ready to be written
/// into exactly [`len`](Self::len) bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed {
    int: u64,
    frac: u64,
    places: u32,
}

impl Fixed {
    /// `int.frac`, where `frac` has `places` digits (`frac` below 10 to the
    /// `places`).
    pub(crate) fn new(int: u64, mut frac: u64, mut places: u32) -> Fixed {
        if frac == 0 {
            places = 0;
        }
        while places > 0 && frac.is_multiple_of(10) {
            frac /= 10;
            places -= 1;
        }
        Fixed { int, frac, places }
    }

    /// Microseconds as seconds.
    pub(crate) fn seconds(micros: u64) -> Fixed {
        Fixed::new(micros / 1_000_000, micros % 1_000_000, 6)
    }

    /// Hundredths of a percent as a ratio.
    pub(crate) fn ratio(hundredths: u32) -> Fixed {
        let h = u64::from(hundredths);
        Fixed::new(h / 10_000, h % 10_000, 4)
    }

    /// A whole number.
    pub(crate) fn integer(value: u64) -> Fixed {
        Fixed::new(value, 0, 0)
    }

    /// How many bytes the number takes: up to 20 digits, then a point and
    /// `places` digits if `frac` is not zero.
    pub(crate) fn len(&self) -> usize {
        let int = self.int.checked_ilog10().map_or(1, |l| l as usize + 1);
        match self.places {
            0 => int,
            p => int + 1 + p as usize,
        }
    }

    /// Writes the number into `out`, which must be [`len`](Self::len) bytes
    /// long, last digit first.
    pub(crate) fn write(self, out: &mut [u8]) {
        let mut digits = out.iter_mut().rev();
        let mut frac = self.frac;
        for _ in 0..self.places {
            if let Some(d) = digits.next() {
                *d = b'0' + (frac % 10) as u8;
            }
            frac /= 10;
        }
        if self.places > 0
            && let Some(d) = digits.next()
        {
            *d = b'.';
        }
        let mut int = self.int;
        for d in digits {
            *d = b'0' + (int % 10) as u8;
            int /= 10;
        }
    }
}

/// Displays microseconds as exact seconds: `Seconds(1_500_000)` is `1.5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Seconds(pub u64);

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(seconds(self.0, &mut [0; MAX_LEN]))
    }
}

/// Displays a [`Percent`] as an exact ratio: `Ratio(Percent(1234))` is `0.1234`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio(pub Percent);

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(ratio(self.0.hundredths(), &mut [0; MAX_LEN]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! cases {
        ($($name:ident: $f:ident($v:expr) => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!($f($v, &mut [0; MAX_LEN]), $want);
            }
        )*};
    }

    cases! {
        seconds_zero: seconds(0) => "0";
        seconds_one_micro: seconds(1) => "0.000001";
        seconds_typical: seconds(123_456_789) => "123.456789";
        seconds_whole: seconds(1_000_000) => "1";
        seconds_half: seconds(1_500_000) => "1.5";
        seconds_trailing_zero: seconds(10_100_000) => "10.1";
        seconds_max: seconds(u64::MAX) => "18446744073709.551615";
        integer_zero: integer(0) => "0";
        integer_max: integer(u64::MAX) => "18446744073709551615";
        ratio_zero: ratio(0) => "0";
        ratio_typical: ratio(1234) => "0.1234";
        ratio_small: ratio(5) => "0.0005";
        ratio_tenth: ratio(1000) => "0.1";
        ratio_full: ratio(10_000) => "1";
        ratio_above_one: ratio(12_345) => "1.2345";
        ratio_max: ratio(u32::MAX) => "429496.7295";
    }
}
