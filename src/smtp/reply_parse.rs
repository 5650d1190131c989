//! Reply parser for the outbound client: bytes from a server in, `Reply` values out.
//!
//! `ReplyParser::parse` assembles one (possibly multi-line) reply `250-a` ... `250 z` from
//! input split anywhere: it keeps the unfinished line itself (bounded), so the caller hands
//! it every byte it reads and never re-feeds anything. It stops right after the last line
//! of a reply, so pipelined replies come out one at a time.
//!
//! TRUST: the input is raw peer bytes. Bounds: a line is at most `MAX_REPLY_LINE_BYTES`
//! (RFC 5321 §4.5.3.1.5 says 512 octets; we are lenient up to 4 KiB, as real servers
//! overrun it in EHLO and error texts), a reply at most `MAX_REPLY_LINES` lines. Past a
//! bound, or on a line that is not `ddd[-| ]text`, the parser returns a `ReplyError` and
//! the caller closes the connection. Text is decoded lossily as UTF-8 and control
//! characters other than HT become `?`, so a `Reply` built here keeps the `Reply`
//! invariant (no CR or LF inside a line) and is safe to log and to quote in an NDR.
//! Nothing here panics on any input.
//!
//! Choices where the RFCs leave room:
//! - Lines end at LF; a CR before it is removed (bare-LF servers exist).
//! - `250` alone (no text) is a valid last line (RFC 5321 §4.2 `Reply-code [ SP textstring ]`).
//! - The enhanced status code (RFC 2034 §4) is taken from the first line when its class
//!   equals the reply's first digit, and removed from every line that starts with the
//!   same code. Otherwise it is left in the text.
//!
//! STANDARDS: RFC 5321 §4.2 (reply syntax, multi-line replies), §4.5.3.1.5 (reply line
//! length); RFC 2034 §4 (enhanced status codes on every line); RFC 3463 (code syntax).

use std::borrow::Cow;
use std::fmt;

use memchr::memchr;

use super::reply::{EnhancedStatus, Reply};

/// Longest reply line accepted, in bytes including CRLF (RFC 5321 says 512; lenient).
pub const MAX_REPLY_LINE_BYTES: usize = 4096;
/// Most lines in one multi-line reply (an EHLO reply has about 20).
pub const MAX_REPLY_LINES: usize = 128;

/// Why the server's bytes are not a reply. The peer is at fault in every case.
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyError {
    /// A line is longer than `MAX_REPLY_LINE_BYTES`.
    LineTooLong,
    /// A reply has more than `MAX_REPLY_LINES` lines.
    TooManyLines,
    /// A line does not start with a reply code `[2-5][0-5][0-9]`.
    BadCode,
    /// The code is not followed by `-`, a space or the end of the line.
    BadSeparator,
    /// A line of a multi-line reply has a different code from the first line.
    CodeMismatch,
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplyError::LineTooLong => "reply line too long",
            ReplyError::TooManyLines => "too many lines in a multi-line reply",
            ReplyError::BadCode => "reply line does not start with a reply code",
            ReplyError::BadSeparator => "reply code not followed by '-', ' ' or end of line",
            ReplyError::CodeMismatch => "multi-line reply changes its reply code",
        })
    }
}

impl std::error::Error for ReplyError {}

/// Incremental reply parser. See the module docs.
#[derive(Clone, Debug, Default)]
pub struct ReplyParser {
    /// Bytes of the unfinished line (no LF yet). Invariant: len ≤ `MAX_REPLY_LINE_BYTES`.
    line: Vec<u8>,
    /// Code of the reply being assembled; `None` before its first line.
    code: Option<u16>,
    /// Enhanced status of the first line, if any.
    status: Option<EnhancedStatus>,
    /// Text of the lines so far, `'\n'`-separated. Invariant: no CR, LF or other controls
    /// but HT inside a line.
    text: String,
    /// Lines of the current reply so far. Invariant: ≤ `MAX_REPLY_LINES`.
    lines: usize,
}

impl ReplyParser {
    /// A parser at the start of a reply.
    pub fn new() -> Self {
        ReplyParser::default()
    }

