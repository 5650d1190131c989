//! The fuzz targets' bodies: one function per parser that sees outside bytes, each taking
//! the fuzzer's raw input and asserting the parser's invariants (a failed assertion or a
//! panic is a finding).
//!
//! This one file is compiled twice: by the `mailroot-fuzz` crate (`fuzz/`), whose
//! `fuzz_targets/*.rs` hand each function to libFuzzer, and by `tests/fuzz_corpus.rs`, which
//! replays every committed corpus file (`fuzz/corpus/<target>/*`) through the same function
//! in the ordinary `cargo test`. It uses only the public API of the `mailroot` library.
//!
//! Inputs that need more than one value take their first bytes as control bytes (policy,
//! split point, mechanism...) and the rest as the bytes under test.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mailroot::config::{Config, SystemDefaults};
use mailroot::dns::wire::{QueryType, decode_response, mx_outcome, order_mx};
use mailroot::pickup::parse::parse as parse_pickup;
use mailroot::protolog::format::{FIELD_COUNT, Record, escape, unescape, write_line};
use mailroot::proxy_protocol::{MAX_V1_BYTES, MAX_V2_BYTES, Parsed, Version};
use mailroot::smtp::command::{MAX_COMMAND_LINE_BYTES, SyntaxError};
use mailroot::smtp::data::{BareLineEnding, DataScanner, LineCheck, has_end_of_data_lookalike};
use mailroot::smtp::reply::Reply;
use mailroot::smtp::reply_parse::ReplyParser;
use mailroot::smtp::sasl::{self, Exchange, MAX_SASL_FIELD_BYTES, Mechanism, Step};
use mailroot::smtp::stuff::dot_stuff;
use mailroot::spool::{self, MIN_SEGMENT_BYTES, Spool, SpoolOptions};

/// A target's body: the fuzzer's input in, a panic out on a finding.
pub type Target = fn(&[u8]);

/// Every target, by name: the names of `fuzz/fuzz_targets/*.rs` and `fuzz/corpus/*`.
pub const TARGETS: &[(&str, Target)] = &[
    ("smtp_command", smtp_command),
    ("smtp_data", smtp_data),
    ("smtp_reply", smtp_reply),
    ("dns_response", dns_response),
    ("pickup_parse", pickup_parse),
    ("spool_segment", spool_segment),
    ("spool_recover", spool_recover),
    ("config_toml", config_toml),
    ("proxy_header", proxy_header),
    ("sasl_auth", sasl_auth),
    ("protolog_line", protolog_line),
];

/// The control byte and the rest (`0` and empty for empty input).
fn split_ctl(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((&c, rest)) => (c, rest),
        None => (0, &[]),
    }
}

/// A position in `0..=len` picked by `seed`.
fn pick(seed: usize, len: usize) -> usize {
    seed % (len + 1)
}

/// True if every CR in `b` is followed by LF and every LF preceded by CR.
fn only_crlf(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, &c)| match c {
        b'\r' => b.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && b[i - 1] == b'\r',
        _ => true,
    })
}

// ---------------------------------------------------------------------------------------
// SMTP command line (src/smtp/command.rs)

/// `smtp::command::parse` on one line: never panics, every error maps to a 5xx reply, and
/// an accepted command prints to a canonical line that parses back to the same line.
pub fn smtp_command(data: &[u8]) {
    let line = data.strip_suffix(b"\r\n").unwrap_or(data);
    match mailroot::smtp::command::parse(line) {
        Ok(cmd) => {
            let printed = cmd.to_string();
            match mailroot::smtp::command::parse(printed.as_bytes()) {
                Ok(again) => assert_eq!(again.to_string(), printed, "canonical form is stable"),
                // The canonical form may be longer than the input (`mail from:<a>` is not,
                // but a spelled-out parameter can be); only the length may refuse it.
                Err(SyntaxError::LineTooLong) => {
                    assert!(printed.len() + 2 > MAX_COMMAND_LINE_BYTES)
                }
                Err(e) => panic!("{printed:?} (from {line:?}) does not parse back: {e}"),
            }
        }
        Err(e) => {
            let reply = Reply::from(&e);
            assert!((500..600).contains(&reply.code), "{e}: {}", reply.code);
            check_reply_text(&reply);
        }
    }
}

