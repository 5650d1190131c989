//! The embedded default configuration ("master properties"), one named constant per value.
//!
//! IIS-ish values: IIS 4 limited messages to 2048 KB; we use Postfix's 10 MiB. Timeouts
//! follow RFC 5321 §4.5.3.2 (5 minutes per command, 10 minutes for DATA).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use super::{
    BareLineEnding, Config, ConnectionsConfig, DeliveryConfig, DnsConfig, DomainsConfig,
    HostsConfig, Limits, RelayConfig, Site, SmtpConfig, SpoolConfig, SystemDefaults, TlsPolicy,
};

/// Name of the site used when the file has no `[[site]]`.
pub const DEFAULT_SITE_NAME: &str = "default";
/// Listen address of the default site: loopback only, so a fresh install is no open relay.
pub const DEFAULT_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 2525);
/// Default Mailroot folder, relative to the working directory.
pub const DEFAULT_MAILROOT: &str = "./mailroot";
/// Default log filter.
pub const DEFAULT_LOG_LEVEL: &str = "info";
/// Accepted values of `log_level` (the `log` crate's level names).
pub const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
/// Host name used when the OS one is not a valid domain name.
pub const FALLBACK_HOSTNAME: &str = "localhost";
/// Upper bound of `workers`: far more threads than cores only adds contention.
pub const MAX_WORKERS: usize = 1024;

/// The default `workers` for a machine with `cores` cores: half of them, rounded up.
/// Each worker brings its own spool syncer, and per relayed message the threads behind
/// the workers (syncers, queue runner, outbound) use about as much CPU as the workers;
/// a worker per core also splits a few sessions over more loops and more group commits,
/// each carrying fewer messages, so every stage behind them wakes more often per message.
/// On the 2-core VM one worker instead of two used 20-40% less CPU per message in every
/// shape measured (relay and accept, 1 KiB to 100 KiB, 10 and 100 sessions) at the same
/// rates (perf/RESULTS.md, 2026-12-05 19:55).
#[must_use]
pub fn default_workers(cores: usize) -> usize {
    cores.div_ceil(2).clamp(1, MAX_WORKERS)
}

/// Default `limits.max_message_size`: 10 MiB (Postfix `message_size_limit`).
pub const DEFAULT_MAX_MESSAGE_SIZE_BYTES: u64 = 10 << 20;
/// Default `limits.max_recipients`: the RFC 5321 §4.5.3.1.8 minimum a server must accept.
pub const DEFAULT_MAX_RECIPIENTS: usize = 100;
/// Default `limits.max_messages_per_connection` (IIS).
pub const DEFAULT_MAX_MESSAGES_PER_CONNECTION: u32 = 20;
/// Default `limits.max_connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default `limits.max_connections_per_ip`.
pub const DEFAULT_MAX_CONNECTIONS_PER_IP: usize = 100;
/// Default `limits.command_timeout`: 5 minutes (RFC 5321 §4.5.3.2.7 server timeout).
pub const DEFAULT_COMMAND_TIMEOUT_MS: u64 = 5 * 60 * 1000;
/// Default `limits.data_timeout`: 10 minutes (RFC 5321 §4.5.3.2.7 applies to DATA too;
/// we give content twice as long).
pub const DEFAULT_DATA_TIMEOUT_MS: u64 = 10 * 60 * 1000;
/// Default `limits.min_data_rate`: 500 bytes/s (Postfix `smtpd_min_data_rate`).
pub(super) const DEFAULT_MIN_DATA_RATE_BYTES_PER_S: u64 = 500;
/// Largest `limits.min_data_rate`: 100 MB/s (more would cut ordinary clients on a LAN).
pub(super) const MAX_MIN_DATA_RATE_BYTES_PER_S: u64 = 100_000_000;
/// Default `limits.max_errors`.
pub const DEFAULT_MAX_ERRORS: u32 = 10;
/// Default `limits.min_free_disk`: 100 MiB.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 100 << 20;
/// Default `limits.shutdown_grace`: 30 s.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 30 * 1000;

