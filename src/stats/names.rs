//! The counter catalogue: every counter, gauge and histogram mailroot exports, with its
//! Prometheus name, its IIS Performance Monitor name ("SMTP Server" object), a doc line and
//! a unit. Code never spells a counter name as a string literal anywhere else (STYLE 11,
//! after sozu `lib/src/metrics/names.rs`).
//!
//! Layer 0: data only, no I/O, no clock.

/// What kind of value a catalogue entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only ever goes up (Prometheus `counter`).
    Counter,
    /// A current level (Prometheus `gauge`).
    Gauge,
}

/// One catalogue entry of a counter or gauge.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Prometheus metric name (`mailroot_…`, unit as suffix, `_total` for counters).
    pub prom: &'static str,
    /// Extra Prometheus label, `name="value"` or empty (entries sharing `prom` differ here).
    pub label: &'static str,
    /// The IIS Performance Monitor counter name.
    pub iis: &'static str,
    /// One line of documentation (Prometheus `# HELP`).
    pub help: &'static str,
    /// Unit, in words.
    pub unit: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Reported per site (`site="…"` label) instead of once for the whole server.
    pub per_site: bool,
}

macro_rules! catalogue {
    ($( $(#[$m:meta])* $var:ident = ($prom:literal, $label:literal, $iis:literal, $help:literal,
        $unit:literal, $kind:ident, $site:literal); )*) => {
        /// Index of a counter or gauge in a `CounterBlock` (and in [`CATALOGUE`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Counter { $( $(#[$m])* $var, )* }

        /// Every counter and gauge, in `Counter` order.
        pub const CATALOGUE: &[Def] = &[ $( Def {
            prom: $prom, label: $label, iis: $iis, help: $help, unit: $unit,
            kind: Kind::$kind, per_site: $site,
        }, )* ];
    };
}

