//! Domain questions: "is this domain local?" and "which `[[domain]]` rule applies?".
//!
//! What: the one home of "is this domain local?" ([`is_local_domain`]: `[domains] local`
//! and `aliases`), of the `[[domain]]` rule lookup ([`domain_rule`], also answering
//! "does a rule open relaying to it?" for `super::access`), and of "which domain does this
//! recipient belong to?" ([`rcpt_domain`], bare `Postmaster` included). Every service asks
//! here: `receive` (RCPT, counters), `pickup` (counters), the queue runner (queue gauges,
//! grouping by domain) and the delivery planner (`plan::route`).
//!
//! Trust: domains come from peers (RCPT TO, Pickup files); they are only compared.
//! Configuration names are stored lower case without a trailing dot (`DomainsConfig`).
//!
//! Layer 0: no I/O, no clock. Standards: RFC 5321 §2.3.5 (domain names compare without
//! regard to case), §4.5.1 (Postmaster).

use crate::config::{Config, DomainRule, DomainsConfig};

/// `domain` lower-cased without one trailing dot, the form config names are stored in.
#[must_use]
pub fn normalize(domain: &str) -> String {
    domain.strip_suffix('.').unwrap_or(domain).to_ascii_lowercase()
}

/// Is `domain` one of the local domains or alias domains (`[domains] aliases`, delivered
/// as the default local domain)? ASCII case-insensitive; one trailing dot of
/// `domain` is ignored (`Example.COM.` matches `example.com`). Config domains are stored
/// lower-case without a trailing dot (see `DomainsConfig`).
#[must_use]
pub fn is_local_domain(cfg: &DomainsConfig, domain: &str) -> bool {
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    cfg.local.iter().chain(&cfg.aliases).any(|local| local.eq_ignore_ascii_case(domain))
}

/// (local, remote) count of `forward_paths` for the "% Recipients Local/Remote" counters:
/// local when the domain is local (`is_local_domain`) or there is none (`Postmaster`).
pub fn rcpt_split<'a>(
    cfg: &DomainsConfig,
    forward_paths: impl Iterator<Item = &'a str>,
) -> (u64, u64) {
    let (mut local, mut remote) = (0, 0);
    for fp in forward_paths {
        if fp.rsplit_once('@').is_none_or(|(_, d)| is_local_domain(cfg, d)) {
            local += 1;
        } else {
            remote += 1;
        }
    }
    (local, remote)
}

/// The domain of a forward path; a bare `Postmaster` (no domain, RFC 5321 §4.5.1) belongs
/// to the first local domain (or our host name when there is none).
#[must_use]
pub fn rcpt_domain<'a>(cfg: &'a Config, forward_path: &'a str) -> &'a str {
    match forward_path.rsplit_once('@') {
        Some((_, d)) => d,
        None => cfg.domains.local.first().map_or(cfg.hostname.as_str(), String::as_str),
    }
}

/// The `[[domain]]` rule that applies to `domain` (lower case, no trailing dot): an exact
/// name beats any wildcard; the longest matching wildcard beats shorter ones.
#[must_use]
pub fn domain_rule<'c>(cfg: &'c Config, domain: &str) -> Option<&'c DomainRule> {
    cfg.domain_rules
        .iter()
        .filter_map(|r| r.pattern.match_rank(domain).map(|rank| (rank, r)))
        .max_by_key(|&(rank, _)| rank)
        .map(|(_, r)| r)
}

/// May anybody relay to `domain` (any case, one trailing dot allowed) because its
/// `[[domain]]` rule says `relay = true`? (Asked by `super::access::check_rcpt` besides
/// `[relay] allow`.)
#[must_use]
pub fn domain_relay_allowed(cfg: &Config, domain: &str) -> bool {
    domain_rule(cfg, &normalize(domain)).is_some_and(|r| r.relay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemDefaults;

    #[test]
    fn local_domains() {
        let cfg = DomainsConfig {
            local: vec!["localhost".into(), "example.com".into()],
            aliases: vec!["alias.example".into()],
        };
        // (domain, local?)
        let cases: &[(&str, bool)] = &[
            ("example.com", true),
            ("EXAMPLE.com", true),
            ("example.com.", true),
            ("localhost", true),
            ("LocalHost.", true),
            ("example.com..", false),
            ("sub.example.com", false),
            ("example.co", false),
            ("xexample.com", false),
            ("", false),
            (".", false),
            ("[127.0.0.1]", false),
            ("Alias.Example", true),
        ];
        for &(domain, want) in cases {
            assert_eq!(is_local_domain(&cfg, domain), want, "{domain:?}");
        }
        let none = DomainsConfig { local: Vec::new(), aliases: Vec::new() };
        assert!(!is_local_domain(&none, "localhost"));
    }

    #[test]
    fn relay_by_domain_rule() {
        let sys = SystemDefaults { hostname: "mx.example.org".into(), cores: 1 };
        let text = "[[domain]]\nname = \"*.corp.example\"\nrelay = true\n\
                    [[domain]]\nname = \"*.eu.corp.example\"\nsmart_host = \"eu-gw.example\"\n\
                    [[domain]]\nname = \"closed.corp.example\"\nrelay = false";
        let c = Config::from_toml_str(text, &sys).unwrap_or_else(|e| panic!("{e}"));
        // (domain, may anybody relay to it?)
        let cases: &[(&str, bool)] = &[
            ("x.corp.example", true),
            ("X.Corp.Example.", true),
            ("a.eu.corp.example", false),
            ("closed.corp.example", false),
            ("corp.example", false),
            ("gmail.com", false),
        ];
        for &(domain, want) in cases {
            assert_eq!(domain_relay_allowed(&c, domain), want, "{domain}");
        }
    }

    #[test]
    fn recipient_domains() {
        let sys = SystemDefaults { hostname: "mx.example.org".into(), cores: 1 };
        let with_local = Config::from_toml_str("[domains]\nlocal = [\"a.example\"]", &sys)
            .unwrap_or_else(|e| panic!("{e}"));
        let mut none = with_local.clone();
        none.domains.local.clear();
        // (config, forward path, domain)
        let cases: &[(&Config, &str, &str)] = &[
            (&with_local, "bob@b.example", "b.example"),
            (&with_local, "a@b@c.example", "c.example"),
            (&with_local, "Postmaster", "a.example"),
            (&none, "Postmaster", "mx.example.org"),
        ];
        for &(cfg, fp, want) in cases {
            assert_eq!(rcpt_domain(cfg, fp), want, "{fp}");
        }
    }
}
