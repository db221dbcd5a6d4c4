//! The byte-level parser: one pass, no allocation, no floats, no panics.

use memchr::memchr;

use crate::error::{Field, ParseError, ParseErrorKind};
use crate::types::{Line, Percent, Pressure, Record};

mod swar;

/// Parses the contents of a pressure file.
///
/// Strict on what the kernel promises: the field names and their order,
/// ASCII digits, exactly two decimals on averages, `total` within `u64`, each
/// of `some` and `full` at most once. Tolerant of what a later kernel may add:
/// unknown `key=value` fields after `total` and unknown lines are skipped.
/// Lines may end in `\n` or `\r\n`, and the last one needs no newline.
///
/// ```
/// let p = psi_core::parse(b"full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n")?;
/// assert!(p.some.is_none());
/// assert_eq!(p.full.map(|r| r.total), Some(98_765_432));
///
/// let err = psi_core::parse(b"some avg10=0.1 avg60=0.00 avg300=0.00 total=0").unwrap_err();
/// assert_eq!(err.to_string(), "avg10 must have exactly two decimals (byte 14, line 1)");
/// # Ok::<(), psi_core::ParseError>(())
/// ```
pub fn parse(input: &[u8]) -> Result<Pressure, ParseError> {
    swar::parse(input)
}

/// The general parser: every rule, every error with its place. [`parse`]
/// returns what this returns, for every input; it only takes a faster road
/// for files exactly as the kernel writes them.
pub fn parse_general(input: &[u8]) -> Result<Pressure, ParseError> {
    let mut out = Pressure::default();
    let mut start = 0;
    let mut line_no = 1;
    while start < input.len() {
        let rest = input.get(start..).unwrap_or_default();
        let len = memchr(b'\n', rest).unwrap_or(rest.len());
        let mut line = rest.get(..len).unwrap_or_default();
        if let [head @ .., b'\r'] = line {
            line = head;
        }
        let kind = match line {
            [b's', b'o', b'm', b'e', tail @ ..] if at_word_end(tail) => Some(Line::Some),
            [b'f', b'u', b'l', b'l', tail @ ..] if at_word_end(tail) => Some(Line::Full),
            _ => None,
        };
        if let Some(kind) = kind {
            let slot = match kind {
                Line::Some => &mut out.some,
                Line::Full => &mut out.full,
            };
            if slot.is_some() {
                return Err(ParseError::new(
                    ParseErrorKind::DuplicateLine(kind),
                    start,
                    line_no,
                ));
            }
            let mut cursor = Cursor {
                buf: line,
                pos: 4,
                base: start,
                line: line_no,
            };
            *slot = Some(cursor.record()?);
        }
        start += len + 1;
        line_no += 1;
    }
    if out.some.is_none() && out.full.is_none() {
        return Err(ParseError::new(ParseErrorKind::NoRecord, 0, 1));
    }
    Ok(out)
}

/// True when a line word (`some`, `full`) ends here: at the end of the line or before a space.
fn at_word_end(tail: &[u8]) -> bool {
    matches!(tail.first(), None | Some(b' '))
}

/// A position inside one line, which knows where that line sits in the input.
struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
    line: usize,
}

