//! `Badmail/`: what can be neither delivered nor bounced, kept with the reason beside it.
//!
//! WHAT: for one message, a pair of files with the same stem (the queue id, or the name of
//! the Pickup file that could not be parsed):
//!
//! * `<stem>.BAD`: the message, re-sendable by copying it into `Pickup/`. When the message
//!   had an envelope (a queued message: an NDR that failed, a null-sender message that
//!   could not be delivered), the file starts with `x-sender:` / `x-receiver:` lines (the
//!   Drop format, see `local::drop`), so Pickup sends it to the same recipients again. A
//!   Pickup file that could not be parsed is kept exactly as it was.
//! * `<stem>.BDR`: the reason, as CRLF text lines:
//!
//! ```text
//! Date: Sat, 28 Nov 2026 15:49:40 +0000
//! Source: 0000000300000041
//! Reason: 550 5.1.1 <a@b.example>: user unknown
//! Sender: <>
//! Recipient: postmaster@b.example
//! ```
//!
//! (`Sender`/`Recipient` only when there was an envelope; `Sender: <>` is the null sender.)
//!
//! Both files are written under temporary names, synced, and then *linked* to their final
//! names, which never replaces an existing file: if `<stem>.BAD` or `<stem>.BDR` exists
//! already, the stem gets a `-1`, `-2`, ... suffix. Never loses anything: on any error the
//! caller is told and keeps the message (in the spool, or in `Pickup/`) and tries again.
//!
//! TRUST: the stem may come from a Pickup file name (anyone who can write `Pickup/`): it is
//! reduced to `[A-Za-z0-9._-]` without a leading dot, so it cannot name another directory.
//! The reason may quote peer text: control characters are replaced by `?`, so it stays one
//! line.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{LocalError, ensure_dir, sync_dir, write_envelope_lines, write_temp};
use crate::smtp::date::rfc5322_utc;

/// How many `-N` suffixes are tried before giving up on a stem.
pub const MAX_BADMAIL_SUFFIX: u32 = 10_000;
/// Longest stem kept from a file name (bytes).
pub const MAX_STEM_BYTES: usize = 128;

/// The envelope of a queued message, for the `x-sender`/`x-receiver` lines and the `.BDR`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadmailEnvelope<'a> {
    /// Reverse path without angle brackets; empty = null sender.
    pub reverse_path: &'a str,
    /// The recipients the message was still owed to.
    pub recipients: &'a [&'a str],
}

/// Where a badmail pair was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadmailFiles {
    /// `<stem>.BAD`: the message.
    pub bad: PathBuf,
    /// `<stem>.BDR`: the reason.
    pub bdr: PathBuf,
}

/// A safe file stem for `name`: bytes outside `[A-Za-z0-9._-]` become `_`, leading dots are
/// dropped, at most [`MAX_STEM_BYTES`]; `"badmail"` if nothing is left.
#[must_use]
pub fn badmail_stem(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .skip_while(|c| *c == '.')
        .take(MAX_STEM_BYTES)
        .collect();
    if s.is_empty() { "badmail".to_owned() } else { s }
}

/// Replace control characters (CR, LF, TAB, ...) by `?` so `text` stays on one line.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { '?' } else { c }).collect()
}

/// The `.BDR` text (see the module documentation).
#[must_use]
pub fn bdr_text(
    source: &str,
    envelope: Option<&BadmailEnvelope<'_>>,
    reason: &str,
    now_unix_secs: i64,
) -> String {
    let mut s = format!(
        "Date: {}\r\nSource: {}\r\nReason: {}\r\n",
        rfc5322_utc(now_unix_secs),
        one_line(source),
        one_line(reason)
    );
    if let Some(env) = envelope {
        let rp = if env.reverse_path.is_empty() { "<>" } else { env.reverse_path };
        s.push_str(&format!("Sender: {}\r\n", one_line(rp)));
        for r in env.recipients {
            s.push_str(&format!("Recipient: {}\r\n", one_line(r)));
        }
    }
    s
}

