//! Sizes and durations as written in the configuration file, and back.
//!
//! Sizes: an integer is a count of bytes; a string is a whole number followed by a unit:
//! `B`, decimal `KB MB GB TB` (powers of 1000) or binary `KiB MiB GiB TiB` (powers of 1024),
//! optionally separated by one space: `"10MiB"`, `"512KB"`, `"1 GB"`. Unit letters are
//! matched case-insensitively except that the `i` of binary units is what makes them binary.
//!
//! Durations: an integer is a count of seconds; a string is a whole number followed by
//! `ms`, `s`, `m`/`min`, `h` or `d`: `"250ms"`, `"30s"`, `"5m"`, `"10min"`, `"1h"`.
//!
//! Trust: the text comes from the operator's file; every overflow is an error, never a wrap.
//! Pure: no I/O.

/// Largest value accepted for a size or a duration in milliseconds. TOML integers are
/// signed 64-bit, so anything larger could not be printed back as an integer.
pub(crate) const MAX_UNIT_VALUE: u64 = i64::MAX as u64;

/// Size units, longest spelling first within each family, with their multiplier in bytes.
const SIZE_UNITS: &[(&str, u64)] = &[
    ("tib", 1 << 40),
    ("gib", 1 << 30),
    ("mib", 1 << 20),
    ("kib", 1 << 10),
    ("tb", 1_000_000_000_000),
    ("gb", 1_000_000_000),
    ("mb", 1_000_000),
    ("kb", 1_000),
    ("b", 1),
];

/// Units used when printing a size: the largest binary unit that divides it exactly,
/// then the largest decimal one; otherwise the size is printed as plain bytes.
const SIZE_PRINT_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
];

/// Milliseconds per second.
const MS_PER_SEC: u64 = 1_000;

/// Duration units with their multiplier in milliseconds. `min` precedes `m`/`ms` so the
/// longest match wins.
const DURATION_UNITS: &[(&str, u64)] = &[
    ("min", 60 * MS_PER_SEC),
    ("ms", 1),
    ("s", MS_PER_SEC),
    ("m", 60 * MS_PER_SEC),
    ("h", 3_600 * MS_PER_SEC),
    ("d", 86_400 * MS_PER_SEC),
];

/// Units used when printing a duration, largest first.
const DURATION_PRINT_UNITS: &[(&str, u64)] = &[
    ("d", 86_400 * MS_PER_SEC),
    ("h", 3_600 * MS_PER_SEC),
    ("m", 60 * MS_PER_SEC),
    ("s", MS_PER_SEC),
];

/// Hint appended to every size error.
pub(crate) const SIZE_HINT: &str =
    "expected a number of bytes or a string like \"10MiB\", \"512KB\", \"1GB\"";

/// Hint appended to every duration error.
pub(crate) const DURATION_HINT: &str =
    "expected a number of seconds or a string like \"30s\", \"5m\", \"10min\", \"1h\", \"250ms\"";

/// Split `"10 MiB"` into `(10, "MiB")`; the number must be non-empty ASCII digits.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let (num, rest) = text.split_at(digits);
    let rest = rest.strip_prefix(' ').filter(|r| !r.is_empty()).unwrap_or(rest);
    Some((num.parse().ok()?, rest))
}

/// Look `unit` up case-insensitively in `table`.
fn find_unit(table: &[(&str, u64)], unit: &str) -> Option<u64> {
    table.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)).map(|&(_, mult)| mult)
}

/// Parse a size string into bytes. The error is the problem text (without the key).
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid size {text:?}: {SIZE_HINT}");
    let (num, unit) = split_number(text).ok_or_else(bad)?;
    let mult = if unit.is_empty() { 1 } else { find_unit(SIZE_UNITS, unit).ok_or_else(bad)? };
    num.checked_mul(mult)
        .filter(|&v| v <= MAX_UNIT_VALUE)
        .ok_or_else(|| format!("size {text:?} is too large"))
}

/// Parse a duration string into milliseconds. A bare number string means seconds, like
/// a bare integer does.
pub(crate) fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let bad = || format!("invalid duration {text:?}: {DURATION_HINT}");
    let (num, unit) = split_number(text).ok_or_else(bad)?;
    let mult = if unit.is_empty() {
        MS_PER_SEC
    } else {
        find_unit(DURATION_UNITS, unit).ok_or_else(bad)?
    };
    num.checked_mul(mult)
        .filter(|&v| v <= MAX_UNIT_VALUE)
        .ok_or_else(|| format!("duration {text:?} is too large"))
}

