//! Local files in the Mailroot folder: `Drop/` delivery (`drop`) and `Badmail/` (`badmail`).
//!
//! WHAT: both write whole files with one rule, so that no reader (SharePoint, CDO, scripts,
//! an operator's `ls`) ever sees a partial file: write to a dot-prefixed temporary name in
//! the *same* directory, `fdatasync` it, `rename`/`link` it to its final name, then `fsync`
//! the directory so the name itself is durable. Only then does the caller cross the
//! recipient off in the spool, so a crash at any point means a duplicate file at worst,
//! never a missing one.
//!
//! TRUST: the envelope addresses were validated when the message was received (SMTP path
//! grammar or the Pickup parser); they are still checked here for line breaks, because one
//! would let a sender forge `x-receiver:` lines in the file. Message bytes are copied as
//! they are and never interpreted.
//!
//! STANDARDS: none (the IIS `Drop`/`Badmail` file conventions; see README).

pub mod badmail;
pub mod drop;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Prefix of temporary files in `Drop/` and `Badmail/`; readers skip dot-files.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Errors of local delivery and badmail.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LocalError {
    /// A file system operation failed (full disk, permissions, missing directory...).
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        /// What we tried: "create", "write", "sync", "rename", ...
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// An envelope address contains a line break or NUL and cannot be written on an
    /// `x-sender:`/`x-receiver:` line (it would forge further lines).
    #[error("address {0:?} cannot be written on an x-sender/x-receiver line")]
    BadAddress(String),
    /// `deliver_to_drop` was called without a recipient (a caller bug).
    #[error("no local recipient")]
    NoRecipients,
}

impl LocalError {
    /// True when the file system is full (or over quota): a temporary failure (defer the
    /// recipient, 4.3.1), not a reason to bounce.
    #[must_use]
    pub fn is_no_space(&self) -> bool {
        match self {
            LocalError::Io { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
            }
            _ => false,
        }
    }
}

/// Shorthand for an [`LocalError::Io`].
fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> LocalError + 'a {
    move |source| LocalError::Io { op, path: path.to_path_buf(), source }
}

/// Append `x-sender: <reverse_path>` and one `x-receiver: <rcpt>` line per recipient (IIS
/// format: no angle brackets, lower-case names, CRLF; the null sender is an empty value).
pub fn write_envelope_lines(
    reverse_path: &str,
    recipients: &[&str],
    out: &mut Vec<u8>,
) -> Result<(), LocalError> {
    for a in std::iter::once(&reverse_path).chain(recipients) {
        if a.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(LocalError::BadAddress((*a).to_owned()));
        }
    }
    out.extend_from_slice(b"x-sender: ");
    out.extend_from_slice(reverse_path.as_bytes());
    out.extend_from_slice(b"\r\n");
    for r in recipients {
        out.extend_from_slice(b"x-receiver: ");
        out.extend_from_slice(r.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    Ok(())
}

/// Create `dir` if it does not exist yet; a new directory's entry is made durable by
/// syncing its parent.
fn ensure_dir(dir: &Path) -> Result<(), LocalError> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).map_err(io_err("create directory", dir))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent)?;
    }
    Ok(())
}

/// `fsync` a directory (makes renames and new names in it durable).
fn sync_dir(dir: &Path) -> Result<(), LocalError> {
    let d = File::open(dir).map_err(io_err("open directory", dir))?;
    d.sync_all().map_err(io_err("sync directory", dir))
}

/// Write `parts` (concatenated) to `dir/.tmp-<name>` and `fdatasync` it. The temporary
/// file is truncated first, so a leftover from a crash is simply overwritten.
fn write_temp(dir: &Path, name: &str, parts: &[&[u8]]) -> Result<PathBuf, LocalError> {
    let tmp = dir.join(format!("{TEMP_PREFIX}{name}"));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        for p in parts {
            f.write_all(p).map_err(io_err("write", &tmp))?;
        }
        // fdatasync covers the size too (needed to read the data back).
        f.sync_data().map_err(io_err("sync", &tmp))
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Write `parts` to `dir/<name>` atomically, replacing any file of that name: temporary
/// file, `fdatasync`, `rename`, directory `fsync`. Returns the final path.
pub(crate) fn write_replacing(
    dir: &Path,
    name: &str,
    parts: &[&[u8]],
) -> Result<PathBuf, LocalError> {
    ensure_dir(dir)?;
    let tmp = write_temp(dir, name, parts)?;
    let path = dir.join(name);
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(LocalError::Io { op: "rename", path, source: e });
    }
    sync_dir(dir)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_lines() {
        // (sender, recipients, expected bytes or None for BadAddress)
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            (
                "a@b.example",
                &["c@d.example"],
                Some("x-sender: a@b.example\r\nx-receiver: c@d.example\r\n"),
            ),
            (
                "",
                &["c@d.example", "e@f.example"],
                Some("x-sender: \r\nx-receiver: c@d.example\r\nx-receiver: e@f.example\r\n"),
            ),
            ("a@b\r\nx-receiver: evil@x", &["c@d"], None),
            ("a@b", &["c@d\nx"], None),
            ("a@b", &["c\0@d"], None),
        ];
        for (sender, rcpts, want) in cases {
            let mut out = Vec::new();
            let got = write_envelope_lines(sender, rcpts, &mut out);
            match want {
                Some(w) => {
                    assert!(got.is_ok(), "{sender:?}");
                    assert_eq!(String::from_utf8_lossy(&out), *w);
                }
                None => assert!(matches!(got, Err(LocalError::BadAddress(_))), "{sender:?}"),
            }
        }
    }

    #[test]
    fn replacing_write_is_atomic_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("new");
        let p = write_replacing(&sub, "f.eml", &[b"one", b"two"]).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"onetwo");
        // A stale temporary file from a crash is overwritten, not appended to.
        fs::write(sub.join(".tmp-f.eml"), b"garbage garbage garbage").unwrap();
        let p = write_replacing(&sub, "f.eml", &[b"3"]).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"3");
        let names: Vec<_> = fs::read_dir(&sub).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("f.eml")]);
    }

    #[test]
    fn unwritable_dir_is_an_error_and_not_no_space() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain-file");
        fs::write(&file, b"x").unwrap();
        // A path under a regular file can never be a directory.
        let e = write_replacing(&file.join("sub"), "f", &[b"x"]).unwrap_err();
        assert!(matches!(e, LocalError::Io { .. }), "{e}");
        assert!(!e.is_no_space());
    }
}
