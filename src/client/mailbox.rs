//! The Inbox: the Drop folder, seen by one address (`Session.Inbox`).
//!
//! WHAT: [`Inbox::read`] lists `*.eml` files in the folder (dot-files, i.e. the relay's
//! temporary `.tmp-*` names, are skipped), parses each with `client::dropfile`, and keeps
//! those whose `x-receiver:` lines name the address. A file that cannot be read or parsed
//! is not an error of the whole Inbox: it is listed in [`Inbox::skipped`] with the reason.
//! Messages are ordered newest first by the file's modification time (the moment the
//! relay renamed it into place), then by name; [`Inbox::first`] is `GetFirst`.
//!
//! The Inbox is a snapshot: [`InboxMessage::delete`] removes the file, and the next
//! `Session::inbox()` no longer lists it.
//!
//! TRUST: file contents are untrusted mail (see `dropfile`); names are only displayed.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::dropfile::{Person, ReceivedAttachment, ReceivedMail, parse};
use crate::local::drop::DROP_EXTENSION;

/// Why the Inbox could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InboxError {
    /// The session has no Drop folder (`Session::with_drop_folder`).
    #[error("no Drop folder configured for this session")]
    NoDropFolder,
    /// The folder cannot be listed.
    #[error("cannot read the Drop folder {path}: {source}")]
    Folder {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A file the Inbox skipped, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why (unreadable, not a Drop file, ...).
    pub reason: String,
}

/// One message in the Inbox.
#[derive(Clone, Debug)]
pub struct InboxMessage {
    /// The Drop file.
    path: PathBuf,
    /// Its modification time (when it was delivered).
    modified: SystemTime,
    /// What it holds.
    mail: ReceivedMail,
}

impl InboxMessage {
    /// The Drop file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `Subject:`, if any.
    #[must_use]
    pub fn subject(&self) -> Option<&str> {
        self.mail.subject.as_deref()
    }

    /// The plain text body (for an HTML-only message, mail-parser's text rendering).
    #[must_use]
    pub fn text(&self) -> Option<&str> {
        self.mail.text.as_deref()
    }

    /// The HTML body, if the message has one.
    #[must_use]
    pub fn html(&self) -> Option<&str> {
        self.mail.html.as_deref()
    }

    /// The `From:` person (`Sender.Name`, `Sender.Address`).
    #[must_use]
    pub fn sender(&self) -> Option<&Person> {
        self.mail.sender.as_ref()
    }

    /// The envelope sender (`x-sender:`; empty for a bounce).
    #[must_use]
    pub fn envelope_sender(&self) -> &str {
        &self.mail.envelope_sender
    }

    /// `To:` then `Cc:` people (Bcc recipients are in no header).
    pub fn recipients(&self) -> impl Iterator<Item = &Person> {
        self.mail.to.iter().chain(&self.mail.cc)
    }

    /// `To:` people.
    #[must_use]
    pub fn to(&self) -> &[Person] {
        &self.mail.to
    }

    /// `Cc:` people.
    #[must_use]
    pub fn cc(&self) -> &[Person] {
        &self.mail.cc
    }

    /// The envelope recipients this file was delivered for.
    #[must_use]
    pub fn receivers(&self) -> &[String] {
        &self.mail.receivers
    }

    /// Attachments (name, type, decoded bytes).
    #[must_use]
    pub fn attachments(&self) -> &[ReceivedAttachment] {
        &self.mail.attachments
    }

    /// When it was sent (`Date:`); `None` when the message has no usable `Date:`.
    #[must_use]
    pub fn time_sent(&self) -> Option<SystemTime> {
        self.mail.time_sent
    }

    /// When the relay received it (the topmost `Received:` header's date); `None` when
    /// there is none.
    #[must_use]
    pub fn time_received(&self) -> Option<SystemTime> {
        self.mail.time_received
    }

    /// When the file was written into Drop/.
    #[must_use]
    pub fn time_delivered(&self) -> SystemTime {
        self.modified
    }

    /// `Message-ID:` without angle brackets.
    #[must_use]
    pub fn message_id(&self) -> Option<&str> {
        self.mail.message_id.as_deref()
    }

