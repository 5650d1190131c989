//! The resolver: where mail for a domain goes (MX, implicit MX, null MX) and a host's
//! addresses, asked of recursive servers over UDP with TCP fallback, with retries, a TTL
//! cache and the `[hosts]` table.
//!
//! Layer 1: owns sockets and reads the clock for network deadlines only; cache expiry uses
//! the `now` the caller passes, so tests can drive it.
//!
//! THREADING: [`Resolver`] is `Send + Sync`; share it in an `Arc`. Every method takes
//! `&self` and *blocks the calling thread* on blocking `std::net` sockets with read/write
//! timeouts: one query waits at most `timeout_ms` per server and round (twice that when a
//! truncated answer is retried over TCP), i.e. `attempts × servers × 2 × timeout_ms` in the
//! worst case, and [`Resolver::resolve_mx`] makes one MX query plus two address queries per
//! exchange (cache misses only). Call it from the queue runner or a small pool of resolver
//! threads, never from an event loop. The cache lock is held only for a lookup or an insert,
//! never across network I/O, so threads resolving different names do not wait on each other
//! (two threads missing on the same name both ask: harmless).
//!
//! TRUST: answers are untrusted bytes decoded by [`super::wire`], matched on id, question and
//! source (a connected UDP socket on a fresh ephemeral port per query); stray datagrams are
//! ignored until the deadline. Ids and MX shuffling come from SipHash keyed with OS
//! randomness (std's `RandomState`) over a counter, so an off-path spoofer cannot predict
//! the next id from earlier ones (with the random source port that leaves blind guessing);
//! a spoofer on the path can still forge answers: we trust the configured recursive
//! servers and the path to them (no DNSSEC).
//!
//! STANDARDS: RFC 1035 §4.2 (UDP, TCP with a 2-byte length prefix), §7.2 (retransmission
//! over servers), RFC 2181, RFC 2308 (negative caching, in `cache`), RFC 5321 §5.1 (MX,
//! implicit MX when there is none; an MX host without address is skipped), RFC 7505
//! (null MX), RFC 6891 (EDNS(0) payload size).

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, fs};

use parking_lot::Mutex;

use super::cache::{Cache, Cached, DEFAULT_MAX_ENTRIES};
pub use super::conf::ResolverConfig;
use super::hosts::HostTable;
use super::wire::{
    Edns0, MxOutcome, QueryType, Rcode, Response, WireError, decode_response, encode_query,
    mx_outcome, normalize_name,
};

/// Where the system's resolver configuration lives.
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
/// Receive buffer for one UDP answer, in bytes: the largest UDP payload, so a server that
/// ignores our EDNS size is still read whole.
const UDP_RECV_BUFFER_BYTES: usize = 65_535;
/// Most datagrams read while waiting for one answer (strays and spoofs included); with the
/// deadline this bounds the receive loop.
const MAX_DATAGRAMS_PER_QUERY: usize = 64;

/// Where mail for a domain goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxResolution {
    /// Hosts to try in this order, each with at least one address.
    Hosts(Vec<MxHost>),
    /// The domain publishes a null MX (RFC 7505): it accepts no mail; bounce with 5.1.10.
    NullMx,
}

/// One mail exchanger with its addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MxHost {
    /// The exchange name, normalized (lower case, no trailing dot); the domain itself for an
    /// implicit MX or a host-table entry.
    pub name: String,
    /// MX preference (0 for an implicit MX or a host-table entry).
    pub preference: u16,
    /// Invariant: not empty. IPv4 addresses first, then IPv6, each in answer order.
    pub addrs: Vec<IpAddr>,
}

/// Why no route could be found. Temporary errors defer delivery; the others bounce.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DnsError {
    /// The domain (or host) does not exist: NXDOMAIN (permanent, NDR status 5.1.2).
    NoSuchDomain {
        /// The name that does not exist.
        name: String,
    },
    /// The domain exists but none of its mail hosts (MX exchanges, or the domain itself for
    /// an implicit MX) has an address (permanent, NDR status 5.4.4).
    NoMailHosts {
        /// The mail domain.
        domain: String,
    },
    /// The name cannot be asked of DNS at all (empty, over-long labels; permanent, 5.1.2).
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// No server gave a usable answer: delivery defers (status 4.4.3).
    Temporary {
        /// The name being resolved.
        name: String,
        /// What went wrong on the last try.
        reason: TemporaryReason,
    },
}

