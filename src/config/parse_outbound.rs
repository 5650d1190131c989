//! TOML -> the outbound parts of [`Config`]: `[relay]` delivery keys, `[domains] aliases`,
//! `[[domain]]`, `[hosts]`, `[dns]` and `[delivery]`. Same rules as `parse.rs`: every
//! error names its key path (`domain[2].smart_host`, `hosts."db.corp"[1]`).
//!
//! Trust and layer: see `config/mod.rs` (operator text, no I/O).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use toml::{Table, Value};

use super::defaults::DEFAULT_DNS_PORT;
use super::keyed::{
    AtKey, Parsed, U32_MAX, USIZE_MAX, boolean, count, duration_ms, each_key, join, port,
    positive_ms, string, strings, tables, wrong_type,
};
use super::outbound::{
    ClientAuth, DeliveryConfig, DnsConfig, DomainPattern, DomainRule, HostsConfig, NextHop,
    SmartHostAuth, TlsPolicy,
};
use super::parse::check_keys;
use super::values::domain;
use super::{ConfigError, DomainsConfig, RelayConfig};

/// Keys allowed in each `[[domain]]`.
pub(super) const DOMAIN_RULE_KEYS: &[&str] =
    &["name", "relay", "smart_host", "helo", "port", "drop", "tls"];
/// Keys allowed in `[dns]`.
pub(super) const DNS_KEYS: &[&str] = &["servers", "timeout", "attempts"];
/// Largest `[delivery] active_limit`: ten million messages in memory (tens of GiB) is
/// beyond any machine this runs on; a larger number is a typo.
const MAX_ACTIVE_LIMIT: u64 = 10_000_000;
/// Largest `[delivery] local_concurrency` (threads).
const MAX_LOCAL_CONCURRENCY: u64 = 256;
/// Keys allowed in `[delivery]`.
pub(super) const DELIVERY_KEYS: &[&str] = &[
    "retry",
    "delay_notify",
    "expire",
    "max_messages_per_connection",
    "max_connections",
    "max_connections_per_domain",
    "active_limit",
    "local_concurrency",
    "connect_timeout",
    "greeting_timeout",
    "mail_timeout",
    "rcpt_timeout",
    "data_init_timeout",
    "data_block_timeout",
    "data_term_timeout",
    "port",
    "hold",
    "tls",
    "tls_ca_file",
];
/// Keys allowed in `[relay] smart_host_auth`.
const SMART_HOST_AUTH_KEYS: &[&str] = &["user", "password", "password_file"];

/// Longest `delivery.retry` list: more steps than this is a typo, not a schedule.
const MAX_RETRY_STEPS: usize = 64;

/// A next hop (`"host"`, `"host:port"`, `"[IP]:port"`).
fn next_hop(v: &Value, key: &str) -> Parsed<NextHop> {
    NextHop::parse(string(v, key)?).at_key(key)
}

/// A mailbox `local@domain` (for `send_ndr_copy_to`): non-empty local part without
/// spaces, angle brackets or controls, and a valid domain.
fn mailbox(v: &Value, key: &str) -> Parsed<String> {
    let s = string(v, key)?;
    let bad =
        || ConfigError::new(key, format!("{s:?} is not a mailbox like \"postmaster@example.com\""));
    let (local, dom) = s.rsplit_once('@').ok_or_else(bad)?;
    let local_ok = !local.is_empty()
        && local.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'@'));
    if !local_ok {
        return Err(bad());
    }
    let dom = domain(dom, key)?.to_ascii_lowercase();
    Ok(format!("{local}@{dom}"))
}

