//! A `[[site]]`'s overrides of the master properties, and the site's effective view.
//!
//! What: the top-level settings are the *master properties* (IIS "SMTP Service master
//! properties"); each `[[site]]` may override, with flat keys in its own table:
//! `hostname`; the per-session limits `max_message_size`, `max_recipients`,
//! `max_messages_per_connection`, `max_errors`, `command_timeout`, `data_timeout`;
//! `relay_allow`, `connection_allow`, `connection_deny`, `local_domains`,
//! `relay_authenticated`, `drop_folder`, and the site's own AUTH users `[[site.user]]`
//! (key `user`). Each takes the syntax and the bounds of its master key (`[limits]
//! max_recipients`, `[relay] allow`, `[domains] local`, `[[user]]`, ...), and an error
//! names the site's key (`site[1].max_recipients`, `site[1].user[0].password_hash`).
//! Process-wide limits
//! (`max_connections`, `max_connections_per_ip`, `min_free_disk`, `shutdown_grace`) stay
//! master-only: they count or guard what all sites share.
//!
//! [`Config::site_view`] resolves a site's effective configuration once (a `Config` whose
//! overridable fields hold the site's values), so the inbound hot path indexes a vector
//! instead of looking keys up; [`print_site`] shows every overridable key with its origin.
//!
//! Users: a site's `[[site.user]]` list *replaces* the master `[[user]]` list for that
//! site, like every other override (a site's `relay_allow` replaces `[relay] allow`), so a
//! site can be kept to its own users: a master user who should also log in there is
//! listed again. Extending instead would let every master user authenticate on every
//! site, with no way to keep one out. `user = []` turns AUTH off on the site. A site
//! without the key inherits the master list. `auth.*` rules (`allow_plaintext_auth`,
//! `max_auth_failures`, `failure_delay`) stay master-wide.
//!
//! Drop folder: local delivery is routed by recipient domain (`plan::route`), not by the
//! site that took the message, so a site's `drop_folder` applies to the local domains
//! that are *its own*: a site with `drop_folder` must set `local_domains`, none of them a
//! master local domain or a domain another site drops elsewhere (checked here).
//!
//! Layer 0: values are parsed, paths never touched.

use std::fmt::Write as _;
use std::path::PathBuf;

use toml::Table;

use super::keyed::{Parsed, boolean, join, string, strings};
use super::units::{format_duration_ms, format_size};
use super::values::{domain, network};
use super::{Config, ConfigError, Site, User};

/// The override keys a `[[site]]` accepts (besides its own `name`, `listen`, TLS, PROXY
/// and protocol-log keys): the tail of `parse::SITE_KEYS`, the one list.
#[cfg(test)]
const OVERRIDE_KEYS: &[&str] = super::parse::SITE_KEYS.split_at(super::parse::FIRST_OVERRIDE_KEY).1;

/// What a site overrides; `None` = inherited from the master properties.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SiteOverrides {
    /// Key `hostname` (master `hostname`): greeting, EHLO and `Received: by`.
    pub hostname: Option<String>,
    /// Key `max_message_size` (master `limits.max_message_size`).
    pub max_message_size_bytes: Option<u64>,
    /// Key `max_recipients`.
    pub max_recipients: Option<usize>,
    /// Key `max_messages_per_connection`.
    pub max_messages_per_connection: Option<u32>,
    /// Key `max_errors`.
    pub max_errors: Option<u32>,
    /// Key `command_timeout`.
    pub command_timeout_ms: Option<u64>,
    /// Key `data_timeout`.
    pub data_timeout_ms: Option<u64>,
    /// Key `relay_allow` (master `relay.allow`).
    pub relay_allow: Option<Vec<ipnet::IpNet>>,
    /// Key `connection_allow` (master `connections.allow`).
    pub connection_allow: Option<Vec<ipnet::IpNet>>,
    /// Key `connection_deny` (master `connections.deny`).
    pub connection_deny: Option<Vec<ipnet::IpNet>>,
    /// Key `local_domains` (master `domains.local`). Invariant: valid, lower case, unique.
    pub local_domains: Option<Vec<String>>,
    /// Key `relay_authenticated` (master `auth.relay_authenticated`).
    pub relay_authenticated: Option<bool>,
    /// Key `drop_folder` (master: `<mailroot>/Drop`). Invariant: with `local_domains`.
    pub drop_folder: Option<PathBuf>,
    /// Key `user` (`[[site.user]]`, master `[[user]]`): the site's own AUTH users. It
    /// *replaces* the master list (see the module doc); `Some(empty)` = no AUTH on this
    /// site. Invariant: as `AuthConfig::users` (names unique, hashes valid).
    pub users: Option<Vec<User>>,
}

