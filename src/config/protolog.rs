//! `[protocol_log]` and the protocol-log keys of a `[[site]]`: the W3C extended protocol
//! log (one line per SMTP command, `protolog`), on or off per site, where its files go and
//! when they rotate.
//!
//! Keys: `[protocol_log] enabled` (bool, default false: the master property every site
//! inherits), `folder` (default `<mailroot>/Logs`; each site writes into `<folder>/<site>/`),
//! `rotate` (`"daily"`, `"size"` or `"both"`, default `"both"`), `max_size` (a size > 0,
//! default 100 MiB; used when `rotate` is `size` or `both`), `keep` (closed files kept per
//! site folder, the newest; older ones are deleted when a file is closed; 0 keeps every
//! file; default 30). Per site: `protocol_log`
//! (bool, overrides `enabled`) and `protocol_log_folder` (this site's files go straight
//! into that folder).
//!
//! Why off by default: the log holds every client address and envelope address (personal
//! data an operator should decide to keep, with a retention plan), one line per command is
//! disk traffic a relay tuned for throughput should opt into, and the per-message
//! lifecycle lines at info level already say what happened to each message, as Postfix's
//! maillog does. IIS 6 also shipped its SMTP virtual server with logging unchecked.
//!
//! Layer 0: paths are only parsed here, never created (`protolog::writer` does).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use toml::Table;

use super::ConfigError;
use super::keyed::{Parsed, boolean, join, nonzero, size, string, uint};
use super::units::format_size;

/// Keys allowed in `[protocol_log]`.
pub(super) const PROTOCOL_LOG_KEYS: &[&str] = &["enabled", "folder", "rotate", "max_size", "keep"];
/// Default `[protocol_log] max_size`: 100 MiB per file.
pub const DEFAULT_PROTOCOL_LOG_MAX_SIZE_BYTES: u64 = 100 << 20;
/// The protocol-log folder inside the Mailroot when `folder` is not set.
pub const LOGS_DIR: &str = "Logs";

/// When a protocol-log file is closed and the next one started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rotate {
    /// At midnight UTC (a new `exYYMMDD.log`).
    Daily,
    /// When the file reaches `max_size` (the next `exYYMMDD_N.log`).
    Size,
    /// Whichever comes first.
    Both,
}

impl Rotate {
    /// The key's value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Rotate::Daily => "daily",
            Rotate::Size => "size",
            Rotate::Both => "both",
        }
    }

    /// A new file at midnight UTC.
    #[must_use]
    pub fn daily(self) -> bool {
        matches!(self, Rotate::Daily | Rotate::Both)
    }

    /// A new file at `max_size`.
    #[must_use]
    pub fn by_size(self) -> bool {
        matches!(self, Rotate::Size | Rotate::Both)
    }
}

/// `[protocol_log]`: the master properties of the protocol log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolLogConfig {
    /// Sites log unless they say otherwise. Key `enabled`.
    pub enabled: bool,
    /// Parent folder of the per-site folders; `None` = `<mailroot>/Logs`. Invariant: a
    /// non-empty path without NUL. Key `folder`.
    pub folder: Option<PathBuf>,
    /// When files rotate. Key `rotate`.
    pub rotate: Rotate,
    /// Size at which a file is closed (with `rotate` = `size` or `both`). Invariant: > 0.
    /// Key `max_size`.
    pub max_size_bytes: u64,
    /// Closed files kept per site folder (the newest); 0 = all. Key `keep`.
    pub keep: usize,
}

/// Default `[protocol_log] keep` and `[event_log] keep`: closed log files kept.
pub const DEFAULT_LOG_FILES_KEPT: usize = 30;
/// Upper bound of a `keep` key (a sanity bound: more is "keep all", which is 0).
pub(super) const MAX_LOG_FILES_KEPT: u64 = 100_000;

impl Default for ProtocolLogConfig {
    fn default() -> Self {
        ProtocolLogConfig {
            enabled: false,
            folder: None,
            rotate: Rotate::Both,
            max_size_bytes: DEFAULT_PROTOCOL_LOG_MAX_SIZE_BYTES,
            keep: DEFAULT_LOG_FILES_KEPT,
        }
    }
}

