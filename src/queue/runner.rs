//! The queue runner: the one thread that decides what is delivered when, and the only
//! one that crosses recipients off.
//!
//! WHAT: receives committed QueueIds (`queue::inbox::IncomingBatch`, one per group commit
//! from each inbound worker and the pickup thread; recovered ids at start), loads each
//! message's envelope from the spool (`Spool::message_info`), and feeds its pending
//! recipients, grouped by domain (`policy::domain::rcpt_domain`), to the pure
//! [`Scheduler`]. It asks the scheduler for due actions; for each `Action::Deliver` it
//! reads the content once out of the spool (`Spool::read_message_shared`), asks the pure
//! delivery planner (`plan::plan`: hop count, route, masquerade, the envelope to send)
//! and hands the [`Task`] to delivery through `deliver::inbox` (local domains to the
//! local-delivery thread, the rest to the resolver pool / outbound loop).
//! `queue::inbox::TaskReport`s come back on a channel: delivered -> cross-off `Delivered`
//! (+ a success DSN); deferred -> the scheduler's retry schedule and the state file;
//! failed or expired -> the bounce service (`queue::bounce`: NDR or Badmail), which
//! stages what to cross off (`Bounced`; `Expired` on expiry); once per loop pass one
//! commit makes every staged NDR durable and the runner crosses off
//! (`Runner::finish_bounces`). Delay DSNs (`delay_notify`) and success DSNs follow NOTIFY
//! (RFC 3461) through the same service.
//!
//! Operator actions (`queue::inbox::QueueRequest`: delete, bounce, hold, release, flush,
//! from the admin listener) arrive on a third channel and are answered through the
//! request's reply callback (`runner_actions.rs`). A held message is out of the schedule;
//! its hold is a line in its `Queue/state/<ID>` file, so it survives a restart.
//!
//! Also: `Queue/flush.req` (written by `mailroot queue flush`) is read every
//! [`TICK`]: lines `all`, `<queue id>` or `domain <name>` retry now; and the spool is
//! compacted every [`COMPACT_INTERVAL`]. Cross-offs are msynced every
//! [`CROSSOFF_SYNC_INTERVAL`].
//!
//! TRUST: spool contents are ours; reports carry remote reply text (only copied into
//! NDRs, where `dsn` sanitises it, and into the state file, sanitised there).
//!
//! STANDARDS: RFC 5321 §4.5.4 (retry strategy), §6.1 (responsibility: never lose).
//!
//! COUNTERS (`stats`, marked `// stats`): queue-length gauges (Local / Remote / Retry,
//! published once per loop pass), delivery retries, time in queue, messages currently
//! undeliverable; the bounce service counts NDRs and Badmail on the same block.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, select};

use super::bounce::{BounceService, Committed, Failure};
use super::inbox::{IncomingBatch, QueueRequest, RcptOutcome, TaskReport};
use super::park::Parked;
use super::schedule::{Action, Outcome, PendingRcpt, ScheduleConfig, Scheduler};
use crate::config::Config;
use crate::control::Live;
use crate::deliver::inbox::{LocalRequest, RemoteSubmit, ResolveRequest, Task};
use crate::dsn::ReportKind;
use crate::eventlog::EventLog;
use crate::plan::route::{HOP_LOOP_TEXT, LOOP_STATUS, Route};
use crate::plan::{self, Plan};
use crate::spool::state::{self, RcptState};
use crate::spool::{Envelope, QueueId, RcptStatus, Spool, SpoolWriter};
use crate::stats::{Counter, CounterBlock, Hist, Registry};

/// How often the runner looks at `Queue/flush.req` (and its longest sleep).
pub const TICK: Duration = Duration::from_millis(250);
/// How often the queue runner compacts the spool.
pub const COMPACT_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How often cross-offs are msynced (see `Spool::cross_off_batch`): the most delivered mail
/// a power loss can send a second time. One msync per segment per interval, instead of one
/// per touched page per loop pass, which cost a tenth of the relay's CPU (perf/RESULTS.md).
pub const CROSSOFF_SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// Records in sealed segments older than this are copied forward by compaction, so one
/// long-deferred message cannot pin a whole segment (STYLE.md rule 17).
pub const COMPACT_AGE_MS: u64 = 60 * 60 * 1000;
/// Name of the flush request file in `Queue/`.
pub const FLUSH_REQUEST_FILE: &str = "flush.req";
/// Status of an expired recipient (RFC 3463 §3.5 "delivery time expired").
const EXPIRED_STATUS: &str = "4.4.7";

