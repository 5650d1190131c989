//! The `pickup` thread: watches `Pickup/`, queues every complete file, removes it once its
//! message is durable in the spool.
//!
//! WHAT: one thread with its own `SpoolWriter` (writer number `workers`, after the inbound
//! workers; created at the first file, since a writer preallocates a segment). It learns
//! of files two ways:
//! * inotify on `Pickup/` (`IN_CLOSE_WRITE`: a writer closed the file; `IN_MOVED_TO`: a file
//!   was renamed in, the recommended way to drop a file), read through a mio `Poll` with a
//!   timeout: the timeout also serves the periodic rescan and the stop-flag check, so no
//!   other wake-up mechanism is needed;
//! * a rescan of the directory at start and every [`PICKUP_RESCAN_MS`] (files that were
//!   there before we started, events lost to an inotify queue overflow, files we could not
//!   read last time). A rescan takes only files not modified for [`PICKUP_SETTLE_MS`], so a
//!   file still being written is left for its `IN_CLOSE_WRITE`.
//!
//! If inotify cannot be set up (no more instances or watches), the thread logs a warning
//! and relies on the rescan alone.
//!
//! Per batch of up to [`PICKUP_BATCH_FILES`] files: read, `parse::parse`, `begin` a record
//! with the envelope (site, client and HELO `pickup`), append our `Received:` header and the
//! content, `finish`; then one group commit for the batch (`flush` + `wait_idle`, this
//! thread may block). Only files whose record `poll_committed` reports durable are unlinked
//! (then `Pickup/` is fsynced once), and their QueueIds go to the queue runner as one
//! `IncomingBatch`, as an inbound worker does. A crash after the commit and before the
//! unlink queues the file again at restart: a duplicate, never a loss.
//!
//! Files that do not parse go to `Badmail/` (`.BAD` = the file as it was, `.BDR` = the
//! reason) and are then removed; if Badmail cannot be written they stay in `Pickup/`.
//! A file that cannot be read (permissions) or queued (spool full) stays too, is logged
//! once, and is retried at the next rescan.
//!
//! Skipped: names starting with `.` (temporary files, ours in `Drop/`/`Badmail/` and most
//! editors'), names ending in `~` or `.tmp`, and anything that is not a regular file
//! (directories; symbolic links are never followed: a link to a secret file must not be
//! mailed out by a server that can read it).
//!
//! TRUST: file names and contents come from whoever can write `Pickup/`: names are only
//! logged with `{:?}` escaping and turned into Badmail stems by `badmail_stem`; contents
//! go through `parse`, never into a log line.

use std::collections::{BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::Sender;
use inotify::{EventMask, Inotify, WatchMask};

use super::parse::{self, PickupMessage};
use crate::config::Config;
use crate::control::Live;
use crate::local::badmail;
use crate::policy::domain::rcpt_split;
use crate::policy::size::exceeds_size_limit;
use crate::queue::inbox::IncomingBatch;
use crate::smtp::trace;
use crate::spool::{Envelope, EnvelopeRecipient, QueueId, Spool, SpoolWriter, Ticket};
use crate::stats::Counter;

/// Period of the full rescan of `Pickup/`, in ms.
pub const PICKUP_RESCAN_MS: u64 = 5_000;
/// A rescan leaves files modified less than this long ago (ms) to their inotify event.
pub const PICKUP_SETTLE_MS: u64 = 1_000;
/// Longest wait between two checks of the stop flag, in ms.
pub const PICKUP_STOP_CHECK_MS: u64 = 200;
/// Files queued per group commit.
pub const PICKUP_BATCH_FILES: usize = 64;
/// Bytes of the inotify read buffer (room for ~100 events with short names).
const INOTIFY_BUFFER_BYTES: usize = 4096;
/// Envelope `site`, `client_addr` and `helo` of messages from `Pickup/`.
pub const PICKUP_SOURCE: &str = "pickup";

/// What the pickup thread needs from the configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct PickupConfig {
    /// Local domains, for the local/remote recipient counters.
    pub domains: crate::config::DomainsConfig,
    /// The folder watched (`<mailroot>/Pickup`).
    pub pickup_dir: PathBuf,
    /// Where unparseable files go (`<mailroot>/Badmail`).
    pub badmail_dir: PathBuf,
    /// Our host name, for the `Received:` header.
    pub hostname: String,
    /// Larger files are not queued but moved to Badmail ("too large"); the one size rule
    /// is `policy::size::exceeds_size_limit`.
    pub max_message_size_bytes: u64,
    /// The spool writer's number (segment headers, syncer thread name).
    pub writer_number: u32,
    /// Rescan period in ms.
    pub rescan_ms: u64,
}

