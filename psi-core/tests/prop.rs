//! Property tests: the parser against its own `Display`, against a naive
//! `split`-based oracle, and against arbitrary and mutated bytes; the decimal
//! writers against a slow `format!`-based reference.

mod common;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::FileFailurePersistence;
use psi_core::decimal::{MAX_LEN, Ratio, Seconds, ratio, seconds};
use psi_core::{ParseError, Percent, Pressure, Record, parse};

use common::REAL;

// ---------------------------------------------------------------------------
// The oracle: the format as a reader of the kernel docs would parse it, with
// `str::split` and `split_once`, allocating freely. It mirrors the parser's
// documented contract, not its code: `some`/`full` lines of single-space
// separated `key=value` fields in a fixed order, `\n` or `\r\n` line ends,
// unknown lines and unknown trailing fields ignored.
// ---------------------------------------------------------------------------

/// Returns `None` wherever the parser must return an error.
fn oracle(input: &str) -> Option<Pressure> {
    let mut out = Pressure::default();
    for line in input.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut words = line.split(' ');
        let slot = match words.next() {
            Some("some") => &mut out.some,
            Some("full") => &mut out.full,
            _ => continue,
        };
        if slot.is_some() {
            return None;
        }
        let mut value = |name: &str| {
            let (key, value) = words.next()?.split_once('=')?;
            (key == name).then_some(value)
        };
        let avg10 = oracle_average(value("avg10")?)?;
        let avg60 = oracle_average(value("avg60")?)?;
        let avg300 = oracle_average(value("avg300")?)?;
        let total = oracle_digits(value("total")?)?.parse::<u64>().ok()?;
        *slot = Some(Record {
            avg10,
            avg60,
            avg300,
            total,
        });
    }
    (out.some.is_some() || out.full.is_some()).then_some(out)
}

/// `%lu.%02lu` into hundredths.
fn oracle_average(value: &str) -> Option<Percent> {
    let (whole, frac) = value.split_once('.')?;
    if frac.len() != 2 {
        return None;
    }
    let whole: u32 = oracle_digits(whole)?.parse().ok()?;
    let frac: u32 = oracle_digits(frac)?.parse().ok()?;
    whole.checked_mul(100)?.checked_add(frac).map(Percent)
}

/// `str::parse` also takes a leading `+`; the kernel never writes one.
fn oracle_digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

/// Hundredths of a percent: mostly what the kernel prints (0 to 100.00), some
/// beyond (up to 100000.00), and anything a `u32` holds.
fn hundredths() -> impl Strategy<Value = u32> {
    prop_oneof![
        4 => 0..=10_000u32,
        2 => 0..=10_000_000u32,
        1 => any::<u32>(),
    ]
}

fn total() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..=10_000_000_000u64,
        any::<u64>(),
        Just(u64::MAX),
        Just(0u64)
    ]
}

fn record() -> impl Strategy<Value = Record> {
    (hundredths(), hundredths(), hundredths(), total()).prop_map(|(avg10, avg60, avg300, total)| {
        Record {
            avg10: Percent(avg10),
            avg60: Percent(avg60),
            avg300: Percent(avg300),
            total,
        }
    })
}

/// Any `Pressure` with at least one line.
fn pressure() -> impl Strategy<Value = Pressure> {
    prop_oneof![
        (record(), record()).prop_map(|(s, f)| (Some(s), Some(f))),
        record().prop_map(|s| (Some(s), None)),
        record().prop_map(|f| (None, Some(f))),
    ]
    .prop_map(|(some, full)| Pressure { some, full })
}

/// An average written the kernel's way, sometimes with leading zeros (which
/// the format allows and both parsers must accept).
fn write_average(p: Percent, zeros: usize) -> String {
    format!(
        "{}{}.{:02}",
        "0".repeat(zeros),
        p.hundredths() / 100,
        p.hundredths() % 100
    )
}

/// What a later kernel might append after `total`.
fn trailing_fields() -> impl Strategy<Value = String> {
    proptest::collection::vec("[a-z][a-z0-9_]{0,8}=[0-9a-z.]{0,10}", 0..3)
        .prop_map(|fields| fields.iter().map(|f| format!(" {f}")).collect())
}

