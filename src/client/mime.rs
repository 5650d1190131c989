//! An Outbox item -> RFC 5322 / MIME bytes, with the `mail-builder` crate. Pure (layer 0):
//! the date and the Message-ID are passed in.
//!
//! Shape: `text/plain` alone; `multipart/alternative` (text, HTML) when there is HTML;
//! `multipart/mixed` around that when there are attachments (each base64, with its file
//! name in `Content-Disposition` and `Content-Type`; RFC 2231 for non-ASCII names).
//! Headers: `From`, `To`, `Cc`, `Subject`, `Date`, `Message-ID`, `MIME-Version`,
//! `Importance` and `X-Priority` (always written: CDONTS wrote them too). **`Bcc` is never
//! written**: the blind recipients are not even passed to the builder ([`Draft`] has no
//! field for them), so no code path can leak them into a header.
//!
//! STANDARDS: RFC 5322 (fields), RFC 2045-2047 (MIME, encoded words), RFC 2231
//! (parameter values), RFC 2156 §5.3 (`Importance`).

use mail_builder::MessageBuilder;
use mail_builder::headers::address::Address;
use mail_builder::headers::date::Date;
use mail_builder::headers::text::Text;

use super::draft::{Attachments, Importance, Kind, Recipients};

/// What the builder needs. Borrowed from the `Message` and `Session`.
#[derive(Clone, Copy, Debug)]
pub struct Draft<'a> {
    /// The sender's display name (may be empty).
    pub from_name: &'a str,
    /// The sender's address.
    pub from_address: &'a str,
    /// Subject (may be empty: no `Subject:` is written then).
    pub subject: &'a str,
    /// The plain text body.
    pub text: &'a str,
    /// The HTML body, if any.
    pub html: Option<&'a str>,
    /// Importance.
    pub importance: Importance,
    /// Recipients; only `To` and `Cc` ones are written.
    pub recipients: &'a Recipients,
    /// Attachments.
    pub attachments: &'a Attachments,
    /// `Date:`, seconds since the Unix epoch (UTC).
    pub date_unix: i64,
    /// `Message-ID:` without angle brackets, e.g. `1733400000000.42@example.com`.
    pub message_id: &'a str,
}

/// A mail-builder address: no display name when empty.
fn address<'a>(name: &'a str, addr: &'a str) -> Address<'a> {
    Address::new_address((!name.is_empty()).then_some(name), addr)
}

/// The header list of one kind, or `None` when there is nobody.
fn list<'a>(r: &'a Recipients, kind: Kind) -> Option<Address<'a>> {
    let v: Vec<Address<'a>> = r.of_kind(kind).map(|r| address(r.name(), r.address())).collect();
    (!v.is_empty()).then(|| Address::new_list(v))
}

/// Build the message.
#[must_use]
pub fn build(d: &Draft<'_>) -> Vec<u8> {
    let mut b = MessageBuilder::new()
        .from(address(d.from_name, d.from_address))
        .date(Date::new(d.date_unix))
        .message_id(d.message_id)
        .header("Importance", Text::new(d.importance.as_str()))
        .header("X-Priority", Text::new(d.importance.x_priority()));
    if let Some(to) = list(d.recipients, Kind::To) {
        b = b.to(to);
    }
    if let Some(cc) = list(d.recipients, Kind::Cc) {
        b = b.cc(cc);
    }
    if !d.subject.is_empty() {
        b = b.subject(d.subject);
    }
    b = b.text_body(d.text);
    if let Some(html) = d.html {
        b = b.html_body(html);
    }
    for a in d.attachments.iter() {
        b = b.attachment(a.content_type(), a.name(), a.bytes());
    }
    let mut out = Vec::new();
    b.serialize(&mut out);
    out
}

/// A Message-ID (without angle brackets) unique per call when `unique` is: the time in
/// milliseconds, the caller's unique number, and the sender's domain.
#[must_use]
pub fn message_id(unix_ms: u128, unique: u64, domain: &str) -> String {
    format!("{unix_ms}.{unique:x}@{domain}")
}

#[cfg(test)]
mod tests {
    use mail_parser::{MessageParser, MimeHeaders as _};

    use super::*;