/// The delivery keys of `[relay]` (`allow` is read by `parse.rs`).
pub(super) fn relay(t: &Table, r: &mut RelayConfig) -> Parsed<()> {
    each_key(t, "relay", |name, v, key| {
        match name {
            "allow" => {}
            "smart_host" => r.smart_host = Some(next_hop(v, key)?),
            "attempt_direct_first" => r.attempt_direct_first = boolean(v, key)?,
            "masquerade_domain" => {
                r.masquerade_domain = Some(domain(string(v, key)?, key)?.to_ascii_lowercase());
            }
            "max_hop_count" => r.max_hop_count = count(v, key, U32_MAX)?,
            "send_ndr_copy_to" => r.send_ndr_copy_to = Some(mailbox(v, key)?),
            "smart_host_auth" => r.smart_host_auth = Some(smart_host_auth(v, key)?),
            // check_keys ran on this table before: every key is one of RELAY_KEYS.
            _ => unreachable!("relay key {name} passed check_keys"),
        }
        Ok(())
    })?;
    if r.smart_host_auth.is_some() && r.smart_host.is_none() {
        return Err(ConfigError::new(
            "relay.smart_host_auth",
            "needs relay.smart_host (the host to authenticate to)",
        ));
    }
    if r.attempt_direct_first && r.smart_host.is_none() {
        return Err(ConfigError::new(
            "relay.attempt_direct_first",
            "needs relay.smart_host (the host to fall back to)",
        ));
    }
    Ok(())
}

/// A TLS policy word.
fn tls_policy(v: &Value, key: &str) -> Parsed<TlsPolicy> {
    let s = string(v, key)?;
    TlsPolicy::from_word(s).ok_or_else(|| {
        ConfigError::new(
            key,
            format!(
                "unknown TLS policy {s:?}: expected \"none\", \"may\", \"encrypt\" or \"verify\""
            ),
        )
    })
}

/// `[relay] smart_host_auth = { user = "...", password = "..." | password_file = "..." }`.
/// The password file is read later, by `Config::read_password_files`.
fn smart_host_auth(v: &Value, key: &str) -> Parsed<SmartHostAuth> {
    let Value::Table(t) = v else {
        return Err(wrong_type(
            key,
            "expected a table like { user = \"relay\", password_file = \"/etc/mailroot/pw\" }",
            v,
        ));
    };
    check_keys(t, key, SMART_HOST_AUTH_KEYS)?;
    let user_key = join(key, "user");
    let user = match t.get("user") {
        Some(u) => string(u, &user_key)?,
        None => return Err(ConfigError::new(user_key, "missing; the user name to log in as")),
    };
    if user.is_empty() || user.chars().any(char::is_control) {
        return Err(ConfigError::new(user_key, "must be non-empty, without control characters"));
    }
    let (password, password_file) = match (t.get("password"), t.get("password_file")) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                join(key, "password_file"),
                "give either password or password_file, not both",
            ));
        }
        (Some(p), None) => {
            let pkey = join(key, "password");
            let p = string(p, &pkey)?;
            if p.is_empty() || p.contains('\0') {
                return Err(ConfigError::new(pkey, "must be non-empty, without NUL"));
            }
            (p.to_owned(), None)
        }
        (None, Some(f)) => {
            let fkey = join(key, "password_file");
            let f = string(f, &fkey)?;
            if f.is_empty() || f.contains('\0') {
                return Err(ConfigError::new(fkey, "must be a non-empty path"));
            }
            (String::new(), Some(PathBuf::from(f)))
        }
        (None, None) => {
            return Err(ConfigError::new(key, "needs password or password_file"));
        }
    };
    let credentials = ClientAuth { user: user.to_owned(), password };
    Ok(SmartHostAuth { credentials, password_file })
}

/// `[domains] aliases` (after `local` was read): valid, lower case, unique, not local.
pub(super) fn aliases(t: &Table, d: &mut DomainsConfig) -> Parsed<()> {
    const KEY: &str = "domains.aliases";
    let Some(v) = t.get("aliases") else { return Ok(()) };
    let mut out: Vec<String> = Vec::new();
    for (k, s) in strings(v, KEY)? {
        let a = domain(s, &k)?.to_ascii_lowercase();
        if let Some(j) = out.iter().position(|o| *o == a) {
            return Err(ConfigError::new(k, format!("duplicate alias {a:?} (also {KEY}[{j}])")));
        }
        if let Some(j) = d.local.iter().position(|l| *l == a) {
            return Err(ConfigError::new(
                k,
                format!("{a:?} is a local domain (domains.local[{j}]), not an alias"),
            ));
        }
        out.push(a);
    }
    if !out.is_empty() && d.local.is_empty() {
        return Err(ConfigError::new(KEY, "aliases need a local domain to map to (domains.local)"));
    }
    d.aliases = out;
    Ok(())
}