/// The `Reply` invariant: no CR, no control characters but HT and the line separator LF.
fn check_reply_text(reply: &Reply) {
    assert!((200..600).contains(&reply.code), "code {}", reply.code);
    assert!(
        reply.text.chars().all(|c| c == '\t' || c == '\n' || !c.is_control()),
        "control character in reply text {:?}",
        reply.text
    );
}

// ---------------------------------------------------------------------------------------
// DATA / BDAT content (src/smtp/data.rs, src/smtp/stuff.rs)

/// What a whole scan gives: content, bytes consumed, finished, bare seen, look-alike seen.
type ScanOut = (Vec<u8>, usize, bool, bool, bool);

/// Scan `pieces` in order with one `DataScanner`, as the session does with its reads.
fn scan_pieces(policy: BareLineEnding, pieces: &[&[u8]]) -> ScanOut {
    let mut sc = DataScanner::new(policy);
    let mut out = Vec::new();
    let mut consumed = 0;
    let mut finished = false;
    for piece in pieces {
        if finished {
            break;
        }
        let (n, fin) = sc.scan(piece, &mut |b: &[u8]| {
            assert!(!b.is_empty(), "empty slice emitted");
            out.extend_from_slice(b);
        });
        assert!(n <= piece.len());
        assert!(fin || n == piece.len(), "an unfinished scan consumes everything");
        assert_eq!(fin, sc.is_finished());
        consumed += n;
        finished = fin;
    }
    (out, consumed, finished, sc.saw_bare_line_ending(), sc.saw_end_of_data_lookalike())
}

/// Where a lax receiver ends the data: after the first raw line `.`, lines being ended by
/// CRLF, bare CR or bare LF (as in src/smtp/data_tests.rs).
fn lax_end_of_data(input: &[u8]) -> Option<usize> {
    let (mut start, mut i) = (0, 0);
    while i < input.len() {
        let end = match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if &input[start..i] == b"." {
            return Some(end);
        }
        start = end;
        i = end;
    }
    None
}

/// The lines of `bytes` ended by a CRLF that start the input or follow a CRLF.
fn crlf_framed_lines(bytes: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let (mut start, mut i, mut framed) = (0, 0, true);
    while i < bytes.len() {
        let (end, crlf) = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => (i + 2, true),
            b'\r' | b'\n' => (i + 1, false),
            _ => {
                i += 1;
                continue;
            }
        };
        if framed && crlf {
            lines.push(&bytes[start..i]);
        }
        framed = crlf;
        start = end;
        i = end;
    }
    lines
}