/// Parse the override keys of the site table `t` at `prefix` (keys already checked).
/// Limits take the master key's reader and bounds (`parse::set_limit`).
pub(super) fn site_overrides(t: &Table, prefix: &str) -> Parsed<SiteOverrides> {
    let mut o = SiteOverrides::default();
    let key = |k: &str| join(prefix, k);
    if let Some(v) = t.get("hostname") {
        o.hostname = Some(domain(string(v, &key("hostname"))?, &key("hostname"))?);
    }
    let mut l = super::defaults::embedded_default(&super::SystemDefaults {
        hostname: String::new(),
        cores: 1,
    })
    .limits;
    for name in ["max_message_size", "max_recipients", "max_messages_per_connection"] {
        if let Some(v) = t.get(name) {
            super::parse::set_limit(&mut l, name, v, &key(name))?;
        }
    }
    for name in ["max_errors", "command_timeout", "data_timeout"] {
        if let Some(v) = t.get(name) {
            super::parse::set_limit(&mut l, name, v, &key(name))?;
        }
    }
    let has = |k: &str| t.contains_key(k);
    o.max_message_size_bytes = has("max_message_size").then_some(l.max_message_size_bytes);
    o.max_recipients = has("max_recipients").then_some(l.max_recipients);
    o.max_messages_per_connection =
        has("max_messages_per_connection").then_some(l.max_messages_per_connection);
    o.max_errors = has("max_errors").then_some(l.max_errors);
    o.command_timeout_ms = has("command_timeout").then_some(l.command_timeout_ms);
    o.data_timeout_ms = has("data_timeout").then_some(l.data_timeout_ms);
    let nets = |k: &str| -> Parsed<Option<Vec<ipnet::IpNet>>> {
        let Some(v) = t.get(k) else { return Ok(None) };
        let parsed: Parsed<Vec<_>> =
            strings(v, &key(k))?.into_iter().map(|(ik, s)| network(s, &ik)).collect();
        parsed.map(Some)
    };
    o.relay_allow = nets("relay_allow")?;
    o.connection_allow = nets("connection_allow")?;
    o.connection_deny = nets("connection_deny")?;
    if let Some(v) = t.get("local_domains") {
        o.local_domains = Some(super::parse::local_domains(v, &key("local_domains"))?);
    }
    if let Some(v) = t.get("relay_authenticated") {
        o.relay_authenticated = Some(boolean(v, &key("relay_authenticated"))?);
    }
    if let Some(v) = t.get("drop_folder") {
        let k = key("drop_folder");
        let s = string(v, &k)?;
        if s.is_empty() || s.contains('\0') {
            return Err(ConfigError::new(k, "must be a non-empty path"));
        }
        o.drop_folder = Some(PathBuf::from(s));
    }
    if let Some(v) = t.get("user") {
        o.users = Some(super::auth::users(v, &key("user"))?);
    }
    Ok(o)
}