/// A `[[domain]] name`: `"example.com"` or `"*.example.com"`.
fn pattern(v: &Value, key: &str) -> Parsed<DomainPattern> {
    let s = string(v, key)?;
    match s.strip_prefix("*.") {
        Some(rest) => Ok(DomainPattern::Wildcard(domain(rest, key)?.to_ascii_lowercase())),
        None if s.contains('*') => Err(ConfigError::new(
            key,
            format!(
                "{s:?}: a wildcard is only allowed as the whole first label, \"*.example.com\""
            ),
        )),
        None => Ok(DomainPattern::Exact(domain(s, key)?.to_ascii_lowercase())),
    }
}

/// `[[domain]]` tables, after `[domains]` was read (a `drop` folder must belong to a
/// local domain).
pub(super) fn domain_rules(v: &Value, local: &DomainsConfig) -> Parsed<Vec<DomainRule>> {
    let items = tables(v, "domain")?;
    let mut out: Vec<DomainRule> = Vec::with_capacity(items.len());
    for item in items {
        let (prefix, t) = item?;
        check_keys(t, &prefix, DOMAIN_RULE_KEYS)?;
        let name_key = join(&prefix, "name");
        let Some(nv) = t.get("name") else {
            return Err(ConfigError::new(name_key, "missing; every [[domain]] needs a name"));
        };
        let pattern = pattern(nv, &name_key)?;
        if let Some(j) = out.iter().position(|r| r.pattern == pattern) {
            return Err(ConfigError::new(
                name_key,
                format!("duplicate domain rule {pattern} (also domain[{j}].name)"),
            ));
        }
        let mut rule = DomainRule {
            pattern,
            relay: false,
            smart_host: None,
            helo: false,
            port: None,
            drop: None,
            tls: None,
        };
        each_key(t, &prefix, |name, v, key| {
            match name {
                "name" => {}
                "relay" => rule.relay = boolean(v, key)?,
                "smart_host" => rule.smart_host = Some(next_hop(v, key)?),
                "helo" => rule.helo = boolean(v, key)?,
                "port" => rule.port = Some(port(v, key)?),
                "drop" => rule.drop = Some(drop_dir(v, key, &rule.pattern, local)?),
                "tls" => rule.tls = Some(tls_policy(v, key)?),
                // check_keys ran on this table before.
                _ => unreachable!("domain key {name} passed check_keys"),
            }
            Ok(())
        })?;
        out.push(rule);
    }
    Ok(out)
}

/// `[[domain]] drop`: a non-empty path, on a rule that matches a local domain.
fn drop_dir(v: &Value, key: &str, pattern: &DomainPattern, d: &DomainsConfig) -> Parsed<PathBuf> {
    let s = string(v, key)?;
    if s.is_empty() || s.contains('\0') {
        return Err(ConfigError::new(key, "must be a non-empty path"));
    }
    let covers_local = d.local.iter().chain(&d.aliases).any(|l| pattern.match_rank(l).is_some());
    if !covers_local {
        return Err(ConfigError::new(
            key,
            format!(
                "{pattern} matches no local domain (domains.local); a drop folder is for local mail"
            ),
        ));
    }
    Ok(PathBuf::from(s))
}

/// `[hosts]`: `"name" = ["IP", ...]`.
pub(super) fn hosts(v: &Value) -> Parsed<HostsConfig> {
    let Value::Table(t) = v else {
        return Err(wrong_type("hosts", "expected a table [hosts]", v));
    };
    let mut out = HostsConfig::new();
    for (name, list) in t {
        let key = format!("hosts.{}", toml::Value::String(name.clone()));
        let host = domain(name, &key)?.to_ascii_lowercase();
        if out.contains_key(&host) {
            return Err(ConfigError::new(key, format!("{host:?} is listed twice")));
        }
        let mut addrs = Vec::new();
        for (k, s) in strings(list, &key)? {
            let ip: IpAddr = s.parse().map_err(|_| {
                ConfigError::new(&k, format!("invalid IP address {s:?} (no port, no brackets)"))
            })?;
            addrs.push(ip);
        }
        if addrs.is_empty() {
            return Err(ConfigError::new(key, "must list at least one address"));
        }
        out.insert(host, addrs);
    }
    Ok(out)
}