    fn draft<'a>(r: &'a Recipients, a: &'a Attachments, html: Option<&'a str>) -> Draft<'a> {
        Draft {
            from_name: "Friendly Name",
            from_address: "someone@example.com",
            subject: "Grüße from the Outbox",
            text: "Message Text, ünïcode\r\nsecond line\r\n",
            html,
            importance: Importance::High,
            recipients: r,
            attachments: a,
            date_unix: 1_733_400_000,
            message_id: "1733400000000.1@example.com",
        }
    }

    fn recipients() -> Recipients {
        let mut r = Recipients::default();
        r.add("To One", "to1@example.net", Kind::To).unwrap();
        r.add("", "cc1@example.net", Kind::Cc).unwrap();
        r.add("Secret", "hidden@example.org", Kind::Bcc).unwrap();
        r
    }

    #[test]
    fn bcc_never_in_the_headers() {
        let r = recipients();
        let a = Attachments::default();
        let bytes = build(&draft(&r, &a, None));
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.to_ascii_lowercase().contains("bcc"), "{text}");
        assert!(!text.contains("hidden@example.org"), "{text}");
        assert!(!text.contains("Secret"), "{text}");
        let m = MessageParser::default().parse(&bytes).unwrap();
        assert!(m.bcc().is_none());
        assert_eq!(m.to().unwrap().first().unwrap().address(), Some("to1@example.net"));
        assert_eq!(m.cc().unwrap().first().unwrap().address(), Some("cc1@example.net"));
    }

    #[test]
    fn importance_headers() {
        let r = recipients();
        let a = Attachments::default();
        for (imp, want, prio) in [
            (Importance::Low, "low", "5 (Lowest)"),
            (Importance::Normal, "normal", "3 (Normal)"),
            (Importance::High, "high", "1 (Highest)"),
        ] {
            let mut d = draft(&r, &a, None);
            d.importance = imp;
            let bytes = build(&d);
            let m = MessageParser::default().parse(&bytes).unwrap();
            assert_eq!(m.header_raw("Importance").map(str::trim), Some(want));
            assert_eq!(m.header_raw("X-Priority").map(str::trim), Some(prio));
        }
    }

    #[test]
    fn fields_and_attachments_round_trip_through_mail_parser() {
        let r = recipients();
        let mut a = Attachments::default();
        let binary: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        a.add_bytes("data.bin", "", binary.clone()).unwrap();
        a.add_bytes("notes.txt", "text/plain", b"plain\r\nnotes\r\n".to_vec()).unwrap();
        a.add_bytes("résumé.pdf", "", vec![0x25, 0x50, 0x44, 0x46, 0, 0xff]).unwrap();
        let bytes = build(&draft(&r, &a, Some("<p>Hello <b>HTML</b></p>")));
        assert!(bytes.iter().all(|b| *b < 128), "7-bit MIME only");
        let m = MessageParser::default().parse(&bytes).unwrap();
        assert_eq!(m.subject(), Some("Grüße from the Outbox"));
        assert_eq!(m.body_text(0).as_deref(), Some("Message Text, ünïcode\r\nsecond line\r\n"));
        assert_eq!(m.body_html(0).as_deref(), Some("<p>Hello <b>HTML</b></p>"));
        let from = m.from().unwrap().first().unwrap();
        assert_eq!(
            (from.name(), from.address()),
            (Some("Friendly Name"), Some("someone@example.com"))
        );
        assert_eq!(m.date().unwrap().to_timestamp(), 1_733_400_000);
        assert_eq!(m.message_id(), Some("1733400000000.1@example.com"));
        let got: Vec<(String, String, Vec<u8>)> = m
            .attachments()
            .map(|p| {
                let ct = p.content_type().unwrap();
                let t = format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or(""));
                (p.attachment_name().unwrap().to_owned(), t, p.contents().to_vec())
            })
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], ("data.bin".into(), "application/octet-stream".into(), binary));
        assert_eq!(got[1].0, "notes.txt");
        assert_eq!(got[1].2, b"plain\r\nnotes\r\n");
        assert_eq!(got[2].0, "résumé.pdf");
        assert_eq!(got[2].1, "application/pdf");
        assert_eq!(got[2].2, vec![0x25, 0x50, 0x44, 0x46, 0, 0xff]);
    }

    /// Unix programs give text with bare LF: every line of the message ends with CRLF
    /// (an SMTP server may refuse bare LF; the Pickup folder normalises, SMTP does not).
    #[test]
    fn line_ends_are_crlf() {
        let r = recipients();
        let a = Attachments::default();
        for text in ["a\nb\n", "ascii only\nline\n", "ü\nü\r\n", "no newline"] {
            let mut d = draft(&r, &a, Some("<p>x</p>\n<p>y</p>"));
            d.text = text;
            let bytes = build(&d);
            for (i, b) in bytes.iter().enumerate() {
                if *b == b'\n' {
                    assert_eq!(bytes.get(i.wrapping_sub(1)), Some(&b'\r'), "bare LF for {text:?}");
                }
            }
        }
    }

    #[test]
    fn message_ids_differ() {
        assert_ne!(message_id(1, 1, "a.example"), message_id(1, 2, "a.example"));
        assert_eq!(message_id(10, 255, "a.example"), "10.ff@a.example");
    }
}
