//! TOML text -> [`Config`], walking a `toml::Table` by hand so every error names its key.
//!
//! Why by hand rather than `#[derive(Deserialize)]`: serde's errors name the field but not
//! the path (`site[1].listen[0]`), cannot say "did you mean", and accept only one spelling
//! per type; sizes and durations here are integers *or* strings with units.
//! The readers of single values (string, count, size, duration, ...) are in `keyed.rs`,
//! shared with `parse_outbound.rs` and `admin.rs`.
//!
//! Order of checks: TOML syntax, then unknown keys of each table before its values, then
//! each value in file order of sections (root, limits, relay, connections, domains, smtp,
//! spool, sites), then cross-field rules (unique site names, no listen address twice).
//! The first error found is returned.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::{Table, Value};

use super::defaults::{
    LOG_LEVELS, MAX_COMMIT_DELAY_MS, MAX_MIN_DATA_RATE_BYTES_PER_S, MAX_SEGMENT_BYTES, MAX_WORKERS,
    MIN_SEGMENT_BYTES,
};
use super::keyed::{
    Parsed, U32_MAX, USIZE_MAX, count, duration_ms, each_key, join, nonzero, size, string, strings,
    tables, wrong_type,
};
use super::parse_outbound::{self, DELIVERY_KEYS, DNS_KEYS, DOMAIN_RULE_KEYS};
use super::units;
use super::values::{domain, listen_addr, network, site_name};
use super::{BareLineEnding, Config, ConfigError, Limits, Site, SystemDefaults};

/// Keys allowed at the top level.
const ROOT_KEYS: &[&str] = &[
    "hostname",
    "mailroot",
    "workers",
    "log_level",
    "limits",
    "relay",
    "connections",
    "domains",
    "smtp",
    "spool",
    "site",
    "domain",
    "hosts",
    "dns",
    "delivery",
    "admin",
    "auth",
    "user",
    "tls",
    "protocol_log",
    "event_log",
    "service",
];
/// Keys allowed in `[limits]`.
const LIMITS_KEYS: &[&str] = &[
    "max_message_size",
    "max_recipients",
    "max_messages_per_connection",
    "max_connections",
    "max_connections_per_ip",
    "command_timeout",
    "data_timeout",
    "min_data_rate",
    "max_errors",
    "min_free_disk",
    "shutdown_grace",
];
/// Keys allowed in `[relay]`.
const RELAY_KEYS: &[&str] = &[
    "allow",
    "smart_host",
    "smart_host_auth",
    "attempt_direct_first",
    "masquerade_domain",
    "max_hop_count",
    "send_ndr_copy_to",
];
/// Keys allowed in `[connections]`.
const CONNECTIONS_KEYS: &[&str] = &["allow", "deny"];
/// Keys allowed in `[domains]`.
const DOMAINS_KEYS: &[&str] = &["local", "aliases"];
/// Keys allowed in `[smtp]`.
const SMTP_KEYS: &[&str] = &["bare_line_ending"];
/// Keys allowed in `[spool]`.
const SPOOL_KEYS: &[&str] = &["segment_size", "commit_delay"];
/// Keys allowed in each `[[site]]`: its own (name, listeners, TLS, PROXY, protocol log),
/// then, from [`FIRST_OVERRIDE_KEY`] on, its overrides of the master properties
/// (`config::site`; the one list of them).
pub(super) const SITE_KEYS: &[&str] = &[
    "name",
    "listen",
    "tls_cert",
    "tls_key",
    "implicit_tls_listen",
    "require_tls",
    "proxy_protocol",
    "proxy_trusted",
    "protocol_log",
    "protocol_log_folder",
    // Overrides of the master properties (`site.rs`), from FIRST_OVERRIDE_KEY on.
    "hostname",
    "max_message_size",
    "max_recipients",
    "max_messages_per_connection",
    "max_errors",
    "command_timeout",
    "data_timeout",
    "relay_allow",
    "connection_allow",
    "connection_deny",
    "local_domains",
    "relay_authenticated",
    "drop_folder",
    "user",
];
/// Index in [`SITE_KEYS`] of the first override of a master property (`hostname`).
#[cfg(test)]
pub(super) const FIRST_OVERRIDE_KEY: usize = 10;

