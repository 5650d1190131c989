//! The messages in `Queue/` as a table or a JSON array: `mailroot queue list` and the admin
//! listener's `GET /api/queue` (one listing code for both).
//!
//! Trust: sender and recipient addresses were supplied by SMTP clients. JSON output escapes
//! them (serde_json); the table escapes control characters so a crafted address cannot
//! move the terminal's cursor or forge lines.
//!
//! Table columns: `ID  SIZE  ARRIVAL(UTC)  STATE  SENDER  RECIPIENTS`, then a summary line.
//! JSON: `[{"id", "size", "arrival_unix_ms", "arrival" (RFC 3339 UTC), "state",
//! "sender", "recipients": [{"address", "status", "attempts"?, "next_retry"?,
//! "last_error"?}], "held"?, "held_since"?}]`; the null reverse path is `""`. The delivery
//! state (attempts, next retry, last error) and the operator's hold come from
//! `Queue/state/<id>` (see `spool::state`); the former is shown for deferred recipients
//! only, `held` only when true. One message with its whole envelope and headers is
//! `spool::show` (`queue show`, `GET /api/queue/{id}`).

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::state::{self, RcptState, StateFile};
use crate::smtp::date::{SECS_PER_DAY, civil_from_days};
use crate::spool::{self, QueuedMessage, RcptStatus};

/// One queued message as shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listing {
    /// Queue id, 16 upper-case hex digits.
    pub id: String,
    /// Message size in bytes as stored.
    pub size: u64,
    /// Arrival time, ms since the Unix epoch.
    pub arrival_unix_ms: u64,
    /// Arrival time as RFC 3339 UTC with milliseconds.
    pub arrival: String,
    /// `queued` (nothing delivered yet), `partially delivered`, or `completed`.
    pub state: &'static str,
    /// Reverse path; `""` is the null sender `<>`.
    pub sender: String,
    /// Every recipient with its status.
    pub recipients: Vec<RecipientListing>,
    /// Held by the operator (`mailroot queue hold`): not tried until released.
    #[serde(skip_serializing_if = "is_false")]
    pub held: bool,
    /// When it was held (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
}

/// For serde: omit a false flag.
fn is_false(b: &bool) -> bool {
    !*b
}

/// One recipient of a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientListing {
    /// Forward path.
    pub address: String,
    /// `pending`, `delivered`, `bounced` or `expired`.
    pub status: &'static str,
    /// Deferred attempts so far (from `Queue/state/<id>`; 0 = never deferred).
    #[serde(skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// When the next attempt is due (RFC 3339 UTC), if known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry: Option<String>,
    /// The last deferral reason, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// For serde: omit a zero attempt count.
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Recipient status name for a pending (still owed) recipient.
const PENDING: &str = "pending";

impl RecipientListing {
    /// Still owed (not delivered, bounced or expired).
    pub fn is_pending(&self) -> bool {
        self.status == PENDING
    }

    /// Pending and deferred at least once.
    pub fn is_deferred(&self) -> bool {
        self.is_pending() && self.attempts > 0
    }
}

/// The `--state` values of `queue list` (see [`Filter`]).
pub const STATE_NAMES: [&str; 4] = ["queued", "deferred", "partially-delivered", "completed"];

/// The `queue list --domain D --state S` filter; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Keep messages with a *pending* recipient in this domain (case-insensitive).
    pub domain: Option<String>,
    /// Keep messages in this state, one of [`STATE_NAMES`]: `queued` (nothing delivered
    /// yet), `deferred` (a pending recipient was deferred at least once),
    /// `partially-delivered`, `completed` (nothing pending; about to leave the queue).
    pub state: Option<String>,
}

impl Filter {
    /// A filter; `Err` names the unknown state.
    pub fn new(domain: Option<String>, state: Option<String>) -> Result<Filter, String> {
        if let Some(s) = &state
            && !STATE_NAMES.contains(&s.as_str())
        {
            return Err(format!("unknown state {s:?} (one of {})", STATE_NAMES.join(", ")));
        }
        Ok(Filter { domain: domain.map(|d| d.to_ascii_lowercase()), state })
    }