/// A line no parser should read as `some` or `full`: anything printable that
/// does not start with one of those words followed by a space or the line end.
fn unknown_line() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("# comment".to_owned()),
        Just("something avg10=x".to_owned()),
        Just("fuller 1".to_owned()),
        Just("Some avg10=0.00 avg60=0.00 avg300=0.00 total=0".to_owned()),
        Just("some\tavg10=0.00 avg60=0.00 avg300=0.00 total=0".to_owned()),
        Just(" full avg10=0.00 avg60=0.00 avg300=0.00 total=0".to_owned()),
        "[ -~]{0,60}",
    ]
    .prop_filter("must not be a some/full line", |l| {
        !matches!(l.split(' ').next(), Some("some" | "full"))
    })
}

/// One line of a generated valid file, without its line end.
#[derive(Debug, Clone)]
enum GenLine {
    Record(&'static str, Record, [usize; 4], String),
    Unknown(String),
}

impl GenLine {
    fn write(&self, out: &mut String) {
        match self {
            GenLine::Record(word, r, zeros, trailing) => {
                out.push_str(&format!(
                    "{word} avg10={} avg60={} avg300={} total={}{}{trailing}",
                    write_average(r.avg10, zeros[0]),
                    write_average(r.avg60, zeros[1]),
                    write_average(r.avg300, zeros[2]),
                    "0".repeat(zeros[3]),
                    r.total,
                ));
            }
            GenLine::Unknown(line) => out.push_str(line),
        }
    }
}

/// Leading zeros, mostly none.
fn zeros() -> impl Strategy<Value = [usize; 4]> {
    let z = || prop_oneof![8 => Just(0usize), 1 => 1..4usize];
    [z(), z(), z(), z()]
}

/// A valid pressure file with what a later kernel may add, and the value it
/// must parse to.
fn valid_file() -> impl Strategy<Value = (String, Pressure)> {
    let rec_line = |word: &'static str| {
        (record(), zeros(), trailing_fields())
            .prop_map(move |(r, z, t)| GenLine::Record(word, r, z, t))
    };
    let records = prop_oneof![
        (rec_line("some"), rec_line("full")).prop_map(|(s, f)| (Some(s), Some(f))),
        rec_line("some").prop_map(|s| (Some(s), None)),
        rec_line("full").prop_map(|f| (None, Some(f))),
    ];
    (
        records,
        any::<bool>(),
        proptest::collection::vec((unknown_line(), any::<Index>()), 0..4),
        proptest::collection::vec(any::<bool>(), 8),
        any::<bool>(),
    )
        .prop_map(|((some, full), full_first, unknown, crlf, final_newline)| {
            let mut lines: Vec<GenLine> = Vec::new();
            let mut want = Pressure::default();
            for line in [some, full].into_iter().flatten() {
                if let GenLine::Record(word, r, ..) = &line {
                    match *word {
                        "some" => want.some = Some(*r),
                        _ => want.full = Some(*r),
                    }
                }
                lines.push(line);
            }
            if full_first {
                lines.reverse();
            }
            for (line, at) in unknown {
                let at = at.index(lines.len() + 1);
                lines.insert(at, GenLine::Unknown(line));
            }
            let mut text = String::new();
            for (i, line) in lines.iter().enumerate() {
                line.write(&mut text);
                let last = i + 1 == lines.len();
                if !last || final_newline {
                    text.push_str(if crlf[i % crlf.len()] { "\r\n" } else { "\n" });
                }
            }
            (text, want)
        })
}

/// An edit to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    Truncate(Index),
}

impl Mutation {
    fn apply(&self, buf: &mut Vec<u8>) {
        match self {
            Mutation::Flip(at, mask) if !buf.is_empty() => {
                let i = at.index(buf.len());
                buf[i] ^= mask;
            }
            Mutation::Set(at, b) if !buf.is_empty() => {
                let i = at.index(buf.len());
                buf[i] = *b;
            }
            Mutation::Insert(at, bytes) => {
                let i = at.index(buf.len() + 1);
                buf.splice(i..i, bytes.iter().copied());
            }
            Mutation::Remove(at, n) if !buf.is_empty() => {
                let i = at.index(buf.len());
                let end = (i + n).min(buf.len());
                buf.drain(i..end);
            }
            Mutation::Truncate(at) => {
                let i = at.index(buf.len() + 1);
                buf.truncate(i);
            }
            _ => {}
        }
    }
}

