//! smtp::path: reverse and forward paths, mailboxes and domains (RFC 5321 §4.1.2).
//!
//! WHAT: parses `<local@domain>` paths out of a MAIL/RCPT argument, borrowing from the
//! command line. Only a quoted local part containing a backslash escape is copied
//! (`Cow::Owned`); everything else is `&str` into the caller's buffer.
//!
//! TRUST: every byte comes from the network and is untrusted. Nothing here panics on any
//! input: all slicing goes through `str::get`, there is no `unwrap` on peer data, and all
//! lengths are checked against the named limits below before a value is returned.
//!
//! STANDARDS:
//! - RFC 5321 §4.1.2 grammar: `Path`, `A-d-l` (source routes), `Mailbox`, `Dot-string`,
//!   `Quoted-string` (`qtextSMTP`, `quoted-pairSMTP`), `Domain`, `address-literal`.
//! - RFC 5321 §4.1.3 address literals: `[IPv4]`, `[IPv6:...]`, `[tag:content]`.
//! - RFC 5321 §4.5.3.1.1-2 size limits: local part 64 octets, domain 255 octets; RFC 1035
//!   §2.3.4 63 octets per label.
//! - RFC 5321 §4.1.1.3 / Appendix C: source routes are accepted and ignored; the fact that
//!   one was present is reported in [`Mailbox::had_source_route`] so policy can refuse them.
//! - RFC 6531 §3.3: UTF-8 in local parts (`atext`/`qtextSMTP` += UTF8-non-ascii) and
//!   U-labels in domains. This parser accepts them; the *session* refuses non-ASCII paths
//!   unless SMTPUTF8 was given ([`Mailbox::is_ascii`]). U-labels are checked only for
//!   allowed characters and octet length, not full IDNA2008 validity.
//!
//! Callers hand in `&str` (the command parser has already rejected control bytes and
//! non-UTF-8), so every index used for slicing lands on an ASCII byte and is a char boundary.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Maximum length of a local part in octets, as written on the wire (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_PART_BYTES: usize = 64;
/// Maximum length of a domain (name or address literal) in octets (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN_BYTES: usize = 255;
/// Maximum length of one domain label in octets (RFC 1035 §2.3.4).
pub const MAX_LABEL_BYTES: usize = 63;

/// The domain part of a mailbox, or the argument of HELO/EHLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Domain<'a> {
    /// A domain name as written (original case; may contain UTF-8 U-labels). Invariant:
    /// non-empty labels of letters/digits/hyphen/non-ASCII, no leading or trailing hyphen,
    /// ≤ 63 octets per label, ≤ 255 octets in total.
    Name(&'a str),
    /// `[1.2.3.4]` or `[IPv6:...]`.
    Ip(IpAddr),
    /// RFC 5321 §4.1.3 General-address-literal `[tag:content]`. Invariant: `tag` is an
    /// Ldh-str other than `IPv6` (case-insensitive), `content` is 1*dcontent.
    General {
        /// Standardized-tag (as written).
        tag: &'a str,
        /// The literal's content after the colon.
        content: &'a str,
    },
}

impl Domain<'_> {
    /// True if the domain is pure ASCII (address literals always are).
    #[must_use]
    pub fn is_ascii(&self) -> bool {
        match self {
            Domain::Name(n) => n.is_ascii(),
            Domain::Ip(_) | Domain::General { .. } => true,
        }
    }

    /// Lower-cased ASCII form for comparisons: `example.com`, `[1.2.3.4]`, `[IPv6:::1]`.
    /// Non-ASCII characters of U-labels are left as they are (no IDNA mapping).
    /// Borrows when the name is already lower case.
    #[must_use]
    pub fn to_lowercase_str(&self) -> Cow<'_, str> {
        match self {
            Domain::Name(n) => {
                if n.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(n.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(n)
                }
            }
            Domain::Ip(_) => Cow::Owned(self.to_string()),
            Domain::General { tag, content } => {
                Cow::Owned(format!("[{}:{content}]", tag.to_ascii_lowercase()))
            }
        }
    }
}