/// Every section with its keys, to tell the operator where a misplaced key belongs.
const SECTIONS: &[(&str, &[&str])] = &[
    ("limits", LIMITS_KEYS),
    ("relay", RELAY_KEYS),
    ("connections", CONNECTIONS_KEYS),
    ("domains", DOMAINS_KEYS),
    ("smtp", SMTP_KEYS),
    ("spool", SPOOL_KEYS),
    ("[site]", SITE_KEYS),
    ("[domain]", DOMAIN_RULE_KEYS),
    ("dns", DNS_KEYS),
    ("delivery", DELIVERY_KEYS),
    ("admin", super::admin::ADMIN_KEYS),
    ("auth", super::auth::AUTH_KEYS),
    ("[user]", super::auth::USER_KEYS),
    ("tls", super::tls::TLS_KEYS),
    ("protocol_log", super::protolog::PROTOCOL_LOG_KEYS),
    ("event_log", super::event_log::EVENT_LOG_KEYS),
    ("service", super::service::SERVICE_KEYS),
];

/// Largest edit distance for which an unknown key gets a "did you mean" hint.
const MAX_SUGGEST_DISTANCE: usize = 2;

/// Longest piece of the file quoted in a syntax error.
const MAX_SNIPPET_CHARS: usize = 40;

/// See [`Config::from_toml_str`].
pub(super) fn from_toml_str(text: &str, sys: &SystemDefaults) -> Parsed<Config> {
    let root: Table = text.parse().map_err(|e| syntax_error(text, &e))?;
    check_keys(&root, "", ROOT_KEYS)?;
    let mut cfg = super::defaults::embedded_default(sys);

    if let Some(v) = root.get("hostname") {
        cfg.hostname = domain(string(v, "hostname")?, "hostname")?;
    }
    if let Some(v) = root.get("mailroot") {
        cfg.mailroot = mailroot(v)?;
    }
    if let Some(v) = root.get("workers") {
        cfg.workers = workers(v)?;
    }
    if let Some(v) = root.get("log_level") {
        cfg.log_level = log_level(v)?;
    }
    if let Some(t) = section(&root, "limits", LIMITS_KEYS)? {
        limits(t, &mut cfg.limits)?;
    }
    if let Some(t) = section(&root, "relay", RELAY_KEYS)? {
        if let Some(v) = t.get("allow") {
            cfg.relay.allow = networks(v, "relay.allow")?;
        }
        parse_outbound::relay(t, &mut cfg.relay)?;
    }
    if let Some(t) = section(&root, "connections", CONNECTIONS_KEYS)? {
        if let Some(v) = t.get("allow") {
            cfg.connections.allow = networks(v, "connections.allow")?;
        }
        if let Some(v) = t.get("deny") {
            cfg.connections.deny = networks(v, "connections.deny")?;
        }
    }
    if let Some(t) = section(&root, "domains", DOMAINS_KEYS)? {
        if let Some(v) = t.get("local") {
            cfg.domains.local = local_domains(v, "domains.local")?;
        }
        parse_outbound::aliases(t, &mut cfg.domains)?;
    }
    if let Some(t) = section(&root, "smtp", SMTP_KEYS)?
        && let Some(v) = t.get("bare_line_ending")
    {
        cfg.smtp.bare_line_ending = bare_line_ending(v)?;
    }
    if let Some(t) = section(&root, "spool", SPOOL_KEYS)? {
        if let Some(v) = t.get("segment_size") {
            cfg.spool.segment_bytes = segment_size(v)?;
        }
        if let Some(v) = t.get("commit_delay") {
            cfg.spool.commit_delay_ms = commit_delay(v)?;
        }
    }
    if let Some(t) = section(&root, "tls", super::tls::TLS_KEYS)? {
        super::tls::tls(t, &mut cfg.tls)?;
    }
    if let Some(v) = root.get("site") {
        cfg.sites = sites(v, &cfg.tls)?;
    }
    if let Some(v) = root.get("domain") {
        cfg.domain_rules = parse_outbound::domain_rules(v, &cfg.domains)?;
    }
    if let Some(v) = root.get("hosts") {
        cfg.hosts = parse_outbound::hosts(v)?;
    }
    if let Some(t) = section(&root, "dns", DNS_KEYS)? {
        parse_outbound::dns(t, &mut cfg.dns)?;
    }
    if let Some(t) = section(&root, "delivery", DELIVERY_KEYS)? {
        parse_outbound::delivery(t, &mut cfg.delivery)?;
    }
    if let Some(t) = section(&root, "admin", super::admin::ADMIN_KEYS)? {
        super::admin::admin(t, &mut cfg.admin)?;
    }
    if let Some(t) = section(&root, "auth", super::auth::AUTH_KEYS)? {
        super::auth::auth(t, &mut cfg.auth)?;
    }
    if let Some(v) = root.get("user") {
        cfg.auth.users = super::auth::users(v, "user")?;
    }
    if let Some(t) = section(&root, "protocol_log", super::protolog::PROTOCOL_LOG_KEYS)? {
        super::protolog::protocol_log(t, &mut cfg.protocol_log)?;
    }
    if let Some(t) = section(&root, "event_log", super::event_log::EVENT_LOG_KEYS)? {
        super::event_log::event_log(t, &mut cfg.event_log)?;
    }
    if let Some(t) = section(&root, "service", super::service::SERVICE_KEYS)? {
        super::service::service(t, &mut cfg.service)?;
    }
    super::site::check_drop_folders(&cfg)?;
    Ok(cfg)
}

