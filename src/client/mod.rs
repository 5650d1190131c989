//! `mailroot::client`: send and read mail from a program without speaking SMTP, as the IIS
//! SMTP Service's Active Messaging / CDONTS object model did, as a blocking Rust library.
//!
//! ```no_run
//! use mailroot::client::{Importance, Kind, Session, SmtpServer, Transport};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let session = Session::logon(
//!     "Friendly Name",
//!     "someone@example.com",
//!     Transport::Smtp(SmtpServer::new("127.0.0.1", 2525)),
//! )?;
//! let mut message = session.outbox().add("Subject", "Message Text", Importance::High);
//! message.recipients_mut().add("Friendly Name", "someone@example.com", Kind::To)?;
//! message.send()?;
//! # Ok(()) }
//! ```
//!
//! Pieces (layer table: `client` is a library at the service level, owner `client`; it
//! imports pure modules and mechanisms, never the relay's services or wiring):
//! * `draft` (pure): importance, recipients, attachments as data; `mime` (pure): the MIME
//!   message, built with mail-builder, `Bcc` never in a header.
//! * `message`: the Outbox item and `send()`; `transport`: SMTP server settings, the
//!   Pickup writer (checked by the relay's own `pickup::parse`, written atomically by the
//!   `local` rule), the errors.
//! * `submit`: the blocking driver of the relay's sans-IO `smtp::client::ClientSession`
//!   over a `TcpStream`, STARTTLS through rustls' `StreamOwned` (`tls`).
//! * `dropfile` (pure) and `mailbox`: the Inbox over a Drop folder.
//! * `sendmail` (pure): the `sendmail` command line and input rules (the command itself
//!   is in `cli`).
//!
//! What the IIS release notes list as known issues does not happen here: attachments are
//! read once and can be read back any number of times with their source and name;
//! times of a received message are `Option`s; an unsent message is just dropped; no
//! blank line is added to anything.

pub mod draft;
pub mod dropfile;
pub mod mailbox;
pub mod message;
pub mod mime;
pub mod sendmail;
mod submit;
mod tls;
pub mod transport;

use std::path::{Path, PathBuf};

pub use draft::{
    AddressError, Attachment, Attachments, Importance, Kind, Recipient, Recipients, Source,
};
pub use dropfile::{Person, ReceivedAttachment};
pub use mailbox::{Inbox, InboxError, InboxMessage, Skipped};
pub use message::{AttachError, Message};
pub use tls::TlsSetupError;
pub use transport::{SendError, SendReport, SmtpServer, Transport};

/// A logged-on user: the sender of what it sends, the reader of its Inbox
/// (`Session.Logon name, address`).
#[derive(Debug, Clone)]
pub struct Session {
    /// Display name for `From:` (may be empty).
    display_name: String,
    /// The address: `From:`, the envelope sender, the Inbox filter. Invariant: passed
    /// `draft::check_address`.
    address: String,
    /// How messages leave.
    transport: Transport,
    /// The Drop folder the Inbox reads.
    drop_folder: Option<PathBuf>,
}

impl Session {
    /// Log on as `display_name <address>`, sending through `transport`.
    pub fn logon(
        display_name: &str,
        address: &str,
        transport: Transport,
    ) -> Result<Session, AddressError> {
        draft::check_name(display_name)?;
        draft::check_address(address)?;
        Ok(Session {
            display_name: display_name.to_owned(),
            address: address.to_owned(),
            transport,
            drop_folder: None,
        })
    }

    /// A session on a local Mailroot folder: sends through `<mailroot>/Pickup`, reads
    /// `<mailroot>/Drop` (what CDONTS did on the IIS machine).
    pub fn logon_mailroot(
        display_name: &str,
        address: &str,
        mailroot: &Path,
    ) -> Result<Session, AddressError> {
        let pickup = mailroot.join(crate::config::PICKUP_DIR);
        Ok(Session::logon(display_name, address, Transport::Pickup(pickup))?
            .with_drop_folder(mailroot.join(crate::config::DROP_DIR)))
    }

    /// Read the Inbox from `folder` (the Drop folder, or a `[[domain]] drop` folder).
    #[must_use]
    pub fn with_drop_folder(mut self, folder: impl Into<PathBuf>) -> Session {
        self.drop_folder = Some(folder.into());
        self
    }

    /// The display name.
    #[must_use]
    pub fn display_name(&self) -> &str {
        &self.display_name
    }

    /// The address.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The transport.
    #[must_use]
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The Outbox, to create messages in.
    #[must_use]
    pub fn outbox(&self) -> Outbox<'_> {
        Outbox { session: self }
    }

    /// The Inbox: messages in the Drop folder delivered to this address, newest first,
    /// read now.
    pub fn inbox(&self) -> Result<Inbox, InboxError> {
        let folder = self.drop_folder.as_deref().ok_or(InboxError::NoDropFolder)?;
        Inbox::read(folder, &self.address)
    }
}

/// Where new messages are made (`Session.Outbox`).
#[derive(Debug, Clone, Copy)]
pub struct Outbox<'s> {
    /// The session.
    session: &'s Session,
}

impl<'s> Outbox<'s> {
    /// A new message (`Outbox.Items.Add(subject, text, importance)`); add recipients, then
    /// `send()` it.
    #[must_use]
    pub fn add(&self, subject: &str, text: &str, importance: Importance) -> Message<'s> {
        Message::new(self.session, subject, text, importance)
    }
}
