//! Configuration: plain, validated, immutable once built.
//!
//! What: turns the text of a TOML file (`mailroot.toml`) into a [`Config`], filling every
//! missing key from the embedded defaults (the IIS "master properties"), and prints the
//! effective configuration back as TOML that this module accepts ([`Config::to_toml`]).
//!
//! Trust: the file is written by the operator, who is trusted to mean what they write but
//! not to spell it right. Every key is checked: unknown keys, wrong types, bad units,
//! out-of-range values and duplicates are errors that name the key path
//! (`limits.max_connections`, `site[1].listen[0]`) and say what is wrong. Nothing is
//! silently ignored or clamped, except the OS-supplied defaults in [`SystemDefaults`].
//!
//! Layer 0: no file reads (the caller reads the file, see `cli.rs`), no sockets, no clock.
//! Addresses and networks are only parsed, never bound.
//!
//! Standards: hostnames and local domains follow the RFC 1035 §2.3.1 preferred name
//! syntax as relaxed by RFC 1123 §2.1 (labels may start with a digit), within the length
//! limits of RFC 5321 §4.5.3.1.2 (domain ≤ 255 octets, label ≤ 63).

mod admin;
mod auth;
mod defaults;
pub mod diff;
mod event_log;
mod keyed;
mod mask;
mod outbound;
mod parse;
mod parse_outbound;
mod print;
mod protolog;
mod proxy;
mod service;
mod site;
#[cfg(test)]
mod test_support;
mod tls;
mod units;
mod values;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

pub use admin::{AdminConfig, DEFAULT_ADMIN_LISTEN};
pub use auth::{AuthConfig, DEFAULT_AUTH_FAILURE_DELAY_MS, DEFAULT_MAX_AUTH_FAILURES, User};
pub use defaults::{
    DEFAULT_ATTEMPT_DIRECT_FIRST, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_DATA_BLOCK_TIMEOUT_MS,
    DEFAULT_DATA_INIT_TIMEOUT_MS, DEFAULT_DATA_TERM_TIMEOUT_MS, DEFAULT_DELAY_NOTIFY_MS,
    DEFAULT_DELIVERY_PORT, DEFAULT_DNS_ATTEMPTS, DEFAULT_DNS_PORT, DEFAULT_DNS_TIMEOUT_MS,
    DEFAULT_EXPIRE_MS, DEFAULT_GREETING_TIMEOUT_MS, DEFAULT_MAIL_TIMEOUT_MS, DEFAULT_MAX_HOP_COUNT,
    DEFAULT_OUTBOUND_MAX_CONNECTIONS, DEFAULT_OUTBOUND_MAX_CONNECTIONS_PER_DOMAIN,
    DEFAULT_OUTBOUND_MAX_MESSAGES_PER_CONNECTION, DEFAULT_RCPT_TIMEOUT_MS, DEFAULT_RETRY_MS,
};
pub use defaults::{
    DEFAULT_COMMAND_TIMEOUT_MS, DEFAULT_COMMIT_DELAY_MS, DEFAULT_DATA_TIMEOUT_MS, DEFAULT_LISTEN,
    DEFAULT_LOG_LEVEL, DEFAULT_MAILROOT, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_IP,
    DEFAULT_MAX_ERRORS, DEFAULT_MAX_MESSAGE_SIZE_BYTES, DEFAULT_MAX_MESSAGES_PER_CONNECTION,
    DEFAULT_MAX_RECIPIENTS, DEFAULT_MIN_FREE_DISK_BYTES, DEFAULT_SEGMENT_BYTES,
    DEFAULT_SHUTDOWN_GRACE_MS, DEFAULT_SITE_NAME, FALLBACK_HOSTNAME, LOG_LEVELS,
    MAX_COMMIT_DELAY_MS, MAX_SEGMENT_BYTES, MAX_WORKERS, MIN_SEGMENT_BYTES, default_workers,
};
pub use event_log::{DEFAULT_EVENT_LOG_MAX_BYTES, EVENT_LOG_FILE, EventLogConfig};
pub use mask::{MASK, SECRET_KEYS};
pub use outbound::{
    ClientAuth, DeliveryConfig, DnsConfig, DomainPattern, DomainRule, HostsConfig, NextHop,
    SmartHostAuth, TlsPolicy,
};
pub use protolog::{
    DEFAULT_LOG_FILES_KEPT, DEFAULT_PROTOCOL_LOG_MAX_SIZE_BYTES, LOGS_DIR, ProtocolLogConfig,
    Rotate, SiteProtocolLog,
};
pub use proxy::SiteProxy;
pub use service::ServiceConfig;
pub use site::SiteOverrides;
pub use tls::{DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, SiteTls, TlsConfig, TlsFiles};

