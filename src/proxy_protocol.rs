//! The PROXY protocol header (HAProxy, versions 1 and 2), sans-IO: bytes in, a parsed header
//! (or "need more", or an error) out. The load balancer sends it first on the connection, so
//! the server learns the real client address behind it.
//!
//! STANDARDS: HAProxy "The PROXY protocol, Versions 1 & 2"
//! (<https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt>):
//! * v1 (§2.1): one text line `PROXY TCP4|TCP6|UNKNOWN ...\r\n`, at most 107 bytes with the
//!   CRLF. `TCP4`/`TCP6` carry `SRC DST SPORT DPORT`; `UNKNOWN` may carry anything up to
//!   the CRLF and means "use the real connection's addresses".
//! * v2 (§2.2): the 12-byte signature, version/command (`0x2_`: LOCAL 0, PROXY 1), family
//!   and protocol, a big-endian length, then the addresses and TLVs. LOCAL (a health check
//!   of the balancer itself) and the families UNSPEC and UNIX mean "use the real
//!   connection's addresses" (§2.2: the receiver must accept them and use the real
//!   endpoints); TLVs are skipped.
//!
//! [`parse`] is incremental: the caller keeps the bytes received so far and calls it again
//! with more; [`Parsed::NeedMore`] is returned while the bytes are a valid prefix of a
//! header, so a header split across reads at any byte gives the same result as in one read,
//! and garbage is refused as soon as it cannot be a header. The header is never followed
//! past its end: `consumed` is exactly its length (what comes next is the client's).
//!
//! TRUST: every byte comes from the network, and the header is only believed from the
//! networks the site trusts (decided by the caller). Nothing here panics or allocates in
//! proportion to the input; v2 headers longer than [`MAX_V2_BYTES`] are refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Longest v1 header, CRLF included (§2.1).
pub const MAX_V1_BYTES: usize = 107;
/// Longest v2 header accepted (16-byte fixed part + addresses + TLVs). HAProxy's own
/// headers are far shorter; the bound keeps a peer from making us hold 64 KiB.
pub const MAX_V2_BYTES: usize = 4096;
/// The v1 prefix.
const V1_PREFIX: &[u8] = b"PROXY ";
/// The v2 signature (§2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Fixed part of a v2 header: signature, version/command, family/protocol, length.
const V2_FIXED_BYTES: usize = 16;

/// Which version the header was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// The text form.
    V1,
    /// The binary form.
    V2,
}

/// What the header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addresses {
    /// Use the real connection's addresses: v2 LOCAL (the balancer's own health check),
    /// v1 `UNKNOWN`, or a v2 family we do not relay for (UNSPEC, UNIX).
    Local,
    /// A proxied TCP connection.
    Tcp {
        /// The client's address.
        source: SocketAddr,
        /// The address the client connected to (on the balancer).
        destination: SocketAddr,
    },
}

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// v1 or v2.
    pub version: Version,
    /// The addresses it carries.
    pub addresses: Addresses,
}

/// The outcome of [`parse`] on the bytes received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The bytes are a valid beginning of a header: read more.
    NeedMore,
    /// A complete header of `consumed` bytes; what follows belongs to the client.
    Done {
        /// The header.
        header: Header,
        /// Its length in bytes.
        consumed: usize,
    },
}

/// Why the bytes are not a PROXY header (the peer is at fault in every case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// Starts with neither `PROXY ` nor the v2 signature.
    #[error("not a PROXY protocol header")]
    NotProxy,
    /// v1: no CRLF within 107 bytes.
    #[error("v1 header longer than 107 bytes")]
    V1TooLong,
    /// v1: the line does not follow the grammar; the text says which part.
    #[error("v1 header: {0}")]
    V1Syntax(&'static str),
    /// v2: the version nibble is not 2.
    #[error("v2 header: version {0} (only 2 is defined)")]
    V2Version(u8),
    /// v2: a command other than LOCAL and PROXY.
    #[error("v2 header: unknown command {0}")]
    V2Command(u8),
    /// v2: an address family or transport we cannot use (unknown, or datagram).
    #[error("v2 header: unsupported family/protocol byte {0:#04x}")]
    V2Family(u8),
    /// v2: the length is too short for the addresses of its family.
    #[error("v2 header: length {0} too short for the address family")]
    V2Length(u16),
    /// v2: longer than [`MAX_V2_BYTES`].
    #[error("v2 header longer than {MAX_V2_BYTES} bytes")]
    V2TooLong,
}

/// Parse the header at the start of `input` (everything received so far).
pub fn parse(input: &[u8]) -> Result<Parsed, ProxyError> {
    match input.first() {
        None => Ok(Parsed::NeedMore),
        Some(b'P') => parse_v1(input),
        Some(b'\r') => parse_v2(input),
        Some(_) => Err(ProxyError::NotProxy),
    }
}

/// `true` when `input` and `prefix` agree on their common length.
fn agrees(input: &[u8], prefix: &[u8]) -> bool {
    let n = input.len().min(prefix.len());
    input[..n] == prefix[..n]
}