/// Turn a TOML syntax error into a [`ConfigError`] keyed by its position.
fn syntax_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let mut problem = format!("invalid TOML: {}", err.message().trim_end());
    let Some(span) = err.span() else {
        return ConfigError::new("(file)", problem);
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    // Quote the offending text (e.g. the duplicated key) when it is short and on one line.
    if let Some(snippet) = text
        .get(span)
        .filter(|s| !s.trim().is_empty() && s.len() <= MAX_SNIPPET_CHARS && !s.contains('\n'))
    {
        let _ = write!(problem, " (at `{}`)", snippet.escape_debug());
    }
    ConfigError::new(format!("line {line}, column {column}"), problem)
}

/// Fail on the first key of `table` not in `known`, with a hint where it might belong.
pub(super) fn check_keys(table: &Table, prefix: &str, known: &[&str]) -> Parsed<()> {
    let Some(unknown) = table.keys().find(|k| !known.contains(&k.as_str())) else {
        return Ok(());
    };
    let hint = if prefix.is_empty() && unknown == "listen" {
        "listen addresses belong in a [[site]] table with `name` and `listen`".to_owned()
    } else if let Some(near) = known
        .iter()
        .map(|k| (edit_distance(unknown, k), *k))
        .filter(|&(d, _)| d <= MAX_SUGGEST_DISTANCE)
        .min()
    {
        format!("did you mean `{}`?", near.1)
    } else if let Some((section, _)) = SECTIONS.iter().find(|(_, keys)| keys.contains(&&**unknown))
    {
        format!("`{unknown}` belongs in [{section}]")
    } else {
        format!("known keys here: {}", known.join(", "))
    };
    Err(ConfigError::new(join(prefix, unknown), format!("unknown key; {hint}")))
}

/// Levenshtein distance over bytes; keys are short ASCII identifiers.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.bytes().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The table at `root[name]` after checking its keys, if present.
pub(super) fn section<'t>(
    root: &'t Table,
    name: &str,
    known: &[&str],
) -> Parsed<Option<&'t Table>> {
    let Some(v) = root.get(name) else { return Ok(None) };
    let Value::Table(t) = v else {
        return Err(wrong_type(name, &format!("expected a table [{name}]"), v));
    };
    check_keys(t, name, known)?;
    Ok(Some(t))
}

