//! One queued message in full, for `mailroot queue show ID`: the envelope, its DSN
//! parameters (RFC 3461), every recipient with its status and delivery state (attempts,
//! next retry, last error from `Queue/state/<ID>`), and the header section of the content.
//!
//! JSON: the `queue list` object of the message (`id`, `size`, `arrival_unix_ms`,
//! `arrival`, `state`, `sender`, `recipients`) plus `site`, `client_addr`, `helo`,
//! `dsn: {"envid", "ret", "body", "smtputf8"}`, per recipient `notify` (list of
//! `NEVER|SUCCESS|FAILURE|DELAY`, omitted when not given) and `orcpt`, and `headers`:
//! `[{"name", "value"}]` in order, folded lines joined with one space.
//!
//! TRUST: everything here came from an SMTP client or a remote server: the text form
//! escapes control characters, JSON is escaped by serde_json. Only the first
//! [`MAX_HEADER_BYTES`] of the content are read.

use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use super::format::{NOTIFY_DELAY, NOTIFY_FAILURE, NOTIFY_NEVER, NOTIFY_SUCCESS};
use super::listing::{Listing, RecipientListing, listing, printable};
use super::{QueueId, QueuedMessage, recover, state};

/// How much of the content is read for its header section.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// RFC 3461 parameters of the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DsnParams {
    /// ENVID, if given.
    pub envid: Option<String>,
    /// RET: `FULL`, `HDRS`, or `null` when not given.
    pub ret: Option<&'static str>,
    /// BODY: `7BIT`, `8BITMIME` or `BINARYMIME`.
    pub body: &'static str,
    /// SMTPUTF8 was given on MAIL.
    pub smtputf8: bool,
}

/// One recipient in full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientDetail {
    /// Address, status and delivery state, as `queue list` shows them.
    #[serde(flatten)]
    pub base: RecipientListing,
    /// NOTIFY values; empty (omitted) when not given.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<&'static str>,
    /// ORCPT as `type;address`, if given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
}

/// One header field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderField {
    /// Field name as written.
    pub name: String,
    /// Value, unfolded, trimmed.
    pub value: String,
}

/// `queue show` of one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MessageDetail {
    /// The `queue list` view (its `recipients` are replaced by `recipients` below).
    #[serde(flatten)]
    pub summary: Summary,
    /// The receiving site.
    pub site: String,
    /// Client address (`ip:port`) or `pickup`.
    pub client_addr: String,
    /// HELO/EHLO argument.
    pub helo: String,
    /// DSN parameters.
    pub dsn: DsnParams,
    /// Every recipient in RCPT order.
    pub recipients: Vec<RecipientDetail>,
    /// The header section, in order.
    pub headers: Vec<HeaderField>,
}

/// The message-level fields of a [`Listing`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Queue id.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
    /// Arrival, Unix ms.
    pub arrival_unix_ms: u64,
    /// Arrival, RFC 3339 UTC.
    pub arrival: String,
    /// `queued`, `partially delivered` or `completed`.
    pub state: &'static str,
    /// Reverse path (`""` = `<>`).
    pub sender: String,
    /// Held by the operator (`queue hold`): not tried until released.
    pub held: bool,
    /// When it was held (RFC 3339 UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_since: Option<String>,
}

/// Names of the NOTIFY bits set in `flags`.
fn notify_names(flags: u8) -> Vec<&'static str> {
    [
        (NOTIFY_NEVER, "NEVER"),
        (NOTIFY_SUCCESS, "SUCCESS"),
        (NOTIFY_FAILURE, "FAILURE"),
        (NOTIFY_DELAY, "DELAY"),
    ]
    .into_iter()
    .filter(|&(bit, _)| flags & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

/// The header fields of `content` (up to the first empty line or the end of what was
/// read); continuation lines are joined to their field with one space.
#[must_use]
pub fn header_fields(content: &[u8]) -> Vec<HeaderField> {
    let text = String::from_utf8_lossy(content);
    let mut fields: Vec<HeaderField> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.value.push(' ');
                last.value.push_str(line.trim());
            }
            continue;
        }
        let (name, value) = line.split_once(':').unwrap_or((line, ""));
        fields.push(HeaderField { name: name.to_owned(), value: value.trim().to_owned() });
    }
    fields
}

