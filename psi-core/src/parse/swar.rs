//! The kernel's exact format, parsed straight through: `some`/`full` lines
//! only, averages `%lu.%02lu` up to three whole digits, `total` up to 19
//! digits, lines ending in `\n`, `\r\n`, unknown ` key=value` fields, or
//! the end of the input. Anything else (an error, an unknown line, a longer
//! number) returns `None`, and the general parser decides.
//!
//! Each field is read with one 8-byte load and checked with a handful of
//! word operations (SWAR): a tag is one masked compare, an average one
//! compare against a template, eight digits of `total` one check and three
//! multiplies. The branches that remain (an average's width, whether
//! `total` has eight more digits) follow the data's shape, which is the same
//! from one read of a file to the next, so they are predicted.

use memchr::memchr;

use super::parse_general;
use crate::error::ParseError;
use crate::types::{Percent, Pressure, Record};

const SOME: u32 = u32::from_le_bytes(*b"some");
const FULL: u32 = u32::from_le_bytes(*b"full");
/// The tags, in the low bytes of a little-endian word.
const AVG10: u64 = u64::from_le_bytes(*b" avg10=\0");
const AVG60: u64 = u64::from_le_bytes(*b" avg60=\0");
const AVG300: u64 = u64::from_le_bytes(*b" avg300=");
const TOTAL: u64 = u64::from_le_bytes(*b" total=\0");
/// The low seven bytes: a seven-byte tag.
const SEVEN: u64 = 0x00FF_FFFF_FFFF_FFFF;
/// `'0'` in every byte.
const ZEROS: u64 = 0x3030_3030_3030_3030;
/// The high bit of every byte.
const HIGH: u64 = 0x8080_8080_8080_8080;
/// Added to a byte that should be a digit's value (0 to 9): sets the
/// high bit from 10 up.
const DIGIT: u64 = 0x7676_7676_7676_7676;

/// [`super::parse`]: the kernel's format straight through, anything
/// else to the general parser.
#[inline(always)]
pub(super) fn parse(input: &[u8]) -> Result<Pressure, ParseError> {
    road(input, Ok, || parse_general(input))
}

/// The fast road's answer, or `None` where it hands over.
#[cfg(test)]
pub(super) fn only(input: &[u8]) -> Option<Pressure> {
    road(input, Some, || None)
}

/// Reads the lines, giving the records to `done`, or calls `off` at the
/// first thing the fast road does not take.
//
// The records stay in locals and the result is built once, in place:
// filling a `Pressure` field by field and then copying it out costs
// moves, and worse, wide loads that wait on the narrow stores (no store
// forwarding), which once cost a third of the parse.
#[inline(always)]
fn road<R>(input: &[u8], done: impl FnOnce(Pressure) -> R, off: impl FnOnce() -> R) -> R {
    let mut some = None;
    let mut full = None;
    let mut s = input;
    while let Some((word, rest)) = s.split_first_chunk::<4>() {
        let Some((record, rest)) = record(rest) else {
            break;
        };
        match u32::from_le_bytes(*word) {
            SOME if some.is_none() => some = Some(record),
            FULL if full.is_none() => full = Some(record),
            _ => break,
        }
        if rest.is_empty() {
            return done(Pressure { some, full });
        }
        s = rest;
    }
    off()
}

/// The first eight bytes of `s`, little-endian.
#[inline(always)]
fn load(s: &[u8]) -> Option<u64> {
    s.first_chunk::<8>().map(|c| u64::from_le_bytes(*c))
}

/// `s` after a tag of `len` bytes, if it starts with it.
#[inline(always)]
fn tag(s: &[u8], tag: u64, mask: u64, len: usize) -> Option<&[u8]> {
    if load(s)? & mask == tag {
        s.get(len..)
    } else {
        None
    }
}

/// One record after its line word, and the input after its line.
#[inline(always)]
fn record(s: &[u8]) -> Option<(Record, &[u8])> {
    let (avg10, s) = average::<15>(s, AVG10, SEVEN)?;
    let (avg60, s) = average::<15>(s, AVG60, SEVEN)?;
    let (avg300, s) = average::<16>(s, AVG300, u64::MAX)?;
    let (total, rest) = total(tag(s, TOTAL, SEVEN, 7)?)?;
    Some((
        Record {
            avg10,
            avg60,
            avg300,
            total,
        },
        rest,
    ))
}

/// A tag of `N - 8` bytes, then `D.DD`, `DD.DD` or `DDD.DD` and a space.
/// One length check covers the tag and the eight bytes after it; each
/// width's template is tried in turn, the usual one-digit width first.
#[inline(always)]
fn average<const N: usize>(s: &[u8], tag: u64, mask: u64) -> Option<(Percent, &[u8])> {
    let head = s.first_chunk::<N>()?;
    let t = u64::from_le_bytes(*head.first_chunk::<8>()?);
    let w = u64::from_le_bytes(*head.last_chunk::<8>()?);
    if t & mask != tag {
        return None;
    }
    let (value, len) = match fixed::<1>(w) {
        Some(v) => (v, 4),
        None => wider(w)?,
    };
    Some((Percent(value), s.get(N - 8 + len..)?))
}

