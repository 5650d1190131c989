//! Settings of one outbound connection: timeouts, EHLO name, the TLS policy and the smart
//! host credentials.
//!
//! TRUST: written by the operator (through `config`); the password is a secret: it is
//! never printed by `Debug` (see [`ClientAuth`]) and appears only base64-encoded in the
//! AUTH exchange, only over TLS.
//!
//! STANDARDS: RFC 5321 §4.5.3.2 (timeouts), RFC 3207 (STARTTLS), RFC 4954 (AUTH); the
//! policy names are Postfix's `smtp_tls_security_level` (none, may, encrypt, verify).

use std::fmt;
use std::time::Duration;

/// Reply timeouts (RFC 5321 §4.5.3.2). `Default` gives the RFC's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Waiting for the 220 greeting ("initial 220 message", 5 min).
    pub greeting: Duration,
    /// EHLO/HELO, RSET, QUIT, STARTTLS and AUTH replies, and the driver's TLS handshake
    /// (not in the RFC's list; 5 min like MAIL).
    pub command: Duration,
    /// MAIL reply (5 min).
    pub mail: Duration,
    /// Each RCPT reply (5 min).
    pub rcpt: Duration,
    /// The reply to DATA (2 min).
    pub data_init: Duration,
    /// Between two pieces of content accepted by the caller's socket (3 min).
    pub data_block: Duration,
    /// The reply after `.` (10 min).
    pub data_term: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        let min = |m: u64| Duration::from_secs(60 * m);
        Timeouts {
            greeting: min(5),
            command: min(5),
            mail: min(5),
            rcpt: min(5),
            data_init: min(2),
            data_block: min(3),
            data_term: min(10),
        }
    }
}

/// When the client uses TLS (STARTTLS, RFC 3207) toward a next hop. Postfix's
/// `smtp_tls_security_level` words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum TlsPolicy {
    /// Never: STARTTLS is not sent even when offered.
    None,
    /// Opportunistic (the default): STARTTLS when offered and the driver can do TLS, no
    /// certificate check; plaintext when not offered or refused.
    #[default]
    May,
    /// TLS is required (no certificate check): a hop that does not offer STARTTLS, refuses
    /// it, or fails the handshake is a temporary failure (4.7.x).
    Encrypt,
    /// TLS is required and the driver checks the certificate chain and the host name;
    /// the session treats it like `Encrypt` (the check is the TLS layer's).
    Verify,
}

impl TlsPolicy {
    /// Every policy, in order of strength.
    pub const ALL: [TlsPolicy; 4] =
        [TlsPolicy::None, TlsPolicy::May, TlsPolicy::Encrypt, TlsPolicy::Verify];

    /// The configuration word: `none`, `may`, `encrypt`, `verify`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            TlsPolicy::None => "none",
            TlsPolicy::May => "may",
            TlsPolicy::Encrypt => "encrypt",
            TlsPolicy::Verify => "verify",
        }
    }

    /// Parse a configuration word (case-insensitive).
    #[must_use]
    pub fn from_word(word: &str) -> Option<TlsPolicy> {
        TlsPolicy::ALL.into_iter().find(|p| p.as_str().eq_ignore_ascii_case(word))
    }

    /// Delivery without TLS is a failure.
    #[must_use]
    pub fn requires_tls(self) -> bool {
        matches!(self, TlsPolicy::Encrypt | TlsPolicy::Verify)
    }
}

impl fmt::Display for TlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Smart host credentials (AUTH PLAIN, else LOGIN; RFC 4954), sent only over TLS.
/// `Debug` prints the user and `<redacted>` for the password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The authentication identity (also the authorization identity: PLAIN's authzid is
    /// left empty). Invariant: no NUL (PLAIN separates with NUL).
    pub user: String,
    /// The password. Invariant: no NUL. Never logged, printed or put in an event.
    pub password: String,
}

impl fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientAuth")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Settings of one outbound connection (per next hop).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// The argument of EHLO/HELO (our `hostname`).
    pub helo_name: String,
    /// Send HELO instead of EHLO (per-domain rule for old servers).
    pub use_helo: bool,
    /// Send content with BDAT when the server offers CHUNKING (RFC 3030), else DATA.
    pub use_bdat: bool,
    /// Reply timeouts.
    pub timeouts: Timeouts,
    /// Transactions per connection before QUIT; 0 = no limit (IIS default 20).
    pub max_messages_per_connection: u32,
    /// Our own names: a greeting or EHLO reply naming one of them is a mail loop.
    /// Compared case-insensitively, trailing dot ignored.
    pub own_hostnames: Vec<String>,
    /// When to use STARTTLS (default `May`).
    pub tls: TlsPolicy,
    /// The driver can run a TLS handshake on this connection (answers `Event::StartTls`
    /// with `tls_established` / `tls_failed`). `false` (the default): STARTTLS is never
    /// sent; `May` then means plaintext, `Encrypt`/`Verify` fail with 4.7.4.
    pub tls_capable: bool,
    /// Smart host credentials; `None` = no AUTH.
    pub auth: Option<ClientAuth>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            helo_name: "localhost".to_owned(),
            use_helo: false,
            use_bdat: true,
            timeouts: Timeouts::default(),
            max_messages_per_connection: 20,
            own_hostnames: Vec::new(),
            tls: TlsPolicy::May,
            tls_capable: false,
            auth: None,
        }
    }
}
