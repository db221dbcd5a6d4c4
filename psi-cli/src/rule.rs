//! `psi check` rules: `<resource>.<some|full>.<field>=<max>[%]`, parsed and
//! compared exactly, in integers.

use std::fmt;

use psi_core::{Line, Record, Resource};

use psi_core::rate::Rate;

/// What a rule looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantity {
    /// The kernel's 10 s average, percent.
    Avg10,
    /// The kernel's 60 s average, percent.
    Avg60,
    /// The kernel's 300 s average, percent.
    Avg300,
    /// Cumulative stall time, microseconds.
    Total,
    /// The stall rate measured over `--interval`, percent.
    Rate,
}

impl Quantity {
    fn name(self) -> &'static str {
        match self {
            Quantity::Avg10 => "avg10",
            Quantity::Avg60 => "avg60",
            Quantity::Avg300 => "avg300",
            Quantity::Total => "total",
            Quantity::Rate => "rate",
        }
    }
}

/// A threshold: `cpu.some.avg10=40` holds while cpu's some avg10 is at most 40 %.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The resource.
    pub resource: Resource,
    /// `some` or `full`.
    pub line: Line,
    /// The value compared.
    pub field: Quantity,
    /// The most allowed: hundredths of a percent for averages and rates,
    /// microseconds for `total`.
    pub max: u64,
}

/// What a rule found on one reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The value is at most the maximum.
    Holds,
    /// The value is above the maximum.
    Breached,
}

/// The value a rule was checked against, in its own unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Measured {
    /// A kernel average, hundredths of a percent.
    Average(u32),
    /// Microseconds of stall.
    Total(u64),
    /// A rate over an interval.
    Rate(Rate),
}

impl Rule {
    /// Parses `cpu.some.avg10=40`, `memory.full.rate=5%`, `io.some.total=90s`.
    pub fn parse(text: &str) -> Result<Rule, String> {
        let err = |why: &str| format!("invalid rule {text:?}: {why}");
        let Some((key, value)) = text.split_once('=') else {
            return Err(err(
                "expected <resource>.<some|full>.<avg10|avg60|avg300|rate|total>=<max>, such as \
                 cpu.some.avg10=40 (a TARGET goes before --max, or after `--`)",
            ));
        };
        let mut parts = key.trim().split('.');
        let (Some(resource), Some(line), Some(field), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err(
                "the name has three parts, <resource>.<some|full>.<field>, such as memory.full.avg10",
            ));
        };
        let resource: Resource = resource
            .parse()
            .map_err(|_| err("the resource must be cpu, memory, io or irq"))?;
        let line: Line = line
            .parse()
            .map_err(|_| err("the second part must be some or full"))?;
        let field = match field {
            "avg10" => Quantity::Avg10,
            "avg60" => Quantity::Avg60,
            "avg300" => Quantity::Avg300,
            "total" => Quantity::Total,
            "rate" => Quantity::Rate,
            _ => {
                return Err(err("the field must be avg10, avg60, avg300, rate or total"));
            }
        };
        if resource == Resource::Irq && line == Line::Some {
            return Err(err("irq has only a full line"));
        }
        let value = value.trim();
        let max = match field {
            Quantity::Total => parse_total(value).map_err(|why| err(&why))?,
            _ => parse_percent(value).map_err(|why| err(&why))?,
        };
        Ok(Rule {
            resource,
            line,
            field,
            max,
        })
    }

    /// Whether this rule needs two reads (`rate`).
    pub fn needs_rate(&self) -> bool {
        self.field == Quantity::Rate
    }

    /// The value this rule compares, from a record (and a rate, for `rate`).
    pub fn measure(&self, record: &Record, rate: Option<Rate>) -> Option<Measured> {
        Some(match self.field {
            Quantity::Avg10 => Measured::Average(record.avg10.hundredths()),
            Quantity::Avg60 => Measured::Average(record.avg60.hundredths()),
            Quantity::Avg300 => Measured::Average(record.avg300.hundredths()),
            Quantity::Total => Measured::Total(record.total),
            Quantity::Rate => Measured::Rate(rate?),
        })
    }

    /// Compares a measured value with the maximum, exactly.
    pub fn judge(&self, measured: Measured) -> Verdict {
        let above = match measured {
            Measured::Average(h) => u64::from(h) > self.max,
            Measured::Total(us) => us > self.max,
            Measured::Rate(rate) => rate.exceeds_hundredths(self.max),
        };
        if above {
            Verdict::Breached
        } else {
            Verdict::Holds
        }
    }

    /// The maximum, written as the rule's unit: `40`, `5.5%`, `90s`.
    pub fn max_text(&self) -> String {
        match self.field {
            Quantity::Total => format!("{}s", psi_core::decimal::Seconds(self.max)),
            Quantity::Rate => format!("{}%", Hundredths(self.max)),
            _ => Hundredths(self.max).to_string(),
        }
    }

    /// How far `measured` is above the maximum, in the rule's unit.
    pub fn excess_text(&self, measured: Measured) -> String {
        match measured {
            Measured::Average(h) => Hundredths(u64::from(h).saturating_sub(self.max)).to_string(),
            Measured::Total(us) => {
                format!(
                    "{}s",
                    psi_core::decimal::Seconds(us.saturating_sub(self.max))
                )
            }
            Measured::Rate(rate) => {
                format!(
                    "{} points",
                    Hundredths(rate.hundredths().saturating_sub(self.max))
                )
            }
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.resource, self.line, self.field.name())
    }
}

