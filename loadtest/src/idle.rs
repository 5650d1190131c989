//! `idle` mode: hold N idle SMTP connections and report the server's memory.
//!
//! It raises its own `RLIMIT_NOFILE` (soft limit, up to the hard limit), then opens
//! `--connections` connections from a few worker threads, each of which connects, reads
//! the 220, sends EHLO and reads the reply, one connection after another (so the listen
//! backlog is never flooded). Once all are open it holds them for `--hold-seconds`,
//! sampling the server's `VmRSS` (from `/proc/PID/status`, when `--pid` is given) every
//! 250 ms, then closes them. Bounded: N connections, `--max-seconds` for the opening phase,
//! a fixed hold time.
//!
//! SECURITY: loopback only (see `target.rs`).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::Connection;
use crate::stats::{json_errors, json_f64};

/// Threads opening connections.
const OPENERS: usize = 8;
/// Interval between RSS samples while holding.
const SAMPLE_EVERY: Duration = Duration::from_millis(250);
/// File descriptors kept free above the connections (stdio, the /proc file, ...).
const SPARE_FDS: u64 = 64;

/// What `idle` was asked to do.
pub(crate) struct IdleOptions {
    /// Loopback server.
    pub(crate) server: SocketAddr,
    /// Connections to open.
    pub(crate) connections: usize,
    /// How long to hold them once open.
    pub(crate) hold: Duration,
    /// Bound on the opening phase.
    pub(crate) max_duration: Duration,
    /// Timeout of each connect and read.
    pub(crate) io_timeout: Duration,
    /// Server process whose VmRSS to report.
    pub(crate) pid: Option<u32>,
    /// EHLO argument.
    pub(crate) helo: String,
}

/// The result of an idle run.
pub(crate) struct IdleReport {
    /// Server address.
    server: SocketAddr,
    /// Connections asked for.
    wanted: usize,
    /// Connections that reached the EHLO 250 and were held.
    held: usize,
    /// The soft fd limit after raising it.
    nofile: u64,
    /// Seconds the opening took.
    open_s: f64,
    /// Failures by kind.
    errors: std::collections::BTreeMap<String, u64>,
    /// Server pid.
    pid: Option<u32>,
    /// VmRSS before opening, in KiB.
    rss_before_kib: Option<u64>,
    /// Largest VmRSS sampled while holding, in KiB.
    rss_held_kib: Option<u64>,
}

/// VmRSS of `pid` in KiB.
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_vmrss(&status)
}

/// The `VmRSS:` value (KiB) of a `/proc/PID/status` text.
fn parse_vmrss(status: &str) -> Option<u64> {
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok())
}

/// Run the idle test.
pub(crate) fn run(o: &IdleOptions) -> IdleReport {
    let want_fds = o.connections as u64 + SPARE_FDS;
    let nofile = rlimit::increase_nofile_limit(want_fds).unwrap_or(0);
    let rss_before_kib = o.pid.and_then(rss_kib);
    let deadline = Instant::now() + o.max_duration;
    let t0 = Instant::now();
    let held: Mutex<Vec<Connection>> = Mutex::new(Vec::with_capacity(o.connections));
    let errors = Mutex::new(std::collections::BTreeMap::<String, u64>::new());
    let ehlo = format!("EHLO {}\r\n", o.helo);
    std::thread::scope(|scope| {
        for w in 0..OPENERS {
            let (held, errors, ehlo) = (&held, &errors, &ehlo);
            let share = o.connections / OPENERS + usize::from(w < o.connections % OPENERS);
            scope.spawn(move || {
                let mut mine = Vec::with_capacity(share);
                for _ in 0..share {
                    if Instant::now() >= deadline {
                        note(errors, "deadline".to_owned());
                        break;
                    }
                    match open_one(o, ehlo) {
                        Ok(c) => mine.push(c),
                        Err(key) => note(errors, key),
                    }
                }
                if let Ok(mut h) = held.lock() {
                    h.extend(mine);
                }
            });
        }
    });
    let open_s = t0.elapsed().as_secs_f64();
    let held = held.into_inner().unwrap_or_default();
    let hold_until = Instant::now() + o.hold;
    let mut rss_held_kib = None;
    loop {
        if let Some(r) = o.pid.and_then(rss_kib) {
            rss_held_kib = Some(rss_held_kib.map_or(r, |m: u64| m.max(r)));
        }
        let now = Instant::now();
        if now >= hold_until {
            break;
        }
        std::thread::sleep(SAMPLE_EVERY.min(hold_until - now));
    }
    let count = held.len();
    drop(held);
    IdleReport {
        server: o.server,
        wanted: o.connections,
        held: count,
        nofile,
        open_s,
        errors: errors.into_inner().unwrap_or_default(),
        pid: o.pid,
        rss_before_kib,
        rss_held_kib,
    }
}

