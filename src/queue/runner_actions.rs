//! The operator's actions on the queue, carried out on the runner's thread (the runner
//! owns the schedule and every cross-off, so nobody else may change either).
//!
//! WHAT: a [`QueueRequest`] from the admin listener (`POST /api/queue/{id}/{verb}`,
//! `POST /api/flush`, which the `mailroot queue delete|bounce|hold|release` commands call)
//! is carried out and answered through its reply callback:
//! - **delete**: every pending recipient crossed off `X` (given up), no report to anyone;
//! - **bounce**: every pending recipient failed now, status 5.0.0, through the bounce
//!   service (an NDR to the sender, made durable before the cross-off `B`; Badmail for a
//!   null sender); if the NDR cannot be written nothing changes;
//! - **hold**: out of the schedule (`Scheduler::remove`) until released; the hold line of
//!   `Queue/state/<ID>` is written with fsync first, so the hold survives a restart;
//! - **release**: the hold line removed, the message scheduled again and tried now;
//! - **flush**: every waiting recipient retried now (`Scheduler::flush_all`).
//!
//! Also `Queue/flush.req`, the flush requests `mailroot queue flush` writes there
//! (`Runner::read_flush_requests`, every tick).
//!
//! A message whose delivery attempt is in flight is refused with `Busy` (the results of
//! the attempt must come back first; the operator tries again a moment later).
//!
//! TRUST: the id comes from the operator (through the token-checked admin listener);
//! an unknown id is `NotFound`, never a panic.

use std::time::Instant;

use super::{Arrival, FLUSH_REQUEST_FILE, Failure, Runner, shape_slot, unix_ms};
use crate::dsn::ReportKind;
use crate::eventlog::{By, Event};
use crate::queue::inbox::{ActionOutcome, QueueAction, QueueRequest};
use crate::queue::schedule::ScheduleError;
use crate::spool::state;
use crate::spool::{QueueId, QueuedMessage, RcptStatus};

/// Status of a recipient bounced by the operator (RFC 3463 §3.1: other or undefined,
/// permanent; the text says who decided).
const OPERATOR_BOUNCE_STATUS: &str = "5.0.0";
/// Reason given in the NDR of an operator's bounce.
const OPERATOR_BOUNCE_TEXT: &str = "returned to the sender by the postmaster";

impl Runner {
    /// Carry out one operator action and answer it.
    pub(super) fn on_request(&mut self, req: QueueRequest, now: Instant) {
        let QueueRequest { action, by, reply } = req;
        let outcome = match action {
            QueueAction::Delete(id) => self.delete(id),
            QueueAction::Bounce(id) => self.operator_bounce(id, now),
            QueueAction::Hold(id) => self.hold(id, now),
            QueueAction::Release(id) => self.release(id, now),
            QueueAction::FlushAll => {
                let n = if self.config.delivery.hold {
                    0
                } else {
                    self.sched.flush_all() + self.parked.make_all_due(now)
                };
                ActionOutcome::Done(format!("{n} waiting item(s) retried now"))
            }
        };
        let id = action.id().map(|i| i.to_string());
        let result = match &outcome {
            ActionOutcome::Done(_) => "ok".to_owned(),
            ActionOutcome::NotFound => "not found".to_owned(),
            ActionOutcome::Busy(e) | ActionOutcome::Failed(e) => e.clone(),
        };
        log::info!(
            "queue action={} queue_id={} outcome={outcome:?}",
            action.verb(),
            id.as_deref().unwrap_or("-")
        );
        self.events.emit(Event::QueueAction {
            action: action.verb().into(),
            target: id,
            by,
            result,
        });
        reply(outcome);
    }

    /// The message with its pending recipients' indices; `None` if no recipient of it is
    /// pending (or it does not exist).
    fn pending_message(&self, id: QueueId) -> Option<(QueuedMessage, Vec<u32>)> {
        let info = self.spool.message_info(id).ok()?;
        let pending: Vec<u32> = (0..info.envelope.recipients.len())
            .filter(|&i| info.rcpt_status.get(i) == Some(&RcptStatus::Pending))
            .filter_map(|i| u32::try_from(i).ok())
            .collect();
        (!pending.is_empty()).then_some((info, pending))
    }

    /// Take `id` out of the schedule and the runner's books (not its state file).
    fn unschedule(&mut self, id: QueueId) -> Result<(), ActionOutcome> {
        if let Some(e) = self.parked.take(id) {
            self.undeliverable.remove(&id); // stats
            self.shape[usize::from(e.tag)] -= 1; // stats
            return Ok(());
        }
        if !self.msgs.contains_key(&id) {
            return Ok(());
        }
        // Any other error: known to the runner but no longer to the scheduler, so there
        // is nothing left to remove there.
        if let Err(e @ ScheduleError::InFlight(_)) = self.sched.remove(id) {
            return Err(ActionOutcome::Busy(e.to_string()));
        }
        self.undeliverable.remove(&id); // stats
        if let Some(m) = self.msgs.remove(&id) {
            self.shape[shape_slot(m.counted)] -= 1; // stats
        }
        Ok(())
    }

    /// `delete`: cross every pending recipient off as given up, tell nobody.
    fn delete(&mut self, id: QueueId) -> ActionOutcome {
        let Some((_, pending)) = self.pending_message(id) else { return ActionOutcome::NotFound };
        if let Err(busy) = self.unschedule(id) {
            return busy;
        }
        self.crossoffs.extend(pending.iter().map(|&i| (id, i as usize, RcptStatus::Expired)));
        self.write_crossoffs();
        self.held.remove(&id);
        state::remove(self.spool.queue_dir(), id);
        ActionOutcome::Done(format!("deleted ({} recipient(s), no report sent)", pending.len()))
    }

