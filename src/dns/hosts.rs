//! The host table (`[hosts]` in the configuration): fixed name -> addresses entries
//! consulted before DNS, for intranets without DNS (IIS let WINS or a hosts file stand in).
//!
//! Layer 0: a plain map, no I/O.
//!
//! TRUST: the operator's configuration; names are normalized (lower case, no trailing dot)
//! so lookups are case-insensitive as DNS names are (RFC 1035 §2.3.3).

use std::collections::HashMap;
use std::net::IpAddr;

use super::wire::normalize_name;

/// Name -> addresses, looked up before any DNS query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostTable {
    /// Invariant: keys are normalized (`wire::normalize_name`); no value is empty.
    entries: HashMap<String, Vec<IpAddr>>,
}

impl HostTable {
    /// Builds the table from configuration entries; names are normalized, entries with no
    /// address are dropped (they would hide DNS without giving a route).
    pub fn from_map(map: &HashMap<String, Vec<IpAddr>>) -> Self {
        let entries = map
            .iter()
            .filter(|(_, addrs)| !addrs.is_empty())
            .map(|(name, addrs)| (normalize_name(name), addrs.clone()))
            .collect();
        HostTable { entries }
    }

    /// The addresses configured for `name`, if any.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.entries.get(&normalize_name(name)).map(Vec::as_slice)
    }

    /// Whether the table has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_are_case_insensitive() {
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let map = HashMap::from([
            ("Mail.Intranet.".to_string(), vec![ip]),
            ("empty.intranet".to_string(), vec![]),
        ]);
        let table = HostTable::from_map(&map);
        let cases = [
            ("mail.intranet", Some(vec![ip])),
            ("MAIL.INTRANET.", Some(vec![ip])),
            ("empty.intranet", None),
            ("other.intranet", None),
        ];
        for (name, expected) in cases {
            assert_eq!(table.lookup(name).map(<[IpAddr]>::to_vec), expected, "{name}");
        }
    }
}
