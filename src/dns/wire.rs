//! DNS wire format for mail routing: encode MX/A/AAAA queries, decode responses into plain
//! values, order MX records, detect null MX.
//!
//! Layer 0: no sockets, no clock, no RNG. The caller passes the query id and a random `u64`
//! for MX shuffling; `now` is never needed here.
//!
//! TRUST: response bytes come from the network and are untrusted. Decoding never panics
//! (proptest below feeds random bytes). A response is accepted only if it is a response
//! (QR=1) to a standard query, carries the query's id, and repeats the query's question
//! (name case-insensitively, type, class IN). Records for other owner names are ignored,
//! except that a CNAME chain starting at the question name is followed inside the answer
//! section (at most [`MAX_CNAME_CHAIN`] links), as a recursive server returns it. No DNSSEC.
//!
//! STANDARDS: RFC 1035 (message format, §4.1; RCODE; TTL), RFC 2181 §5.2 (an RRset
//! has one TTL: we take the minimum), §8 (a TTL with the top bit set is treated as 0),
//! §10.1 (CNAME), RFC 2308 §5 (negative-answer TTL = min(SOA TTL, SOA MINIMUM)),
//! RFC 5321 §5.1 (MX preference order, random among equal preferences, implicit MX is the
//! caller's job), RFC 6891 (EDNS(0) payload size advertised in queries),
//! RFC 7505 (null MX: a single MX RR with preference 0 and exchange ".").

use std::fmt;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

/// UDP payload size advertised with EDNS(0), in bytes (the 2020 DNS flag day value: fits
/// an unfragmented IPv6 datagram).
pub const EDNS_UDP_PAYLOAD_BYTES: u16 = 1232;

/// The most CNAME links followed from the question name before giving up (a loop or an
/// absurd chain): RFC 1034 §3.6.2 asks resolvers to bound this.
pub const MAX_CNAME_CHAIN: usize = 8;

/// The largest TTL honoured, in seconds (RFC 2181 §8: values with the top bit set mean 0).
const MAX_WIRE_TTL_SECS: u32 = i32::MAX as u32;

/// The record types mail routing asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueryType {
    /// Mail exchangers (RFC 1035 §3.3.9).
    Mx,
    /// IPv4 addresses.
    A,
    /// IPv6 addresses (RFC 3596).
    Aaaa,
}

impl QueryType {
    fn record_type(self) -> RecordType {
        match self {
            QueryType::Mx => RecordType::MX,
            QueryType::A => RecordType::A,
            QueryType::Aaaa => RecordType::AAAA,
        }
    }
}

impl fmt::Display for QueryType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryType::Mx => "MX",
            QueryType::A => "A",
            QueryType::Aaaa => "AAAA",
        })
    }
}

/// A response code (RFC 1035 §4.1.1, RFC 6891 extended codes folded into `Other`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rcode {
    /// 0: no error (the answer may still be empty: "NODATA").
    NoError,
    /// 1: the server could not interpret the query.
    FormErr,
    /// 2: the server failed (a temporary condition for us).
    ServFail,
    /// 3: the name does not exist (authoritative).
    NxDomain,
    /// 4: the server does not implement this kind of query.
    NotImp,
    /// 5: the server refuses to answer (policy).
    Refused,
    /// Any other code, as its number.
    Other(u16),
}

impl From<ResponseCode> for Rcode {
    fn from(rc: ResponseCode) -> Self {
        match rc {
            ResponseCode::NoError => Rcode::NoError,
            ResponseCode::FormErr => Rcode::FormErr,
            ResponseCode::ServFail => Rcode::ServFail,
            ResponseCode::NXDomain => Rcode::NxDomain,
            ResponseCode::NotImp => Rcode::NotImp,
            ResponseCode::Refused => Rcode::Refused,
            other => Rcode::Other(u16::from(other)),
        }
    }
}

impl fmt::Display for Rcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rcode::NoError => f.write_str("NOERROR"),
            Rcode::FormErr => f.write_str("FORMERR"),
            Rcode::ServFail => f.write_str("SERVFAIL"),
            Rcode::NxDomain => f.write_str("NXDOMAIN"),
            Rcode::NotImp => f.write_str("NOTIMP"),
            Rcode::Refused => f.write_str("REFUSED"),
            Rcode::Other(n) => write!(f, "RCODE{n}"),
        }
    }
}