impl fmt::Display for Domain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Domain::Name(n) => f.write_str(n),
            Domain::Ip(IpAddr::V4(a)) => write!(f, "[{a}]"),
            Domain::Ip(IpAddr::V6(a)) => write!(f, "[IPv6:{a}]"),
            Domain::General { tag, content } => write!(f, "[{tag}:{content}]"),
        }
    }
}

/// A mailbox `local-part@domain` (RFC 5321 §4.1.2 `Mailbox`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox<'a> {
    /// The local part with quoting removed (`"a\"b"` is stored as `a"b`). Invariant when
    /// parsed: ≤ 64 octets as written, no control characters. Borrowed unless unescaping
    /// was needed.
    pub local_part: Cow<'a, str>,
    /// The domain (name or address literal).
    pub domain: Domain<'a>,
    /// True if the path carried an RFC 5321 source route (`<@a,@b:user@d>`). The route
    /// itself is ignored as RFC 5321 §4.1.1.3 and Appendix C require; this flag lets
    /// policy refuse "source routes to other domains". Not printed by `Display`.
    pub had_source_route: bool,
}

/// A relay trick found in a local part: address syntax that some MTAs (sendmail, old
/// UUCP gateways) interpret as a further hop, used to launder relaying through us.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelayTrick {
    /// `user%other.example@us` (the "percent hack").
    Percent,
    /// `other!user@us` (UUCP bang path).
    Bang,
    /// `"user@other.example"@us` (an `@` inside a quoted local part).
    QuotedAt,
}

impl<'a> Mailbox<'a> {
    /// Parse a bare mailbox `local@domain` (no angle brackets, no source route). The whole
    /// string must be the mailbox.
    pub fn parse(s: &'a str) -> Result<Mailbox<'a>, PathError> {
        let (mb, end) = parse_mailbox_at(s, 0, false)?;
        if end == s.len() { Ok(mb) } else { Err(PathError::BadLabel) }
    }

    /// True if both the local part and the domain are ASCII (else SMTPUTF8 is required,
    /// RFC 6531 §3.4).
    #[must_use]
    pub fn is_ascii(&self) -> bool {
        self.local_part.is_ascii() && self.domain.is_ascii()
    }

    /// The domain for policy lookups: lower-cased ASCII name, or `[1.2.3.4]` /
    /// `[IPv6:...]` / `[tag:content]` for literals.
    #[must_use]
    pub fn domain_str(&self) -> Cow<'_, str> {
        self.domain.to_lowercase_str()
    }

    /// True if the local part cannot be written as a Dot-string and must be quoted
    /// (empty, contains specials or spaces, or has empty atoms such as `a..b`).
    #[must_use]
    pub fn local_part_needs_quoting(&self) -> bool {
        !is_dot_string(&self.local_part)
    }

    /// The first relay trick in the local part, if any: `%`, `!`, or an `@` (which can
    /// only have come from a quoted local part). Source routes are reported separately
    /// by [`Mailbox::had_source_route`].
    #[must_use]
    pub fn relay_trick(&self) -> Option<RelayTrick> {
        let lp = self.local_part.as_bytes();
        let pos = memchr::memchr3(b'%', b'!', b'@', lp)?;
        match lp.get(pos) {
            Some(b'%') => Some(RelayTrick::Percent),
            Some(b'!') => Some(RelayTrick::Bang),
            _ => Some(RelayTrick::QuotedAt),
        }
    }

    /// True if the local part contains `%`, `!` or a quoted `@` (see [`RelayTrick`]).
    /// Policy refuses such recipients for relaying; a source route is NOT included here,
    /// check [`Mailbox::had_source_route`] as well.
    #[must_use]
    pub fn has_relay_trick(&self) -> bool {
        self.relay_trick().is_some()
    }
}

impl fmt::Display for Mailbox<'_> {
    /// Canonical `local@domain`; the local part is re-quoted (with `\"` and `\\` escapes)
    /// when it is not a valid Dot-string.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.local_part_needs_quoting() {
            f.write_str("\"")?;
            for c in self.local_part.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                fmt::Write::write_char(f, c)?;
            }
            f.write_str("\"")?;
        } else {
            f.write_str(&self.local_part)?;
        }
        write!(f, "@{}", self.domain)
    }
}