/// `mailroot`: a non-empty path.
fn mailroot(v: &Value) -> Parsed<PathBuf> {
    let s = string(v, "mailroot")?;
    if s.is_empty() {
        return Err(ConfigError::new("mailroot", "must not be empty"));
    }
    if s.contains('\0') {
        return Err(ConfigError::new("mailroot", "must not contain a NUL character"));
    }
    Ok(PathBuf::from(s))
}

/// `workers`: 1..=MAX_WORKERS.
fn workers(v: &Value) -> Parsed<usize> {
    count(v, "workers", MAX_WORKERS as u64)
}

/// `log_level`: one of [`LOG_LEVELS`], any case; stored lower-case.
fn log_level(v: &Value) -> Parsed<String> {
    let s = string(v, "log_level")?.to_ascii_lowercase();
    if LOG_LEVELS.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(ConfigError::new("log_level", format!("must be one of {}", LOG_LEVELS.join(", "))))
    }
}

/// `[limits]`: each key present overrides its default.
fn limits(t: &Table, l: &mut Limits) -> Parsed<()> {
    each_key(t, "limits", |name, v, key| set_limit(l, name, v, key))
}

/// Set the `[limits]` key `name` (already checked) from `v`, reporting errors at `key`.
/// Also reads a `[[site]]`'s limit overrides, so they get the same syntax and bounds.
pub(super) fn set_limit(l: &mut Limits, name: &str, v: &Value, key: &str) -> Parsed<()> {
    match name {
        "max_message_size" => l.max_message_size_bytes = nonzero(size(v, key)?, key)?,
        "max_recipients" => l.max_recipients = count(v, key, USIZE_MAX)?,
        "max_messages_per_connection" => {
            l.max_messages_per_connection = count(v, key, U32_MAX)?;
        }
        "max_connections" => l.max_connections = count(v, key, USIZE_MAX)?,
        "max_connections_per_ip" => l.max_connections_per_ip = count(v, key, USIZE_MAX)?,
        "command_timeout" => l.command_timeout_ms = nonzero(duration_ms(v, key)?, key)?,
        "data_timeout" => l.data_timeout_ms = nonzero(duration_ms(v, key)?, key)?,
        "min_data_rate" => l.min_data_rate_bytes_per_s = min_data_rate(v, key)?,
        "max_errors" => l.max_errors = count(v, key, U32_MAX)?,
        "min_free_disk" => l.min_free_disk_bytes = size(v, key)?,
        "shutdown_grace" => l.shutdown_grace_ms = duration_ms(v, key)?,
        // check_keys ran on the table before: every key is one of LIMITS_KEYS.
        _ => unreachable!("limits key {name} passed check_keys"),
    }
    Ok(())
}

/// `limits.min_data_rate`: bytes per second (an integer or a size), 0 = off.
fn min_data_rate(v: &Value, key: &str) -> Parsed<u64> {
    let n = size(v, key)?;
    if n > MAX_MIN_DATA_RATE_BYTES_PER_S {
        let max = MAX_MIN_DATA_RATE_BYTES_PER_S;
        return Err(ConfigError::new(key, format!("must be at most {max} (got {n})")));
    }
    Ok(n)
}

/// An array of networks.
fn networks(v: &Value, key: &str) -> Parsed<Vec<ipnet::IpNet>> {
    strings(v, key)?.into_iter().map(|(k, s)| network(s, &k)).collect()
}

/// `[domains] local` (or a site's `local_domains` at `key`): valid, lower-cased, unique.
pub(super) fn local_domains(v: &Value, key: &str) -> Parsed<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (k, s) in strings(v, key)? {
        let d = domain(s, &k)?.to_ascii_lowercase();
        if let Some(j) = out.iter().position(|o| *o == d) {
            return Err(ConfigError::new(
                k,
                format!("duplicate local domain {d:?} (also {key}[{j}])"),
            ));
        }
        out.push(d);
    }
    Ok(out)
}