/// One MX record as plain values.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MxRecord {
    /// Lower is preferred (RFC 1035 §3.3.9).
    pub preference: u16,
    /// The exchange host name: ASCII (IDNs in A-label form), lower case, without the
    /// trailing dot; the root name is `"."`.
    pub exchange: String,
}

/// What the MX records of a domain say, after RFC 7505 and RFC 5321 §5.1 ordering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MxOutcome {
    /// The domain published a null MX: it accepts no mail (bounce with 5.1.10).
    NullMx,
    /// Exchanges in the order to try them (preference, random among equals). Empty means
    /// "no MX records": the caller applies the implicit MX (the domain's own addresses).
    Exchanges(Vec<MxRecord>),
}

/// A decoded response, reduced to what the question asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The response code.
    pub rcode: Rcode,
    /// TC: the server truncated the answer; ask again over TCP (RFC 1035 §4.2.1).
    pub truncated: bool,
    /// The name the data belongs to after following CNAMEs (normalized like
    /// [`MxRecord::exchange`]); the question name when there was no CNAME.
    pub canonical_name: String,
    /// MX records of the canonical name (MX queries only), in wire order.
    pub mx: Vec<MxRecord>,
    /// Addresses of the canonical name (A/AAAA queries only), in wire order.
    pub addrs: Vec<IpAddr>,
    /// How long this answer may be cached, in seconds: the smallest TTL of the records used
    /// (CNAMEs included) or, for an empty or NXDOMAIN answer, min(SOA TTL, SOA MINIMUM) of an
    /// SOA in the authority section (RFC 2308 §5). `None`: nothing says (do not trust long).
    pub ttl_secs: Option<u32>,
}

/// Why bytes could not be encoded as a query or accepted as the response.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WireError {
    /// Our caller's fault: the name cannot be a DNS name (empty, a label over 63 octets, over
    /// 255 octets, or not a valid IDN).
    InvalidName {
        /// The name as given.
        name: String,
    },
    /// Our fault: hickory-proto could not encode the query.
    Encode,
    /// The peer's fault: the bytes are not a DNS message.
    Malformed,
    /// The peer's fault (or a spoofer's): not a response to a standard query.
    NotAResponse,
    /// The response carries another id than the query (stray or spoofed packet).
    IdMismatch {
        /// The id of our query.
        expected: u16,
        /// The id in the response.
        got: u16,
    },
    /// The response's question is not our question.
    QuestionMismatch,
    /// The CNAME chain from the question name is longer than [`MAX_CNAME_CHAIN`] (or loops).
    CnameChainTooLong,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::InvalidName { name } => write!(f, "invalid domain name {name:?}"),
            WireError::Encode => f.write_str("cannot encode the DNS query"),
            WireError::Malformed => f.write_str("malformed DNS response"),
            WireError::NotAResponse => f.write_str("DNS message is not a query response"),
            WireError::IdMismatch { expected, got } => {
                write!(f, "DNS response id {got} does not match query id {expected}")
            }
            WireError::QuestionMismatch => f.write_str("DNS response answers another question"),
            WireError::CnameChainTooLong => f.write_str("CNAME chain too long or looping"),
        }
    }
}

impl std::error::Error for WireError {}

/// Normalizes a domain name for comparison and as a map key: lower case, no trailing dot.
/// The root stays `"."`.
pub fn normalize_name(name: &str) -> String {
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() { ".".to_string() } else { trimmed.to_ascii_lowercase() }
}

fn name_to_string(name: &Name) -> String {
    normalize_name(&name.to_ascii())
}

/// Parses `name` as a fully qualified DNS name (no search list: RFC 5321 §5.1 names are
/// absolute). Non-ASCII names are converted to A-labels (IDNA).
fn to_fqdn(name: &str) -> Result<Name, WireError> {
    let invalid = || WireError::InvalidName { name: name.to_string() };
    let trimmed = name.trim().trim_end_matches('.');
    if trimmed.is_empty() {
        return Err(invalid());
    }
    let mut parsed = if trimmed.is_ascii() {
        Name::from_ascii(trimmed).map_err(|_| invalid())?
    } else {
        Name::from_utf8(trimmed).map_err(|_| invalid())?
    };
    parsed.set_fqdn(true);
    if parsed.is_root() { Err(invalid()) } else { Ok(parsed) }
}