/// The argument of MAIL FROM (RFC 5321 §4.1.2 `Reverse-path`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReversePath<'a> {
    /// `<>`: the null reverse path (bounces, RFC 5321 §4.5.5).
    Null,
    /// A sender mailbox.
    Mailbox(Mailbox<'a>),
}

impl<'a> ReversePath<'a> {
    /// The mailbox, or `None` for `<>`.
    #[must_use]
    pub fn mailbox(&self) -> Option<&Mailbox<'a>> {
        match self {
            ReversePath::Null => None,
            ReversePath::Mailbox(m) => Some(m),
        }
    }

    /// True for `<>`.
    #[must_use]
    pub fn is_null(&self) -> bool {
        matches!(self, ReversePath::Null)
    }

    /// True unless the mailbox has non-ASCII characters (`<>` is ASCII).
    #[must_use]
    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

impl fmt::Display for ReversePath<'_> {
    /// `<>` or `<local@domain>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReversePath::Null => f.write_str("<>"),
            ReversePath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// The argument of RCPT TO (RFC 5321 §4.1.1.3 `Forward-path` plus `<Postmaster>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardPath<'a> {
    /// Bare `<Postmaster>` (any case), which every server must accept (RFC 5321 §4.5.1).
    Postmaster,
    /// A recipient mailbox.
    Mailbox(Mailbox<'a>),
}

impl<'a> ForwardPath<'a> {
    /// The mailbox, or `None` for bare `<Postmaster>`.
    #[must_use]
    pub fn mailbox(&self) -> Option<&Mailbox<'a>> {
        match self {
            ForwardPath::Postmaster => None,
            ForwardPath::Mailbox(m) => Some(m),
        }
    }

    /// True unless the mailbox has non-ASCII characters (`<Postmaster>` is ASCII).
    #[must_use]
    pub fn is_ascii(&self) -> bool {
        self.mailbox().is_none_or(Mailbox::is_ascii)
    }
}

impl fmt::Display for ForwardPath<'_> {
    /// `<Postmaster>` or `<local@domain>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardPath::Postmaster => f.write_str("<Postmaster>"),
            ForwardPath::Mailbox(m) => write!(f, "<{m}>"),
        }
    }
}

/// Why a path, mailbox or domain was rejected. The peer is at fault in every case.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// The path does not start with `<` (e.g. `MAIL FROM:a@b`).
    MissingAngleBrackets,
    /// No `>` where the path should end (junk after the domain, or end of line).
    Unterminated,
    /// `<>` where a mailbox is required (RCPT TO:<>).
    NullNotAllowed,
    /// The local part is empty, has an empty atom (`.a`, `a.`, `a..b`) or a character
    /// outside `atext`.
    BadLocalPart,
    /// A quoted local part is unterminated or contains a forbidden character or escape.
    BadQuotedString,
    /// The local part is longer than [`MAX_LOCAL_PART_BYTES`].
    LocalPartTooLong,
    /// There is no `@domain` after the local part, or the domain is empty.
    MissingDomain,
    /// A domain label is empty (leading, trailing or doubled dot).
    EmptyLabel,
    /// A domain label contains a forbidden character or starts/ends with a hyphen.
    BadLabel,
    /// A domain label is longer than [`MAX_LABEL_BYTES`].
    LabelTooLong,
    /// The domain is longer than [`MAX_DOMAIN_BYTES`].
    DomainTooLong,
    /// A `[...]` address literal is malformed (bad IPv4/IPv6 or general literal).
    BadAddressLiteral,
    /// A source route (`@a,@b:`) is malformed.
    BadSourceRoute,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathError::MissingAngleBrackets => "address must be enclosed in <>",
            PathError::Unterminated => "missing closing > or junk after the address",
            PathError::NullNotAllowed => "null path <> not allowed here",
            PathError::BadLocalPart => "invalid local part",
            PathError::BadQuotedString => "invalid quoted local part",
            PathError::LocalPartTooLong => "local part longer than 64 octets",
            PathError::MissingDomain => "missing @domain",
            PathError::EmptyLabel => "empty domain label",
            PathError::BadLabel => "invalid character in domain",
            PathError::LabelTooLong => "domain label longer than 63 octets",
            PathError::DomainTooLong => "domain longer than 255 octets",
            PathError::BadAddressLiteral => "invalid address literal",
            PathError::BadSourceRoute => "invalid source route",
        })
    }
}

