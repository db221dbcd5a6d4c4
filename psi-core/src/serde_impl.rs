//! `Serialize` and `Deserialize` for the values (feature `serde`), in the
//! shape of the JSON envelope (`psi_core::json`, feature `std`):
//!
//! - a [`Pressure`](crate::Pressure) is `{"some": …, "full": …}`, each
//!   `null` (absent on deserializing is `null` too) or a
//!   [`Record`](crate::Record) `{"avg10": …, "avg60": …, "avg300": …,
//!   "total": …}`;
//! - a [`Percent`] is a number in percent (`1.05`), `total` an integer of
//!   microseconds;
//! - a [`Resource`](crate::Resource) or [`Line`](crate::Line) is the
//!   kernel's word (`"cpu"`, `"some"`).
//!
//! A `Percent` goes out as the `f64` nearest to its hundredths / 100 and
//! comes back as that number × 100, rounded: exact for every `u32` of
//! hundredths, since the two roundings err by less than 10⁻⁶ of a
//! hundredth where half a hundredth would be needed (serde_json's default
//! best-effort float parsing, off by an ulp at worst, changes nothing).
//! A number with more
//! than two decimals, negative, or too large is refused. None of this
//! needs `std`.

use core::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::types::{Line, Percent, Resource};

impl Serialize for Percent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.percent())
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let percent = f64::deserialize(deserializer)?;
        Percent::from_percent(percent).ok_or_else(|| {
            de::Error::invalid_value(
                de::Unexpected::Float(percent),
                &"a percentage with at most two decimals, from 0 to 42949672.95",
            )
        })
    }
}

impl Percent {
    /// The percentage `percent` (`1.05`) in hundredths, if it is one: not
    /// negative, at most two decimals (up to the `f64` error of the
    /// number), within `u32` hundredths.
    fn from_percent(percent: f64) -> Option<Percent> {
        let hundredths = percent * 100.0;
        // Two decimals give an error far below this; a third does not.
        const SLACK: f64 = 1e-3;
        let rounded = round(hundredths);
        let exact = (hundredths - rounded).abs() <= SLACK;
        let in_range = (0.0..=f64::from(u32::MAX)).contains(&rounded);
        // In range and integral, the cast is exact.
        (exact && in_range).then_some(Percent(rounded as u32))
    }
}

/// `x` rounded half away from zero, for non-negative `x` below 2^52 (where
/// `f64` holds every integer and half-integer): `f64::round` is in `std` only.
fn round(x: f64) -> f64 {
    if !(0.0..4_503_599_627_370_496.0).contains(&x) {
        return x;
    }
    let floor = x as u64 as f64;
    if x - floor >= 0.5 { floor + 1.0 } else { floor }
}

/// Serializes as the kernel's word, deserializes from it.
macro_rules! kernel_word_serde {
    ($ty:ident, $expecting:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.name())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Word;
                impl Visitor<'_> for Word {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse()
                            .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
                    }
                }
                deserializer.deserialize_str(Word)
            }
        }
    };
}

kernel_word_serde!(Resource, "one of cpu, memory, io, irq");
kernel_word_serde!(Line, "some or full");

#[cfg(test)]
mod tests {
    use super::*;

    /// Hundredths to the `f64` that is serialized and back.
    fn round_trip(h: u32) -> Option<Percent> {
        Percent::from_percent(Percent(h).percent())
    }

    #[test]
    fn percent_round_trips_exactly_over_the_kernel_range_and_samples_of_u32() {
        // Every value the kernel prints (0.00 to 100.00) and ten times
        // more, the top of the u32 range, and a stride through the rest.
        let top = u32::MAX - 1_000_000..=u32::MAX;
        let stride = (0..=u32::MAX).step_by(9_973);
        for h in (0..=1_000_000).chain(top).chain(stride) {
            assert_eq!(round_trip(h), Some(Percent(h)), "{h}");
        }
    }

    #[test]
    fn not_two_decimals_is_refused() {
        for bad in [-0.01, 1.234, 1.2301, 42_949_673.0, f64::NAN, f64::INFINITY] {
            assert_eq!(Percent::from_percent(bad), None, "{bad}");
        }
        assert_eq!(Percent::from_percent(10.5), Some(Percent(1050)));
        assert_eq!(Percent::from_percent(0.0), Some(Percent(0)));
    }
}
