//! A real DNS server for tests: hickory-proto encodes the answers, served on a loopback UDP
//! socket and a TCP listener sharing one port (127.0.0.1, port picked by the OS), so a
//! resolver pointed at `DnsServer::addr` uses real DNS wire format both ways.
//!
//! The zone is data, one line per record or behaviour (`#` starts a comment):
//!
//! ```text
//! # name            [ttl]  TYPE      data
//! example.com       300    MX        10 mx1.example.com
//! mx1.example.com          A         127.0.0.1
//! mx1.example.com          AAAA      ::1
//! www.example.com          CNAME     example.com
//! nomail.example           MX        0 .            # null MX (RFC 7505)
//! broken.example           SERVFAIL                 # answers SERVFAIL to every type
//! closed.example           REFUSED                  # answers REFUSED
//! slow.example             TIMEOUT                  # drops the query (UDP and TCP)
//! big.example              TRUNCATE                 # UDP: TC=1, no records; TCP: full answer
//! spoofed.example          SPOOF                    # UDP: a wrong-id answer first, then the real one
//! old.example              NOEDNS                   # FORMERR to queries with an OPT record
//! ```
//!
//! Answers behave like a recursive server's: CNAME chains inside the zone are followed and
//! all links returned; a name with no record of the asked type gets NOERROR with an SOA
//! (NODATA); a name the zone does not mention at all gets NXDOMAIN with an SOA. Negative
//! answers carry [`NEGATIVE_TTL_SECS`]. Records default to [`DEFAULT_TTL_SECS`].
//!
//! Every loop is bounded: the server threads poll a stop flag every [`POLL_MS`] and stop
//! when the `DnsServer` is dropped; a TCP connection is served for at most
//! [`MAX_QUERIES_PER_TCP_CONN`] queries, each read with a timeout. Reusable by the
//! end-to-end delivery tests (`mod common_dns;`).

#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// TTL of a zone record without an explicit one, in seconds.
pub(crate) const DEFAULT_TTL_SECS: u32 = 300;
/// TTL (and SOA MINIMUM) of negative answers, in seconds.
pub(crate) const NEGATIVE_TTL_SECS: u32 = 60;
/// How often the server threads look at the stop flag, in ms.
pub(crate) const POLL_MS: u64 = 20;
/// Queries served on one TCP connection before it is closed.
pub(crate) const MAX_QUERIES_PER_TCP_CONN: usize = 16;
/// Read timeout on a TCP connection, in ms.
const TCP_READ_TIMEOUT_MS: u64 = 1_000;
/// Tries to find a port free for both UDP and TCP.
const MAX_BIND_TRIES: usize = 50;
/// Longest CNAME chain the server follows.
const MAX_CHAIN: usize = 16;

/// What the server does for a name, besides serving its records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Behaviour {
    /// Answer SERVFAIL.
    ServFail,
    /// Answer REFUSED.
    Refused,
    /// Drop the query: no answer over UDP, connection closed over TCP.
    Timeout,
    /// Over UDP, answer with TC=1 and no records; over TCP, the full answer.
    Truncate,
    /// Over UDP, first send an answer with another id (and a bogus address), then the real one.
    Spoof,
    /// Answer FORMERR to a query carrying EDNS(0), as pre-RFC 6891 servers do.
    NoEdns,
}

/// The data a `DnsServer` serves.
#[derive(Clone, Debug, Default)]
pub(crate) struct Zone {
    records: Vec<Record>,
    behaviours: HashMap<String, Behaviour>,
}

fn key(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

fn bad<T>(line: &str) -> T {
    panic!("zone line {line:?}")
}

fn fqdn(name: &str) -> Name {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Name::root();
    }
    Name::from_ascii(format!("{trimmed}.")).unwrap_or_else(|e| panic!("zone name {name:?}: {e}"))
}

impl Zone {
    /// Parses zone lines (see the module docs). Panics on a line it cannot read: zones are
    /// test data.
    pub(crate) fn parse(text: &str) -> Zone {
        let mut zone = Zone::default();
        for line in text.lines() {
            zone = zone.with(line);
        }
        zone
    }

