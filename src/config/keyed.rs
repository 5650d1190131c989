//! Reading one value at one key: the typed readers every section parser uses (strings,
//! booleans, counts, sizes, durations, arrays of strings, tables walked key by key).
//!
//! Each reader takes the TOML value and its key path (`limits.max_connections`,
//! `site[1].listen[0]`) and returns the value or a [`ConfigError`] naming that key, so the
//! shape "read the key, convert it, say which key was wrong" is written once, here:
//! [`wrong_type`] for a value of the wrong TOML type, [`AtKey::at_key`] for a conversion
//! whose problem text does not know its key (units, next hops), [`each_key`] for walking a
//! table whose keys were checked.
//!
//! Trust and layer: see `config/mod.rs` (operator text, no I/O).

use toml::{Table, Value};

use super::ConfigError;
use super::units::{self, DURATION_HINT, SIZE_HINT};

/// Result type of the config parsers.
pub(super) type Parsed<T> = Result<T, ConfigError>;

/// Upper bound of counts held in `u32`.
pub(super) const U32_MAX: u64 = u32::MAX as u64;
/// Upper bound of counts held in `usize` (`u64::MAX` on 64-bit targets).
pub(super) const USIZE_MAX: u64 = usize::MAX as u64;

/// A conversion whose error is the problem text alone, given the key it was read at.
pub(super) trait AtKey<T> {
    /// The value, or a [`ConfigError`] at `key` with the problem text.
    fn at_key(self, key: &str) -> Parsed<T>;
}

impl<T> AtKey<T> for Result<T, String> {
    fn at_key(self, key: &str) -> Parsed<T> {
        self.map_err(|problem| ConfigError::new(key, problem))
    }
}

/// `found a string` / `found an integer`.
pub(super) fn found(v: &Value) -> String {
    let t = v.type_str();
    let article = if t.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
    format!("found {article} {t}")
}

/// The error for a value of the wrong type: `<expectation>, found a <type>` at `key`.
pub(super) fn wrong_type(key: impl Into<String>, expectation: &str, v: &Value) -> ConfigError {
    ConfigError::new(key, format!("{expectation}, {}", found(v)))
}

/// Calls `read(name, value, key path)` for each key of `t` (already checked against the
/// table's known keys), stopping at the first error.
pub(super) fn each_key(
    t: &Table,
    prefix: &str,
    mut read: impl FnMut(&str, &Value, &str) -> Parsed<()>,
) -> Parsed<()> {
    for (name, v) in t {
        read(name, v, &join(prefix, name))?;
    }
    Ok(())
}

/// `prefix.key`, or `key` at the top level.
pub(super) fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() { key.to_owned() } else { format!("{prefix}.{key}") }
}

/// A string value.
pub(super) fn string<'v>(v: &'v Value, key: &str) -> Parsed<&'v str> {
    v.as_str().ok_or_else(|| wrong_type(key, "expected a string", v))
}

/// A boolean value.
pub(super) fn boolean(v: &Value, key: &str) -> Parsed<bool> {
    v.as_bool().ok_or_else(|| wrong_type(key, "expected true or false", v))
}

/// A non-negative integer.
pub(super) fn uint(v: &Value, key: &str) -> Parsed<u64> {
    let Value::Integer(i) = *v else {
        return Err(wrong_type(key, "expected an integer", v));
    };
    u64::try_from(i).map_err(|_| ConfigError::new(key, format!("must not be negative (got {i})")))
}

/// An integer in `1..=max`.
pub(super) fn count<T: TryFrom<u64>>(v: &Value, key: &str, max: u64) -> Parsed<T> {
    let n = nonzero(uint(v, key)?, key)?;
    if n > max {
        return Err(ConfigError::new(key, format!("must be at most {max} (got {n})")));
    }
    T::try_from(n).map_err(|_| ConfigError::new(key, format!("{n} is too large")))
}

/// A TCP port 1..=65535.
pub(super) fn port(v: &Value, key: &str) -> Parsed<u16> {
    count(v, key, u64::from(u16::MAX))
}

/// Fail with "must be > 0" when `n` is zero.
pub(super) fn nonzero(n: u64, key: &str) -> Parsed<u64> {
    if n == 0 { Err(ConfigError::new(key, "must be > 0")) } else { Ok(n) }
}

/// A size: integer bytes or a string with a unit.
pub(super) fn size(v: &Value, key: &str) -> Parsed<u64> {
    match v {
        Value::Integer(_) => uint(v, key),
        Value::String(s) => units::parse_size(s).at_key(key),
        _ => Err(wrong_type(key, SIZE_HINT, v)),
    }
}

