//! Shared harness for the end-to-end tests: runs the REAL `mailroot` binary.
//!
//! Each `Server` owns a fresh temp dir (config file, log file, mailroot) and a loopback port
//! found by binding port 0 and releasing it; ports handed out are remembered so two tests in
//! this process never get the same one (the server may use SO_REUSEPORT, so a collision would
//! silently split connections between two servers). Only 127.0.0.0/8 is ever used.
//!
//! Clients (`client.rs`): `Raw` is a minimal socket used where the test must control the exact
//! bytes on the wire (pipelining, smuggling, torn DATA, garbage); everything else goes through
//! clients nobody on the team wrote: `lettre` and Python's `smtplib` (`tests/py/*.py`).
//!
//! Every wait is bounded (`wait_until`); nothing asserts on speed.

#![allow(dead_code)] // each test binary uses a different subset of the harness

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

mod client;
pub(crate) use client::*;
mod haproxy;
#[allow(unused_imports)] // only the load-balancer tests use it
pub(crate) use haproxy::*;
#[path = "../common_cli/mod.rs"]
mod cli;
pub(crate) use cli::*;

/// Source address of the readiness probe: never used by a test's own clients, so the probe
/// cannot eat a per-IP connection slot a test counts on.
pub(crate) const PROBE_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 254);

/// How long a server gets to start accepting (generous: CI machines are slow, not a speed test).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// How long SIGTERM gets before we fall back to SIGKILL.
const TERM_TIMEOUT: Duration = Duration::from_secs(10);

/// Default per-socket read timeout of `Raw` clients.
pub(crate) const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports already handed out in this process.
static PORTS: Mutex<Vec<u16>> = Mutex::new(Vec::new());

/// A loopback port nobody in this process has used: bind port 0, note it, release it.
pub(crate) fn free_port() -> u16 {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local_addr").port();
        drop(l);
        let mut used = PORTS.lock().unwrap_or_else(|e| e.into_inner());
        if !used.contains(&port) {
            used.push(port);
            return port;
        }
    }
    panic!("no free loopback port after 100 tries");
}

/// Poll `f` every `step` until it returns `Some` or `limit` passes.
pub(crate) fn wait_until<T>(
    limit: Duration,
    step: Duration,
    mut f: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(step);
    }
}

/// Test configuration; rendered to TOML with the key names of `src/config/`.
#[derive(Clone, Debug)]
pub(crate) struct Conf {
    /// Mailroot folder; `None` = `<tempdir>/mailroot`.
    pub(crate) mailroot: Option<PathBuf>,
    /// Worker threads.
    pub(crate) workers: usize,
    /// `[limits]` key -> TOML literal (already quoted when a string).
    pub(crate) limits: BTreeMap<String, String>,
    /// `[relay] allow`.
    pub(crate) relay_allow: Vec<String>,
    /// `[connections] allow` (empty = everyone).
    pub(crate) conn_allow: Vec<String>,
    /// `[connections] deny`.
    pub(crate) conn_deny: Vec<String>,
    /// `[domains] local`.
    pub(crate) local_domains: Vec<String>,
    /// `[smtp] bare_line_ending`.
    pub(crate) bare_line_ending: String,
    /// `[spool] segment_size` TOML literal; `None` = the built-in default.
    pub(crate) segment_size: Option<String>,
    /// Extra lines inside `[relay]` (e.g. `smart_host = "[127.0.0.2]:2600"`).
    pub(crate) relay_extra: String,
    /// Extra lines inside the `[[site]]` table (e.g. `require_tls = true`).
    pub(crate) site_extra: String,
    /// Extra TOML appended at the end (whole tables). The default holds delivery
    /// (`[delivery] hold = true`) so tests about receiving find their messages in the queue.
    pub(crate) extra: String,
    /// Extra lines inside `[admin]` (e.g. `token = "s3cret"`).
    pub(crate) admin_extra: String,
}

