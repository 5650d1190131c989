//! PROXY protocol on a site's listeners (`[[site]] proxy_protocol`, `proxy_trusted`): the
//! load balancer in front (HAProxy `send-proxy` / `send-proxy-v2`) tells us the real client
//! address before the SMTP dialogue starts.
//!
//! Rules: `proxy_protocol = true` needs a non-empty `proxy_trusted` (the networks the
//! balancers connect from; a header from anyone else is refused, or any client could claim
//! any address); `proxy_trusted` without `proxy_protocol = true` is refused too (it would do
//! nothing). Both apply to every listener of the site, implicit-TLS ones included.

use std::fmt::Write as _;
use std::net::IpAddr;

use toml::Table;

use super::ConfigError;
use super::keyed::{Parsed, boolean, join, strings};
use super::values::network;

/// The PROXY protocol settings of one site.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteProxy {
    /// Every connection to the site's listeners starts with a PROXY v1 or v2 header.
    /// Key `proxy_protocol`.
    pub enabled: bool,
    /// Peers allowed to send the header. Invariant: non-empty iff `enabled`; no host bits.
    /// Key `proxy_trusted`.
    pub trusted: Vec<ipnet::IpNet>,
}

impl SiteProxy {
    /// Whether `peer` (the TCP peer) may send a PROXY header.
    #[must_use]
    pub fn trusts(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted.iter().any(|n| n.contains(&peer))
    }
}

/// Parse `proxy_protocol` and `proxy_trusted` of the site table `t` at `prefix`.
pub(super) fn site_proxy(t: &Table, prefix: &str) -> Parsed<SiteProxy> {
    let pp_key = join(prefix, "proxy_protocol");
    let tr_key = join(prefix, "proxy_trusted");
    let enabled = match t.get("proxy_protocol") {
        Some(v) => boolean(v, &pp_key)?,
        None => false,
    };
    let mut trusted = Vec::new();
    if let Some(v) = t.get("proxy_trusted") {
        for (k, s) in strings(v, &tr_key)? {
            trusted.push(network(s, &k)?);
        }
    }
    match (enabled, trusted.is_empty()) {
        (true, true) => Err(ConfigError::new(
            tr_key,
            "required with proxy_protocol = true: the networks your load balancers connect \
             from, e.g. [\"10.0.0.0/24\"]",
        )),
        (false, false) => Err(ConfigError::new(
            tr_key,
            "has no effect without proxy_protocol = true in this site",
        )),
        _ => Ok(SiteProxy { enabled, trusted }),
    }
}

/// The site's PROXY keys for `check-config`.
pub(super) fn print_site(p: &SiteProxy, out: &mut String) {
    let nets: Vec<String> =
        p.trusted.iter().map(|n| toml::Value::String(n.to_string()).to_string()).collect();
    let _ = writeln!(out, "proxy_protocol = {}", p.enabled);
    let _ = writeln!(out, "proxy_trusted = [{}]", nets.join(", "));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Parsed<SiteProxy> {
        let t: Table = text.parse().unwrap_or_else(|e| panic!("{e}"));
        site_proxy(&t, "site[0]")
    }

    #[test]
    fn keys() {
        assert_eq!(parse(""), Ok(SiteProxy::default()));
        let p = parse("proxy_protocol = true\nproxy_trusted = [\"10.0.0.0/8\", \"::1\"]")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(p.enabled);
        assert!(p.trusts("10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(p.trusts("::ffff:10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(p.trusts("::1".parse().unwrap_or_else(|e| panic!("{e}"))));
        assert!(!p.trusts("127.0.0.1".parse().unwrap_or_else(|e| panic!("{e}"))));
        let cases: &[(&str, &str, &str)] = &[
            ("proxy_protocol = true", "site[0].proxy_trusted", "required"),
            ("proxy_protocol = true\nproxy_trusted = []", "site[0].proxy_trusted", "required"),
            ("proxy_trusted = [\"10.0.0.0/8\"]", "site[0].proxy_trusted", "no effect"),
            ("proxy_protocol = \"yes\"", "site[0].proxy_protocol", ""),
            (
                "proxy_protocol = true\nproxy_trusted = [\"10.0.0.1/8\"]",
                "site[0].proxy_trusted[0]",
                "host bits",
            ),
        ];
        for &(text, key, words) in cases {
            let e = parse(text).err().unwrap_or_else(|| panic!("accepted: {text}"));
            assert_eq!(e.key, key, "{text}");
            assert!(e.to_string().contains(words), "{text}: {e}");
        }
    }
}
