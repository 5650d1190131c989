//! The event log: one JSON object per line for every service event (start, stop, pause,
//! resume, reload, certificates, recovery, disk space, dropped log lines, queue actions),
//! written by one `event-log` thread to `<mailroot>/Logs/events.log` (`[event_log]`).
//!
//! # API (for every module that reports a service event)
//!
//! ```ignore
//! use crate::eventlog::{By, Event, EventLog};
//! let log: EventLog = ...;            // handed out by `relay` (cheap to clone: one Arc)
//! log.emit(Event::SitePause { site: "default".into(), by: By::AdminApi });
//! let last: Vec<String> = log.recent(50); // newest last, each a JSON line
//! ```
//!
//! * [`EventLog::emit`] never blocks and never fails: it stamps the wall-clock time, and
//!   `try_send`s on a bounded channel ([`EVENT_QUEUE_CAPACITY`]). If the queue is full the
//!   event is counted as dropped; the writer reports the count as a `log.events_dropped`
//!   event when it catches up.
//! * [`Event`] (in the pure `eventlog::event`) is the typed list of events and their JSON
//!   (unit-tested there). Add a variant there for a new kind of event.
//! * [`EventLog::recent`] returns the last [`RECENT_EVENTS`] lines kept in memory (what
//!   `GET /api/events` serves), also when the file is disabled.
//! * [`EventLog::disabled`] is a handle that drops everything (tests, tools).
//!
//! # File
//!
//! Appended with one `write` per event (events are rare; no buffering, so a crash loses
//! nothing written before it). Rotated before writing an event whose UTC date differs
//! from the file's, or that would grow it past `max_size`: the file is renamed
//! `events.log.YYYY-MM-DD` (then `.1`, `.2`, ... above the day's highest) and a new one
//! started; then the rotated files beyond the `keep` newest are deleted
//! (`retention::prune`; 0 keeps all).
//! A write error is logged once and the event kept in memory only.
//!
//! TRUST: events are built by our own code; every string is JSON-escaped, so a value
//! taken from outside (an error text quoting a file) cannot break a line.

pub mod event;

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

pub use event::{By, Event};

/// Events that may wait for the writer before new ones are dropped.
pub const EVENT_QUEUE_CAPACITY: usize = 1024;
/// Lines kept in memory for [`EventLog::recent`].
pub const RECENT_EVENTS: usize = 1000;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Where and how the writer writes.
#[derive(Clone, Debug)]
pub struct EventLogOptions {
    /// The file; `None` = keep events in memory only (`[event_log] enabled = false`).
    pub path: Option<PathBuf>,
    /// Rotate before the file would grow past this many bytes; 0 = daily only.
    pub max_size_bytes: u64,
    /// Rotated files kept (the newest, `retention::prune`); 0 = all.
    pub keep: usize,
}

/// What crosses to the writer thread.
enum Msg {
    /// An event and its time (Unix ms, taken by the emitter).
    Event(i64, Event),
    /// Write what is queued, then end.
    Stop,
}

/// State shared by every handle and the writer.
struct Shared {
    /// Events lost because the queue was full, not yet reported.
    dropped: AtomicU64,
    /// The newest [`RECENT_EVENTS`] lines, oldest first.
    recent: Mutex<VecDeque<String>>,
}

/// A handle to the event log. Cheap to clone; `emit` from any thread.
#[derive(Clone)]
pub struct EventLog {
    /// The writer's queue; `None` for a disabled log.
    tx: Option<Sender<Msg>>,
    /// Drop counter and recent lines.
    shared: Arc<Shared>,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog").field("enabled", &self.tx.is_some()).finish()
    }
}

/// The writer thread, to stop after the last event (`service.stop`).
#[derive(Debug)]
pub struct EventLogThread {
    /// A sender kept for the stop message.
    tx: Sender<Msg>,
    /// The `event-log` thread.
    thread: JoinHandle<()>,
}

