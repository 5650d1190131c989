//! How a message leaves the library: to an SMTP server ([`SmtpServer`], driven by
//! `client::submit`) or into the Pickup folder of a local Mailroot (what CDONTS's Outbox
//! was), and what a send reports.
//!
//! Pickup: the file is `x-sender:` / `x-receiver:` lines (the envelope, so Bcc recipients
//! need no header) and the message, checked with the relay's own Pickup parser
//! (`pickup::parse`) before it is written, then written atomically: a dot-prefixed
//! temporary name the watcher skips, `fdatasync`, `rename` to `<time>-<pid>-<n>.eml`,
//! directory `fsync` (`local::write_replacing`, the Drop/Badmail writer's rule). A program
//! told "sent" has a durable file the relay will queue.
//!
//! TRUST: the envelope was checked when it was built (`draft::check_address`); the Pickup
//! parser checks it once more, as the relay will.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::draft::AddressError;
use super::tls::TlsSetupError;
use crate::local::{LocalError, write_envelope_lines, write_replacing};
use crate::smtp::client::{ClientError, SecurityFailure, Stage};

/// Per-process counter for unique file names and Message-IDs.
static UNIQUE: AtomicU64 = AtomicU64::new(0);

/// A number unique within this process (with the pid and the time: unique on the host).
pub(crate) fn next_unique() -> u64 {
    (u64::from(std::process::id()) << 32) | (UNIQUE.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn unix_ms_now() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis())
}

/// Where `send()` puts a message.
#[derive(Clone, Debug)]
pub enum Transport {
    /// Submit over SMTP.
    Smtp(SmtpServer),
    /// Write into this Pickup folder (`<Mailroot>/Pickup`) of a relay on this machine.
    Pickup(PathBuf),
}

