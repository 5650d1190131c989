//! The `protocol-log` thread: owns every site's protocol-log file, writes the batches the
//! event loops hand over (`sink`), rotates the files and flushes them.
//!
//! Files: `<site folder>/exYYMMDD.log` (UTC date), created with the folder if missing and
//! appended to if present (after a restart a new header block is written first, as IIS
//! did). Rotation (`[protocol_log] rotate`): `daily` starts a new file at midnight UTC;
//! `size` starts `exYYMMDD_1.log`, `_2`, ... when the next batch would take the file past
//! `max_size` (a file holds at least one batch, so it may pass `max_size` by at most one
//! pass's lines); `both` does both. Every new file starts with the header block.
//!
//! Durability: lines go through a 64 KiB `BufWriter` per site, flushed at least once a
//! second (`FLUSH_INTERVAL`) and when the thread ends (every sender gone: the workers
//! exited). No fsync: a log line is worth less than a disk flush on the SMTP path's
//! machine; a crash loses at most the last second of lines.
//!
//! Errors: a file that cannot be opened or written is reported (error log, at most once
//! per `ERROR_LOG_INTERVAL`), its batch lost, and opening is tried again with the next
//! batch. The SMTP path never sees it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write as _};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use super::format::{day_number, file_name, header, is_file_name};
use super::sink::{DropWarn, LogBatch, SinkParts, flags};
use crate::config::{Config, Rotate};
use crate::eventlog::EventLog;
use crate::stats::{Counter, CounterBlock, Registry};

/// Flush the files at least this often.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// How often the thread takes the batches waiting (the channel holds `CHANNEL_BATCHES`
/// of them meanwhile: 1024 per 20 ms is 51,200 event-loop passes a second).
pub const DRAIN_INTERVAL: Duration = Duration::from_millis(20);
/// Batches the channel holds before the event loops drop lines (one batch = one site's
/// lines of one event-loop pass).
pub const CHANNEL_BATCHES: usize = 1024;
/// Per-site write buffer.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// At most one file error logged per this interval.
const ERROR_LOG_INTERVAL: Duration = Duration::from_secs(60);
/// Highest size-rotation sequence number tried for one day.
const MAX_SEQ: u32 = 100_000;

/// Where one site's log goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteLogOptions {
    /// The site writes a protocol log.
    pub enabled: bool,
    /// Its folder.
    pub dir: PathBuf,
    /// Its name (for the counters).
    pub name: String,
}

/// What the log thread needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtoLogOptions {
    /// Per site (index = site).
    pub sites: Vec<SiteLogOptions>,
    /// When files rotate.
    pub rotate: Rotate,
    /// Size limit of a file (with `Rotate::Size` / `Both`).
    pub max_size_bytes: u64,
    /// Closed files kept per site folder (the newest, `retention::prune`); 0 = all.
    pub keep: usize,
    /// `#Software: mailroot <version>`.
    pub version: String,
}

