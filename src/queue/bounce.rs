//! The bounce service: failed, delayed and delivered recipients turned into reports (RFC
//! 3464 NDRs and DSNs) in the spool, or into Badmail when there is nobody to report to.
//!
//! WHAT: the queue runner hands it a message's envelope and a list of [`Failure`]s
//! ([`BounceService::bounce`]): the report is composed by the pure [`crate::dsn`] (for the
//! recipients whose NOTIFY asks for it) and written into the spool with a null sender
//! through the service's own `SpoolWriter`, and what to cross off is *staged* with it. The
//! runner calls [`BounceService::commit`] once per loop pass: one wait for the writer's
//! group commit makes every report staged in the pass durable, and only then does the
//! runner get the cross-offs and the new reports ([`Bounced`]): a crash in between means a
//! duplicate NDR, never none. A storm of 5xx replies so costs one commit per pass, not one
//! per NDR (perf/RESULTS.md 2026-12-06, `perf/bounce_storm.sh`). A failed null-sender
//! message (an NDR, a bounce of `<>`) is not bounced again: it goes to `Badmail/<id>.BAD` +
//! `.BDR` (`local::badmail`), written by the service's writer threads
//! (`bounce_badmail.rs`) while the runner goes on; `commit` waits for them too. If a report cannot be written, `bounce` says so
//! ([`BounceError`]) and nothing is staged (the recipients stay pending, retried later); if
//! the commit fails, `commit` hands back what it held, none of it to be crossed off.
//!
//! It runs on the runner's thread (it is called, not sent to), so "cross off only after
//! the NDR is durable" stays a plain sequence within the pass. Reads the clock (report
//! dates) and the spool (the original's content).
//!
//! TRUST: spool contents are ours; failure texts carry remote reply text, which `dsn`
//! sanitises and Badmail's reason file stores as one line.
//!
//! STANDARDS: RFC 3461 (NOTIFY, RET, ENVID, ORCPT), RFC 3464 (reports), RFC 5321 §4.5.5
//! (null reverse path; no bounce of a bounce), §6.1 (responsibility: never lose).
//!
//! COUNTERS (`stats`, marked `// stats`): NDRs generated, Badmail by reason (the runner's
//! counter block: this service runs on its thread).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::dsn::{self, Diagnosis, RcptReport, Report, ReportKind};
use crate::local::LocalError;
use crate::local::badmail::BadmailFiles;
use crate::plan::route::HOP_LOOP_TEXT;
use crate::plan::{notify_of, ret_of};
use crate::spool::{
    Envelope, EnvelopeRecipient, QueueId, RcptStatus, Spool, SpoolError, SpoolWriter,
};
use crate::stats::{Counter, CounterBlock};

/// Longest wait for the service's own group commit (a report), before giving up on it.
pub const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Site name recorded in the envelope of the reports we generate.
const REPORT_SITE: &str = "mailer-daemon";

#[path = "bounce_badmail.rs"]
mod badmail;

/// A Badmail pair handed to the writers, not yet known written.
#[derive(Debug)]
struct Pending {
    /// The writers' ticket.
    ticket: u64,
    /// The message.
    id: QueueId,
    /// Every failure was a routing loop (stats).
    looped: bool,
    /// It had no recipient left (stats).
    no_recipients: bool,
}

/// One recipient to report on: failed, delayed or delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Spool recipient index (into the envelope's recipients).
    pub index: u32,
    /// RFC 3463 status, e.g. `5.1.1`, `4.4.7`, `2.0.0`.
    pub status: String,
    /// The remote host, if one answered.
    pub mta: Option<String>,
    /// The remote reply (exact), or `None` when `text` is our own reason.
    pub reply: Option<String>,
    /// Our reason in words.
    pub text: String,
}

/// What [`BounceService::commit`] hands over: what was made durable, and what was not.
#[derive(Debug, Default)]
pub struct Committed {
    /// Durable: cross these off, queue their reports.
    pub done: Vec<Bounced>,
    /// Not durable: nothing of these may be crossed off or queued.
    pub failed: Vec<(BounceError, Bounced)>,
}