    /// Whether `l` passes.
    pub fn matches(&self, l: &Listing) -> bool {
        let domain_ok = self.domain.as_deref().is_none_or(|d| {
            l.recipients.iter().any(|r| {
                r.is_pending()
                    && r.address.rsplit_once('@').is_some_and(|(_, rd)| rd.eq_ignore_ascii_case(d))
            })
        });
        let state_ok = self.state.as_deref().is_none_or(|s| match s {
            "deferred" => l.recipients.iter().any(RecipientListing::is_deferred),
            "partially-delivered" => l.state == "partially delivered",
            other => l.state == other,
        });
        domain_ok && state_ok
    }
}

impl Listing {
    /// Build a listing; `state` follows from the recipients' statuses.
    pub fn new(
        id: String,
        size: u64,
        arrival_unix_ms: u64,
        sender: String,
        recipients: Vec<RecipientListing>,
    ) -> Listing {
        let pending = recipients.iter().filter(|r| r.status == PENDING).count();
        let state = match pending {
            0 => "completed",
            n if n == recipients.len() => "queued",
            _ => "partially delivered",
        };
        let arrival = rfc3339_utc(arrival_unix_ms);
        Listing {
            id,
            size,
            arrival_unix_ms,
            arrival,
            state,
            sender,
            recipients,
            held: false,
            held_since: None,
        }
    }
}

/// (date, time-of-day, ms) parts of a Unix time in ms.
fn utc_parts(unix_ms: u64) -> ((i64, i64, i64), (i64, i64, i64), i64) {
    let ms = i64::try_from(unix_ms).unwrap_or(i64::MAX);
    let secs = ms / 1000;
    let sod = secs % SECS_PER_DAY;
    (civil_from_days(secs / SECS_PER_DAY), (sod / 3600, sod / 60 % 60, sod % 60), ms % 1000)
}

/// `2026-11-28T14:49:41.123Z` (RFC 3339 §5.6, UTC).
pub fn rfc3339_utc(unix_ms: u64) -> String {
    let ((y, mo, d), (h, mi, s), ms) = utc_parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `2026-11-28 14:49:41` for the table.
fn table_time(unix_ms: u64) -> String {
    let ((y, mo, d), (h, mi, s), _) = utc_parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}")
}

/// Peer-supplied text made safe for a terminal: control characters escaped.
pub fn printable(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_owned();
    }
    s.chars()
        .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
        .collect()
}

/// Write the table (or "Mail queue is empty") to `out`.
pub fn write_table(listings: &[Listing], out: &mut impl Write) -> io::Result<()> {
    if listings.is_empty() {
        return writeln!(out, "Mail queue is empty");
    }
    let rows: Vec<[String; 6]> = listings
        .iter()
        .map(|l| {
            let sender = if l.sender.is_empty() { "<>".to_owned() } else { printable(&l.sender) };
            let rcpts: Vec<String> = l
                .recipients
                .iter()
                .map(|r| match r.status {
                    PENDING if r.attempts > 0 => format!(
                        "{} (deferred, {} attempt{}, next {}: {})",
                        printable(&r.address),
                        r.attempts,
                        if r.attempts == 1 { "" } else { "s" },
                        r.next_retry.as_deref().unwrap_or("?"),
                        printable(r.last_error.as_deref().unwrap_or(""))
                    ),
                    PENDING => printable(&r.address),
                    status => format!("{} ({status})", printable(&r.address)),
                })
                .collect();
            [
                l.id.clone(),
                l.size.to_string(),
                table_time(l.arrival_unix_ms),
                if l.held { format!("{} (held)", l.state) } else { l.state.to_owned() },
                sender,
                rcpts.join(", "),
            ]
        })
        .collect();
    let header = ["ID", "SIZE", "ARRIVAL(UTC)", "STATE", "SENDER", "RECIPIENTS"].map(String::from);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell); // last column: no padding
            } else {
                line.push_str(&format!("{cell:<w$}  "));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    let total: u64 = listings.iter().map(|l| l.size).sum();
    let n = listings.len();
    writeln!(out, "-- {n} message{}, {total} bytes", if n == 1 { "" } else { "s" })
}