impl PickupConfig {
    /// The pickup settings of `c`: its folders, host name and message size limit; the
    /// writer number follows the inbound workers'.
    #[must_use]
    pub fn from_config(c: &Config) -> PickupConfig {
        PickupConfig {
            domains: c.domains.clone(),
            pickup_dir: c.pickup_dir(),
            badmail_dir: c.badmail_dir(),
            hostname: c.hostname.clone(),
            max_message_size_bytes: c.limits.max_message_size_bytes,
            writer_number: u32::try_from(c.workers).unwrap_or(u32::MAX),
            rescan_ms: PICKUP_RESCAN_MS,
        }
    }
}

/// Start the `pickup` thread. It runs until `stop` is set (checked at least every
/// [`PICKUP_STOP_CHECK_MS`]), finishing the batch in hand. Fails only if the thread
/// cannot be created.
pub fn spawn(
    cfg: PickupConfig,
    spool: Spool,
    queue_tx: Sender<IncomingBatch>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    spawn_following(cfg, None, spool, queue_tx, stop)
}

/// [`spawn`], following reloads published in `live`: the size limit and the local
/// domains change between two files (folders, host name and writer stay as started).
pub fn spawn_following(
    cfg: PickupConfig,
    live: Option<Arc<Live<Config>>>,
    spool: Spool,
    queue_tx: Sender<IncomingBatch>,
    stop: Arc<AtomicBool>,
) -> io::Result<JoinHandle<()>> {
    let watcher = PickupWatcher {
        live: live.map(|l| {
            let seen = l.generation();
            let current = l.load();
            (l, seen, current)
        }),
        cfg,
        spool,
        writer: None,
        queue_tx,
        stop,
        inotify: None,
        warned: HashSet::new(),
        stats: crate::stats::Registry::global().block(),
        badmail_reason: Counter::BadmailPickup,
    };
    std::thread::Builder::new().name("pickup".into()).spawn(move || watcher.run())
}

/// The inotify instance and the mio `Poll` it is registered with.
struct Watch {
    /// Owns the inotify fd (the watch on `Pickup/` is added once).
    inotify: Inotify,
    /// Readiness of the inotify fd (token 0, readable).
    poll: mio::Poll,
    /// mio event buffer.
    events: mio::Events,
}

/// The pickup thread's state.
struct PickupWatcher {
    /// Settings.
    cfg: PickupConfig,
    /// The spool (free-space check).
    spool: Spool,
    /// This thread's writer, created at the first file (a writer holds a preallocated
    /// segment: a server whose Pickup folder is never used should not pay for it).
    writer: Option<SpoolWriter>,
    /// Committed ids go to the queue runner.
    queue_tx: Sender<IncomingBatch>,
    /// Set by the relay at shutdown.
    stop: Arc<AtomicBool>,
    /// `None` until set up, or when inotify is unavailable (rescan only).
    inotify: Option<Watch>,
    /// Names already logged as unreadable / not queueable (logged once each); pruned at
    /// every rescan to names still present.
    warned: HashSet<OsString>,
    /// stats: this thread's counter block (Pickup retrieved, recipients, bad pickup files).
    stats: Arc<crate::stats::CounterBlock>,
    /// stats: Badmail reason of the file being moved (reset after each move).
    badmail_reason: Counter,
    /// Reloads: where they are published, the generation seen, the config in use.
    live: Option<(Arc<Live<Config>>, u64, Arc<Config>)>,
}

/// What happened to one file.
enum Outcome {
    /// Written to the spool; remove the file once this ticket is durable. Carries the
    /// (local, remote) recipient split for the counters.
    Queued(Ticket, (u64, u64)),
    /// Moved to Badmail and removed, or vanished, or skipped: nothing more to do.
    Done,
    /// Left in place for the next rescan.
    Retry,
}

impl PickupWatcher {
    /// Take the size limit and local domains of a reloaded configuration.
    fn refresh_config(&mut self) {
        if let Some((live, seen, current)) = &mut self.live
            && live.refresh(seen, current)
        {
            self.cfg.domains = current.domains.clone();
            self.cfg.max_message_size_bytes = current.limits.max_message_size_bytes;
        }
    }