impl std::error::Error for PathError {}

/// Parse a reverse path at the start of `s` (which should begin with `<`). Returns the
/// path and the rest of `s` after the closing `>`.
pub fn parse_reverse_path(s: &str) -> Result<(ReversePath<'_>, &str), PathError> {
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return Err(PathError::MissingAngleBrackets);
    }
    if b.get(1) == Some(&b'>') {
        return Ok((ReversePath::Null, rest(s, 2)));
    }
    let (mb, end) = parse_bracketed(s)?;
    Ok((ReversePath::Mailbox(mb), rest(s, end)))
}

/// Parse a forward path at the start of `s` (which should begin with `<`). Returns the
/// path and the rest of `s` after the closing `>`.
pub fn parse_forward_path(s: &str) -> Result<(ForwardPath<'_>, &str), PathError> {
    const POSTMASTER: &[u8] = b"postmaster>";
    let b = s.as_bytes();
    if b.first() != Some(&b'<') {
        return Err(PathError::MissingAngleBrackets);
    }
    if b.get(1) == Some(&b'>') {
        return Err(PathError::NullNotAllowed);
    }
    if b.get(1..=POSTMASTER.len()).is_some_and(|p| p.eq_ignore_ascii_case(POSTMASTER)) {
        return Ok((ForwardPath::Postmaster, rest(s, 1 + POSTMASTER.len())));
    }
    let (mb, end) = parse_bracketed(s)?;
    Ok((ForwardPath::Mailbox(mb), rest(s, end)))
}

/// Parse a whole string as a domain name or address literal (strict RFC 5321 grammar).
pub fn parse_domain(s: &str) -> Result<Domain<'_>, PathError> {
    let (d, end) = parse_domain_at(s, 0, false)?;
    if end == s.len() { Ok(d) } else { Err(PathError::BadLabel) }
}

/// HELO/EHLO argument check: like [`parse_domain`] but also accepts `_` in labels
/// (Windows hosts routinely announce NetBIOS-style names such as `my_pc`) and one
/// trailing dot (`host.example.com.`, an absolute name some clients send).
pub(crate) fn parse_helo_domain(s: &str) -> Result<Domain<'_>, PathError> {
    let s = s.strip_suffix('.').unwrap_or(s);
    let (d, end) = parse_domain_at(s, 0, true)?;
    if end == s.len() { Ok(d) } else { Err(PathError::BadLabel) }
}

/// `s[i..]`, or `""` if `i` is out of range (never panics).
fn rest(s: &str, i: usize) -> &str {
    s.get(i..).unwrap_or("")
}

/// `s` starts with `<` and is not `<>`. Returns the mailbox and the index after `>`.
fn parse_bracketed(s: &str) -> Result<(Mailbox<'_>, usize), PathError> {
    let b = s.as_bytes();
    let mut i = 1;
    let mut had_source_route = false;
    if b.get(i) == Some(&b'@') {
        i = skip_source_route(s, i)?;
        had_source_route = true;
    }
    let (mb, j) = parse_mailbox_at(s, i, had_source_route)?;
    match b.get(j) {
        Some(b'>') => Ok((mb, j + 1)),
        _ => Err(PathError::Unterminated),
    }
}