/// What went wrong on the last try of a query that failed temporarily.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemporaryReason {
    /// The configuration lists no server.
    NoServers,
    /// No answer before the deadline (or the query was dropped).
    Timeout,
    /// The server answered with an error code (SERVFAIL, REFUSED, ...).
    ServerFailure(Rcode),
    /// The server's answer was unusable.
    BadResponse(WireError),
    /// A socket error (connection refused: ICMP port unreachable, reset, ...).
    Io(io::ErrorKind),
}

impl DnsError {
    /// Whether retrying later cannot help (bounce rather than defer).
    pub fn is_permanent(&self) -> bool {
        !matches!(self, DnsError::Temporary { .. })
    }

    /// The RFC 3463 enhanced status code for an NDR or a deferral notice.
    pub fn enhanced_status(&self) -> &'static str {
        match self {
            DnsError::NoSuchDomain { .. } | DnsError::InvalidName { .. } => "5.1.2",
            DnsError::NoMailHosts { .. } => "5.4.4",
            DnsError::Temporary { .. } => "4.4.3",
        }
    }
}

impl fmt::Display for TemporaryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemporaryReason::NoServers => f.write_str("no DNS server configured"),
            TemporaryReason::Timeout => f.write_str("timed out"),
            TemporaryReason::ServerFailure(rcode) => write!(f, "server answered {rcode}"),
            TemporaryReason::BadResponse(e) => write!(f, "{e}"),
            TemporaryReason::Io(kind) => write!(f, "{kind}"),
        }
    }
}

impl fmt::Display for DnsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DnsError::NoSuchDomain { name } => write!(f, "{name}: host or domain not found"),
            DnsError::NoMailHosts { domain } => {
                write!(f, "{domain}: no mail host for the domain has an address")
            }
            DnsError::InvalidName { name } => write!(f, "{name:?}: invalid domain name"),
            DnsError::Temporary { name, reason } => {
                write!(f, "{name}: temporary DNS failure: {reason}")
            }
        }
    }
}

impl std::error::Error for DnsError {}

impl ResolverConfig {
    /// Reads [`RESOLV_CONF_PATH`]; if it cannot be read, glibc's defaults (127.0.0.1:53).
    pub fn read_system() -> Self {
        match fs::read_to_string(RESOLV_CONF_PATH) {
            Ok(text) => ResolverConfig::from_resolv_conf(&text),
            Err(_) => ResolverConfig::default(),
        }
    }
}

/// A caching stub resolver for mail routing. See the module notes for threading.
#[derive(Debug)]
pub struct Resolver {
    /// Invariant: `timeout >= 1 ms`.
    timeout: Duration,
    /// Invariant: `attempts >= 1`.
    attempts: u32,
    /// Servers asked in order each round.
    servers: Vec<SocketAddr>,
    /// Consulted before DNS.
    hosts: HostTable,
    /// Positive and negative answers; locked only around a lookup or an insert.
    cache: Mutex<Cache>,
    /// Secret SipHash keys from the OS (std seeds `RandomState` with `getrandom`).
    rng_key: std::collections::hash_map::RandomState,
    /// Counter hashed under `rng_key` by [`Resolver::next_random`].
    rng_counter: AtomicU64,
    /// Queries sent to servers (UDP, and TCP retries), for the counters.
    queries_total: AtomicU64,
}

impl Resolver {
    /// A resolver with an empty cache holding at most [`DEFAULT_MAX_ENTRIES`] answers.
    pub fn new(config: ResolverConfig) -> Self {
        Resolver {
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            attempts: config.attempts.max(1),
            servers: config.servers,
            hosts: HostTable::from_map(&config.hosts),
            cache: Mutex::new(Cache::new(DEFAULT_MAX_ENTRIES)),
            rng_key: std::collections::hash_map::RandomState::new(),
            rng_counter: AtomicU64::new(0),
            queries_total: AtomicU64::new(0),
        }
    }

    /// Queries sent to DNS servers so far (cache hits and host-table answers not counted;
    /// a TCP retry counts as one more).
    pub fn queries_total(&self) -> u64 {
        self.queries_total.load(Ordering::Relaxed)
    }

