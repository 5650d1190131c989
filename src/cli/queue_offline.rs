//! `mailroot queue delete|hold|release ID` when no server runs: acting on `Queue/`
//! directly, under the spool's own lock.
//!
//! WHY it is safe: the running server holds `Queue/lock` (`flock`, taken by `Spool::open`)
//! for its whole life, and its queue runner owns the schedule and the cross-offs. This
//! module takes the same lock the same way; if the server holds it, nothing is touched
//! and the operator is told that the server runs but its admin listener did not answer.
//! A server started meanwhile fails to start ("locked") for the moment this takes, as a
//! second server would. Opening runs the spool's normal recovery (what `serve` does first).
//!
//! WHAT: delete crosses every pending recipient off `X` (each byte msynced) and removes
//! the state file; hold writes the hold line of `Queue/state/<ID>` durably; release
//! removes it (the message is tried when the server starts). Bounce is refused: the NDR is
//! written and delivered by the server's queue runner. Each action is written to the event
//! log file (`by: "command"`), as the server would have done.

use crate::config::Config;
use crate::eventlog::{self, By, Event, EventLogOptions};
use crate::spool::{QueueId, RcptStatus, Spool, SpoolError, SpoolOptions, state};

/// What the operator is told when the server holds the lock.
const SERVER_RUNS: &str = "the server is running (it holds Queue/lock) but its admin \
                           listener did not answer; check [admin] listen";

/// Unix ms now (the command line may read the clock).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Carry out `verb` on `id` in `config`'s spool; what was done, or why not.
pub(super) fn act(config: &Config, verb: &str, id: QueueId) -> Result<String, String> {
    if verb == "bounce" {
        return Err("bounce needs the running server (its queue runner writes and sends \
                    the NDR): start `mailroot serve`, then bounce"
            .into());
    }
    let dir = config.queue_dir();
    if !dir.exists() {
        return Err("no queued message with that id".into());
    }
    let opts = SpoolOptions {
        segment_bytes: config.spool.segment_bytes,
        min_free_bytes: config.limits.min_free_disk_bytes,
    };
    let spool = match Spool::open(&dir, opts) {
        Ok((spool, _)) => spool,
        Err(SpoolError::Locked(_)) => return Err(SERVER_RUNS.into()),
        Err(e) => return Err(format!("cannot open the queue {}: {e}", dir.display())),
    };
    let info = spool.message_info(id).map_err(|_| "no queued message with that id")?;
    let pending: Vec<usize> = (0..info.envelope.recipients.len())
        .filter(|&i| info.rcpt_status.get(i) == Some(&RcptStatus::Pending))
        .collect();
    if pending.is_empty() {
        return Err("no queued message with that id".into());
    }
    let mut file = state::read_file(&dir, id);
    let done = match verb {
        "delete" => {
            for &i in &pending {
                spool.cross_off(id, i, RcptStatus::Expired).map_err(|e| e.to_string())?;
            }
            state::remove(&dir, id);
            format!(
                "deleted ({} recipient(s), no report sent; the server was not running)",
                pending.len()
            )
        }
        "hold" if file.held_since_unix_ms.is_some() => "already held".to_owned(),
        "hold" => {
            file.held_since_unix_ms = Some(unix_ms());
            state::write_file_durable(&dir, id, &file).map_err(|e| e.to_string())?;
            "held: not tried until released (the server was not running)".to_owned()
        }
        "release" if file.held_since_unix_ms.is_none() => "not held".to_owned(),
        "release" => {
            file.held_since_unix_ms = None;
            state::write_file_durable(&dir, id, &file).map_err(|e| e.to_string())?;
            "released: tried when the server starts".to_owned()
        }
        other => return Err(format!("unknown queue action {other:?}")),
    };
    drop(spool); // releases Queue/lock
    log_event(config, verb, id);
    Ok(done)
}

/// Write `queue.<verb>` to the event log file, as the server would have (best effort:
/// the change is made either way).
fn log_event(config: &Config, verb: &str, id: QueueId) {
    if !config.event_log.enabled {
        return;
    }
    let opts = EventLogOptions {
        path: Some(config.event_log_path()),
        max_size_bytes: config.event_log.max_size_bytes,
        keep: config.event_log.keep,
    };
    match eventlog::spawn(opts) {
        Ok((log, thread)) => {
            log.emit(Event::QueueAction {
                action: verb.to_owned(),
                target: Some(id.to_string()),
                by: By::Command,
                result: "ok".to_owned(),
            });
            thread.stop_and_join();
        }
        Err(e) => log::warn!("event log not written: {e}"),
    }
}