/// Bytes that matter to the format, so that mutations reach deep paths.
fn format_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        proptest::sample::select(b"0123456789. =\n\rsomefullavgtx-+\t".to_vec()),
        any::<u8>(),
    ]
}

/// Pieces of the format to splice in.
fn format_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::sample::select(vec![
            &b"some "[..],
            b"full ",
            b"some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            b"full avg10=1.00 avg60=2.00 avg300=3.00 total=4\r\n",
            b" avg10=",
            b" total=",
            b"99999999999999999999",
            b".00",
            b"\r\n",
            b"\n",
            b" x=y",
        ])
        .prop_map(<[u8]>::to_vec),
        proptest::collection::vec(format_byte(), 1..4),
    ]
}

/// Mutations that keep ASCII, so the `&str` oracle can judge the result.
fn ascii_mutation() -> impl Strategy<Value = Mutation> {
    let ascii = || format_byte().prop_map(|b| b & 0x7f);
    prop_oneof![
        (
            any::<Index>(),
            proptest::sample::select(vec![1u8, 2, 4, 8, 16, 32, 64])
        )
            .prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), ascii()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), format_piece())
            .prop_map(|(i, p)| Mutation::Insert(i, p.iter().map(|b| b & 0x7f).collect())),
        (any::<Index>(), 1..8usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// Any mutation, including bytes that are not UTF-8.
fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), 1..=255u8).prop_map(|(i, m)| Mutation::Flip(i, m)),
        (any::<Index>(), format_byte()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<Index>(), format_piece()).prop_map(|(i, p)| Mutation::Insert(i, p)),
        (any::<Index>(), 1..8usize).prop_map(|(i, n)| Mutation::Remove(i, n)),
        any::<Index>().prop_map(Mutation::Truncate),
    ]
}

/// A real file with a few mutations applied.
fn mutated_real(m: impl Strategy<Value = Mutation>) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(REAL),
        proptest::collection::vec(m, 1..5),
    )
        .prop_map(|((_, bytes), muts)| {
            let mut buf = bytes.to_vec();
            for m in &muts {
                m.apply(&mut buf);
            }
            buf
        })
}

// ---------------------------------------------------------------------------
// Checks shared by the properties.
// ---------------------------------------------------------------------------

/// An error must point inside the input, on the line it names.
fn check_error(input: &[u8], e: &ParseError) -> Result<(), TestCaseError> {
    prop_assert!(
        e.offset() <= input.len(),
        "offset {} past the end ({} bytes): {e}",
        e.offset(),
        input.len()
    );
    prop_assert!(e.line() >= 1, "line 0: {e}");
    let newlines_before = input[..e.offset()].iter().filter(|&&b| b == b'\n').count();
    prop_assert_eq!(
        newlines_before + 1,
        e.line(),
        "the offset is not on the line named: {}",
        e
    );
    // The message must render (and name the place) without panicking.
    let text = e.to_string();
    let place = format!("(byte {}, line {})", e.offset(), e.line());
    prop_assert!(
        text.ends_with(&place),
        "{} does not end with {}",
        text,
        place
    );
    Ok(())
}

/// Parses, checks an error's position, and checks that a success writes back
/// to something that parses equal.
fn check_any(input: &[u8]) -> Result<(), TestCaseError> {
    // The fast road for the kernel's exact format never changes the answer,
    // value or error, from the general parser's.
    prop_assert_eq!(parse(input), psi_core::_benchable::parse_general(input));
    match parse(input) {
        Ok(p) => {
            prop_assert!(p.some.is_some() || p.full.is_some());
            let text = p.to_string();
            prop_assert_eq!(parse(text.as_bytes()), Ok(p));
        }
        Err(e) => check_error(input, &e)?,
    }
    Ok(())
}

