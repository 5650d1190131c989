//! `[admin]`: the admin HTTP listener (`GET /metrics`, `/api/stats`, `/api/queue`).
//!
//! Keys: `listen` (IP:port; `""` disables), `enabled` (`false` disables), `token` (bearer
//! token), `allow_unauthenticated_loopback_control` (default false: without a token no
//! POST is accepted at all; true lets a loopback listener without a token accept POSTs).
//! SECURITY: the GET endpoints are open to whoever can connect, so a listener on
//! a non-loopback address without a token is a configuration error naming `admin.listen`.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use toml::Table;

use super::ConfigError;
use super::keyed::{Parsed, boolean, string};
use super::values::listen_addr;

/// Default `[admin] listen`: loopback only.
pub const DEFAULT_ADMIN_LISTEN: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)), 8025);

/// Keys allowed in `[admin]`.
pub(super) const ADMIN_KEYS: &[&str] =
    &["listen", "enabled", "token", "allow_unauthenticated_loopback_control"];

/// `[admin]`: where the admin HTTP listener binds and what guards it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// Address of the listener; `None` = no admin listener. Invariant: a loopback address
    /// unless `token` is set. Key `listen` (`""` or `enabled = false` give `None`).
    pub listen: Option<SocketAddr>,
    /// Bearer token required for state-changing requests (and for any request when the
    /// listener is not on loopback). Invariant: non-empty, printable ASCII, no spaces.
    /// Key `token`.
    pub token: Option<String>,
    /// Without a token, accept state-changing POSTs on a loopback listener anyway (any
    /// local user could then pause the server). Key
    /// `allow_unauthenticated_loopback_control`, default false.
    pub allow_unauthenticated_loopback_control: bool,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: Some(DEFAULT_ADMIN_LISTEN),
            token: None,
            allow_unauthenticated_loopback_control: false,
        }
    }
}

/// Parse the `[admin]` table (keys already checked) into `cfg`.
pub(super) fn admin(t: &Table, cfg: &mut AdminConfig) -> Parsed<()> {
    if let Some(v) = t.get("listen") {
        let s = string(v, "admin.listen")?;
        cfg.listen = if s.is_empty() { None } else { Some(listen_addr(s, "admin.listen")?) };
    }
    if let Some(v) = t.get("enabled")
        && !boolean(v, "admin.enabled")?
    {
        cfg.listen = None;
    }
    if let Some(v) = t.get("token") {
        let s = string(v, "admin.token")?;
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new(
                "admin.token",
                "must be non-empty printable ASCII without spaces",
            ));
        }
        cfg.token = Some(s.to_owned());
    }
    if let Some(v) = t.get("allow_unauthenticated_loopback_control") {
        cfg.allow_unauthenticated_loopback_control =
            boolean(v, "admin.allow_unauthenticated_loopback_control")?;
    }
    if let Some(addr) = cfg.listen
        && !addr.ip().is_loopback()
        && cfg.token.is_none()
    {
        return Err(ConfigError::new(
            "admin.listen",
            format!("{addr} is not a loopback address: set admin.token to expose the listener"),
        ));
    }
    Ok(())
}

/// The `[admin]` section as TOML.
pub(super) fn print(c: &AdminConfig, out: &mut String) {
    let listen = c.listen.map(|a| a.to_string()).unwrap_or_default();
    let _ = writeln!(out, "\n[admin]\nlisten = {}", toml::Value::String(listen));
    match &c.token {
        Some(t) => {
            let _ = writeln!(out, "token = {}", toml::Value::String(t.clone()));
        }
        None => {
            let _ = writeln!(out, "# token = (unset)");
        }
    }
    let _ = writeln!(
        out,
        "allow_unauthenticated_loopback_control = {}",
        c.allow_unauthenticated_loopback_control
    );
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SystemDefaults};

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(2)
    }

    #[test]
    fn good() {
        // (TOML, listen, token)
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            ("", Some("127.0.0.1:8025"), None),
            ("[admin]\nlisten = \"127.0.0.1:9000\"", Some("127.0.0.1:9000"), None),
            ("[admin]\nlisten = \"[::1]:9000\"", Some("[::1]:9000"), None),
            ("[admin]\nlisten = \"\"", None, None),
            ("[admin]\nenabled = false", None, None),
            ("[admin]\nenabled = true", Some("127.0.0.1:8025"), None),
            (
                "[admin]\nlisten = \"0.0.0.0:8025\"\ntoken = \"s3cret\"",
                Some("0.0.0.0:8025"),
                Some("s3cret"),
            ),
        ];
        for (text, listen, token) in cases {
            let c = Config::from_toml_str(text, &sys()).unwrap();
            assert_eq!(c.admin.listen.map(|a| a.to_string()).as_deref(), *listen, "{text}");
            assert_eq!(c.admin.token.as_deref(), *token, "{text}");
            let again = Config::from_toml_str(&c.to_toml(), &sys()).unwrap();
            assert_eq!(again, c, "round trip of {text}");
        }
    }

    #[test]
    fn bad() {
        // (TOML, key named, words in the problem)
        let cases: &[(&str, &str, &str)] = &[
            ("[admin]\nlisten = \"0.0.0.0:8025\"", "admin.listen", "admin.token"),
            ("[admin]\nlisten = \"192.0.2.1:8025\"", "admin.listen", "not a loopback"),
            ("[admin]\nlisten = \"localhost:8025\"", "admin.listen", "IP:port"),
            ("[admin]\nlisten = 8025", "admin.listen", "expected a string"),
            ("[admin]\nenabled = \"no\"", "admin.enabled", "true or false"),
            ("[admin]\ntoken = \"\"", "admin.token", "non-empty"),
            ("[admin]\ntoken = \"a b\"", "admin.token", "without spaces"),
            ("[admin]\nport = 1", "admin.port", "unknown key"),
        ];
        crate::config::test_support::assert_refused(cases);
    }
}