    /// True if no partial reply is buffered (a connection closed now ended cleanly).
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.line.is_empty() && self.code.is_none()
    }

    /// Consume `input` up to and including the last line of the next complete reply.
    /// Returns the bytes consumed and the reply, or `None` when all of `input` was consumed
    /// without completing one (the partial line is kept inside). After an error the parser
    /// is in an unspecified state; the caller drops the connection.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Option<Reply>), ReplyError> {
        let mut pos = 0;
        while pos < input.len() {
            let rest = &input[pos..];
            let room = MAX_REPLY_LINE_BYTES - self.line.len();
            match memchr(b'\n', &rest[..rest.len().min(room)]) {
                None if rest.len() >= room => return Err(ReplyError::LineTooLong),
                None => {
                    self.line.extend_from_slice(rest);
                    return Ok((input.len(), None));
                }
                Some(k) => {
                    pos += k + 1;
                    let done = if self.line.is_empty() {
                        self.add_line(&rest[..k])?
                    } else {
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(&rest[..k]);
                        let done = self.add_line(&line);
                        line.clear();
                        self.line = line; // keep the allocation
                        done?
                    };
                    if done {
                        return Ok((pos, Some(self.take_reply())));
                    }
                }
            }
        }
        Ok((pos, None))
    }

    /// Add one line (without LF). Returns true if it was the last line of the reply.
    fn add_line(&mut self, line: &[u8]) -> Result<bool, ReplyError> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let code = reply_code(line).ok_or(ReplyError::BadCode)?;
        let (last, text) = match line.get(3) {
            None => (true, &[][..]),
            Some(b' ') => (true, &line[4..]),
            Some(b'-') => (false, &line[4..]),
            Some(_) => return Err(ReplyError::BadSeparator),
        };
        match self.code {
            None => self.code = Some(code),
            Some(c) if c != code => return Err(ReplyError::CodeMismatch),
            Some(_) => self.text.push('\n'),
        }
        self.lines += 1;
        if self.lines > MAX_REPLY_LINES {
            return Err(ReplyError::TooManyLines);
        }
        let text = match enhanced_status(text, code) {
            Some((st, rest)) if self.lines == 1 => {
                self.status = Some(st);
                rest
            }
            Some((st, rest)) if self.status == Some(st) => rest,
            _ => text,
        };
        push_sanitised(&mut self.text, text);
        Ok(last)
    }

    /// The assembled reply; resets for the next one.
    fn take_reply(&mut self) -> Reply {
        let code = self.code.take().unwrap_or(0); // set: add_line ran before `done`
        self.lines = 0;
        Reply { code, status: self.status.take(), text: Cow::Owned(std::mem::take(&mut self.text)) }
    }
}