catalogue! {
    /// Messages accepted (250 after the group commit) by SMTP.
    MessagesReceived = ("mailroot_messages_received_total", "", "Messages Received Total",
        "Messages accepted over SMTP (250 sent after the group commit).", "messages", Counter, true);
    /// Recipients of accepted messages whose domain is local (SMTP and Pickup).
    RecipientsLocal = ("mailroot_recipients_local_total", "", "Recipients Local Total",
        "Recipients of accepted messages in a local domain (SMTP and Pickup).", "recipients", Counter, false);
    /// Recipients of accepted messages whose domain is remote (SMTP and Pickup).
    RecipientsRemote = ("mailroot_recipients_remote_total", "", "Recipients Remote Total",
        "Recipients of accepted messages in a remote domain (SMTP and Pickup).", "recipients", Counter, false);
    /// Messages accepted from any source (SMTP and Pickup): the base of the averages.
    MessagesAccepted = ("mailroot_messages_accepted_total", "", "Messages Accepted Total",
        "Messages queued from any source (SMTP and Pickup).", "messages", Counter, false);
    /// Transactions refused because the message was larger than the limit.
    MessagesRefusedSize = ("mailroot_messages_refused_for_size_total", "", "Messages Refused for Size",
        "Transactions refused for size (MAIL SIZE= or content over the limit).", "messages", Counter, true);
    /// Messages refused because their content held an end-of-data look-alike.
    SmugglingRefused = ("mailroot_smuggling_refused_total", "", "Messages Refused as SMTP Smuggling",
        "Messages refused 554 5.6.0 for a lone dot next to a bare CR or LF (SMTP smuggling).", "messages", Counter, true);
    /// Recipients refused by relay or connection policy.
    MessagesRefusedPolicy = ("mailroot_recipients_refused_total", "", "Messages Refused for Address Objects",
        "RCPT commands refused by the relay policy.", "recipients", Counter, true);
    /// Message bytes accepted (Received header + content).
    MessageBytesReceived = ("mailroot_message_received_bytes_total", "", "Message Bytes Received Total",
        "Bytes of accepted messages (our Received header + content).", "bytes", Counter, true);
    /// Bytes read from inbound connections.
    BytesReceived = ("mailroot_received_bytes_total", "", "Bytes Received Total",
        "Bytes read from inbound SMTP connections.", "bytes", Counter, true);
    /// Bytes written to inbound connections.
    BytesSent = ("mailroot_sent_bytes_total", "", "Bytes Sent Total",
        "Bytes of replies written to inbound SMTP connections.", "bytes", Counter, true);
    /// Inbound connections open now.
    InboundConnections = ("mailroot_inbound_connections", "", "Inbound Connections Current",
        "Inbound SMTP connections open now.", "connections", Gauge, true);
    /// Inbound connections accepted.
    InboundConnectionsTotal = ("mailroot_inbound_connections_total", "", "Inbound Connections Total",
        "Inbound SMTP connections accepted.", "connections", Counter, true);
    /// AUTH exchanges whose credentials were right (235).
    AuthSuccesses = ("mailroot_auth_attempts_total", "result=\"success\"", "Authentication Successes",
        "SMTP AUTH credential checks, by result.", "attempts", Counter, true);
    /// AUTH exchanges whose credentials were wrong (535).
    AuthFailures = ("mailroot_auth_attempts_total", "result=\"failure\"", "Authentication Failures",
        "SMTP AUTH credential checks, by result.", "attempts", Counter, true);
    /// Inbound TLS handshakes completed (STARTTLS and implicit TLS).
    TlsHandshakes = ("mailroot_inbound_tls_handshakes_total", "", "Inbound TLS Handshakes Total",
        "Inbound TLS handshakes completed (STARTTLS and implicit TLS).", "handshakes", Counter, true);
    /// Inbound TLS handshakes that failed (protocol error, timeout, peer gone).
    TlsHandshakeFailures = ("mailroot_inbound_tls_handshake_failures_total", "", "Inbound TLS Handshake Failures",
        "Inbound connections closed during their TLS handshake (error, timeout, peer gone).", "handshakes", Counter, true);
    /// Inbound sessions using TLS now.
    TlsConnections = ("mailroot_inbound_tls_connections", "", "Inbound TLS Connections Current",
        "Inbound SMTP sessions using TLS now.", "connections", Gauge, true);
    /// Messages delivered to Drop/ (local).
    MessagesDelivered = ("mailroot_messages_delivered_total", "", "Messages Delivered Total",
        "Messages delivered locally (to Drop/).", "messages", Counter, false);
    /// Directory drops written.
    DirectoryDrops = ("mailroot_directory_drops_total", "", "Directory Drops Total",
        "Files written to Drop/.", "files", Counter, false);
    /// Messages sent to remote hosts.
    MessagesSent = ("mailroot_messages_sent_total", "", "Messages Sent Total",
        "Messages sent to a remote host (at least one recipient accepted).", "messages", Counter, false);
    /// Message bytes sent to remote hosts.
    MessageBytesSent = ("mailroot_message_sent_bytes_total", "", "Message Bytes Sent Total",
        "Bytes of messages sent to remote hosts.", "bytes", Counter, false);
    /// Outbound connections open now.
    OutboundConnections = ("mailroot_outbound_connections", "", "Outbound Connections Current",
        "Outbound SMTP connections open now.", "connections", Gauge, false);
    /// Outbound connections opened.
    OutboundConnectionsTotal = ("mailroot_outbound_connections_total", "", "Outbound Connections Total",
        "Outbound SMTP connections opened.", "connections", Counter, false);
    /// Outbound connections that failed.
    OutboundConnectionErrors = ("mailroot_outbound_connection_errors_total", "", "Outbound Connection Errors",
        "Outbound connections that failed to connect or broke.", "connections", Counter, false);
    /// Outbound connections that completed a STARTTLS handshake.
    OutboundTlsConnections = ("mailroot_outbound_tls_connections_total", "", "Outbound TLS Connections Total",
        "Outbound connections that completed a STARTTLS handshake.", "connections", Counter, false);
    /// Outbound TLS handshakes that failed, policy `may`.
    OutboundTlsFailuresMay = ("mailroot_outbound_tls_failures_total", "policy=\"may\"",
        "Outbound TLS Failures (may)", "Outbound STARTTLS handshakes that failed, by TLS policy.", "connections", Counter, false);
    /// Outbound TLS handshakes that failed, policy `encrypt`.
    OutboundTlsFailuresEncrypt = ("mailroot_outbound_tls_failures_total", "policy=\"encrypt\"",
        "Outbound TLS Failures (encrypt)", "Outbound STARTTLS handshakes that failed, by TLS policy.", "connections", Counter, false);
    /// Outbound TLS handshakes that failed, policy `verify`.
    OutboundTlsFailuresVerify = ("mailroot_outbound_tls_failures_total", "policy=\"verify\"",
        "Outbound TLS Failures (verify)", "Outbound STARTTLS handshakes that failed, by TLS policy.", "connections", Counter, false);
    /// DNS queries sent by the resolver.
    DnsQueries = ("mailroot_dns_queries_total", "", "DNS Queries Total",
        "DNS queries sent by the resolver.", "queries", Counter, false);
    /// Messages picked up from Pickup/.
    PickupRetrieved = ("mailroot_pickup_messages_retrieved_total", "", "Pickup Directory Messages Retrieved Total",
        "Messages taken from Pickup/ into the queue.", "messages", Counter, false);
    /// Messages waiting for local delivery.
    LocalQueueLength = ("mailroot_queue_local_messages", "", "Local Queue Length",
        "Messages waiting for local delivery.", "messages", Gauge, false);
    /// Messages waiting for remote delivery (first attempt).
    RemoteQueueLength = ("mailroot_queue_remote_messages", "", "Remote Queue Length",
        "Messages waiting for a first remote delivery attempt.", "messages", Gauge, false);
    /// Messages waiting for a retry.
    RetryQueueLength = ("mailroot_queue_retry_messages", "", "Remote Retry Queue Length",
        "Messages deferred, waiting for a retry.", "messages", Gauge, false);
    /// Queued messages the runner keeps out of memory.
    ParkedQueueLength = ("mailroot_queue_parked_messages", "", "Parked Queue Length",
        "Queued messages kept out of memory by id: dormant until a retry or a dead destination's wake-up, or waiting for room under [delivery] active_limit.", "messages", Gauge, false);
    /// Messages with recipients that can no longer be delivered.
    MessagesUndeliverable = ("mailroot_messages_undeliverable", "", "Messages Currently Undeliverable",
        "Messages in the queue with at least one failed recipient not yet bounced.", "messages", Gauge, false);
    /// Delivery retries.
    DeliveryRetries = ("mailroot_message_delivery_retries_total", "", "Message Delivery Retries",
        "Delivery attempts that were deferred and will be retried.", "attempts", Counter, false);
    /// Non-delivery reports generated.
    NdrsGenerated = ("mailroot_ndrs_generated_total", "", "NDRs Generated",
        "Non-delivery reports queued.", "messages", Counter, false);
    /// Protocol-log lines written to a file.
    ProtocolLogLines = ("mailroot_protocol_log_lines_total", "", "Protocol Log Lines Written",
        "W3C protocol-log lines written to a file.", "lines", Counter, true);
    /// Protocol-log lines dropped because the log thread fell behind.
    ProtocolLogDropped = ("mailroot_protocol_log_dropped_total", "", "Protocol Log Lines Dropped",
        "W3C protocol-log lines dropped because the log thread fell behind (the SMTP path never waits).", "lines", Counter, true);
    /// Badmail: a bad Pickup/ file.
    BadmailPickup = ("mailroot_badmailed_messages_total", "reason=\"bad_pickup_file\"",
        "Badmailed Messages (Bad Pickup File)", "Messages moved to Badmail/, by reason.", "messages", Counter, false);
    /// Badmail: hop count exceeded.
    BadmailHopCount = ("mailroot_badmailed_messages_total", "reason=\"hop_count\"",
        "Badmailed Messages (Hop Count Exceeded)", "Messages moved to Badmail/, by reason.", "messages", Counter, false);
    /// Badmail: an NDR that could not be delivered.
    BadmailNdrOfNdr = ("mailroot_badmailed_messages_total", "reason=\"ndr_of_ndr\"",
        "Badmailed Messages (NDR of NDR)", "Messages moved to Badmail/, by reason.", "messages", Counter, false);
    /// Badmail: no recipients.
    BadmailNoRecipients = ("mailroot_badmailed_messages_total", "reason=\"no_recipients\"",
        "Badmailed Messages (No Recipients)", "Messages moved to Badmail/, by reason.", "messages", Counter, false);
    /// Badmail: anything else.
    BadmailGeneral = ("mailroot_badmailed_messages_total", "reason=\"general\"",
        "Badmailed Messages (General Failure)", "Messages moved to Badmail/, by reason.", "messages", Counter, false);
    /// PROXY protocol headers accepted (the carried client address is used).
    ProxyHeaders = ("mailroot_proxy_headers_total", "", "PROXY Headers Accepted",
        "PROXY protocol headers accepted on proxy_protocol listeners.", "connections", Counter, true);
    /// Connections closed on a proxy_protocol listener: peer not in proxy_trusted.
    ProxyRejectedUntrusted = ("mailroot_proxy_rejected_total", "reason=\"untrusted\"",
        "PROXY Connections Rejected (Untrusted Peer)", "Connections closed before the greeting on a proxy_protocol listener, by reason.", "connections", Counter, true);
    /// Connections closed on a proxy_protocol listener: the header did not parse.
    ProxyRejectedMalformed = ("mailroot_proxy_rejected_total", "reason=\"malformed\"",
        "PROXY Connections Rejected (Malformed Header)", "Connections closed before the greeting on a proxy_protocol listener, by reason.", "connections", Counter, true);
    /// Connections closed on a proxy_protocol listener: no complete header in time.
    ProxyRejectedTimeout = ("mailroot_proxy_rejected_total", "reason=\"timeout\"",
        "PROXY Connections Rejected (Timeout)", "Connections closed before the greeting on a proxy_protocol listener, by reason.", "connections", Counter, true);
}

