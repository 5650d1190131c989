//! The envelope of one message to send, and the MAIL/RCPT lines written for it.
//!
//! TRUST: job strings come from our spool; `ClientSession::send` refuses any with a
//! control character before these functions turn them into command lines.
//!
//! STANDARDS: RFC 5321 §4.1.1.2-3 (MAIL, RCPT), RFC 1870 (SIZE=), RFC 6152 (BODY=),
//! RFC 6531 §3.4 (SMTPUTF8), RFC 3461 §4 (NOTIFY, ORCPT, RET, ENVID; xtext).

use std::borrow::Cow;
use std::io::Write as _;

use super::PeerExtensions;
use crate::smtp::command::{Body, MailParams, Notify, Orcpt, RcptParams, Ret};

/// One message to send: the envelope. The content is passed to `poll_transmit`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Job {
    /// Canonical `local@domain` of the sender; empty for the null reverse path `<>`.
    pub reverse_path: String,
    /// Recipients, in order; `RcptResult::index` points into this. Not empty.
    pub recipients: Vec<JobRecipient>,
    /// The content has 8-bit bytes (needs 8BITMIME; sent as `BODY=8BITMIME`).
    pub body_8bit: bool,
    /// The message was received with SMTPUTF8.
    pub smtputf8: bool,
    /// Size in bytes, declared as `SIZE=` and checked against the server's SIZE.
    pub size: u64,
    /// DSN `RET=` (sent only if the server offers DSN).
    pub ret: Option<Ret>,
    /// DSN `ENVID=`, decoded (sent only if the server offers DSN).
    pub envid: Option<String>,
}

/// One recipient of a `Job`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobRecipient {
    /// Canonical `local@domain`, or `Postmaster`.
    pub forward_path: String,
    /// DSN `NOTIFY=` (sent only if the server offers DSN).
    pub notify: Option<Notify>,
    /// DSN `ORCPT=` as `addr-type;addr`, addr decoded (sent only if the server offers DSN).
    pub orcpt: Option<String>,
}

/// A non-ASCII address needs SMTPUTF8 (RFC 6531 §3.4).
pub(super) fn needs_smtputf8(job: &Job) -> bool {
    !job.reverse_path.is_ascii() || job.recipients.iter().any(|r| !r.forward_path.is_ascii())
}

/// `MAIL FROM:<rp> [SIZE=] [BODY=8BITMIME] [SMTPUTF8] [RET= ENVID=]` for what the server offers.
pub(super) fn write_mail(out: &mut Vec<u8>, ext: &PeerExtensions, job: &Job) {
    let params = MailParams {
        size: ext.size.map(|_| job.size),
        body: (job.body_8bit && ext.eight_bit_mime).then_some(Body::EightBitMime),
        smtputf8: ext.smtputf8 && (job.smtputf8 || needs_smtputf8(job)),
        ret: job.ret.filter(|_| ext.dsn),
        envid: job.envid.as_deref().filter(|_| ext.dsn).map(Cow::Borrowed),
    };
    let _ = write!(out, "MAIL FROM:<{}>{params}\r\n", job.reverse_path);
}

/// `RCPT TO:<fp> [NOTIFY= ORCPT=]` for what the server offers.
pub(super) fn write_rcpt(out: &mut Vec<u8>, ext: &PeerExtensions, r: &JobRecipient) {
    let orcpt = r.orcpt.as_deref().filter(|_| ext.dsn).map(|o| match o.split_once(';') {
        Some((addr_type, addr)) => Orcpt { addr_type, addr: Cow::Borrowed(addr) },
        None => Orcpt { addr_type: "rfc822", addr: Cow::Borrowed(o) },
    });
    let params = RcptParams { notify: r.notify.filter(|_| ext.dsn), orcpt };
    let _ = write!(out, "RCPT TO:<{}>{params}\r\n", r.forward_path);
}