/// Build the detail of `msg` (pure: the state lines and the content's first bytes in).
#[must_use]
pub fn detail(msg: &QueuedMessage, file: &state::StateFile, content: &[u8]) -> MessageDetail {
    let Listing { id, size, arrival_unix_ms, arrival, state, sender, recipients, held, held_since } =
        listing(msg, file);
    let env = &msg.envelope;
    let recipients = recipients
        .into_iter()
        .zip(&env.recipients)
        .map(|(base, r)| RecipientDetail {
            base,
            notify: notify_names(r.notify),
            orcpt: r.orcpt.clone(),
        })
        .collect();
    MessageDetail {
        summary: Summary { id, size, arrival_unix_ms, arrival, state, sender, held, held_since },
        site: env.site.clone(),
        client_addr: env.client_addr.clone(),
        helo: env.helo.clone(),
        dsn: DsnParams {
            envid: env.envid.clone(),
            ret: match env.ret {
                1 => Some("FULL"),
                2 => Some("HDRS"),
                _ => None,
            },
            body: match env.body {
                1 => "8BITMIME",
                2 => "BINARYMIME",
                _ => "7BIT",
            },
            smtputf8: env.smtputf8,
        },
        recipients,
        headers: header_fields(content),
    }
}

/// Read message `id` from `queue_dir` read-only; `Ok(None)` when it is not queued.
pub fn show(queue_dir: &Path, id: QueueId) -> Result<Option<MessageDetail>, String> {
    if !queue_dir.exists() {
        return Ok(None);
    }
    let found = recover::scan_one(queue_dir, id, MAX_HEADER_BYTES)
        .map_err(|e| format!("cannot read queue {}: {e}", queue_dir.display()))?;
    Ok(found.map(|(msg, content)| detail(&msg, &state::read_file(queue_dir, id), &content)))
}

impl MessageDetail {
    /// The text form: `key: value` lines, the recipients, then the header section.
    pub fn write_text(&self, out: &mut impl Write) -> io::Result<()> {
        let s = &self.summary;
        let sender = if s.sender.is_empty() { "<>".to_owned() } else { printable(&s.sender) };
        writeln!(out, "id:          {}", s.id)?;
        match &s.held_since {
            Some(since) => writeln!(out, "state:       {} (held since {since})", s.state)?,
            None => writeln!(out, "state:       {}", s.state)?,
        }
        writeln!(out, "arrival:     {}", s.arrival)?;
        writeln!(out, "size:        {}", s.size)?;
        writeln!(out, "site:        {}", printable(&self.site))?;
        writeln!(out, "client:      {}", printable(&self.client_addr))?;
        writeln!(out, "helo:        {}", printable(&self.helo))?;
        writeln!(out, "sender:      {sender}")?;
        let d = &self.dsn;
        writeln!(
            out,
            "dsn:         envid={} ret={} body={} smtputf8={}",
            d.envid.as_deref().map_or_else(|| "-".to_owned(), printable),
            d.ret.unwrap_or("-"),
            d.body,
            if d.smtputf8 { "yes" } else { "no" }
        )?;
        writeln!(out, "recipients:")?;
        for r in &self.recipients {
            let b = &r.base;
            let mut line = format!("  {}  {}", printable(&b.address), b.status);
            if !r.notify.is_empty() {
                line.push_str(&format!("  notify={}", r.notify.join(",")));
            }
            if let Some(o) = &r.orcpt {
                line.push_str(&format!("  orcpt={}", printable(o)));
            }
            if b.attempts > 0 {
                line.push_str(&format!("  attempts={}", b.attempts));
            }
            if let Some(n) = &b.next_retry {
                line.push_str(&format!("  next_retry={n}"));
            }
            writeln!(out, "{line}")?;
            if let Some(e) = &b.last_error {
                writeln!(out, "    last error: {}", printable(e))?;
            }
        }
        writeln!(out, "headers:")?;
        for h in &self.headers {
            writeln!(out, "  {}: {}", printable(&h.name), printable(&h.value))?;
        }
        Ok(())
    }