/// The whole validated configuration. Built by [`Config::from_toml_str`] or
/// [`Config::embedded_default`]; never changed afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Name announced in the 220 greeting and EHLO reply. Invariant: a valid domain name
    /// (ASCII, labels 1..=63 octets of letters, digits and inner hyphens, ≤ 253 octets),
    /// without a trailing dot. Key `hostname`; default: the machine's host name.
    pub hostname: String,
    /// The Mailroot folder holding `Queue/ Pickup/ Drop/ Badmail/`. Relative paths are
    /// relative to the working directory of the process. Invariant: not empty.
    pub mailroot: PathBuf,
    /// Number of inbound event-loop threads. Invariant: `1..=MAX_WORKERS`.
    pub workers: usize,
    /// Virtual servers, each with its own listen addresses. Invariant: at least one; names
    /// unique and non-empty; no listen address appears twice in the whole list.
    pub sites: Vec<Site>,
    /// Resource limits (`[limits]`).
    pub limits: Limits,
    /// Who may relay to non-local domains (`[relay]`).
    pub relay: RelayConfig,
    /// Who may connect at all (`[connections]`).
    pub connections: ConnectionsConfig,
    /// Domains delivered locally to `Drop/` (`[domains]`).
    pub domains: DomainsConfig,
    /// Per-domain delivery rules (`[[domain]]`), in file order. Invariant: no two rules
    /// share a pattern.
    pub domain_rules: Vec<DomainRule>,
    /// Static host table (`[hosts]`).
    pub hosts: HostsConfig,
    /// The DNS resolver (`[dns]`).
    pub dns: DnsConfig,
    /// Outbound delivery (`[delivery]`).
    pub delivery: DeliveryConfig,
    /// SMTP protocol options (`[smtp]`).
    pub smtp: SmtpConfig,
    /// Spool layout options (`[spool]`).
    pub spool: SpoolConfig,
    /// The admin HTTP listener (`[admin]`).
    pub admin: AdminConfig,
    /// SMTP AUTH users and rules (`[auth]`, `[[user]]`).
    pub auth: AuthConfig,
    /// Master TLS properties (`[tls]`).
    pub tls: TlsConfig,
    /// The W3C protocol log's master properties (`[protocol_log]`).
    pub protocol_log: ProtocolLogConfig,
    /// The service event log (`[event_log]`).
    pub event_log: EventLogConfig,
    /// The account to run as after binding (`[service]`).
    pub service: ServiceConfig,
    /// Default `env_logger` filter. Invariant: one of [`LOG_LEVELS`] (lower case).
    pub log_level: String,
}

/// One virtual SMTP server (IIS "SMTP Virtual Server"), a `[[site]]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    /// Site name used in logs and spool envelopes. Invariant: 1..=64 characters of ASCII
    /// letters, digits, `-`, `_`, `.`; unique among sites.
    pub name: String,
    /// Addresses to listen on. Invariant: at least one; port not 0; each address appears
    /// once across all sites.
    pub listen: Vec<SocketAddr>,
    /// TLS: the site's own certificate, implicit-TLS listeners, `require_tls`.
    pub tls: SiteTls,
    /// PROXY protocol on the site's listeners (`proxy_protocol`, `proxy_trusted`).
    pub proxy: SiteProxy,
    /// Protocol log on/off and folder for this site (`protocol_log`, `protocol_log_folder`).
    pub protocol_log: SiteProtocolLog,
    /// The master properties this site overrides (`hostname`, per-session limits, relay
    /// and connection rules, local domains, Drop folder); see [`Config::site_view`].
    pub overrides: SiteOverrides,
}

/// Resource limits, `[limits]`. Every field is > 0 unless its doc says 0 is allowed.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest message accepted, in bytes (EHLO `SIZE`). Key `max_message_size`.
    pub max_message_size_bytes: u64,
    /// Most recipients per transaction (more get 452 4.5.3). Key `max_recipients`.
    pub max_recipients: usize,
    /// Most messages per connection. Key `max_messages_per_connection`.
    pub max_messages_per_connection: u32,
    /// Most concurrent inbound connections, all sites together. Key `max_connections`.
    pub max_connections: usize,
    /// Most concurrent inbound connections from one client address.
    /// Key `max_connections_per_ip`.
    pub max_connections_per_ip: usize,
    /// Time a client has, from our last reply, to complete its next command line, in ms:
    /// a deadline, not an idle timer (bytes of an unfinished line do not extend it).
    /// Key `command_timeout`.
    pub command_timeout_ms: u64,
    /// Credit of time a client has inside DATA/BDAT content, in ms: waiting spends it,
    /// every byte received earns `1 / min_data_rate_bytes_per_s` s back, up to this value.
    /// Key `data_timeout`.
    pub data_timeout_ms: u64,
    /// Slowest average content rate a client may keep up, in bytes per second (see
    /// `data_timeout_ms`); 0 = off (`data_timeout` is then a plain idle timer).
    /// Invariant: at most `MAX_MIN_DATA_RATE_BYTES_PER_S`. Key `min_data_rate`.
    pub min_data_rate_bytes_per_s: u64,
    /// Errors (bad commands) tolerated per connection before 421 4.7.0. Key `max_errors`.
    pub max_errors: u32,
    /// Free bytes the spool's file system must keep; below it MAIL gets 452 4.3.1.
    /// 0 disables the check. Key `min_free_disk`.
    pub min_free_disk_bytes: u64,
    /// Time given to open connections to finish after SIGTERM, in ms; 0 closes at once.
    /// Key `shutdown_grace`.
    pub shutdown_grace_ms: u64,
}