impl ProtoLogOptions {
    /// The options `config` asks for.
    #[must_use]
    pub fn from_config(config: &Config) -> ProtoLogOptions {
        ProtoLogOptions {
            sites: (0..config.sites.len())
                .map(|i| SiteLogOptions {
                    enabled: config.protocol_log_enabled(i),
                    dir: config.protocol_log_dir(i),
                    name: config.sites[i].name.clone(),
                })
                .collect(),
            rotate: config.protocol_log.rotate,
            max_size_bytes: config.protocol_log.max_size_bytes,
            keep: config.protocol_log.keep,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }

    /// Any site logs.
    #[must_use]
    pub fn any_enabled(&self) -> bool {
        self.sites.iter().any(|s| s.enabled)
    }
}

/// Changes the protocol log's settings while it runs (a configuration reload).
#[derive(Debug, Clone)]
pub struct ProtoLogControl {
    /// New options to the thread.
    ctl: Sender<ProtoLogOptions>,
    /// The sinks' per-site flags.
    enabled: Arc<[AtomicBool]>,
}

impl ProtoLogControl {
    /// Apply `opts`: sites switched on start logging with their next session, sites
    /// switched off stop with their next session (lines of sessions already open still
    /// reach the thread and are dropped there), a changed folder, rotation or size limit
    /// takes effect with the next batch (a moved site starts a new file with its header
    /// block). The set of sites is fixed at start-up: extra or missing entries are ignored.
    pub fn reconfigure(&self, opts: ProtoLogOptions) {
        for (flag, site) in self.enabled.iter().zip(&opts.sites) {
            flag.store(site.enabled, Ordering::Relaxed);
        }
        let _ = self.ctl.send(opts); // unbounded; the thread gone = shutting down
    }
}

/// Start the `protocol-log` thread (always: a reload may switch a site's log on). Returns
/// what each worker's `LogSink` is built from, the handle a reload uses, and the thread,
/// which ends (after flushing) once every clone of the parts is dropped. While no site
/// logs, the thread sleeps until a reload or the end instead of polling.
pub fn spawn(
    opts: ProtoLogOptions,
    events: EventLog,
) -> io::Result<(SinkParts, ProtoLogControl, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::bounded(CHANNEL_BATCHES);
    let (free_tx, free) = crossbeam_channel::bounded(CHANNEL_BATCHES);
    let (ctl, ctl_rx) = crossbeam_channel::unbounded();
    let enabled = flags(&opts.sites.iter().map(|s| s.enabled).collect::<Vec<_>>());
    let control = ProtoLogControl { ctl, enabled: Arc::clone(&enabled) };
    let parts = SinkParts { tx, free, enabled, warn: Arc::new(DropWarn::with_events(events)) };
    let thread = std::thread::Builder::new()
        .name("protocol-log".into())
        .spawn(move || Writer::new(opts).run(&rx, &free_tx, &ctl_rx))?;
    Ok((parts, control, thread))
}

/// One site's open file.
struct SiteFile {
    /// The file, buffered; `None` until the first batch (or after an error).
    out: Option<BufWriter<File>>,
    /// UTC day number the file belongs to.
    day: i64,
    /// Size-rotation sequence number of the file (0 = `exYYMMDD.log`).
    seq: u32,
    /// Bytes in the file.
    size: u64,
    /// Lines written to it (a file gets at least one batch before a size rotation).
    lines: u64,
    /// stats: this thread's counter block of the site.
    stats: Arc<CounterBlock>,
}

/// The thread's state.
struct Writer {
    /// Options.
    opts: ProtoLogOptions,
    /// Per site (index = site).
    files: Vec<SiteFile>,
    /// When the last file error was logged.
    last_error: Option<Instant>,
    /// Header bytes, rebuilt per file.
    scratch: Vec<u8>,
}

impl Writer {
    /// Nothing open yet.
    fn new(opts: ProtoLogOptions) -> Writer {
        let files = opts
            .sites
            .iter()
            .map(|s| SiteFile {
                out: None,
                day: 0,
                seq: 0,
                size: 0,
                lines: 0,
                stats: Registry::global().site_block(&s.name),
            })
            .collect();
        Writer { opts, files, last_error: None, scratch: Vec::new() }
    }