/// `[smtp] bare_line_ending`.
fn bare_line_ending(v: &Value) -> Parsed<BareLineEnding> {
    const KEY: &str = "smtp.bare_line_ending";
    match string(v, KEY)? {
        "normalize" => Ok(BareLineEnding::Normalize),
        "reject" => Ok(BareLineEnding::Reject),
        other => Err(ConfigError::new(
            KEY,
            format!("expected \"normalize\" or \"reject\", found {other:?}"),
        )),
    }
}

/// `[spool] segment_size`: MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES.
fn commit_delay(v: &Value) -> Parsed<u64> {
    const KEY: &str = "spool.commit_delay";
    let ms = duration_ms(v, KEY)?;
    if ms <= MAX_COMMIT_DELAY_MS {
        Ok(ms)
    } else {
        Err(ConfigError::new(KEY, format!("must be at most {MAX_COMMIT_DELAY_MS}ms (got {ms}ms)")))
    }
}

fn segment_size(v: &Value) -> Parsed<u64> {
    const KEY: &str = "spool.segment_size";
    let n = size(v, KEY)?;
    if (MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES).contains(&n) {
        Ok(n)
    } else {
        Err(ConfigError::new(
            KEY,
            format!(
                "must be between {} and {} (got {n} bytes)",
                units::format_size(MIN_SEGMENT_BYTES).trim_matches('"'),
                units::format_size(MAX_SEGMENT_BYTES).trim_matches('"'),
            ),
        ))
    }
}