/// `[2-5][0-5][0-9]` at the start of `line`, as a number.
fn reply_code(line: &[u8]) -> Option<u16> {
    match line {
        [a @ b'2'..=b'5', b @ b'0'..=b'5', c @ b'0'..=b'9', ..] => {
            Some(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => None,
    }
}

/// `class.subject.detail` (1, 1-3, 1-3 digits) followed by a space or the end, where
/// class equals the first digit of `code` and is 2, 4 or 5. Returns it and the text after.
fn enhanced_status(text: &[u8], code: u16) -> Option<(EnhancedStatus, &[u8])> {
    let class = match text.first()? {
        c @ (b'2' | b'4' | b'5') if u16::from(c - b'0') == code / 100 => c - b'0',
        _ => return None,
    };
    let rest = text.get(1..)?.strip_prefix(b".")?;
    let (subject, rest) = number(rest)?;
    let (detail, rest) = number(rest.strip_prefix(b".")?)?;
    let rest = match rest {
        [] => rest,
        [b' ', tail @ ..] => tail,
        _ => return None,
    };
    Some((EnhancedStatus { class, subject, detail }, rest))
}

/// 1-3 leading digits as a number, and what follows.
fn number(s: &[u8]) -> Option<(u16, &[u8])> {
    let n = s.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 3 {
        return None;
    }
    let v = s[..n].iter().fold(0u16, |v, c| v * 10 + u16::from(c - b'0'));
    Some((v, &s[n..]))
}

/// Append peer text: each byte that is not valid UTF-8, and each control character other
/// than HT, becomes `?`. One `?` per byte (not U+FFFD's three), so the text is never
/// longer than the line it came from and a reply written out again stays within
/// `MAX_REPLY_LINE_BYTES` (found by fuzz/ `smtp_reply`).
fn push_sanitised(out: &mut String, text: &[u8]) {
    for chunk in text.utf8_chunks() {
        for c in chunk.valid().chars() {
            out.push(if c.is_control() && c != '\t' { '?' } else { c });
        }
        out.extend(std::iter::repeat_n('?', chunk.invalid().len()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse all of `input`, returning the replies as `code status|text` strings, or the
    /// first error.
    fn all(input: &[u8]) -> Result<Vec<String>, ReplyError> {
        let mut p = ReplyParser::new();
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < input.len() {
            let (n, r) = p.parse(&input[pos..])?;
            assert!(n > 0 && pos + n <= input.len());
            pos += n;
            if let Some(r) = r {
                out.push(render(&r));
            }
        }
        if !p.is_idle() {
            out.push("<partial>".into());
        }
        Ok(out)
    }

    fn render(r: &Reply) -> String {
        match r.status {
            Some(s) => format!("{} {}.{}.{}|{}", r.code, s.class, s.subject, s.detail, r.text),
            None => format!("{}|{}", r.code, r.text),
        }
    }

    #[test]
    fn table() {
        use ReplyError::*;
        let long = format!("250 {}\r\n", "x".repeat(MAX_REPLY_LINE_BYTES));
        let many = "250-x\r\n".repeat(MAX_REPLY_LINES) + "250 y\r\n";
        type Case<'a> = (&'a [u8], Result<&'a [&'a str], ReplyError>);
        let cases: &[Case<'_>] = &[
            (b"220 mx.example ESMTP\r\n", Ok(&["220|mx.example ESMTP"])),
            (b"250 2.1.0 Ok\r\n", Ok(&["250 2.1.0|Ok"])),
            (b"250 2.1.0\r\n", Ok(&["250 2.1.0|"])),
            (b"250\r\n", Ok(&["250|"])),
            (b"250 \r\n", Ok(&["250|"])),
            (b"250 ok\n", Ok(&["250|ok"])),
            (b"250-a\r\n250-b\r\n250 c\r\n", Ok(&["250|a\nb\nc"])),
            (b"550-5.1.1 no\r\n550 5.1.1 such user\r\n", Ok(&["550 5.1.1|no\nsuch user"])),
            (b"550-5.1.1 no\r\n550 user\r\n", Ok(&["550 5.1.1|no\nuser"])),
            // Class differs from the code: not an enhanced status.
            (b"354 2.0.0 go\r\n", Ok(&["354|2.0.0 go"])),
            (b"250 5.0.0 odd\r\n", Ok(&["250|5.0.0 odd"])),
            (b"250 2.1234.0 x\r\n", Ok(&["250|2.1234.0 x"])),
            (b"250 2.1.0x\r\n", Ok(&["250|2.1.0x"])),
            // Pipelined replies come out one at a time.
            (
                b"250 2.1.0 a\r\n250 2.1.5 b\r\n354 go\r\n",
                Ok(&["250 2.1.0|a", "250 2.1.5|b", "354|go"]),
            ),
            (b"250 ok\r\n250-par", Ok(&["250|ok", "<partial>"])),
            // Hostile text is sanitised.
            (b"250 a\rb\x00c\xffd\r\n", Ok(&["250|a?b?c?d"])),
            (b"250 \xc3\xa9t\xc3\xa9\r\n", Ok(&["250|\u{e9}t\u{e9}"])),
            // Errors.
            (b"\r\n", Err(BadCode)),
            (b"25\r\n", Err(BadCode)),
            (b"hello\r\n", Err(BadCode)),
            (b"199 x\r\n", Err(BadCode)),
            (b"600 x\r\n", Err(BadCode)),
            (b"260 x\r\n", Err(BadCode)),
            (b"250x\r\n", Err(BadSeparator)),
            (b"250-a\r\n251 b\r\n", Err(CodeMismatch)),
            (long.as_bytes(), Err(LineTooLong)),
            (many.as_bytes(), Err(TooManyLines)),
        ];
        for (input, want) in cases {
            let want = want.map(|v| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(all(input), want, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn split_at_every_byte_gives_the_same_replies() {
        let input: &[u8] = b"250-mx.example\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 DSN\r\n\
            250 2.1.0 Ok\r\n550-5.1.1 a\n550 5.1.1 b\r\n354 go\r\n";
        let whole = all(input).unwrap();
        assert_eq!(whole.len(), 4);
        for cut in 0..=input.len() {
            let mut p = ReplyParser::new();
            let mut got = Vec::new();
            for piece in [&input[..cut], &input[cut..]] {
                let mut pos = 0;
                while pos < piece.len() {
                    let (n, r) = p.parse(&piece[pos..]).unwrap();
                    pos += n;
                    got.extend(r.as_ref().map(render));
                }
            }
            assert_eq!(got, whole, "cut {cut}");
        }
        let mut p = ReplyParser::new();
        let mut got = Vec::new();
        for b in input {
            let (n, r) = p.parse(std::slice::from_ref(b)).unwrap();
            assert_eq!(n, 1);
            got.extend(r.as_ref().map(render));
        }
        assert_eq!(got, whole);
    }

    #[test]
    fn round_trips_our_own_replies() {
        let ext = crate::smtp::reply::Extensions {
            max_message_size_bytes: 5,
            smtputf8: true,
            chunking: false,
            auth: true,
            starttls: true,
        };
        for r in [
            Reply::ok(),
            Reply::queued("0000000000000001"),
            Reply::ehlo("mx.example", &ext),
            Reply::greeting("mx.example"),
            Reply::start_data(),
            Reply::new(451, (4, 3, 0), "a\nb"),
        ] {
            let mut wire = Vec::new();
            r.write_to(&mut wire);
            let (n, got) = ReplyParser::new().parse(&wire).unwrap();
            assert_eq!((n, got.as_ref()), (wire.len(), Some(&r)));
        }
    }

    proptest::proptest! {
        /// parse(print(x)) == x for replies as `Reply::write_to` prints them.
        #[test]
        fn parse_of_print_is_identity(
            code in 200u16..560,
            status in proptest::option::of((1u16..999, 0u16..999)),
            lines in proptest::collection::vec("[ -~]{0,30}", 1..5),
        ) {
            // Valid codes only; 3xx never has an enhanced status (RFC 3463 has no class 3).
            proptest::prop_assume!(code % 100 < 60 && code / 100 != 3);
            let class = u8::try_from(code / 100).unwrap();
            let status = status.map(|(subject, detail)| EnhancedStatus { class, subject, detail });
            // A line that itself starts like a status code would be ambiguous.
            proptest::prop_assume!(lines.iter().all(|l| enhanced_status(l.as_bytes(), code).is_none()));
            let r = Reply { code, status, text: lines.join("\n").into() };
            let mut wire = Vec::new();
            r.write_to(&mut wire);
            let (n, got) = ReplyParser::new().parse(&wire).unwrap();
            proptest::prop_assert_eq!(n, wire.len());
            let got = got.unwrap();
            proptest::prop_assert_eq!(got, r);
        }
    }

    /// Found by the fuzz target `smtp_reply` (fuzz/corpus/smtp_reply/crash-fbb3...): a
    /// line of invalid UTF-8 grew threefold (U+FFFD per byte), so the reply written out
    /// again was over the line bound. Each invalid byte is now one `?`.
    #[test]
    fn invalid_utf8_becomes_one_question_mark_per_byte() {
        let mut line = b"440 ".to_vec();
        line.extend(std::iter::repeat_n(0xff, MAX_REPLY_LINE_BYTES - 6));
        line.extend_from_slice(b"\r\n");
        let (n, r) = ReplyParser::new().parse(&line).unwrap();
        let r = r.unwrap();
        assert_eq!(n, line.len());
        assert_eq!(r.text, "?".repeat(MAX_REPLY_LINE_BYTES - 6));
        let mut wire = Vec::new();
        r.write_to(&mut wire);
        assert_eq!(wire.len(), line.len());
        assert_eq!(ReplyParser::new().parse(&wire).unwrap(), (wire.len(), Some(r)));
        assert_eq!(all(b"250 a\xc3\xa9\xffb\x01\tc\r\n").unwrap(), ["250|a\u{e9}?b?\tc"]);
    }

    #[test]
    fn line_bound_counts_the_buffered_part() {
        let mut p = ReplyParser::new();
        let half = vec![b'x'; MAX_REPLY_LINE_BYTES / 2];
        assert_eq!(p.parse(b"250 ").unwrap(), (4, None));
        assert_eq!(p.parse(&half).unwrap(), (half.len(), None));
        assert_eq!(p.parse(&half), Err(ReplyError::LineTooLong));
    }
}