    /// The JSON object.
    pub fn write_json(&self, out: &mut impl Write) -> io::Result<()> {
        serde_json::to_writer_pretty(&mut *out, self)?;
        writeln!(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::{Envelope, EnvelopeRecipient, RcptStatus};

    #[test]
    fn headers_unfold_and_stop_at_the_body() {
        let got = header_fields(
            b"Received: from a\r\n\tby b;\r\n date\r\nSubject: Hi\r\nX-Odd\r\n\r\nBody: no\r\n",
        );
        let want = [("Received", "from a by b; date"), ("Subject", "Hi"), ("X-Odd", "")];
        let got: Vec<(&str, &str)> =
            got.iter().map(|h| (h.name.as_str(), h.value.as_str())).collect();
        assert_eq!(got, want);
        // Truncated content (no empty line) still gives the fields read.
        assert_eq!(header_fields(b"A: 1\r\nB: 2").len(), 2);
    }

    #[test]
    fn detail_carries_dsn_and_state() {
        let msg = QueuedMessage {
            id: "0000000100000040".parse().unwrap_or_else(|_| panic!("id")),
            envelope: Envelope {
                reverse_path: "a@x.example".into(),
                recipients: vec![
                    EnvelopeRecipient {
                        forward_path: "b@dead.example".into(),
                        notify: NOTIFY_FAILURE | NOTIFY_DELAY,
                        orcpt: Some("rfc822;b@dead.example".into()),
                    },
                    EnvelopeRecipient {
                        forward_path: "c@y.example".into(),
                        notify: 0,
                        orcpt: None,
                    },
                ],
                body: 1,
                ret: 2,
                envid: Some("E1".into()),
                client_addr: "192.0.2.1:4000".into(),
                helo: "h".into(),
                arrival_unix_ms: 1_700_000_000_000,
                site: "default".into(),
                smtputf8: false,
            },
            message_bytes: 10,
            rcpt_status: vec![RcptStatus::Pending, RcptStatus::Delivered],
        };
        let states = state::StateFile {
            rcpts: vec![state::RcptState {
                index: 0,
                attempts: 3,
                next_retry_unix_ms: 1_700_000_600_000,
                last_error: "connection refused".into(),
            }],
            held_since_unix_ms: Some(1_700_000_700_000),
            delay_dsn_unix_ms: None,
        };
        let d = detail(&msg, &states, b"Subject: S\r\n\r\n");
        let v = serde_json::to_value(&d).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["id"], "0000000100000040");
        assert_eq!(v["held"], true);
        assert_eq!(v["held_since"], "2023-11-14T22:25:00.000Z");
        assert_eq!(v["state"], "partially delivered");
        assert_eq!(
            v["dsn"],
            serde_json::json!({"envid": "E1", "ret": "HDRS", "body": "8BITMIME", "smtputf8": false})
        );
        assert_eq!(v["recipients"][0]["notify"], serde_json::json!(["FAILURE", "DELAY"]));
        assert_eq!(v["recipients"][0]["attempts"], 3);
        assert_eq!(v["recipients"][0]["last_error"], "connection refused");
        assert_eq!(v["recipients"][0]["next_retry"], "2023-11-14T22:23:20.000Z");
        assert_eq!(v["recipients"][1]["status"], "delivered");
        assert!(v["recipients"][1].get("notify").is_none());
        assert_eq!(v["headers"][0], serde_json::json!({"name": "Subject", "value": "S"}));
        let mut text = Vec::new();
        d.write_text(&mut text).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8_lossy(&text);
        assert!(
            text.contains("dsn:         envid=E1 ret=HDRS body=8BITMIME smtputf8=no"),
            "{text}"
        );
        assert!(text.contains("    last error: connection refused"), "{text}");
        assert!(text.contains("  Subject: S"), "{text}");
    }
}