    /// Where mail for `domain` goes, by RFC 5321 §5.1: the host table, else the MX records
    /// (in preference order, random among equals, hosts without address skipped), else the
    /// domain's own addresses (implicit MX), or a null MX. `now` drives the cache.
    ///
    /// Blocks (see the module notes). Errors: NXDOMAIN -> [`DnsError::NoSuchDomain`]; no
    /// host with an address -> [`DnsError::NoMailHosts`], unless a host lookup failed
    /// temporarily, then that [`DnsError::Temporary`].
    pub fn resolve_mx(&self, domain: &str, now: Instant) -> Result<MxResolution, DnsError> {
        let domain = normalize_name(domain);
        if let Some(addrs) = self.hosts.lookup(&domain) {
            let host = MxHost { name: domain, preference: 0, addrs: addrs.to_vec() };
            return Ok(MxResolution::Hosts(vec![host]));
        }
        let records = match self.query(&domain, QueryType::Mx, now)? {
            Cached::Mx(records) => records,
            Cached::NxDomain => return Err(DnsError::NoSuchDomain { name: domain }),
            Cached::Addrs(_) => unreachable!("the cache is keyed by type: MX keys hold Cached::Mx"),
        };
        let exchanges = match mx_outcome(records, self.next_random()) {
            MxOutcome::NullMx => return Ok(MxResolution::NullMx),
            MxOutcome::Exchanges(exchanges) => exchanges,
        };
        if exchanges.is_empty() {
            // Implicit MX: the domain itself at preference 0.
            let addrs = self.resolve_host(&domain, now)?;
            if addrs.is_empty() {
                return Err(DnsError::NoMailHosts { domain });
            }
            return Ok(MxResolution::Hosts(vec![MxHost { name: domain, preference: 0, addrs }]));
        }
        let mut hosts = Vec::with_capacity(exchanges.len());
        let mut temporary = None;
        for mx in exchanges {
            match self.resolve_host(&mx.exchange, now) {
                Ok(addrs) if !addrs.is_empty() => {
                    hosts.push(MxHost { name: mx.exchange, preference: mx.preference, addrs });
                }
                Ok(_) | Err(DnsError::NoSuchDomain { .. } | DnsError::InvalidName { .. }) => {
                    log::debug!("dns mx_host_skipped domain={domain} host={}", mx.exchange);
                }
                Err(e) => {
                    log::debug!(
                        "dns mx_host_deferred domain={domain} host={} error={e}",
                        mx.exchange
                    );
                    temporary.get_or_insert(e);
                }
            }
        }
        if hosts.is_empty() {
            return Err(temporary.unwrap_or(DnsError::NoMailHosts { domain }));
        }
        Ok(MxResolution::Hosts(hosts))
    }

