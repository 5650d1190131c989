//! Key-by-key difference of two configurations, and what a reload can apply live.
//!
//! [`diff`] compares the effective configurations as [`Config::to_toml`] prints them,
//! flattened to key paths (`limits.max_recipients`, `site[0].listen`,
//! `relay.smart_host_auth.user`), so every key a file can set is covered without a
//! hand-kept list. Values are shown as TOML (`"10MiB"`, `["10.0.0.0/8"]`); keys come in
//! sorted order within each table.
//!
//! [`plan_reload`] decides what a reload does: the *running* configuration is the new one
//! with every setting that cannot change live put back to its old value; those keys are
//! reported as needing a restart. What cannot change live, and why (the thread that
//! reads it was built at start-up):
//! - `hostname`, `log_level`, `[hosts]`, `[dns]`, `[delivery]`, `relay.smart_host_auth`:
//!   the resolver's client settings, the logger and the pickup thread are built once;
//! - `mailroot`, `workers`, `[spool]`, `limits.shutdown_grace`: folders, threads and the
//!   spool (the connection limits and `min_free_disk` are atomics the reload sets);
//! - the sites (`[[site]]` names, `listen`, `implicit_tls_listen`, certificate paths,
//!   PROXY protocol settings, adding or removing a site) and `[tls]` certificate paths: listeners are bound and
//!   certificates loaded per path at start-up (the *content* of the files is re-read by
//!   every reload); a site's `require_tls`, `protocol_log` and `protocol_log_folder`
//!   change live, as does all of `[protocol_log]` (the `protocol-log` thread takes new
//!   options); a site's overrides of the master properties (`config::site`) change live
//!   like their masters, except the site's `hostname` (restart, as the master's);
//! - `[admin]` and `[event_log]`: their threads hold the listener and the file;
//!   `[service]`: the account is switched once, at start-up, and cannot be switched back;
//!   `auth.failure_delay`: the verifier's failure table is built once.
//!
//! SECURITY: values of secret keys (`password`, `token`, `password_hash`) are shown as
//! `<redacted>`, in [`Change`] and therefore in the event log and the admin API.

use toml::{Table, Value};

use super::Config;
use super::mask::SECRET_KEYS;

/// Shown instead of a secret value.
pub const REDACTED: &str = "<redacted>";

/// One changed key. `old`/`new` are TOML values; `None` = the key is absent on that side
/// (added or removed, e.g. a new `[[user]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    /// Key path, e.g. `relay.allow` or `site[1].listen`.
    pub key: String,
    /// Value before (masked if secret).
    pub old: Option<String>,
    /// Value after (masked if secret).
    pub new: Option<String>,
}

/// What a reload does with a new, valid configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ReloadPlan {
    /// The configuration to run with: `new`, except settings that need a restart keep
    /// their running value.
    pub running: Config,
    /// Every key that differs between the old and the new file (secrets masked).
    pub changes: Vec<Change>,
    /// Keys changed in the file that keep their old value until a restart.
    pub restart_needed: Vec<String>,
}

/// Every key whose value differs between `old` and `new`, in printed order (keys only
/// in `old` last). Secret values are masked; a changed secret is still reported (its key
/// with `<redacted>` on both sides).
#[must_use]
pub fn diff(old: &Config, new: &Config) -> Vec<Change> {
    let a = flatten_config(old);
    let b = flatten_config(new);
    let mut out = Vec::new();
    for (k, v) in &b {
        let before = a.iter().find(|(ka, _)| ka == k).map(|(_, va)| va);
        if before != Some(v) {
            out.push(change(k, before.cloned(), Some(v.clone())));
        }
    }
    for (k, v) in &a {
        if !b.iter().any(|(kb, _)| kb == k) {
            out.push(change(k, Some(v.clone()), None));
        }
    }
    // `to_toml` never prints an inline smart host password: compare it here.
    let pw = |c: &Config| c.relay.smart_host_auth.as_ref().map(|a| a.credentials.password.clone());
    let key = "relay.smart_host_auth.password";
    if pw(old) != pw(new) && !out.iter().any(|c| c.key == key) {
        let mask = |p: Option<String>| p.map(|_| REDACTED.to_owned());
        out.push(Change { key: key.to_owned(), old: mask(pw(old)), new: mask(pw(new)) });
    }
    out
}

/// A `Change`, masked when the key is a secret.
fn change(key: &str, old: Option<String>, new: Option<String>) -> Change {
    let last = key.rsplit('.').next().unwrap_or(key);
    if SECRET_KEYS.contains(&last) {
        let mask = |v: Option<String>| v.map(|_| REDACTED.to_owned());
        return Change { key: key.to_owned(), old: mask(old), new: mask(new) };
    }
    Change { key: key.to_owned(), old, new }
}

