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
//! A message the operator put on hold (`mailroot queue hold`) has one more line,
//!
//! ```text
//! hold <since, Unix ms>\n
//! ```
//!
//! which readers of the older format skip (its first word is not a number), so the
//! format stays compatible both ways. A message whose delay DSN was sent has
//!
//! ```text
//! delay-dsn <sent, Unix ms>\n
//! ```
//!
//! so that neither a restart nor the runner's parking sends a second one. The hold line is what makes a hold survive a
//! restart: it is written with fsync (file and directory), unlike the rest.
//! The file is otherwise advisory: written by the queue runner to a temporary name and renamed (a
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

/// First word of the hold line.
pub const HOLD_TAG: &str = "hold";
/// First word of the delay-DSN line.
pub const DELAY_DSN_TAG: &str = "delay-dsn";

/// Everything a state file holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateFile {
    /// Per recipient that was ever deferred, ascending by index.
    pub rcpts: Vec<RcptState>,
    /// Held by the operator since (Unix ms): the runner does not try the message until
    /// it is released. `None` = not held.
    pub held_since_unix_ms: Option<u64>,
    /// When its delay DSN was sent (Unix ms): it is never sent again. `None` = not yet.
    pub delay_dsn_unix_ms: Option<u64>,
}

impl StateFile {
    /// Nothing to keep: no deferred recipient, no hold.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rcpts.is_empty()
            && self.held_since_unix_ms.is_none()
            && self.delay_dsn_unix_ms.is_none()
    }
}

/// Encode a whole state file (pure): recipient lines, then the hold line if held, then
/// the delay-DSN line if one was sent.
#[must_use]
pub fn encode_file(f: &StateFile) -> String {
    let mut out = encode(&f.rcpts);
    if let Some(since) = f.held_since_unix_ms {
        out.push_str(&format!("{HOLD_TAG} {since}\n"));
    }
    if let Some(sent) = f.delay_dsn_unix_ms {
        out.push_str(&format!("{DELAY_DSN_TAG} {sent}\n"));
    }
    out
}

/// The number after `tag` on the first line that starts with it.
fn tagged(text: &str, tag: &str) -> Option<u64> {
    text.lines().find_map(|line| line.strip_prefix(tag)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Decode a whole state file (pure); malformed lines are skipped.
#[must_use]
pub fn decode_file(text: &str) -> StateFile {
    StateFile {
        rcpts: decode(text),
        held_since_unix_ms: tagged(text, HOLD_TAG),
        delay_dsn_unix_ms: tagged(text, DELAY_DSN_TAG),
    }
}

/// Read the whole state file of `id`; empty when there is none.
#[must_use]
pub fn read_file(queue_dir: &Path, id: QueueId) -> StateFile {
    fs::read_to_string(state_path(queue_dir, id)).map(|t| decode_file(&t)).unwrap_or_default()
}

/// Write the whole state file of `id` durably (fsync of the file before the rename and of
/// the directory after it): used for the operator's hold and release, which must survive
/// a crash. An empty `f` removes the file.
pub fn write_file_durable(queue_dir: &Path, id: QueueId, f: &StateFile) -> io::Result<()> {
    use std::io::Write as _;
    let dir = queue_dir.join(STATE_DIR);
    if f.is_empty() {
        return match fs::remove_file(state_path(queue_dir, id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => fs::File::open(&dir).and_then(|d| d.sync_all()).or(Ok(())),
        };
    }
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    file.write_all(encode_file(f).as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, state_path(queue_dir, id))?;
    fs::File::open(&dir)?.sync_all()
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
pub fn write_to(queue_dir: &Path, id: QueueId, f: &StateFile) -> io::Result<()> {
    let dir = queue_dir.join(STATE_DIR);
    fs::create_dir_all(&dir)?;
    let tmp = dir.join(format!(".{id}.tmp"));
    fs::write(&tmp, encode_file(f))?;
    fs::rename(&tmp, state_path(queue_dir, id))
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

    #[test]
    fn hold_line() {
        let rcpt =
            RcptState { index: 1, attempts: 2, next_retry_unix_ms: 3, last_error: "e".into() };
        // (file, its text)
        let cases: Vec<(StateFile, &str)> = vec![
            (StateFile::default(), ""),
            (StateFile { held_since_unix_ms: Some(42), ..StateFile::default() }, "hold 42\n"),
            (
                StateFile {
                    rcpts: vec![rcpt.clone()],
                    held_since_unix_ms: Some(7),
                    delay_dsn_unix_ms: None,
                },
                "1 2 3 e\nhold 7\n",
            ),
            (StateFile { rcpts: vec![rcpt.clone()], ..StateFile::default() }, "1 2 3 e\n"),
            (
                StateFile {
                    rcpts: vec![rcpt.clone()],
                    delay_dsn_unix_ms: Some(5),
                    ..StateFile::default()
                },
                "1 2 3 e\ndelay-dsn 5\n",
            ),
            (
                StateFile {
                    rcpts: vec![rcpt.clone()],
                    held_since_unix_ms: Some(7),
                    delay_dsn_unix_ms: Some(5),
                },
                "1 2 3 e\nhold 7\ndelay-dsn 5\n",
            ),
        ];
        for (f, text) in cases {
            assert_eq!(encode_file(&f), text);
            assert_eq!(decode_file(text), f, "{text:?}");
            // Readers of the older format see the recipients and skip the tagged lines.
            assert_eq!(decode(text), f.rcpts, "{text:?}");
        }
        // A forged hold in an error text stays in the error text.
        let evil = RcptState { last_error: "x\nhold 1".into(), ..RcptState::default() };
        let f = StateFile { rcpts: vec![evil], ..StateFile::default() };
        assert_eq!(decode_file(&encode_file(&f)).held_since_unix_ms, None);
        let evil = RcptState { last_error: "x\ndelay-dsn 1".into(), ..RcptState::default() };
        let f = StateFile { rcpts: vec![evil], ..StateFile::default() };
        assert_eq!(decode_file(&encode_file(&f)).delay_dsn_unix_ms, None);
    }

    #[test]
    fn durable_write_and_remove() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let id = QueueId(0x3_0000_0041);
        let f = StateFile { held_since_unix_ms: Some(9), ..StateFile::default() };
        write_file_durable(tmp.path(), id, &f).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(read_file(tmp.path(), id), f);
        write_file_durable(tmp.path(), id, &StateFile::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(!state_path(tmp.path(), id).exists());
        // Removing what is not there is fine.
        write_file_durable(tmp.path(), id, &StateFile::default()).unwrap_or_else(|e| panic!("{e}"));
    }
}
