//! DNS for mail routing: find where mail for a domain goes (MX, implicit MX, null MX) and
//! the addresses of a host.
//!
//! - [`wire`] (layer 0, pure): hickory-proto encode/decode, MX ordering, null MX.
//! - [`hosts`] (layer 0, pure): the `[hosts]` table consulted before DNS.
//! - [`cache`] (layer 0, pure: `now` is passed in): the TTL cache, positive and negative.
//! - [`conf`] (layer 0, pure): [`ResolverConfig`] and the `/etc/resolv.conf` parser.
//! - [`resolver`] (layer 1): UDP with TCP fallback, retries over the configured servers,
//!   `/etc/resolv.conf`, blocking sockets with timeouts (see its threading notes).
//!
//! TRUST: everything from the network is untrusted (see `wire`); we trust the configured
//! recursive servers to do the recursion honestly (no DNSSEC validation).
//!
//! STANDARDS: RFC 1035, RFC 2181, RFC 2308, RFC 5321 §5.1, RFC 7505.

pub mod cache;
pub mod conf;
pub mod hosts;
pub mod resolver;
pub mod wire;

pub use resolver::{DnsError, MxHost, MxResolution, Resolver, ResolverConfig, TemporaryReason};
pub use wire::{MxOutcome, MxRecord, QueryType, Rcode};
