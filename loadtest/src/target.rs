//! Target address checks: this tool only ever talks to loopback.
//!
//! SECURITY: a load generator pointed at someone else's server is an attack, so every
//! address given on the command line (the `source` server, the `sink` listen address) must
//! resolve to loopback only: `127.0.0.0/8` or `::1`. Anything else is refused before any
//! socket is opened.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};

/// Why an address given on the command line was refused.
#[derive(Debug)]
pub(crate) enum TargetError {
    /// The text does not resolve to any socket address (bad syntax or unknown name).
    Unresolvable {
        /// The address as given.
        given: String,
        /// What the resolver said.
        reason: String,
    },
    /// It resolved, but to at least one address outside `127.0.0.0/8` and `::1`.
    NotLoopback {
        /// The address as given.
        given: String,
        /// The first non-loopback address it resolved to.
        addr: SocketAddr,
    },
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetError::Unresolvable { given, reason } => {
                write!(f, "cannot resolve `{given}`: {reason}")
            }
            TargetError::NotLoopback { given, addr } => write!(
                f,
                "`{given}` resolves to {addr}, which is not loopback: this tool only talks to \
                 127.0.0.0/8 or [::1] (load tests must never leave the machine)"
            ),
        }
    }
}

impl std::error::Error for TargetError {}

/// Resolve `given` (`127.0.0.1:2525`, `[::1]:25`, `localhost:2525`) and return its first
/// address, provided every address it resolves to is loopback.
pub(crate) fn loopback_addr(given: &str) -> Result<SocketAddr, TargetError> {
    let addrs: Vec<SocketAddr> = given
        .to_socket_addrs()
        .map_err(|e| TargetError::Unresolvable { given: given.to_owned(), reason: e.to_string() })?
        .collect();
    let Some(first) = addrs.first().copied() else {
        return Err(TargetError::Unresolvable {
            given: given.to_owned(),
            reason: "no addresses".to_owned(),
        });
    };
    if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
        return Err(TargetError::NotLoopback { given: given.to_owned(), addr: *bad });
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_is_accepted() {
        let cases: &[(&str, bool)] = &[
            ("127.0.0.1:2525", true),
            ("127.9.8.7:25", true),
            ("[::1]:2525", true),
            ("localhost:2525", true),
            ("10.0.0.1:25", false),
            ("192.168.1.1:25", false),
            ("8.8.8.8:25", false),
            ("[::ffff:127.0.0.1]:25", false),
            ("[2001:db8::1]:25", false),
            ("0.0.0.0:25", false),
            ("not an address", false),
            ("127.0.0.1", false),
        ];
        for (given, ok) in cases {
            assert_eq!(loopback_addr(given).is_ok(), *ok, "{given}");
        }
    }
}
