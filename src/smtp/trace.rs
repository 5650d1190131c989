//! The `Received:` trace header we prepend to every message we accept.
//!
//! Pure: every field, including the time and the UTC offset, is passed in; nothing reads
//! the clock or the resolver.
//!
//! TRUST: `helo`, `client_rdns`, the recipient and the TLS strings come from the peer or
//! from DNS. Every byte that is not printable (controls, CR, LF, DEL) is replaced by `?`,
//! and so are parentheses and backslashes inside comments and in the HELO name (which
//! may be a general address literal `[tag:...]` holding any printable byte; its `"` and
//! `;` too), so a peer can neither inject a header line nor break the comment syntax. UTF-8 is kept (RFC 6532 headers)
//! only in an SMTPUTF8 transaction; otherwise every non-ASCII character (a U-label in a
//! HELO name, say) becomes `?` too, so a message received without SMTPUTF8 keeps an ASCII
//! header block that any next hop accepts (RFC 6531 §3.7.3 ties 8-bit trace fields to
//! SMTPUTF8).
//!
//! STANDARDS: RFC 5321 §4.4 (trace information: `Stamp`, `TCP-info`, `With`, `ID`, `For`),
//! RFC 5322 §3.3 (date-time) and §2.2.3 (folding), RFC 3848 (ESMTPS/ESMTPA/ESMTPSA),
//! RFC 6531 §3.7.3 (UTF8SMTP, UTF8SMTPS, UTF8SMTPA, UTF8SMTPSA).

use std::fmt::Write as _;
use std::net::IpAddr;

/// TLS facts for the `with` clause comment, e.g. `TLSv1.3` and `TLS13_AES_256_GCM_SHA384`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TlsInfo<'a> {
    /// Protocol version name.
    pub version: &'a str,
    /// Negotiated cipher suite name.
    pub cipher: &'a str,
}

/// Everything that goes into one `Received:` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceFields<'a> {
    /// The HELO/EHLO argument as the client gave it.
    pub helo: &'a str,
    /// Reverse DNS name of the client, if it was looked up and confirmed.
    pub client_rdns: Option<&'a str>,
    /// The client's address.
    pub client_ip: IpAddr,
    /// Our host name (the `by` clause).
    pub hostname: &'a str,
    /// The client used EHLO (ESMTP) rather than HELO.
    pub esmtp: bool,
    /// The transaction used SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// TLS was in use; `None` for plain text.
    pub tls: Option<TlsInfo<'a>>,
    /// The client authenticated (AUTH); the identity is deliberately not recorded.
    pub authenticated: bool,
    /// Our queue id for the message (an RFC 5321 `Atom`).
    pub queue_id: &'a str,
    /// The `for` clause: give it only when the message has exactly one recipient, so the
    /// other recipients of a message are not disclosed to each other.
    pub recipient: Option<&'a str>,
    /// Arrival time, seconds since 1970-01-01T00:00:00Z.
    pub unix_time_secs: i64,
    /// Local offset from UTC in seconds (e.g. 3600 for +0100), used only for display.
    pub utc_offset_secs: i32,
}