    /// `bounce`: every pending recipient fails now; an NDR goes to the sender.
    fn operator_bounce(&mut self, id: QueueId, now: Instant) -> ActionOutcome {
        let Some((info, pending)) = self.pending_message(id) else {
            return ActionOutcome::NotFound;
        };
        if let Err(busy) = self.unschedule(id) {
            return busy;
        }
        let last = state::read_file(self.spool.queue_dir(), id).rcpts;
        let failures: Vec<Failure> = pending
            .iter()
            .map(|&index| Failure {
                index,
                status: OPERATOR_BOUNCE_STATUS.into(),
                mta: None,
                reply: None,
                text: match last.iter().find(|s| s.index == index && !s.last_error.is_empty()) {
                    Some(s) => format!("{OPERATOR_BOUNCE_TEXT}; last error: {}", s.last_error),
                    None => OPERATOR_BOUNCE_TEXT.to_owned(),
                },
            })
            .collect();
        let env = info.envelope;
        if !self.fail(id, &env, &failures, ReportKind::Failure, RcptStatus::Bounced) {
            // Nothing was crossed off: put it back where it was.
            if !self.held.contains_key(&id) && !self.config.delivery.hold {
                self.arrive(id, now, Arrival::Recovered);
            }
            return ActionOutcome::Failed("the NDR could not be written (see the log)".into());
        }
        if !self.finish_bounces() {
            return ActionOutcome::Failed("the NDR could not be made durable (see the log)".into());
        }
        self.write_crossoffs();
        self.held.remove(&id);
        state::remove(self.spool.queue_dir(), id);
        let to = if env.reverse_path.is_empty() {
            "null sender: written to Badmail".to_owned()
        } else {
            format!("NDR to {}", env.reverse_path)
        };
        ActionOutcome::Done(format!("bounced ({} recipient(s); {to})", pending.len()))
    }

    /// `hold`: out of the schedule until released; the hold is written durably first.
    fn hold(&mut self, id: QueueId, now: Instant) -> ActionOutcome {
        if self.pending_message(id).is_none() {
            return ActionOutcome::NotFound;
        }
        let dir = self.spool.queue_dir().to_path_buf();
        let mut file = state::read_file(&dir, id);
        if file.held_since_unix_ms.is_some() {
            self.held.entry(id).or_insert(file.held_since_unix_ms.unwrap_or(0));
            return ActionOutcome::Done("already held".into());
        }
        if let Err(busy) = self.unschedule(id) {
            return busy;
        }
        let since = unix_ms();
        file.held_since_unix_ms = Some(since);
        if let Err(e) = state::write_file_durable(&dir, id, &file) {
            if !self.config.delivery.hold {
                self.arrive(id, now, Arrival::Recovered);
            }
            return ActionOutcome::Failed(format!("cannot write the hold: {e}"));
        }
        self.held.insert(id, since);
        ActionOutcome::Done("held: not tried until released".into())
    }

    /// `release`: the hold removed, back into the schedule, tried now.
    fn release(&mut self, id: QueueId, now: Instant) -> ActionOutcome {
        if self.pending_message(id).is_none() {
            return ActionOutcome::NotFound;
        }
        let dir = self.spool.queue_dir().to_path_buf();
        let mut file = state::read_file(&dir, id);
        if file.held_since_unix_ms.is_none() && !self.held.contains_key(&id) {
            if self.sched.flush(id) || self.parked.make_due(id, now, true) {
                return ActionOutcome::Done("not held; retried now".into());
            }
            return ActionOutcome::Done("not held".into());
        }
        file.held_since_unix_ms = None;
        if let Err(e) = state::write_file_durable(&dir, id, &file) {
            return ActionOutcome::Failed(format!("cannot remove the hold: {e}"));
        }
        self.held.remove(&id);
        if self.config.delivery.hold {
            return ActionOutcome::Done(
                "released; delivery is held for the whole server ([delivery] hold)".into(),
            );
        }
        self.arrive(id, now, Arrival::Recovered);
        self.sched.flush(id);
        ActionOutcome::Done("released: tried now".into())
    }

    /// Apply `Queue/flush.req`, if present (then remove it).
    pub(super) fn read_flush_requests(&mut self) {
        let dir = self.spool.queue_dir().to_path_buf();
        let path = dir.join(FLUSH_REQUEST_FILE);
        if !path.exists() {
            return;
        }
        let work = dir.join(format!("{FLUSH_REQUEST_FILE}.work"));
        if std::fs::rename(&path, &work).is_err() {
            return;
        }
        let text = std::fs::read_to_string(&work).unwrap_or_default();
        let _ = std::fs::remove_file(&work);
        let now = Instant::now();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let n = if line == "all" {
                self.sched.flush_all() + self.parked.make_all_due(now)
            } else if let Some(d) = line.strip_prefix("domain ") {
                self.sched.flush_domain(d.trim()) + self.flush_parked_domain(d.trim(), now)
            } else if let Ok(id) = line.parse::<QueueId>() {
                usize::from(self.sched.flush(id) || self.parked.make_due(id, now, true))
            } else {
                log::warn!("flush request not understood: {line:?}");
                0
            };
            log::info!("flush request={line:?} requeued={n}");
            let target = (line != "all").then(|| line.strip_prefix("domain ").unwrap_or(line));
            self.events.emit(Event::QueueAction {
                action: "flush".to_owned(),
                target: target.map(str::to_owned),
                by: By::File,
                result: format!("requeued {n}"),
            });
        }
    }
}