    /// The thread body.
    fn run(mut self) {
        self.inotify = match self.setup_inotify() {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!(
                    "pickup: no inotify on {} ({e}); rescanning every {} ms only",
                    self.cfg.pickup_dir.display(),
                    self.cfg.rescan_ms
                );
                None
            }
        };
        log::info!("pickup: watching {}", self.cfg.pickup_dir.display());
        let mut due: BTreeSet<OsString> = BTreeSet::new();
        let mut next_rescan = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            self.refresh_config();
            let now = Instant::now();
            if now >= next_rescan {
                next_rescan = self.rescan(&mut due, now);
            }
            if !due.is_empty() {
                let names: Vec<OsString> = std::mem::take(&mut due).into_iter().collect();
                for chunk in names.chunks(PICKUP_BATCH_FILES) {
                    self.process_batch(chunk);
                }
                continue; // look at the clock and the stop flag again before waiting
            }
            let wait = next_rescan
                .saturating_duration_since(Instant::now())
                .min(Duration::from_millis(PICKUP_STOP_CHECK_MS));
            if self.wait_events(wait, &mut due) {
                next_rescan = Instant::now(); // queue overflow or watch lost
            }
        }
        log::info!("pickup: stopped");
    }

    /// Create the inotify instance, watch `Pickup/`, register it with a mio `Poll`.
    fn setup_inotify(&self) -> io::Result<Watch> {
        let inotify = Inotify::init()?;
        inotify.watches().add(
            &self.cfg.pickup_dir,
            WatchMask::CLOSE_WRITE | WatchMask::MOVED_TO | WatchMask::ONLYDIR,
        )?;
        let poll = mio::Poll::new()?;
        let fd = inotify.as_raw_fd();
        poll.registry().register(
            &mut mio::unix::SourceFd(&fd),
            mio::Token(0),
            mio::Interest::READABLE,
        )?;
        Ok(Watch { inotify, poll, events: mio::Events::with_capacity(4) })
    }

    /// Wait up to `timeout` for inotify events and add the names they report to `due`.
    /// Returns true when a rescan is needed now (events were lost or the watch is gone).
    fn wait_events(&mut self, timeout: Duration, due: &mut BTreeSet<OsString>) -> bool {
        let Some(w) = self.inotify.as_mut() else {
            std::thread::sleep(timeout);
            return false;
        };
        if let Err(e) = w.poll.poll(&mut w.events, Some(timeout)) {
            if e.kind() != io::ErrorKind::Interrupted {
                log::warn!("pickup: poll failed: {e}");
                std::thread::sleep(timeout);
            }
            return false;
        }
        if w.events.is_empty() {
            return false;
        }
        // Edge-triggered: drain the fd until WouldBlock.
        let mut buf = [0u8; INOTIFY_BUFFER_BYTES];
        let mut rescan = false;
        loop {
            match w.inotify.read_events(&mut buf) {
                Ok(events) => {
                    let mut any = false;
                    for ev in events {
                        any = true;
                        if ev.mask.intersects(EventMask::Q_OVERFLOW | EventMask::IGNORED) {
                            rescan = true;
                        }
                        if ev.mask.contains(EventMask::ISDIR) {
                            continue;
                        }
                        if let Some(name) = ev.name {
                            due.insert(name.to_os_string());
                        }
                    }
                    if !any {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("pickup: reading inotify events failed: {e}; rescanning");
                    rescan = true;
                    break;
                }
            }
        }
        rescan
    }

    /// List `Pickup/` into `due` (settled files only); returns when to rescan next.
    fn rescan(&mut self, due: &mut BTreeSet<OsString>, now: Instant) -> Instant {
        let mut next = now + Duration::from_millis(self.cfg.rescan_ms);
        let entries = match fs::read_dir(&self.cfg.pickup_dir) {
            Ok(e) => e,
            Err(e) => {
                if self.warned.insert(OsString::from("\0dir")) {
                    log::warn!("pickup: cannot list {}: {e}", self.cfg.pickup_dir.display());
                }
                return next;
            }
        };
        self.warned.remove(OsStr::new("\0dir"));
        let wall = SystemTime::now();
        let settle = Duration::from_millis(PICKUP_SETTLE_MS);
        let mut present = HashSet::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            if skipped_name(&name) {
                continue;
            }
            present.insert(name.clone());
            // Not yet settled: leave it to its IN_CLOSE_WRITE, and look again when it is.
            let age = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| wall.duration_since(t).unwrap_or(Duration::ZERO));
            if let Ok(age) = age
                && age < settle
            {
                next = next.min(now + (settle - age));
                continue;
            }
            due.insert(name);
        }
        self.warned.retain(|n| present.contains(n));
        next
    }

    /// Queue (or badmail) the files named in `names`, with one group commit.
    fn process_batch(&mut self, names: &[OsString]) {
        let mut queued: Vec<(PathBuf, Ticket, (u64, u64))> = Vec::new();
        for name in names {
            let path = self.cfg.pickup_dir.join(name);
            match self.process_file(name, &path) {
                Outcome::Queued(t, split) => queued.push((path, t, split)),
                Outcome::Done | Outcome::Retry => {}
            }
        }
        let Some(writer) = self.writer.as_mut().filter(|_| !queued.is_empty()) else {
            return;
        };
        writer.flush();
        writer.wait_idle();
        let durable = match writer.poll_committed() {
            Ok(seq) => seq,
            Err((_, e)) => {
                // Every record of this batch not reported durable failed; their files stay.
                log::error!("pickup: group commit failed: {e}; files stay in Pickup/");
                writer.poll_committed().unwrap_or(0)
            }
        };
        let mut batch = IncomingBatch::new();
        for (path, t, (local, remote)) in queued {
            if t.seq > durable {
                continue; // failed: the file stays and is retried at the next rescan
            }
            // stats: queued from Pickup/.
            let s = &self.stats;
            s.inc(Counter::PickupRetrieved);
            s.inc(Counter::MessagesAccepted);
            s.add(Counter::RecipientsLocal, local);
            s.add(Counter::RecipientsRemote, remote);
            if let Err(e) = fs::remove_file(&path) {
                // The message is queued; the file would be queued again (a duplicate).
                log::error!(
                    "queue_id={} pickup: cannot remove {}: {e} (it will be sent again)",
                    t.id,
                    path.display()
                );
            }
            batch.push(t.id);
        }
        sync_dir(&self.cfg.pickup_dir);
        if !batch.is_empty() && self.queue_tx.send(batch).is_err() {
            log::warn!("pickup: queue runner gone");
        }
    }

    /// Read, parse and write one file to the spool (not yet committed).
    fn process_file(&mut self, name: &OsStr, path: &Path) -> Outcome {
        if skipped_name(name) {
            return Outcome::Done;
        }
        // Never follow a symbolic link; only regular files are mail.
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Done,
            Err(e) => return self.retry_later(name, &format!("cannot stat: {e}")),
        };
        if !meta.file_type().is_file() {
            return self.retry_later(name, "not a regular file; left alone");
        }
        if !self.spool.has_free_space() {
            return self.retry_later(name, "spool is short of disk space");
        }
        let limit = self.cfg.max_message_size_bytes;
        let too_large = |size: u64| format!("message too large ({size} bytes, limit {limit})");
        if exceeds_size_limit(meta.len(), limit) {
            // Copied to Badmail by the kernel; never read into memory.
            return self.move_to_badmail(name, path, None, &too_large(meta.len()));
        }
        // At most limit + 1 bytes, in case the file grew since the stat.
        let bytes = match read_at_most(path, limit.saturating_add(1)) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Outcome::Done,
            Err(e) => return self.retry_later(name, &format!("cannot read: {e}")),
        };
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if exceeds_size_limit(size, limit) {
            return self.move_to_badmail(name, path, None, &too_large(size));
        }
        match parse::parse(&bytes) {
            Ok(msg) => match self.write_record(&msg) {
                Ok(t) => {
                    self.warned.remove(name);
                    log::info!(
                        target: "mailroot::message",
                        "queue_id={} received via=pickup file={:?} size={} nrcpt={}",
                        t.id,
                        name,
                        msg.content.len(),
                        msg.recipients.len()
                    );
                    let split =
                        rcpt_split(&self.cfg.domains, msg.recipients.iter().map(String::as_str));
                    Outcome::Queued(t, split)
                }
                Err(e) => self.retry_later(name, &format!("cannot queue: {e}")),
            },
            Err(e) => {
                // stats: the Badmail reason counter for this file.
                self.badmail_reason = if matches!(e, parse::PickupError::NoRecipients) {
                    Counter::BadmailNoRecipients
                } else {
                    Counter::BadmailPickup
                };
                self.move_to_badmail(name, path, Some(&bytes), &e.to_string())
            }
        }
    }

    /// Move an unparseable file to Badmail (from `bytes` when it was read, else copied
    /// from `path`), then remove it from Pickup.
    fn move_to_badmail(
        &mut self,
        name: &OsStr,
        path: &Path,
        bytes: Option<&[u8]>,
        reason: &str,
    ) -> Outcome {
        let name_str = name.to_string_lossy();
        let dir = &self.cfg.badmail_dir;
        let now = unix_secs(SystemTime::now());
        let written = match bytes {
            Some(b) => badmail::to_badmail(dir, &name_str, None, b, reason, now),
            None => badmail::file_to_badmail(dir, path, &name_str, reason, now),
        };
        match written {
            Ok(files) => {
                log::warn!("pickup: file={:?} to badmail {}: {reason}", name, files.bad.display());
                if let Err(e) = fs::remove_file(path) {
                    log::error!("pickup: cannot remove {}: {e}", path.display());
                }
                self.warned.remove(name);
                // stats: by reason (set by the caller; bad pickup file otherwise).
                let reason = std::mem::replace(&mut self.badmail_reason, Counter::BadmailPickup);
                self.stats.inc(reason);
                Outcome::Done
            }
            Err(e) => self.retry_later(name, &format!("unparseable ({reason}) and {e}")),
        }
    }

    /// Log `why` once for `name` and leave the file for the next rescan.
    fn retry_later(&mut self, name: &OsStr, why: &str) -> Outcome {
        if self.warned.insert(name.to_os_string()) {
            log::warn!("pickup: file={name:?} {why}; retrying at the next rescan");
        }
        Outcome::Retry
    }

    /// Begin, fill and finish the spool record of `msg`.
    fn write_record(
        &mut self,
        msg: &PickupMessage<'_>,
    ) -> Result<Ticket, crate::spool::SpoolError> {
        let now = SystemTime::now();
        let env = envelope(msg, unix_ms(now));
        let writer = match &mut self.writer {
            Some(w) => w,
            // The syncer wakes nobody: this thread waits for its commits (`wait_idle`).
            None => self.writer.insert(self.spool.writer(self.cfg.writer_number, Box::new(|| {}))?),
        };
        let mut rec = writer.begin(&env)?;
        let mut header = Vec::with_capacity(160);
        let id: QueueId = rec.id();
        trace::write_received_pickup(
            &self.cfg.hostname,
            &id.to_string(),
            unix_secs(now),
            &mut header,
        );
        let appended =
            writer.append(&mut rec, &header).and_then(|()| writer.append(&mut rec, &msg.content));
        if let Err(e) = appended {
            writer.abort(rec);
            return Err(e);
        }
        writer.finish(rec)
    }
}

