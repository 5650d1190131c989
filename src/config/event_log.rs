//! `[event_log]`: the JSON-lines log of service events (`eventlog`).
//!
//! Keys: `enabled` (default true), `path` (default `<mailroot>/Logs/events.log`),
//! `max_size` (rotate when the file would grow past this many bytes, default 10MiB,
//! 0 = daily rotation only), `keep` (rotated files kept, the newest; older ones are
//! deleted at each rotation; 0 keeps every file; default 30). The file is also rotated
//! when the UTC date changes.

use std::fmt::Write as _;
use std::path::PathBuf;

use toml::Table;

use super::keyed::{Parsed, boolean, size, string};
use super::protolog::{DEFAULT_LOG_FILES_KEPT, kept_files};
use super::units::format_size;
use super::{ConfigError, LOGS_DIR};

/// Default `[event_log] max_size`: 10 MiB.
pub const DEFAULT_EVENT_LOG_MAX_BYTES: u64 = 10 << 20;
/// File name of the default event log.
pub const EVENT_LOG_FILE: &str = "events.log";

/// Keys allowed in `[event_log]`.
pub(super) const EVENT_LOG_KEYS: &[&str] = &["enabled", "path", "max_size", "keep"];

/// `[event_log]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLogConfig {
    /// Write the event log at all. Key `enabled`.
    pub enabled: bool,
    /// The file; `None` = `<mailroot>/Logs/events.log`. Invariant: not empty. Key `path`.
    pub path: Option<PathBuf>,
    /// Rotate before the file grows past this many bytes; 0 = only daily. Key `max_size`.
    pub max_size_bytes: u64,
    /// Rotated files kept (the newest); 0 = all. Key `keep`.
    pub keep: usize,
}

impl Default for EventLogConfig {
    fn default() -> Self {
        EventLogConfig {
            enabled: true,
            path: None,
            max_size_bytes: DEFAULT_EVENT_LOG_MAX_BYTES,
            keep: DEFAULT_LOG_FILES_KEPT,
        }
    }
}

/// Parse the `[event_log]` table (keys already checked) into `cfg`.
pub(super) fn event_log(t: &Table, cfg: &mut EventLogConfig) -> Parsed<()> {
    if let Some(v) = t.get("enabled") {
        cfg.enabled = boolean(v, "event_log.enabled")?;
    }
    if let Some(v) = t.get("path") {
        let s = string(v, "event_log.path")?;
        if s.is_empty() {
            return Err(ConfigError::new("event_log.path", "must not be empty"));
        }
        cfg.path = Some(PathBuf::from(s));
    }
    if let Some(v) = t.get("max_size") {
        cfg.max_size_bytes = size(v, "event_log.max_size")?;
    }
    if let Some(v) = t.get("keep") {
        cfg.keep = kept_files(v, "event_log.keep")?;
    }
    Ok(())
}

/// The `[event_log]` section as TOML.
pub(super) fn print(c: &EventLogConfig, out: &mut String) {
    let _ = writeln!(out, "\n[event_log]\nenabled = {}", c.enabled);
    match &c.path {
        Some(p) => {
            let _ = writeln!(out, "path = {}", toml::Value::String(p.to_string_lossy().into()));
        }
        None => {
            let _ = writeln!(out, "# path = (default: <mailroot>/{LOGS_DIR}/{EVENT_LOG_FILE})");
        }
    }
    let _ = writeln!(out, "max_size = {}", format_size(c.max_size_bytes));
    let _ = writeln!(out, "keep = {}", c.keep);
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SystemDefaults};

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(2)
    }

    #[test]
    fn good() {
        // (TOML, enabled, path, max bytes, effective path)
        let cases: &[(&str, bool, Option<&str>, u64, &str)] = &[
            ("", true, None, 10 << 20, "./mailroot/Logs/events.log"),
            ("[event_log]\nenabled = false", false, None, 10 << 20, "./mailroot/Logs/events.log"),
            (
                "[event_log]\npath = \"/var/log/m.json\"",
                true,
                Some("/var/log/m.json"),
                10 << 20,
                "/var/log/m.json",
            ),
            ("[event_log]\nmax_size = 0", true, None, 0, "./mailroot/Logs/events.log"),
            ("[event_log]\nmax_size = \"1KiB\"", true, None, 1024, "./mailroot/Logs/events.log"),
        ];
        for (text, enabled, path, max, effective) in cases {
            let c = Config::from_toml_str(text, &sys()).unwrap();
            assert_eq!(c.event_log.enabled, *enabled, "{text}");
            assert_eq!(c.event_log.path.as_deref().map(|p| p.to_str().unwrap()), *path, "{text}");
            assert_eq!(c.event_log.max_size_bytes, *max, "{text}");
            assert_eq!(c.event_log_path().to_str().unwrap(), *effective, "{text}");
            let again = Config::from_toml_str(&c.to_toml(), &sys()).unwrap();
            assert_eq!(again, c, "round trip of {text}");
        }
    }

    #[test]
    fn keep_defaults_to_30_and_0_keeps_all() {
        let c = Config::from_toml_str("", &sys()).unwrap();
        assert_eq!(c.event_log.keep, 30);
        for (text, keep) in [("[event_log]\nkeep = 0", 0), ("[event_log]\nkeep = 7", 7)] {
            let c = Config::from_toml_str(text, &sys()).unwrap();
            assert_eq!(c.event_log.keep, keep, "{text}");
            assert_eq!(Config::from_toml_str(&c.to_toml(), &sys()).unwrap(), c, "round trip");
        }
    }

    #[test]
    fn bad() {
        // (TOML, key named, words in the problem)
        let cases: &[(&str, &str, &str)] = &[
            ("[event_log]\nenabled = 1", "event_log.enabled", "true or false"),
            ("[event_log]\npath = \"\"", "event_log.path", "empty"),
            ("[event_log]\nmax_size = \"lots\"", "event_log.max_size", ""),
            ("[event_log]\nrotate = true", "event_log.rotate", "unknown key"),
            ("[event_log]\nkeep = -1", "event_log.keep", "negative"),
            ("[event_log]\nkeep = 100001", "event_log.keep", "at most 100000"),
            ("[event_log]\nkeep = \"all\"", "event_log.keep", "integer"),
        ];
        crate::config::test_support::assert_refused(cases);
    }
}