impl fmt::Display for Measured {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Measured::Average(h) => write!(f, "{}", Hundredths(u64::from(*h))),
            Measured::Total(us) => write!(f, "{}s", psi_core::decimal::Seconds(*us)),
            Measured::Rate(rate) => write!(f, "{rate}%"),
        }
    }
}

/// Hundredths printed with two decimals: `Hundredths(550)` is `5.50`.
#[derive(Debug, Clone, Copy)]
pub struct Hundredths(pub u64);

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:02}", self.0 / 100, self.0 % 100);
        f.pad(&text)
    }
}

/// `40`, `40%`, `12.5`, `0.25%` as hundredths of a percent.
fn parse_percent(value: &str) -> Result<u64, String> {
    let number = value.strip_suffix('%').unwrap_or(value).trim();
    let bad = || format!("{value:?} is not a percentage such as 40, 12.5 or 5%");
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || !digits(int) || !digits(frac) {
        return Err(bad());
    }
    if frac.len() > 2 {
        return Err(format!(
            "{value:?} has more than two decimals (the kernel prints two)"
        ));
    }
    let int: u64 = int.parse().map_err(|_| bad())?;
    let frac: u64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<u64>().map_err(|_| bad())? * 10,
        _ => frac.parse().map_err(|_| bad())?,
    };
    let h = int
        .checked_mul(100)
        .and_then(|h| h.checked_add(frac))
        .ok_or_else(bad)?;
    if h > 10_000 {
        return Err(format!("{value:?} is above 100%"));
    }
    Ok(h)
}

/// A duration, in psi's one grammar: `90s`, `150ms`, `5000000us`. A unit is
/// required: psi prints `total` in microseconds (JSON, logfmt) and in
/// seconds (tables), so a bare number would be read a million times wrong
/// one way or the other.
fn parse_total(value: &str) -> Result<u64, String> {
    if value.ends_with('%') {
        return Err("total is a time (a duration such as 90s), not a percentage".to_owned());
    }
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(format!(
            "{value:?} needs a unit: {value}us for microseconds as the kernel counts, or {value}s"
        ));
    }
    let d = psi_core::duration::parse(value).map_err(|e| format!("{value:?}: {e}"))?;
    u64::try_from(d.as_micros()).map_err(|_| format!("{value:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        Rule::parse(text).expect(text)
    }

    #[test]
    fn parses_every_field() {
        let r = rule("cpu.some.avg10=40");
        assert_eq!(
            (r.resource, r.line, r.field, r.max),
            (Resource::Cpu, Line::Some, Quantity::Avg10, 4000)
        );
        assert_eq!(rule("memory.full.rate=5%").max, 500);
        assert_eq!(rule("io.some.avg60=12.5").max, 1250);
        assert_eq!(rule("io.full.avg300=0.25%").max, 25);
        assert_eq!(rule("irq.full.rate=1").field, Quantity::Rate);
        assert_eq!(rule("cpu.some.total=90s").max, 90_000_000);
        assert_eq!(rule("cpu.some.total=1500us").max, 1500);
        assert_eq!(rule("cpu.some.total=150ms").max, 150_000);
        assert_eq!(rule("cpu.some.avg10=40").to_string(), "cpu.some.avg10");
    }

    #[test]
    fn refuses_with_reasons() {
        for (text, why) in [
            ("cpu.some.avg10", "expected <resource>"),
            ("/sys/fs/cgroup/x", "a TARGET goes before --max"),
            ("cpu.avg10=4", "three parts"),
            ("disk.some.avg10=4", "cpu, memory, io or irq"),
            ("cpu.most.avg10=4", "some or full"),
            ("cpu.some.avg5=4", "avg10, avg60, avg300, rate or total"),
            ("irq.some.avg10=4", "only a full line"),
            ("cpu.some.avg10=4.123", "more than two decimals"),
            ("cpu.some.avg10=101", "above 100%"),
            ("cpu.some.avg10=x", "not a percentage"),
            ("cpu.some.avg10=", "not a percentage"),
            ("cpu.some.total=5%", "not a percentage"),
            (
                "cpu.some.total=1500",
                "needs a unit: 1500us for microseconds",
            ),
        ] {
            let e = Rule::parse(text).expect_err(text);
            assert!(e.contains(why), "{text}: {e}");
        }
    }

    #[test]
    fn at_the_maximum_holds_above_breaches() {
        let r = rule("cpu.some.avg10=40");
        assert_eq!(r.judge(Measured::Average(4000)), Verdict::Holds);
        assert_eq!(r.judge(Measured::Average(4001)), Verdict::Breached);
        assert_eq!(r.excess_text(Measured::Average(4817)), "8.17");
        let r = rule("memory.full.rate=5%");
        let half = Rate {
            stall_us: 500_000,
            elapsed_us: 1_000_000,
        };
        assert_eq!(r.judge(Measured::Rate(half)), Verdict::Breached);
        assert_eq!(r.excess_text(Measured::Rate(half)), "45.00 points");
        let exact = Rate {
            stall_us: 50_000,
            elapsed_us: 1_000_000,
        };
        assert_eq!(r.judge(Measured::Rate(exact)), Verdict::Holds);
        // 5.00004 % rounds to 5.00 for display but is above 5 %.
        let just_above = Rate {
            stall_us: 500_004,
            elapsed_us: 10_000_000,
        };
        assert_eq!(r.judge(Measured::Rate(just_above)), Verdict::Breached);
        let r = rule("cpu.some.total=1s");
        assert_eq!(r.judge(Measured::Total(1_000_001)), Verdict::Breached);
        assert_eq!(r.max_text(), "1s");
    }
}