/// The spool envelope of a Pickup message arriving at `arrival_unix_ms`.
#[must_use]
pub fn envelope(msg: &PickupMessage<'_>, arrival_unix_ms: u64) -> Envelope {
    Envelope {
        reverse_path: msg.reverse_path.clone(),
        recipients: msg
            .recipients
            .iter()
            .map(|r| EnvelopeRecipient { forward_path: r.clone(), notify: 0, orcpt: None })
            .collect(),
        body: u8::from(msg.eight_bit),
        smtputf8: msg.smtputf8,
        ret: 0,
        envid: None,
        client_addr: PICKUP_SOURCE.to_owned(),
        helo: PICKUP_SOURCE.to_owned(),
        arrival_unix_ms,
        site: PICKUP_SOURCE.to_owned(),
    }
}

/// Names the watcher never touches: dot-files, editor backups, temporary names.
#[must_use]
pub fn skipped_name(name: &OsStr) -> bool {
    let b = name.as_encoded_bytes();
    b.is_empty()
        || b[0] == b'.'
        || b.ends_with(b"~")
        || (b.len() >= 4 && b[b.len() - 4..].eq_ignore_ascii_case(b".tmp"))
}

/// The first `limit` bytes of the file at `path`.
fn read_at_most(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut v = Vec::new();
    fs::File::open(path)?.take(limit).read_to_end(&mut v)?;
    Ok(v)
}

/// `fsync` a directory, best effort (a lost unlink means a duplicate, not a loss).
fn sync_dir(dir: &Path) {
    if let Err(e) = fs::File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("pickup: cannot sync {}: {e}", dir.display());
    }
}

/// Milliseconds since the Unix epoch.
fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Seconds since the Unix epoch.
fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
#[path = "watch_tests.rs"]
mod tests;