/// `[dns]`.
pub(super) fn dns(t: &Table, d: &mut DnsConfig) -> Parsed<()> {
    each_key(t, "dns", |name, v, key| {
        match name {
            "servers" => {
                d.servers = strings(v, key)?
                    .into_iter()
                    .map(|(k, s)| dns_server(s, &k))
                    .collect::<Parsed<_>>()?;
            }
            "timeout" => d.timeout_ms = positive_ms(v, key)?,
            "attempts" => d.attempts = count(v, key, U32_MAX)?,
            _ => unreachable!("dns key {name} passed check_keys"),
        }
        Ok(())
    })
}

/// A name server: `IP`, `IP:port` or `[IPv6]:port`.
fn dns_server(s: &str, key: &str) -> Parsed<SocketAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DEFAULT_DNS_PORT));
    }
    match s.parse::<SocketAddr>() {
        Ok(a) if a.port() != 0 => Ok(a),
        _ => Err(ConfigError::new(
            key,
            format!(
                "invalid name server {s:?}: expected \"IP\" or \"IP:port\", e.g. \"127.0.0.1:5353\""
            ),
        )),
    }
}

/// `[delivery]`.
pub(super) fn delivery(t: &Table, d: &mut DeliveryConfig) -> Parsed<()> {
    each_key(t, "delivery", |name, v, key| {
        match name {
            "retry" => d.retry_ms = retry(v, key)?,
            "delay_notify" => d.delay_notify_ms = duration_ms(v, key)?,
            "expire" => d.expire_ms = positive_ms(v, key)?,
            "max_messages_per_connection" => {
                d.max_messages_per_connection = count(v, key, U32_MAX)?
            }
            "max_connections" => d.max_connections = count(v, key, USIZE_MAX)?,
            "max_connections_per_domain" => {
                d.max_connections_per_domain = count(v, key, USIZE_MAX)?
            }
            "active_limit" => d.active_limit = count(v, key, MAX_ACTIVE_LIMIT)?,
            "local_concurrency" => d.local_concurrency = count(v, key, MAX_LOCAL_CONCURRENCY)?,
            "connect_timeout" => d.connect_timeout_ms = positive_ms(v, key)?,
            "greeting_timeout" => d.greeting_timeout_ms = positive_ms(v, key)?,
            "mail_timeout" => d.mail_timeout_ms = positive_ms(v, key)?,
            "rcpt_timeout" => d.rcpt_timeout_ms = positive_ms(v, key)?,
            "data_init_timeout" => d.data_init_timeout_ms = positive_ms(v, key)?,
            "data_block_timeout" => d.data_block_timeout_ms = positive_ms(v, key)?,
            "data_term_timeout" => d.data_term_timeout_ms = positive_ms(v, key)?,
            "port" => d.port = port(v, key)?,
            "hold" => d.hold = boolean(v, key)?,
            "tls" => d.tls = tls_policy(v, key)?,
            "tls_ca_file" => {
                let f = string(v, key)?;
                if f.is_empty() || f.contains('\0') {
                    return Err(ConfigError::new(key, "must be a non-empty path"));
                }
                d.tls_ca_file = Some(PathBuf::from(f));
            }
            _ => unreachable!("delivery key {name} passed check_keys"),
        }
        Ok(())
    })
}