/// A duration in ms: integer seconds or a string with a unit.
pub(super) fn duration_ms(v: &Value, key: &str) -> Parsed<u64> {
    match v {
        Value::Integer(_) => units::seconds_to_ms(uint(v, key)?).at_key(key),
        Value::String(s) => units::parse_duration_ms(s).at_key(key),
        _ => Err(wrong_type(key, DURATION_HINT, v)),
    }
}

/// A duration in ms that must be > 0.
pub(super) fn positive_ms(v: &Value, key: &str) -> Parsed<u64> {
    nonzero(duration_ms(v, key)?, key)
}

/// An array whose elements are all strings, each paired with its key path `key[i]`.
pub(super) fn strings<'v>(v: &'v Value, key: &str) -> Parsed<Vec<(String, &'v str)>> {
    let Value::Array(items) = v else {
        return Err(wrong_type(key, "expected an array of strings", v));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let k = format!("{key}[{i}]");
            let s = string(item, &k)?;
            Ok((k, s))
        })
        .collect()
}

/// An array of tables (`[[site]]`, `[[domain]]`): each item with its key path `key[i]`,
/// or the error for an item that is not a table (yielded in order, so the caller meets it
/// after the items before it).
pub(super) fn tables<'v>(
    v: &'v Value,
    key: &str,
) -> Parsed<impl ExactSizeIterator<Item = Parsed<(String, &'v Table)>>> {
    let Value::Array(items) = v else {
        let what = format!("expected [[{key}]] tables (an array of tables)");
        return Err(wrong_type(key, &what, v));
    };
    let key = key.to_owned();
    Ok(items.iter().enumerate().map(move |(i, item)| {
        let k = format!("{key}[{i}]");
        match item {
            Value::Table(t) => Ok((k, t)),
            _ => Err(wrong_type(k, "expected a table", item)),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of `v = <toml>`.
    fn val(toml: &str) -> Value {
        let t: Table = format!("v = {toml}").parse().unwrap();
        t["v"].clone()
    }

    #[test]
    fn every_error_names_its_key() {
        type Reader = fn(&Value, &str) -> Result<(), ConfigError>;
        let cases: &[(&str, Reader, &str)] = &[
            (
                "1",
                |v, k| string(v, k).map(drop),
                "config error at `a.b`: expected a string, found an integer",
            ),
            (
                "\"x\"",
                |v, k| boolean(v, k).map(drop),
                "config error at `a.b`: expected true or false, found a string",
            ),
            ("0", |v, k| count::<u32>(v, k, 9).map(drop), "config error at `a.b`: must be > 0"),
            (
                "10",
                |v, k| count::<u32>(v, k, 9).map(drop),
                "config error at `a.b`: must be at most 9 (got 10)",
            ),
            (
                "-1",
                |v, k| port(v, k).map(drop),
                "config error at `a.b`: must not be negative (got -1)",
            ),
            (
                "\"9 parsecs\"",
                |v, k| size(v, k).map(drop),
                "config error at `a.b`: invalid size \"9 parsecs\": expected a number of bytes or a string like \"10MiB\", \"512KB\", \"1GB\"",
            ),
            (
                "true",
                |v, k| duration_ms(v, k).map(drop),
                "config error at `a.b`: expected a number of seconds or a string like \"30s\", \"5m\", \"10min\", \"1h\", \"250ms\", found a boolean",
            ),
            ("\"0s\"", |v, k| positive_ms(v, k).map(drop), "config error at `a.b`: must be > 0"),
            (
                "[\"a\", 2]",
                |v, k| strings(v, k).map(drop),
                "config error at `a.b[1]`: expected a string, found an integer",
            ),
            (
                "[{}, 2]",
                |v, k| tables(v, k)?.try_for_each(|t| t.map(drop)),
                "config error at `a.b[1]`: expected a table, found an integer",
            ),
            (
                "{}",
                |v, k| tables(v, k).map(drop),
                "config error at `a.b`: expected [[a.b]] tables (an array of tables), found a table",
            ),
        ];
        for (toml, read, want) in cases {
            let got = read(&val(toml), "a.b").map_err(|e| e.to_string());
            assert_eq!(got.as_ref().map_err(String::as_str), Err(*want), "{toml}");
        }
    }

    #[test]
    fn each_key_joins_the_prefix() {
        let t: Table = "x = 1\ny = 2".parse().unwrap();
        let mut keys = Vec::new();
        each_key(&t, "s", |name, _, key| {
            keys.push(format!("{name}={key}"));
            Ok(())
        })
        .unwrap();
        assert_eq!(keys, ["x=s.x", "y=s.y"]);
        let top = each_key(&t, "", |_, v, key| Err(wrong_type(key, "expected a string", v)));
        assert_eq!(
            top.unwrap_err().to_string(),
            "config error at `x`: expected a string, found an integer"
        );
    }
}
