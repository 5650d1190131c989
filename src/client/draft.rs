//! The parts of a message being written (an Outbox item): importance, recipients and
//! attachments, as plain data. Pure (layer 0): no file is read here (`Attachments::add_file`
//! lives in `client::message`, which may).
//!
//! Fixes of the IIS release notes' known issues, by construction:
//! * an [`Attachment`] holds its bytes from the moment it is added, so they can be read any
//!   number of times ("Calling Attachment.ReadFromFile more than once ... unpredictable
//!   results");
//! * its [`Source`] (the file it came from, or bytes given by the program) and its name are
//!   always readable ("Attachment.Source not supported").
//!
//! TRUST: names, addresses and file names come from the program using the library; an
//! address must pass the RFC 5321 mailbox grammar (`smtp::path::Mailbox`), a display name
//! or attachment name must hold no control character (it becomes a header; mail-builder
//! encodes the rest, RFC 2047 / RFC 2231).
//!
//! STANDARDS: RFC 5321 §4.1.2 (mailbox), RFC 2156 §5.3 (`Importance:`), the de-facto
//! `X-Priority:` (1 highest .. 5 lowest).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::smtp::path::Mailbox;

/// How important a message is (Active Messaging's `ActMsgLow`/`Normal`/`High`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Importance {
    /// `Importance: low`, `X-Priority: 5 (Lowest)`.
    Low,
    /// `Importance: normal`, `X-Priority: 3 (Normal)`.
    #[default]
    Normal,
    /// `Importance: high`, `X-Priority: 1 (Highest)`.
    High,
}

impl Importance {
    /// The `Importance:` value (RFC 2156).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Importance::Low => "low",
            Importance::Normal => "normal",
            Importance::High => "high",
        }
    }

    /// The `X-Priority:` value Outlook and CDO write.
    #[must_use]
    pub fn x_priority(self) -> &'static str {
        match self {
            Importance::Low => "5 (Lowest)",
            Importance::Normal => "3 (Normal)",
            Importance::High => "1 (Highest)",
        }
    }

    /// Parse `low`, `normal` or `high` (any case).
    #[must_use]
    pub fn from_word(word: &str) -> Option<Importance> {
        [Importance::Low, Importance::Normal, Importance::High]
            .into_iter()
            .find(|i| i.as_str().eq_ignore_ascii_case(word))
    }
}

/// Which header a recipient is named in (`ActMsgTo`, `ActMsgCc`, `ActMsgBcc`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `To:`.
    To,
    /// `Cc:`.
    Cc,
    /// Blind copy: in the envelope only, never in any header.
    Bcc,
}

/// A recipient, or a sender, that is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// The address does not pass the RFC 5321 mailbox grammar (`local@domain`).
    #[error("invalid address {0:?} (expected local@domain)")]
    Invalid(String),
    /// A display name or attachment name holds a control character (CR, LF, NUL...).
    #[error("{0:?} holds a control character")]
    ControlCharacter(String),
}

/// Check that `address` is a `local@domain` mailbox (no angle brackets).
pub fn check_address(address: &str) -> Result<(), AddressError> {
    match Mailbox::parse(address) {
        Ok(_) => Ok(()),
        Err(_) => Err(AddressError::Invalid(address.to_owned())),
    }
}

/// Check that a display name or file name can go into a header.
pub fn check_name(name: &str) -> Result<(), AddressError> {
    if name.chars().any(char::is_control) {
        return Err(AddressError::ControlCharacter(name.to_owned()));
    }
    Ok(())
}

/// One recipient of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Display name; may be empty.
    name: String,
    /// `local@domain`. Invariant: passed `check_address`.
    address: String,
    /// Where it is named.
    kind: Kind,
}

impl Recipient {
    /// The display name (empty when none was given).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address, `local@domain`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// To, Cc or Bcc.
    #[must_use]
    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// The recipients of a message, in the order added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recipients {
    /// In order.
    list: Vec<Recipient>,
}

impl Recipients {
    /// Add a recipient (`Recipients.Add name, address, type`). The address must be
    /// `local@domain`; `name` may be empty.
    pub fn add(
        &mut self,
        name: &str,
        address: &str,
        kind: Kind,
    ) -> Result<&Recipient, AddressError> {
        check_name(name)?;
        check_address(address)?;
        self.list.push(Recipient { name: name.to_owned(), address: address.to_owned(), kind });
        Ok(&self.list[self.list.len() - 1])
    }

    /// Remove every recipient.
    pub fn clear(&mut self) {
        self.list.clear();
    }

    /// How many.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// None yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// In the order added.
    pub fn iter(&self) -> impl Iterator<Item = &Recipient> {
        self.list.iter()
    }

    /// Those named in `kind`.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Recipient> {
        self.list.iter().filter(move |r| r.kind == kind)
    }

    /// The envelope recipients: every address once (compared ignoring ASCII case), in order.
    #[must_use]
    pub fn envelope(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::with_capacity(self.list.len());
        for r in &self.list {
            if !out.iter().any(|a| a.eq_ignore_ascii_case(&r.address)) {
                out.push(r.address.clone());
            }
        }
        out
    }
}

/// Where an attachment's bytes came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Read from this file when it was added (`ActMsgFileData`).
    File(PathBuf),
    /// Given as bytes by the program.
    Bytes,
}