/// Everything the runner owns and talks to.
pub struct RunnerParts {
    /// Configuration.
    pub config: Arc<Config>,
    /// Where a reload publishes a new configuration (routes, domains, relay rules), read
    /// once per loop pass; `None` = never reloaded.
    pub live: Option<Arc<Live<Config>>>,
    /// The event log (queue actions, and flush requests read from `Queue/flush.req`).
    pub events: EventLog,
    /// The spool.
    pub spool: Spool,
    /// Committed ids from the inbound workers and pickup.
    pub incoming: Receiver<IncomingBatch>,
    /// Ids recovered at start-up.
    pub recovered: Vec<QueueId>,
    /// Results from the delivery threads.
    pub reports: Receiver<TaskReport>,
    /// Remote tasks: to the resolver pool, or straight to the outbound loop
    /// (`deliver::resolve::Router::submit`, wired by `relay.rs`).
    pub router: RemoteSubmit,
    /// Local tasks, to the local-delivery thread.
    pub local: Sender<LocalRequest>,
    /// The runner's own writer (NDRs, DSNs), handed to its bounce service.
    pub writer: SpoolWriter,
    /// One message per group commit of `writer`.
    pub committed: Receiver<()>,
    /// Operator actions (delete, bounce, hold, release, flush) from the admin listener.
    pub requests: Receiver<QueueRequest>,
}

/// A queued message as the runner knows it.
struct Meta {
    /// Its envelope (from the spool).
    env: Arc<Envelope>,
    /// Per recipient: attempts, next retry, last error (`state` file content).
    state: HashMap<u32, RcptState>,
    /// stats: whether some pending recipient is in a remote domain (Remote vs Local queue).
    remote: bool,
    /// stats: the queue-length gauge this message is counted in (`Runner::shape`).
    counted: Counter,
    /// When its delay DSN was sent (Unix ms; the state file's `delay-dsn` line).
    delay_dsn_unix_ms: Option<u64>,
}

/// stats: the queue-length gauge a message belongs in: Retry once a recipient was
/// deferred, else Remote if any recipient is remote, else Local.
fn shape_of(m: &Meta) -> Counter {
    shape(!m.state.is_empty(), m.remote)
}

/// stats: the queue-length gauge of a message that was ever `deferred`, or has a `remote`
/// recipient (see [`shape_of`]).
fn shape(deferred: bool, remote: bool) -> Counter {
    if deferred {
        Counter::RetryQueueLength
    } else if remote {
        Counter::RemoteQueueLength
    } else {
        Counter::LocalQueueLength
    }
}

/// stats: index of a queue-length gauge in `Runner::shape`.
fn shape_slot(c: Counter) -> usize {
    match c {
        Counter::LocalQueueLength => 0,
        Counter::RemoteQueueLength => 1,
        _ => 2,
    }
}