/// The slow reference for the decimal writers: integer division, `format!`
/// with zero padding, then trailing zeros and a bare point trimmed.
fn slow_fixed(int: u64, frac: u64, places: usize) -> String {
    let s = format!("{int}.{frac:0places$}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// `PROPTEST_CASES` if set, else 2048.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2048)
}

proptest! {
    // 2048 cases by default (a few seconds in a debug build); set
    // PROPTEST_CASES for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // Integration tests have no lib.rs for proptest to sit beside.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/prop.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// (a) `Display` writes the kernel's format, which parses back equal.
    #[test]
    fn display_round_trips(p in pressure()) {
        let text = p.to_string();
        prop_assert_eq!(parse(text.as_bytes()), Ok(p), "text: {:?}", text);
    }

    /// (b) Generated valid files parse to what they were made from, and the
    /// oracle agrees.
    #[test]
    fn oracle_agrees_on_valid_files((text, want) in valid_file()) {
        prop_assert_eq!(oracle(&text), Some(want), "oracle on {:?}", text);
        prop_assert_eq!(parse(text.as_bytes()), Ok(want), "parse on {:?}", text);
    }

    /// (b) The oracle and the parser also agree on mutated (ASCII) files:
    /// the same value when either accepts, an error from both otherwise.
    #[test]
    fn oracle_agrees_on_mutated_files(
        (text, _) in valid_file(),
        muts in proptest::collection::vec(ascii_mutation(), 1..4),
    ) {
        let mut buf = text.into_bytes();
        for m in &muts {
            m.apply(&mut buf);
        }
        let text = String::from_utf8(buf).expect("ASCII mutations keep ASCII");
        let got = parse(text.as_bytes());
        prop_assert_eq!(got.ok(), oracle(&text), "input {:?}, parse said {:?}", text, got);
    }

    /// (b) Same, starting from the real files.
    #[test]
    fn oracle_agrees_on_mutated_real_files(buf in mutated_real(ascii_mutation())) {
        let text = String::from_utf8(buf).expect("ASCII mutations keep ASCII");
        let got = parse(text.as_bytes());
        prop_assert_eq!(got.ok(), oracle(&text), "input {:?}, parse said {:?}", text, got);
    }

    /// (c) Arbitrary bytes never panic; errors point inside the input.
    #[test]
    fn arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_any(&input)?;
    }

    /// (c) Bytes drawn from the format's own alphabet reach deeper.
    #[test]
    fn format_alphabet_bytes(input in proptest::collection::vec(format_byte(), 0..256)) {
        check_any(&input)?;
    }

    /// (c) Byte flips, truncations and insertions of real files never panic.
    #[test]
    fn mutated_real_files(input in mutated_real(mutation())) {
        check_any(&input)?;
    }

    /// (d) `seconds` agrees with the slow reference for any `u64`.
    #[test]
    fn seconds_matches_reference(micros in prop_oneof![any::<u64>(), 0..10_000_000u64]) {
        let want = slow_fixed(micros / 1_000_000, micros % 1_000_000, 6);
        let mut buf = [0; MAX_LEN];
        prop_assert_eq!(seconds(micros, &mut buf), want.as_str());
        prop_assert_eq!(Seconds(micros).to_string(), want);
    }

    /// (d) `ratio` agrees with the slow reference for any `u32`.
    #[test]
    fn ratio_matches_reference(h in prop_oneof![any::<u32>(), 0..=20_000u32]) {
        let h64 = u64::from(h);
        let want = slow_fixed(h64 / 10_000, h64 % 10_000, 4);
        let mut buf = [0; MAX_LEN];
        prop_assert_eq!(ratio(h, &mut buf), want.as_str());
        prop_assert_eq!(Ratio(Percent(h)).to_string(), want);
    }
}

/// The reference itself, on the values the writers' docs promise.
#[test]
fn slow_reference_is_right() {
    assert_eq!(slow_fixed(0, 0, 6), "0");
    assert_eq!(slow_fixed(1, 500_000, 6), "1.5");
    assert_eq!(slow_fixed(0, 1, 6), "0.000001");
    assert_eq!(slow_fixed(10, 0, 4), "10");
    assert_eq!(slow_fixed(0, 1234, 4), "0.1234");
}

/// The oracle itself, on the real files and the documented edge cases.
#[test]
fn oracle_matches_parse_on_real_files() {
    for (name, bytes) in REAL {
        let text = std::str::from_utf8(bytes).expect("real files are ASCII");
        assert_eq!(parse(bytes).ok(), oracle(text), "{name}");
        assert!(oracle(text).is_some(), "{name}");
    }
    for bad in [
        "",
        "some",
        "some ",
        "some avg10=+1.00 avg60=0.00 avg300=0.00 total=0",
        "some avg10=1.00 avg60=0.00 avg300=0.00 total=+0",
        "some avg10=1.0 avg60=0.00 avg300=0.00 total=0",
    ] {
        assert_eq!(oracle(bad), None, "{bad:?}");
        assert!(parse(bad.as_bytes()).is_err(), "{bad:?}");
    }
}