    /// Write batches until every sender is gone; flush at least every `FLUSH_INTERVAL`.
    /// The thread polls: it takes everything waiting, then sleeps `DRAIN_INTERVAL`, so a
    /// worker's `try_send` never has to wake it (a futex wake-up per event-loop pass cost
    /// more CPU than formatting the lines).
    fn run(
        mut self,
        rx: &Receiver<LogBatch>,
        free: &Sender<Vec<u8>>,
        ctl: &Receiver<ProtoLogOptions>,
    ) {
        let mut last_flush = Instant::now();
        let mut ctl_open = true;
        loop {
            while let Ok(opts) = ctl.try_recv() {
                self.reconfigure(opts);
            }
            let gone = loop {
                match rx.try_recv() {
                    Ok(mut batch) => {
                        self.write(&batch, unix_ms(SystemTime::now()));
                        batch.lines.clear();
                        let _ = free.try_send(batch.lines); // reused by a worker, or freed
                    }
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            if gone {
                break;
            }
            if last_flush.elapsed() >= FLUSH_INTERVAL {
                self.flush();
                last_flush = Instant::now();
            }
            if self.opts.any_enabled() {
                std::thread::sleep(DRAIN_INTERVAL);
                continue;
            }
            // Nothing logs (everything written is flushed above or was never opened):
            // sleep until a reload, a late batch, or the end.
            self.flush();
            if ctl_open {
                crossbeam_channel::select! {
                    recv(ctl) -> opts => match opts {
                        Ok(opts) => self.reconfigure(opts),
                        Err(_) => ctl_open = false,
                    },
                    recv(rx) -> batch => match batch {
                        Ok(mut batch) => {
                            self.write(&batch, unix_ms(SystemTime::now()));
                            batch.lines.clear();
                            let _ = free.try_send(batch.lines);
                        }
                        Err(_) => break,
                    },
                }
            } else {
                match rx.recv() {
                    Ok(mut batch) => {
                        self.write(&batch, unix_ms(SystemTime::now()));
                        batch.lines.clear();
                        let _ = free.try_send(batch.lines);
                    }
                    Err(_) => break,
                }
            }
        }
        self.flush();
    }

    /// New options from a reload: a site switched off or moved to another folder closes
    /// its file (after a flush); its next batch opens the right one.
    fn reconfigure(&mut self, new: ProtoLogOptions) {
        for (f, (old, site)) in self.files.iter_mut().zip(self.opts.sites.iter().zip(&new.sites)) {
            if (old.dir != site.dir || !site.enabled)
                && let Some(mut out) = f.out.take()
            {
                let _ = out.flush();
            }
        }
        let mut new = new;
        // The set of sites is fixed at start-up (the files and counters are per index).
        new.sites.resize_with(self.opts.sites.len(), || SiteLogOptions {
            enabled: false,
            dir: PathBuf::new(),
            name: String::new(),
        });
        for (site, old) in new.sites.iter_mut().zip(&self.opts.sites) {
            site.name.clone_from(&old.name);
        }
        self.opts = new;
    }

    /// Append `b` to its site's file, rotating first if due.
    fn write(&mut self, b: &LogBatch, now_ms: u64) {
        if !self.opts.sites.get(b.site).is_some_and(|s| s.enabled) {
            return;
        }
        let (rotate, max) = (self.opts.rotate, self.opts.max_size_bytes);
        let f = &mut self.files[b.site];
        let today = day_number(now_ms);
        let new_day = f.out.is_none() || (rotate.daily() && f.day != today);
        let too_big = rotate.by_size() && f.lines > 0 && f.size + b.lines.len() as u64 > max;
        let result = if new_day || too_big {
            let (day, seq) = if new_day && (rotate.daily() || f.out.is_none()) {
                (today, 0)
            } else {
                (f.day, f.seq + 1)
            };
            self.open(b.site, day, seq, now_ms)
        } else {
            Ok(())
        };
        let f = &mut self.files[b.site];
        let result = result.and_then(|()| match &mut f.out {
            Some(out) => out.write_all(&b.lines),
            None => Err(io::Error::other("not open")),
        });
        match result {
            Ok(()) => {
                f.size += b.lines.len() as u64;
                f.lines += b.count;
                f.stats.add(Counter::ProtocolLogLines, b.count); // stats
            }
            Err(e) => {
                f.out = None;
                let name = &self.opts.sites[b.site].name;
                let message = format!("protocol log of site {name}: {e}");
                self.report(&message);
            }
        }
    }

    /// Open file `seq` of `day` for `site` (the next free sequence number when it is
    /// already full under size rotation) and write the header block.
    fn open(&mut self, site: usize, day: i64, mut seq: u32, now_ms: u64) -> io::Result<()> {
        let dir = &self.opts.sites[site].dir;
        let f = &mut self.files[site];
        if let Some(mut old) = f.out.take() {
            old.flush()?;
        }
        fs::create_dir_all(dir)?;
        let day_ms = u64::try_from(day).unwrap_or(0) * 86_400_000;
        let by_size = self.opts.rotate.by_size();
        loop {
            let path = dir.join(file_name(day_ms, seq));
            let file = OpenOptions::new().create(true).append(true).open(&path)?;
            let size = file.metadata()?.len();
            if by_size && size >= self.opts.max_size_bytes && seq < MAX_SEQ {
                seq += 1;
                continue;
            }
            self.scratch.clear();
            header(&self.opts.version, now_ms, &mut self.scratch);
            let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
            out.write_all(&self.scratch)?;
            *f = SiteFile {
                out: Some(out),
                day,
                seq,
                size: size + self.scratch.len() as u64,
                lines: 0,
                stats: Arc::clone(&f.stats),
            };
            log::debug!("protocol log: writing {}", path.display());
            self.prune(site, &path);
            return Ok(());
        }
    }

    /// Delete the closed files of `site` (every protocol-log file in its folder but
    /// `current`) beyond the `keep` newest; a failure is logged (the next file tries again).
    fn prune(&self, site: usize, current: &std::path::Path) {
        let current = current.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let closed = |n: &str| is_file_name(n) && n != current;
        match crate::retention::prune(&self.opts.sites[site].dir, self.opts.keep, closed) {
            Ok(0) => {}
            Ok(n) => log::info!(
                "protocol log of site {}: deleted {n} old file(s) beyond keep = {}",
                self.opts.sites[site].name,
                self.opts.keep
            ),
            Err(e) => log::warn!(
                "protocol log of site {}: cannot delete old files: {e}",
                self.opts.sites[site].name
            ),
        }
    }

    /// Flush every open file.
    fn flush(&mut self) {
        let mut failed = None;
        for (i, f) in self.files.iter_mut().enumerate() {
            if let Some(out) = &mut f.out
                && let Err(e) = out.flush()
            {
                f.out = None;
                failed = Some(format!("protocol log of site {}: {e}", self.opts.sites[i].name));
            }
        }
        if let Some(m) = failed {
            self.report(&m);
        }
    }

    /// Log a file error, at most once per `ERROR_LOG_INTERVAL`.
    fn report(&mut self, message: &str) {
        if self.last_error.is_none_or(|t| t.elapsed() >= ERROR_LOG_INTERVAL) {
            self.last_error = Some(Instant::now());
            log::error!("{message} (lines lost; retrying with the next lines)");
        }
    }
}

/// Milliseconds since the Unix epoch.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-05 12:00:00 UTC.
    const NOON: u64 = 1_796_472_000_000;

    fn opts(dir: &std::path::Path, rotate: Rotate, max: u64) -> ProtoLogOptions {
        ProtoLogOptions {
            sites: vec![SiteLogOptions {
                enabled: true,
                dir: dir.join("s"),
                name: "writer-test".into(),
            }],
            rotate,
            max_size_bytes: max,
            keep: 0,
            version: "9.9".into(),
        }
    }

    fn batch(lines: usize) -> LogBatch {
        LogBatch { site: 0, lines: b"x y\r\n".repeat(lines), count: lines as u64 }
    }

    fn read(dir: &std::path::Path, name: &str) -> String {
        fs::read_to_string(dir.join("s").join(name)).unwrap()
    }

    #[test]
    fn daily_and_size_rotation_with_headers() {
        let root = tempfile::tempdir().unwrap();
        // The header block is about 200 bytes.
        let mut w = Writer::new(opts(root.path(), Rotate::Both, 400));
        w.write(&batch(2), NOON);
        w.write(&batch(2), NOON + 1);
        w.write(&batch(60), NOON + 2); // past max_size: a new file
        w.write(&batch(1), NOON + 3); // the new file already holds a batch over the limit
        w.write(&batch(1), NOON + 86_400_000); // next day
        w.flush();
        let first = read(root.path(), "ex261205.log");
        assert!(first.starts_with("#Software: mailroot 9.9\r\n#Version: 1.0\r\n#Date: 2026-12-05 12:00:00\r\n#Fields: date time"), "{first}");
        assert_eq!(first.matches("x y\r\n").count(), 4);
        let second = read(root.path(), "ex261205_1.log");
        assert!(second.starts_with("#Software:"));
        assert_eq!(second.matches("x y\r\n").count(), 60);
        assert_eq!(read(root.path(), "ex261205_2.log").matches("x y\r\n").count(), 1);
        let next = read(root.path(), "ex261206.log");
        assert!(next.contains("#Date: 2026-12-06 12:00:00\r\n") && next.ends_with("x y\r\n"));

        // A restart appends to today's file after a new header (daily only: no size limit).
        let mut w = Writer::new(opts(root.path(), Rotate::Daily, 1));
        w.write(&batch(1), NOON + 86_400_000 + 5);
        w.write(&batch(50), NOON + 86_400_000 + 6);
        w.flush();
        let next = read(root.path(), "ex261206.log");
        assert_eq!(next.matches("#Software:").count(), 2);
        assert_eq!(next.matches("x y\r\n").count(), 52);
    }

    #[test]
    fn closed_files_beyond_keep_are_deleted_oldest_first() {
        let root = tempfile::tempdir().unwrap();
        let mut o = opts(root.path(), Rotate::Both, 300);
        o.keep = 2;
        let mut w = Writer::new(o);
        for i in 0..6 {
            w.write(&batch(40), NOON + i); // each batch fills a file: six files
        }
        w.write(&batch(1), NOON + 86_400_000); // next day: a seventh
        w.flush();
        fs::write(root.path().join("s").join("notes.txt"), "mine").unwrap();
        let mut names: Vec<String> = fs::read_dir(root.path().join("s"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        // The live file and the two newest closed ones; the operator's file stays.
        assert_eq!(names, ["ex261205_4.log", "ex261205_5.log", "ex261206.log", "notes.txt"]);
    }

    #[test]
    fn size_only_skips_full_files_and_keeps_the_day() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("s")).unwrap();
        fs::write(root.path().join("s/ex261205.log"), vec![b'z'; 1000]).unwrap();
        let mut w = Writer::new(opts(root.path(), Rotate::Size, 1000));
        w.write(&batch(1), NOON);
        w.write(&batch(1), NOON + 86_400_000); // size only: no new file at midnight
        w.flush();
        assert_eq!(read(root.path(), "ex261205_1.log").matches("x y\r\n").count(), 2);
        assert!(!root.path().join("s/ex261206.log").exists());
    }

    fn quit() -> super::super::format::Record<'static> {
        super::super::format::Record {
            unix_ms: NOON,
            client: "127.0.0.1".parse().unwrap(),
            username: None,
            site: "s",
            computer: "c",
            server: "127.0.0.1:25".parse().unwrap(),
            method: "QUIT",
            query: b"",
            status: 221,
            sc_bytes: 10,
            cs_bytes: Some(6),
            time_taken_ms: 0,
        }
    }