/// The protocol-log settings of one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteProtocolLog {
    /// On or off for this site; `None` = `[protocol_log] enabled`. Key `protocol_log`.
    pub enabled: Option<bool>,
    /// This site's folder; `None` = `<[protocol_log] folder>/<site name>`. Invariant: a
    /// non-empty path without NUL. Key `protocol_log_folder`.
    pub folder: Option<PathBuf>,
}

impl super::Config {
    /// Site `site` writes a protocol log.
    #[must_use]
    pub fn protocol_log_enabled(&self, site: usize) -> bool {
        self.sites
            .get(site)
            .and_then(|s| s.protocol_log.enabled)
            .unwrap_or(self.protocol_log.enabled)
    }

    /// The folder of site `site`'s protocol-log files. Path arithmetic only, no I/O.
    #[must_use]
    pub fn protocol_log_dir(&self, site: usize) -> PathBuf {
        let Some(s) = self.sites.get(site) else { return self.mailroot.join(LOGS_DIR) };
        if let Some(f) = &s.protocol_log.folder {
            return f.clone();
        }
        let parent =
            self.protocol_log.folder.clone().unwrap_or_else(|| self.mailroot.join(LOGS_DIR));
        parent.join(&s.name)
    }
}

/// A folder path at `key`.
fn folder(v: &toml::Value, key: &str) -> Parsed<PathBuf> {
    let s = string(v, key)?;
    if s.is_empty() || s.contains('\0') {
        return Err(ConfigError::new(key, "must be a non-empty path"));
    }
    Ok(PathBuf::from(s))
}

/// Parse the `[protocol_log]` table (keys already checked) into `cfg`.
pub(super) fn protocol_log(t: &Table, cfg: &mut ProtocolLogConfig) -> Parsed<()> {
    if let Some(v) = t.get("enabled") {
        cfg.enabled = boolean(v, "protocol_log.enabled")?;
    }
    if let Some(v) = t.get("folder") {
        cfg.folder = Some(folder(v, "protocol_log.folder")?);
    }
    if let Some(v) = t.get("rotate") {
        let key = "protocol_log.rotate";
        cfg.rotate = match string(v, key)? {
            "daily" => Rotate::Daily,
            "size" => Rotate::Size,
            "both" => Rotate::Both,
            other => {
                return Err(ConfigError::new(
                    key,
                    format!("expected \"daily\", \"size\" or \"both\", found {other:?}"),
                ));
            }
        };
    }
    if let Some(v) = t.get("max_size") {
        let key = "protocol_log.max_size";
        cfg.max_size_bytes = nonzero(size(v, key)?, key)?;
    }
    if let Some(v) = t.get("keep") {
        cfg.keep = kept_files(v, "protocol_log.keep")?;
    }
    Ok(())
}

/// A `keep` key: a count of files, 0 (keep all) up to [`MAX_LOG_FILES_KEPT`].
pub(super) fn kept_files(v: &toml::Value, key: &str) -> Parsed<usize> {
    let n = uint(v, key)?;
    if n > MAX_LOG_FILES_KEPT {
        return Err(ConfigError::new(
            key,
            format!("must be at most {MAX_LOG_FILES_KEPT} (got {n}; 0 keeps every file)"),
        ));
    }
    usize::try_from(n).map_err(|_| ConfigError::new(key, format!("{n} is too large")))
}

/// The protocol-log keys of the site table `t` at `prefix` (keys already checked).
pub(super) fn site_protocol_log(t: &Table, prefix: &str) -> Parsed<SiteProtocolLog> {
    let mut s = SiteProtocolLog::default();
    if let Some(v) = t.get("protocol_log") {
        s.enabled = Some(boolean(v, &join(prefix, "protocol_log"))?);
    }
    if let Some(v) = t.get("protocol_log_folder") {
        s.folder = Some(folder(v, &join(prefix, "protocol_log_folder"))?);
    }
    Ok(s)
}

/// A path as a TOML string.
fn quote_path(p: &Path) -> String {
    toml::Value::String(p.to_string_lossy().into_owned()).to_string()
}

/// The `[protocol_log]` section as TOML.
pub(super) fn print(c: &ProtocolLogConfig, out: &mut String) {
    let _ = writeln!(out, "\n[protocol_log]\nenabled = {}", c.enabled);
    match &c.folder {
        Some(f) => {
            let _ = writeln!(out, "folder = {}", quote_path(f));
        }
        None => {
            let _ = writeln!(out, "# folder = (unset: <mailroot>/{LOGS_DIR})");
        }
    }
    let _ = writeln!(out, "rotate = \"{}\"", c.rotate.as_str());
    let _ = writeln!(out, "max_size = {}", format_size(c.max_size_bytes));
    let _ = writeln!(out, "keep = {}", c.keep);
}