/// Write `message` and `reason` to `Badmail/` as `<stem>.BAD` + `<stem>.BDR` (stem from
/// `name`, see [`badmail_stem`]; `source` in the `.BDR` is `name` as given). Blocks until
/// both files and their names are durable. `now_unix_secs` dates the `.BDR`.
pub fn to_badmail(
    badmail_dir: &Path,
    name: &str,
    envelope: Option<&BadmailEnvelope<'_>>,
    message: &[u8],
    reason: &str,
    now_unix_secs: i64,
) -> Result<BadmailFiles, LocalError> {
    let mut head = Vec::new();
    if let Some(env) = envelope {
        write_envelope_lines(env.reverse_path, env.recipients, &mut head)?;
    }
    let stem = badmail_stem(name);
    ensure_dir(badmail_dir)?;
    let tmp_bad = write_temp(badmail_dir, &format!("{stem}.BAD"), &[&head, message])?;
    let bdr = bdr_text(name, envelope, reason, now_unix_secs);
    finish_pair(badmail_dir, &stem, tmp_bad, &bdr)
}

/// Like [`to_badmail`] without an envelope, for a file too large to read into memory:
/// `file` is copied (streamed by the kernel, not loaded) to `<stem>.BAD`. The caller
/// removes the original once this returns `Ok`.
pub fn file_to_badmail(
    badmail_dir: &Path,
    file: &Path,
    name: &str,
    reason: &str,
    now_unix_secs: i64,
) -> Result<BadmailFiles, LocalError> {
    let stem = badmail_stem(name);
    ensure_dir(badmail_dir)?;
    let tmp_bad = badmail_dir.join(format!("{}{stem}.BAD", super::TEMP_PREFIX));
    let copied =
        fs::copy(file, &tmp_bad).and_then(|_| fs::File::open(&tmp_bad)).and_then(|f| f.sync_data());
    if let Err(source) = copied {
        let _ = fs::remove_file(&tmp_bad);
        return Err(LocalError::Io { op: "copy to", path: tmp_bad, source });
    }
    finish_pair(badmail_dir, &stem, tmp_bad, &bdr_text(name, None, reason, now_unix_secs))
}

/// Write the `.BDR` beside the synced temporary `.BAD`, link both to a free stem, remove
/// the temporary names, sync the directory.
fn finish_pair(
    badmail_dir: &Path,
    stem: &str,
    tmp_bad: PathBuf,
    bdr: &str,
) -> Result<BadmailFiles, LocalError> {
    let tmp_bdr = match write_temp(badmail_dir, &format!("{stem}.BDR"), &[bdr.as_bytes()]) {
        Ok(t) => t,
        Err(e) => {
            let _ = fs::remove_file(&tmp_bad);
            return Err(e);
        }
    };
    let result = link_pair(badmail_dir, stem, &tmp_bad, &tmp_bdr);
    // The temporary names go in every case (after success they are second links).
    let _ = fs::remove_file(&tmp_bad);
    let _ = fs::remove_file(&tmp_bdr);
    let files = result?;
    sync_dir(badmail_dir)?;
    Ok(files)
}