/// The runner.
struct Runner {
    /// Configuration.
    config: Arc<Config>,
    /// Reloads, and the generation `config` is from.
    live: Option<(Arc<Live<Config>>, u64)>,
    /// The event log.
    events: EventLog,
    /// The spool.
    spool: Spool,
    /// Committed ids from the inbound workers and pickup.
    incoming: Receiver<IncomingBatch>,
    /// Results from the delivery threads.
    reports: Receiver<TaskReport>,
    /// Remote tasks.
    router: RemoteSubmit,
    /// Local tasks.
    local: Sender<LocalRequest>,
    /// NDRs, DSNs and Badmail.
    bounce: BounceService,
    /// The scheduler.
    sched: Scheduler,
    /// Messages in the scheduler.
    msgs: HashMap<QueueId, Meta>,
    /// Retry intervals (for the state file's next-retry estimate).
    sched_cfg: ScheduleConfig,
    /// Ids received over the channel.
    received: u64,
    /// Cross-offs not yet written: applied with one `Spool::cross_off_batch` per loop pass
    /// and msynced every [`CROSSOFF_SYNC_INTERVAL`]. Losing them in a power loss means a
    /// duplicate delivery, never a lost message; an NDR they depend on is already durable.
    crossoffs: Vec<(QueueId, usize, RcptStatus)>,
    /// Spool-to-delivered latency of each delivered recipient, ms (bounded sample, logged
    /// as percentiles when the runner exits; counters proper are future work).
    latency_ms: Vec<u64>,
    /// stats: this thread's counter block.
    stats: Arc<CounterBlock>,
    /// stats: messages per queue-length gauge (Local, Remote, Retry), published each pass.
    shape: [u64; 3],
    /// stats: messages whose failure report could not be written (retried later).
    undeliverable: HashSet<QueueId>,
    /// Operator actions.
    requests: Receiver<QueueRequest>,
    /// Messages held by the operator (not in the scheduler, not in `msgs`), with the
    /// time of the hold (Unix ms). The hold line of their state file is the durable copy.
    held: HashMap<QueueId, u64>,
    /// Messages queued but out of memory (`runner_park.rs`): not in the scheduler, not
    /// in `msgs`, not in `held`.
    parked: Parked,
    /// Most messages in `msgs` (`[delivery] active_limit`).
    active_limit: usize,
}

/// Most latency samples kept (the first ones win; enough for a benchmark run).
const MAX_LATENCY_SAMPLES: usize = 1 << 20;

/// `p`-th percentile (0..=100) of sorted `v`.
fn percentile(v: &[u64], p: usize) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v[((v.len() - 1) * p / 100).min(v.len() - 1)]
}

/// Unix ms now.
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A report giving every recipient in `rcpts` of `id` the same `outcome`, for an attempt
/// that never left the runner (unreadable content, routing loop).
fn report_all(id: QueueId, domain: &Arc<str>, rcpts: &[u32], outcome: &RcptOutcome) -> TaskReport {
    TaskReport {
        id,
        domain: Arc::clone(domain),
        results: rcpts.iter().map(|&i| (i, outcome.clone())).collect(),
    }
}

/// Run the queue runner until the incoming channel closes. Returns the ids received.
pub fn run(parts: RunnerParts) -> u64 {
    let RunnerParts {
        config,
        live,
        events,
        spool,
        incoming,
        recovered,
        reports,
        router,
        local,
        writer,
        committed,
        requests,
    } = parts;
    let sched_cfg = ScheduleConfig::from_delivery(&config.delivery);
    let active_limit = config.delivery.active_limit.max(1);
    let stats = Registry::global().block();
    let bounce = BounceService::new(
        Arc::clone(&config),
        spool.clone(),
        writer,
        committed,
        Arc::clone(&stats),
    );
    let live = live.map(|l| {
        let g = l.generation();
        (l, g)
    });
    let mut r = Runner {
        config,
        live,
        events,
        spool,
        incoming,
        reports,
        router,
        local,
        bounce,
        sched: Scheduler::new(sched_cfg.clone()),
        sched_cfg,
        msgs: HashMap::new(),
        received: 0,
        crossoffs: Vec::new(),
        latency_ms: Vec::new(),
        stats,
        shape: [0; 3],
        undeliverable: HashSet::new(),
        requests,
        held: HashMap::new(),
        parked: Parked::new(),
        active_limit,
    };
    r.run(recovered);
    r.received
}

impl Runner {
    /// Pick up a reloaded configuration (one atomic load when nothing changed): the next
    /// delivery attempt plans with the new routes, domains and relay rules. Retry
    /// intervals and `hold` stay as started (`config::diff` keeps `[delivery]` unchanged).
    fn refresh_config(&mut self) {
        if let Some((live, seen)) = &mut self.live
            && live.refresh(seen, &mut self.config)
        {
            self.bounce.set_config(Arc::clone(&self.config));
            log::info!("queue runner: configuration reloaded");
        }
    }