/// The protocol-log keys of one `[[site]]` as TOML lines (only those set).
pub(super) fn print_site(s: &SiteProtocolLog, out: &mut String) {
    if let Some(e) = s.enabled {
        let _ = writeln!(out, "protocol_log = {e}");
    }
    if let Some(f) = &s.folder {
        let _ = writeln!(out, "protocol_log_folder = {}", quote_path(f));
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::Rotate;
    use crate::config::Config;
    use crate::config::test_support::{assert_refused, sys};

    const SITES: &str = "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
                         [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:26\"]\nprotocol_log = false\n\
                         [[site]]\nname = \"c\"\nlisten = [\"127.0.0.1:27\"]\n\
                         protocol_log_folder = \"/srv/c-logs\"\n";

    #[test]
    fn defaults_off_and_inherited() {
        let c = Config::from_toml_str("mailroot = \"/m\"", &sys(2)).unwrap();
        assert!(!c.protocol_log.enabled);
        assert_eq!(c.protocol_log.rotate, Rotate::Both);
        assert_eq!(c.protocol_log.max_size_bytes, 100 << 20);
        assert_eq!(c.protocol_log.keep, 30);
        assert!(!c.protocol_log_enabled(0));
        assert_eq!(c.protocol_log_dir(0), Path::new("/m/Logs/default"));

        let text = format!(
            "mailroot = \"/m\"\n[protocol_log]\nenabled = true\nfolder = \"/var/log/mr\"\n\
             rotate = \"size\"\nmax_size = \"1KiB\"\nkeep = 0\n{SITES}"
        );
        let c = Config::from_toml_str(&text, &sys(2)).unwrap();
        assert_eq!(c.protocol_log.rotate, Rotate::Size);
        assert_eq!(c.protocol_log.max_size_bytes, 1024);
        assert_eq!(c.protocol_log.keep, 0);
        let on: Vec<bool> = (0..3).map(|i| c.protocol_log_enabled(i)).collect();
        assert_eq!(on, [true, false, true]);
        assert_eq!(c.protocol_log_dir(0), Path::new("/var/log/mr/a"));
        assert_eq!(c.protocol_log_dir(2), Path::new("/srv/c-logs"));
        assert_eq!(Config::from_toml_str(&c.to_toml(), &sys(2)).unwrap(), c, "round trip");

        // A site may turn it on while the master is off.
        let c = Config::from_toml_str(
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\nprotocol_log = true",
            &sys(2),
        )
        .unwrap();
        assert!(c.protocol_log_enabled(0));
        assert_eq!(Config::from_toml_str(&c.to_toml(), &sys(2)).unwrap(), c, "round trip");
    }

    #[test]
    fn bad_values_name_their_key() {
        let site = "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n";
        let cases: Vec<(String, &str, &str)> = vec![
            ("[protocol_log]\nenabled = \"yes\"".into(), "protocol_log.enabled", "true or false"),
            ("[protocol_log]\nrotate = \"weekly\"".into(), "protocol_log.rotate", "\"daily\""),
            ("[protocol_log]\nrotate = 1".into(), "protocol_log.rotate", "expected a string"),
            ("[protocol_log]\nmax_size = 0".into(), "protocol_log.max_size", "> 0"),
            ("[protocol_log]\nmax_size = \"9 parsecs\"".into(), "protocol_log.max_size", "size"),
            ("[protocol_log]\nfolder = \"\"".into(), "protocol_log.folder", "non-empty"),
            ("[protocol_log]\nfile = \"x\"".into(), "protocol_log.file", "unknown key"),
            ("[protocol_log]\nkeep = -3".into(), "protocol_log.keep", "negative"),
            ("[protocol_log]\nkeep = 1.5".into(), "protocol_log.keep", "integer"),
            (format!("{site}protocol_log = 1"), "site[0].protocol_log", "true or false"),
            (format!("{site}protocol_log_folder = 2"), "site[0].protocol_log_folder", "string"),
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|(t, k, w)| (t.as_str(), *k, *w)).collect();
        assert_refused(&cases);
    }
}