/// Number of counters and gauges (the length of a `CounterBlock`).
pub const COUNTERS: usize = CATALOGUE.len();

impl Counter {
    /// This counter's catalogue entry.
    pub fn def(self) -> &'static Def {
        &CATALOGUE[self as usize]
    }
}

/// One catalogue entry of a histogram.
#[derive(Debug, Clone, Copy)]
pub struct HistDef {
    /// Prometheus metric name (exposed as a summary).
    pub prom: &'static str,
    /// Name in the `mailroot stats` table (no IIS counterpart).
    pub iis: &'static str,
    /// One line of documentation.
    pub help: &'static str,
    /// Unit of the exposed values.
    pub unit: &'static str,
    /// Recorded values are divided by this to give `unit` (1e6: microseconds → seconds).
    pub scale: f64,
    /// Largest recordable value (in recorded units); larger values are clamped.
    pub max: u64,
}

/// A latency or size histogram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Hist {
    /// End of data to the 250 reply (the group commit), recorded in microseconds.
    CommitLatency,
    /// Messages made durable by one group commit.
    CommitBatch,
    /// Arrival to final delivery or bounce, recorded in microseconds.
    QueueTime,
    /// One delivery attempt (connect to last reply), recorded in microseconds.
    DeliveryAttempt,
}