/// `[[site]]`: at least one; unique names; no listen address twice in the whole file.
fn sites(v: &Value, tls: &super::TlsConfig) -> Parsed<Vec<Site>> {
    let items = tables(v, "site")?;
    if items.len() == 0 {
        return Err(ConfigError::new("site", "at least one [[site]] is required"));
    }
    let mut out: Vec<Site> = Vec::with_capacity(items.len());
    let mut seen: HashMap<SocketAddr, String> = HashMap::new();
    for item in items {
        let (prefix, t) = item?;
        check_keys(t, &prefix, SITE_KEYS)?;
        let name_key = join(&prefix, "name");
        let name = match t.get("name") {
            Some(v) => site_name(string(v, &name_key)?, &name_key)?,
            None => return Err(ConfigError::new(name_key, "missing; every [[site]] needs a name")),
        };
        if let Some(j) = out.iter().position(|s| s.name == name) {
            return Err(ConfigError::new(
                name_key,
                format!("duplicate site name {name:?} (also site[{j}].name)"),
            ));
        }
        let listen_key = join(&prefix, "listen");
        let Some(lv) = t.get("listen") else {
            return Err(ConfigError::new(
                listen_key,
                "missing; every [[site]] needs a listen list, e.g. [\"127.0.0.1:2525\"]",
            ));
        };
        let mut listen = Vec::new();
        for (k, s) in strings(lv, &listen_key)? {
            let addr = listen_addr(s, &k)?;
            if let Some(other) = seen.get(&addr) {
                return Err(ConfigError::new(k, format!("{addr} is already listed at {other}")));
            }
            seen.insert(addr, k);
            listen.push(addr);
        }
        if listen.is_empty() {
            return Err(ConfigError::new(listen_key, "must list at least one address"));
        }
        let tls = super::tls::site_tls(t, &prefix, tls, &mut seen)?;
        let proxy = super::proxy::site_proxy(t, &prefix)?;
        let protocol_log = super::protolog::site_protocol_log(t, &prefix)?;
        let overrides = super::site::site_overrides(t, &prefix)?;
        out.push(Site { name, listen, tls, proxy, protocol_log, overrides });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::config::test_support::assert_refused;

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(4)
    }

    /// One line per bad configuration: (TOML text, key named in the error, words in the problem).
    #[test]
    fn bad_configs_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("workers = 0", "workers", "> 0"),
            ("workers = 1025", "workers", "at most 1024"),
            ("workers = -1", "workers", "negative"),
            ("workers = \"4\"", "workers", "found a string"),
            ("wrokers = 4", "wrokers", "did you mean `workers`"),
            ("max_connections = 4", "max_connections", "belongs in [limits]"),
            ("listen = [\"127.0.0.1:25\"]", "listen", "[[site]]"),
            ("bogus = 1", "bogus", "known keys"),
            ("hostname = \"bad_host\"", "hostname", "not a valid domain"),
            ("hostname = \"\"", "hostname", "not a valid domain"),
            ("hostname = \"-a.example\"", "hostname", "not a valid domain"),
            ("hostname = \"192.0.2.1\"", "hostname", "IP address"),
            ("hostname = \"bücher.example\"", "hostname", "A-label"),
            ("hostname = 5", "hostname", "expected a string"),
            ("mailroot = \"\"", "mailroot", "empty"),
            ("log_level = \"loud\"", "log_level", "one of"),
            ("limits = 5", "limits", "expected a table"),
            ("[limits]\nmax_connections = 0", "limits.max_connections", "> 0"),
            ("[limits]\nmax_conections = 5", "limits.max_conections", "did you mean"),
            ("[limits]\nmax_recipients = 0", "limits.max_recipients", "> 0"),
            ("[limits]\nmax_errors = 0", "limits.max_errors", "> 0"),
            ("[limits]\nmax_errors = 5000000000", "limits.max_errors", "at most"),
            ("[limits]\nmax_connections_per_ip = 0", "limits.max_connections_per_ip", "> 0"),
            (
                "[limits]\nmax_messages_per_connection = 0",
                "limits.max_messages_per_connection",
                ">",
            ),
            ("[limits]\nmax_message_size = 0", "limits.max_message_size", "> 0"),
            ("[limits]\nmax_message_size = \"10M\"", "limits.max_message_size", "invalid size"),
            ("[limits]\nmax_message_size = \"ten\"", "limits.max_message_size", "10MiB"),
            ("[limits]\nmax_message_size = 1.5", "limits.max_message_size", "found a float"),
            ("[limits]\nmax_message_size = -1", "limits.max_message_size", "negative"),
            ("[limits]\nmin_free_disk = \"99999999999TiB\"", "limits.min_free_disk", "too large"),
            ("[limits]\ncommand_timeout = 0", "limits.command_timeout", "> 0"),
            ("[limits]\ncommand_timeout = \"5 minutes\"", "limits.command_timeout", "invalid"),
            ("[limits]\ndata_timeout = \"0s\"", "limits.data_timeout", "> 0"),
            ("[limits]\ndata_timeout = true", "limits.data_timeout", "found a boolean"),
            ("[limits]\nmin_data_rate = 100000001", "limits.min_data_rate", "at most 100000000"),
            ("[limits]\nmin_data_rate = -5", "limits.min_data_rate", "negative"),
            ("[limits]\nshutdown_grace = \"1y\"", "limits.shutdown_grace", "invalid duration"),
            ("[relay]\nallow = [\"10.0.0.0/33\"]", "relay.allow[0]", "invalid network"),
            ("[relay]\nallow = [\"::1\", \"nope\"]", "relay.allow[1]", "invalid network"),
            ("[relay]\nallow = [\"10.1.2.3/8\"]", "relay.allow[0]", "10.0.0.0/8"),
            ("[relay]\nallow = \"10.0.0.0/8\"", "relay.allow", "array of strings"),
            ("[relay]\nallow = [1]", "relay.allow[0]", "expected a string"),
            ("[relay]\ndeny = []", "relay.deny", "unknown key"),
            ("[connections]\ndeny = [\"2001:db8::/129\"]", "connections.deny[0]", "invalid"),
            ("[connections]\nallow = [\"localhost\"]", "connections.allow[0]", "invalid"),
            ("[domains]\nlocal = [\"ok.example\", \"a..b\"]", "domains.local[1]", "not a valid"),
            ("[domains]\nlocal = [\"A.example\", \"a.example.\"]", "domains.local[1]", "dup"),
            ("[domains]\nlocal = [\"[127.0.0.1]\"]", "domains.local[0]", "IP address"),
            ("[smtp]\nbare_line_ending = \"fix\"", "smtp.bare_line_ending", "\"reject\""),
            ("[spool]\ncommit_delay = \"1s\"", "spool.commit_delay", "at most 100ms"),
            ("[spool]\ncommit_delay = \"soon\"", "spool.commit_delay", "invalid"),
            ("[smtp]\nbare_lf = \"reject\"", "smtp.bare_lf", "unknown key"),
            ("[spool]\nsegment_size = \"1KiB\"", "spool.segment_size", "between 1MiB and 4GiB"),
            ("[spool]\nsegment_size = \"5GiB\"", "spool.segment_size", "between"),
            ("[spool]\nsegment_bytes = \"5MiB\"", "spool.segment_bytes", "segment_size"),
            ("site = []", "site", "at least one"),
            ("[site]\nname = \"a\"", "site", "array of tables"),
            ("[[site]]\nlisten = [\"127.0.0.1:25\"]", "site[0].name", "missing"),
            ("[[site]]\nname = \"a\"", "site[0].listen", "missing"),
            ("[[site]]\nname = \"a\"\nlisten = []", "site[0].listen", "at least one"),
            ("[[site]]\nname = \"\"\nlisten = [\"127.0.0.1:25\"]", "site[0].name", "empty"),
            ("[[site]]\nname = \"a b\"\nlisten = [\"127.0.0.1:25\"]", "site[0].name", "invalid"),
            ("[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1\"]", "site[0].listen[0]", "IP:port"),
            ("[[site]]\nname = \"a\"\nlisten = [\"::1:25\"]", "site[0].listen[0]", "[::1]:2525"),
            ("[[site]]\nname = \"a\"\nlisten = [\"localhost:25\"]", "site[0].listen[0]", "IP:port"),
            ("[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:0\"]", "site[0].listen[0]", "port 0"),
            ("[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:99999\"]", "site[0].listen[0]", ""),
            ("[[site]]\nname = \"a\"\nlisten = \"127.0.0.1:25\"", "site[0].listen", "array"),
            ("[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\nport = 25", "site[0].port", ""),
            (
                "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
                 [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:26\"]",
                "site[1].name",
                "duplicate site name",
            ),
            (
                "[[site]]\nname = \"a\"\nlisten = [\"[::1]:25\", \"127.0.0.1:25\"]\n\
                 [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:25\"]",
                "site[1].listen[0]",
                "already listed at site[0].listen[1]",
            ),
            (
                "[[site]]\nname = \"a\"\nlisten = [\"[::1]:25\", \"[0::1]:25\"]",
                "site[0].listen[1]",
                "already listed",
            ),
            ("workers = ", "line 1, column 11", "invalid TOML"),
            ("workers = 1\nworkers = 2", "line 2, column 1", "duplicate key (at `workers`)"),
            ("[limits]\n[limits]", "line 2, column 2", "duplicate key (at `limits`)"),
        ];
        assert_refused(cases);
    }

    /// One line per good configuration: (TOML text, check on the result).
    #[test]
    fn good_configs() {
        type Check = fn(&Config) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |c| *c == Config::embedded_default(&sys())),
            ("hostname = \"MX.Example.com.\"", |c| c.hostname == "MX.Example.com"),
            ("hostname = \"localhost\"", |c| c.hostname == "localhost"),
            ("workers = 1024", |c| c.workers == 1024),
            ("log_level = \"DEBUG\"", |c| c.log_level == "debug"),
            ("mailroot = \"/var/spool/mailroot\"", |c| {
                c.mailroot == std::path::Path::new("/var/spool/mailroot")
            }),
            ("[limits]\nmax_message_size = \"512KB\"", |c| {
                c.limits.max_message_size_bytes == 512_000
            }),
            ("[limits]\nmax_message_size = 2048", |c| c.limits.max_message_size_bytes == 2048),
            ("[limits]\ncommand_timeout = 30", |c| c.limits.command_timeout_ms == 30_000),
            ("[limits]\ndata_timeout = \"10min\"", |c| c.limits.data_timeout_ms == 600_000),
            ("", |c| c.limits.min_data_rate_bytes_per_s == 500),
            ("[limits]\nmin_data_rate = 0", |c| c.limits.min_data_rate_bytes_per_s == 0),
            ("[limits]\nmin_data_rate = \"1KiB\"", |c| c.limits.min_data_rate_bytes_per_s == 1024),
            ("[limits]\nshutdown_grace = 0", |c| c.limits.shutdown_grace_ms == 0),
            ("[spool]\ncommit_delay = 0", |c| c.spool.commit_delay_ms == 0),
            ("[spool]\ncommit_delay = \"5ms\"", |c| c.spool.commit_delay_ms == 5),
            ("", |c| c.spool.commit_delay_ms == 1),
            ("[limits]\nmin_free_disk = 0", |c| c.limits.min_free_disk_bytes == 0),
            ("[limits]\nmax_errors = 3", |c| {
                c.limits.max_errors == 3 && c.limits.max_recipients == 100
            }),
            ("[relay]\nallow = []", |c| c.relay.allow.is_empty()),
            ("[relay]\nallow = [\"192.0.2.7\"]", |c| {
                c.relay.allow[0].to_string() == "192.0.2.7/32"
            }),
            ("[relay]\nallow = [\"2001:db8::1\"]", |c| c.relay.allow[0].prefix_len() == 128),
            ("[connections]\ndeny = [\"10.0.0.0/8\"]", |c| c.connections.deny.len() == 1),
            ("[domains]\nlocal = [\"Example.COM.\", \"b.example\"]", |c| {
                c.domains.local == ["example.com", "b.example"]
            }),
            ("[domains]\nlocal = []", |c| c.domains.local.is_empty()),
            ("[smtp]\nbare_line_ending = \"reject\"", |c| {
                c.smtp.bare_line_ending == BareLineEnding::Reject
            }),
            ("[spool]\nsegment_size = \"1MiB\"", |c| c.spool.segment_bytes == 1 << 20),
            ("[[site]]\nname = \"v6\"\nlisten = [\"[::1]:2525\", \"0.0.0.0:25\"]", |c| {
                c.sites.len() == 1 && c.sites[0].listen.len() == 2 && c.sites[0].listen[0].is_ipv6()
            }),
            ("site = [{ name = \"inline\", listen = [\"127.0.0.1:25\"] }]", |c| {
                c.sites[0].name == "inline"
            }),
            // The same port on a wildcard and a specific address is allowed: the specific
            // bind wins for its address (SO_REUSEPORT lookup scoring).
            (
                "[[site]]\nname = \"a\"\nlisten = [\"0.0.0.0:25\"]\n[[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:25\"]",
                |c| c.sites.len() == 2,
            ),
        ];
        for &(text, check) in cases {
            let cfg =
                Config::from_toml_str(text, &sys()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(check(&cfg), "{text:?}: {cfg:?}");
        }
    }

    #[test]
    fn edit_distances() {
        let cases: &[(&str, &str, usize)] = &[
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "abd", 1),
            ("wrokers", "workers", 2),
            ("", "ab", 2),
        ];
        for &(a, b, d) in cases {
            assert_eq!(edit_distance(a, b), d, "{a} {b}");
        }
    }

    #[test]
    fn error_display() {
        let err = Config::from_toml_str("[limits]\nmax_connections = 0", &sys()).expect_err("bad");
        assert_eq!(err.to_string(), "config error at `limits.max_connections`: must be > 0");
    }
}