impl Default for Conf {
    fn default() -> Self {
        let mut limits = BTreeMap::new();
        // Small enough that tests finish fast, large enough that no test trips them by accident.
        limits.insert("min_free_disk".into(), "\"1MiB\"".into());
        limits.insert("shutdown_grace".into(), "\"2s\"".into());
        limits.insert("max_messages_per_connection".into(), "1000".into());
        Conf {
            mailroot: None,
            workers: 2,
            limits,
            relay_allow: vec!["127.0.0.0/8".into()],
            conn_allow: vec![],
            conn_deny: vec![],
            local_domains: vec!["localhost".into()],
            bare_line_ending: "normalize".into(),
            // Small segments: each server preallocates one per worker (the 64 MiB default
            // times dozens of parallel tests is gigabytes), and recovery/scan read them whole.
            segment_size: Some("\"1MiB\"".into()),
            relay_extra: String::new(),
            site_extra: String::new(),
            extra: "\n[delivery]\nhold = true\n".into(),
            admin_extra: String::new(),
        }
    }
}

impl Conf {
    /// Set a `[limits]` key to a TOML literal, e.g. `limit("max_recipients", "3")`.
    pub(crate) fn limit(mut self, key: &str, toml_literal: &str) -> Self {
        self.limits.insert(key.into(), toml_literal.into());
        self
    }

    fn render(&self, hostname: &str, mailroot: &Path, port: u16, admin_port: u16) -> String {
        fn list(v: &[String]) -> String {
            let items: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            format!("[{}]", items.join(", "))
        }
        let mut t = String::new();
        t += &format!("hostname = {hostname:?}\n");
        t += &format!("mailroot = {:?}\n", mailroot.display().to_string());
        t += &format!("workers = {}\n\n", self.workers);
        t += &format!("[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:{port}\"]\n");
        t += &format!("{}\n\n", self.site_extra);
        t += "[limits]\n";
        for (k, v) in &self.limits {
            t += &format!("{k} = {v}\n");
        }
        t += &format!("\n[relay]\nallow = {}\n{}\n", list(&self.relay_allow), self.relay_extra);
        t += &format!(
            "\n[connections]\nallow = {}\ndeny = {}\n",
            list(&self.conn_allow),
            list(&self.conn_deny)
        );
        t += &format!("\n[domains]\nlocal = {}\n", list(&self.local_domains));
        t += &format!("\n[smtp]\nbare_line_ending = {:?}\n", self.bare_line_ending);
        if let Some(s) = &self.segment_size {
            t += &format!("\n[spool]\nsegment_size = {s}\n");
        }
        t += &self.extra;
        // The suite runs as root in CI: serve as whoever runs it (tests/e2e_privilege.rs
        // tests the drop to `[service] user`).
        if !self.extra.contains("[service]") {
            t += "\n[service]\nallow_root = true\n";
        }
        // Every server gets its own admin port (the default 8025 would collide).
        t += &format!("\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"\n{}\n", self.admin_extra);
        t
    }
}

/// A running (or stopped) `mailroot serve`.
pub(crate) struct Server {
    /// Owns config, log and (by default) the mailroot folder.
    pub(crate) dir: tempfile::TempDir,
    /// The configuration it was started with.
    pub(crate) conf: Conf,
    /// Path of the generated TOML file.
    pub(crate) config_path: PathBuf,
    /// Mailroot folder.
    pub(crate) mailroot: PathBuf,
    /// Unique hostname: the greeting must contain it, so we know we talk to OUR server.
    pub(crate) hostname: String,
    /// Listening port on 127.0.0.1.
    pub(crate) port: u16,
    /// Admin listener port on 127.0.0.1 (`GET /metrics`, `/api/*`).
    pub(crate) admin_port: u16,
    child: Option<Child>,
    log_path: PathBuf,
}

impl Server {
    /// Start a server with `conf` and wait until it greets.
    pub(crate) fn start(conf: Conf) -> Server {
        let dir = tempfile::Builder::new().prefix("mailroot-e2e-").tempdir().expect("tempdir");
        let mailroot = conf.mailroot.clone().unwrap_or_else(|| dir.path().join("mailroot"));
        let config_path = dir.path().join("mailroot.toml");
        let log_path = dir.path().join("server.log");
        let mut s = Server {
            hostname: String::new(),
            dir,
            conf,
            config_path,
            mailroot,
            port: 0,
            admin_port: 0,
            child: None,
            log_path,
        };
        s.spawn_and_wait(true);
        s
    }