/// An average of 10.00 or more, and its length.
#[inline(always)]
fn wider(w: u64) -> Option<(u32, usize)> {
    match fixed::<2>(w) {
        Some(v) => Some((v, 5)),
        None => Some((fixed::<3>(w)?, 6)),
    }
}

/// The value, in hundredths, of `W` digits, a dot, two digits and a space
/// at the start of `w`; `None` unless every byte is what it should be.
#[inline(always)]
fn fixed<const W: usize>(w: u64) -> Option<u32> {
    const { assert!(W >= 1 && W <= 3, "an average has 1 to 3 whole digits") };
    // The template `0`×W `.00 `, and what to add to each byte of `w` xor
    // the template so that a wrong byte sets its high bit: digit places
    // may hold 0 to 9, the dot's and the space's only 0. A byte that
    // carries into the next is itself wrong, so nothing wrong is missed.
    const D: u8 = 0x76;
    const F: u8 = 0x7F;
    const H: u8 = 0x80;
    let (template, add, mask) = match W {
        1 => (
            *b"0.00 \0\0\0",
            [D, F, D, D, F, 0, 0, 0],
            [H, H, H, H, H, 0, 0, 0],
        ),
        2 => (
            *b"00.00 \0\0",
            [D, D, F, D, D, F, 0, 0],
            [H, H, H, H, H, H, 0, 0],
        ),
        _ => (
            *b"000.00 \0",
            [D, D, D, F, D, D, F, 0],
            [H, H, H, H, H, H, H, 0],
        ),
    };
    let [template, add, mask] = [template, add, mask].map(u64::from_le_bytes);
    let d = w ^ template;
    if (d.wrapping_add(add) | d) & mask != 0 {
        return None;
    }
    // Each digit place now holds the digit's value (the bytes past the
    // template are the next tag's and only ever carry upwards). Adjacent
    // digits pair up as 10a + b, then one multiply weighs the pairs.
    let v = d.wrapping_mul(10).wrapping_add(d >> 8);
    Some(match W {
        // Byte 0 is 10×d0, byte 2 is d2d3: 10×byte0 + byte2.
        1 => ((((v & 0x00FF_00FF).wrapping_mul(1 + (10 << 16))) >> 16) & 0xFFFF) as u32,
        // Byte 0 is d0d1, byte 3 is d3d4: 100×byte0 + byte3.
        2 => ((((v & 0xFF00_00FF).wrapping_mul(1 + (100 << 24))) >> 24) & 0x3FFF) as u32,
        // Up to 99999 needs more room than one multiply leaves.
        _ => {
            let b = |i: u32| ((d >> (8 * i)) & 0xFF) as u32;
            b(0) * 10000 + b(1) * 1000 + b(2) * 100 + b(4) * 10 + b(5)
        }
    })
}

/// The number eight digit values (0 to 9, one a byte, the first in the
/// lowest byte) make: pairs, then fours, then the eight, by multiplies.
#[inline(always)]
fn eight(d: u64) -> u64 {
    let v = d.wrapping_mul(10).wrapping_add(d >> 8);
    let lo = (v & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let hi = ((v >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32));
    lo.wrapping_add(hi) >> 32
}

/// `total`: up to 19 digits, which cannot overflow a `u64`, then the end
/// of the line (or of the input, or unknown fields up to it); returns
/// the value and the input after the line. Digits go eight at a time
/// while there are eight, then one at a time: the next line's address
/// depends on where this number ends, and found by predicted branches
/// rather than by arithmetic on the loaded bytes, it does not wait for
/// them.
#[inline(always)]
fn total(mut s: &[u8]) -> Option<(u64, &[u8])> {
    let mut value: u64 = 0;
    let mut n = 0;
    while n < 16 {
        let Some(w) = load(s) else { break };
        let d = w ^ ZEROS;
        if (d.wrapping_add(DIGIT) | d) & HIGH != 0 {
            break;
        }
        value = value * 100_000_000 + eight(d);
        n += 8;
        s = s.get(8..)?;
    }
    let mut i = 0;
    for &b in s.iter().take(19 - n) {
        let d = b.wrapping_sub(b'0');
        if d >= 10 {
            break;
        }
        value = value * 10 + u64::from(d);
        i += 1;
    }
    if n + i == 0 {
        return None;
    }
    let rest = match s.get(i..)? {
        [] => &[],
        [b'\n', rest @ ..] | [b'\r', b'\n', rest @ ..] => rest,
        [b'\r'] => &[],
        // Fields a later kernel may add: skipped to the end of the line.
        [b' ', tail @ ..] => match memchr(b'\n', tail) {
            Some(i) => tail.get(i + 1..)?,
            None => &[],
        },
        _ => return None,
    };
    Some((value, rest))
}