/// Cross-site rules for `drop_folder` (see the module doc): run once every site and
/// `[domains]` are parsed.
pub(super) fn check_drop_folders(c: &Config) -> Parsed<()> {
    // (domain, site index) for every site-own local domain with a site drop folder.
    let mut owned: Vec<(&str, usize)> = Vec::new();
    for (i, s) in c.sites.iter().enumerate() {
        let Some(folder) = &s.overrides.drop_folder else { continue };
        let key = format!("site[{i}].drop_folder");
        let Some(domains) = &s.overrides.local_domains else {
            return Err(ConfigError::new(
                key,
                "needs this site's own local_domains: local mail is routed by domain, and the \
                 master local domains are delivered to the master Drop folder",
            ));
        };
        for d in domains {
            if c.domains.local.contains(d) || c.domains.aliases.contains(d) {
                return Err(ConfigError::new(
                    key,
                    format!("local domain {d:?} is also a master local domain ([domains])"),
                ));
            }
            if let Some(&(_, j)) = owned.iter().find(|(o, _)| *o == d.as_str())
                && c.sites[j].overrides.drop_folder.as_ref() != Some(folder)
            {
                return Err(ConfigError::new(
                    key,
                    format!("local domain {d:?} is also site[{j}]'s, dropped in another folder"),
                ));
            }
            owned.push((d, i));
        }
    }
    Ok(())
}

impl Config {
    /// Site `i`'s effective configuration: this one with the site's overrides applied to
    /// `hostname`, the per-session `limits`, `relay.allow`, `connections`,
    /// `domains.local` and `auth.relay_authenticated`. `i` out of range: the master view.
    /// Pure; built once per configuration (`receive::shared`), never per session.
    #[must_use]
    pub fn site_view(&self, i: usize) -> Config {
        let mut v = self.clone();
        let Some(o) = self.sites.get(i).map(|s| &s.overrides) else { return v };
        if let Some(h) = &o.hostname {
            v.hostname.clone_from(h);
        }
        let l = &mut v.limits;
        l.max_message_size_bytes = o.max_message_size_bytes.unwrap_or(l.max_message_size_bytes);
        l.max_recipients = o.max_recipients.unwrap_or(l.max_recipients);
        l.max_messages_per_connection =
            o.max_messages_per_connection.unwrap_or(l.max_messages_per_connection);
        l.max_errors = o.max_errors.unwrap_or(l.max_errors);
        l.command_timeout_ms = o.command_timeout_ms.unwrap_or(l.command_timeout_ms);
        l.data_timeout_ms = o.data_timeout_ms.unwrap_or(l.data_timeout_ms);
        if let Some(a) = &o.relay_allow {
            v.relay.allow.clone_from(a);
        }
        if let Some(a) = &o.connection_allow {
            v.connections.allow.clone_from(a);
        }
        if let Some(d) = &o.connection_deny {
            v.connections.deny.clone_from(d);
        }
        if let Some(d) = &o.local_domains {
            v.domains.local.clone_from(d);
        }
        if let Some(r) = o.relay_authenticated {
            v.auth.relay_authenticated = r;
        }
        if let Some(u) = &o.users {
            v.auth.users.clone_from(u);
        }
        v
    }

    /// The AUTH users of site `i`: its own `[[site.user]]` list if it has one (even an
    /// empty one), else the master `[[user]]` list (also for an unknown `i`). What
    /// `site_view(i).auth.users` holds, without copying the configuration.
    #[must_use]
    pub fn site_users(&self, i: usize) -> &[User] {
        self.sites.get(i).and_then(|s| s.overrides.users.as_deref()).unwrap_or(&self.auth.users)
    }

    /// Whether `domain` is one of some site's own `local_domains` (any case).
    #[must_use]
    pub fn is_site_local_domain(&self, domain: &str) -> bool {
        self.sites
            .iter()
            .filter_map(|s| s.overrides.local_domains.as_ref())
            .any(|own| own.iter().any(|d| d.eq_ignore_ascii_case(domain.trim_end_matches('.'))))
    }

    /// Where local mail for `domain` (normalized: lower case, no trailing dot) goes when
    /// no master local domain or `[[domain]] drop` rule claims it: the Drop folder of the
    /// site whose own `local_domains` list it (`drop_folder`, else the master Drop).
    /// `None`: the domain is local to no site.
    #[must_use]
    pub fn site_drop_dir(&self, domain: &str) -> Option<PathBuf> {
        self.sites.iter().find_map(|s| {
            let own = s.overrides.local_domains.as_ref()?;
            own.iter()
                .any(|d| d.eq_ignore_ascii_case(domain))
                .then(|| s.overrides.drop_folder.clone().unwrap_or_else(|| self.drop_dir()))
        })
    }
}

