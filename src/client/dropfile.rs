//! A Drop file -> the fields an Inbox reader wants. Pure (layer 0): bytes in, values out.
//!
//! WHAT: `Drop/<id>.eml` is `x-sender:` + `x-receiver:` lines (the envelope, written by
//! `local::drop`), then the message, which starts with the relay's `Received:` header.
//! [`parse`] splits off the envelope and reads the message with mail-parser: subject,
//! text and HTML bodies, the `From:` person, `To:`/`Cc:` recipients, attachments (name,
//! type, decoded bytes), `Date:` as the sent time and the date of the topmost `Received:`
//! (ours) as the received time. A field the message lacks is `None`, never an error (the
//! release notes' "Time properties ... return E_UNEXPECTED").
//!
//! A file without the envelope lines, or one mail-parser cannot read as a message, is a
//! [`DropFileError`] (the Inbox skips it with that reason).
//!
//! TRUST: Drop files are written by the relay from mail anyone could send; mail-parser
//! reads them without panicking (its own fuzzing), and nothing here indexes unchecked.
//!
//! STANDARDS: RFC 5322 (fields), RFC 2045-2047 (MIME), RFC 5321 §4.4 (`Received:`); the
//! IIS Drop envelope lines (README "Drop file format").

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mail_parser::{Address, MessageParser, MimeHeaders as _};

/// Why a file in Drop/ is not readable as a delivered message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DropFileError {
    /// The file does not start with `x-sender:` and `x-receiver:` lines.
    #[error("no x-sender/x-receiver envelope at the top (not a Drop file)")]
    NoEnvelope,
    /// Nothing after the envelope reads as a message.
    #[error("no message after the envelope")]
    NoMessage,
}

/// A person named in a header: display name (may be empty) and address.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Person {
    /// Display name; empty when the header gave none.
    pub name: String,
    /// The address (may be empty for a name-only group member).
    pub address: String,
}

/// An attachment of a received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedAttachment {
    /// Its file name (`attachment` when the message gave none).
    pub name: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Decoded content.
    pub bytes: Vec<u8>,
}

/// What a Drop file holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`x-sender:`; empty for a bounce).
    pub envelope_sender: String,
    /// The envelope recipients this file was delivered for (`x-receiver:` lines).
    pub receivers: Vec<String>,
    /// `Subject:`.
    pub subject: Option<String>,
    /// The first text/plain body.
    pub text: Option<String>,
    /// The first text/html body.
    pub html: Option<String>,
    /// The first `From:` person (`Sender.Name` / `.Address`).
    pub sender: Option<Person>,
    /// `To:` people.
    pub to: Vec<Person>,
    /// `Cc:` people.
    pub cc: Vec<Person>,
    /// Attachments, in order.
    pub attachments: Vec<ReceivedAttachment>,
    /// `Date:` (when it was sent).
    pub time_sent: Option<SystemTime>,
    /// The date of the topmost `Received:` header (when our relay took it).
    pub time_received: Option<SystemTime>,
    /// `Message-ID:`.
    pub message_id: Option<String>,
}

impl ReceivedMail {
    /// Delivered for `address` (an `x-receiver:` line names it; ASCII case ignored).
    #[must_use]
    pub fn is_for(&self, address: &str) -> bool {
        self.receivers.iter().any(|r| r.eq_ignore_ascii_case(address))
    }
}

/// The envelope lines at the top of `file`: (sender, receivers, where the message starts).
pub fn envelope(file: &[u8]) -> Result<(String, Vec<String>, usize), DropFileError> {
    let mut sender = None;
    let mut receivers = Vec::new();
    let mut pos = 0;
    while pos < file.len() {
        let end = memchr::memchr(b'\n', &file[pos..]).map_or(file.len(), |i| pos + i + 1);
        let line = &file[pos..end];
        let text = line.strip_suffix(b"\n").unwrap_or(line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let Some(colon) = memchr::memchr(b':', text) else { break };
        let (name, value) = (&text[..colon], &text[colon + 1..]);
        let value = String::from_utf8_lossy(value).trim().trim_matches(['<', '>']).to_owned();
        if name.eq_ignore_ascii_case(b"x-sender") && sender.is_none() {
            sender = Some(value);
        } else if name.eq_ignore_ascii_case(b"x-receiver") {
            receivers.push(value);
        } else {
            break;
        }
        pos = end;
    }
    match sender {
        Some(s) if !receivers.is_empty() => Ok((s, receivers, pos)),
        _ => Err(DropFileError::NoEnvelope),
    }
}

/// Seconds since the epoch -> a time; `None` before 1970.
fn time(secs: i64) -> Option<SystemTime> {
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// Every person of an address header.
fn people(a: Option<&Address<'_>>) -> Vec<Person> {
    a.map(|a| {
        a.iter()
            .map(|p| Person {
                name: p.name().unwrap_or("").to_owned(),
                address: p.address().unwrap_or("").to_owned(),
            })
            .collect()
    })
    .unwrap_or_default()
}

/// Parse a Drop file (see the module docs).
pub fn parse(file: &[u8]) -> Result<ReceivedMail, DropFileError> {
    let (envelope_sender, receivers, start) = envelope(file)?;
    let content = &file[start..];
    if content.iter().all(u8::is_ascii_whitespace) {
        return Err(DropFileError::NoMessage);
    }
    let m = MessageParser::default().parse(content).ok_or(DropFileError::NoMessage)?;
    let attachments = m
        .attachments()
        .map(|p| {
            let content_type = p.content_type().map_or_else(
                || "application/octet-stream".to_owned(),
                |ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or("octet-stream")),
            );
            ReceivedAttachment {
                name: p.attachment_name().unwrap_or("attachment").to_owned(),
                content_type: content_type.to_ascii_lowercase(),
                bytes: p.contents().to_vec(),
            }
        })
        .collect();
    Ok(ReceivedMail {
        envelope_sender,
        receivers,
        subject: m.subject().map(str::to_owned),
        text: m.body_text(0).map(|t| t.into_owned()),
        html: if has_html_part(&m) { m.body_html(0).map(|t| t.into_owned()) } else { None },
        sender: people(m.from()).into_iter().next(),
        to: people(m.to()),
        cc: people(m.cc()),
        attachments,
        time_sent: m.date().and_then(|d| time(d.to_timestamp())),
        time_received: m
            .received()
            .and_then(|r| r.date.as_ref())
            .and_then(|d| time(d.to_timestamp())),
        message_id: m.message_id().map(str::to_owned),
    })
}

/// The message really has a text/html part (mail-parser also offers a text body converted
/// to HTML; that is not "the HTML" of a text-only message).
fn has_html_part(m: &mail_parser::Message<'_>) -> bool {
    m.html_bodies().any(|p| p.is_content_type("text", "html"))
}

#[cfg(test)]
mod tests;