/// An SMTP server to submit to, and how.
#[derive(Clone)]
pub struct SmtpServer {
    /// Host name or IP address.
    pub host: String,
    /// Port (25, 587, or a test port).
    pub port: u16,
    /// Use STARTTLS and refuse to go on without it; the certificate is checked against
    /// webpki-roots plus `ca_file`, and the name against `host`.
    pub starttls: bool,
    /// Extra PEM roots (a private CA).
    pub ca_file: Option<PathBuf>,
    /// AUTH PLAIN/LOGIN credentials (user, password); sent only over TLS.
    pub auth: Option<(String, String)>,
    /// The EHLO name (default `localhost`).
    pub helo_name: String,
    /// The longest wait for any one reply or write (default 60 s).
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpServer")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("starttls", &self.starttls)
            .field("ca_file", &self.ca_file)
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .field("helo_name", &self.helo_name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl SmtpServer {
    /// Plaintext SMTP to `host:port`, no AUTH.
    #[must_use]
    pub fn new(host: &str, port: u16) -> SmtpServer {
        SmtpServer {
            host: host.to_owned(),
            port,
            starttls: false,
            ca_file: None,
            auth: None,
            helo_name: "localhost".to_owned(),
            timeout: Duration::from_secs(60),
        }
    }

    /// Require STARTTLS; `ca_file` adds roots for the certificate check.
    #[must_use]
    pub fn starttls(mut self, ca_file: Option<&Path>) -> SmtpServer {
        self.starttls = true;
        self.ca_file = ca_file.map(Path::to_path_buf);
        self
    }

    /// Log in with AUTH (needs `starttls`: credentials never go out in plaintext).
    #[must_use]
    pub fn auth(mut self, user: &str, password: &str) -> SmtpServer {
        self.auth = Some((user.to_owned(), password.to_owned()));
        self
    }

    /// The EHLO name.
    #[must_use]
    pub fn helo_name(mut self, name: &str) -> SmtpServer {
        name.clone_into(&mut self.helo_name);
        self
    }
}

/// What a successful send did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendReport {
    /// The envelope recipients the server (or the Pickup file) took.
    pub accepted: Vec<String>,
    /// The server's final reply (`250 2.0.0 Ok: queued as ...`), for SMTP.
    pub reply: Option<String>,
    /// The file written, for Pickup.
    pub file: Option<PathBuf>,
}

/// Why a message was not sent. Nothing was queued unless the variant says so.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The message has no recipient.
    #[error("no recipients")]
    NoRecipients,
    /// An address or name is unusable.
    #[error(transparent)]
    Address(#[from] AddressError),
    /// The relay's Pickup parser would refuse the file (the reason it would write to
    /// Badmail).
    #[error("the Pickup folder would refuse the message: {0}")]
    Unacceptable(String),
    /// The Pickup file could not be written (missing or read-only folder, full disk).
    #[error("cannot write to the Pickup folder: {0}")]
    Pickup(#[from] LocalError),
    /// No connection to the server.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A read or write on the connection failed.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS settings could not be built.
    #[error(transparent)]
    TlsSetup(#[from] TlsSetupError),
    /// The server failed the STARTTLS requirement or refused AUTH (see the text).
    #[error("{0}")]
    Security(SecurityFailure),
    /// The server broke the protocol or closed early.
    #[error("{0}")]
    Protocol(#[from] ClientError),
    /// No reply in time.
    #[error("timed out waiting for the server ({0})")]
    Timeout(Stage),
    /// The server refused the session (greeting, EHLO) or the message as a whole.
    #[error("refused by the server: {0}")]
    Refused(String),
    /// Some recipients were refused. When `accepted` is not empty, the message WAS queued
    /// for them (SMTP cannot take it back).
    #[error("recipients refused: {}", refused.iter().map(|(a, r)| format!("{a}: {r}")).collect::<Vec<_>>().join("; "))]
    Rejected {
        /// Address and the server's reply, per refused recipient.
        refused: Vec<(String, String)>,
        /// Recipients the message was queued for anyway.
        accepted: Vec<String>,
    },
}

impl SendError {
    /// A temporary failure: trying again later may work (4xx replies, timeouts,
    /// connection trouble, a full or missing Pickup folder).
    #[must_use]
    pub fn is_temporary(&self) -> bool {
        match self {
            SendError::Pickup(_)
            | SendError::Connect { .. }
            | SendError::Io { .. }
            | SendError::Timeout(_)
            | SendError::Security(_)
            | SendError::Protocol(_) => true,
            SendError::Refused(r) => r.starts_with('4'),
            SendError::Rejected { refused, .. } => refused.iter().all(|(_, r)| r.starts_with('4')),
            _ => false,
        }
    }
}

/// Write `message` for `recipients` from `sender` into the Pickup folder `dir`, after the
/// relay's own parser accepted the file. Returns the file's path.
pub(crate) fn write_pickup(
    dir: &Path,
    sender: &str,
    recipients: &[&str],
    message: &[u8],
) -> Result<PathBuf, SendError> {
    let mut file = Vec::with_capacity(message.len() + 64 * (recipients.len() + 1));
    write_envelope_lines(sender, recipients, &mut file)?;
    file.extend_from_slice(message);
    if let Err(e) = crate::pickup::parse::parse(&file) {
        return Err(SendError::Unacceptable(e.to_string()));
    }
    write_pickup_file(dir, &file)
}

/// Write a whole Pickup `file` (envelope lines and message, already checked) into `dir`
/// under a new unique name, atomically and durably. Returns its path.
pub(crate) fn write_pickup_file(dir: &Path, file: &[u8]) -> Result<PathBuf, SendError> {
    let name = format!("{}-{:x}.eml", unix_ms_now(), next_unique());
    Ok(write_replacing(dir, &name, &[file])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pickup_file_parses_as_the_relay_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let msg = b"From: a@example.com\r\nTo: b@example.net\r\n\r\nhi\r\n";
        let p =
            write_pickup(dir.path(), "a@example.com", &["b@example.net", "c@x.org"], msg).unwrap();
        let bytes = std::fs::read(&p).unwrap();
        let parsed = crate::pickup::parse::parse(&bytes).unwrap();
        assert_eq!(parsed.reverse_path, "a@example.com");
        assert_eq!(parsed.recipients, ["b@example.net", "c@x.org"]);
        assert_eq!(&*parsed.content, msg);
        // Only the final name is left (no temporary file).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(p.file_name().unwrap().to_str().unwrap().ends_with(".eml"));
    }

    #[test]
    fn refusals() {
        let dir = tempfile::tempdir().unwrap();
        let e =
            write_pickup(dir.path(), "a@example.com", &["b@x.org"], b"no header end").unwrap_err();
        assert!(matches!(e, SendError::Unacceptable(_)), "{e}");
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = write_pickup(&file, "a@example.com", &["b@x.org"], b"A: b\r\n\r\n").unwrap_err();
        assert!(matches!(e, SendError::Pickup(_)) && e.is_temporary(), "{e}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