/// Every histogram, in `Hist` order.
pub const HISTOGRAMS: &[HistDef] = &[
    HistDef {
        prom: "mailroot_commit_latency_seconds",
        iis: "Commit Latency (end of data to 250)",
        help: "End of data to the 250 reply (group commit), seconds.",
        unit: "seconds",
        scale: 1e6,
        max: 3_600_000_000,
    },
    HistDef {
        prom: "mailroot_commit_batch_messages",
        iis: "Spool Commit Batch Size",
        help: "Messages made durable by one group commit.",
        unit: "messages",
        scale: 1.0,
        max: 1_000_000,
    },
    HistDef {
        prom: "mailroot_queue_time_seconds",
        iis: "Time in Queue",
        help: "Arrival to final delivery or bounce, seconds.",
        unit: "seconds",
        scale: 1e6,
        max: 30 * 86_400_000_000,
    },
    HistDef {
        prom: "mailroot_delivery_attempt_seconds",
        iis: "Delivery Time per Attempt",
        help: "One delivery attempt, seconds.",
        unit: "seconds",
        scale: 1e6,
        max: 3_600_000_000,
    },
];

impl Hist {
    /// This histogram's catalogue entry.
    pub fn def(self) -> &'static HistDef {
        &HISTOGRAMS[self as usize]
    }
}

