//! The local-delivery threads (`[delivery] local_concurrency`, default 8): write Drop
//! files (`local::drop`) off the queue runner's thread, because each file is `fdatasync`ed
//! and its directory `fsync`ed; several at once, so that their syncs share journal commits.
//!
//! WHAT: per [`LocalRequest`], one Drop file holding every recipient of the task (IIS
//! format, see `local::drop`), then one report: all delivered, or all deferred (full disk,
//! I/O error), or all failed (an address that cannot be written on an `x-receiver:` line).
//!
//! TRUST: the request comes from the runner (spool data); see `local::drop`.

use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};

use super::inbox::LocalRequest;
use crate::local::LocalError;
use crate::local::drop::deliver_to_drop;
use crate::queue::inbox::{RcptOutcome, TaskReport};
use crate::stats::{Counter, CounterBlock, Registry};

/// Start `threads` threads (`[delivery] local_concurrency`) taking requests from one
/// channel; each exits when the channel closes. Each blocks on its own file's syncs, so
/// several files are synced at once and share the file system's journal commits.
pub fn spawn(
    requests: Receiver<LocalRequest>,
    reports: Sender<TaskReport>,
    threads: usize,
) -> std::io::Result<Vec<JoinHandle<()>>> {
    (0..threads.max(1))
        .map(|i| {
            let (requests, reports) = (requests.clone(), reports.clone());
            std::thread::Builder::new().name(format!("local-delivery-{i}")).spawn(move || {
                let stats = Registry::global().block(); // stats: this thread's block
                for req in requests {
                    let _ = reports.send(deliver(&req, &stats));
                }
            })
        })
        .collect()
}

/// Write one Drop file for `req`.
fn deliver(req: &LocalRequest, stats: &CounterBlock) -> TaskReport {
    let t = &req.task;
    let rcpts: Vec<&str> = t.job.recipients.iter().map(|r| r.forward_path.as_str()).collect();
    let first = t.rcpt_index.first().copied().unwrap_or(0);
    let outcome = match deliver_to_drop(
        &req.drop_dir,
        t.id,
        first,
        &t.job.reverse_path,
        &rcpts,
        &t.content,
    ) {
        Ok(path) => {
            log::info!("queue_id={} delivered drop={}", t.id, path.display());
            stats.inc(Counter::DirectoryDrops); // stats
            stats.inc(Counter::MessagesDelivered);
            RcptOutcome::Delivered { mta: "Drop".into(), dsn_passed_on: false }
        }
        Err(e @ LocalError::BadAddress(_)) => RcptOutcome::Failed {
            status: "5.1.3".into(),
            mta: None,
            reply: None,
            text: e.to_string(),
        },
        Err(e) => {
            log::warn!("queue_id={} drop failed: {e}", t.id);
            RcptOutcome::Deferred { reason: e.to_string(), dest_down: false }
        }
    };
    TaskReport::all(t, &outcome)
}