    /// (Re)spawn; on a bind failure pick another port (only when `new_port_ok`).
    fn spawn_and_wait(&mut self, new_port_ok: bool) {
        let mut last_err = String::new();
        for attempt in 0..5 {
            if self.port == 0 || (attempt > 0 && new_port_ok) || attempt > 1 {
                self.port = free_port();
            }
            self.hostname = format!("mr{}-{}.test", self.port, std::process::id());
            self.admin_port = free_port();
            let text = self.conf.render(&self.hostname, &self.mailroot, self.port, self.admin_port);
            fs::write(&self.config_path, text).expect("write config");
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_path)
                .expect("open log");
            let child = Command::new(BIN)
                .args(["serve", "--config"])
                .arg(&self.config_path)
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log"))
                .stderr(log)
                .spawn()
                .expect("spawn mailroot serve");
            self.child = Some(child);
            match self.wait_ready() {
                Ok(()) => return,
                Err(e) => {
                    last_err = e;
                    self.kill();
                }
            }
        }
        panic!("server did not start: {last_err}\n--- server log ---\n{}", self.log_tail(16_000));
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(st) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                return Err(format!("server exited during startup: {st}"));
            }
            if Instant::now() >= deadline {
                return Err("server did not accept within the startup timeout".into());
            }
            if let Ok(mut c) =
                Raw::connect_from_timeout(PROBE_IP, self.addr(), Duration::from_secs(5))
            {
                match c.read_reply() {
                    Some(r) if r.code == 220 && !r.text().contains(&self.hostname) => {
                        return Err(format!("port {} is someone else's: {}", self.port, r.text()));
                    }
                    Some(r) if r.code == 220 => {
                        c.send(b"QUIT\r\n");
                        let _ = c.read_reply();
                        return Ok(());
                    }
                    Some(_) => return Ok(()), // e.g. a deny list covering the probe: still up
                    None => {}
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Address of the first listener.
    pub(crate) fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), self.port)
    }

    /// Process id, if running.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// True while the process has not exited.
    pub(crate) fn is_alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL and reap.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait (bounded); SIGKILL if it does not exit. Returns the exit status.
    pub(crate) fn terminate(&mut self) -> Option<ExitStatus> {
        let mut c = self.child.take()?;
        send_signal(c.id(), libc::SIGTERM);
        let st =
            wait_until(TERM_TIMEOUT, Duration::from_millis(20), || c.try_wait().ok().flatten());
        match st {
            Some(st) => Some(st),
            None => {
                let _ = c.kill();
                let _ = c.wait();
                None
            }
        }
    }

    /// Wait (bounded) for the process to exit on its own, e.g. after a signal already sent;
    /// None if it is still running after `limit` (it is left running).
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let c = self.child.as_mut()?;
        let st = wait_until(limit, Duration::from_millis(20), || c.try_wait().ok().flatten())?;
        self.child = None;
        Some(st)
    }

    /// Start again on the same mailroot (same port if possible).
    pub(crate) fn restart(&mut self) {
        self.kill();
        self.spawn_and_wait(false);
    }

    /// The spool directory inside the mailroot.
    pub(crate) fn queue_dir(&self) -> PathBuf {
        self.mailroot.join("Queue")
    }

    /// `mailroot queue list --json --config FILE`, parsed; one `Value` per queued message.
    pub(crate) fn queue_list(&self) -> Vec<Value> {
        let out = mailroot_with_config(&["queue", "list", "--json"], &self.config_path);
        assert_success(&out, "queue list");
        parse_queue_json(&out.stdout)
    }

    /// Reverse paths of all messages in `queue list --json` (one entry per message).
    pub(crate) fn queued_senders(&self) -> Vec<String> {
        self.queue_list().iter().map(|m| sender_of(m).unwrap_or_default()).collect()
    }

    /// Live read-only scan through the library API.
    pub(crate) fn scan(&self) -> Vec<mailroot::spool::QueuedMessage> {
        mailroot::spool::scan(&self.queue_dir()).expect("spool::scan")
    }

    /// Stop the server (SIGTERM) and read every queued message byte-exact via the spool API.
    pub(crate) fn stop_and_read_all(&mut self) -> Vec<(mailroot::spool::QueuedMessage, Vec<u8>)> {
        self.terminate();
        read_spool(&self.queue_dir())
    }

    /// The tail of the server's log.
    pub(crate) fn log_tail(&self, max: usize) -> String {
        let log = fs::read(&self.log_path).unwrap_or_default();
        let start = log.len().saturating_sub(max);
        String::from_utf8_lossy(&log[start..]).into_owned()
    }

    /// An lettre transport pointed at this server (one connection per message).
    pub(crate) fn lettre(&self) -> lettre::SmtpTransport {
        lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(self.port)
            .timeout(Some(IO_TIMEOUT))
            .hello_name(lettre::transport::smtp::extension::ClientId::Domain("client.test".into()))
            .build()
    }

    /// A persistent lettre connection (several messages per connection).
    pub(crate) fn lettre_conn(
        &self,
    ) -> Result<lettre::transport::smtp::client::SmtpConnection, lettre::transport::smtp::Error>
    {
        lettre::transport::smtp::client::SmtpConnection::connect(
            self.addr(),
            Some(IO_TIMEOUT),
            &lettre::transport::smtp::extension::ClientId::Domain("client.test".into()),
            None,
            None,
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- server log ({}) ---\n{}",
                self.config_path.display(),
                self.log_tail(8000)
            );
        }
    }
}