/// `[relay]`: clients allowed to send to non-local domains, and how relayed mail leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayConfig {
    /// Networks whose clients may relay. Invariant: no host bits set. Empty = nobody.
    pub allow: Vec<ipnet::IpNet>,
    /// Send all remote mail to this host (IIS "smart host"). Key `smart_host`;
    /// `None` = deliver by MX.
    pub smart_host: Option<NextHop>,
    /// With a smart host: try MX delivery first and use the smart host only when that
    /// fails (IIS "attempt direct delivery before sending to smart host").
    /// Key `attempt_direct_first`.
    pub attempt_direct_first: bool,
    /// Rewrite the sender's domain to this one on the first hop (IIS "masquerade domain").
    /// Key `masquerade_domain`. Invariant: a valid domain name, lower case.
    pub masquerade_domain: Option<String>,
    /// More `Received:` header fields than this means a routing loop: bounce with 5.4.6.
    /// Key `max_hop_count`. Invariant: > 0.
    pub max_hop_count: u32,
    /// Send a copy of every non-delivery report to this mailbox (IIS "send copy of NDR
    /// to"). Key `send_ndr_copy_to`. Invariant: `local@domain` with a valid domain.
    pub send_ndr_copy_to: Option<String>,
    /// Credentials for `smart_host` (IIS outbound Basic authentication). Key
    /// `smart_host_auth`. Invariant: `Some` only with `smart_host`.
    pub smart_host_auth: Option<SmartHostAuth>,
}

/// `[connections]`: clients allowed to connect at all (IIS "Connection control").
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionsConfig {
    /// Networks allowed to connect; empty = everybody. Invariant: no host bits set.
    pub allow: Vec<ipnet::IpNet>,
    /// Networks refused even when also in `allow` (deny wins). Invariant: no host bits set.
    pub deny: Vec<ipnet::IpNet>,
}

/// `[domains]`: mail for these domains is delivered locally.
#[derive(Debug, Clone, PartialEq)]
pub struct DomainsConfig {
    /// Local domains. Invariant: valid domain names, lower case, no trailing dot, unique.
    /// The first one is the default local domain.
    pub local: Vec<String>,
    /// Alias domains: mail for them is delivered as if addressed to the default local
    /// domain (IIS "alias domain"). Key `aliases`. Invariant: same syntax as `local`,
    /// unique, none also in `local`; non-empty only when `local` is non-empty.
    pub aliases: Vec<String>,
}

/// What to do with a bare CR or bare LF inside DATA content (SMTP smuggling defence).
pub use crate::smtp::data::BareLineEnding;

/// `[smtp]`: protocol options.
#[derive(Debug, Clone, PartialEq)]
pub struct SmtpConfig {
    /// Bare CR / bare LF policy. Key `bare_line_ending`, `"normalize"` or `"reject"`.
    pub bare_line_ending: BareLineEnding,
}

/// `[spool]`: spool layout.
#[derive(Debug, Clone, PartialEq)]
pub struct SpoolConfig {
    /// Size of one segment file in `Queue/`, in bytes. Key `segment_size`.
    /// Invariant: `MIN_SEGMENT_BYTES..=MAX_SEGMENT_BYTES`.
    pub segment_bytes: u64,
    /// Group commit delay in ms (key `commit_delay`, 0 = off): while another client of the
    /// worker is in the middle of a message, finished messages wait for it up to this long
    /// so one msync covers both.
    /// Invariant: `<= MAX_COMMIT_DELAY_MS`.
    pub commit_delay_ms: u64,
}

/// Facts about the machine that some defaults depend on. The caller (`cli.rs`) fills them
/// from the OS, so this module stays pure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemDefaults {
    /// The machine's host name; used for `hostname` when the file does not set it.
    /// If it is not a valid domain name, [`FALLBACK_HOSTNAME`] is used instead.
    pub hostname: String,
    /// Number of CPU cores available; the default `workers` is half of them, rounded up
    /// ([`default_workers`]).
    pub cores: usize,
}