    /// This zone plus one more line.
    pub(crate) fn with(mut self, line: &str) -> Zone {
        let line = line.split('#').next().unwrap_or("");
        let mut words: Vec<&str> = line.split_whitespace().collect();
        if words.is_empty() {
            return self;
        }
        let owner = words.remove(0);
        let ttl = match words.first().and_then(|w| w.parse::<u32>().ok()) {
            Some(ttl) => {
                words.remove(0);
                ttl
            }
            None => DEFAULT_TTL_SECS,
        };
        let data = match words.as_slice() {
            ["MX", pref, exchange] => {
                RData::MX(MX::new(pref.parse().unwrap_or_else(|_| bad(line)), fqdn(exchange)))
            }
            ["A", ip] => RData::A(A(ip.parse().unwrap_or_else(|_| bad(line)))),
            ["AAAA", ip] => RData::AAAA(AAAA(ip.parse().unwrap_or_else(|_| bad(line)))),
            ["CNAME", target] => RData::CNAME(CNAME(fqdn(target))),
            [word] => {
                let behaviour = match *word {
                    "SERVFAIL" => Behaviour::ServFail,
                    "REFUSED" => Behaviour::Refused,
                    "TIMEOUT" => Behaviour::Timeout,
                    "TRUNCATE" => Behaviour::Truncate,
                    "SPOOF" => Behaviour::Spoof,
                    "NOEDNS" => Behaviour::NoEdns,
                    _ => bad(line),
                };
                self.behaviours.insert(key(owner), behaviour);
                return self;
            }
            _ => bad(line),
        };
        self.records.push(Record::from_rdata(fqdn(owner), ttl, data));
        self
    }

    fn exists(&self, name: &Name) -> bool {
        self.records.iter().any(|r| &r.name == name)
            || self.behaviours.contains_key(&key(&name.to_ascii()))
    }

    /// The full answer to `query` (UDP/TCP differences are applied by the caller).
    fn answer(&self, query: &Message) -> Message {
        let mut resp = Message::response(query.metadata.id, OpCode::Query);
        resp.metadata.recursion_desired = query.metadata.recursion_desired;
        resp.metadata.recursion_available = true;
        resp.add_queries(query.queries.clone());
        let Some(q) = query.queries.first() else {
            resp.metadata.response_code = ResponseCode::FormErr;
            return resp;
        };
        match self.behaviours.get(&key(&q.name.to_ascii())) {
            Some(Behaviour::ServFail) => {
                resp.metadata.response_code = ResponseCode::ServFail;
                return resp;
            }
            Some(Behaviour::Refused) => {
                resp.metadata.response_code = ResponseCode::Refused;
                return resp;
            }
            Some(Behaviour::NoEdns) if query.edns.is_some() => {
                resp.metadata.response_code = ResponseCode::FormErr;
                return resp;
            }
            _ => {}
        }
        let mut current = q.name.clone();
        for _ in 0..MAX_CHAIN {
            let data: Vec<Record> = self
                .records
                .iter()
                .filter(|r| r.name == current && r.record_type() == q.query_type)
                .cloned()
                .collect();
            if !data.is_empty() {
                resp.add_answers(data);
                return resp;
            }
            let link = self
                .records
                .iter()
                .find(|r| r.name == current && matches!(r.data, RData::CNAME(_)));
            match link {
                Some(r) => {
                    resp.add_answer(r.clone());
                    if let RData::CNAME(target) = &r.data {
                        current = target.0.clone();
                    }
                }
                None => break,
            }
        }
        if !self.exists(&current) {
            resp.metadata.response_code = ResponseCode::NXDomain;
        }
        let soa = SOA::new(
            fqdn("ns.test"),
            fqdn("hostmaster.test"),
            1,
            3600,
            600,
            86400,
            NEGATIVE_TTL_SECS,
        );
        let mut soa = Record::from_rdata(fqdn("test"), NEGATIVE_TTL_SECS, RData::SOA(soa));
        soa.dns_class = DNSClass::IN;
        resp.add_authority(soa);
        resp
    }

    fn behaviour(&self, query: &Message) -> Option<Behaviour> {
        let q = query.queries.first()?;
        self.behaviours.get(&key(&q.name.to_ascii())).copied()
    }
}

/// Query counts, for tests that check caching and TCP fallback.
#[derive(Debug, Default)]
struct Stats {
    udp_queries: AtomicUsize,
    tcp_queries: AtomicUsize,
}