/// `(key path, TOML value)` for every key of `c`'s printed form.
fn flatten_config(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    // `to_toml` output always parses (tested in `print.rs`); an empty table otherwise.
    let table: Table = c.to_toml().parse().unwrap_or_default();
    flatten(&table, "", &mut out);
    out
}

/// Flatten `t` under `prefix` into `out`: tables and arrays of tables are walked, other
/// values (including arrays of scalars) are leaves.
fn flatten(t: &Table, prefix: &str, out: &mut Vec<(String, String)>) {
    for (k, v) in t {
        let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Table(inner) => flatten(inner, &key, out),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_table) => {
                for (i, item) in items.iter().enumerate() {
                    if let Value::Table(inner) = item {
                        flatten(inner, &format!("{key}[{i}]"), out);
                    }
                }
            }
            other => out.push((key, other.to_string())),
        }
    }
}

/// Decide what reloading `new` over the running `old` does (see the module doc).
#[must_use]
pub fn plan_reload(old: &Config, new: &Config) -> ReloadPlan {
    let mut running = new.clone();
    // Threads, folders and the spool.
    running.hostname.clone_from(&old.hostname);
    running.mailroot.clone_from(&old.mailroot);
    running.workers = old.workers;
    running.log_level.clone_from(&old.log_level);
    running.spool = old.spool.clone();
    running.limits.shutdown_grace_ms = old.limits.shutdown_grace_ms;
    // Delivery threads built once.
    running.hosts = old.hosts.clone();
    running.dns = old.dns.clone();
    running.delivery = old.delivery.clone();
    running.relay.smart_host_auth.clone_from(&old.relay.smart_host_auth);
    running.admin = old.admin.clone();
    running.auth.failure_delay_ms = old.auth.failure_delay_ms;
    running.event_log = old.event_log.clone();
    running.service = old.service.clone();
    // Listeners and certificates: only `require_tls` and the protocol log of a site that
    // still exists (same name, same place) change live.
    running.sites = old.sites.clone();
    for (i, site) in running.sites.iter_mut().enumerate() {
        if let Some(n) = new.sites.get(i).filter(|n| n.name == site.name) {
            site.tls.require_tls = n.tls.require_tls;
            site.protocol_log.clone_from(&n.protocol_log);
            // Overrides of live masters change live; `hostname` stays, as the master does.
            let hostname = site.overrides.hostname.take();
            site.overrides.clone_from(&n.overrides);
            site.overrides.hostname = hostname;
        }
    }
    running.tls.files.clone_from(&old.tls.files);
    let changes = diff(old, new);
    let restart_needed = diff(&running, new).into_iter().map(|c| c.key).collect();
    ReloadPlan { running, changes, restart_needed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemDefaults;

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(2)
    }

    fn cfg(text: &str) -> Config {
        Config::from_toml_str(text, &sys()).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    fn show(c: &Change) -> String {
        format!(
            "{}: {} -> {}",
            c.key,
            c.old.as_deref().unwrap_or("(none)"),
            c.new.as_deref().unwrap_or("(none)")
        )
    }

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$zJ6OGMHy6/XmqJDVyP6+Zy1C4CRcjgL2Ms9eP3vD8gs";

    #[test]
    fn diffs() {
        // (old TOML, new TOML, expected changes as "key: old -> new")
        let user = format!("[[user]]\nname = \"a\"\npassword_hash = \"{HASH}\"");
        let cases: Vec<(&str, String, Vec<&str>)> = vec![
            ("", String::new(), vec![]),
            (
                "",
                "[relay]\nallow = [\"10.0.0.0/8\"]".into(),
                vec![r#"relay.allow: ["127.0.0.0/8", "::1/128"] -> ["10.0.0.0/8"]"#],
            ),
            (
                "[limits]\nmax_recipients = 5",
                "[limits]\nmax_recipients = 6\nmax_message_size = \"1MiB\"".into(),
                vec![
                    r#"limits.max_message_size: "10MiB" -> "1MiB""#,
                    "limits.max_recipients: 5 -> 6",
                ],
            ),
            (
                "",
                user.clone(),
                vec!["user[0].name: (none) -> \"a\"", "user[0].password_hash: (none) -> <redacted>"],
            ),
            (
                "[admin]\ntoken = \"old-secret\"",
                "[admin]\ntoken = \"new-secret\"".into(),
                vec!["admin.token: <redacted> -> <redacted>"],
            ),
            (
                "[relay]\nsmart_host = \"[192.0.2.1]\"\nsmart_host_auth = { user = \"u\", password = \"p1\" }",
                "[relay]\nsmart_host = \"[192.0.2.1]\"\nsmart_host_auth = { user = \"u\", password = \"p2\" }".into(),
                vec!["relay.smart_host_auth.password: <redacted> -> <redacted>"],
            ),
            (
                "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]",
                "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:26\"]\n[[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:27\"]".into(),
                vec![
                    r#"site[0].listen: ["127.0.0.1:25"] -> ["127.0.0.1:26"]"#,
                    "site[1].implicit_tls_listen: (none) -> []",
                    r#"site[1].listen: (none) -> ["127.0.0.1:27"]"#,
                    "site[1].name: (none) -> \"b\"",
                    "site[1].proxy_protocol: (none) -> false",
                    "site[1].proxy_trusted: (none) -> []",
                    "site[1].require_tls: (none) -> false",
                ],
            ),
            (
                &*user,
                String::new(),
                vec!["user[0].name: \"a\" -> (none)", "user[0].password_hash: <redacted> -> (none)"],
            ),
            (
                "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]",
                format!(
                    "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
                     [[site.user]]\nname = \"s\"\npassword_hash = \"{HASH}\""
                ),
                vec![
                    "site[0].user[0].name: (none) -> \"s\"",
                    "site[0].user[0].password_hash: (none) -> <redacted>",
                ],
            ),
        ];
        for (old, new, want) in cases {
            let got: Vec<String> = diff(&cfg(old), &cfg(&new)).iter().map(show).collect();
            assert_eq!(got, want, "{old:?} -> {new:?}");
            for c in &got {
                for secret in ["old-secret", "new-secret", "p1", "p2", "c29tZXNhbHQ"] {
                    assert!(!c.contains(&format!("\"{secret}")), "secret shown: {c}");
                }
            }
        }
    }

    #[test]
    fn reload_plans() {
        // (new TOML over the default, keys applied live, keys needing a restart)
        let cases: &[(&str, &[&str], &[&str])] = &[
            ("[relay]\nallow = []", &["relay.allow"], &[]),
            ("[domains]\nlocal = [\"example.org\"]", &["domains.local"], &[]),
            ("workers = 5", &[], &["workers"]),
            (
                "[limits]\nmax_recipients = 3\nmax_connections = 9\nshutdown_grace = 1",
                &["limits.max_connections", "limits.max_recipients"],
                &["limits.shutdown_grace"],
            ),
            (
                "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2626\"]",
                &[],
                &["site[0].listen"],
            ),
            ("[tls]\nhandshake_timeout = \"5s\"", &["tls.handshake_timeout"], &[]),
            ("[delivery]\nhold = true", &[], &["delivery.hold"]),
            (
                "[protocol_log]\nenabled = true\nrotate = \"size\"",
                &["protocol_log.enabled", "protocol_log.rotate"],
                &[],
            ),
            (
                "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2525\"]\n\
                 protocol_log = true\nprotocol_log_folder = \"/var/log/mr\"",
                &["site[0].protocol_log", "site[0].protocol_log_folder"],
                &[],
            ),
            (
                "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2525\"]\n\
                 max_recipients = 2\nrelay_allow = []\nlocal_domains = [\"s.example\"]\n\
                 connection_deny = [\"10.0.0.0/8\"]\ndrop_folder = \"/d\"\nhostname = \"s.example\"",
                &[
                    "site[0].connection_deny",
                    "site[0].drop_folder",
                    "site[0].local_domains",
                    "site[0].max_recipients",
                    "site[0].relay_allow",
                ],
                &["site[0].hostname"],
            ),
            (
                "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2525\"]\nuser = []",
                &["site[0].user"],
                &[],
            ),
            (
                "[[domain]]\nname = \"x.example\"\nsmart_host = \"[192.0.2.9]\"",
                &["domain[0].helo", "domain[0].name", "domain[0].relay", "domain[0].smart_host"],
                &[],
            ),
        ];
        let old = cfg("");
        for (text, live, restart) in cases {
            let new = cfg(text);
            let plan = plan_reload(&old, &new);
            let applied: Vec<String> =
                diff(&old, &plan.running).into_iter().map(|c| c.key).collect();
            assert_eq!(applied, *live, "{text}");
            assert_eq!(plan.restart_needed, *restart, "{text}");
            let all: Vec<&str> = plan.changes.iter().map(|c| c.key.as_str()).collect();
            let mut both: Vec<&str> = live.iter().chain(restart.iter()).copied().collect();
            both.sort_unstable();
            let mut all_sorted = all.clone();
            all_sorted.sort_unstable();
            assert_eq!(all_sorted, both, "{text}");
        }
    }
}