/// Quantiles exposed for each histogram.
pub const QUANTILES: &[f64] = &[0.5, 0.9, 0.99, 0.999];

/// IIS name of the derived share of local recipients (`RecipientsLocal` over all).
pub const PCT_LOCAL: &str = "% Recipients Local";
/// IIS name of the derived share of remote recipients.
pub const PCT_REMOTE: &str = "% Recipients Remote";
/// IIS name of the derived recipients per accepted message.
pub const AVG_RCPTS: &str = "Avg Recipients per Message";

/// Label name of the per-site counters.
pub const SITE_LABEL: &str = "site";

#[cfg(test)]
mod tests {
    use super::*;

    fn prom_valid(name: &str) -> bool {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    #[test]
    fn names_are_unique_and_valid() {
        let mut seen = std::collections::HashSet::new();
        for d in CATALOGUE {
            assert!(prom_valid(d.prom), "{}", d.prom);
            assert!(seen.insert((d.prom, d.label)), "duplicate {} {}", d.prom, d.label);
            assert_eq!(d.kind == Kind::Counter, d.prom.ends_with("_total"), "{}", d.prom);
            assert!(!d.help.is_empty() && !d.iis.is_empty() && !d.unit.is_empty());
        }
        let iis: std::collections::HashSet<_> = CATALOGUE.iter().map(|d| d.iis).collect();
        assert_eq!(iis.len(), CATALOGUE.len(), "IIS names unique");
        for h in HISTOGRAMS {
            assert!(prom_valid(h.prom) && !seen.iter().any(|(p, _)| *p == h.prom), "{}", h.prom);
        }
        // Entries sharing a name are adjacent and share help and kind (one # HELP block).
        for w in CATALOGUE.windows(2) {
            if w[0].prom == w[1].prom {
                assert_eq!((w[0].help, w[0].kind), (w[1].help, w[1].kind));
            }
        }
        for (i, d) in CATALOGUE.iter().enumerate() {
            let later = CATALOGUE[i + 1..].iter().position(|e| e.prom == d.prom);
            assert!(later.is_none_or(|p| p == 0 || CATALOGUE[i + 1].prom == d.prom));
        }
    }

    #[test]
    fn enum_order_matches() {
        assert_eq!(Counter::MessagesReceived.def().iis, "Messages Received Total");
        assert_eq!(Counter::BadmailGeneral.def().label, "reason=\"general\"");
        assert_eq!(Hist::DeliveryAttempt.def().prom, "mailroot_delivery_attempt_seconds");
        assert_eq!(HISTOGRAMS.len(), Hist::DeliveryAttempt as usize + 1);
    }
}