    /// The addresses of `name`: the host table, an IP literal as is, else A then AAAA
    /// records (IPv4 first). Empty when the name exists but has no address. `now` drives the
    /// cache. Blocks (see the module notes).
    pub fn resolve_host(&self, name: &str, now: Instant) -> Result<Vec<IpAddr>, DnsError> {
        let name = normalize_name(name);
        if let Some(addrs) = self.hosts.lookup(&name) {
            return Ok(addrs.to_vec());
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let v4 = match self.query(&name, QueryType::A, now) {
            Ok(Cached::NxDomain) => return Err(DnsError::NoSuchDomain { name }),
            other => other,
        };
        let v6 = self.query(&name, QueryType::Aaaa, now);
        let mut addrs = Vec::new();
        let mut first_error = None;
        for result in [v4, v6] {
            match result {
                Ok(Cached::Addrs(found)) => addrs.extend(found),
                Ok(_) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) if addrs.is_empty() => Err(e),
            _ => Ok(addrs),
        }
    }

    /// One (name, type) answer from the cache or the servers; caches what it gets.
    fn query(&self, name: &str, qtype: QueryType, now: Instant) -> Result<Cached, DnsError> {
        if let Some(hit) = self.cache.lock().lookup(name, qtype, now) {
            return Ok(hit.clone());
        }
        let response = self.exchange(name, qtype)?;
        let value = match (response.rcode, qtype) {
            (Rcode::NxDomain, _) => Cached::NxDomain,
            (_, QueryType::Mx) => Cached::Mx(response.mx),
            (_, QueryType::A | QueryType::Aaaa) => Cached::Addrs(response.addrs),
        };
        self.cache.lock().insert(name, qtype, value.clone(), response.ttl_secs, now);
        Ok(value)
    }

    /// Asks the servers, round after round, until one gives a NOERROR or NXDOMAIN answer.
    fn exchange(&self, name: &str, qtype: QueryType) -> Result<Response, DnsError> {
        let invalid = |_| DnsError::InvalidName { name: name.to_string() };
        let mut query = encode_query(0, name, qtype, Edns0::On).map_err(invalid)?;
        let mut last = TemporaryReason::NoServers;
        for _round in 0..self.attempts {
            for &server in &self.servers {
                let mut result = self.try_server(server, &mut query, name, qtype);
                if matches!(&result, Ok(r) if r.rcode == Rcode::FormErr) {
                    // RFC 6891 §7: a server that does not understand EDNS(0) may answer
                    // FORMERR; ask it once more without the OPT record.
                    let mut plain = encode_query(0, name, qtype, Edns0::Off).map_err(invalid)?;
                    result = self.try_server(server, &mut plain, name, qtype);
                }
                match result {
                    Ok(r) if matches!(r.rcode, Rcode::NoError | Rcode::NxDomain) => return Ok(r),
                    Ok(r) => last = TemporaryReason::ServerFailure(r.rcode),
                    Err(reason) => last = reason,
                }
                log::debug!(
                    "dns try_failed name={name} type={qtype} server={server} reason={last}"
                );
            }
        }
        Err(DnsError::Temporary { name: name.to_string(), reason: last })
    }

    /// One try of `query` at one server: UDP, then TCP if the answer was truncated.
    fn try_server(
        &self,
        server: SocketAddr,
        query: &mut [u8],
        name: &str,
        qtype: QueryType,
    ) -> Result<Response, TemporaryReason> {
        // A fresh id for every try: the id is the first two octets (RFC 1035 §4.1.1).
        let id = self.next_random() as u16;
        query[..2].copy_from_slice(&id.to_be_bytes());
        self.queries_total.fetch_add(1, Ordering::Relaxed);
        let response = udp_exchange(server, query, id, name, qtype, self.timeout)?;
        if !response.truncated {
            return Ok(response);
        }
        log::debug!("dns truncated name={name} type={qtype} server={server}: retry over TCP");
        self.queries_total.fetch_add(1, Ordering::Relaxed);
        let response = tcp_exchange(server, query, id, name, qtype, self.timeout)?;
        if response.truncated {
            // Nothing bigger than TCP to fall back to.
            return Err(TemporaryReason::BadResponse(WireError::Malformed));
        }
        Ok(response)
    }

    /// Query ids and MX shuffles: SipHash of a counter under secret random keys, which
    /// outsiders can neither predict nor reconstruct from earlier outputs.
    fn next_random(&self) -> u64 {
        use std::hash::BuildHasher;
        self.rng_key.hash_one(self.rng_counter.fetch_add(1, Ordering::Relaxed))
    }
}

fn io_reason(e: &io::Error) -> TemporaryReason {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => TemporaryReason::Timeout,
        kind => TemporaryReason::Io(kind),
    }
}

/// Time left until `deadline`, or `Timeout` if none.
fn remaining(deadline: Instant) -> Result<Duration, TemporaryReason> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() { Err(TemporaryReason::Timeout) } else { Ok(left) }
}

/// One query over UDP to one server: send once, read until a matching answer or the
/// deadline. Datagrams that do not match the query (id, question) are ignored.
fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: QueryType,
    timeout: Duration,
) -> Result<Response, TemporaryReason> {
    let deadline = Instant::now() + timeout;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).map_err(|e| io_reason(&e))?;
    // Connected: the kernel drops datagrams from other sources and reports ICMP errors.
    socket.connect(server).map_err(|e| io_reason(&e))?;
    socket.send(query).map_err(|e| io_reason(&e))?;
    let mut buf = vec![0u8; UDP_RECV_BUFFER_BYTES];
    let mut last = TemporaryReason::Timeout;
    for _ in 0..MAX_DATAGRAMS_PER_QUERY {
        let Ok(left) = remaining(deadline) else { break };
        socket.set_read_timeout(Some(left)).map_err(|e| io_reason(&e))?;
        let n = match socket.recv(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io_reason(&e)),
        };
        match decode_response(id, name, qtype, &buf[..n]) {
            Ok(response) => return Ok(response),
            // Possibly a stray or forged datagram: keep waiting for the real answer.
            Err(e) => {
                log::debug!("dns ignored_datagram name={name} type={qtype} server={server}: {e}");
                last = TemporaryReason::BadResponse(e);
            }
        }
    }
    Err(last)
}