    /// The loop.
    fn run(&mut self, recovered: Vec<QueueId>) {
        let hold = self.config.delivery.hold;
        if hold {
            log::info!("delivery held ([delivery] hold = true): messages stay queued");
        }
        let now = Instant::now();
        for id in recovered {
            if !hold {
                self.arrive(id, now, Arrival::Recovered);
            }
        }
        if !hold {
            self.remove_orphan_state_files();
        }
        let mut next_compaction = Instant::now() + COMPACT_INTERVAL;
        let mut next_tick = Instant::now() + TICK;
        let mut next_crossoff_sync = Instant::now() + CROSSOFF_SYNC_INTERVAL;
        loop {
            let now = Instant::now();
            if !hold {
                self.admit_due(now);
                self.run_due(now);
                self.finish_bounces();
                self.park_dormant(now);
            }
            let until = self.sched.poll_timeout().unwrap_or(next_tick).min(next_tick);
            let until = self.parked_due().map_or(until, |t| t.min(until));
            let wait = until.saturating_duration_since(Instant::now());
            let incoming = self.incoming.clone();
            let reports = self.reports.clone();
            let requests = self.requests.clone();
            select! {
                recv(incoming) -> batch => match batch {
                    Ok(ids) => {
                        let now = Instant::now();
                        for id in ids {
                            self.received += 1;
                            log::debug!("queue_id={id} incoming");
                            if !hold {
                                self.arrive(id, now, Arrival::New);
                            }
                        }
                    }
                    Err(_) => break,
                },
                recv(reports) -> rep => {
                    if let Ok(rep) = rep {
                        let now = Instant::now();
                        self.on_report(rep, now);
                        // Take every report already waiting: one cross-off batch for all.
                        while let Ok(rep) = self.reports.try_recv() {
                            self.on_report(rep, now);
                        }
                    }
                },
                recv(requests) -> req => {
                    if let Ok(req) = req {
                        self.on_request(req, Instant::now());
                    }
                },
                default(wait) => {}
            }
            self.finish_bounces();
            self.write_crossoffs();
            self.publish_gauges();
            self.refresh_config();
            let now = Instant::now();
            if now >= next_crossoff_sync {
                self.sync_crossoffs();
                next_crossoff_sync = now + CROSSOFF_SYNC_INTERVAL;
            }
            if now >= next_tick {
                next_tick = now + TICK;
                if !hold {
                    self.read_flush_requests();
                }
            }
            if now >= next_compaction {
                match self.spool.compact(COMPACT_AGE_MS) {
                    Ok(0) => {}
                    Ok(n) => log::info!("spool compacted moved={n}"),
                    Err(e) => log::warn!("spool compaction failed: {e}"),
                }
                next_compaction = now + COMPACT_INTERVAL;
            }
        }
        self.finish_bounces();
        self.write_crossoffs();
        self.sync_crossoffs();
        let mut l = std::mem::take(&mut self.latency_ms);
        l.sort_unstable();
        log::info!(
            "queue runner exiting queued={} received={} delivered={} latency_ms p50={} p90={} \
             p99={} max={}",
            self.msgs.len() + self.parked.len(),
            self.received,
            l.len(),
            percentile(&l, 50),
            percentile(&l, 90),
            percentile(&l, 99),
            l.last().copied().unwrap_or(0)
        );
    }

    /// stats: publish the queue-length gauges (three relaxed stores per pass).
    fn publish_gauges(&self) {
        let s = &self.stats;
        s.set(Counter::LocalQueueLength, self.shape[0]);
        s.set(Counter::RemoteQueueLength, self.shape[1]);
        s.set(Counter::RetryQueueLength, self.shape[2]);
        s.set(Counter::ParkedQueueLength, self.parked.len() as u64);
        s.set(Counter::MessagesUndeliverable, self.undeliverable.len() as u64);
    }

