//! `[tls]` and the TLS keys of a `[[site]]`: which certificate and key files a site serves,
//! its implicit-TLS listen addresses (RFC 8314), and whether it requires STARTTLS.
//!
//! Keys: `[tls] cert`, `key` (PEM certificate chain and private key, the master properties
//! every site inherits), `handshake_timeout` (a duration, default 10 s); per site
//! `tls_cert`, `tls_key` (override both together), `implicit_tls_listen` (IP:port list),
//! `require_tls` (bool). A site with a certificate offers STARTTLS.
//!
//! Layer 0: paths are only parsed here, never opened (`receive::tls` reads them).
//! Errors name the key: a cert without its key, `require_tls` or `implicit_tls_listen`
//! on a site without a certificate, an implicit-TLS address listed twice.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Table;

use super::ConfigError;
use super::keyed::{Parsed, boolean, duration_ms, join, nonzero, string, strings};
use super::units::format_duration_ms;
use super::values::listen_addr;

/// Keys allowed in `[tls]`.
pub(super) const TLS_KEYS: &[&str] = &["cert", "key", "handshake_timeout"];
/// Default `[tls] handshake_timeout`: 10 s for a TLS handshake to complete.
pub const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10 * 1000;

/// A PEM certificate chain (leaf first) and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The chain file. Invariant: a non-empty path.
    pub cert: PathBuf,
    /// The key file (PKCS#8, PKCS#1 or SEC1 PEM). Invariant: a non-empty path.
    pub key: PathBuf,
}

/// `[tls]`: the master TLS properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Certificate and key every site uses unless it names its own; `None` = no TLS for
    /// sites without their own. Keys `cert`, `key` (both or neither).
    pub files: Option<TlsFiles>,
    /// Time a TLS handshake may take before the connection is closed, in ms (> 0).
    /// Key `handshake_timeout`.
    pub handshake_timeout_ms: u64,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig { files: None, handshake_timeout_ms: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS }
    }
}

/// The TLS settings of one site.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SiteTls {
    /// The site's own certificate and key (keys `tls_cert`, `tls_key`), overriding `[tls]`.
    pub files: Option<TlsFiles>,
    /// Implicit-TLS listen addresses (RFC 8314, e.g. port 465). Invariant: each address
    /// appears once across every site's `listen` and `implicit_tls_listen`; non-empty only
    /// when the site has a certificate (its own or `[tls]`'s).
    pub implicit_tls_listen: Vec<SocketAddr>,
    /// MAIL before TLS gets `530 5.7.0`. Invariant: true only when the site has a
    /// certificate. Key `require_tls`.
    pub require_tls: bool,
}