/// `A-d-l ":"` starting at `i` (on the first `@`). Returns the index after the `:`.
fn skip_source_route(s: &str, mut i: usize) -> Result<usize, PathError> {
    let b = s.as_bytes();
    loop {
        if b.get(i) != Some(&b'@') {
            return Err(PathError::BadSourceRoute);
        }
        let end = parse_name_at(s, i + 1, false).map_err(|_| PathError::BadSourceRoute)?;
        match b.get(end) {
            Some(b',') => i = end + 1,
            Some(b':') => return Ok(end + 1),
            _ => return Err(PathError::BadSourceRoute),
        }
    }
}

/// `Local-part "@" ( Domain / address-literal )` starting at `i`. Returns the mailbox and
/// the index just after the domain.
fn parse_mailbox_at(
    s: &str,
    i: usize,
    had_source_route: bool,
) -> Result<(Mailbox<'_>, usize), PathError> {
    let b = s.as_bytes();
    let (local_part, j) = if b.get(i) == Some(&b'"') {
        parse_quoted_at(s, i)?
    } else {
        let j =
            i + b.get(i..).unwrap_or(&[]).iter().take_while(|&&c| is_atext(c) || c == b'.').count();
        let raw = s.get(i..j).ok_or(PathError::BadLocalPart)?;
        if !is_dot_string(raw) {
            return Err(PathError::BadLocalPart);
        }
        (Cow::Borrowed(raw), j)
    };
    if j - i > MAX_LOCAL_PART_BYTES {
        return Err(PathError::LocalPartTooLong);
    }
    match b.get(j) {
        Some(b'@') => {}
        None | Some(b'>') => return Err(PathError::MissingDomain),
        Some(_) => return Err(PathError::BadLocalPart),
    }
    let (domain, k) = parse_domain_at(s, j + 1, false)?;
    Ok((Mailbox { local_part, domain, had_source_route }, k))
}

/// Quoted-string starting at `i` (on the opening quote). Returns the unquoted value and
/// the index after the closing quote.
fn parse_quoted_at(s: &str, i: usize) -> Result<(Cow<'_, str>, usize), PathError> {
    let b = s.as_bytes();
    let mut j = i + 1;
    let mut escaped = false;
    loop {
        match b.get(j) {
            Some(b'"') => break,
            // quoted-pairSMTP = %d92 %d32-126
            Some(b'\\') => match b.get(j + 1) {
                Some(32..=126) => {
                    escaped = true;
                    j += 2;
                }
                _ => return Err(PathError::BadQuotedString),
            },
            // qtextSMTP = %d32-33 / %d35-91 / %d93-126, plus UTF-8 (RFC 6531)
            Some(&c) if c >= 32 && c != 127 => j += 1,
            _ => return Err(PathError::BadQuotedString),
        }
        if j - i > MAX_LOCAL_PART_BYTES + 1 {
            return Err(PathError::LocalPartTooLong);
        }
    }
    let inner = s.get(i + 1..j).ok_or(PathError::BadQuotedString)?;
    let value = if escaped {
        let mut out = String::with_capacity(inner.len());
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            } else {
                out.push(c);
            }
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(inner)
    };
    Ok((value, j + 1))
}

/// Domain name or address literal starting at `i`. Returns it and the index after it.
fn parse_domain_at(
    s: &str,
    i: usize,
    allow_underscore: bool,
) -> Result<(Domain<'_>, usize), PathError> {
    let b = s.as_bytes();
    if b.get(i) == Some(&b'[') {
        let len = b.get(i + 1..).unwrap_or(&[]).iter().take_while(|&&c| is_dcontent(c)).count();
        let close = i + 1 + len;
        if b.get(close) != Some(&b']') {
            return Err(PathError::BadAddressLiteral);
        }
        if close + 1 - i > MAX_DOMAIN_BYTES {
            return Err(PathError::DomainTooLong);
        }
        let content = s.get(i + 1..close).ok_or(PathError::BadAddressLiteral)?;
        return Ok((parse_literal(content)?, close + 1));
    }
    let end = parse_name_at(s, i, allow_underscore)?;
    let name = s.get(i..end).ok_or(PathError::BadLabel)?;
    Ok((Domain::Name(name), end))
}