/// Default `spool.segment_size`: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Smallest `spool.segment_size`: 1 MiB (smaller segments mean a file per few messages).
pub const MIN_SEGMENT_BYTES: u64 = 1 << 20;
/// Largest `spool.segment_size`: 4 GiB. A `QueueId` holds the record offset / 8 in
/// 32 bits, so the format could address 32 GiB; 4 GiB keeps compaction copies short.
pub const MAX_SEGMENT_BYTES: u64 = 4 << 30;
/// Default `spool.commit_delay`: 1 ms, the longest a finished message waits for another
/// client's open message to join its commit (the writer holds back only while one is
/// open; perf/RESULTS.md, 2026-11-28 19:10 and 2026-12-05 15:05).
pub const DEFAULT_COMMIT_DELAY_MS: u64 = 1;
/// Upper bound of `spool.commit_delay` (every 250 under load waits up to this long).
pub const MAX_COMMIT_DELAY_MS: u64 = 100;

/// Milliseconds per minute, for the outbound defaults below.
const MS_PER_MIN: u64 = 60 * 1000;

/// Default `relay.attempt_direct_first` (IIS: off).
pub const DEFAULT_ATTEMPT_DIRECT_FIRST: bool = false;
/// Default `relay.max_hop_count` (IIS: 15; we use Postfix's `hopcount_limit`, 50).
pub const DEFAULT_MAX_HOP_COUNT: u32 = 50;
/// Default `dns.timeout`: 5 s (resolv.conf `timeout` default).
pub const DEFAULT_DNS_TIMEOUT_MS: u64 = 5 * 1000;
/// Default `dns.attempts`: 2 (resolv.conf `attempts` default).
pub const DEFAULT_DNS_ATTEMPTS: u32 = 2;
/// Port of a `dns.servers` entry written without one.
pub const DEFAULT_DNS_PORT: u16 = 53;
/// Default `delivery.retry`: 15, 30, 60 minutes, then every 240 minutes (IIS).
pub const DEFAULT_RETRY_MS: [u64; 4] =
    [15 * MS_PER_MIN, 30 * MS_PER_MIN, 60 * MS_PER_MIN, 240 * MS_PER_MIN];
/// Default `delivery.delay_notify`: 12 hours (IIS).
pub const DEFAULT_DELAY_NOTIFY_MS: u64 = 12 * 60 * MS_PER_MIN;
/// Default `delivery.expire`: 2 days (IIS).
pub const DEFAULT_EXPIRE_MS: u64 = 2 * 24 * 60 * MS_PER_MIN;
/// Default `delivery.max_messages_per_connection` (IIS: 20).
pub const DEFAULT_OUTBOUND_MAX_MESSAGES_PER_CONNECTION: u32 = 20;
/// Default `delivery.max_connections` (IIS: 1000; 500 keeps within a 1024 fd limit).
pub const DEFAULT_OUTBOUND_MAX_CONNECTIONS: usize = 500;
/// Default `delivery.max_connections_per_domain` (Postfix `default_destination_concurrency_limit`).
pub const DEFAULT_OUTBOUND_MAX_CONNECTIONS_PER_DOMAIN: usize = 20;
/// Default `delivery.active_limit` (Postfix `qmgr_message_active_limit`).
pub(super) const DEFAULT_ACTIVE_LIMIT: usize = 20_000;
/// Default `delivery.local_concurrency` (perf/RESULTS.md 2026-12-06: 8 threads wrote
/// Drop files at about twice the rate of one).
pub(super) const DEFAULT_LOCAL_CONCURRENCY: usize = 8;
/// Default `delivery.connect_timeout`: 5 minutes.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 5 * MS_PER_MIN;
/// Default `delivery.greeting_timeout`: 5 minutes (RFC 5321 §4.5.3.2.1).
pub const DEFAULT_GREETING_TIMEOUT_MS: u64 = 5 * MS_PER_MIN;
/// Default `delivery.mail_timeout`: 5 minutes (RFC 5321 §4.5.3.2.2).
pub const DEFAULT_MAIL_TIMEOUT_MS: u64 = 5 * MS_PER_MIN;
/// Default `delivery.rcpt_timeout`: 5 minutes (RFC 5321 §4.5.3.2.3).
pub const DEFAULT_RCPT_TIMEOUT_MS: u64 = 5 * MS_PER_MIN;
/// Default `delivery.data_init_timeout`: 2 minutes (RFC 5321 §4.5.3.2.4).
pub const DEFAULT_DATA_INIT_TIMEOUT_MS: u64 = 2 * MS_PER_MIN;
/// Default `delivery.data_block_timeout`: 3 minutes (RFC 5321 §4.5.3.2.5).
pub const DEFAULT_DATA_BLOCK_TIMEOUT_MS: u64 = 3 * MS_PER_MIN;
/// Default `delivery.data_term_timeout`: 10 minutes (RFC 5321 §4.5.3.2.6).
pub const DEFAULT_DATA_TERM_TIMEOUT_MS: u64 = 10 * MS_PER_MIN;
/// Default `delivery.port`: SMTP relay port 25.
pub const DEFAULT_DELIVERY_PORT: u16 = 25;

