//! Wall-clock time for output, in UTC, without a date library.

use std::time::{SystemTime, UNIX_EPOCH};

/// A moment, as seconds and milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    secs: i64,
    millis: u32,
}

impl Utc {
    /// Now.
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// `2025-06-01T12:34:56.789Z`.
    pub fn rfc3339(&self) -> String {
        let (y, m, d) = civil(self.secs.div_euclid(86_400));
        let s = self.secs.rem_euclid(86_400);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60,
            self.millis
        )
    }

    /// `12:34:56 UTC`.
    pub fn clock(&self) -> String {
        let s = self.secs.rem_euclid(86_400);
        format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
    }
}

impl From<SystemTime> for Utc {
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => Utc {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                millis: d.subsec_millis(),
            },
            Err(e) => {
                let d = e.duration();
                let secs = -i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
                match d.subsec_millis() {
                    0 => Utc { secs, millis: 0 },
                    ms => Utc {
                        secs: secs - 1,
                        millis: 1000 - ms,
                    },
                }
            }
        }
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        u32::try_from(m).unwrap_or(0),
        u32::try_from(d).unwrap_or(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> Utc {
        Utc::from(UNIX_EPOCH + Duration::from_millis(secs * 1000 + millis))
    }

    #[test]
    fn dates() {
        assert_eq!(at(0, 0).rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_782_400, 5).rfc3339(), "2000-02-29T00:00:00.005Z");
        assert_eq!(at(1_748_781_296, 789).rfc3339(), "2025-06-01T12:34:56.789Z");
        assert_eq!(at(4_102_444_799, 999).rfc3339(), "2099-12-31T23:59:59.999Z");
        assert_eq!(at(1_748_781_296, 0).clock(), "12:34:56 UTC");
        let before = Utc::from(UNIX_EPOCH - Duration::from_millis(1));
        assert_eq!(before.rfc3339(), "1969-12-31T23:59:59.999Z");
    }
}