impl EventLogThread {
    /// Write every queued event, then end the thread and wait for it.
    pub fn stop_and_join(self) {
        let _ = self.tx.send(Msg::Stop);
        let _ = self.thread.join();
    }
}

/// Start the `event-log` thread. Creates the file's folder; an error opening the file
/// is returned (the operator named a place we cannot write).
pub fn spawn(opts: EventLogOptions) -> io::Result<(EventLog, EventLogThread)> {
    let (tx, rx) = crossbeam_channel::bounded(EVENT_QUEUE_CAPACITY);
    let shared = Arc::new(Shared {
        dropped: AtomicU64::new(0),
        recent: Mutex::new(VecDeque::with_capacity(RECENT_EVENTS)),
    });
    let file = match &opts.path {
        Some(p) => Some(LogFile::open(p, opts.max_size_bytes, opts.keep, unix_ms_now())?),
        None => None,
    };
    let writer = Writer { rx, shared: Arc::clone(&shared), file, failed: false };
    let thread = std::thread::Builder::new().name("event-log".into()).spawn(move || {
        let mut writer = writer;
        writer.run();
    })?;
    Ok((EventLog { tx: Some(tx.clone()), shared }, EventLogThread { tx, thread }))
}

impl EventLog {
    /// A log that keeps nothing and writes nothing.
    #[must_use]
    pub fn disabled() -> EventLog {
        EventLog {
            tx: None,
            shared: Arc::new(Shared {
                dropped: AtomicU64::new(0),
                recent: Mutex::new(VecDeque::new()),
            }),
        }
    }

    /// Record `event` now. Never blocks: if the writer is behind by
    /// [`EVENT_QUEUE_CAPACITY`] events, this one is counted as dropped.
    pub fn emit(&self, event: Event) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(Msg::Event(unix_ms_now(), event)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {} // shutting down
        }
    }

    /// The newest `limit` events (at most [`RECENT_EVENTS`]) as JSON lines, oldest first.
    #[must_use]
    pub fn recent(&self, limit: usize) -> Vec<String> {
        let r = self.shared.recent.lock();
        r.iter().skip(r.len().saturating_sub(limit)).cloned().collect()
    }
}

/// Wall clock in Unix ms (the one clock read of this module, on the emitter's thread).
fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `event-log` thread's state.
struct Writer {
    /// Events in.
    rx: Receiver<Msg>,
    /// Drop counter and recent lines.
    shared: Arc<Shared>,
    /// The open file, if the log is written to disk.
    file: Option<LogFile>,
    /// A write failed and was reported; report the next success.
    failed: bool,
}

impl Writer {
    /// Write events until `Stop` or every handle is gone.
    fn run(&mut self) {
        while let Ok(msg) = self.rx.recv() {
            match msg {
                Msg::Event(ms, event) => {
                    self.report_drops(ms);
                    self.write(ms, &event);
                }
                Msg::Stop => {
                    // Whatever was queued before the stop still goes out.
                    while let Ok(Msg::Event(ms, event)) = self.rx.try_recv() {
                        self.write(ms, &event);
                    }
                    break;
                }
            }
        }
        let ms = unix_ms_now();
        self.report_drops(ms);
    }

    /// Emit `log.events_dropped` if events were lost since the last report.
    fn report_drops(&mut self, ms: i64) {
        let n = self.shared.dropped.swap(0, Ordering::Relaxed);
        if n > 0 {
            self.write(ms, &Event::EventsDropped { count: n });
        }
    }

    /// Serialise, remember and append one event.
    fn write(&mut self, ms: i64, event: &Event) {
        let line = event.to_json_line(ms);
        log::info!("event {line}");
        {
            let mut r = self.shared.recent.lock();
            if r.len() == RECENT_EVENTS {
                r.pop_front();
            }
            r.push_back(line.clone());
        }
        let Some(f) = &mut self.file else { return };
        match f.append(ms, &line) {
            Ok(()) if self.failed => {
                self.failed = false;
                log::warn!("event log {}: writing again", f.path.display());
            }
            Ok(()) => {}
            Err(e) if !self.failed => {
                self.failed = true;
                log::error!("event log {}: {e}; events are kept in memory only", f.path.display());
            }
            Err(_) => {}
        }
    }
}

