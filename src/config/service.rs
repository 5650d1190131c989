//! `[service]`: which account the relay runs as once its listeners are bound.
//!
//! Keys: `user` (the account to switch to after binding, e.g. `"mailroot"`; unset = stay
//! who we were started as), `group` (its primary group; default: the user's own primary
//! group from the password database), `allow_root` (default false: started as root with
//! no `user`, `mailroot serve` refuses to run; true = run as root anyway).
//!
//! Why a section and not the top-level `user = "mailroot"` of issue 12: the top-level key
//! `user` is the `[[user]]` array of AUTH accounts (`auth.rs`), so a string there cannot
//! exist in TOML. The names are only checked for shape here (layer 0: no password
//! database); `relay::privilege` looks them up at start-up, naming these keys when the
//! account does not exist.

use std::fmt::Write as _;

use toml::Table;

use super::ConfigError;
use super::keyed::{Parsed, boolean, string};

/// Keys allowed in `[service]`.
pub(super) const SERVICE_KEYS: &[&str] = &["user", "group", "allow_root"];

/// Longest user or group name accepted (Linux `useradd` allows 32 bytes).
const MAX_ACCOUNT_NAME_LEN: usize = 32;

/// `[service]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Account to drop to after binding. Invariant: a valid account name (see
    /// `account_name`: 1..=32 letters, digits, `_`, `-`, `.`). Key `user`.
    pub user: Option<String>,
    /// Primary group to drop to; `None` = the user's own. Invariant: a valid account name,
    /// and only set together with `user`. Key `group`.
    pub group: Option<String>,
    /// Run as root when started as root with no `user`. Key `allow_root`.
    pub allow_root: bool,
}

/// Parse the `[service]` table (keys already checked) into `cfg`.
pub(super) fn service(t: &Table, cfg: &mut ServiceConfig) -> Parsed<()> {
    if let Some(v) = t.get("user") {
        cfg.user = Some(account_name(string(v, "service.user")?, "service.user")?);
    }
    if let Some(v) = t.get("group") {
        cfg.group = Some(account_name(string(v, "service.group")?, "service.group")?);
        if cfg.user.is_none() {
            return Err(ConfigError::new(
                "service.group",
                "needs `service.user` (the group is dropped to together with the user)",
            ));
        }
    }
    if let Some(v) = t.get("allow_root") {
        cfg.allow_root = boolean(v, "service.allow_root")?;
    }
    Ok(())
}

/// A user or group name as `useradd` accepts it: 1..=32 bytes of ASCII letters, digits,
/// `_`, `-`, `.` (and a trailing `$`), not starting with `-`. Not a number: a numeric id
/// would be ambiguous with a name made of digits.
fn account_name(s: &str, key: &str) -> Parsed<String> {
    let body = s.strip_suffix('$').unwrap_or(s);
    let ok = !body.is_empty()
        && s.len() <= MAX_ACCOUNT_NAME_LEN
        && !body.starts_with('-')
        && !body.bytes().all(|b| b.is_ascii_digit())
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "{s:?} is not an account name (1..={MAX_ACCOUNT_NAME_LEN} letters, digits, \
                 `_`, `-`, `.`; not only digits)"
            ),
        ))
    }
}

/// The `[service]` section as TOML.
pub(super) fn print(c: &ServiceConfig, out: &mut String) {
    let _ = writeln!(out, "\n[service]");
    for (key, v) in [("user", &c.user), ("group", &c.group)] {
        match v {
            Some(name) => {
                let _ = writeln!(out, "{key} = {}", toml::Value::String(name.clone()));
            }
            None if key == "user" => {
                let _ = writeln!(out, "# user = (unset: keep the account mailroot started as)");
            }
            None => {
                let _ = writeln!(out, "# group = (unset: the user's primary group)");
            }
        }
    }
    let _ = writeln!(out, "allow_root = {}", c.allow_root);
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, SystemDefaults};

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(2)
    }

    #[test]
    fn good() {
        // (TOML, user, group, allow_root)
        let cases: &[(&str, Option<&str>, Option<&str>, bool)] = &[
            ("", None, None, false),
            ("[service]\nuser = \"mailroot\"", Some("mailroot"), None, false),
            (
                "[service]\nuser = \"mail-root.x\"\ngroup = \"mail_grp\"",
                Some("mail-root.x"),
                Some("mail_grp"),
                false,
            ),
            ("[service]\nallow_root = true", None, None, true),
            ("[service]\nuser = \"nobody\"\nallow_root = true", Some("nobody"), None, true),
            ("[service]\nuser = \"host$\"", Some("host$"), None, false),
            // An AUTH `[[user]]` beside `[service] user`: two different keys.
            (
                "[service]\nuser = \"mailroot\"\n[[user]]\nname = \"a\"\npassword_hash = \"$argon2id$v=19$m=19456,t=2,p=1$Qdm/IffE4YDAAGITBws8Ng$bmd2utoRzDX3L5IMIzybEay5fu2pD8XqQyTInaGR5E4\"",
                Some("mailroot"),
                None,
                false,
            ),
        ];
        for (text, user, group, allow_root) in cases {
            let c = Config::from_toml_str(text, &sys()).unwrap();
            assert_eq!(c.service.user.as_deref(), *user, "{text}");
            assert_eq!(c.service.group.as_deref(), *group, "{text}");
            assert_eq!(c.service.allow_root, *allow_root, "{text}");
            let again = Config::from_toml_str(&c.to_toml(), &sys()).unwrap();
            assert_eq!(again, c, "round trip of {text}");
        }
    }

    #[test]
    fn bad() {
        // (TOML, key named, words in the problem)
        let cases: &[(&str, &str, &str)] = &[
            ("[service]\nuser = 1000", "service.user", "string"),
            ("[service]\nuser = \"\"", "service.user", "not an account name"),
            ("[service]\nuser = \"1000\"", "service.user", "not only digits"),
            ("[service]\nuser = \"-x\"", "service.user", "not an account name"),
            ("[service]\nuser = \"a b\"", "service.user", "not an account name"),
            ("[service]\nuser = \"a:b\"", "service.user", "not an account name"),
            ("[service]\nuser = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"", "service.user", "32"),
            ("[service]\nuser = \"m\"\ngroup = \"g/x\"", "service.group", "account name"),
            ("[service]\ngroup = \"mail\"", "service.group", "needs `service.user`"),
            ("[service]\nallow_root = \"yes\"", "service.allow_root", "true or false"),
            ("[service]\nuid = 5", "service.uid", "unknown key"),
        ];
        crate::config::test_support::assert_refused(cases);
    }
}