/// Whether a query carries an EDNS(0) OPT record (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edns0 {
    /// Advertise [`EDNS_UDP_PAYLOAD_BYTES`]: the normal case.
    On,
    /// No OPT record, answers limited to 512 bytes over UDP: for servers that answer FORMERR
    /// to EDNS (RFC 6891 §7).
    Off,
}

/// Encodes a recursive (RD=1) query for `name` / `qtype`, class IN, with the given `id`
/// (the first two octets of the result, so a caller may patch it for a retry).
pub fn encode_query(
    id: u16,
    name: &str,
    qtype: QueryType,
    edns0: Edns0,
) -> Result<Vec<u8>, WireError> {
    let qname = to_fqdn(name)?;
    let mut msg = Message::new(id, MessageType::Query, OpCode::Query);
    msg.metadata.recursion_desired = true;
    msg.add_query(Query::query(qname, qtype.record_type()));
    if edns0 == Edns0::On {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP_PAYLOAD_BYTES);
        msg.set_edns(edns);
    }
    msg.to_vec().map_err(|_| WireError::Encode)
}

/// Reads the id and the TC bit from a message header, if there are enough bytes (12).
/// Used when a truncated UDP answer is cut mid-record and does not decode as a whole.
fn header_id_and_tc(bytes: &[u8]) -> Option<(u16, bool, bool)> {
    let header = bytes.get(..12)?;
    let id = u16::from_be_bytes([header[0], header[1]]);
    let qr = header[2] & 0x80 != 0;
    let tc = header[2] & 0x02 != 0;
    Some((id, qr, tc))
}

fn clamp_ttl(ttl: u32) -> u32 {
    if ttl > MAX_WIRE_TTL_SECS { 0 } else { ttl }
}

fn min_ttl(acc: Option<u32>, ttl: u32) -> Option<u32> {
    let ttl = clamp_ttl(ttl);
    Some(acc.map_or(ttl, |a| a.min(ttl)))
}

/// Decodes `bytes` as the response to the query (`id`, `name`, `qtype`) and reduces it to
/// the records of the question name (following CNAMEs). Never panics.
pub fn decode_response(
    id: u16,
    name: &str,
    qtype: QueryType,
    bytes: &[u8],
) -> Result<Response, WireError> {
    let qname = to_fqdn(name)?;
    let msg = match Message::from_vec(bytes) {
        Ok(msg) => msg,
        Err(_) => {
            // A truncated answer may be cut in the middle of a record: accept the header
            // alone when it says "truncated" for our id, so the caller retries over TCP.
            return match header_id_and_tc(bytes) {
                Some((got, true, true)) if got == id => Ok(Response {
                    rcode: Rcode::NoError,
                    truncated: true,
                    canonical_name: name_to_string(&qname),
                    mx: Vec::new(),
                    addrs: Vec::new(),
                    ttl_secs: None,
                }),
                _ => Err(WireError::Malformed),
            };
        }
    };
    if msg.metadata.message_type != MessageType::Response || msg.metadata.op_code != OpCode::Query {
        return Err(WireError::NotAResponse);
    }
    if msg.metadata.id != id {
        return Err(WireError::IdMismatch { expected: id, got: msg.metadata.id });
    }
    let rcode = Rcode::from(msg.metadata.response_code);
    match msg.queries.as_slice() {
        [q] if q.name == qname
            && q.query_type == qtype.record_type()
            && q.query_class == DNSClass::IN => {}
        // Some servers drop the question from error replies; an error without a question
        // can only make us defer, never route mail.
        [] if !matches!(rcode, Rcode::NoError | Rcode::NxDomain) => {}
        _ => return Err(WireError::QuestionMismatch),
    }
    let mut response = Response {
        rcode,
        truncated: msg.metadata.truncation,
        canonical_name: name_to_string(&qname),
        mx: Vec::new(),
        addrs: Vec::new(),
        ttl_secs: None,
    };
    if !matches!(rcode, Rcode::NoError | Rcode::NxDomain) {
        return Ok(response);
    }
    let (canonical, chain_ttl) = follow_cnames(&msg.answers, qname, qtype)?;
    let mut ttl = chain_ttl;
    for record in &msg.answers {
        if record.name != canonical || record.dns_class != DNSClass::IN {
            continue;
        }
        match (&record.data, qtype) {
            (RData::MX(mx), QueryType::Mx) => {
                response.mx.push(MxRecord {
                    preference: mx.preference,
                    exchange: name_to_string(&mx.exchange),
                });
            }
            (RData::A(a), QueryType::A) => response.addrs.push(IpAddr::V4(a.0)),
            (RData::AAAA(aaaa), QueryType::Aaaa) => response.addrs.push(IpAddr::V6(aaaa.0)),
            _ => continue,
        }
        ttl = min_ttl(ttl, record.ttl);
    }
    response.canonical_name = name_to_string(&canonical);
    response.ttl_secs = if response.mx.is_empty() && response.addrs.is_empty() {
        negative_ttl(&msg.authorities)
    } else {
        ttl
    };
    Ok(response)
}