/// Write the JSON array to `out`.
pub fn write_json(listings: &[Listing], out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, listings)?;
    writeln!(out)
}

/// Write `listings` to stdout; a closed pipe (`| head`) is not an error.
pub fn print(listings: &[Listing], json: bool) -> io::Result<()> {
    let mut out = io::stdout().lock();
    let written =
        if json { write_json(listings, &mut out) } else { write_table(listings, &mut out) };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// Recipient status as shown to the operator.
fn status_name(status: RcptStatus) -> &'static str {
    match status {
        RcptStatus::Pending => PENDING,
        RcptStatus::Delivered => "delivered",
        RcptStatus::Bounced => "bounced",
        RcptStatus::Expired => "expired",
    }
}

/// The operator's view of one spool record, with the delivery state of its recipients
/// and its hold.
pub(super) fn listing(msg: &QueuedMessage, file: &StateFile) -> Listing {
    let mut l = listing_of(msg, &file.rcpts);
    l.held = file.held_since_unix_ms.is_some();
    l.held_since = file.held_since_unix_ms.map(rfc3339_utc);
    l
}

/// The listing of one spool record given its recipients' delivery state.
fn listing_of(msg: &QueuedMessage, state: &[RcptState]) -> Listing {
    let env = &msg.envelope;
    let recipients = env
        .recipients
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let st = state.iter().find(|s| s.index as usize == i);
            RecipientListing {
                address: r.forward_path.clone(),
                // A status missing from the record reads as still owed (never hide mail).
                status: msg.rcpt_status.get(i).copied().map_or(PENDING, status_name),
                attempts: st.map_or(0, |s| s.attempts),
                next_retry: st
                    .filter(|s| s.next_retry_unix_ms > 0)
                    .map(|s| rfc3339_utc(s.next_retry_unix_ms)),
                last_error: st.filter(|s| !s.last_error.is_empty()).map(|s| s.last_error.clone()),
            }
        })
        .collect();
    Listing::new(
        msg.id.to_string(),
        msg.message_bytes,
        env.arrival_unix_ms,
        env.reverse_path.clone(),
        recipients,
    )
}