/// What a bounce made durable, for the runner to act on (from [`BounceService::commit`]).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Bounced {
    /// `(id, recipient index, status)` to cross off: every failure, with the mark asked for.
    pub crossoffs: Vec<(QueueId, usize, RcptStatus)>,
    /// The report spooled (a new message for the scheduler), if one was due.
    pub report: Option<QueueId>,
}

/// Why nothing was made durable (nothing may be crossed off).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BounceError {
    /// The original message could not be read back from the spool.
    #[error("cannot read the original: {0}")]
    ReadOriginal(#[source] SpoolError),
    /// The report could not be written into the spool.
    #[error("report not spooled: {0}")]
    Spool(#[source] SpoolError),
    /// The report's group commit failed.
    #[error("report commit failed: {0}")]
    Commit(#[source] SpoolError),
    /// The report's group commit did not complete in [`COMMIT_WAIT`].
    #[error("report commit did not complete in {0:?}")]
    CommitTimeout(Duration),
    /// The Badmail files could not be written.
    #[error("badmail failed: {0}")]
    Badmail(#[source] LocalError),
    /// The commit that was to make this pass's reports durable failed (its error, for
    /// every report it held).
    #[error("report commit failed: {0}")]
    PassCommit(String),
}

/// The bounce service (one, owned by the queue runner).
pub struct BounceService {
    /// Configuration (host name, `send_ndr_copy_to`, expiry, Badmail folder).
    config: Arc<Config>,
    /// The spool (originals are read from it).
    spool: Spool,
    /// The service's own writer: reports go into the spool through it.
    writer: SpoolWriter,
    /// One message per group commit of `writer`.
    committed: Receiver<()>,
    /// stats: the runner's counter block (same thread).
    stats: Arc<CounterBlock>,
    /// Bounces and reports written since the last [`BounceService::commit`], each with
    /// the ticket of its Badmail pair when it went to Badmail.
    staged: Vec<(Bounced, Option<Pending>)>,
    /// The Badmail writer threads.
    badmail: badmail::Writers,
    /// The writer's commit sequence that makes every staged report durable (0: none).
    staged_through: u64,
}

/// Unix ms now.
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl BounceService {
    /// A service writing reports with `writer` (whose commits ring `committed`).
    #[must_use]
    pub fn new(
        config: Arc<Config>,
        spool: Spool,
        writer: SpoolWriter,
        committed: Receiver<()>,
        stats: Arc<CounterBlock>,
    ) -> BounceService {
        let badmail = badmail::Writers::start(config.delivery.local_concurrency);
        BounceService {
            config,
            spool,
            writer,
            committed,
            stats,
            staged: Vec::new(),
            staged_through: 0,
            badmail,
        }
    }

    /// Is anything staged (waiting for [`BounceService::commit`])?
    #[must_use]
    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Make everything staged since the last call durable (one wait for the writer's
    /// group commit) and hand it over: the cross-offs to apply and the reports to queue.
    /// On error nothing staged is durable for sure: the error and what it held, none of
    /// which may be crossed off or queued.
    pub fn commit(&mut self) -> Committed {
        let staged = std::mem::take(&mut self.staged);
        let through = std::mem::take(&mut self.staged_through);
        let spooled = if through == 0 { Ok(()) } else { self.wait_committed(through) };
        let deadline = Instant::now() + COMMIT_WAIT;
        let mut out = Committed::default();
        for (b, pending) in staged {
            match pending {
                Some(p) => match self.badmail.wait(p.ticket, deadline) {
                    Some(Ok(files)) => {
                        self.badmailed(&p, &files);
                        out.done.push(b);
                    }
                    Some(Err(e)) => out.failed.push((BounceError::Badmail(e), b)),
                    None => out.failed.push((BounceError::CommitTimeout(COMMIT_WAIT), b)),
                },
                // Reports (NDRs, DSNs) ride on the spool commit.
                None => match &spooled {
                    Ok(()) => out.done.push(b),
                    Err(e) => out.failed.push((BounceError::PassCommit(e.to_string()), b)),
                },
            }
        }
        out
    }

    /// Use `config` from now on (a reload).
    pub(super) fn set_config(&mut self, config: Arc<Config>) {
        self.config = config;
    }

    /// A Badmail pair is written: log it and count it.
    fn badmailed(&self, p: &Pending, files: &BadmailFiles) {
        let bad = files.bad.display();
        log::info!(target: "mailroot::message", "queue_id={} badmailed file={bad}", p.id);
        // stats: by reason (a null-sender message: NDR of NDR unless it looped).
        self.stats.inc(if p.no_recipients {
            Counter::BadmailNoRecipients
        } else if p.looped {
            Counter::BadmailHopCount
        } else {
            Counter::BadmailNdrOfNdr
        });
    }

    /// Failed recipients of `id`: an NDR of `kind` written (or Badmail for a null sender),
    /// and every failure staged to be crossed off with `mark` once
    /// [`BounceService::commit`] has made the NDR durable. On error nothing is staged.
    pub fn bounce(
        &mut self,
        id: QueueId,
        env: &Envelope,
        failures: &[Failure],
        kind: ReportKind,
        mark: RcptStatus,
    ) -> Result<(), BounceError> {
        for f in failures {
            log::info!(
                target: "mailroot::message",
                "queue_id={id} bounced rcpt={} status={} reason={:?}",
                env.recipients.get(f.index as usize).map_or("?", |r| &r.forward_path),
                f.status,
                f.reply.as_deref().unwrap_or(&f.text)
            );
        }
        let (report, pending) = if env.reverse_path.is_empty() {
            (None, Some(self.write_badmail(id, env, failures)?))
        } else {
            (self.write_report(id, env, failures, kind)?, None)
        };
        let crossoffs = failures.iter().map(|f| (id, f.index as usize, mark)).collect();
        self.staged.push((Bounced { crossoffs, report }, pending));
        Ok(())
    }

    /// Hand the message and the reasons to the Badmail writers (`Badmail/`); the pair is
    /// durable once [`BounceService::commit`] has its outcome.
    fn write_badmail(
        &mut self,
        id: QueueId,
        env: &Envelope,
        failures: &[Failure],
    ) -> Result<Pending, BounceError> {
        let message = self.spool.read_message_shared(id).map_err(BounceError::ReadOriginal)?;
        let reason: Vec<String> = failures
            .iter()
            .map(|f| format!("{} {}", f.status, f.reply.as_deref().unwrap_or(&f.text)))
            .collect();
        let rcpts: Vec<String> = failures
            .iter()
            .filter_map(|f| env.recipients.get(f.index as usize))
            .map(|r| r.forward_path.clone())
            .collect();
        let job = badmail::Job {
            ticket: 0,
            dir: self.config.badmail_dir(),
            name: id.to_string(),
            reverse_path: env.reverse_path.clone(),
            rcpts,
            message,
            reason: reason.join("; "),
            now: i64::try_from(unix_ms() / 1000).unwrap_or(0),
        };
        let looped = failures.iter().all(|f| f.text == HOP_LOOP_TEXT);
        let no_recipients = failures.is_empty();
        match self.badmail.submit(job, id.0) {
            Some(ticket) => Ok(Pending { ticket, id, looped, no_recipients }),
            None => Err(BounceError::Badmail(LocalError::Io {
                op: "hand over",
                path: self.config.badmail_dir(),
                source: std::io::Error::other("no Badmail writer thread runs"),
            })),
        }
    }

    /// A report of `kind` (delay, success) for the recipients in `list` that asked for it
    /// (NOTIFY), spooled with a null sender and staged: [`BounceService::commit`] hands it
    /// over once durable. Nothing is crossed off. `Ok(None)`: no report was due.
    pub fn report(
        &mut self,
        id: QueueId,
        env: &Envelope,
        list: &[Failure],
        kind: ReportKind,
    ) -> Result<Option<QueueId>, BounceError> {
        let report = self.write_report(id, env, list, kind)?;
        if report.is_some() {
            self.staged.push((Bounced { crossoffs: Vec::new(), report }, None));
        }
        Ok(report)
    }

    /// Compose and spool the report (not yet known durable): its id, or `None` when no
    /// report was due (null sender, nobody asked, or it could not be composed).
    fn write_report(
        &mut self,
        id: QueueId,
        env: &Envelope,
        list: &[Failure],
        kind: ReportKind,
    ) -> Result<Option<QueueId>, BounceError> {
        if env.reverse_path.is_empty() {
            return Ok(None);
        }
        let wanted: Vec<&Failure> = list
            .iter()
            .filter(|f| {
                let n = env.recipients.get(f.index as usize).map_or(0, |r| r.notify);
                dsn::should_notify(notify_of(n), kind)
            })
            .collect();
        if wanted.is_empty() {
            return Ok(None);
        }
        let original = self.spool.read_message_shared(id).map_err(BounceError::ReadOriginal)?;
        let now_ms = unix_ms();
        let now_s = now_ms / 1000;
        let until = (env.arrival_unix_ms + self.config.delivery.expire_ms) / 1000;
        let rcpt_reports: Vec<RcptReport<'_>> = wanted
            .iter()
            .map(|f| {
                let r = env.recipients.get(f.index as usize);
                RcptReport {
                    final_recipient: r.map_or("", |r| &r.forward_path),
                    original_recipient: r.and_then(|r| r.orcpt.as_deref()),
                    status: &f.status,
                    diagnosis: match (&f.mta, &f.reply) {
                        (Some(mta), Some(reply)) => Diagnosis::Remote { mta, reply },
                        (mta, _) => Diagnosis::Local { text: &f.text, mta: mta.as_deref() },
                    },
                    last_attempt: Some(now_s),
                    will_retry_until: (kind == ReportKind::Delay).then_some(until),
                }
            })
            .collect();
        let message_id = format!("{id}.{now_ms}.{}", kind.as_str());
        let cfg = Arc::clone(&self.config);
        let report = Report {
            kind,
            hostname: &cfg.hostname,
            to: &env.reverse_path,
            date: now_s,
            message_id: &message_id,
            envid: env.envid.as_deref(),
            arrival_date: env.arrival_unix_ms / 1000,
            recipients: &rcpt_reports,
            ret: ret_of(env.ret),
            original: &original,
        };
        let bytes = match dsn::build(&report) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("queue_id={id} no report: {e}");
                return Ok(None);
            }
        };
        let mut to = vec![env.reverse_path.clone()];
        if kind == ReportKind::Failure
            && let Some(copy) = &cfg.relay.send_ndr_copy_to
        {
            to.push(copy.clone());
        }
        let ndr = self.spool_report(&bytes, &to, env.body)?;
        log::info!(target: "mailroot::message", "queue_id={id} report={} ndr_id={ndr}", kind.as_str());
        if kind == ReportKind::Failure {
            self.stats.inc(Counter::NdrsGenerated); // stats
        }
        Ok(Some(ndr))
    }

    /// Write a null-sender message to `to` into the spool; its commit is awaited by
    /// [`BounceService::commit`].
    fn spool_report(
        &mut self,
        bytes: &[u8],
        to: &[String],
        body: u8,
    ) -> Result<QueueId, BounceError> {
        let env = Envelope {
            reverse_path: String::new(),
            recipients: to
                .iter()
                .map(|a| EnvelopeRecipient { forward_path: a.clone(), notify: 0, orcpt: None })
                .collect(),
            body: if bytes.is_ascii() { 0 } else { body.max(1) },
            smtputf8: !to.iter().all(|a| a.is_ascii()),
            ret: 0,
            envid: None,
            client_addr: String::new(),
            helo: self.config.hostname.clone(),
            arrival_unix_ms: unix_ms(),
            site: REPORT_SITE.into(),
        };
        let w = &mut self.writer;
        let ticket = (|| {
            let mut rec = w.begin(&env)?;
            w.append(&mut rec, bytes)?;
            w.finish(rec)
        })()
        .map_err(BounceError::Spool)?;
        w.flush();
        self.staged_through = self.staged_through.max(ticket.seq);
        Ok(ticket.id)
    }

    /// Wait until the writer's commits reach `seq`.
    fn wait_committed(&mut self, seq: u64) -> Result<(), BounceError> {
        let w = &mut self.writer;
        let deadline = Instant::now() + COMMIT_WAIT;
        loop {
            match w.poll_committed() {
                Ok(s) if s >= seq => return Ok(()),
                Ok(_) => {}
                Err((through, e)) if through >= seq => return Err(BounceError::Commit(e)),
                Err(_) => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BounceError::CommitTimeout(COMMIT_WAIT));
            }
            let _ = self.committed.recv_timeout(left.min(Duration::from_millis(50)));
            w.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::SystemDefaults;
    use crate::spool::SpoolOptions;

    /// A spool under `root/Queue` holding one message from `reverse_path` to two
    /// recipients, and a bounce service writing into it.
    fn setup(root: &Path, reverse_path: &str) -> (Spool, QueueId, Envelope, BounceService) {
        let sys = SystemDefaults { hostname: "mx.example.org".into(), cores: 1 };
        let cfg = Config::from_toml_str(&format!("mailroot = {:?}", root.display()), &sys)
            .unwrap_or_else(|e| panic!("{e}"));
        let opts = SpoolOptions { segment_bytes: 1 << 20, min_free_bytes: 0 };
        let (spool, _) = Spool::open(&root.join("Queue"), opts).unwrap();
        let env = Envelope {
            reverse_path: reverse_path.into(),
            recipients: ["a@remote.example", "b@remote.example"]
                .iter()
                .map(|&fp| EnvelopeRecipient { forward_path: fp.into(), notify: 0, orcpt: None })
                .collect(),
            arrival_unix_ms: unix_ms(),
            ..Envelope::default()
        };
        let mut w = spool.writer(0, Box::new(|| {})).unwrap();
        let mut rec = w.begin(&env).unwrap();
        w.append(&mut rec, b"Subject: hi\r\n\r\nbody\r\n").unwrap();
        let ticket = w.finish(rec).unwrap();
        let deadline = Instant::now() + COMMIT_WAIT;
        while w.poll_committed().unwrap() < ticket.seq {
            assert!(Instant::now() < deadline, "original not committed");
            w.flush();
            std::thread::sleep(Duration::from_millis(2));
        }
        let (tx, committed) = crossbeam_channel::unbounded();
        let writer = spool
            .writer(
                1,
                Box::new(move || {
                    let _ = tx.send(());
                }),
            )
            .unwrap();
        let stats = Arc::new(CounterBlock::default());
        let svc = BounceService::new(Arc::new(cfg), spool.clone(), writer, committed, stats);
        (spool, ticket.id, env, svc)
    }

    fn failure(index: u32) -> Failure {
        Failure {
            index,
            status: "5.1.1".into(),
            mta: Some("mx.remote.example".into()),
            reply: Some("550 5.1.1 no such user".into()),
            text: "rejected".into(),
        }
    }

    #[test]
    fn failure_spools_a_durable_ndr_then_crosses_off() {
        let root = tempfile::tempdir().unwrap();
        let (spool, id, env, mut svc) = setup(root.path(), "alice@example.org");
        let fails = [failure(1)];
        svc.bounce(id, &env, &fails, ReportKind::Failure, RcptStatus::Bounced).unwrap();
        assert!(svc.has_staged(), "nothing handed over before the commit");
        let mut all = svc.commit().done;
        assert_eq!(all.len(), 1);
        let got = all.remove(0);
        assert!(!svc.has_staged());
        assert_eq!(got.crossoffs, vec![(id, 1, RcptStatus::Bounced)]);
        let ndr = got.report.expect("an NDR was due (no NOTIFY: failures are reported)");
        let info = spool.message_info(ndr).unwrap();
        assert_eq!(info.envelope.reverse_path, "");
        let to: Vec<&str> =
            info.envelope.recipients.iter().map(|r| r.forward_path.as_str()).collect();
        assert_eq!(to, ["alice@example.org"]);
        let text = String::from_utf8(spool.read_message(ndr).unwrap()).unwrap();
        assert!(text.contains("550 5.1.1 no such user"), "{text}");
    }

    #[test]
    fn null_sender_goes_to_badmail() {
        let root = tempfile::tempdir().unwrap();
        let (_spool, id, env, mut svc) = setup(root.path(), "");
        let fails = [failure(0), failure(1)];
        svc.bounce(id, &env, &fails, ReportKind::Failure, RcptStatus::Expired).unwrap();
        let got = svc.commit().done.remove(0);
        assert_eq!(got.report, None);
        assert_eq!(got.crossoffs, vec![(id, 0, RcptStatus::Expired), (id, 1, RcptStatus::Expired)]);
        let names: Vec<String> = std::fs::read_dir(root.path().join("Badmail"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn badmail_pairs_are_written_by_the_writers_and_a_failure_crosses_nothing_off() {
        let root = tempfile::tempdir().unwrap();
        let (_spool, id, env, mut svc) = setup(root.path(), "");
        // Twenty pairs handed over in one pass, all written by the commit.
        for _ in 0..20 {
            svc.bounce(id, &env, &[failure(0)], ReportKind::Failure, RcptStatus::Bounced).unwrap();
        }
        let c = svc.commit();
        assert_eq!((c.done.len(), c.failed.len()), (20, 0), "{:?}", c.failed.first().map(|f| &f.0));
        let bad = std::fs::read_dir(root.path().join("Badmail"))
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".BAD"))
            .count();
        assert_eq!(bad, 20, "one pair each, none replacing another");
        // A Badmail folder that cannot be written: handed back as failed, not done.
        std::fs::remove_dir_all(root.path().join("Badmail")).unwrap();
        std::fs::write(root.path().join("Badmail"), b"a file where the folder goes").unwrap();
        svc.bounce(id, &env, &[failure(1)], ReportKind::Failure, RcptStatus::Bounced).unwrap();
        let c = svc.commit();
        assert!(c.done.is_empty());
        assert_eq!(c.failed.len(), 1);
        assert!(matches!(c.failed[0].0, BounceError::Badmail(_)), "{:?}", c.failed[0].0);
        assert_eq!(c.failed[0].1.crossoffs, vec![(id, 1, RcptStatus::Bounced)]);
    }

    #[test]
    fn reports_follow_notify() {
        let root = tempfile::tempdir().unwrap();
        let (_spool, id, env, mut svc) = setup(root.path(), "alice@example.org");
        // (kind, report spooled?) for recipients without NOTIFY: failures only.
        let cases: &[(ReportKind, bool)] = &[
            (ReportKind::Delay, false),
            (ReportKind::Success, false),
            (ReportKind::Failure, true),
        ];
        for &(kind, want) in cases {
            let got = svc.report(id, &env, &[failure(0)], kind).unwrap();
            assert_eq!(got.is_some(), want, "{kind:?}");
            let staged = svc.commit().done;
            assert_eq!(staged.len(), usize::from(want), "{kind:?}");
            assert!(staged.iter().all(|b| b.crossoffs.is_empty() && b.report == got));
        }
    }

    #[test]
    fn many_bounces_are_made_durable_by_one_commit() {
        let root = tempfile::tempdir().unwrap();
        let (spool, id, env, mut svc) = setup(root.path(), "alice@example.org");
        // 50 NDRs written back to back (the same failure: the spool does not mind),
        // then one commit makes all of them durable and hands them over in order.
        for _ in 0..50 {
            svc.bounce(id, &env, &[failure(0)], ReportKind::Failure, RcptStatus::Bounced).unwrap();
        }
        let staged = svc.commit().done;
        assert_eq!(staged.len(), 50);
        for b in &staged {
            assert_eq!(b.crossoffs, vec![(id, 0, RcptStatus::Bounced)]);
            let ndr = b.report.expect("an NDR");
            assert_eq!(spool.message_info(ndr).unwrap().envelope.reverse_path, "");
        }
        assert!(svc.commit().done.is_empty(), "nothing twice");
    }
}