    /// Delete the message (its Drop file). Other recipients of the same file lose it too:
    /// one Drop file holds every local recipient of a message (IIS did the same).
    pub fn delete(&self) -> std::io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// The messages for one address in a Drop folder, newest first.
#[derive(Clone, Debug, Default)]
pub struct Inbox {
    /// Newest first.
    messages: Vec<InboxMessage>,
    /// Files that could not be read.
    skipped: Vec<Skipped>,
}

impl Inbox {
    /// Read `folder` for `address`.
    pub fn read(folder: &Path, address: &str) -> Result<Inbox, InboxError> {
        let err = |source| InboxError::Folder { path: folder.to_path_buf(), source };
        let mut inbox = Inbox::default();
        for entry in fs::read_dir(folder).map_err(err)? {
            let entry = entry.map_err(err)?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let is_eml = Path::new(&*name).extension().is_some_and(|e| e == DROP_EXTENSION);
            if name.starts_with('.') || !is_eml {
                continue;
            }
            let path = entry.path();
            let skip = |reason: String| Skipped { path: path.clone(), reason };
            let meta = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => m,
                Ok(_) => continue,
                Err(e) => {
                    inbox.skipped.push(skip(format!("cannot read: {e}")));
                    continue;
                }
            };
            let bytes = match fs::read(&path) {
                Ok(b) => b,
                // Deleted between the listing and now: not there any more.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    inbox.skipped.push(skip(format!("cannot read: {e}")));
                    continue;
                }
            };
            match parse(&bytes) {
                Ok(mail) if mail.is_for(address) => {
                    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    inbox.messages.push(InboxMessage { path, modified, mail });
                }
                Ok(_) => {}
                Err(e) => inbox.skipped.push(skip(e.to_string())),
            }
        }
        inbox.messages.sort_by(|a, b| b.modified.cmp(&a.modified).then(b.path.cmp(&a.path)));
        inbox.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(inbox)
    }

    /// How many messages (`Items.Count`).
    #[must_use]
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// No message.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// The newest message (`Items.GetFirst`).
    #[must_use]
    pub fn first(&self) -> Option<&InboxMessage> {
        self.messages.first()
    }

    /// The `n`th message, newest first (0 = `first()`).
    #[must_use]
    pub fn get(&self, n: usize) -> Option<&InboxMessage> {
        self.messages.get(n)
    }

    /// Newest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &InboxMessage> {
        self.messages.iter()
    }

    /// Oldest first.
    pub fn iter_oldest_first(&self) -> impl Iterator<Item = &InboxMessage> {
        self.messages.iter().rev()
    }

    /// Files skipped, with the reason.
    #[must_use]
    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn write(dir: &Path, name: &str, receiver: &str, subject: &str, age_secs: u64) {
        let body = format!(
            "x-sender: a@example.com\r\nx-receiver: {receiver}\r\nSubject: {subject}\r\n\r\nb\r\n"
        );
        let p = dir.join(name);
        fs::write(&p, body).unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000 - age_secs);
        fs::File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
    }

    #[test]
    fn filters_orders_skips_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "1.eml", "bob@localhost", "old", 300);
        write(d, "2.eml", "BOB@localhost", "new", 10);
        write(d, "3.eml", "carol@localhost", "not bob's", 5);
        write(d, "4.eml", "bob@localhost", "middle", 100);
        write(d, ".tmp-5.eml", "bob@localhost", "being written", 0);
        write(d, "6.txt", "bob@localhost", "not eml", 0);
        fs::write(d.join("bad.eml"), b"Subject: no envelope\r\n\r\nx").unwrap();
        let inbox = Inbox::read(d, "bob@localhost").unwrap();
        let subjects: Vec<_> = inbox.iter().map(|m| m.subject().unwrap()).collect();
        assert_eq!(subjects, ["new", "middle", "old"]);
        let oldest: Vec<_> = inbox.iter_oldest_first().map(|m| m.subject().unwrap()).collect();
        assert_eq!(oldest, ["old", "middle", "new"]);
        assert_eq!(inbox.len(), 3);
        assert_eq!(inbox.first().unwrap().subject(), Some("new"));
        assert_eq!(inbox.skipped().len(), 1);
        assert!(inbox.skipped()[0].path.ends_with("bad.eml"));
        assert!(inbox.skipped()[0].reason.contains("envelope"), "{:?}", inbox.skipped());
        inbox.first().unwrap().delete().unwrap();
        let again = Inbox::read(d, "bob@localhost").unwrap();
        assert_eq!(again.first().unwrap().subject(), Some("middle"));
        assert_eq!(again.len(), 2);
        assert!(Inbox::read(&d.join("missing"), "bob@localhost").is_err());
    }
}
