//! Retention of closed log files: keep the newest N, delete the rest.
//!
//! WHAT: [`prune`] lists one folder, takes the files a caller's predicate recognises as its
//! closed (rotated) log files, and deletes all but the `keep` newest (by modification time,
//! then by name, shorter first: the writers' names differ only in a numeric suffix, so
//! `x.9` is older than `x.10` when two files share a timestamp). The event log (`eventlog`, `[event_log] keep`) and the protocol log
//! (`protolog`, `[protocol_log] keep`, per site folder) call it each time they close a file.
//!
//! TRUST: only files the predicate accepts are ever deleted; the predicates match names
//! the writers generate (`events.log.<date>[.<n>]`, `exYYMMDD[_N].log`), never the live
//! file. Other files in the folder, and sub-folders, are left alone.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// Delete the closed log files in `dir` (those whose file name `is_closed` accepts) beyond
/// the `keep` newest; `keep == 0` keeps every file. Returns how many were deleted. A file
/// that vanished meanwhile is not an error; the first other error ends the pass (the next
/// rotation tries again).
pub fn prune(dir: &Path, keep: usize, is_closed: impl Fn(&str) -> bool) -> io::Result<usize> {
    if keep == 0 {
        return Ok(0);
    }
    let mut files: Vec<(SystemTime, usize, String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else { continue };
        if !is_closed(&name) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        files.push((modified, name.len(), name, entry.path()));
    }
    if files.len() <= keep {
        return Ok(0);
    }
    files.sort_unstable();
    let excess = files.len() - keep;
    let mut deleted = 0;
    for (_, _, _, path) in files.into_iter().take(excess) {
        match fs::remove_file(&path) {
            Ok(()) => deleted += 1,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn touch(dir: &Path, name: &str, age_s: u64) {
        let p = dir.join(name);
        fs::write(&p, name).unwrap();
        let t = SystemTime::now() - Duration::from_secs(age_s);
        fs::File::options().write(true).open(&p).unwrap().set_modified(t).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn keeps_the_newest_closed_files_and_nothing_else_is_touched() {
        let d = tempfile::tempdir().unwrap();
        // Names sort the other way round from their ages: age decides.
        touch(d.path(), "log.a", 10);
        touch(d.path(), "log.b", 40);
        touch(d.path(), "log.c", 30);
        touch(d.path(), "log.d", 20);
        touch(d.path(), "log", 50); // the live file: not closed
        touch(d.path(), "other.txt", 60);
        fs::create_dir(d.path().join("log.dir")).unwrap();
        let closed = |n: &str| n.starts_with("log.");
        assert_eq!(prune(d.path(), 2, closed).unwrap(), 2);
        assert_eq!(names(d.path()), ["log", "log.a", "log.d", "log.dir", "other.txt"]);
        // Within the limit: nothing more goes.
        assert_eq!(prune(d.path(), 2, closed).unwrap(), 0);
        // 0 keeps everything.
        touch(d.path(), "log.e", 100);
        assert_eq!(prune(d.path(), 0, closed).unwrap(), 0);
        assert_eq!(names(d.path()).len(), 6);
    }

    #[test]
    fn a_missing_folder_is_an_error_not_a_panic() {
        let d = tempfile::tempdir().unwrap();
        assert!(prune(&d.path().join("gone"), 3, |_| true).is_err());
    }
}