/// Default relay networks: loopback only (127.0.0.0/8 and ::1/128). `new_assert` is
/// const-evaluated, so a bad prefix length would fail the build, not the program.
pub(super) const DEFAULT_RELAY_ALLOW: [ipnet::IpNet; 2] = [
    ipnet::IpNet::new_assert(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
    ipnet::IpNet::new_assert(IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
];

/// The default host name: the OS one if it is a valid domain name, else `localhost`.
pub(super) fn default_hostname(sys: &SystemDefaults) -> String {
    let name = sys.hostname.trim().trim_end_matches('.');
    if super::values::is_valid_domain(name) {
        name.to_owned()
    } else {
        FALLBACK_HOSTNAME.to_owned()
    }
}

/// See [`Config::embedded_default`].
pub(super) fn embedded_default(sys: &SystemDefaults) -> Config {
    Config {
        hostname: default_hostname(sys),
        mailroot: PathBuf::from(DEFAULT_MAILROOT),
        workers: default_workers(sys.cores),
        sites: vec![Site {
            name: DEFAULT_SITE_NAME.to_owned(),
            listen: vec![DEFAULT_LISTEN],
            tls: super::SiteTls::default(),
            proxy: super::SiteProxy::default(),
            protocol_log: super::SiteProtocolLog::default(),
            overrides: super::SiteOverrides::default(),
        }],
        limits: Limits {
            max_message_size_bytes: DEFAULT_MAX_MESSAGE_SIZE_BYTES,
            max_recipients: DEFAULT_MAX_RECIPIENTS,
            max_messages_per_connection: DEFAULT_MAX_MESSAGES_PER_CONNECTION,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: DEFAULT_MAX_CONNECTIONS_PER_IP,
            command_timeout_ms: DEFAULT_COMMAND_TIMEOUT_MS,
            data_timeout_ms: DEFAULT_DATA_TIMEOUT_MS,
            min_data_rate_bytes_per_s: DEFAULT_MIN_DATA_RATE_BYTES_PER_S,
            max_errors: DEFAULT_MAX_ERRORS,
            min_free_disk_bytes: DEFAULT_MIN_FREE_DISK_BYTES,
            shutdown_grace_ms: DEFAULT_SHUTDOWN_GRACE_MS,
        },
        relay: RelayConfig {
            allow: DEFAULT_RELAY_ALLOW.to_vec(),
            smart_host: None,
            attempt_direct_first: DEFAULT_ATTEMPT_DIRECT_FIRST,
            masquerade_domain: None,
            max_hop_count: DEFAULT_MAX_HOP_COUNT,
            send_ndr_copy_to: None,
            smart_host_auth: None,
        },
        connections: ConnectionsConfig { allow: Vec::new(), deny: Vec::new() },
        domains: DomainsConfig { local: vec!["localhost".to_owned()], aliases: Vec::new() },
        domain_rules: Vec::new(),
        hosts: HostsConfig::new(),
        dns: DnsConfig {
            servers: Vec::new(),
            timeout_ms: DEFAULT_DNS_TIMEOUT_MS,
            attempts: DEFAULT_DNS_ATTEMPTS,
        },
        delivery: default_delivery(),
        smtp: SmtpConfig { bare_line_ending: BareLineEnding::Normalize },
        spool: SpoolConfig {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            commit_delay_ms: DEFAULT_COMMIT_DELAY_MS,
        },
        log_level: DEFAULT_LOG_LEVEL.to_owned(),
        admin: super::AdminConfig::default(),
        auth: super::AuthConfig::default(),
        tls: super::TlsConfig::default(),
        protocol_log: super::ProtocolLogConfig::default(),
        event_log: super::EventLogConfig::default(),
        service: super::ServiceConfig::default(),
    }
}

/// The `[delivery]` defaults.
fn default_delivery() -> DeliveryConfig {
    DeliveryConfig {
        retry_ms: DEFAULT_RETRY_MS.to_vec(),
        delay_notify_ms: DEFAULT_DELAY_NOTIFY_MS,
        expire_ms: DEFAULT_EXPIRE_MS,
        max_messages_per_connection: DEFAULT_OUTBOUND_MAX_MESSAGES_PER_CONNECTION,
        max_connections: DEFAULT_OUTBOUND_MAX_CONNECTIONS,
        max_connections_per_domain: DEFAULT_OUTBOUND_MAX_CONNECTIONS_PER_DOMAIN,
        active_limit: DEFAULT_ACTIVE_LIMIT,
        local_concurrency: DEFAULT_LOCAL_CONCURRENCY,
        connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
        greeting_timeout_ms: DEFAULT_GREETING_TIMEOUT_MS,
        mail_timeout_ms: DEFAULT_MAIL_TIMEOUT_MS,
        rcpt_timeout_ms: DEFAULT_RCPT_TIMEOUT_MS,
        data_init_timeout_ms: DEFAULT_DATA_INIT_TIMEOUT_MS,
        data_block_timeout_ms: DEFAULT_DATA_BLOCK_TIMEOUT_MS,
        data_term_timeout_ms: DEFAULT_DATA_TERM_TIMEOUT_MS,
        port: DEFAULT_DELIVERY_PORT,
        hold: false,
        tls: TlsPolicy::May,
        tls_ca_file: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostname_fallback() {
        let cases: &[(&str, &str)] = &[
            ("mx.example.com", "mx.example.com"),
            ("mx.example.com.", "mx.example.com"),
            ("box\n", "box"),
            ("", "localhost"),
            ("bad_name", "localhost"),
            ("-x", "localhost"),
        ];
        for &(os, want) in cases {
            let sys = SystemDefaults { hostname: os.to_owned(), cores: 4 };
            assert_eq!(default_hostname(&sys), want, "{os:?}");
        }
    }

    #[test]
    fn workers_clamped() {
        let cases = [(0, 1), (1, 1), (2, 1), (3, 2), (8, 4), (2000, 1000), (5000, MAX_WORKERS)];
        for (cores, want) in cases {
            let sys = SystemDefaults { hostname: "h".to_owned(), cores };
            assert_eq!(embedded_default(&sys).workers, want);
        }
    }

    #[test]
    fn relay_defaults_are_loopback() {
        let nets: Vec<String> = DEFAULT_RELAY_ALLOW.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["127.0.0.0/8", "::1/128"]);
    }
}