/// A configuration the operator has to fix: which key, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Path of the offending key, e.g. `limits.max_connections` or `site[1].listen[0]`;
    /// for TOML syntax errors, the position, e.g. `line 3, column 7`.
    pub key: String,
    /// What is wrong, in words, e.g. `must be > 0`.
    pub problem: String,
}

impl ConfigError {
    /// An error at `key`.
    pub(crate) fn new(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
        ConfigError { key: key.into(), problem: problem.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error at `{}`: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Folders of the Mailroot, as IIS names them: the spool, files to send, local
/// deliveries, and what could be neither delivered nor bounced.
pub const MAILROOT_DIRS: [&str; 4] = [QUEUE_DIR, PICKUP_DIR, DROP_DIR, BADMAIL_DIR];
/// The spool folder inside the Mailroot.
pub const QUEUE_DIR: &str = "Queue";
/// The pickup folder inside the Mailroot.
pub const PICKUP_DIR: &str = "Pickup";
/// The local delivery folder inside the Mailroot.
pub const DROP_DIR: &str = "Drop";
/// The badmail folder inside the Mailroot.
pub const BADMAIL_DIR: &str = "Badmail";

impl Config {
    /// The certificate and key site `site` serves: its own, else `[tls]`'s; `None` = the
    /// site offers no TLS.
    #[must_use]
    pub fn site_tls_files(&self, site: usize) -> Option<&TlsFiles> {
        self.sites.get(site).and_then(|s| s.tls.files.as_ref()).or(self.tls.files.as_ref())
    }

    /// `<mailroot>/Queue`: the spool. Path arithmetic only, no I/O.
    #[must_use]
    pub fn queue_dir(&self) -> PathBuf {
        self.mailroot.join(QUEUE_DIR)
    }

    /// The event log file: `[event_log] path`, else `<mailroot>/Logs/events.log`. Path
    /// arithmetic only, no I/O.
    #[must_use]
    pub fn event_log_path(&self) -> PathBuf {
        self.event_log
            .path
            .clone()
            .unwrap_or_else(|| self.mailroot.join(LOGS_DIR).join(EVENT_LOG_FILE))
    }

    /// `<mailroot>/Pickup`. Path arithmetic only, no I/O.
    #[must_use]
    pub fn pickup_dir(&self) -> PathBuf {
        self.mailroot.join(PICKUP_DIR)
    }

    /// `<mailroot>/Drop`. Path arithmetic only, no I/O.
    #[must_use]
    pub fn drop_dir(&self) -> PathBuf {
        self.mailroot.join(DROP_DIR)
    }

    /// `<mailroot>/Badmail`. Path arithmetic only, no I/O.
    #[must_use]
    pub fn badmail_dir(&self) -> PathBuf {
        self.mailroot.join(BADMAIL_DIR)
    }

    /// Parse and validate a configuration file's text. Keys missing from the file take
    /// their default (see [`Config::embedded_default`]). No file is read here.
    pub fn from_toml_str(text: &str, sys: &SystemDefaults) -> Result<Config, ConfigError> {
        parse::from_toml_str(text, sys)
    }

    /// The configuration used when no file is given: one site `default` on
    /// 127.0.0.1:2525, Mailroot `./mailroot`, relay for loopback, local domain `localhost`.
    #[must_use]
    pub fn embedded_default(sys: &SystemDefaults) -> Config {
        defaults::embedded_default(sys)
    }

    /// Read the secrets kept in files (`relay.smart_host_auth.password_file`) with `read`
    /// (the caller's file reader: this module does no I/O). One trailing `\n` or `\r\n`
    /// is stripped. A file that cannot be read, or an empty or NUL-holding password, is a
    /// `ConfigError` naming the key.
    pub fn read_password_files(
        &mut self,
        read: impl Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<(), ConfigError> {
        const KEY: &str = "relay.smart_host_auth.password_file";
        let Some(auth) = &mut self.relay.smart_host_auth else { return Ok(()) };
        let Some(path) = &auth.password_file else { return Ok(()) };
        let text = read(path)
            .map_err(|e| ConfigError::new(KEY, format!("cannot read {}: {e}", path.display())))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if text.is_empty() || text.contains('\0') {
            return Err(ConfigError::new(
                KEY,
                format!("{}: the password must be one non-empty line without NUL", path.display()),
            ));
        }
        auth.credentials.password = text.to_owned();
        Ok(())
    }

    /// The full effective configuration as TOML, every key present, in the syntax
    /// [`Config::from_toml_str`] accepts: `from_toml_str(&c.to_toml(), _) == Ok(c)`, except
    /// that an inline smart host password is printed as `"<redacted>"`.
    #[must_use]
    pub fn to_toml(&self) -> String {
        print::to_toml(self)
    }
}