/// `DataScanner` (DATA) and `LineCheck` (BDAT chunks, Pickup files) on raw peer bytes.
///
/// Control byte: bit 0 the policy (`Reject` when set), the rest a split point. Asserts:
/// the same result however the input is split (in two, and byte by byte); the end is only
/// ever `<CRLF>.<CRLF>`; under `Normalize` the content has no bare CR or LF; unless a
/// look-alike was flagged, a lax receiver ends the data at the same byte and every lone-dot
/// content line was sent stuffed (`..`); the content dot-stuffed again scans back to
/// itself; `LineCheck` gives the same answer however its input is split.
pub fn smtp_data(data: &[u8]) {
    let (ctl, input) = split_ctl(data);
    let policy = if ctl & 1 == 1 { BareLineEnding::Reject } else { BareLineEnding::Normalize };
    let cut = pick(usize::from(ctl >> 1), input.len());

    let whole = scan_pieces(policy, &[input]);
    let (out, n, fin, bare, look) = &whole;
    assert_eq!(scan_pieces(policy, &[&input[..cut], &input[cut..]]), whole, "split at {cut}");
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(scan_pieces(policy, &bytes), whole, "byte by byte");

    if *fin {
        let end = &input[..*n];
        assert!(end == b".\r\n" || end.ends_with(b"\r\n.\r\n"), "ended at {n} in {input:?}");
    }
    if policy == BareLineEnding::Normalize {
        assert!(only_crlf(out), "bare CR/LF in normalised content {out:?} from {input:?}");
    }
    if *fin && !*look {
        assert_eq!(lax_end_of_data(input), Some(*n), "a lax receiver ends elsewhere");
        if policy == BareLineEnding::Normalize {
            let stuffed = crlf_framed_lines(&input[..*n]).iter().filter(|l| **l == b"..").count();
            let lone = crlf_framed_lines(out).iter().filter(|l| **l == b".").count();
            assert_eq!(lone, stuffed, "a lone-dot line that was not sent stuffed");
        }
    }
    if *fin && policy == BareLineEnding::Normalize {
        let mut wire = Vec::new();
        dot_stuff(out, &mut wire);
        let again = scan_pieces(policy, &[&wire]);
        assert_eq!(again, (out.clone(), wire.len(), true, false, false), "stuff then scan");
    }
    let _ = bare;

    // LineCheck: the same verdict at any split, and `has_end_of_data_lookalike` agrees.
    let check = |pieces: &[&[u8]]| {
        let mut c = LineCheck::new();
        for p in pieces {
            c.feed(p);
        }
        c.finish();
        (c.saw_bare_line_ending(), c.saw_end_of_data_lookalike())
    };
    let verdict = check(&[input]);
    assert_eq!(check(&[&input[..cut], &input[cut..]]), verdict);
    assert_eq!(check(&bytes), verdict);
    assert_eq!(has_end_of_data_lookalike(input), verdict.1);
    assert_eq!(verdict.0, !only_crlf(input), "LineCheck bare verdict");
}

// ---------------------------------------------------------------------------------------
// Reply parser of the delivery client (src/smtp/reply_parse.rs)

