//! JSON for readings: the exporter's `/psi` and the CLI's `--format json`
//! (feature `std`). Written straight into a reused buffer, like [`crate::expose`].
//!
//! A [`Pressure`] is an object with `some` and `full`, each `null` or an object
//! of `avg10`, `avg60`, `avg300` (percent, as the kernel prints them, two
//! decimals) and `total` (microseconds, an integer):
//!
//! ```
//! let p = psi_core::parse(b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n")?;
//! let mut out = Vec::new();
//! psi_core::json::pressure(&mut out, &p);
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     r#"{"some":{"avg10":0.12,"avg60":1.05,"avg300":10.50,"total":123456789},"full":null}"#
//! );
//! # Ok::<(), psi_core::ParseError>(())
//! ```

use std::io::Write;

use crate::{Line, Pressure};

/// Writes `p` as a JSON object.
pub fn pressure(out: &mut Vec<u8>, p: &Pressure) {
    out.push(b'{');
    for (i, line) in Line::ALL.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        string(out, line.name());
        out.push(b':');
        match p.get(line) {
            None => out.extend_from_slice(b"null"),
            // Writing into a Vec cannot fail.
            Some(r) => {
                let _ = write!(
                    out,
                    r#"{{"avg10":{},"avg60":{},"avg300":{},"total":{}}}"#,
                    r.avg10, r.avg60, r.avg300, r.total
                );
            }
        }
    }
    out.push(b'}');
}

/// Writes `s` as a JSON string, escaping quotes, backslashes and control characters.
pub fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f | 0x7f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_what_json_requires() {
        let mut out = Vec::new();
        string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }

    #[test]
    fn full_only() {
        let p = crate::parse(b"full avg10=1.00 avg60=0.00 avg300=0.00 total=5\n").expect("valid");
        let mut out = Vec::new();
        pressure(&mut out, &p);
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            r#"{"some":null,"full":{"avg10":1.00,"avg60":0.00,"avg300":0.00,"total":5}}"#
        );
    }
}
