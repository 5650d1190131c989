//! Single values of the configuration: domain names, networks, listen addresses, site
//! names. Each checker takes the text and the key path and returns the value or a
//! [`ConfigError`] naming that key.

use std::net::{IpAddr, SocketAddr};

use super::ConfigError;

/// Longest domain name in presentation form without the trailing dot (RFC 1035 §2.3.4:
/// 255 octets on the wire = 253 characters of text).
const MAX_DOMAIN_CHARS: usize = 253;
/// Longest label of a domain name (RFC 1035 §2.3.4).
const MAX_LABEL_CHARS: usize = 63;
/// Longest site name; it appears in every log line about a connection.
const MAX_SITE_NAME_CHARS: usize = 64;

/// One network: CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a bare address (/32 or /128).
pub(super) fn network(s: &str, key: &str) -> Result<ipnet::IpNet, ConfigError> {
    let parsed = if s.contains('/') {
        s.parse::<ipnet::IpNet>().ok()
    } else {
        s.parse::<IpAddr>().ok().map(ipnet::IpNet::from)
    };
    let Some(net) = parsed else {
        return Err(ConfigError::new(
            key,
            format!(
                "invalid network {s:?}: expected an IP address or CIDR like \"192.0.2.0/24\" \
                 or \"2001:db8::/32\""
            ),
        ));
    };
    if net.trunc() != net {
        return Err(ConfigError::new(
            key,
            format!("host bits set in {s:?}; did you mean \"{}\"?", net.trunc()),
        ));
    }
    Ok(net)
}

/// True if `name` is a valid ASCII domain name without a trailing dot: labels of
/// 1..=63 letters, digits and inner hyphens, ≤ 253 characters, and a last label that is
/// not all digits (so `192.0.2.1` is not taken for a name, RFC 1123 §2.1).
pub(super) fn is_valid_domain(name: &str) -> bool {
    let label_ok = |l: &str| {
        (1..=MAX_LABEL_CHARS).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    !name.is_empty()
        && name.len() <= MAX_DOMAIN_CHARS
        && name.split('.').all(label_ok)
        && !name.rsplit('.').next().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

/// A domain name (hostname or local domain): one trailing dot tolerated and dropped.
pub(super) fn domain(s: &str, key: &str) -> Result<String, ConfigError> {
    let name = s.strip_suffix('.').unwrap_or(s);
    if is_valid_domain(name) {
        return Ok(name.to_owned());
    }
    let why = if name.parse::<IpAddr>().is_ok()
        || name.strip_prefix('[').is_some_and(|r| r.ends_with(']'))
    {
        "is an IP address, not a domain name".to_owned()
    } else if !name.is_ascii() {
        "is not ASCII; write internationalized names in A-label form (xn--...)".to_owned()
    } else {
        format!(
            "is not a valid domain name (labels of 1..={MAX_LABEL_CHARS} letters, digits and \
             inner hyphens, at most {MAX_DOMAIN_CHARS} characters)"
        )
    };
    Err(ConfigError::new(key, format!("{s:?} {why}")))
}

/// A site name: 1..=64 of `[A-Za-z0-9._-]`.
pub(super) fn site_name(s: &str, key: &str) -> Result<String, ConfigError> {
    let ok = (1..=MAX_SITE_NAME_CHARS).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(s.to_owned())
    } else if s.is_empty() {
        Err(ConfigError::new(key, "must not be empty"))
    } else {
        Err(ConfigError::new(
            key,
            format!(
                "invalid site name {s:?}: use 1..={MAX_SITE_NAME_CHARS} ASCII letters, digits, \
                 '-', '_' or '.'"
            ),
        ))
    }
}

/// One listen address: `IPv4:port` or `[IPv6]:port`, port not 0.
pub(super) fn listen_addr(s: &str, key: &str) -> Result<SocketAddr, ConfigError> {
    let addr: SocketAddr = s.parse().map_err(|_| {
        ConfigError::new(
            key,
            format!(
                "invalid listen address {s:?}: expected IP:port, e.g. \"127.0.0.1:2525\" or \
                 \"[::1]:2525\" (host names are not resolved)"
            ),
        )
    })?;
    if addr.port() == 0 {
        return Err(ConfigError::new(key, format!("port 0 in {s:?}: give a fixed port")));
    }
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_validity() {
        let cases: &[(&str, bool)] = &[
            ("localhost", true),
            ("a", true),
            ("mx1.example.com", true),
            ("3com.com", true),
            ("xn--bcher-kva.example", true),
            (&"a".repeat(63), true),
            (&"a".repeat(64), false),
            (
                &format!(
                    "{}.{}.{}.{}",
                    "a".repeat(63),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(61)
                ),
                true,
            ),
            (
                &format!(
                    "{}.{}.{}.{}",
                    "a".repeat(63),
                    "b".repeat(63),
                    "c".repeat(63),
                    "d".repeat(62)
                ),
                false,
            ),
            ("", false),
            (".", false),
            ("a.", false),
            (".a", false),
            ("a..b", false),
            ("-a", false),
            ("a-", false),
            ("a_b", false),
            ("a b", false),
            ("1.2.3.4", false),
            ("example.123", false),
        ];
        for &(name, want) in cases {
            assert_eq!(is_valid_domain(name), want, "{name:?}");
        }
    }
}
