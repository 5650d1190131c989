//! `[auth]` and `[[user]]`: SMTP AUTH (RFC 4954) users and rules.
//!
//! Keys: `[[user]] name`, `password_hash` (an argon2id PHC string, as `mailroot
//! hash-password` prints); `[auth] allow_plaintext_auth` (offer AUTH without TLS, default
//! false), `relay_authenticated` (an authenticated client may relay, IIS "allow all
//! computers which successfully authenticate to relay", default true), `max_auth_failures`
//! (wrong credentials per connection before `421 4.7.0`, default 3, 0 = no limit),
//! `failure_delay` (the first wrong answer's delay; it doubles per failure of the same
//! client address, default 1s, 0 = none). A `[[site]]` may carry its own list,
//! `[[site.user]]` with the same keys, which replaces this one on that site
//! (`config::site`).
//!
//! SECURITY: only hashes are stored, never passwords. A hash is parsed and its argon2
//! parameters checked at load, so a typo is a config error naming the key (exit 2), not a
//! user who can never log in.

use std::fmt::Write as _;

use argon2::password_hash::phc::PasswordHash;
use toml::{Table, Value};

use super::ConfigError;
use super::keyed::{Parsed, U32_MAX, boolean, duration_ms, join, string, tables};
use super::parse::check_keys;

/// Keys allowed in `[auth]`.
pub(super) const AUTH_KEYS: &[&str] =
    &["allow_plaintext_auth", "relay_authenticated", "max_auth_failures", "failure_delay"];
/// Keys allowed in each `[[user]]`.
pub(super) const USER_KEYS: &[&str] = &["name", "password_hash"];

/// Default `[auth] max_auth_failures`.
pub const DEFAULT_MAX_AUTH_FAILURES: u32 = 3;
/// Default `[auth] failure_delay`, in ms.
pub const DEFAULT_AUTH_FAILURE_DELAY_MS: u64 = 1000;
/// Longest user name, in octets (RFC 4616 §2: 255).
const MAX_USER_NAME_BYTES: usize = 255;

/// One `[[user]]`: who may AUTH, and the hash of their password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The SASL authentication identity. Invariant: 1..=255 octets of UTF-8 without
    /// control characters; unique among users.
    pub name: String,
    /// An argon2 PHC string (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`). Invariant:
    /// parses, names argon2id, argon2i or argon2d, and its parameters are valid.
    pub password_hash: String,
}

/// `[auth]` plus the `[[user]]` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthConfig {
    /// Users in file order. Empty = AUTH not offered (`502 5.5.1`).
    pub users: Vec<User>,
    /// Offer and accept AUTH without TLS. Key `allow_plaintext_auth`.
    pub allow_plaintext_auth: bool,
    /// An authenticated client may relay to any domain. Key `relay_authenticated`.
    pub relay_authenticated: bool,
    /// Wrong credentials per connection before `421 4.7.0`; 0 = no limit.
    /// Key `max_auth_failures`.
    pub max_auth_failures: u32,
    /// Delay of a client address's first `535`, doubled per further failure (capped), in
    /// ms; 0 = none. Key `failure_delay`.
    pub failure_delay_ms: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users: Vec::new(),
            allow_plaintext_auth: false,
            relay_authenticated: true,
            max_auth_failures: DEFAULT_MAX_AUTH_FAILURES,
            failure_delay_ms: DEFAULT_AUTH_FAILURE_DELAY_MS,
        }
    }
}

/// Parse the `[auth]` table (keys already checked) into `cfg`.
pub(super) fn auth(t: &Table, cfg: &mut AuthConfig) -> Parsed<()> {
    if let Some(v) = t.get("allow_plaintext_auth") {
        cfg.allow_plaintext_auth = boolean(v, "auth.allow_plaintext_auth")?;
    }
    if let Some(v) = t.get("relay_authenticated") {
        cfg.relay_authenticated = boolean(v, "auth.relay_authenticated")?;
    }
    if let Some(v) = t.get("max_auth_failures") {
        const KEY: &str = "auth.max_auth_failures";
        let Value::Integer(n) = *v else {
            return Err(super::keyed::wrong_type(KEY, "expected an integer", v));
        };
        cfg.max_auth_failures = u32::try_from(n)
            .ok()
            .filter(|&n| u64::from(n) <= U32_MAX)
            .ok_or_else(|| ConfigError::new(KEY, format!("must be 0..={U32_MAX} (got {n})")))?;
    }
    if let Some(v) = t.get("failure_delay") {
        const KEY: &str = "auth.failure_delay";
        let ms = duration_ms(v, KEY)?;
        if ms > MAX_FAILURE_DELAY_MS {
            return Err(ConfigError::new(KEY, "must be at most 60s"));
        }
        cfg.failure_delay_ms = ms;
    }
    Ok(())
}

/// Largest `failure_delay`, in ms.
const MAX_FAILURE_DELAY_MS: u64 = 60_000;

