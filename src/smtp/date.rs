//! Calendar arithmetic for the dates mail carries: RFC 5322 §3.3 `date-time` (trace
//! headers, NDRs) and RFC 3339 (queue listings). Pure: the time comes in as a value.
//!
//! One implementation of Howard Hinnant's `civil_from_days` for the whole crate.

use std::fmt::Write as _;

/// Seconds in a day (no leap seconds in Unix time).
pub const SECS_PER_DAY: i64 = 86_400;

/// Largest UTC offset RFC 5322 can express (±23:59), in seconds.
const MAX_OFFSET_SECS: i64 = 86_340;

/// Proleptic Gregorian `(year, month 1..=12, day 1..=31)` of a day count since 1970-01-01.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], March-based
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Append an RFC 5322 §3.3 `date-time`, e.g. `Sat, 28 Nov 2026 14:49:40 +0100`.
/// Offsets beyond ±23:59 are clamped rather than printed as garbage.
pub fn write_rfc5322(s: &mut String, unix_secs: i64, offset_secs: i32) {
    const DAY_NAMES: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTH_NAMES: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let offset = i64::from(offset_secs).clamp(-MAX_OFFSET_SECS, MAX_OFFSET_SECS);
    let local = unix_secs.saturating_add(offset);
    let days = local.div_euclid(SECS_PER_DAY);
    let secs_of_day = local.rem_euclid(SECS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // In range: rem_euclid(7) < 7 and 1 <= month <= 12.
    let weekday = DAY_NAMES[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month_name = MONTH_NAMES[usize::try_from(month - 1).unwrap_or(0)];
    let sign = if offset < 0 { '-' } else { '+' };
    let off_min = offset.abs() / 60;
    let _ = write!(
        s,
        "{weekday}, {day} {month_name} {year:04} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60,
        off_min / 60,
        off_min % 60
    );
}

/// RFC 5322 date in UTC: `Sat, 28 Nov 2026 15:40:02 +0000`.
#[must_use]
pub fn rfc5322_utc(unix_secs: i64) -> String {
    let mut s = String::with_capacity(32);
    write_rfc5322(&mut s, unix_secs, 0);
    s
}

/// RFC 3339 §5.6 in UTC with milliseconds: `2026-11-28T14:49:41.123Z`.
#[must_use]
pub fn rfc3339_utc_ms(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(SECS_PER_DAY));
    let sod = secs.rem_euclid(SECS_PER_DAY);
    format!("{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", sod / 3600, sod / 60 % 60, sod % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        let cases: &[(i64, i32, &str)] = &[
            (0, 0, "Thu, 1 Jan 1970 00:00:00 +0000"),
            (1_795_877_380, 0, "Sat, 28 Nov 2026 14:49:40 +0000"),
            (1_795_877_380, 3600, "Sat, 28 Nov 2026 15:49:40 +0100"),
            (1_795_877_380, -5 * 3600 - 1800, "Sat, 28 Nov 2026 09:19:40 -0530"),
            (951_782_400, 0, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (4_107_542_400, 0, "Mon, 1 Mar 2100 00:00:00 +0000"),
            (-1, 0, "Wed, 31 Dec 1969 23:59:59 +0000"),
        ];
        for &(t, off, want) in cases {
            let mut s = String::new();
            write_rfc5322(&mut s, t, off);
            assert_eq!(s, want, "{t} {off}");
        }
        assert_eq!(rfc5322_utc(1_795_877_380), "Sat, 28 Nov 2026 14:49:40 +0000");
    }

    #[test]
    fn rfc3339() {
        let cases: &[(i64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1_795_877_381_123, "2026-11-28T14:49:41.123Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
        ];
        for &(t, want) in cases {
            assert_eq!(rfc3339_utc_ms(t), want);
        }
    }
}