impl Cursor<'_> {
    fn record(&mut self) -> Result<Record, ParseError> {
        self.tag(b" avg10=", Field::Avg10)?;
        let avg10 = self.average(Field::Avg10)?;
        self.tag(b" avg60=", Field::Avg60)?;
        let avg60 = self.average(Field::Avg60)?;
        self.tag(b" avg300=", Field::Avg300)?;
        let avg300 = self.average(Field::Avg300)?;
        self.tag(b" total=", Field::Total)?;
        let total = self.total()?;
        // Anything after `total` is a field from a later kernel: skipped.
        Ok(Record {
            avg10,
            avg60,
            avg300,
            total,
        })
    }

    fn error(&self, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.base + self.pos, self.line)
    }

    fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes `tag` (such as ` avg10=`) or says which field is missing.
    fn tag(&mut self, tag: &[u8], field: Field) -> Result<(), ParseError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        if rest.starts_with(tag) {
            self.pos += tag.len();
            Ok(())
        } else if rest.is_empty() {
            Err(self.error(ParseErrorKind::Truncated(field)))
        } else {
            Err(self.error(ParseErrorKind::ExpectedField(field)))
        }
    }

    /// Consumes a run of ASCII digits into `acc`, returning how many there were,
    /// or `None` when the value overflows.
    fn digits<T: Digits>(&mut self, acc: &mut T) -> Option<usize> {
        let start = self.pos;
        while let Some(b @ b'0'..=b'9') = self.peek() {
            *acc = acc.push(b - b'0')?;
            self.pos += 1;
        }
        Some(self.pos - start)
    }

    /// Checks that a value ends here: at the end of the line or before a space.
    fn value_end(&self, field: Field) -> Result<(), ParseError> {
        match self.peek() {
            None | Some(b' ') => Ok(()),
            Some(_) => Err(self.error(ParseErrorKind::InvalidDigit(field))),
        }
    }

    /// `%lu.%02lu`: digits, a dot, exactly two digits.
    fn average(&mut self, field: Field) -> Result<Percent, ParseError> {
        let mut whole: u32 = 0;
        let start = self.pos;
        let n = self.digits(&mut whole).ok_or_else(|| {
            ParseError::new(
                ParseErrorKind::Overflow(field),
                self.base + start,
                self.line,
            )
        })?;
        if n == 0 {
            return Err(self.error(match self.peek() {
                None | Some(b' ') => ParseErrorKind::EmptyValue(field),
                Some(_) => ParseErrorKind::InvalidDigit(field),
            }));
        }
        if self.peek() != Some(b'.') {
            self.value_end(field)?;
            return Err(self.error(ParseErrorKind::Decimals(field)));
        }
        self.pos += 1;
        let mut frac: u32 = 0;
        let decimals = self.digits(&mut frac);
        if decimals.is_some() {
            self.value_end(field)?;
        }
        if decimals != Some(2) {
            return Err(self.error(ParseErrorKind::Decimals(field)));
        }
        whole
            .checked_mul(100)
            .and_then(|w| w.checked_add(frac))
            .map(Percent)
            .ok_or_else(|| {
                ParseError::new(
                    ParseErrorKind::Overflow(field),
                    self.base + start,
                    self.line,
                )
            })
    }

    /// `%llu`: digits within `u64`.
    fn total(&mut self) -> Result<u64, ParseError> {
        let mut total: u64 = 0;
        let start = self.pos;
        let n = self.digits(&mut total).ok_or_else(|| {
            ParseError::new(
                ParseErrorKind::Overflow(Field::Total),
                self.base + start,
                self.line,
            )
        })?;
        if n == 0 {
            return Err(self.error(match self.peek() {
                None | Some(b' ') => ParseErrorKind::EmptyValue(Field::Total),
                Some(_) => ParseErrorKind::InvalidDigit(Field::Total),
            }));
        }
        self.value_end(Field::Total)?;
        Ok(total)
    }
}

/// An unsigned integer that decimal digits accumulate into, with overflow checks.
trait Digits: Sized + Copy {
    fn push(self, digit: u8) -> Option<Self>;
}

impl Digits for u32 {
    fn push(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u32::from(digit))
    }
}