/// The event log file with its rotation state.
struct LogFile {
    /// The live file's path.
    path: PathBuf,
    /// Rotate before growing past this; 0 = never by size.
    max_size_bytes: u64,
    /// The open file (append mode).
    file: File,
    /// Its size in bytes.
    size: u64,
    /// The UTC day (days since the epoch) its events belong to.
    day: i64,
    /// Rotated files kept; 0 = all.
    keep: usize,
}

impl LogFile {
    /// Open (append) or create `path`, creating its folder.
    fn open(path: &Path, max_size_bytes: u64, keep: usize, now_ms: i64) -> io::Result<LogFile> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        let modified_ms = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now_ms, |d| i64::try_from(d.as_millis()).unwrap_or(now_ms));
        // An existing file belongs to the day it was last written.
        let day = if meta.len() == 0 { now_ms } else { modified_ms }.div_euclid(DAY_MS);
        Ok(LogFile { path: path.to_owned(), max_size_bytes, file, size: meta.len(), day, keep })
    }

    /// Append `line` + `\n`, rotating first if the day changed or the size would pass
    /// the limit.
    fn append(&mut self, ms: i64, line: &str) -> io::Result<()> {
        let len = line.len() as u64 + 1;
        let day = ms.div_euclid(DAY_MS);
        let too_big =
            self.max_size_bytes > 0 && self.size > 0 && self.size + len > self.max_size_bytes;
        if (day != self.day && self.size > 0) || too_big {
            self.rotate()?;
        }
        self.day = day;
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line.as_bytes());
        buf.push(b'\n');
        self.file.write_all(&buf)?;
        self.size += len;
        Ok(())
    }

    /// Rename the file to its dated name and start a new one.
    fn rotate(&mut self) -> io::Result<()> {
        let date = crate::smtp::date::rfc3339_utc_ms(self.day * DAY_MS);
        let date = date.get(..10).unwrap_or("unknown");
        let target = free_name(&self.path, date);
        std::fs::rename(&self.path, &target)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        log::info!("event log rotated to {}", target.display());
        self.prune();
        Ok(())
    }

    /// Delete rotated files (`<name>.<date>[.<n>]`) beyond the `keep` newest; a failure is
    /// logged and retried at the next rotation.
    fn prune(&self) {
        let Some(name) = self.path.file_name() else { return };
        let prefix = format!("{}.", name.to_string_lossy());
        match crate::retention::prune(folder_of(&self.path), self.keep, |n| n.starts_with(&prefix))
        {
            Ok(0) => {}
            Ok(n) => {
                log::info!("event log: deleted {n} rotated file(s) beyond keep = {}", self.keep)
            }
            Err(e) => log::warn!("event log: cannot delete old rotated files: {e}"),
        }
    }
}

/// `<path>.<date>`, or `<path>.<date>.<n>` with `n` above every one taken, so that the
/// names of one day's files grow with their age even after older ones were deleted
/// (`retention::prune` orders files that share a timestamp by name).
fn free_name(path: &Path, date: &str) -> PathBuf {
    let base = format!("{}.{date}", path.display());
    let day = format!("{}.{date}", path.file_name().map_or("".into(), |n| n.to_string_lossy()));
    // 0 for `<name>.<date>` itself, n for `<name>.<date>.<n>`.
    let highest = std::fs::read_dir(folder_of(path))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|name| match name.strip_prefix(&day)? {
            "" => Some(0),
            rest => rest.strip_prefix('.')?.parse::<u64>().ok(),
        })
        .max();
    match highest {
        None => PathBuf::from(base),
        Some(n) => PathBuf::from(format!("{base}.{}", n + 1)),
    }
}

