//! `psi_core::cpu_stat::parse` on any bytes: it never panics; each known
//! key's value is what a slow reference gives; and a `CpuStat` written back
//! as `cpu.stat` text (in either key order) parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use psi_core::cpu_stat::{CpuStat, parse};

const KEYS: [&str; 4] = ["usage_usec", "nr_periods", "nr_throttled", "throttled_usec"];

/// The reference, with `parse`'s documented rules spelled out: lines end at
/// `\n`; trailing ASCII whitespace is dropped; a line without a space is
/// skipped; the key is what comes before the first space, the value what
/// comes after it, a plain decimal `u64` (no sign, no other space) or else
/// `None`; the last line with the key wins, even when its value is bad.
fn reference(text: &[u8], key: &str) -> Option<u64> {
    let mut value = None;
    for line in text.split(|&b| b == b'\n') {
        let mut line = line;
        while let [rest @ .., b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'] = line {
            line = rest;
        }
        let Some(space) = line.iter().position(|&b| b == b' ') else {
            continue;
        };
        if &line[..space] != key.as_bytes() {
            continue;
        }
        let digits = &line[space + 1..];
        value = std::str::from_utf8(digits)
            .ok()
            .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|d| d.parse::<u64>().ok());
    }
    value
}

fn fields(s: &CpuStat) -> [Option<u64>; 4] {
    [s.usage_usec, s.nr_periods, s.nr_throttled, s.throttled_usec]
}

/// `s` as the kernel writes `cpu.stat`, with the keys in `order`, among
/// lines `parse` must skip.
fn write(s: &CpuStat, order: impl Iterator<Item = usize>) -> String {
    let values = fields(s);
    let mut text = String::from("user_usec 1\n");
    for i in order {
        if let Some(v) = values[i] {
            text.push_str(&format!("{} {v}\nnr_bursts 0\n", KEYS[i]));
        }
    }
    text
}

fuzz_target!(|data: &[u8]| {
    let got = parse(data);
    for (key, value) in KEYS.iter().zip(fields(&got)) {
        assert_eq!(value, reference(data, key), "{key}");
    }
    for text in [write(&got, 0..4), write(&got, (0..4).rev())] {
        assert_eq!(parse(text.as_bytes()), got, "written back as {text:?}");
    }
});