impl Digits for u64 {
    fn push(self, digit: u8) -> Option<Self> {
        self.checked_mul(10)?.checked_add(u64::from(digit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Field::*;
    use crate::error::ParseErrorKind::*;

    const fn rec(avg10: u32, avg60: u32, avg300: u32, total: u64) -> Record {
        Record {
            avg10: Percent(avg10),
            avg60: Percent(avg60),
            avg300: Percent(avg300),
            total,
        }
    }

    /// `ok!(name: input => some, full)` and `err!(name: input => kind, offset, line)`.
    macro_rules! ok {
        ($($name:ident: $input:expr => $some:expr, $full:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($input), Ok(Pressure { some: $some, full: $full }));
            }
        )*};
    }
    macro_rules! err {
        ($($name:ident: $input:expr => $kind:expr, $offset:expr, $line:expr;)*) => {$(
            #[test]
            fn $name() {
                let e = parse($input).expect_err("must not parse");
                assert_eq!((e.kind(), e.offset(), e.line()), ($kind, $offset, $line), "{e}");
            }
        )*};
    }

    const TYPICAL: &[u8] = b"some avg10=0.12 avg60=1.05 avg300=10.50 total=123456789\n\
                             full avg10=0.00 avg60=0.50 avg300=2.25 total=98765432\n";

    ok! {
        typical: TYPICAL => Some(rec(12, 105, 1050, 123_456_789)), Some(rec(0, 50, 225, 98_765_432));
        real_system_io: include_bytes!("../../tests/data/system-io") =>
            Some(rec(1, 57, 33, 1_619_821)), Some(rec(0, 23, 16, 889_162));
        real_cgroup_cpu: include_bytes!("../../tests/data/cgroup-cpu-stressed") =>
            Some(rec(4415, 927, 198, 5_938_186)), Some(rec(0, 0, 0, 2595));
        irq_full_only: include_bytes!("../../tests/data/irq-full-only") =>
            None, Some(rec(102, 77, 31, 22_330_871));
        cpu_some_only: include_bytes!("../../tests/data/cpu-some-only") =>
            Some(rec(45, 30, 12, 4_567_890)), None;
        max_values: include_bytes!("../../tests/data/max-values") =>
            Some(rec(10_000, 10_000, 10_000, u64::MAX)), Some(rec(10_000, 10_000, 10_000, u64::MAX));
        hundred_percent: b"some avg10=100.00 avg60=0.00 avg300=0.00 total=0" =>
            Some(rec(10_000, 0, 0, 0)), None;
        total_zero: b"full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" => None, Some(rec(0, 0, 0, 0));
        no_trailing_newline: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1" =>
            Some(rec(12, 105, 1050, 1)), None;
        crlf: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\r\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=2\r\n" =>
            Some(rec(12, 105, 1050, 1)), Some(rec(0, 0, 0, 2));
        full_before_some: b"full avg10=0.00 avg60=0.00 avg300=0.00 total=2\nsome avg10=0.01 avg60=0.00 avg300=0.00 total=1\n" =>
            Some(rec(1, 0, 0, 1)), Some(rec(0, 0, 0, 2));
        unknown_trailing_fields: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1 avg3600=0.01 x=y\n" =>
            Some(rec(12, 105, 1050, 1)), None;
        unknown_lines: b"# a comment\n\nsomething avg10=x\nsome avg10=0.12 avg60=1.05 avg300=10.50 total=1\nfuller 1\n" =>
            Some(rec(12, 105, 1050, 1)), None;
        leading_zeros: b"some avg10=007.05 avg60=0.00 avg300=0.00 total=0001" =>
            Some(rec(705, 0, 0, 1)), None;
    }

    err! {
        empty: b"" => NoRecord, 0, 1;
        only_newlines: b"\n\n" => NoRecord, 0, 1;
        only_unknown: b"hello world\n" => NoRecord, 0, 1;
        bare_some: b"some" => Truncated(Avg10), 4, 1;
        truncated_line: b"some avg10=0.12 avg60=1.05" => Truncated(Avg300), 26, 1;
        truncated_value: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=" => EmptyValue(Total), 46, 1;
        truncated_second_line: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\nfull avg10=0." =>
            Decimals(Avg10), 61, 2;
        repeated_some: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\nsome avg10=0.12 avg60=1.05 avg300=10.50 total=1\n" =>
            DuplicateLine(Line::Some), 48, 2;
        repeated_full: b"full avg10=0.12 avg60=1.05 avg300=10.50 total=1\nfull avg10=0.12 avg60=1.05 avg300=10.50 total=1" =>
            DuplicateLine(Line::Full), 48, 2;
        fields_out_of_order: b"some avg60=0.12 avg10=1.05 avg300=10.50 total=1" => ExpectedField(Avg10), 4, 1;
        misnamed_field: b"some avg10=0.12 avg61=1.05 avg300=10.50 total=1" => ExpectedField(Avg60), 15, 1;
        double_space: b"some  avg10=0.12 avg60=1.05 avg300=10.50 total=1" => ExpectedField(Avg10), 4, 1;
        one_decimal: b"some avg10=0.1 avg60=1.05 avg300=10.50 total=1" => Decimals(Avg10), 14, 1;
        three_decimals: b"some avg10=0.123 avg60=1.05 avg300=10.50 total=1" => Decimals(Avg10), 16, 1;
        no_decimals: b"some avg10=0.12 avg60=1 avg300=10.50 total=1" => Decimals(Avg60), 23, 1;
        no_whole_part: b"some avg10=.12 avg60=1.05 avg300=10.50 total=1" => InvalidDigit(Avg10), 11, 1;
        empty_average: b"some avg10= avg60=1.05 avg300=10.50 total=1" => EmptyValue(Avg10), 11, 1;
        negative: b"some avg10=-0.12 avg60=1.05 avg300=10.50 total=1" => InvalidDigit(Avg10), 11, 1;
        letter_in_average: b"some avg10=0.1x avg60=1.05 avg300=10.50 total=1" => InvalidDigit(Avg10), 14, 1;
        letter_in_total: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=12a" => InvalidDigit(Total), 48, 1;
        float_total: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1.5" => InvalidDigit(Total), 47, 1;
        unicode_digit: "some avg10=\u{0661}.00 avg60=1.05 avg300=10.50 total=1".as_bytes() => InvalidDigit(Avg10), 11, 1;
        total_overflow: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=18446744073709551616" => Overflow(Total), 46, 1;
        average_overflow: b"some avg10=42949673.00 avg60=1.05 avg300=10.50 total=1" => Overflow(Avg10), 11, 1;
        huge_decimals: b"some avg10=0.123456789012345678901 avg60=1.05 avg300=10.50 total=1" => Decimals(Avg10), 23, 1;
        tab_separator: b"some\tavg10=0.12 avg60=1.05 avg300=10.50 total=1" => NoRecord, 0, 1;
        cr_inside: b"some avg10=0.12\r avg60=1.05 avg300=10.50 total=1" => InvalidDigit(Avg10), 15, 1;
        error_on_later_line_after_valid: b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=x\n" =>
            InvalidDigit(Total), 93, 2;
    }

    /// Every table input again: the fast road and the general parser agree.
    #[test]
    fn fast_road_agrees_with_the_general_parser() {
        let inputs: &[&[u8]] = &[
            TYPICAL,
            include_bytes!("../../tests/data/max-values"),
            include_bytes!("../../tests/data/cpu-some-only"),
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\r\n",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\r",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1 x=y\n",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\rx\n",
            b"some avg10=1000.00 avg60=1.05 avg300=10.50 total=1\n",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=12345678901234567890\n",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1234567890123456789\n",
            b"some avg10=0.12 avg60=1.05 avg300=10.50 total=1\nsome avg10=0.12 avg60=1.05 avg300=10.50 total=1",
            b"",
        ];
        for input in inputs {
            assert_eq!(
                parse(input),
                parse_general(input),
                "{:?}",
                core::str::from_utf8(input)
            );
            if let Some(p) = swar::only(input) {
                assert_eq!(Ok(p), parse_general(input));
            }
        }
        assert!(
            swar::only(TYPICAL).is_some(),
            "the kernel's format takes the fast road"
        );
    }

    #[test]
    fn display_names_the_problem_and_place() {
        let e = parse(b"some avg10=0.12 avg60=1x05 avg300=10.50 total=1").expect_err("bad digit");
        assert_eq!(e.to_string(), "invalid digit in avg60 (byte 23, line 1)");
        let e = parse(b"").expect_err("empty");
        assert_eq!(
            e.to_string(),
            "no `some` or `full` line: this is not a pressure file (byte 0, line 1)"
        );
    }

    #[test]
    fn display_writes_the_kernel_format_back() {
        let p = parse(TYPICAL).expect("typical");
        let mut buf = [0u8; 256];
        let mut w = Writer(&mut buf, 0);
        core::fmt::write(&mut w, format_args!("{p}")).expect("fits");
        let n = w.1;
        assert_eq!(&buf[..n], TYPICAL);
        assert_eq!(parse(&buf[..n]), Ok(p));
    }

    /// A `core::fmt::Write` into a fixed buffer, so this test also runs without `std`.
    struct Writer<'a>(&'a mut [u8], usize);
    impl core::fmt::Write for Writer<'_> {
        fn write_str(&mut self, s: &str) -> core::fmt::Result {
            let end = self.1 + s.len();
            self.0
                .get_mut(self.1..end)
                .ok_or(core::fmt::Error)?
                .copy_from_slice(s.as_bytes());
            self.1 = end;
            Ok(())
        }
    }
}