/// The folder a log file `path` lives in (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_lines(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn writes_one_line_per_event_and_keeps_recent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Logs").join("events.log");
        let (log, thread) =
            spawn(EventLogOptions { path: Some(path.clone()), max_size_bytes: 0, keep: 0 })
                .unwrap();
        for site in ["a", "b", "c"] {
            log.clone().emit(Event::SitePause { site: site.into(), by: By::AdminApi });
        }
        thread.stop_and_join();
        let lines = read_lines(&path);
        let sites: Vec<&str> = lines.iter().map(|v| v["site"].as_str().unwrap()).collect();
        assert_eq!(sites, ["a", "b", "c"]);
        assert!(lines.iter().all(|v| v["event"] == "site.pause" && v["by"] == "admin-api"));
        let recent = log.recent(2);
        assert_eq!(recent.len(), 2);
        assert!(recent[0].contains("\"b\"") && recent[1].contains("\"c\""), "{recent:?}");
        log.emit(Event::SiteStop { site: "late".into() }); // after stop: ignored, no panic
    }

    #[test]
    fn rotation_keeps_only_the_newest_rotated_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let day0 = 20_000 * DAY_MS;
        let mut f = LogFile::open(&path, 120, 2, day0).unwrap();
        let line = "x".repeat(50);
        for _ in 0..12 {
            f.append(day0, &line).unwrap(); // two lines a file: five rotations
        }
        std::fs::write(dir.path().join("unrelated.log"), "kept").unwrap();
        f.append(day0, &line).unwrap();
        f.append(day0, &line).unwrap(); // a sixth rotation prunes again
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        let date = &crate::smtp::date::rfc3339_utc_ms(day0)[..10];
        assert_eq!(
            names,
            [
                "events.log".to_owned(),
                format!("events.log.{date}.4"),
                format!("events.log.{date}.5"),
                "unrelated.log".to_owned()
            ]
        );
    }

    #[test]
    fn rotates_by_size_and_by_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.log");
        let day0 = 1_796_490_000_123; // 2026-12-05
        let mut f = LogFile::open(&path, 120, 0, day0).unwrap();
        let line = "x".repeat(50);
        f.append(day0, &line).unwrap();
        f.append(day0, &line).unwrap(); // 102 bytes: fits
        f.append(day0, &line).unwrap(); // would be 153: rotated first
        f.append(day0 + DAY_MS, &line).unwrap(); // next day: rotated again
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["events.log", "events.log.2026-12-05", "events.log.2026-12-05.1"]);
        let size = |n: &str| std::fs::metadata(dir.path().join(n)).unwrap().len();
        assert_eq!(size("events.log.2026-12-05"), 102);
        assert_eq!(size("events.log.2026-12-05.1"), 51);
        assert_eq!(size("events.log"), 51);
    }

    #[test]
    fn full_queue_counts_drops_and_reports_them() {
        // A writer that is not running yet: fill the queue, overflow it, then run.
        let (tx, rx) = crossbeam_channel::bounded(2);
        let shared =
            Arc::new(Shared { dropped: AtomicU64::new(0), recent: Mutex::new(VecDeque::new()) });
        let log = EventLog { tx: Some(tx.clone()), shared: Arc::clone(&shared) };
        for _ in 0..5 {
            log.emit(Event::SiteStop { site: "s".into() });
        }
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 3);
        drop((log, tx)); // the writer ends when the queue is empty and every sender gone
        let mut w = Writer { rx, shared: Arc::clone(&shared), file: None, failed: false };
        w.run();
        let recent: Vec<String> = shared.recent.lock().iter().cloned().collect();
        assert_eq!(recent.len(), 3, "{recent:?}");
        assert!(recent[0].contains("log.events_dropped") && recent[0].contains("\"count\":3"));
    }
}
