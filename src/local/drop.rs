//! Local delivery: one file per message in `Drop/` (or a per-domain drop folder), in the
//! format IIS writes and SharePoint, CDO and scripts read.
//!
//! WHAT: `Drop/<queue id>.eml` (or `<queue id>-<n>.eml`, see [`drop_file_name`]) =
//!
//! ```text
//! x-sender: alice@example.com            (empty value for the null reverse path)
//! x-receiver: bob@local.example          (one line per local recipient, RCPT order)
//! <the message exactly as stored in the spool, byte for byte>
//! ```
//!
//! Lines end with CRLF. No blank line is added after the `x-receiver:` lines and nothing is
//! added at the end (the IIS release notes list an extra blank line as a bug): the message,
//! which starts with our `Received:` header, follows at once. A message without a final
//! CRLF is written without one.
//!
//! The file appears atomically (temporary `.tmp-<id>.eml`, `fdatasync`, rename, directory
//! `fsync`; see `local`). Delivering the same message again (a retry after a crash between
//! the rename and the spool cross-off) replaces the file under the same name: the reader
//! sees one whole copy, never a partial one.
//!
//! TRUST: see `local`: addresses with line breaks are refused; content is not interpreted.
//! Which folder a recipient's mail goes to is a routing decision made by the caller.

use std::path::{Path, PathBuf};

use super::{LocalError, write_envelope_lines, write_replacing};
use crate::spool::QueueId;

/// Extension of Drop files.
pub const DROP_EXTENSION: &str = "eml";

/// The file name a delivery gets in a drop folder: `<queue id>.eml` for the one holding
/// the message's first recipient (index 0), else `<queue id>-<n>.eml` with `n` the index of
/// its own first recipient. A message whose local recipients are in several domains is
/// delivered once per domain, and each file needs a name of its own (one name for all
/// made the second delivery replace the first file: its recipients' copy was lost). The
/// name depends only on which recipients a delivery holds, so a retry replaces its own
/// file and nothing else.
#[must_use]
pub fn drop_file_name(id: QueueId, first_rcpt: u32) -> String {
    if first_rcpt == 0 {
        format!("{id}.{DROP_EXTENSION}")
    } else {
        format!("{id}-{first_rcpt}.{DROP_EXTENSION}")
    }
}

/// Write message `id` into `drop_dir` for `local_rcpts` (the recipients routed to this
/// folder, the first of them at index `first_rcpt` of the envelope: it names the file)
/// and return the file's path. Blocks on `fdatasync`/`fsync`; returns only once
/// the file is durable under its final name. On error nothing is left under the final name
/// that was not there before (a replaced earlier copy stays whole).
pub fn deliver_to_drop(
    drop_dir: &Path,
    id: QueueId,
    first_rcpt: u32,
    reverse_path: &str,
    local_rcpts: &[&str],
    message: &[u8],
) -> Result<PathBuf, LocalError> {
    if local_rcpts.is_empty() {
        return Err(LocalError::NoRecipients);
    }
    let mut head = Vec::with_capacity(64 + 48 * local_rcpts.len());
    write_envelope_lines(reverse_path, local_rcpts, &mut head)?;
    // The message is borrowed (it may be a large read of the spool); no copy is made here.
    write_replacing(drop_dir, &drop_file_name(id, first_rcpt), &[&head, message])
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const ID: QueueId = QueueId(0x0000_0003_0000_0041);

    /// (sender, recipients, message, expected file)
    type Case = (&'static str, &'static [&'static str], &'static [u8], &'static [u8]);

    #[test]
    fn file_is_byte_exact() {
        let cases: &[Case] = &[
            (
                "alice@example.com",
                &["bob@local.example"],
                b"Received: x\r\nSubject: hi\r\n\r\nbody\r\n",
                b"x-sender: alice@example.com\r\nx-receiver: bob@local.example\r\n\
                  Received: x\r\nSubject: hi\r\n\r\nbody\r\n",
            ),
            (
                "",
                &["a@l.example", "b@l.example"],
                b"Subject: bounce\r\n\r\nno final line break",
                b"x-sender: \r\nx-receiver: a@l.example\r\nx-receiver: b@l.example\r\n\
                  Subject: bounce\r\n\r\nno final line break",
            ),
            ("a@b", &["c@d"], b"", b"x-sender: a@b\r\nx-receiver: c@d\r\n"),
            (
                "a@b",
                &["c@d"],
                b"X: 1\r\n\r\n.\r\n..\r\n\r\n\r\n\x80\xff\0bin",
                b"x-sender: a@b\r\nx-receiver: c@d\r\nX: 1\r\n\r\n.\r\n..\r\n\r\n\r\n\x80\xff\0bin",
            ),
        ];
        for (sender, rcpts, message, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let path = deliver_to_drop(dir.path(), ID, 0, sender, rcpts, message).unwrap();
            assert_eq!(path, dir.path().join("0000000300000041.eml"));
            assert_eq!(fs::read(&path).unwrap(), *want, "{sender:?} {rcpts:?}");
            let names: Vec<_> =
                fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
            assert_eq!(names.len(), 1, "only the final file remains: {names:?}");
        }
    }

    #[test]
    fn retry_replaces_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let p1 = deliver_to_drop(dir.path(), ID, 0, "a@b", &["c@d"], b"first\r\n").unwrap();
        let p2 = deliver_to_drop(dir.path(), ID, 0, "a@b", &["c@d"], b"again\r\n").unwrap();
        assert_eq!(p1, p2);
        assert_eq!(fs::read(&p2).unwrap(), b"x-sender: a@b\r\nx-receiver: c@d\r\nagain\r\n");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn deliveries_of_one_message_to_two_domains_keep_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let a = deliver_to_drop(dir.path(), ID, 0, "s@x", &["a@one.example"], b"m\r\n").unwrap();
        let b = deliver_to_drop(dir.path(), ID, 2, "s@x", &["b@two.example"], b"m\r\n").unwrap();
        assert_eq!(a, dir.path().join("0000000300000041.eml"));
        assert_eq!(b, dir.path().join("0000000300000041-2.eml"));
        assert_eq!(fs::read(&a).unwrap(), b"x-sender: s@x\r\nx-receiver: a@one.example\r\nm\r\n");
        assert_eq!(fs::read(&b).unwrap(), b"x-sender: s@x\r\nx-receiver: b@two.example\r\nm\r\n");
    }

    #[test]
    fn refusals_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = deliver_to_drop(dir.path(), ID, 0, "a@b", &[], b"x").unwrap_err();
        assert!(matches!(e, LocalError::NoRecipients));
        let e = deliver_to_drop(dir.path(), ID, 0, "a@b\r\nx-receiver: z@z", &["c@d"], b"x");
        assert!(matches!(e, Err(LocalError::BadAddress(_))));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn missing_drop_dir_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let drop_dir = dir.path().join("Drop").join("local.example");
        let p = deliver_to_drop(&drop_dir, ID, 0, "a@b", &["c@d"], b"m").unwrap();
        assert!(p.starts_with(&drop_dir));
    }
}