/// Follows CNAME records from `qname` inside `answers` (RFC 1034 §3.6.2, RFC 2181 §10.1).
/// Returns the canonical name and the smallest CNAME TTL on the way.
fn follow_cnames(
    answers: &[Record],
    qname: Name,
    qtype: QueryType,
) -> Result<(Name, Option<u32>), WireError> {
    let mut current = qname;
    let mut ttl = None;
    for _ in 0..=MAX_CNAME_CHAIN {
        let has_data =
            answers.iter().any(|r| r.name == current && r.record_type() == qtype.record_type());
        if has_data {
            return Ok((current, ttl));
        }
        let next = answers.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current && r.dns_class == DNSClass::IN => {
                Some((target.0.clone(), r.ttl))
            }
            _ => None,
        });
        match next {
            Some((target, link_ttl)) => {
                ttl = min_ttl(ttl, link_ttl);
                current = target;
            }
            None => return Ok((current, ttl)),
        }
    }
    Err(WireError::CnameChainTooLong)
}

/// RFC 2308 §5: the negative-caching TTL is min(SOA TTL, SOA MINIMUM) of the authority SOA.
fn negative_ttl(authorities: &[Record]) -> Option<u32> {
    authorities.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(clamp_ttl(r.ttl).min(clamp_ttl(soa.minimum))),
        _ => None,
    })
}

/// Applies RFC 7505 and RFC 5321 §5.1 to the MX records of a domain.
///
/// A single record with preference 0 and exchange "." is a null MX. A "." among other
/// records (a misconfiguration RFC 7505 §3 forbids) is dropped and the others are used.
/// The rest are de-duplicated, sorted by preference, and shuffled among equal preferences
/// with a generator seeded by `random` (the caller supplies the randomness).
pub fn mx_outcome(records: Vec<MxRecord>, random: u64) -> MxOutcome {
    if let [only] = records.as_slice()
        && only.exchange == "."
        && only.preference == 0
    {
        return MxOutcome::NullMx;
    }
    let mut usable: Vec<MxRecord> = Vec::with_capacity(records.len());
    for record in records {
        if record.exchange == "." {
            continue;
        }
        // Keep the most preferred of duplicated exchanges.
        match usable.iter_mut().find(|r| r.exchange == record.exchange) {
            Some(existing) => existing.preference = existing.preference.min(record.preference),
            None => usable.push(record),
        }
    }
    order_mx(&mut usable, random);
    MxOutcome::Exchanges(usable)
}

/// Sorts by preference and shuffles each run of equal preferences (Fisher-Yates driven by a
/// splitmix64 sequence seeded from `random`).
pub fn order_mx(records: &mut [MxRecord], random: u64) {
    records.sort_by(|a, b| a.preference.cmp(&b.preference).then(a.exchange.cmp(&b.exchange)));
    let mut state = random;
    let mut start = 0;
    while start < records.len() {
        let pref = records[start].preference;
        let end = records[start..]
            .iter()
            .position(|r| r.preference != pref)
            .map_or(records.len(), |n| start + n);
        let run = &mut records[start..end];
        for i in (1..run.len()).rev() {
            let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
            run.swap(i, j);
        }
        start = end;
    }
}

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed sequence from any seed.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