/// Link the temporary files to the first free `<stem>[-N].BAD/.BDR` pair.
fn link_pair(
    dir: &Path,
    stem: &str,
    tmp_bad: &Path,
    tmp_bdr: &Path,
) -> Result<BadmailFiles, LocalError> {
    for n in 0..=MAX_BADMAIL_SUFFIX {
        let s = if n == 0 { stem.to_owned() } else { format!("{stem}-{n}") };
        let bad = dir.join(format!("{s}.BAD"));
        let bdr = dir.join(format!("{s}.BDR"));
        match fs::hard_link(tmp_bad, &bad) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(source) => return Err(LocalError::Io { op: "link", path: bad, source }),
        }
        match fs::hard_link(tmp_bdr, &bdr) {
            Ok(()) => return Ok(BadmailFiles { bad, bdr }),
            Err(e) => {
                // Take back our own .BAD link; a stray .BDR of that stem stays untouched.
                let _ = fs::remove_file(&bad);
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(LocalError::Io { op: "link", path: bdr, source: e });
                }
            }
        }
    }
    Err(LocalError::Io {
        op: "find a free name for",
        path: dir.join(format!("{stem}.BAD")),
        source: io::Error::from(io::ErrorKind::AlreadyExists),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_880_942; // Sat, 28 Nov 2026 15:49:02 +0000

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn stems() {
        let cases = [
            ("0000000300000041", "0000000300000041"),
            ("mail.eml", "mail.eml"),
            ("../../etc/passwd", "_.._etc_passwd"),
            (".hidden", "hidden"),
            ("...", "badmail"),
            ("", "badmail"),
            ("a b\r\nc", "a_b__c"),
            ("bücher", "b_cher"),
        ];
        for (name, want) in cases {
            assert_eq!(badmail_stem(name), want, "{name:?}");
        }
        assert_eq!(badmail_stem(&"x".repeat(500)).len(), MAX_STEM_BYTES);
    }

    #[test]
    fn pair_with_envelope_is_resendable() {
        let dir = tempfile::tempdir().unwrap();
        let env = BadmailEnvelope { reverse_path: "", recipients: &["a@b.example"] };
        let f = to_badmail(
            dir.path(),
            "0000000300000041",
            Some(&env),
            b"Subject: NDR\r\n\r\nbody",
            "550 5.1.1 user\r\nunknown",
            NOW,
        )
        .unwrap();
        assert_eq!(f.bad, dir.path().join("0000000300000041.BAD"));
        assert_eq!(
            fs::read(&f.bad).unwrap(),
            b"x-sender: \r\nx-receiver: a@b.example\r\nSubject: NDR\r\n\r\nbody"
        );
        assert_eq!(
            fs::read_to_string(&f.bdr).unwrap(),
            "Date: Sat, 28 Nov 2026 15:49:02 +0000\r\nSource: 0000000300000041\r\n\
             Reason: 550 5.1.1 user??unknown\r\nSender: <>\r\nRecipient: a@b.example\r\n"
        );
        assert_eq!(names(dir.path()), ["0000000300000041.BAD", "0000000300000041.BDR"]);
    }

    #[test]
    fn pair_without_envelope_keeps_the_file_as_is_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let bad_dir = dir.path().join("Badmail");
        let original = b"garbage\0\xff no header";
        let f1 = to_badmail(&bad_dir, "x.eml", None, original, "no recipients", NOW).unwrap();
        assert_eq!(fs::read(&f1.bad).unwrap(), original);
        assert_eq!(
            fs::read_to_string(&f1.bdr).unwrap(),
            "Date: Sat, 28 Nov 2026 15:49:02 +0000\r\nSource: x.eml\r\nReason: no recipients\r\n"
        );
        let f2 = to_badmail(&bad_dir, "x.eml", None, b"second", "again", NOW).unwrap();
        assert_eq!(f2.bad, bad_dir.join("x.eml-1.BAD"));
        // A stray .BDR without its .BAD also blocks a stem.
        fs::write(bad_dir.join("x.eml-2.BDR"), b"stray").unwrap();
        let f3 = to_badmail(&bad_dir, "x.eml", None, b"third", "again", NOW).unwrap();
        assert_eq!(f3.bad, bad_dir.join("x.eml-3.BAD"));
        assert_eq!(fs::read(&f1.bad).unwrap(), original);
        assert_eq!(fs::read(&f2.bad).unwrap(), b"second");
        assert_eq!(
            names(&bad_dir),
            [
                "x.eml-1.BAD",
                "x.eml-1.BDR",
                "x.eml-2.BDR",
                "x.eml-3.BAD",
                "x.eml-3.BDR",
                "x.eml.BAD",
                "x.eml.BDR"
            ]
        );
    }

    #[test]
    fn large_file_is_copied_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big.eml");
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&src, &big).unwrap();
        let bad_dir = dir.path().join("Badmail");
        let f = file_to_badmail(&bad_dir, &src, "big.eml", "too large", NOW).unwrap();
        assert_eq!(fs::read(&f.bad).unwrap(), big);
        assert!(fs::read_to_string(&f.bdr).unwrap().contains("Reason: too large\r\n"));
        assert_eq!(names(&bad_dir), ["big.eml.BAD", "big.eml.BDR"]);
        assert!(src.exists(), "the caller removes the original");
    }

    #[test]
    fn failure_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let e = to_badmail(&file.join("Badmail"), "n", None, b"m", "r", NOW).unwrap_err();
        assert!(matches!(e, LocalError::Io { .. }), "{e}");
    }
}