/// The inside of `[...]`.
fn parse_literal(content: &str) -> Result<Domain<'_>, PathError> {
    const IPV6_TAG: &[u8] = b"IPv6:";
    let cb = content.as_bytes();
    if cb.get(..IPV6_TAG.len()).is_some_and(|t| t.eq_ignore_ascii_case(IPV6_TAG)) {
        let addr = content.get(IPV6_TAG.len()..).unwrap_or("");
        return addr
            .parse::<Ipv6Addr>()
            .map(|a| Domain::Ip(IpAddr::V6(a)))
            .map_err(|_| PathError::BadAddressLiteral);
    }
    if let Some(colon) = memchr::memchr(b':', cb) {
        let tag = content.get(..colon).unwrap_or("");
        let value = content.get(colon + 1..).unwrap_or("");
        let tb = tag.as_bytes();
        let ldh = !tb.is_empty()
            && tb.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && tb.first().is_some_and(u8::is_ascii_alphanumeric)
            && tb.last().is_some_and(u8::is_ascii_alphanumeric);
        if !ldh || value.is_empty() {
            return Err(PathError::BadAddressLiteral);
        }
        return Ok(Domain::General { tag, content: value });
    }
    parse_ipv4_snum(content).map(|a| Domain::Ip(IpAddr::V4(a))).ok_or(PathError::BadAddressLiteral)
}

/// RFC 5321 `IPv4-address-literal`: four `Snum` (1*3DIGIT, value ≤ 255) joined by dots.
/// Unlike `Ipv4Addr::from_str` this accepts leading zeros, which the grammar allows.
fn parse_ipv4_snum(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *o = p.parse::<u8>().ok()?;
    }
    if parts.next().is_some() { None } else { Some(Ipv4Addr::from(octets)) }
}

/// Domain name (`sub-domain *("." sub-domain)`, with RFC 6531 U-labels) starting at `i`.
/// Returns the index after the last label.
fn parse_name_at(s: &str, i: usize, allow_underscore: bool) -> Result<usize, PathError> {
    let b = s.as_bytes();
    let is_label_byte = |c: u8| {
        c.is_ascii_alphanumeric() || c == b'-' || c >= 0x80 || (allow_underscore && c == b'_')
    };
    let mut j = i;
    loop {
        let start = j;
        j += b.get(j..).unwrap_or(&[]).iter().take_while(|&&c| is_label_byte(c)).count();
        let label = b.get(start..j).unwrap_or(&[]);
        if label.is_empty() {
            let dot_follows = b.get(j) == Some(&b'.');
            return Err(if start == i && !dot_follows {
                PathError::MissingDomain
            } else {
                PathError::EmptyLabel
            });
        }
        if label.len() > MAX_LABEL_BYTES {
            return Err(PathError::LabelTooLong);
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return Err(PathError::BadLabel);
        }
        if j - i > MAX_DOMAIN_BYTES {
            return Err(PathError::DomainTooLong);
        }
        match b.get(j) {
            Some(b'.') => j += 1,
            None | Some(b'>' | b',' | b':' | b' ') => return Ok(j),
            Some(_) => return Err(PathError::BadLabel),
        }
    }
}

/// RFC 5321 `atext` (RFC 5322 §3.2.3) plus UTF-8 non-ASCII bytes (RFC 6531 §3.3).
const ATEXT: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric() || b >= 0x80;
        c += 1;
    }
    let specials = b"!#$%&'*+-/=?^_`{|}~";
    let mut k = 0;
    while k < specials.len() {
        t[specials[k] as usize] = true;
        k += 1;
    }
    t
};

fn is_atext(c: u8) -> bool {
    ATEXT[usize::from(c)]
}

/// RFC 5321 `dcontent` = %d33-90 / %d94-126 (no `[`, `\`, `]`).
fn is_dcontent(c: u8) -> bool {
    matches!(c, 33..=90 | 94..=126)
}

/// `Dot-string = Atom *("." Atom)`; `Atom = 1*atext`.
fn is_dot_string(s: &str) -> bool {
    !s.is_empty() && s.split('.').all(|a| !a.is_empty() && a.bytes().all(is_atext))
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