/// Read a `cert`/`key` pair at `cert_key`/`key_key` (both or neither).
fn files(t: &Table, prefix: &str, cert_key: &str, key_key: &str) -> Parsed<Option<TlsFiles>> {
    let path = |name: &str| -> Parsed<Option<PathBuf>> {
        let key = join(prefix, name);
        let Some(v) = t.get(name) else { return Ok(None) };
        let s = string(v, &key)?;
        if s.is_empty() || s.contains('\0') {
            return Err(ConfigError::new(key, "must be a non-empty path"));
        }
        Ok(Some(PathBuf::from(s)))
    };
    match (path(cert_key)?, path(key_key)?) {
        (Some(cert), Some(key)) => Ok(Some(TlsFiles { cert, key })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(ConfigError::new(
            join(prefix, key_key),
            format!("missing; `{cert_key}` needs its private key file `{key_key}`"),
        )),
        (None, Some(_)) => Err(ConfigError::new(
            join(prefix, cert_key),
            format!("missing; `{key_key}` needs its certificate chain file `{cert_key}`"),
        )),
    }
}

/// Parse the `[tls]` table (keys already checked) into `cfg`.
pub(super) fn tls(t: &Table, cfg: &mut TlsConfig) -> Parsed<()> {
    cfg.files = files(t, "tls", "cert", "key")?;
    if let Some(v) = t.get("handshake_timeout") {
        let key = "tls.handshake_timeout";
        cfg.handshake_timeout_ms = nonzero(duration_ms(v, key)?, key)?;
    }
    Ok(())
}

/// The TLS keys of the site table `t` at `prefix` (keys already checked). `seen` holds
/// every listen address so far, with its key.
pub(super) fn site_tls(
    t: &Table,
    prefix: &str,
    master: &TlsConfig,
    seen: &mut HashMap<SocketAddr, String>,
) -> Parsed<SiteTls> {
    let files = files(t, prefix, "tls_cert", "tls_key")?;
    let has_cert = files.is_some() || master.files.is_some();
    let no_cert = |key: &str| {
        ConfigError::new(
            join(prefix, key),
            "needs a certificate: set [tls] cert and key, or tls_cert and tls_key in this site",
        )
    };
    let mut require_tls = false;
    if let Some(v) = t.get("require_tls") {
        require_tls = boolean(v, &join(prefix, "require_tls"))?;
        if require_tls && !has_cert {
            return Err(no_cert("require_tls"));
        }
    }
    let mut implicit_tls_listen = Vec::new();
    if let Some(v) = t.get("implicit_tls_listen") {
        for (k, s) in strings(v, &join(prefix, "implicit_tls_listen"))? {
            let addr = listen_addr(s, &k)?;
            if let Some(other) = seen.get(&addr) {
                return Err(ConfigError::new(k, format!("{addr} is already listed at {other}")));
            }
            seen.insert(addr, k);
            implicit_tls_listen.push(addr);
        }
        if !implicit_tls_listen.is_empty() && !has_cert {
            return Err(no_cert("implicit_tls_listen"));
        }
    }
    Ok(SiteTls { files, implicit_tls_listen, require_tls })
}

/// The `[tls]` section as TOML (unset files are printed commented out).
pub(super) fn print(c: &TlsConfig, out: &mut String) {
    let _ = writeln!(out, "\n[tls]");
    match &c.files {
        Some(f) => {
            let _ = writeln!(out, "cert = {}", quote_path(&f.cert));
            let _ = writeln!(out, "key = {}", quote_path(&f.key));
        }
        None => {
            let _ = writeln!(out, "# cert = (unset)\n# key = (unset)");
        }
    }
    let _ = writeln!(out, "handshake_timeout = {}", format_duration_ms(c.handshake_timeout_ms));
}

/// The TLS keys of one `[[site]]` as TOML lines.
pub(super) fn print_site(s: &SiteTls, out: &mut String) {
    if let Some(f) = &s.files {
        let _ = writeln!(out, "tls_cert = {}", quote_path(&f.cert));
        let _ = writeln!(out, "tls_key = {}", quote_path(&f.key));
    }
    let addrs: Vec<String> = s
        .implicit_tls_listen
        .iter()
        .map(|a| toml::Value::String(a.to_string()).to_string())
        .collect();
    let _ = writeln!(out, "implicit_tls_listen = [{}]", addrs.join(", "));
    let _ = writeln!(out, "require_tls = {}", s.require_tls);
}

/// A path as a TOML string.
fn quote_path(p: &std::path::Path) -> String {
    toml::Value::String(p.to_string_lossy().into_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::test_support::{assert_refused, sys};

    #[test]
    fn bad_tls_keys_name_their_key() {
        let site = "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n";
        let cases: Vec<(String, &str, &str)> = vec![
            ("[tls]\ncert = \"c.pem\"".into(), "tls.key", "missing"),
            ("[tls]\nkey = \"k.pem\"".into(), "tls.cert", "missing"),
            ("[tls]\ncert = \"\"\nkey = \"k\"".into(), "tls.cert", "non-empty path"),
            ("[tls]\ncert = 5\nkey = \"k\"".into(), "tls.cert", "expected a string"),
            ("[tls]\nhandshake_timeout = 0".into(), "tls.handshake_timeout", "> 0"),
            ("[tls]\ncertificate = \"c\"".into(), "tls.certificate", "unknown key"),
            (format!("{site}require_tls = true"), "site[0].require_tls", "needs a certificate"),
            (format!("{site}require_tls = 1"), "site[0].require_tls", "true or false"),
            (format!("{site}tls_cert = \"c\""), "site[0].tls_key", "missing"),
            (
                format!("{site}implicit_tls_listen = [\"127.0.0.1:465\"]"),
                "site[0].implicit_tls_listen",
                "needs a certificate",
            ),
            (
                format!(
                    "[tls]\ncert = \"c\"\nkey = \"k\"\n{site}implicit_tls_listen = [\"127.0.0.1:25\"]"
                ),
                "site[0].implicit_tls_listen[0]",
                "already listed at site[0].listen[0]",
            ),
            (
                format!("[tls]\ncert = \"c\"\nkey = \"k\"\n{site}implicit_tls_listen = [\"x\"]"),
                "site[0].implicit_tls_listen[0]",
                "IP:port",
            ),
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|(t, k, p)| (t.as_str(), *k, *p)).collect();
        assert_refused(&cases);
    }

    #[test]
    fn good_tls_configs_round_trip() {
        let texts = [
            "[tls]\ncert = \"/etc/mailroot/chain.pem\"\nkey = \"/etc/mailroot/key.pem\"\n\
             handshake_timeout = \"5s\"\n[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
             implicit_tls_listen = [\"127.0.0.1:465\"]\nrequire_tls = true",
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\ntls_cert = \"a.pem\"\n\
             tls_key = \"a.key\"\nrequire_tls = true\n[[site]]\nname = \"b\"\n\
             listen = [\"127.0.0.1:26\"]",
        ];
        for text in texts {
            let c = Config::from_toml_str(text, &sys(2)).unwrap_or_else(|e| panic!("{e}"));
            assert!(c.site_tls_files(0).is_some(), "{text}");
            assert!(c.sites[0].tls.require_tls);
            let back = Config::from_toml_str(&c.to_toml(), &sys(2)).unwrap();
            assert_eq!(back, c);
        }
        let c = Config::from_toml_str(texts[1], &sys(2)).unwrap();
        assert!(c.site_tls_files(1).is_none(), "site b has no certificate");
        assert_eq!(c.tls.handshake_timeout_ms, 10_000);
    }
}