/// Every reply `ReplyParser` finds in `pieces`, and the error that stopped it.
fn replies(pieces: &[&[u8]]) -> (Vec<Reply>, Option<String>) {
    let mut p = ReplyParser::new();
    let mut out = Vec::new();
    for piece in pieces {
        let mut rest = *piece;
        loop {
            match p.parse(rest) {
                Ok((n, reply)) => {
                    assert!(n <= rest.len());
                    rest = &rest[n..];
                    match reply {
                        Some(r) => out.push(r),
                        None => {
                            assert!(rest.is_empty(), "no reply but input left");
                            break;
                        }
                    }
                    if rest.is_empty() {
                        break;
                    }
                }
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    (out, None)
}

/// `ReplyParser` on raw server bytes: the same replies however the input is split, every
/// reply keeps the `Reply` invariant, and a reply written out parses back to one that
/// writes the same bytes.
pub fn smtp_reply(data: &[u8]) {
    let (ctl, input) = split_ctl(data);
    let cut = pick(usize::from(ctl), input.len());
    let whole = replies(&[input]);
    assert_eq!(replies(&[&input[..cut], &input[cut..]]), whole, "split at {cut}");
    for r in &whole.0 {
        check_reply_text(r);
        let mut wire = Vec::new();
        r.write_to(&mut wire);
        let (again, err) = replies(&[&wire]);
        assert_eq!(err, None, "{wire:?} does not parse back");
        assert_eq!(again.len(), 1, "{wire:?}");
        let mut wire2 = Vec::new();
        again[0].write_to(&mut wire2);
        assert_eq!(wire2, wire);
    }
}

// ---------------------------------------------------------------------------------------
// DNS responses (src/dns/wire.rs)

/// `decode_response` on a datagram. Control bytes: the query id (2 bytes), the query type
/// and which question name. An accepted MX answer goes through `mx_outcome` / `order_mx`,
/// whose order is by preference.
pub fn dns_response(data: &[u8]) {
    if data.len() < 3 {
        return;
    }
    let id = u16::from_be_bytes([data[0], data[1]]);
    let qtype = [QueryType::Mx, QueryType::A, QueryType::Aaaa][usize::from(data[2] % 3)];
    let name =
        ["example.com", "mail.example.org", "xn--bcher-kva.example"][usize::from(data[2] / 3 % 3)];
    // The answer usually repeats the id: also try the id it carries, so the fuzzer gets
    // past the id check without having to guess it.
    let body = &data[3..];
    let mut ids = vec![id];
    if body.len() >= 2 {
        ids.push(u16::from_be_bytes([body[0], body[1]]));
    }
    for id in ids {
        if let Ok(resp) = decode_response(id, name, qtype, body) {
            let mut mx = resp.mx.clone();
            order_mx(&mut mx, u64::from(id));
            assert!(mx.windows(2).all(|w| w[0].preference <= w[1].preference));
            let _ = mx_outcome(resp.mx, u64::from(id));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Pickup files (src/pickup/parse.rs)

/// `pickup::parse` on a file's bytes: an accepted file has recipients, no duplicates,
/// CRLF-only content and the right 8-bit flag.
pub fn pickup_parse(data: &[u8]) {
    if let Ok(m) = parse_pickup(data) {
        assert!(!m.recipients.is_empty());
        for (i, r) in m.recipients.iter().enumerate() {
            assert!(!m.recipients[..i].contains(r), "duplicate recipient {r}");
        }
        assert!(only_crlf(&m.content), "content line ends {:?}", m.content);
        assert_eq!(m.eight_bit, m.content.iter().any(|&b| b > 127));
    }
}

// ---------------------------------------------------------------------------------------
// Spool segments (src/spool/recover.rs)

/// `spool::verify_segment` (recovery's reader) on a segment file's bytes, whole and cut
/// short at a point picked by the first byte: a torn tail only ever loses records from the
/// end, never makes up or changes one.
pub fn spool_segment(data: &[u8]) {
    let (ctl, bytes) = split_ctl(data);
    let whole = spool::verify_segment(bytes);
    if let Ok(seg) = &whole {
        assert!(seg.stop.is_none_or(|s| s < bytes.len()));
        assert!(seg.skipped.windows(2).all(|w| w[0] < w[1]), "skipped in file order");
        assert!(seg.skipped.iter().all(|&o| seg.stop.is_none_or(|s| o < s)));
        for r in &seg.records {
            assert_eq!(r.rcpt_status.len(), r.envelope.recipients.len());
        }
    }
    let cut = pick(usize::from(ctl) * 97, bytes.len());
    match (spool::verify_segment(&bytes[..cut]), &whole) {
        (Ok(short), Ok(full)) => {
            assert_eq!(short.number, full.number);
            assert!(short.records.len() <= full.records.len());
            assert_eq!(short.records[..], full.records[..short.records.len()], "cut at {cut}");
        }
        (Ok(_), Err(e)) => panic!("a prefix verifies but the whole does not: {e}"),
        (Err(_), _) => {}
    }
}

/// Recovery over a `Queue/` folder holding these bytes as its one segment file:
/// `Spool::open` must not fail or panic on them, reports only what `verify_segment` finds,
/// and a second open (after the first repaired what it wanted) finds the same messages,
/// as does the read-only `scan`.
pub fn spool_recover(data: &[u8]) {
    // On tmpfs when there is one: recovery fsyncs, and a disk makes that the whole cost.
    let shm = std::path::Path::new("/dev/shm");
    let dir = if shm.is_dir() { tempfile::tempdir_in(shm) } else { tempfile::tempdir() };
    let dir = dir.expect("tempdir");
    let queue = dir.path().join("Queue");
    std::fs::create_dir(&queue).expect("mkdir");
    let number = spool::verify_segment(data).map_or(1, |s| s.number);
    std::fs::write(queue.join(format!("{number:08X}.seg")), data).expect("write segment");
    let opts = SpoolOptions { segment_bytes: MIN_SEGMENT_BYTES, min_free_bytes: 0 };
    let first = {
        let (_spool, found) = Spool::open(&queue, opts).expect("recovery fails on these bytes");
        found
    };
    if let Ok(seg) = spool::verify_segment(data) {
        for m in &first {
            assert!(seg.records.iter().any(|r| r.id == m.id), "recovered a record not there");
        }
    }
    let listed = spool::scan(&queue).expect("scan");
    assert_eq!(listed, first, "scan after recovery");
    let (_spool, second) = Spool::open(&queue, opts).expect("second recovery");
    assert_eq!(second, first, "recovery is not idempotent");
}

// ---------------------------------------------------------------------------------------
// Configuration (src/config)

/// `Config::from_toml_str` on a file's text; an accepted configuration printed with
/// `to_toml` reads back to an equal one (up to redacted secrets).
pub fn config_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sys = SystemDefaults { hostname: "fuzz.example".to_owned(), cores: 2 };
    if let Ok(c) = Config::from_toml_str(text, &sys) {
        let printed = c.to_toml();
        match Config::from_toml_str(&printed, &sys) {
            Ok(again) => {
                // Compared as Debug text: `to_toml` prints secrets (the smart host's
                // password) as `<redacted>`, and Debug redacts them too.
                let (a, b) = (format!("{c:?}"), format!("{again:?}"));
                if a != b {
                    let k = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
                    let from = k.saturating_sub(150);
                    panic!(
                        "printed config reads back different:\n{}\n  vs\n{}\n{printed}",
                        a.get(from..(k + 150).min(a.len())).unwrap_or(&a),
                        b.get(from..(k + 150).min(b.len())).unwrap_or(&b),
                    );
                }
            }
            Err(e) => panic!("printed config does not read back: {e}\n{printed}"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// PROXY protocol header (src/proxy_protocol.rs)

/// `proxy_protocol::parse` on the first bytes of a connection: a complete header is within
/// its bound and is found the same way from any longer input, and every shorter prefix of
/// it asks for more (the listener reads it in pieces).
pub fn proxy_header(data: &[u8]) {
    match mailroot::proxy_protocol::parse(data) {
        Ok(Parsed::Done { header, consumed }) => {
            assert!(consumed > 0 && consumed <= data.len());
            let bound = match header.version {
                Version::V1 => MAX_V1_BYTES,
                Version::V2 => MAX_V2_BYTES,
            };
            assert!(consumed <= bound, "{consumed} > {bound}");
            assert_eq!(
                mailroot::proxy_protocol::parse(&data[..consumed]),
                Ok(Parsed::Done { header, consumed })
            );
            for k in 0..consumed {
                assert_eq!(
                    mailroot::proxy_protocol::parse(&data[..k]),
                    Ok(Parsed::NeedMore),
                    "prefix {k} of a {consumed}-byte header"
                );
            }
        }
        Ok(Parsed::NeedMore) => {
            assert!(data.len() < MAX_V2_BYTES + 16, "NeedMore past every bound");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

// ---------------------------------------------------------------------------------------
// SASL exchanges of AUTH (src/smtp/sasl.rs)

/// An AUTH exchange driven by client lines. Control byte: bit 0 the mechanism (LOGIN when
/// set), bit 1 whether the first line is the AUTH command's initial response. The rest is
/// split at LF into the client's lines. Asserts: challenges are `334`, failures map to a
/// 5xx reply, accepted credentials keep their invariants (1..=255 octets of user name, at
/// most 255 of password, no NUL).
pub fn sasl_auth(data: &[u8]) {
    let (ctl, rest) = split_ctl(data);
    let mechanism = if ctl & 1 == 1 { Mechanism::Login } else { Mechanism::Plain };
    let mut lines = rest.split(|&b| b == b'\n');
    let initial = if ctl & 2 == 2 { lines.next().map(String::from_utf8_lossy) } else { None };
    let mut step = sasl::start(mechanism, initial.as_deref());
    loop {
        let exchange: Exchange = match step {
            Step::Challenge(exchange, reply) => {
                assert_eq!(reply.code, 334);
                check_reply_text(&reply);
                exchange
            }
            Step::Done(c) => {
                assert!((1..=MAX_SASL_FIELD_BYTES).contains(&c.authcid.len()));
                assert!(c.password.len() <= MAX_SASL_FIELD_BYTES);
                assert!(!c.authcid.contains('\0') && !c.authzid.contains('\0'));
                assert!(!c.password.contains(&0));
                return;
            }
            Step::Failed(e) => {
                let reply = Reply::from(&e);
                assert!((500..600).contains(&reply.code), "{e}");
                check_reply_text(&reply);
                return;
            }
        };
        let Some(line) = lines.next() else { return };
        step = exchange.respond(line);
    }
}

// ---------------------------------------------------------------------------------------
// W3C protocol log lines (src/protolog/format.rs)

/// Take a length-prefixed field from `data` (a length byte, then that many bytes).
fn take<'a>(data: &mut &'a [u8]) -> &'a [u8] {
    let (len, rest) = split_ctl(data);
    let n = usize::from(len).min(rest.len());
    let (field, tail) = rest.split_at(n);
    *data = tail;
    field
}

/// A `u64` from up to 8 bytes of `data`.
fn take_u64(data: &mut &[u8]) -> u64 {
    let n = data.len().min(8);
    let mut b = [0u8; 8];
    b[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    u64::from_le_bytes(b)
}

/// `write_line` with fields taken from the input (user name, site, computer name, verb,
/// arguments: peer bytes and operator text) and `escape` on the whole input: the line is
/// one CRLF-terminated line of exactly 14 space-separated fields, and every text field
/// unescapes to the value that went in.
pub fn protolog_line(data: &[u8]) {
    let mut whole = Vec::new();
    escape(data, &mut whole);
    let field = std::str::from_utf8(&whole).expect("escaped text is ASCII");
    assert_eq!(unescape(field).as_deref(), Some(data), "escape round trip");

    let mut d = data;
    let user = String::from_utf8_lossy(take(&mut d)).into_owned();
    let site = String::from_utf8_lossy(take(&mut d)).into_owned();
    let computer = String::from_utf8_lossy(take(&mut d)).into_owned();
    let method = String::from_utf8_lossy(take(&mut d)).into_owned();
    let query = take(&mut d).to_vec();
    let n = take_u64(&mut d);
    let client = if n & 1 == 0 {
        IpAddr::V4(Ipv4Addr::from((n >> 8) as u32))
    } else {
        IpAddr::V6(Ipv6Addr::from(u128::from(n) << 64 | u128::from(n)))
    };
    let record = Record {
        unix_ms: take_u64(&mut d) % (300 * 365 * 86_400_000),
        client,
        username: (n & 2 == 0).then_some(user.as_str()),
        site: &site,
        computer: &computer,
        server: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), (n >> 16) as u16),
        method: &method,
        query: &query,
        status: (n >> 32) as u16,
        sc_bytes: take_u64(&mut d),
        cs_bytes: (n & 4 == 0).then_some(n >> 3),
        time_taken_ms: take_u64(&mut d),
    };
    let mut line = Vec::new();
    write_line(&record, &mut line);
    let body = line.strip_suffix(b"\r\n").expect("CRLF-terminated");
    assert!(!body.contains(&b'\r') && !body.contains(&b'\n'), "one line: {line:?}");
    let text = std::str::from_utf8(body).expect("log lines are ASCII");
    let fields: Vec<&str> = text.split(' ').collect();
    assert_eq!(fields.len(), FIELD_COUNT, "{text}");
    assert!(fields.iter().all(|f| !f.is_empty()), "{text}");
    let back = |i: usize| unescape(fields[i]).unwrap_or_else(|| panic!("field {i}: {text}"));
    let want_user: &[u8] = if n & 2 == 0 { user.as_bytes() } else { b"" };
    assert_eq!(back(3), want_user);
    assert_eq!(back(4), site.as_bytes());
    assert_eq!(back(5), computer.as_bytes());
    assert_eq!(back(8), method.as_bytes());
    assert_eq!(back(9), query);
}
