//! The bounce service's Badmail writers: threads that write `Badmail/` pairs (`.BAD` +
//! `.BDR`, `local::badmail`, each synced) off the queue runner's thread.
//!
//! WHAT: a failed null-sender message (an NDR that cannot be delivered, a bounce of `<>`:
//! backscatter whose forged senders do not exist) goes to Badmail. Each pair costs two
//! files, their syncs and a directory sync, over a millisecond of kernel time; written on
//! the runner's thread one after another, a storm of them stalled every delivery
//! (perf/RESULTS.md 2026-12-06, `BADMAIL=1 perf/bounce_storm.sh`). The service hands each
//! pair to these threads ([`Writers::submit`], numbered) and, in its once-per-pass
//! `commit`, waits until every pair submitted in the pass is written ([`Writers::wait`]):
//! the pairs of one pass are written in parallel and only then crossed off. Each thread
//! has its own queue and the pairs of one message always go to the same one: two pairs
//! of one message (two domains failing in one pass) share their temporary names, and
//! written at once they would take each other's.
//!
//! TRUST: the content and addresses come from the spool; `local::badmail` refuses an
//! address that would forge an envelope line.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use crate::local::LocalError;
use crate::local::badmail::{BadmailEnvelope, BadmailFiles, to_badmail};

/// One pair to write.
pub(super) struct Job {
    /// Ticket, from [`Writers::submit`].
    pub(super) ticket: u64,
    /// The Badmail folder.
    pub(super) dir: PathBuf,
    /// The name the files are derived from (the queue id).
    pub(super) name: String,
    /// The message's reverse path (empty: the null sender).
    pub(super) reverse_path: String,
    /// The recipients it was still owed to.
    pub(super) rcpts: Vec<String>,
    /// The message.
    pub(super) message: Arc<[u8]>,
    /// The `.BDR` reason line.
    pub(super) reason: String,
    /// Now, Unix seconds (the `.BDR` date).
    pub(super) now: i64,
}

/// A job's outcome: its ticket and the files written (or why not).
type Done = (u64, Result<BadmailFiles, LocalError>);

/// The writer threads and what they owe.
pub(super) struct Writers {
    /// Jobs to each thread (the threads end when these are dropped).
    jobs: Vec<Sender<Job>>,
    /// Outcomes from the threads.
    done: Receiver<Done>,
    /// Outcomes received but not yet asked for.
    finished: HashMap<u64, Result<BadmailFiles, LocalError>>,
    /// The last ticket handed out.
    next: u64,
    /// The threads.
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Start `n` writer threads.
    pub(super) fn start(n: usize) -> Writers {
        let (tx, done) = crossbeam_channel::unbounded::<Done>();
        let mut jobs = Vec::new();
        let threads = (0..n.max(1))
            .filter_map(|i| {
                let (job_tx, rx) = crossbeam_channel::unbounded::<Job>();
                let tx = tx.clone();
                let spawned =
                    std::thread::Builder::new().name(format!("badmail-{i}")).spawn(move || {
                        for j in rx {
                            let rcpts: Vec<&str> = j.rcpts.iter().map(String::as_str).collect();
                            let env = BadmailEnvelope {
                                reverse_path: &j.reverse_path,
                                recipients: &rcpts,
                            };
                            let r = to_badmail(
                                &j.dir,
                                &j.name,
                                Some(&env),
                                &j.message,
                                &j.reason,
                                j.now,
                            );
                            if tx.send((j.ticket, r)).is_err() {
                                return;
                            }
                        }
                    });
                let t = spawned.map_err(|e| log::error!("cannot start a badmail writer: {e}"));
                let t = t.ok()?;
                jobs.push(job_tx);
                Some(t)
            })
            .collect();
        Writers { jobs, done, finished: HashMap::new(), next: 0, threads }
    }

    /// Hand a job to the thread of `shard` (the message: its pairs always go to the same
    /// thread); its `ticket` is set here and returned. `None` when no thread runs.
    pub(super) fn submit(&mut self, mut job: Job, shard: u64) -> Option<u64> {
        if self.jobs.is_empty() {
            return None;
        }
        self.next += 1;
        job.ticket = self.next;
        let i = usize::try_from(shard % self.jobs.len() as u64).unwrap_or(0);
        self.jobs[i].send(job).ok().map(|()| self.next)
    }

    /// The outcome of `ticket`, waiting for it until `deadline` (`None`: not in time, or
    /// the threads are gone).
    pub(super) fn wait(
        &mut self,
        ticket: u64,
        deadline: Instant,
    ) -> Option<Result<BadmailFiles, LocalError>> {
        loop {
            if let Some(r) = self.finished.remove(&ticket) {
                return Some(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.done.recv_timeout(left.max(Duration::from_millis(1))) {
                Ok((t, r)) => {
                    self.finished.insert(t, r);
                }
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) if Instant::now() >= deadline => return None,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }
}

impl Drop for Writers {
    fn drop(&mut self) {
        // Close the job channels: each thread finishes what it holds and ends.
        self.jobs.clear();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