/// Send a signal to a process we spawned.
pub(crate) fn send_signal(pid: u32, sig: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill(2) has no memory-safety preconditions; pid is our own child.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Open the spool (the server must be stopped) and read every message via the library.
pub(crate) fn read_spool(queue_dir: &Path) -> Vec<(mailroot::spool::QueuedMessage, Vec<u8>)> {
    let opts = mailroot::spool::SpoolOptions { segment_bytes: 1 << 20, min_free_bytes: 0 };
    let (spool, msgs) = mailroot::spool::Spool::open(queue_dir, opts).expect("Spool::open");
    msgs.into_iter()
        .map(|m| {
            let bytes = spool.read_message(m.id).expect("read_message");
            (m, bytes)
        })
        .collect()
}

/// Accepts a JSON array, an object holding one array, or JSON lines.
pub(crate) fn parse_queue_json(stdout: &[u8]) -> Vec<Value> {
    let text = String::from_utf8_lossy(stdout);
    let v: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(_) => Value::Array(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| {
                    serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}"))
                })
                .collect(),
        ),
    };
    match v {
        Value::Array(a) => a,
        Value::Object(o) => {
            let arrays: Vec<&Vec<Value>> = o.values().filter_map(|v| v.as_array()).collect();
            match arrays.as_slice() {
                [a] => (*a).clone(),
                _ => panic!("queue list JSON: expected one array in {o:?}"),
            }
        }
        Value::Null => vec![],
        other => panic!("queue list JSON: unexpected {other}"),
    }
}

/// The reverse path of one queue-list entry (tries the usual field names).
pub(crate) fn sender_of(m: &Value) -> Option<String> {
    const KEYS: [&str; 5] = ["reverse_path", "from", "sender", "mail_from", "reversePath"];
    fn find(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) => {
                for k in KEYS {
                    if let Some(s) = o.get(k).and_then(|s| s.as_str()) {
                        return Some(s.trim_start_matches('<').trim_end_matches('>').to_string());
                    }
                }
                o.values().find_map(find)
            }
            _ => None,
        }
    }
    find(m)
}

/// Every string inside a JSON value (for "is this address mentioned" checks).
pub(crate) fn json_strings(v: &Value, out: &mut HashSet<String>) {
    match v {
        Value::String(s) => {
            out.insert(s.trim_start_matches('<').trim_end_matches('>').to_string());
        }
        Value::Array(a) => a.iter().for_each(|x| json_strings(x, out)),
        Value::Object(o) => o.values().for_each(|x| json_strings(x, out)),
        _ => {}
    }
}

/// Split a stored message into its prepended `Received:` field and the rest; panics when the
/// message does not start with exactly one (possibly folded) `Received:` field.
pub(crate) fn split_received(stored: &[u8]) -> (&[u8], &[u8]) {
    assert!(
        stored.len() >= 9 && stored[..9].eq_ignore_ascii_case(b"Received:"),
        "stored message does not start with Received: {:?}",
        String::from_utf8_lossy(&stored[..stored.len().min(200)])
    );
    let mut i = 0;
    loop {
        let nl = memchr_crlf(&stored[i..])
            .unwrap_or_else(|| panic!("Received: field not CRLF-terminated"))
            + i;
        let next = nl + 2;
        // A folded continuation line starts with SP or HTAB (RFC 5322 §2.2.3).
        if next < stored.len() && (stored[next] == b' ' || stored[next] == b'\t') {
            i = next;
            continue;
        }
        return stored.split_at(next);
    }
}