/// Version 1 (§2.1).
fn parse_v1(input: &[u8]) -> Result<Parsed, ProxyError> {
    if !agrees(input, V1_PREFIX) {
        return Err(ProxyError::NotProxy);
    }
    let window = &input[..input.len().min(MAX_V1_BYTES)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return if input.len() >= MAX_V1_BYTES {
            Err(ProxyError::V1TooLong)
        } else if window.contains(&b'\r') && !window.ends_with(b"\r") {
            Err(ProxyError::V1Syntax("CR not followed by LF"))
        } else {
            Ok(Parsed::NeedMore)
        };
    };
    if lf == 0 || window[lf - 1] != b'\r' {
        return Err(ProxyError::V1Syntax("line must end with CRLF"));
    }
    let line = &window[V1_PREFIX.len()..lf - 1];
    // The same verdict as on a prefix without the LF (above): a CR inside the line is an
    // error however the header was split across reads (found by fuzz/ proxy_header).
    if line.contains(&b'\r') {
        return Err(ProxyError::V1Syntax("CR not followed by LF"));
    }
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(ProxyError::V1Syntax("not ASCII"));
    };
    let consumed = lf + 1;
    let mut parts = line.split(' ');
    let addresses = match parts.next() {
        Some("UNKNOWN") => Addresses::Local,
        Some(proto @ ("TCP4" | "TCP6")) => {
            let v4 = proto == "TCP4";
            let mut field = || parts.next().ok_or(ProxyError::V1Syntax("missing field"));
            let src = v1_ip(field()?, v4)?;
            let dst = v1_ip(field()?, v4)?;
            let sport = v1_port(field()?)?;
            let dport = v1_port(field()?)?;
            if parts.next().is_some() {
                return Err(ProxyError::V1Syntax("extra field"));
            }
            Addresses::Tcp {
                source: SocketAddr::new(src, sport),
                destination: SocketAddr::new(dst, dport),
            }
        }
        _ => return Err(ProxyError::V1Syntax("protocol must be TCP4, TCP6 or UNKNOWN")),
    };
    Ok(Parsed::Done { header: Header { version: Version::V1, addresses }, consumed })
}

/// A v1 address of the family the protocol names.
fn v1_ip(s: &str, v4: bool) -> Result<IpAddr, ProxyError> {
    let ip = if v4 {
        s.parse::<Ipv4Addr>().map(IpAddr::V4).ok()
    } else {
        s.parse::<Ipv6Addr>().map(IpAddr::V6).ok()
    };
    ip.ok_or(ProxyError::V1Syntax("bad address for the protocol"))
}

/// A v1 port: 1 to 5 decimal digits, at most 65535.
fn v1_port(s: &str) -> Result<u16, ProxyError> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ProxyError::V1Syntax("bad port"));
    }
    s.parse().map_err(|_| ProxyError::V1Syntax("bad port"))
}

/// Version 2 (§2.2).
fn parse_v2(input: &[u8]) -> Result<Parsed, ProxyError> {
    if !agrees(input, &V2_SIGNATURE) {
        return Err(ProxyError::NotProxy);
    }
    if let Some(&ver_cmd) = input.get(12) {
        if ver_cmd >> 4 != 2 {
            return Err(ProxyError::V2Version(ver_cmd >> 4));
        }
        if ver_cmd & 0x0F > 1 {
            return Err(ProxyError::V2Command(ver_cmd & 0x0F));
        }
    }
    let local = input.get(12).is_some_and(|&b| b & 0x0F == 0);
    // Address bytes needed by the family (None: use the real endpoints).
    let need = match input.get(13) {
        None => None,
        Some(&fam) => v2_address_bytes(fam, local)?,
    };
    if input.len() < V2_FIXED_BYTES {
        return Ok(Parsed::NeedMore);
    }
    let len = u16::from_be_bytes([input[14], input[15]]);
    let total = V2_FIXED_BYTES + usize::from(len);
    if total > MAX_V2_BYTES {
        return Err(ProxyError::V2TooLong);
    }
    if need.is_some_and(|n| usize::from(len) < n) {
        return Err(ProxyError::V2Length(len));
    }
    if input.len() < total {
        return Ok(Parsed::NeedMore);
    }
    let a = &input[V2_FIXED_BYTES..total];
    let be16 = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
    let addresses = match need {
        Some(12) => {
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            Addresses::Tcp {
                source: SocketAddr::new(ip(0), be16(8)),
                destination: SocketAddr::new(ip(4), be16(10)),
            }
        }
        Some(_) => {
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            Addresses::Tcp {
                source: SocketAddr::new(ip(0), be16(32)),
                destination: SocketAddr::new(ip(16), be16(34)),
            }
        }
        None => Addresses::Local,
    };
    Ok(Parsed::Done { header: Header { version: Version::V2, addresses }, consumed: total })
}

/// Address bytes of family/protocol byte `fam`: `Some(12)` TCP over IPv4, `Some(36)` TCP
/// over IPv6, `None` when the real endpoints are used (LOCAL, UNSPEC, UNIX).
fn v2_address_bytes(fam: u8, local: bool) -> Result<Option<usize>, ProxyError> {
    let (family, proto) = (fam >> 4, fam & 0x0F);
    if family > 3 || proto > 2 {
        return Err(ProxyError::V2Family(fam));
    }
    if local || family == 0 || family == 3 {
        return Ok(None); // §2.2: the receiver uses the real endpoints and skips the block
    }
    match proto {
        1 => Ok(Some(if family == 1 { 12 } else { 36 })),
        // UNSPEC transport with an address: nothing we can use; datagram: not SMTP.
        _ => Err(ProxyError::V2Family(fam)),
    }
}

#[cfg(test)]
#[path = "proxy_protocol_tests.rs"]
mod tests;
