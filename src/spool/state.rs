//! Delivery state beside the spool: per recipient, how many attempts were made, when the
//! next one is due and the last error, for `mailroot queue list` (and to keep counting
//! attempts across restarts).
//!
//! WHAT: one small text file per message with a deferred recipient, `Queue/state/<ID>`
//! (`ID` = 16 hex digits), one line per recipient that was ever deferred:
//!
//! ```text
//! <rcpt index> <attempts> <next retry, Unix ms; 0 = unknown> <last error>\n
//! ```
//!
//! The last error is the rest of the line, with control characters replaced by spaces.
//! The file is advisory: written by the queue runner to a temporary name and renamed (a
//! reader sees the old or the new file, never a torn one), not fsynced; losing it in a crash
//! only resets the counters. It is deleted when the message leaves the queue. The spool
//! (segments + status bytes) stays the one source of truth for *what* is pending.
//!
//! TRUST: the error texts come from remote servers: sanitised on write, parsed leniently
//! (bad lines skipped) on read.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::spool::QueueId;

/// Sub-directory of `Queue/` holding the state files.
pub const STATE_DIR: &str = "state";

/// The delivery state of one recipient.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptState {
    /// Recipient index in the spool record.
    pub index: u32,
    /// Attempts made (deferred ones; the final attempt removes the recipient).
    pub attempts: u32,
    /// When the next attempt is due, Unix ms; 0 = unknown.
    pub next_retry_unix_ms: u64,
    /// The last deferral reason.
    pub last_error: String,
}

/// `Queue/state/<id>`.
#[must_use]
pub fn state_path(queue_dir: &Path, id: QueueId) -> PathBuf {
    queue_dir.join(STATE_DIR).join(id.to_string())
}

/// Encode the lines (pure).
#[must_use]
pub fn encode(states: &[RcptState]) -> String {
    let mut out = String::new();
    for s in states {
        let err: String =
            s.last_error.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
        out.push_str(&format!("{} {} {} {err}\n", s.index, s.attempts, s.next_retry_unix_ms));
    }
    out
}

/// Decode the lines (pure); malformed lines are skipped.
#[must_use]
pub fn decode(text: &str) -> Vec<RcptState> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(4, ' ');
            let index = it.next()?.parse().ok()?;
            let attempts = it.next()?.parse().ok()?;
            let next_retry_unix_ms = it.next()?.parse().ok()?;
            let last_error = it.next().unwrap_or("").to_owned();
            Some(RcptState { index, attempts, next_retry_unix_ms, last_error })
        })
        .collect()
}

/// Write the state of `id` (temporary file + rename; not synced: advisory).
pub fn write_to(queue_dir: &Path, id: QueueId, states: &[RcptState]) -> io::Result<()> {
    let dir = queue_dir.join(STATE_DIR);
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    fs::write(&tmp, encode(states))?;
    fs::rename(&tmp, state_path(queue_dir, id))
}

/// Read the state of `id`; empty when there is none.
#[must_use]
pub fn read_from(queue_dir: &Path, id: QueueId) -> Vec<RcptState> {
    fs::read_to_string(state_path(queue_dir, id)).map(|t| decode(&t)).unwrap_or_default()
}

/// Remove the state of `id` (the message left the queue).
pub fn remove(queue_dir: &Path, id: QueueId) {
    let _ = fs::remove_file(state_path(queue_dir, id));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let cases: Vec<Vec<RcptState>> = vec![
            vec![],
            vec![RcptState {
                index: 0,
                attempts: 3,
                next_retry_unix_ms: 1_700_000_000_000,
                last_error: "mx.example: 451 4.7.1 try later".into(),
            }],
            vec![
                RcptState { index: 2, attempts: 1, next_retry_unix_ms: 0, last_error: "".into() },
                RcptState {
                    index: 5,
                    attempts: 9,
                    next_retry_unix_ms: 7,
                    last_error: "a b".into(),
                },
            ],
        ];
        for c in cases {
            assert_eq!(decode(&encode(&c)), c);
        }
        let evil = RcptState { last_error: "x\r\n9 9 9 forged".into(), ..RcptState::default() };
        assert_eq!(decode(&encode(std::slice::from_ref(&evil))).len(), 1);
        assert_eq!(decode("garbage\n1 2\n3 4 5 ok\n").len(), 1);
    }
}