/// Scan `queue_dir` read-only: every message, oldest first, with its delivery state.
/// A missing `Queue/` (server never started) is an empty queue.
pub fn list(queue_dir: &Path) -> Result<Vec<Listing>, String> {
    let msgs = if queue_dir.exists() {
        spool::scan(queue_dir)
            .map_err(|e| format!("cannot read queue {}: {e}", queue_dir.display()))?
    } else {
        Vec::new()
    };
    let mut listings: Vec<Listing> =
        msgs.iter().map(|m| listing(m, &state::read_file(queue_dir, m.id))).collect();
    listings.sort_by_key(|l| (l.arrival_unix_ms, l.id.clone()));
    Ok(listings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let mut deferred = rcpt("y@B.example", "pending");
        deferred.attempts = 2;
        let a = Listing::new("1".into(), 1, 0, "s".into(), vec![rcpt("x@a.example", "pending")]);
        let b = Listing::new(
            "2".into(),
            1,
            0,
            "s".into(),
            vec![rcpt("x@a.example", "delivered"), deferred],
        );
        let all = [a, b];
        let ids = |f: Filter| -> Vec<String> {
            all.iter().filter(|l| f.matches(l)).map(|l| l.id.clone()).collect()
        };
        let f = |d: Option<&str>, s: Option<&str>| {
            Filter::new(d.map(String::from), s.map(String::from)).unwrap_or_else(|e| panic!("{e}"))
        };
        assert_eq!(ids(f(None, None)), ["1", "2"]);
        // a.example is delivered in message 2: only pending recipients count.
        assert_eq!(ids(f(Some("A.EXAMPLE"), None)), ["1"]);
        assert_eq!(ids(f(Some("b.example"), None)), ["2"]);
        assert_eq!(ids(f(None, Some("deferred"))), ["2"]);
        assert_eq!(ids(f(None, Some("queued"))), ["1"]);
        assert_eq!(ids(f(None, Some("partially-delivered"))), ["2"]);
        assert_eq!(ids(f(Some("a.example"), Some("deferred"))), Vec::<String>::new());
        let err = Filter::new(None, Some("frozen".into())).err().unwrap_or_default();
        assert!(err.contains("frozen") && err.contains("deferred"), "{err}");
    }

    #[test]
    fn rfc3339() {
        let cases: &[(u64, &str)] = &[
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"),
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (1_000_000_000_000, "2001-09-09T01:46:40.000Z"),
            (1_700_000_000_123, "2023-11-14T22:13:20.123Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (1_735_689_599_000, "2024-12-31T23:59:59.000Z"),
            (4_102_444_800_000, "2100-01-01T00:00:00.000Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for &(ms, want) in cases {
            assert_eq!(rfc3339_utc(ms), want, "{ms}");
        }
    }

    fn rcpt(address: &str, status: &'static str) -> RecipientListing {
        RecipientListing {
            address: address.to_owned(),
            status,
            attempts: 0,
            next_retry: None,
            last_error: None,
        }
    }

    fn sample() -> Vec<Listing> {
        vec![
            Listing::new(
                "0000000100000000".into(),
                1234,
                1_700_000_000_123,
                "alice@example.com".into(),
                vec![rcpt("bob@example.net", "pending")],
            ),
            Listing::new(
                "0000000100000040".into(),
                10,
                1_700_000_001_000,
                String::new(),
                vec![rcpt("x@a.example", "delivered"), rcpt("y\x1b[2J@b.example", "pending")],
            ),
        ]
    }

    #[test]
    fn states() {
        // (statuses, state)
        let cases: &[(&[&'static str], &str)] = &[
            (&["pending"], "queued"),
            (&["pending", "pending"], "queued"),
            (&["delivered", "pending"], "partially delivered"),
            (&["bounced", "pending"], "partially delivered"),
            (&["delivered", "expired"], "completed"),
        ];
        for &(statuses, want) in cases {
            let rcpts = statuses.iter().map(|&s| rcpt("a@b", s)).collect();
            let l = Listing::new("0".into(), 0, 0, "s".into(), rcpts);
            assert_eq!(l.state, want, "{statuses:?}");
        }
    }

    #[test]
    fn table() {
        let mut out = Vec::new();
        write_table(&sample(), &mut out).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
        let expect = "\
ID                SIZE  ARRIVAL(UTC)         STATE                SENDER             RECIPIENTS
0000000100000000  1234  2023-11-14 22:13:20  queued               alice@example.com  bob@example.net
0000000100000040  10    2023-11-14 22:13:21  partially delivered  <>                 x@a.example (delivered), y\\u{1b}[2J@b.example
-- 2 messages, 1244 bytes
";
        assert_eq!(text, expect);
    }

    #[test]
    fn empty_table() {
        let mut out = Vec::new();
        write_table(&[], &mut out).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out, b"Mail queue is empty\n");
    }

    #[test]
    fn json() {
        let mut out = Vec::new();
        write_json(&sample(), &mut out).unwrap_or_else(|e| panic!("{e}"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_else(|e| panic!("{e}"));
        let want = serde_json::json!([
            {"id": "0000000100000000", "size": 1234, "arrival_unix_ms": 1_700_000_000_123u64,
             "arrival": "2023-11-14T22:13:20.123Z", "state": "queued",
             "sender": "alice@example.com",
             "recipients": [{"address": "bob@example.net", "status": "pending"}]},
            {"id": "0000000100000040", "size": 10, "arrival_unix_ms": 1_700_000_001_000u64,
             "arrival": "2023-11-14T22:13:21.000Z", "state": "partially delivered", "sender": "",
             "recipients": [{"address": "x@a.example", "status": "delivered"},
                            {"address": "y\u{1b}[2J@b.example", "status": "pending"}]},
        ]);
        assert_eq!(v, want);
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(b"[]").ok(),
            Some(serde_json::json!([]))
        );
    }
}