    /// Delete state files of messages no longer queued (a crash between the last
    /// cross-off and the file's removal leaves one behind).
    fn remove_orphan_state_files(&self) {
        let dir = self.spool.queue_dir().join(state::STATE_DIR);
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let keep = name.to_str().and_then(|n| n.parse::<QueueId>().ok()).is_some_and(|id| {
                self.msgs.contains_key(&id)
                    || self.held.contains_key(&id)
                    || self.parked.contains(id)
            });
            if !keep {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// msync the pages the cross-offs since the last call touched.
    fn sync_crossoffs(&self) {
        if let Err(e) = self.spool.sync_crossoffs() {
            log::error!("cross-off sync failed (a duplicate delivery is possible): {e}");
        }
    }

    /// Apply the buffered cross-offs.
    fn write_crossoffs(&mut self) {
        if self.crossoffs.is_empty() {
            return;
        }
        if let Err(e) = self.spool.cross_off_batch(&self.crossoffs) {
            log::error!("cross-off failed (a duplicate delivery is possible): {e}");
        }
        self.crossoffs.clear();
    }

    /// Do everything due at `now`.
    fn run_due(&mut self, now: Instant) {
        while let Some(action) = self.sched.next_due(now) {
            match action {
                Action::Deliver(job) => self.start(job.id, &job.domain, &job.rcpts, now),
                Action::DelayDsn { id, rcpts } => self.delay_dsn(id, &rcpts),
                Action::Expire { id, rcpts, message_done } => {
                    self.expire(id, &rcpts);
                    if message_done {
                        self.forget(id);
                    }
                }
                Action::Wake { domain } => self.on_wake(&domain, now),
                Action::Revived { domain } => self.on_revived(&domain, now),
            }
        }
    }

    /// Build the task for `rcpts` of `id` to `domain` and hand it out.
    fn start(&mut self, id: QueueId, domain: &Arc<str>, rcpts: &[u32], now: Instant) {
        let Some(meta) = self.msgs.get(&id) else { return };
        let env = Arc::clone(&meta.env);
        // The one copy of the content out of the spool for this attempt, shared by every
        // thread that sends it (the task crosses threads; compaction may move the record).
        let content = match self.spool.read_message_shared(id) {
            Ok(c) => c,
            Err(e) => {
                log::error!("queue_id={id} cannot read message: {e}");
                let outcome = RcptOutcome::Deferred { reason: e.to_string(), dest_down: false };
                return self.on_report(report_all(id, domain, rcpts, &outcome), now);
            }
        };
        let (route, job) = match plan::plan(&self.config, &env, domain, rcpts, &content) {
            Plan::Deliver { route, job } => (route, job),
            Plan::RoutingLoop { max_hop_count } => {
                log::info!("queue_id={id} routing loop: more than {max_hop_count} hops");
                let outcome = RcptOutcome::Failed {
                    status: LOOP_STATUS.into(),
                    mta: None,
                    reply: None,
                    text: HOP_LOOP_TEXT.into(),
                };
                return self.on_report(report_all(id, domain, rcpts, &outcome), now);
            }
        };
        let task =
            Task { id, domain: Arc::clone(domain), rcpt_index: rcpts.to_vec(), job, content };
        let sent = match route {
            Route::Local { drop_dir } => {
                self.local.send(LocalRequest { task, drop_dir }).map_err(|e| e.0.task)
            }
            route => (self.router)(ResolveRequest { task, route }).map_err(|e| e.task),
        };
        if let Err(task) = sent {
            let outcome =
                RcptOutcome::Deferred { reason: "shutting down".into(), dest_down: false };
            self.on_report(TaskReport::all(&task, &outcome), now);
        }
    }

    /// Results of one task.
    fn on_report(&mut self, rep: TaskReport, now: Instant) {
        let id = rep.id;
        let Some(meta) = self.msgs.get(&id) else { return };
        let env = Arc::clone(&meta.env);
        let mut failures = Vec::new();
        let mut successes = Vec::new();
        let mut done = false;
        let mut state_changed = false;
        for (index, outcome) in rep.results {
            match outcome {
                RcptOutcome::Delivered { mta, dsn_passed_on } => {
                    self.crossoffs.push((id, index as usize, RcptStatus::Delivered));
                    // stats: arrival to delivery, microseconds.
                    let queued_ms = unix_ms().saturating_sub(env.arrival_unix_ms);
                    self.stats.record(Hist::QueueTime, queued_ms.saturating_mul(1000));
                    if self.latency_ms.len() < MAX_LATENCY_SAMPLES {
                        self.latency_ms.push(unix_ms().saturating_sub(env.arrival_unix_ms));
                    }
                    log::info!(
                        target: "mailroot::message",
                        "queue_id={id} delivered rcpt={} via={mta}",
                        env.recipients.get(index as usize).map_or("?", |r| &r.forward_path)
                    );
                    // A DSN-capable next hop got NOTIFY and reports success itself.
                    if !dsn_passed_on {
                        successes.push(Failure {
                            index,
                            status: "2.0.0".into(),
                            mta: Some(mta.clone()),
                            reply: None,
                            text: format!("delivered to {mta}"),
                        });
                    }
                    done |= self.sched.result(id, index, Outcome::Delivered, now).unwrap_or(false);
                }
                RcptOutcome::Deferred { reason, dest_down } => {
                    let attempts = if let Some(m) = self.msgs.get_mut(&id) {
                        let s = m
                            .state
                            .entry(index)
                            .or_insert_with(|| RcptState { index, ..RcptState::default() });
                        s.attempts += 1;
                        s.last_error = reason.clone();
                        s.attempts
                    } else {
                        1
                    };
                    let next = unix_ms() + self.sched_cfg.retry_after(attempts).as_millis() as u64;
                    if let Some(s) = self.msgs.get_mut(&id).and_then(|m| m.state.get_mut(&index)) {
                        s.next_retry_unix_ms = next;
                    }
                    state_changed = true;
                    self.stats.inc(Counter::DeliveryRetries); // stats
                    log::info!(
                        target: "mailroot::message",
                        "queue_id={id} deferred rcpt={} attempts={attempts} reason={reason:?}",
                        env.recipients.get(index as usize).map_or("?", |r| &r.forward_path)
                    );
                    let o = Outcome::Deferred { reason, dest_down };
                    done |= self.sched.result(id, index, o, now).unwrap_or(false);
                }
                RcptOutcome::Failed { status, mta, reply, text } => {
                    failures.push(Failure { index, status, mta, reply, text });
                }
            }
        }
        if !successes.is_empty() {
            self.report(id, &env, &successes, ReportKind::Success);
        }
        if !failures.is_empty() {
            if self.fail(id, &env, &failures, ReportKind::Failure, RcptStatus::Bounced) {
                self.undeliverable.remove(&id); // stats
                for f in &failures {
                    done |= self.sched.result(id, f.index, Outcome::Failed, now).unwrap_or(false);
                }
            } else {
                // The NDR could not be made durable: keep the recipients, retry later.
                self.undeliverable.insert(id); // stats
                for f in &failures {
                    let o = Outcome::Deferred {
                        reason: format!("bounce not written: {}", f.text),
                        dest_down: false,
                    };
                    done |= self.sched.result(id, f.index, o, now).unwrap_or(false);
                }
            }
        }
        // stats: a first deferral moves the message to the Retry gauge.
        if !done && let Some(m) = self.msgs.get_mut(&id) {
            let now_in = shape_of(m);
            if now_in != m.counted {
                self.shape[shape_slot(m.counted)] -= 1;
                self.shape[shape_slot(now_in)] += 1;
                m.counted = now_in;
            }
        }
        if done {
            self.forget(id);
        } else if state_changed {
            self.write_state(id);
        }
    }

    /// Write the state file of `id` from the runner's books (advisory, not synced).
    fn write_state(&self, id: QueueId) {
        let Some(m) = self.msgs.get(&id) else { return };
        let mut rcpts: Vec<RcptState> = m.state.values().cloned().collect();
        rcpts.sort_by_key(|s| s.index);
        let file = state::StateFile {
            rcpts,
            held_since_unix_ms: None,
            delay_dsn_unix_ms: m.delay_dsn_unix_ms,
        };
        if let Err(e) = state::write_to(self.spool.queue_dir(), id, &file) {
            log::debug!("queue_id={id} state file not written: {e}");
        }
    }

    /// The message left the queue.
    fn forget(&mut self, id: QueueId) {
        self.undeliverable.remove(&id); // stats
        let Some(m) = self.msgs.remove(&id) else { return };
        self.shape[shape_slot(m.counted)] -= 1; // stats
        if !m.state.is_empty() {
            state::remove(self.spool.queue_dir(), id);
        }
    }

    /// Expired recipients: NDR (status 4.4.7 with the last error), crossed off `Expired`.
    fn expire(&mut self, id: QueueId, rcpts: &[PendingRcpt]) {
        let Some(meta) = self.msgs.get(&id) else { return };
        let env = Arc::clone(&meta.env);
        let failures: Vec<Failure> = rcpts
            .iter()
            .map(|r| Failure {
                index: r.rcpt,
                status: EXPIRED_STATUS.into(),
                mta: None,
                reply: None,
                text: match &r.last_error {
                    Some(e) => format!("delivery time expired; last error: {e}"),
                    None => "delivery time expired".into(),
                },
            })
            .collect();
        log::info!(target: "mailroot::message", "queue_id={id} expired rcpts={}", failures.len());
        // The scheduler already forgot them; if the NDR cannot be written the recipients
        // stay pending in the spool and come back after a restart (never lost).
        let _ = self.fail(id, &env, &failures, ReportKind::Failure, RcptStatus::Expired);
    }

    /// A delay DSN for recipients that asked for one.
    fn delay_dsn(&mut self, id: QueueId, rcpts: &[PendingRcpt]) {
        let Some(meta) = self.msgs.get_mut(&id) else { return };
        let env = Arc::clone(&meta.env);
        // Remembered in the state file: neither a restart nor parking asks for it again.
        meta.delay_dsn_unix_ms = Some(unix_ms());
        self.write_state(id);
        let list: Vec<Failure> = rcpts
            .iter()
            .map(|r| Failure {
                index: r.rcpt,
                status: "4.4.7".into(),
                mta: None,
                reply: None,
                text: r.last_error.clone().unwrap_or_else(|| "delivery delayed".into()),
            })
            .collect();
        self.report(id, &env, &list, ReportKind::Delay);
    }

    /// Failed recipients: the bounce service writes an NDR (or Badmail for a null
    /// sender) and stages the cross-offs with `mark`, applied by [`Runner::finish_bounces`]
    /// once the NDR is durable. Returns false if nothing could be written (nothing staged).
    fn fail(
        &mut self,
        id: QueueId,
        env: &Envelope,
        failures: &[Failure],
        kind: ReportKind,
        mark: RcptStatus,
    ) -> bool {
        match self.bounce.bounce(id, env, failures, kind, mark) {
            Ok(()) => true,
            Err(e) => {
                log::error!("queue_id={id} {} not written: {e}", kind.as_str());
                false
            }
        }
    }

    /// A report of `kind` (delay, success) for the recipients in `list` that asked for one;
    /// the report, once durable, is queued like any message. Nothing is crossed off.
    fn report(&mut self, id: QueueId, env: &Envelope, list: &[Failure], kind: ReportKind) {
        if let Err(e) = self.bounce.report(id, env, list, kind) {
            log::error!("queue_id={id} {} report not written: {e}", kind.as_str());
        }
    }

    /// Make the reports staged in this pass durable with one commit, then cross off what
    /// they answer for and queue them. If the commit fails nothing is crossed off: the
    /// messages concerned go back into the schedule (their recipients are still pending
    /// in the spool). Returns false then.
    fn finish_bounces(&mut self) -> bool {
        if !self.bounce.has_staged() {
            return true;
        }
        let now = Instant::now();
        let Committed { done, failed } = self.bounce.commit();
        for b in done {
            self.crossoffs.extend(b.crossoffs);
            if let Some(report) = b.report {
                self.arrive(report, now, Arrival::New);
            }
        }
        if failed.is_empty() {
            return true;
        }
        let mut ids: Vec<QueueId> =
            failed.iter().flat_map(|(_, b)| b.crossoffs.iter().map(|c| c.0)).collect();
        ids.sort_unstable();
        ids.dedup();
        log::error!(
            "reports not made durable ({}): nothing crossed off for {} message(s)",
            failed[0].0,
            ids.len()
        );
        for id in ids {
            self.undeliverable.insert(id); // stats
            let known = self.msgs.contains_key(&id)
                || self.parked.contains(id)
                || self.held.contains_key(&id);
            if !known && !self.config.delivery.hold {
                self.arrive(id, now, Arrival::Recovered);
            }
        }
        false
    }
}

#[path = "runner_actions.rs"]
mod actions;

#[path = "runner_park.rs"]
mod parking;
use parking::Arrival;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        let cases: &[(&[u64], usize, u64)] =
            &[(&[], 50, 0), (&[7], 99, 7), (&v, 50, 50), (&v, 99, 99), (&v, 100, 100)];
        for &(data, p, want) in cases {
            assert_eq!(percentile(data, p), want, "p{p}");
        }
    }
}