fn memchr_crlf(b: &[u8]) -> Option<usize> {
    b.windows(2).position(|w| w == b"\r\n")
}

/// Assert that `stored` is one `Received:` field followed by exactly `content`.
pub(crate) fn assert_stored_exactly(stored: &[u8], content: &[u8]) {
    let (received, rest) = split_received(stored);
    let rec = String::from_utf8_lossy(received);
    assert!(!rec.contains("\r\n\r\n"), "Received field contains an empty line: {rec:?}");
    if rest != content {
        let at = rest
            .iter()
            .zip(content)
            .position(|(a, b)| a != b)
            .unwrap_or(rest.len().min(content.len()));
        let lo = at.saturating_sub(40);
        panic!(
            "stored content differs at byte {at} (stored {} bytes, sent {} bytes)\n stored: {:?}\n   sent: {:?}",
            rest.len(),
            content.len(),
            String::from_utf8_lossy(&rest[lo..(at + 40).min(rest.len())]),
            String::from_utf8_lossy(&content[lo..(at + 40).min(content.len())]),
        );
    }
}

/// A process-unique number.
pub(crate) fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Deterministic xorshift64* PRNG (no extra dependency; reproducible failures).
pub(crate) struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-ish in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// `n` random bytes.
    pub(crate) fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next_u64() >> 56) as u8).collect()
    }
}

/// Free bytes available to unprivileged users on the filesystem holding `path`.
pub(crate) fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).expect("no NUL in path");
    // SAFETY: statvfs writes into the zeroed struct we pass; `c` is a valid C string.
    #[allow(unsafe_code)]
    let st = unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut st), 0, "statvfs {}", path.display());
        st
    };
    #[allow(clippy::useless_conversion)]
    let v = u64::from(st.f_bavail) * u64::from(st.f_frsize);
    v
}

/// `GET path` on the admin listener at 127.0.0.1:`port` (HTTP/1.0, bounded): (status, body).
pub(crate) fn admin_get(port: u16, path: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect admin");
    s.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body split");
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, head.to_string(), body.to_string())
}

/// `POST path` on the admin listener at 127.0.0.1:`port` with an optional bearer token
/// (HTTP/1.0, bounded): (status, body).
pub(crate) fn admin_post(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    use std::io::{Read, Write};
    // Bounded retry: a listener that is still starting refuses the first connects.
    let mut s = wait_until(Duration::from_secs(10), Duration::from_millis(20), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(60))).expect("timeout");
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    write!(s, "POST {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\n\r\n")
        .expect("send");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("header/body split");
    let status: u16 = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, body.to_string())
}

impl Server {
    /// `GET path` on this server's admin listener: (status, header block, body).
    pub(crate) fn admin_get(&self, path: &str) -> (u16, String, String) {
        admin_get(self.admin_port, path)
    }

    /// `POST path` on this server's admin listener: (status, body).
    pub(crate) fn admin_post(&self, path: &str, token: Option<&str>) -> (u16, String) {
        admin_post(self.admin_port, path, token)
    }

    /// Every line of `<mailroot>/Logs/events.log`, parsed (the event log).
    pub(crate) fn events(&self) -> Vec<Value> {
        let text = fs::read_to_string(self.mailroot.join("Logs/events.log")).unwrap_or_default();
        text.lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad event line {l:?}: {e}"))
            })
            .collect()
    }

    /// Wait (bounded) for an event named `name` that `pred` accepts, and return it.
    pub(crate) fn wait_event(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        wait_until(Duration::from_secs(20), Duration::from_millis(25), || {
            self.events().into_iter().find(|e| e["event"] == name && pred(e))
        })
        .unwrap_or_else(|| {
            panic!(
                "no {name} event; event log:\n{}",
                fs::read_to_string(self.mailroot.join("Logs/events.log")).unwrap_or_default()
            )
        })
    }
}