/// One overridable key of site `i` for `check-config`: `key = value  # from site`, or
/// commented out with the inherited value (`# key = value  # from master`) so the text
/// still parses to the same configuration.
pub(super) fn print_site(c: &Config, site: &Site, out: &mut String) {
    let o = &site.overrides;
    let m = &c.limits;
    let q = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let nets = |n: &[ipnet::IpNet]| {
        let v: Vec<String> = n.iter().map(|n| q(&n.to_string())).collect();
        format!("[{}]", v.join(", "))
    };
    let doms = |d: &[String]| {
        let v: Vec<String> = d.iter().map(|d| q(d)).collect();
        format!("[{}]", v.join(", "))
    };
    let users = |u: &[User]| {
        let v: Vec<String> = u
            .iter()
            .map(|u| {
                format!("{{ name = {}, password_hash = {} }}", q(&u.name), q(&u.password_hash))
            })
            .collect();
        format!("[{}]", v.join(", "))
    };
    let mine = |x: Option<String>, master: String| (x.is_some(), x.unwrap_or(master));
    let rows: [(&str, (bool, String)); 14] = [
        ("hostname", mine(o.hostname.as_deref().map(q), q(&c.hostname))),
        (
            "max_message_size",
            mine(o.max_message_size_bytes.map(format_size), format_size(m.max_message_size_bytes)),
        ),
        (
            "max_recipients",
            mine(o.max_recipients.map(|n| n.to_string()), m.max_recipients.to_string()),
        ),
        (
            "max_messages_per_connection",
            mine(
                o.max_messages_per_connection.map(|n| n.to_string()),
                m.max_messages_per_connection.to_string(),
            ),
        ),
        ("max_errors", mine(o.max_errors.map(|n| n.to_string()), m.max_errors.to_string())),
        (
            "command_timeout",
            mine(
                o.command_timeout_ms.map(format_duration_ms),
                format_duration_ms(m.command_timeout_ms),
            ),
        ),
        (
            "data_timeout",
            mine(o.data_timeout_ms.map(format_duration_ms), format_duration_ms(m.data_timeout_ms)),
        ),
        ("relay_allow", mine(o.relay_allow.as_deref().map(nets), nets(&c.relay.allow))),
        (
            "connection_allow",
            mine(o.connection_allow.as_deref().map(nets), nets(&c.connections.allow)),
        ),
        (
            "connection_deny",
            mine(o.connection_deny.as_deref().map(nets), nets(&c.connections.deny)),
        ),
        ("local_domains", mine(o.local_domains.as_deref().map(doms), doms(&c.domains.local))),
        (
            "relay_authenticated",
            mine(
                o.relay_authenticated.map(|b| b.to_string()),
                c.auth.relay_authenticated.to_string(),
            ),
        ),
        (
            "drop_folder",
            mine(
                o.drop_folder.as_ref().map(|p| q(&p.to_string_lossy())),
                q(&c.drop_dir().to_string_lossy()),
            ),
        ),
        ("user", mine(o.users.as_deref().map(users), users(&c.auth.users))),
    ];
    for (key, (from_site, value)) in rows {
        if from_site {
            let _ = writeln!(out, "{key} = {value}  # from site");
        } else {
            let _ = writeln!(out, "# {key} = {value}  # from master");
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::test_support::{assert_refused, sys};

    const TWO: &str = "hostname = \"master.example\"\n\
        [limits]\nmax_recipients = 50\nmax_message_size = \"10MiB\"\n\
        [relay]\nallow = [\"127.0.0.0/8\"]\n\
        [domains]\nlocal = [\"master.example\"]\n\
        [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
        [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:26\"]\nhostname = \"B.example\"\n\
        max_message_size = \"1KiB\"\nrelay_allow = []\nlocal_domains = [\"B.example\"]\n\
        relay_authenticated = false\ncommand_timeout = \"7s\"\nconnection_deny = [\"10.0.0.0/8\"]\n\
        drop_folder = \"/srv/b-drop\"\n";

    fn cfg(text: &str) -> Config {
        Config::from_toml_str(text, &sys(2)).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    #[test]
    fn override_wins_master_inherited() {
        let c = cfg(TWO);
        let (a, b) = (c.site_view(0), c.site_view(1));
        assert_eq!(a.hostname, "master.example");
        assert_eq!(b.hostname, "B.example");
        assert_eq!(a.limits.max_message_size_bytes, 10 << 20);
        assert_eq!(b.limits.max_message_size_bytes, 1024);
        // Not overridden by b: inherited.
        assert_eq!(b.limits.max_recipients, 50);
        assert_eq!(b.limits.command_timeout_ms, 7000);
        assert_eq!(a.limits.command_timeout_ms, c.limits.command_timeout_ms);
        assert_eq!(a.relay.allow.len(), 1);
        assert!(b.relay.allow.is_empty());
        assert_eq!(a.domains.local, ["master.example"]);
        assert_eq!(b.domains.local, ["b.example"]);
        assert!(a.auth.relay_authenticated && !b.auth.relay_authenticated);
        assert!(a.connections.deny.is_empty() && b.connections.deny.len() == 1);
        // Out of range: the master view.
        assert_eq!(c.site_view(9), c);
        // Drop folders by domain: only the site's own domains.
        assert_eq!(c.site_drop_dir("b.example"), Some("/srv/b-drop".into()));
        assert_eq!(c.site_drop_dir("master.example"), None);
    }

    #[test]
    fn bounds_errors_name_the_site_key() {
        const S: &str = "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
                         [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:26\"]\n";
        let cases: Vec<(String, &str, &str)> = vec![
            (format!("{S}max_recipients = 0"), "site[1].max_recipients", "must be > 0"),
            (format!("{S}max_errors = 5000000000"), "site[1].max_errors", "at most 4294967295"),
            (format!("{S}max_message_size = 0"), "site[1].max_message_size", "must be > 0"),
            (format!("{S}max_message_size = \"ten\""), "site[1].max_message_size", "10MiB"),
            (format!("{S}command_timeout = \"0s\""), "site[1].command_timeout", "must be > 0"),
            (format!("{S}data_timeout = -1"), "site[1].data_timeout", "negative"),
            (format!("{S}hostname = \"bad_host\""), "site[1].hostname", "not a valid domain"),
            (format!("{S}relay_allow = [\"10.1.2.3/8\"]"), "site[1].relay_allow[0]", "host bits"),
            (
                format!("{S}local_domains = [\"a.example\", \"A.example\"]"),
                "site[1].local_domains[1]",
                "duplicate",
            ),
            (format!("{S}relay_authenticated = 1"), "site[1].relay_authenticated", "true or false"),
            (format!("{S}max_connections = 5"), "site[1].max_connections", "unknown key"),
            (format!("{S}drop_folder = \"/d\""), "site[1].drop_folder", "local_domains"),
            (
                format!("{S}drop_folder = \"/d\"\nlocal_domains = [\"localhost\"]"),
                "site[1].drop_folder",
                "master local domain",
            ),
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|(t, k, w)| (t.as_str(), *k, *w)).collect();
        assert_refused(&cases);
    }

    #[test]
    fn check_config_shows_origins_and_round_trips() {
        let c = cfg(TWO);
        let text = c.to_toml();
        for line in [
            "# hostname = \"master.example\"  # from master",
            "hostname = \"B.example\"  # from site",
            "max_message_size = \"1KiB\"  # from site",
            "# max_recipients = 50  # from master",
            "relay_allow = []  # from site",
            "# relay_allow = [\"127.0.0.0/8\"]  # from master",
            "drop_folder = \"/srv/b-drop\"  # from site",
            "# drop_folder = \"./mailroot/Drop\"  # from master",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
        assert_eq!(cfg(&text), c, "{text}");
        // Every overridable key is shown, with its origin, for every site.
        for key in super::OVERRIDE_KEYS {
            assert!(text.matches(&format!("{key} = ")).count() >= 2, "{key}");
            assert!(text.contains(&format!("# {key} = ")), "{key} never from master");
        }
    }

    /// `secret`, as `mailroot hash-password` printed it (`config/auth.rs` tests).
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Qdm/IffE4YDAAGITBws8Ng$bmd2utoRzDX3L5IMIzybEay5fu2pD8XqQyTInaGR5E4";

    /// Master users `m1`, `m2`; site `a` inherits them, `b` has its own `b1`, `c` has none.
    fn with_users() -> String {
        format!(
            "[[user]]\nname = \"m1\"\npassword_hash = \"{HASH}\"\n\
             [[user]]\nname = \"m2\"\npassword_hash = \"{HASH}\"\n\
             [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
             [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:26\"]\n\
             [[site.user]]\nname = \"b1\"\npassword_hash = \"{HASH}\"\n\
             [[site]]\nname = \"c\"\nlisten = [\"127.0.0.1:27\"]\nuser = []\n"
        )
    }

    #[test]
    fn site_users_replace_the_master_list() {
        let c = cfg(&with_users());
        let names =
            |i: usize| -> Vec<&str> { c.site_users(i).iter().map(|u| u.name.as_str()).collect() };
        // (site index, users it authenticates against)
        let cases: &[(usize, &[&str])] =
            &[(0, &["m1", "m2"]), (1, &["b1"]), (2, &[]), (9, &["m1", "m2"])];
        for (i, want) in cases {
            assert_eq!(names(*i), *want, "site {i}");
            // The site view (what the session's ServerConfig is built from) agrees.
            let view: Vec<String> =
                c.site_view(*i).auth.users.into_iter().map(|u| u.name).collect();
            assert_eq!(view, *want, "site_view({i})");
        }
    }

    #[test]
    fn site_user_errors_name_the_site_key() {
        const S: &str = "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n";
        let user = |name: &str, hash: &str| {
            format!("[[site.user]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\n")
        };
        let cases: Vec<(String, &str, &str)> = vec![
            (format!("{S}{}", user("x", "secret")), "site[0].user[0].password_hash", "PHC"),
            (
                format!("{S}{}{}", user("x", HASH), user("x", HASH)),
                "site[0].user[1].name",
                "also site[0].user[0].name",
            ),
            (format!("{S}{}", user("", HASH)), "site[0].user[0].name", "1 to 255"),
            (format!("{S}user = 5"), "site[0].user", "array of tables"),
            (
                format!("{S}{}password = \"x\"", user("x", HASH)),
                "site[0].user[0].password",
                "unknown",
            ),
        ];
        let cases: Vec<(&str, &str, &str)> =
            cases.iter().map(|(t, k, w)| (t.as_str(), *k, *w)).collect();
        assert_refused(&cases);
    }

    #[test]
    fn check_config_shows_user_origins() {
        let c = cfg(&with_users());
        let text = c.to_toml();
        let m = format!(
            "[{{ name = \"m1\", password_hash = \"{HASH}\" }}, {{ name = \"m2\", password_hash = \"{HASH}\" }}]"
        );
        for line in [
            format!("# user = {m}  # from master"),
            format!("user = [{{ name = \"b1\", password_hash = \"{HASH}\" }}]  # from site"),
            "user = []  # from site".to_owned(),
        ] {
            assert!(text.contains(&line), "missing {line:?} in\n{text}");
        }
        assert_eq!(cfg(&text), c, "{text}");
        // Hashes stay masked in the admin API's view.
        let json = c.to_masked_json().to_string();
        assert!(!json.contains(HASH), "{json}");
        let v = c.to_masked_json();
        assert_eq!(v.pointer("/site/1/user/0/name").and_then(|x| x.as_str()), Some("b1"), "{v}");
        assert_eq!(
            v.pointer("/site/1/user/0/password_hash").and_then(|x| x.as_str()),
            Some(crate::config::MASK)
        );
    }
}
