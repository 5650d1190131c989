//! An Outbox item: a message being written, and `send()`.
//!
//! A [`Message`] borrows its [`Session`] (the sender and the transport). It is built in
//! memory; nothing is written or sent until [`Message::send`], which consumes it. A message
//! that is never sent is simply dropped (the release notes' "Deleting messages in Outbox
//! not supported ... release the MailItem" is the only way there is, and it is safe).
//!
//! TRUST: see `draft`; attachment files are read once, when added.

use std::path::Path;
use std::sync::Arc;

use super::Session;
use super::draft::{Attachment, Attachments, Importance, Recipients, Source};
use super::mime::{Draft, build, message_id};
use super::transport::{SendError, SendReport, Transport, next_unique, unix_ms_now, write_pickup};

/// Why an attachment file could not be added.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Its name cannot be used.
    #[error(transparent)]
    Name(#[from] super::draft::AddressError),
}

impl Attachments {
    /// Attach the file at `path` (`Attachment.ReadFromFile`): its bytes are read now, once;
    /// the name is the file's name and the type is guessed from its extension.
    pub fn add_file(&mut self, path: impl AsRef<Path>) -> Result<&Attachment, AttachError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path)
            .map_err(|source| AttachError::Read { path: path.display().to_string(), source })?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        Ok(self.push(&name, "", Source::File(path.to_path_buf()), Arc::from(bytes))?)
    }
}

/// A message in the Outbox (`Outbox.Items.Add(subject, text, importance)`).
#[derive(Debug)]
pub struct Message<'s> {
    /// The sender and transport.
    session: &'s Session,
    /// Subject.
    subject: String,
    /// Plain text body.
    text: String,
    /// HTML body (sent as `multipart/alternative` with the text).
    html: Option<String>,
    /// Importance.
    importance: Importance,
    /// To, Cc, Bcc.
    recipients: Recipients,
    /// Attachments.
    attachments: Attachments,
}

impl<'s> Message<'s> {
    /// A new message (see `Outbox::add`).
    pub(super) fn new(
        session: &'s Session,
        subject: &str,
        text: &str,
        importance: Importance,
    ) -> Self {
        Message {
            session,
            subject: subject.to_owned(),
            text: text.to_owned(),
            html: None,
            importance,
            recipients: Recipients::default(),
            attachments: Attachments::default(),
        }
    }

    /// The subject.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The plain text body.
    #[must_use]
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The HTML body, if set.
    #[must_use]
    pub fn html(&self) -> Option<&str> {
        self.html.as_deref()
    }

    /// The importance.
    #[must_use]
    pub fn importance(&self) -> Importance {
        self.importance
    }

    /// Add an HTML body (the text stays as the alternative for text-only readers).
    pub fn set_html(&mut self, html: &str) -> &mut Self {
        self.html = Some(html.to_owned());
        self
    }

    /// The recipients.
    #[must_use]
    pub fn recipients(&self) -> &Recipients {
        &self.recipients
    }

    /// The recipients, to add to (`MailItem.Recipients.Add`).
    pub fn recipients_mut(&mut self) -> &mut Recipients {
        &mut self.recipients
    }

    /// The attachments.
    #[must_use]
    pub fn attachments(&self) -> &Attachments {
        &self.attachments
    }

    /// The attachments, to add to.
    pub fn attachments_mut(&mut self) -> &mut Attachments {
        &mut self.attachments
    }

    /// The message as it will be sent (RFC 5322 / MIME, no `Bcc:`), with a fresh `Date:`
    /// and `Message-ID:`.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let now_ms = unix_ms_now();
        let s = self.session;
        let domain = s.address().rsplit_once('@').map_or("localhost", |(_, d)| d);
        let id = message_id(now_ms, next_unique(), domain);
        build(&Draft {
            from_name: s.display_name(),
            from_address: s.address(),
            subject: &self.subject,
            text: &self.text,
            html: self.html.as_deref(),
            importance: self.importance,
            recipients: &self.recipients,
            attachments: &self.attachments,
            date_unix: i64::try_from(now_ms / 1000).unwrap_or(i64::MAX),
            message_id: &id,
        })
    }

    /// Send it (`MailItem.Send`) through the session's transport: every To, Cc and Bcc
    /// recipient gets it, once. Blocks until the server answered (SMTP) or the Pickup
    /// file is durable.
    pub fn send(self) -> Result<SendReport, SendError> {
        let envelope = self.recipients.envelope();
        if envelope.is_empty() {
            return Err(SendError::NoRecipients);
        }
        let content = self.to_bytes();
        let sender = self.session.address();
        match self.session.transport() {
            Transport::Smtp(server) => super::submit::submit(server, sender, &envelope, &content),
            Transport::Pickup(dir) => {
                let rcpts: Vec<&str> = envelope.iter().map(String::as_str).collect();
                let file = write_pickup(dir, sender, &rcpts, &content)?;
                Ok(SendReport { accepted: envelope, reply: None, file: Some(file) })
            }
        }
    }
}