    /// The lines of every file in `dir`.
    fn quits_in(dir: &std::path::Path) -> usize {
        fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(Result::ok)
                    .map(|e| fs::read_to_string(e.path()).unwrap().matches(" QUIT ").count())
                    .sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_reload_switches_a_site_on_and_moves_its_folder() {
        let root = tempfile::tempdir().unwrap();
        let mut off = opts(root.path(), Rotate::Daily, 1);
        off.sites[0].enabled = false;
        let (parts, control, thread) = spawn(off.clone(), EventLog::disabled()).unwrap();
        let block = Registry::global().site_block("writer-test");
        let mut sink = super::super::LogSink::new(parts, vec![block]);
        assert!(!sink.enabled(0));
        sink.write(0, &quit()); // off: not even buffered
        sink.flush(NOON);
        let mut on = off.clone();
        on.sites[0].enabled = true;
        control.reconfigure(on.clone());
        assert!(sink.enabled(0), "the flag flips at once, for the next session");
        sink.write(0, &quit());
        sink.flush(NOON);
        // The thread woke from its sleep and opened the file for that batch.
        let first = root.path().join("s");
        let deadline = Instant::now() + Duration::from_secs(10);
        while fs::read_dir(&first).map_or(true, |mut d| d.next().is_none()) {
            assert!(Instant::now() < deadline, "no file after the reload");
            std::thread::sleep(Duration::from_millis(10));
        }
        let mut moved = on.clone();
        moved.sites[0].dir = root.path().join("t");
        control.reconfigure(moved);
        sink.write(0, &quit());
        sink.write(0, &quit());
        drop(sink);
        drop(control);
        thread.join().unwrap();
        assert_eq!(quits_in(&first), 1);
        assert_eq!(quits_in(&root.path().join("t")), 2);
    }

    #[test]
    fn thread_flushes_and_ends_when_the_senders_go() {
        let root = tempfile::tempdir().unwrap();
        let (parts, _control, thread) =
            spawn(opts(root.path(), Rotate::Daily, 1), EventLog::disabled()).unwrap();
        let block = Registry::global().site_block("writer-test");
        let mut sink = super::super::LogSink::new(parts, vec![block]);
        sink.write(0, &quit());
        drop(sink); // flushes its buffer and closes the channel
        thread.join().unwrap();
        let dir = root.path().join("s");
        let name = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().file_name();
        let text = fs::read_to_string(dir.join(name)).unwrap();
        assert!(text.ends_with(" QUIT - 221 10 6 0\r\n"), "{text}");
    }
}