/// Convert an integer number of seconds (as written in TOML) into milliseconds.
pub(crate) fn seconds_to_ms(secs: u64) -> Result<u64, String> {
    secs.checked_mul(MS_PER_SEC)
        .filter(|&v| v <= MAX_UNIT_VALUE)
        .ok_or_else(|| format!("duration of {secs} seconds is too large"))
}

/// Print a size the way [`parse_size`] reads it: `"10MiB"` when a unit divides it exactly,
/// else a plain integer (TOML), e.g. `1234`. The result is a TOML value, quotes included.
pub(crate) fn format_size(bytes: u64) -> String {
    if bytes != 0 {
        for &(name, mult) in SIZE_PRINT_UNITS {
            if bytes.is_multiple_of(mult) {
                return format!("\"{}{name}\"", bytes / mult);
            }
        }
    }
    bytes.to_string()
}

/// Print a duration the way [`parse_duration_ms`] reads it: `"5m"`, `"30s"`, `"250ms"`.
/// The result is a TOML value, quotes included.
pub(crate) fn format_duration_ms(ms: u64) -> String {
    if ms != 0 {
        for &(name, mult) in DURATION_PRINT_UNITS {
            if ms.is_multiple_of(mult) {
                return format!("\"{}{name}\"", ms / mult);
            }
        }
        return format!("\"{ms}ms\"");
    }
    "\"0s\"".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("1234", Some(1234)),
            ("10MiB", Some(10 << 20)),
            ("10 MiB", Some(10 << 20)),
            ("10mib", Some(10 << 20)),
            ("512KB", Some(512_000)),
            ("512kB", Some(512_000)),
            ("512KiB", Some(512 * 1024)),
            ("1GB", Some(1_000_000_000)),
            ("1GiB", Some(1 << 30)),
            ("2TB", Some(2_000_000_000_000)),
            ("2TiB", Some(2 << 40)),
            ("7B", Some(7)),
            ("1MB", Some(1_000_000)),
            ("", None),
            ("MiB", None),
            ("-1MiB", None),
            ("1.5MiB", None),
            ("10M", None),
            ("10 ", None),
            ("10  MiB", None),
            ("10XB", None),
            ("99999999999999999999", None),
            ("9000000TiB", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_size(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn durations() {
        let cases: &[(&str, Option<u64>)] = &[
            ("0", Some(0)),
            ("30", Some(30_000)),
            ("30s", Some(30_000)),
            ("250ms", Some(250)),
            ("5m", Some(300_000)),
            ("10min", Some(600_000)),
            ("10 min", Some(600_000)),
            ("1h", Some(3_600_000)),
            ("2d", Some(172_800_000)),
            ("1H", Some(3_600_000)),
            ("", None),
            ("s", None),
            ("1.5s", None),
            ("5 minutes", None),
            ("5w", None),
            ("-5s", None),
            ("9999999999999999999d", None),
        ];
        for &(text, want) in cases {
            assert_eq!(parse_duration_ms(text).ok(), want, "{text:?}");
        }
    }

    #[test]
    fn print_sizes() {
        let cases: &[(u64, &str)] = &[
            (0, "0"),
            (1, "1"),
            (1000, "\"1KB\""),
            (1024, "\"1KiB\""),
            (10 << 20, "\"10MiB\""),
            (100 << 20, "\"100MiB\""),
            (1_500_000, "\"1500KB\""),
            (1234, "1234"),
            (MAX_UNIT_VALUE, &MAX_UNIT_VALUE.to_string()),
        ];
        for &(bytes, want) in cases {
            assert_eq!(format_size(bytes), want, "{bytes}");
        }
    }

    #[test]
    fn print_durations() {
        let cases: &[(u64, &str)] = &[
            (0, "\"0s\""),
            (250, "\"250ms\""),
            (1_500, "\"1500ms\""),
            (30_000, "\"30s\""),
            (300_000, "\"5m\""),
            (600_000, "\"10m\""),
            (3_600_000, "\"1h\""),
            (86_400_000, "\"1d\""),
            (90_000, "\"90s\""),
        ];
        for &(ms, want) in cases {
            assert_eq!(format_duration_ms(ms), want, "{ms}");
        }
    }

    #[test]
    fn print_then_parse_is_identity() {
        for v in [0, 1, 999, 1000, 1024, 4096, 10 << 20, 123_456_789, MAX_UNIT_VALUE] {
            let size = format_size(v);
            let back = match size.strip_prefix('"') {
                Some(s) => parse_size(s.trim_end_matches('"')),
                None => size.parse::<u64>().map_err(|e| e.to_string()),
            };
            assert_eq!(back, Ok(v));
            let dur = format_duration_ms(v);
            assert_eq!(parse_duration_ms(dur.trim_matches('"')), Ok(v));
        }
    }
}