fn note(errors: &Mutex<std::collections::BTreeMap<String, u64>>, key: String) {
    if let Ok(mut e) = errors.lock() {
        *e.entry(key).or_insert(0) += 1;
    }
}

/// Connect, read the 220, EHLO, read the 250.
fn open_one(o: &IdleOptions, ehlo: &str) -> Result<Connection, String> {
    let mut c = Connection::connect_small(o.server, o.io_timeout).map_err(|e| e.key())?;
    let g = c.read_reply(None).map_err(|e| e.key())?;
    if g.code != 220 {
        return Err(format!("greeting {}", g.code));
    }
    c.send(ehlo.as_bytes()).map_err(|e| e.key())?;
    let r = c.read_reply(None).map_err(|e| e.key())?;
    if r.code != 250 {
        return Err(format!("EHLO {}", r.code));
    }
    Ok(c)
}

impl IdleReport {
    /// Exit status: 0 if every connection was held, else 1.
    pub(crate) fn exit_code(&self) -> i32 {
        if self.held == self.wanted { 0 } else { 1 }
    }

    /// Bytes of server RSS per held connection, if measured.
    fn per_connection_bytes(&self) -> Option<f64> {
        let (b, h) = (self.rss_before_kib?, self.rss_held_kib?);
        (self.held > 0).then(|| (h as f64 - b as f64) * 1024.0 / self.held as f64)
    }

    /// Human-readable report.
    pub(crate) fn to_text(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "mailroot-loadtest idle -> {}: {} of {} connections held after EHLO (opened in {:.3} s, \
             RLIMIT_NOFILE {})",
            self.server, self.held, self.wanted, self.open_s, self.nofile
        );
        if !self.errors.is_empty() {
            let _ = writeln!(t, "errors:");
            for (k, v) in &self.errors {
                let _ = writeln!(t, "  {k}: {v}");
            }
        }
        match (self.pid, self.rss_before_kib, self.rss_held_kib) {
            (Some(pid), Some(b), Some(h)) => {
                let _ = writeln!(
                    t,
                    "server pid {pid} VmRSS: {b} KiB before, {h} KiB held ({:.1} MiB), {:.0} bytes \
                     per connection",
                    h as f64 / 1024.0,
                    self.per_connection_bytes().unwrap_or(0.0)
                );
            }
            (Some(pid), _, _) => {
                let _ = writeln!(t, "server pid {pid}: VmRSS not readable");
            }
            (None, _, _) => {}
        }
        t
    }

    /// One JSON object on one line.
    pub(crate) fn to_json(&self) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| "null".to_owned(), |v| v.to_string());
        format!(
            "{{\"mode\":\"idle\",\"server\":\"{}\",\"connections\":{},\"held\":{},\"open_s\":{},\
             \"nofile\":{},\"pid\":{},\"rss_before_kib\":{},\"rss_held_kib\":{},\
             \"per_connection_bytes\":{},\"errors\":{}}}",
            self.server,
            self.wanted,
            self.held,
            json_f64(self.open_s),
            self.nofile,
            opt(self.pid.map(u64::from)),
            opt(self.rss_before_kib),
            opt(self.rss_held_kib),
            self.per_connection_bytes().map_or_else(|| "null".to_owned(), json_f64),
            json_errors(&self.errors)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmrss_is_parsed() {
        let status = "Name:\tmailroot\nVmPeak:\t  99 kB\nVmRSS:\t   12345 kB\nThreads:\t3\n";
        assert_eq!(parse_vmrss(status), Some(12_345));
        assert_eq!(parse_vmrss("Name: x\n"), None);
        assert!(rss_kib(std::process::id()).is_some_and(|k| k > 0));
    }
}
