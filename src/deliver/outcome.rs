//! What a remote server's replies mean for each recipient of a delivery attempt.
//!
//! WHAT: pure mapping from the replies of one SMTP transaction (`smtp::client`'s
//! `Event::TransactionDone`) to a [`RcptOutcome`] per spool recipient: a 2xx accepted
//! the recipient, a 5xx fails it (bounce, with the exact reply), anything else defers it.
//! Also the one-line rendering of a reply used in logs, the queue listing and NDRs.
//!
//! TRUST: replies come from remote servers, already bounded and sanitised by
//! `smtp::reply_parse`; they are only carried as text here.
//!
//! STANDARDS: RFC 5321 §4.2.1 (reply code classes), RFC 3463 (enhanced status codes),
//! RFC 3461 §6.2.2.1 (a next hop that offers DSN takes over success reports).

use crate::queue::inbox::RcptOutcome;
use crate::smtp::client::RcptResult;
use crate::smtp::reply::Reply;

/// A reply as one line of text: `550 5.1.1 text` (multi-line replies joined with " / ").
#[must_use]
pub fn reply_text(r: &Reply) -> String {
    let mut v = Vec::new();
    r.write_to(&mut v);
    let s = String::from_utf8_lossy(&v);
    s.trim_end().split("\r\n").collect::<Vec<_>>().join(" / ")
}

/// The enhanced status of a reply, or a default from its class.
fn status_of(r: &Reply) -> String {
    match r.status {
        Some(s) => format!("{}.{}.{}", s.class, s.subject, s.detail),
        None => format!("{}.0.0", r.code / 100),
    }
}

/// The outcome for one recipient from the reply that decided it.
#[must_use]
pub fn outcome_from_reply(r: &Reply, mta: &str, peer_dsn: bool) -> RcptOutcome {
    if r.is_positive() {
        RcptOutcome::Delivered { mta: mta.to_owned(), dsn_passed_on: peer_dsn }
    } else if r.is_permanent() {
        RcptOutcome::Failed {
            status: status_of(r),
            mta: Some(mta.to_owned()),
            reply: Some(reply_text(r)),
            text: String::new(),
        }
    } else {
        RcptOutcome::Deferred { reason: format!("{mta}: {}", reply_text(r)), dest_down: false }
    }
}

/// One outcome per recipient of a finished transaction: `rcpt_index[i]` is the spool index
/// of the job's recipient `i`; a recipient without its own result (MAIL failed) takes the
/// MAIL reply.
#[must_use]
pub fn session_outcomes(
    rcpt_index: &[u32],
    mail_reply: &Reply,
    rcpt_results: &[RcptResult],
    data_reply: Option<&Reply>,
    mta: &str,
    peer_dsn: bool,
) -> Vec<(u32, RcptOutcome)> {
    rcpt_index
        .iter()
        .enumerate()
        .map(|(i, &idx)| {
            let reply = rcpt_results
                .iter()
                .find(|r| r.index == i)
                .map_or(mail_reply, |r| r.outcome(data_reply));
            (idx, outcome_from_reply(reply, mta, peer_dsn))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, status: (u8, u16, u16), text: &'static str) -> Reply {
        Reply::new(code, status, text)
    }

    #[test]
    fn each_recipient_gets_the_reply_that_decided_it() {
        let ok = reply(250, (2, 0, 0), "Ok");
        let unknown = reply(550, (5, 1, 1), "no such user");
        let busy = reply(451, (4, 3, 0), "try later");
        let results = [
            RcptResult { index: 0, reply: ok.clone() },
            RcptResult { index: 1, reply: unknown },
            RcptResult { index: 2, reply: ok.clone() },
        ];
        let got = session_outcomes(&[4, 7, 9], &ok, &results, Some(&busy), "mx.example", true);
        assert_eq!(got[0].0, 4);
        assert!(matches!(&got[0].1, RcptOutcome::Deferred { reason, dest_down: false }
            if reason == "mx.example: 451 4.3.0 try later"));
        assert!(matches!(&got[1].1, RcptOutcome::Failed { status, reply: Some(r), .. }
            if status == "5.1.1" && r == "550 5.1.1 no such user"));
        let delivered = session_outcomes(&[9], &ok, &results[..1], Some(&ok), "mx", true);
        assert_eq!(
            delivered[0].1,
            RcptOutcome::Delivered { mta: "mx".into(), dsn_passed_on: true }
        );
    }

    #[test]
    fn a_failed_mail_decides_every_recipient() {
        let refused = reply(553, (5, 7, 1), "sender refused");
        let got = session_outcomes(&[0, 1], &refused, &[], None, "mx", false);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, o)| matches!(o, RcptOutcome::Failed { .. })));
    }

    #[test]
    fn reply_text_joins_lines() {
        assert_eq!(reply_text(&reply(550, (5, 1, 1), "a\nb")), "550-5.1.1 a / 550 5.1.1 b");
    }
}