/// A running test DNS server; stopped (threads joined) on drop.
pub(crate) struct DnsServer {
    /// Where it listens, for UDP and TCP alike.
    pub(crate) addr: SocketAddr,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    threads: Vec<JoinHandle<()>>,
}

impl DnsServer {
    /// Starts serving `zone` on 127.0.0.1 (one port for UDP and TCP).
    pub(crate) fn start(zone: Zone) -> DnsServer {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().unwrap();
        let zone = Arc::new(zone);
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        udp.set_read_timeout(Some(Duration::from_millis(POLL_MS))).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let threads = vec![
            {
                let (zone, stop, stats) = (zone.clone(), stop.clone(), stats.clone());
                std::thread::spawn(move || serve_udp(&udp, &zone, &stop, &stats))
            },
            {
                let (zone, stop, stats) = (zone.clone(), stop.clone(), stats.clone());
                std::thread::spawn(move || serve_tcp(&tcp, &zone, &stop, &stats))
            },
        ];
        DnsServer { addr, stop, stats, threads }
    }

    /// UDP datagrams received so far.
    pub(crate) fn udp_queries(&self) -> usize {
        self.stats.udp_queries.load(Ordering::SeqCst)
    }

    /// Queries received over TCP so far.
    pub(crate) fn tcp_queries(&self) -> usize {
        self.stats.tcp_queries.load(Ordering::SeqCst)
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same loopback port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..MAX_BIND_TRIES {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        if let Ok(tcp) = TcpListener::bind(addr) {
            return (udp, tcp);
        }
    }
    panic!("no loopback port free for both UDP and TCP");
}

fn serve_udp(socket: &UdpSocket, zone: &Zone, stop: &AtomicBool, stats: &Stats) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let (n, peer) = match socket.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(_) => {
                // Not the poll timeout: do not spin on a persistent error.
                std::thread::sleep(Duration::from_millis(POLL_MS));
                continue;
            }
        };
        stats.udp_queries.fetch_add(1, Ordering::SeqCst);
        let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
        let mut answer = zone.answer(&query);
        match zone.behaviour(&query) {
            Some(Behaviour::Timeout) => continue,
            Some(Behaviour::Truncate) => {
                answer.answers.clear();
                answer.authorities.clear();
                answer.metadata.truncation = true;
            }
            Some(Behaviour::Spoof) => {
                let mut forged = answer.clone();
                forged.metadata.id = answer.metadata.id.wrapping_add(1);
                forged.answers.clear();
                if let Some(q) = query.queries.first() {
                    let data = match q.query_type {
                        RecordType::MX => RData::MX(MX::new(0, fqdn("evil.test"))),
                        RecordType::AAAA => RData::AAAA(AAAA("2001:db8::66".parse().unwrap())),
                        _ => RData::A(A("192.0.2.66".parse().unwrap())),
                    };
                    forged.add_answer(Record::from_rdata(q.name.clone(), 3600, data));
                }
                if let Ok(bytes) = forged.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
            _ => {}
        }
        if let Ok(bytes) = answer.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

fn serve_tcp(listener: &TcpListener, zone: &Zone, stop: &AtomicBool, stats: &Stats) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => serve_tcp_conn(stream, zone, stop, stats),
            Err(_) => std::thread::sleep(Duration::from_millis(POLL_MS / 4)),
        }
    }
}

fn serve_tcp_conn(mut stream: TcpStream, zone: &Zone, stop: &AtomicBool, stats: &Stats) {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(Duration::from_millis(TCP_READ_TIMEOUT_MS))).is_err()
    {
        return;
    }
    for _ in 0..MAX_QUERIES_PER_TCP_CONN {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let mut len = [0u8; 2];
        if stream.read_exact(&mut len).is_err() {
            return;
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut buf).is_err() {
            return;
        }
        stats.tcp_queries.fetch_add(1, Ordering::SeqCst);
        let Ok(query) = Message::from_vec(&buf) else { return };
        if query.metadata.message_type != MessageType::Query {
            return;
        }
        if zone.behaviour(&query) == Some(Behaviour::Timeout) {
            return;
        }
        let Ok(bytes) = zone.answer(&query).to_vec() else { return };
        let Ok(n) = u16::try_from(bytes.len()) else { return };
        let mut frame = n.to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        if stream.write_all(&frame).is_err() {
            return;
        }
    }
}

/// Parses an address in a test.
pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