/// The `with` protocol keyword (RFC 3848, RFC 6531 §3.7.3).
#[must_use]
pub fn protocol(f: &TraceFields<'_>) -> &'static str {
    match (f.smtputf8, f.esmtp, f.tls.is_some(), f.authenticated) {
        (true, _, false, false) => "UTF8SMTP",
        (true, _, true, false) => "UTF8SMTPS",
        (true, _, false, true) => "UTF8SMTPA",
        (true, _, true, true) => "UTF8SMTPSA",
        (false, false, _, _) => "SMTP",
        (false, true, false, false) => "ESMTP",
        (false, true, true, false) => "ESMTPS",
        (false, true, false, true) => "ESMTPA",
        (false, true, true, true) => "ESMTPSA",
    }
}

/// Append the header, folded over several lines (each continuation starts with a TAB),
/// ending with CRLF:
///
/// ```text
/// Received: from helo.example (rdns.example [192.0.2.1])
///     by mx.example (mailroot) with ESMTPS (TLSv1.3:TLS13_AES_128_GCM_SHA256)
///     id 0000000100000002
///     for <user@example.com>; Sat, 28 Nov 2026 14:49:40 +0000
/// ```
pub fn write_received(f: &TraceFields<'_>, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(256);
    let utf8 = f.smtputf8;
    s.push_str("Received: from ");
    push_clean(&mut s, f.helo, HELO_SPECIALS, utf8);
    s.push_str(" (");
    if let Some(rdns) = f.client_rdns {
        push_clean(&mut s, rdns, COMMENT_SPECIALS, utf8);
        s.push(' ');
    }
    push_address_literal(&mut s, f.client_ip);
    s.push_str(")\r\n\tby ");
    push_clean(&mut s, f.hostname, TOKEN_SPECIALS, utf8);
    s.push_str(" (mailroot) with ");
    s.push_str(protocol(f));
    if let Some(tls) = f.tls {
        s.push_str(" (");
        push_clean(&mut s, tls.version, COMMENT_SPECIALS, false);
        s.push(':');
        push_clean(&mut s, tls.cipher, COMMENT_SPECIALS, false);
        s.push(')');
    }
    s.push_str("\r\n\tid ");
    push_clean(&mut s, f.queue_id, TOKEN_SPECIALS, false);
    if let Some(rcpt) = f.recipient {
        s.push_str("\r\n\tfor <");
        push_clean(&mut s, rcpt, TOKEN_SPECIALS, utf8);
        s.push('>');
    }
    s.push_str("; ");
    push_date(&mut s, f.unix_time_secs, f.utc_offset_secs);
    s.push_str("\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// Append the trace header of a message that entered from the Pickup folder (no client,
/// no protocol: the Postfix `pickup` style, a `by` clause and the id), ending with CRLF:
///
/// ```text
/// Received: by mx.example (mailroot, from the Pickup folder)
///     id 0000000100000002; Sat, 28 Nov 2026 14:49:40 +0000
/// ```
pub fn write_received_pickup(
    hostname: &str,
    queue_id: &str,
    unix_time_secs: i64,
    out: &mut Vec<u8>,
) {
    let mut s = String::with_capacity(128);
    s.push_str("Received: by ");
    push_clean(&mut s, hostname, TOKEN_SPECIALS, false);
    s.push_str(" (mailroot, from the Pickup folder)\r\n\tid ");
    push_clean(&mut s, queue_id, TOKEN_SPECIALS, false);
    s.push_str("; ");
    push_date(&mut s, unix_time_secs, 0);
    s.push_str("\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// `[192.0.2.1]` or `[IPv6:2001:db8::1]` (RFC 5321 §4.1.3).
fn push_address_literal(s: &mut String, ip: IpAddr) {
    let _ = match ip {
        IpAddr::V4(v4) => write!(s, "[{v4}]"),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => write!(s, "[{v4}]"),
            None => write!(s, "[IPv6:{v6}]"),
        },
    };
}

/// Characters replaced inside a comment (`(...)`): they would end or nest it.
const COMMENT_SPECIALS: &[char] = &['(', ')', '\\'];
/// Characters replaced in a plain token (`by`, `id`, the `for` address): `;` would end the
/// clause list early.
const TOKEN_SPECIALS: &[char] = &[';'];
/// Characters replaced in the HELO name (the `from` token): a peer-chosen general address
/// literal (`[tag:...]`) may hold any of them, and each would open a comment or a quoted
/// string in a reader's view of the field, or end the clause list.
const HELO_SPECIALS: &[char] = &['(', ')', '\\', '"', ';'];

/// Append `text` with every non-printable character (and whitespace, which would end the
/// token) replaced by `?`, and so is every character of `specials`; without `utf8` also
/// every non-ASCII character.
fn push_clean(s: &mut String, text: &str, specials: &[char], utf8: bool) {
    for c in text.chars() {
        let bad = c.is_control()
            || c.is_whitespace()
            || (!utf8 && !c.is_ascii())
            || specials.contains(&c);
        s.push(if bad { '?' } else { c });
    }
}

fn push_date(s: &mut String, unix_secs: i64, offset_secs: i32) {
    super::date::write_rfc5322(s, unix_secs, offset_secs);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> TraceFields<'static> {
        TraceFields {
            helo: "client.example",
            client_rdns: Some("rdns.example"),
            client_ip: "192.0.2.1".parse().unwrap(),
            hostname: "mx.example",
            esmtp: true,
            smtputf8: false,
            tls: None,
            authenticated: false,
            queue_id: "0000000100000002",
            recipient: Some("user@example.com"),
            unix_time_secs: 1_795_877_380, // 2026-11-28T14:49:40Z
            utc_offset_secs: 0,
        }
    }

    fn render(f: &TraceFields<'_>) -> String {
        let mut v = Vec::new();
        write_received(f, &mut v);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn full_header() {
        assert_eq!(
            render(&base()),
            "Received: from client.example (rdns.example [192.0.2.1])\r\n\
             \tby mx.example (mailroot) with ESMTP\r\n\
             \tid 0000000100000002\r\n\
             \tfor <user@example.com>; Sat, 28 Nov 2026 14:49:40 +0000\r\n"
        );
    }

    #[test]
    fn pickup_header() {
        let mut v = Vec::new();
        write_received_pickup("mx.example", "0000000100000002", 1_795_877_380, &mut v);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "Received: by mx.example (mailroot, from the Pickup folder)\r\n\
             \tid 0000000100000002; Sat, 28 Nov 2026 14:49:40 +0000\r\n"
        );
    }

    #[test]
    fn variants() {
        let tls = Some(TlsInfo { version: "TLSv1.3", cipher: "TLS13_AES_128_GCM_SHA256" });
        let cases: &[(TraceFields<'static>, &str)] = &[
            (
                TraceFields { client_rdns: None, recipient: None, ..base() },
                "from client.example ([192.0.2.1])\r\n",
            ),
            (
                TraceFields { client_ip: "2001:db8::1".parse().unwrap(), ..base() },
                "[IPv6:2001:db8::1])",
            ),
            (TraceFields { esmtp: false, ..base() }, " with SMTP\r\n"),
            (TraceFields { tls, ..base() }, " with ESMTPS (TLSv1.3:TLS13_AES_128_GCM_SHA256)\r\n"),
            (TraceFields { authenticated: true, ..base() }, " with ESMTPA\r\n"),
            (TraceFields { tls, authenticated: true, ..base() }, " with ESMTPSA ("),
            (TraceFields { smtputf8: true, ..base() }, " with UTF8SMTP\r\n"),
            (TraceFields { smtputf8: true, tls, ..base() }, " with UTF8SMTPS ("),
            (
                TraceFields { smtputf8: true, tls, authenticated: true, ..base() },
                " with UTF8SMTPSA (",
            ),
            (TraceFields { smtputf8: true, authenticated: true, ..base() }, " with UTF8SMTPA\r\n"),
            (TraceFields { helo: "evil\r\nX-Injected: 1", ..base() }, "from evil??X-Injected:?1 ("),
            (TraceFields { helo: "a\rb\nc\0d\u{7f}e", ..base() }, "from a?b?c?d?e ("),
            (TraceFields { helo: "x;y", ..base() }, "from x?y ("),
            (TraceFields { helo: "[tag:a)(b\\\"c;]", ..base() }, "from [tag:a??b??c?] ("),
            (TraceFields { client_rdns: Some("r)\r\nBcc: e(v"), ..base() }, "(r???Bcc:?e?v [192."),
            (TraceFields { helo: "h\u{e9}llo.example", ..base() }, "from h?llo.example ("),
            (
                TraceFields { helo: "h\u{e9}llo.example", smtputf8: true, ..base() },
                "from h\u{e9}llo.example (",
            ),
            (TraceFields { recipient: Some("\"a b;c\"@x"), ..base() }, "for <\"a?b?c\"@x>;"),
            (TraceFields { recipient: Some("\u{fc}@x"), ..base() }, "for <?@x>;"),
            (
                TraceFields { recipient: Some("\u{fc}@x"), smtputf8: true, ..base() },
                "for <\u{fc}@x>;",
            ),
            (TraceFields { client_rdns: Some("a(b)\\c"), ..base() }, "(a?b??c [192.0.2.1])"),
            (
                TraceFields { utc_offset_secs: 3600, ..base() },
                "Sat, 28 Nov 2026 15:49:40 +0100\r\n",
            ),
            (
                TraceFields { utc_offset_secs: -16_200, ..base() },
                "Sat, 28 Nov 2026 10:19:40 -0430\r\n",
            ),
            (TraceFields { unix_time_secs: 0, ..base() }, "Thu, 1 Jan 1970 00:00:00 +0000\r\n"),
            (
                TraceFields { unix_time_secs: 951_782_400, ..base() },
                "Tue, 29 Feb 2000 00:00:00 +0000\r\n",
            ),
            (TraceFields { unix_time_secs: -1, ..base() }, "Wed, 31 Dec 1969 23:59:59 +0000\r\n"),
        ];
        for (f, want) in cases {
            let got = render(f);
            assert!(got.contains(want), "want {want:?} in {got:?}");
            assert_eq!(got.matches('\n').count(), got.matches("\r\n").count());
            assert!(got.split("\r\n").all(|l| l.len() < 998));
            assert!(f.smtputf8 || got.is_ascii(), "8-bit without SMTPUTF8: {got:?}");
        }
    }

    /// Issue 12: whatever a peer puts in the HELO name, the rDNS name or the recipient
    /// (longest lengths the parsers let through, every control byte, comment breakers),
    /// the result is ONE header field: the first line starts `Received:`, every other line
    /// is a continuation (starts with TAB), lines end in CRLF and stay under 998 octets,
    /// and the comment around the client address is balanced.
    #[test]
    fn hostile_fields_stay_one_header_field() {
        let long_helo = format!("{}.example", "a".repeat(63).repeat(3));
        let long_rcpt = format!("\"{}\"@{}", " (x)".repeat(15), "b".repeat(250));
        let controls: String = (0u8..0x20).chain([0x7f]).map(char::from).collect();
        let hostile = [
            long_helo.as_str(),
            long_rcpt.as_str(),
            controls.as_str(),
            "x\r\nBcc: evil@attacker.test",
            "x\rBcc: evil",
            "x\nBcc: evil",
            ") (by evil",
            "(((",
            "\\)",
            "\u{2028}\u{85}\u{feff}",
        ];
        for h in hostile {
            for utf8 in [false, true] {
                let f = TraceFields {
                    helo: h,
                    client_rdns: Some(h),
                    recipient: Some(h),
                    smtputf8: utf8,
                    ..base()
                };
                let got = render(&f);
                let body = got.strip_suffix("\r\n").expect("ends in CRLF");
                let lines: Vec<&str> = body.split("\r\n").collect();
                assert!(lines[0].starts_with("Received: from "), "{got:?}");
                assert!(lines[1..].iter().all(|l| l.starts_with('\t')), "{got:?}");
                assert!(lines.iter().all(|l| !l.contains(['\r', '\n']) && l.len() < 998));
                assert!(
                    got.chars().all(|c| c == '\r' || c == '\n' || c == '\t' || !c.is_control())
                );
                let (from, comment) = lines[0].rsplit_once(" (").expect("comment");
                assert!(!from.contains(['(', ')', '"', ';', '\\']), "{got:?}");
                assert_eq!(comment.matches('(').count(), 0, "{got:?}");
                assert_eq!(comment.matches(')').count(), 1, "{got:?}");
            }
        }
    }
}