/// One attachment. Its bytes are held in memory from the moment it is added: they can be
/// read any number of times, and later changes to the file do not change the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// File name shown to the recipient. Invariant: passed `check_name`, not empty.
    name: String,
    /// MIME type, e.g. `application/pdf`.
    content_type: String,
    /// Where the bytes came from.
    source: Source,
    /// The content.
    bytes: Arc<[u8]>,
}

impl Attachment {
    /// The file name the recipient sees.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The MIME type.
    #[must_use]
    pub fn content_type(&self) -> &str {
        &self.content_type
    }

    /// Where the bytes came from (the file path, or `Bytes`).
    #[must_use]
    pub fn source(&self) -> &Source {
        &self.source
    }

    /// The content (the same bytes on every call).
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// The attachments of a message, in the order added.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachments {
    /// In order.
    list: Vec<Attachment>,
}

impl Attachments {
    /// Attach `bytes` under `name` with MIME type `content_type` (empty: guessed from the
    /// name's extension).
    pub fn add_bytes(
        &mut self,
        name: &str,
        content_type: &str,
        bytes: impl Into<Arc<[u8]>>,
    ) -> Result<&Attachment, AddressError> {
        self.push(name, content_type, Source::Bytes, bytes.into())
    }

    /// Add an attachment whose bytes were read from `path` (used by `add_file`).
    pub(crate) fn push(
        &mut self,
        name: &str,
        content_type: &str,
        source: Source,
        bytes: Arc<[u8]>,
    ) -> Result<&Attachment, AddressError> {
        check_name(name)?;
        if name.is_empty() {
            return Err(AddressError::ControlCharacter(String::new()));
        }
        let content_type = if content_type.is_empty() {
            guess_content_type(name).to_owned()
        } else {
            check_name(content_type)?;
            content_type.to_owned()
        };
        self.list.push(Attachment { name: name.to_owned(), content_type, source, bytes });
        Ok(&self.list[self.list.len() - 1])
    }

    /// How many.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// None.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// In the order added.
    pub fn iter(&self) -> impl Iterator<Item = &Attachment> {
        self.list.iter()
    }
}

/// The MIME type for a file name, from its extension (a short table of common types);
/// `application/octet-stream` otherwise.
#[must_use]
pub fn guess_content_type(name: &str) -> &'static str {
    let ext = Path::new(name).extension().and_then(|e| e.to_str()).unwrap_or("");
    const TABLE: &[(&str, &str)] = &[
        ("txt", "text/plain"),
        ("log", "text/plain"),
        ("csv", "text/csv"),
        ("htm", "text/html"),
        ("html", "text/html"),
        ("xml", "application/xml"),
        ("json", "application/json"),
        ("pdf", "application/pdf"),
        ("zip", "application/zip"),
        ("gz", "application/gzip"),
        ("png", "image/png"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("gif", "image/gif"),
        ("eml", "message/rfc822"),
    ];
    TABLE
        .iter()
        .find(|(e, _)| e.eq_ignore_ascii_case(ext))
        .map_or("application/octet-stream", |(_, t)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn importance_words() {
        let cases = [
            (Importance::Low, "low", "5 (Lowest)"),
            (Importance::Normal, "normal", "3 (Normal)"),
            (Importance::High, "high", "1 (Highest)"),
        ];
        for (i, word, prio) in cases {
            assert_eq!(i.as_str(), word);
            assert_eq!(i.x_priority(), prio);
            assert_eq!(Importance::from_word(&word.to_uppercase()), Some(i));
        }
        assert_eq!(Importance::from_word("urgent"), None);
    }

    #[test]
    fn recipients_are_checked_and_the_envelope_has_no_duplicates() {
        let mut r = Recipients::default();
        let cases: &[(&str, &str, bool)] = &[
            ("Bob", "bob@example.com", true),
            ("", "carol@example.com", true),
            ("Bob again", "BOB@example.com", true),
            ("x", "not an address", false),
            ("x", "<bob@example.com>", false),
            ("Evil\r\nBcc: x@y", "eve@example.com", false),
            ("x", "a@b\r\nRCPT TO:<c@d>", false),
        ];
        for (name, addr, ok) in cases {
            assert_eq!(r.add(name, addr, Kind::To).is_ok(), *ok, "{name:?} {addr:?}");
        }
        assert_eq!(r.len(), 3);
        assert_eq!(r.envelope(), ["bob@example.com", "carol@example.com"]);
    }

    #[test]
    fn attachments_keep_name_source_and_bytes() {
        let mut a = Attachments::default();
        let got = a.add_bytes("report.pdf", "", vec![1u8, 2, 3]).unwrap();
        assert_eq!(got.content_type(), "application/pdf");
        assert_eq!(got.source(), &Source::Bytes);
        for _ in 0..3 {
            assert_eq!(a.iter().next().unwrap().bytes(), &[1, 2, 3]);
        }
        assert!(a.add_bytes("", "", vec![]).is_err());
        assert!(a.add_bytes("a\nb", "", vec![]).is_err());
        assert_eq!(guess_content_type("X.JPG"), "image/jpeg");
        assert_eq!(guess_content_type("noext"), "application/octet-stream");
    }
}