/// One query over TCP to one server (RFC 1035 §4.2.2: 2-byte length prefix each way).
fn tcp_exchange(
    server: SocketAddr,
    query: &[u8],
    id: u16,
    name: &str,
    qtype: QueryType,
    timeout: Duration,
) -> Result<Response, TemporaryReason> {
    let deadline = Instant::now() + timeout;
    let mut stream = TcpStream::connect_timeout(&server, timeout).map_err(|e| io_reason(&e))?;
    let _ = stream.set_nodelay(true);
    let len =
        u16::try_from(query.len()).map_err(|_| TemporaryReason::BadResponse(WireError::Encode))?;
    let mut frame = Vec::with_capacity(2 + query.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(query);
    stream.set_write_timeout(Some(remaining(deadline)?)).map_err(|e| io_reason(&e))?;
    stream.write_all(&frame).map_err(|e| io_reason(&e))?;
    let mut len_buf = [0u8; 2];
    read_full(&mut stream, &mut len_buf, deadline)?;
    let len = usize::from(u16::from_be_bytes(len_buf));
    let mut buf = vec![0u8; len];
    read_full(&mut stream, &mut buf, deadline)?;
    decode_response(id, name, qtype, &buf).map_err(TemporaryReason::BadResponse)
}

/// Fills `buf` from `stream` before `deadline`; each read either progresses or fails.
fn read_full(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), TemporaryReason> {
    let mut filled = 0;
    while filled < buf.len() {
        stream.set_read_timeout(Some(remaining(deadline)?)).map_err(|e| io_reason(&e))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(TemporaryReason::Io(io::ErrorKind::UnexpectedEof)),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_reason(&e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_say_permanent_or_not() {
        let cases = [
            (DnsError::NoSuchDomain { name: "x".into() }, true, "5.1.2"),
            (DnsError::NoMailHosts { domain: "x".into() }, true, "5.4.4"),
            (DnsError::InvalidName { name: "".into() }, true, "5.1.2"),
            (
                DnsError::Temporary { name: "x".into(), reason: TemporaryReason::Timeout },
                false,
                "4.4.3",
            ),
        ];
        for (e, permanent, status) in cases {
            assert_eq!((e.is_permanent(), e.enhanced_status()), (permanent, status), "{e}");
        }
    }

    #[test]
    fn host_table_and_literals_need_no_server() {
        let ip: IpAddr = "10.9.8.7".parse().unwrap();
        let config = ResolverConfig {
            servers: vec![],
            hosts: [("Intranet.Example".to_string(), vec![ip])].into(),
            ..ResolverConfig::default()
        };
        let resolver = Resolver::new(config);
        let now = Instant::now();
        assert_eq!(resolver.resolve_host("intranet.example.", now), Ok(vec![ip]));
        assert_eq!(resolver.resolve_host("192.0.2.1", now), Ok(vec!["192.0.2.1".parse().unwrap()]));
        assert_eq!(
            resolver.resolve_mx("INTRANET.example", now),
            Ok(MxResolution::Hosts(vec![MxHost {
                name: "intranet.example".into(),
                preference: 0,
                addrs: vec![ip]
            }]))
        );
        assert_eq!(
            resolver.resolve_mx("elsewhere.example", now),
            Err(DnsError::Temporary {
                name: "elsewhere.example".into(),
                reason: TemporaryReason::NoServers
            })
        );
        assert_eq!(resolver.queries_total(), 0);
    }

    #[test]
    fn random_ids_vary() {
        let resolver = Resolver::new(ResolverConfig::default());
        let ids: std::collections::HashSet<u16> =
            (0..100).map(|_| resolver.next_random() as u16).collect();
        assert!(ids.len() > 90);
    }

    #[test]
    fn two_resolvers_do_not_share_a_sequence() {
        // Each resolver draws its own keys: a constant seed would repeat the sequence (and
        // let anyone who saw one run's ids predict another's).
        let a = Resolver::new(ResolverConfig::default());
        let b = Resolver::new(ResolverConfig::default());
        let xs: Vec<u64> = (0..8).map(|_| a.next_random()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_random()).collect();
        assert_ne!(xs, ys);
    }
}