/// `delivery.retry`: 1..=MAX_RETRY_STEPS durations, each > 0 (integers are seconds).
fn retry(v: &Value, key: &str) -> Parsed<Vec<u64>> {
    let Value::Array(items) = v else {
        return Err(wrong_type(key, "expected an array of durations like [\"15m\", \"30m\"]", v));
    };
    if items.is_empty() {
        return Err(ConfigError::new(key, "must list at least one interval"));
    }
    if items.len() > MAX_RETRY_STEPS {
        return Err(ConfigError::new(key, format!("at most {MAX_RETRY_STEPS} intervals")));
    }
    items.iter().enumerate().map(|(i, item)| positive_ms(item, &format!("{key}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    use super::super::{Config, SystemDefaults};
    use crate::config::test_support::assert_refused;

    fn sys() -> SystemDefaults {
        crate::config::test_support::sys(4)
    }

    /// One line per bad configuration: (TOML text, key named in the error, words in the problem).
    #[test]
    fn bad_outbound_configs_name_their_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("[relay]\nsmart_host = \"10.1.2.3\"", "relay.smart_host", "[10.1.2.3]"),
            ("[relay]\nsmart_host = \"[10.1.2.3]:0\"", "relay.smart_host", "invalid next hop"),
            ("[relay]\nsmart_host = \"[nope]\"", "relay.smart_host", "invalid next hop"),
            ("[relay]\nsmart_host = 5", "relay.smart_host", "expected a string"),
            ("[relay]\nattempt_direct_first = true", "relay.attempt_direct_first", "smart_host"),
            ("[relay]\nattempt_direct_first = 1", "relay.attempt_direct_first", "true or false"),
            ("[relay]\nmasquerade_domain = \"a..b\"", "relay.masquerade_domain", "not a valid"),
            ("[relay]\nmax_hop_count = 0", "relay.max_hop_count", "> 0"),
            ("[relay]\nsend_ndr_copy_to = \"nobody\"", "relay.send_ndr_copy_to", "mailbox"),
            ("[relay]\nsend_ndr_copy_to = \"<a@b.c>\"", "relay.send_ndr_copy_to", "mailbox"),
            ("[relay]\nsend_ndr_copy_to = \"a@b_c\"", "relay.send_ndr_copy_to", "not a valid"),
            ("[relay]\nsmarthost = \"a\"", "relay.smarthost", "did you mean `smart_host`"),
            ("[domains]\naliases = [\"a.example\", \"A.example\"]", "domains.aliases[1]", "dup"),
            ("[domains]\naliases = [\"localhost\"]", "domains.aliases[0]", "is a local domain"),
            ("[domains]\nlocal = []\naliases = [\"a.example\"]", "domains.aliases", "need a local"),
            ("[domains]\naliases = \"a.example\"", "domains.aliases", "array of strings"),
            ("[domain]\nname = \"a\"", "domain", "array of tables"),
            ("[[domain]]\nrelay = true", "domain[0].name", "missing"),
            ("[[domain]]\nname = \"a.*.example\"", "domain[0].name", "wildcard"),
            ("[[domain]]\nname = \"*\"", "domain[0].name", "wildcard"),
            ("[[domain]]\nname = \"*.\"", "domain[0].name", "not a valid"),
            ("[[domain]]\nname = \"a\"\n[[domain]]\nname = \"A.\"", "domain[1].name", "duplicate"),
            ("[[domain]]\nname = \"a\"\nrelay = \"yes\"", "domain[0].relay", "true or false"),
            ("[[domain]]\nname = \"a\"\nhelo = 1", "domain[0].helo", "true or false"),
            ("[[domain]]\nname = \"a\"\nport = 0", "domain[0].port", "> 0"),
            ("[[domain]]\nname = \"a\"\nport = 65536", "domain[0].port", "at most 65535"),
            ("[[domain]]\nname = \"a\"\nsmart_host = \"[::]\"", "domain[0].smart_host", "unspec"),
            ("[[domain]]\nname = \"a\"\ndrop = \"/d\"", "domain[0].drop", "no local domain"),
            ("[[domain]]\nname = \"localhost\"\ndrop = \"\"", "domain[0].drop", "non-empty"),
            ("[[domain]]\nname = \"a\"\nsmarthost = \"b\"", "domain[0].smarthost", "did you"),
            ("[[domain]]\nname = \"a\"\n[[domain]]\nname = 5", "domain[1].name", "a string"),
            ("[hosts]\n\"db.corp\" = []", "hosts.\"db.corp\"", "at least one"),
            ("[hosts]\n\"db.corp\" = [\"10.0.0.1:25\"]", "hosts.\"db.corp\"[0]", "invalid IP"),
            ("[hosts]\n\"db_corp\" = [\"10.0.0.1\"]", "hosts.\"db_corp\"", "not a valid"),
            ("[hosts]\n\"a\" = [\"10.0.0.1\"]\n\"A\" = [\"10.0.0.2\"]", "hosts.\"a\"", "twice"),
            ("[hosts]\n\"a\" = \"10.0.0.1\"", "hosts.\"a\"", "array of strings"),
            ("hosts = 1", "hosts", "expected a table"),
            ("[dns]\nservers = [\"localhost:53\"]", "dns.servers[0]", "invalid name server"),
            ("[dns]\nservers = [\"127.0.0.1:0\"]", "dns.servers[0]", "invalid name server"),
            ("[dns]\ntimeout = 0", "dns.timeout", "> 0"),
            ("[dns]\nattempts = 0", "dns.attempts", "> 0"),
            ("[dns]\nretries = 2", "dns.retries", "known keys"),
            ("[delivery]\nretry = []", "delivery.retry", "at least one"),
            ("[delivery]\ntls_ca_file = 5", "delivery.tls_ca_file", "expected a string"),
            ("[delivery]\ntls_ca_file = \"\"", "delivery.tls_ca_file", "non-empty path"),
            ("[delivery]\nretry = \"15m\"", "delivery.retry", "array of durations"),
            ("[delivery]\nretry = [\"15m\", \"0s\"]", "delivery.retry[1]", "> 0"),
            ("[delivery]\nretry = [\"15 mins\"]", "delivery.retry[0]", "invalid duration"),
            ("[delivery]\nexpire = 0", "delivery.expire", "> 0"),
            ("[delivery]\ndelay_notify = \"soon\"", "delivery.delay_notify", "invalid"),
            ("[delivery]\nmax_connections = 0", "delivery.max_connections", "> 0"),
            ("[delivery]\nactive_limit = 0", "delivery.active_limit", "> 0"),
            ("[delivery]\nlocal_concurrency = 0", "delivery.local_concurrency", "> 0"),
            ("[delivery]\nlocal_concurrency = 1000", "delivery.local_concurrency", "at most 256"),
            ("[delivery]\nactive_limit = 20000001", "delivery.active_limit", "at most 10000000"),
            ("[delivery]\nactive_limit = \"many\"", "delivery.active_limit", "integer"),
            (
                "[delivery]\nmax_connections_per_domain = 0",
                "delivery.max_connections_per_domain",
                ">",
            ),
            (
                "[delivery]\nmax_messages_per_connection = 0",
                "delivery.max_messages_per_connection",
                ">",
            ),
            ("[delivery]\nconnect_timeout = 0", "delivery.connect_timeout", "> 0"),
            ("[delivery]\ngreeting_timeout = \"0ms\"", "delivery.greeting_timeout", "> 0"),
            ("[delivery]\ndata_term_timeout = -1", "delivery.data_term_timeout", "negative"),
            ("[delivery]\nport = 0", "delivery.port", "> 0"),
            ("[delivery]\nrcpt_timeout = true", "delivery.rcpt_timeout", "found a boolean"),
            ("[delivery]\nrety = 1", "delivery.rety", "did you mean `retry`"),
            ("expire = \"1d\"", "expire", "belongs in [delivery]"),
        ];
        assert_refused(cases);
    }

    /// One line per good configuration: (TOML text, check on the result).
    #[test]
    fn good_outbound_configs() {
        use super::super::{DomainPattern, NextHop};
        type Check = fn(&Config) -> bool;
        let cases: &[(&str, Check)] = &[
            ("[relay]\nsmart_host = \"[10.1.2.3]:2525\"", |c| {
                c.relay.smart_host == Some(NextHop::parse("[10.1.2.3]:2525").unwrap())
            }),
            ("[relay]\nsmart_host = \"Relay.Example\"\nattempt_direct_first = true", |c| {
                c.relay.attempt_direct_first
                    && c.relay.smart_host
                        == Some(NextHop::Name { host: "relay.example".into(), port: None })
            }),
            ("[relay]\nmasquerade_domain = \"Example.COM\"", |c| {
                c.relay.masquerade_domain.as_deref() == Some("example.com")
            }),
            ("[relay]\nmax_hop_count = 5", |c| c.relay.max_hop_count == 5),
            ("[relay]\nsend_ndr_copy_to = \"Admin@Example.COM\"", |c| {
                c.relay.send_ndr_copy_to.as_deref() == Some("Admin@example.com")
            }),
            ("[domains]\nlocal = [\"a.example\"]\naliases = [\"B.example\"]", |c| {
                c.domains.aliases == ["b.example"]
            }),
            ("[[domain]]\nname = \"*.Example.com\"\nrelay = true\nhelo = true\nport = 2525", |c| {
                let r = &c.domain_rules[0];
                r.pattern == DomainPattern::Wildcard("example.com".into())
                    && r.relay
                    && r.helo
                    && r.port == Some(2525)
            }),
            ("[[domain]]\nname = \"localhost\"\ndrop = \"/srv/drop\"", |c| {
                c.domain_rules[0].drop.as_deref() == Some(std::path::Path::new("/srv/drop"))
            }),
            ("[hosts]\n\"DB.corp\" = [\"10.0.0.1\", \"::1\"]", |c| c.hosts["db.corp"].len() == 2),
            ("[dns]\nservers = [\"127.0.0.1:5353\", \"::1\", \"192.0.2.1\"]", |c| {
                c.dns.servers[0].port() == 5353 && c.dns.servers[1].port() == 53
            }),
            ("[dns]\ntimeout = \"2s\"\nattempts = 3", |c| {
                c.dns.timeout_ms == 2000 && c.dns.attempts == 3
            }),
            ("[delivery]\nretry = [\"1m\", 120]", |c| c.delivery.retry_ms == [60_000, 120_000]),
            ("[delivery]\ndelay_notify = 0\nexpire = \"5d\"", |c| {
                c.delivery.delay_notify_ms == 0 && c.delivery.expire_ms == 5 * 86_400_000
            }),
            ("[delivery]\nport = 2525\ndata_term_timeout = \"20m\"", |c| {
                c.delivery.port == 2525 && c.delivery.data_term_timeout_ms == 1_200_000
            }),
        ];
        for &(text, check) in cases {
            let cfg =
                Config::from_toml_str(text, &sys()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(check(&cfg), "{text:?}: {cfg:?}");
        }
    }

    /// `[delivery] tls`, `[[domain]] tls` and `[relay] smart_host_auth`: refusals.
    #[test]
    fn bad_tls_and_auth_configs_name_their_key() {
        let sh = "[relay]\nsmart_host = \"[10.1.2.3]:587\"\n";
        let with = |rest: &str| format!("{sh}{rest}");
        let owned: Vec<(String, &str, &str)> = vec![
            ("[delivery]\ntls = \"dane\"".into(), "delivery.tls", "unknown TLS policy"),
            ("[delivery]\ntls = true".into(), "delivery.tls", "expected a string"),
            ("[[domain]]\nname = \"a\"\ntls = \"must\"".into(), "domain[0].tls", "\"verify\""),
            (
                "[relay]\nsmart_host_auth = { user = \"u\", password = \"p\" }".into(),
                "relay.smart_host_auth",
                "needs relay.smart_host",
            ),
            (with("smart_host_auth = \"u:p\""), "relay.smart_host_auth", "expected a table"),
            (
                with("smart_host_auth = { password = \"p\" }"),
                "relay.smart_host_auth.user",
                "missing",
            ),
            (
                with("smart_host_auth = { user = \"\", password = \"p\" }"),
                "relay.smart_host_auth.user",
                "non-empty",
            ),
            (with("smart_host_auth = { user = \"u\" }"), "relay.smart_host_auth", "password_file"),
            (
                with("smart_host_auth = { user = \"u\", password = \"\" }"),
                "relay.smart_host_auth.password",
                "non-empty",
            ),
            (
                with(
                    "smart_host_auth = { user = \"u\", password = \"p\", password_file = \"/f\" }",
                ),
                "relay.smart_host_auth.password_file",
                "not both",
            ),
            (
                with("smart_host_auth = { user = \"u\", pasword = \"p\" }"),
                "relay.smart_host_auth.pasword",
                "did you mean `password`",
            ),
        ];
        let cases: Vec<(&str, &str, &str)> =
            owned.iter().map(|(t, k, w)| (t.as_str(), *k, *w)).collect();
        assert_refused(&cases);
    }

    #[test]
    fn tls_and_smart_host_auth_are_read_and_printed_without_the_password() {
        use super::super::TlsPolicy;
        let text = "[relay]\nsmart_host = \"smart.example:587\"\n\
                    smart_host_auth = { user = \"relay@corp\", password = \"s3cret\" }\n\
                    [delivery]\ntls = \"Encrypt\"\n\
                    [[domain]]\nname = \"bank.example\"\ntls = \"verify\"";
        let c = Config::from_toml_str(text, &sys()).unwrap();
        assert_eq!(c.delivery.tls, TlsPolicy::Encrypt);
        assert_eq!(c.domain_rules[0].tls, Some(TlsPolicy::Verify));
        let auth = c.relay.smart_host_auth.as_ref().unwrap();
        assert_eq!(
            (&*auth.credentials.user, &*auth.credentials.password),
            ("relay@corp", "s3cret")
        );
        let printed = c.to_toml();
        assert!(printed.contains("tls = \"encrypt\""), "{printed}");
        assert!(printed.contains("tls = \"verify\""), "{printed}");
        assert!(
            printed
                .contains("smart_host_auth = { user = \"relay@corp\", password = \"<redacted>\" }"),
            "{printed}"
        );
        assert!(!printed.contains("s3cret") && !format!("{c:?}").contains("s3cret"));
        // The printed text parses back; only the password differs.
        let back = Config::from_toml_str(&printed, &sys()).unwrap();
        assert_eq!(back.delivery.tls, TlsPolicy::Encrypt);
        // Defaults: may, no rule policy, no credentials.
        let d = Config::from_toml_str("", &sys()).unwrap();
        assert_eq!((d.delivery.tls, d.relay.smart_host_auth.is_none()), (TlsPolicy::May, true));
        assert!(d.to_toml().contains("tls = \"may\"") && d.to_toml().contains("# smart_host_auth"));
    }

    #[test]
    fn password_file_is_read_at_load() {
        let text = "[relay]\nsmart_host = \"smart.example\"\n\
                    smart_host_auth = { user = \"u\", password_file = \"/etc/mailroot/pw\" }";
        let mut c = Config::from_toml_str(text, &sys()).unwrap();
        let printed = c.to_toml();
        assert!(printed.contains("password_file = \"/etc/mailroot/pw\""), "{printed}");
        let back = Config::from_toml_str(&printed, &sys()).unwrap();
        assert_eq!(back, c, "round trip with a password file");
        // (file text, password or error words)
        let cases: &[(std::io::Result<&str>, Result<&str, &str>)] = &[
            (Ok("s3cret\n"), Ok("s3cret")),
            (Ok("s3cret\r\n"), Ok("s3cret")),
            (Ok("s3cret"), Ok("s3cret")),
            (Ok(" two words \n\n"), Ok(" two words \n")),
            (Ok("\n"), Err("non-empty")),
            (Ok("a\0b"), Err("without NUL")),
            (Err(std::io::ErrorKind::NotFound.into()), Err("cannot read /etc/mailroot/pw")),
        ];
        for (file, want) in cases {
            let mut c = c.clone();
            let got = c.read_password_files(|p| {
                assert_eq!(p, std::path::Path::new("/etc/mailroot/pw"));
                match file {
                    Ok(t) => Ok((*t).to_owned()),
                    Err(e) => Err(std::io::Error::from(e.kind())),
                }
            });
            match (got, want) {
                (Ok(()), Ok(pw)) => {
                    let a = c.relay.smart_host_auth.as_ref().unwrap();
                    assert_eq!(a.credentials.password, *pw);
                }
                (Err(e), Err(words)) => {
                    assert_eq!(e.key, "relay.smart_host_auth.password_file");
                    assert!(e.problem.contains(words), "{e}");
                }
                (got, want) => panic!("{file:?}: {got:?}, want {want:?}"),
            }
        }
        // Inline passwords need no reader.
        let mut inline = Config::from_toml_str(
            "[relay]\nsmart_host = \"s.example\"\n\
             smart_host_auth = { user = \"u\", password = \"p\" }",
            &sys(),
        )
        .unwrap();
        inline.read_password_files(|_| panic!("no file to read")).unwrap();
        c.read_password_files(|_| Ok("pw\n".into())).unwrap();
    }
}