/// `[[user]]` (or a site's `[[site.user]]`, at `key`): names unique, hashes valid.
pub(super) fn users(v: &Value, key: &str) -> Parsed<Vec<User>> {
    let mut out: Vec<User> = Vec::new();
    for item in tables(v, key)? {
        let (prefix, t) = item?;
        check_keys(t, &prefix, USER_KEYS)?;
        let name_key = join(&prefix, "name");
        let name = match t.get("name") {
            Some(v) => string(v, &name_key)?,
            None => return Err(ConfigError::new(name_key, "missing; every [[user]] needs a name")),
        };
        if name.is_empty() || name.len() > MAX_USER_NAME_BYTES || name.chars().any(char::is_control)
        {
            return Err(ConfigError::new(
                name_key,
                "must be 1 to 255 bytes without control characters",
            ));
        }
        if let Some(j) = out.iter().position(|u| u.name == name) {
            return Err(ConfigError::new(
                name_key,
                format!("duplicate user {name:?} (also {key}[{j}].name)"),
            ));
        }
        let hash_key = join(&prefix, "password_hash");
        let hash = match t.get("password_hash") {
            Some(v) => string(v, &hash_key)?,
            None => {
                return Err(ConfigError::new(
                    hash_key,
                    "missing; make one with `mailroot hash-password`",
                ));
            }
        };
        check_hash(hash).map_err(|problem| ConfigError::new(&hash_key, problem))?;
        out.push(User { name: name.to_owned(), password_hash: hash.to_owned() });
    }
    Ok(out)
}

/// A PHC string argon2 can verify against.
fn check_hash(hash: &str) -> Result<(), String> {
    const HINT: &str = "make one with `mailroot hash-password`";
    let parsed = PasswordHash::new(hash)
        .map_err(|e| format!("not a valid PHC password hash ({e}); {HINT}"))?;
    if !matches!(parsed.algorithm.as_str(), "argon2id" | "argon2i" | "argon2d") {
        return Err(format!("algorithm {} is not argon2; {HINT}", parsed.algorithm));
    }
    argon2::Params::try_from(&parsed)
        .map_err(|e| format!("invalid argon2 parameters ({e}); {HINT}"))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(format!("salt or hash missing; {HINT}"));
    }
    Ok(())
}

/// The `[auth]` section and every `[[user]]` as TOML.
pub(super) fn print(c: &AuthConfig, out: &mut String) {
    let _ = writeln!(out, "\n[auth]\nallow_plaintext_auth = {}", c.allow_plaintext_auth);
    let _ = writeln!(out, "relay_authenticated = {}", c.relay_authenticated);
    let _ = writeln!(out, "max_auth_failures = {}", c.max_auth_failures);
    let _ =
        writeln!(out, "failure_delay = {}", super::units::format_duration_ms(c.failure_delay_ms));
    for u in &c.users {
        let _ = writeln!(out, "\n[[user]]\nname = {}", Value::String(u.name.clone()));
        let _ = writeln!(out, "password_hash = {}", Value::String(u.password_hash.clone()));
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SystemDefaults};

    /// `secret`, as `mailroot hash-password` printed it.
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Qdm/IffE4YDAAGITBws8Ng$bmd2utoRzDX3L5IMIzybEay5fu2pD8XqQyTInaGR5E4";

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(2)
    }

    #[test]
    fn good() {
        let text = format!(
            "[auth]\nallow_plaintext_auth = true\nmax_auth_failures = 0\nfailure_delay = \"250ms\"\n\
             relay_authenticated = false\n[[user]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n\
             [[user]]\nname = \"bob@example.com\"\npassword_hash = \"{HASH}\""
        );
        let c = Config::from_toml_str(&text, &sys()).unwrap();
        assert!(c.auth.allow_plaintext_auth && !c.auth.relay_authenticated);
        assert_eq!((c.auth.max_auth_failures, c.auth.failure_delay_ms), (0, 250));
        assert_eq!(c.auth.users.len(), 2);
        assert_eq!(c.auth.users[1].name, "bob@example.com");
        let again = Config::from_toml_str(&c.to_toml(), &sys()).unwrap();
        assert_eq!(again, c);
        let d = Config::from_toml_str("", &sys()).unwrap();
        assert!(d.auth.users.is_empty() && d.auth.relay_authenticated);
        assert!(!d.auth.allow_plaintext_auth && d.auth.max_auth_failures == 3);
    }

    #[test]
    fn bad() {
        let user = |name: &str, hash: &str| {
            format!("[[user]]\nname = \"{name}\"\npassword_hash = \"{hash}\"")
        };
        let dup = format!("{}\n{}", user("a", HASH), user("a", HASH));
        let cases: Vec<(String, &str, &str)> = vec![
            (user("a", "secret"), "user[0].password_hash", "not a valid PHC"),
            (user("a", "$argon2id$v=19$m=64"), "user[0].password_hash", "hash-password"),
            (
                user("a", "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"),
                "user[0].password_hash",
                "not argon2",
            ),
            (user("", HASH), "user[0].name", "1 to 255"),
            (dup, "user[1].name", "duplicate user"),
            ("[[user]]\nname = \"a\"".to_owned(), "user[0].password_hash", "missing"),
            (format!("[[user]]\npassword_hash = \"{HASH}\""), "user[0].name", "missing"),
            (format!("{}\npassword = \"x\"", user("a", HASH)), "user[0].password", "unknown key"),
            ("[auth]\nmax_auth_failures = -1".to_owned(), "auth.max_auth_failures", "0..="),
            ("[auth]\nallow_plaintext_auth = 1".to_owned(), "auth.allow_plaintext_auth", "true"),
            ("[auth]\nfailure_delay = \"2min\"".to_owned(), "auth.failure_delay", "at most"),
            ("[auth]\nusers = []".to_owned(), "auth.users", "unknown key"),
        ];
        let refs: Vec<(&str, &str, &str)> =
            cases.iter().map(|(t, k, p)| (t.as_str(), *k, *p)).collect();
        crate::config::test_support::assert_refused(&refs);
    }
}
