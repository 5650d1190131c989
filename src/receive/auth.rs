//! AUTH verification off the event loop: one verifier thread per relay checks passwords
//! against the argon2 hashes of the session's site (`Config::site_users`: the site's own
//! `[[site.user]]` list, else the master `[[user]]` list), and each worker gets the
//! verdicts back through its waker, delayed after failures.
//!
//! WHAT: a worker's `Handler::auth_check` calls [`WorkerAuth::submit`] (crossbeam channel
//! to the `auth-verifier` thread) and the session waits (`AuthOutcome::Pending`). The
//! verifier runs argon2 (tens of ms, which must never stall a worker's other sessions),
//! decides the delay of a failure from the client address's recent failures
//! ([`FailureTable`]: 1 s, 2 s, 4 s, ... doubling up to [`MAX_DELAY_DOUBLINGS`] times,
//! forgotten after [`FAILURE_MEMORY`], at most [`MAX_TRACKED_CLIENTS`] addresses), and sends
//! the [`Verdict`] back on the worker's channel, ringing its waker. The worker holds a
//! failure until its delay is over ([`WorkerAuth::poll`], with [`WorkerAuth::deadline`] as
//! `Service::pass_deadline`: the loop's poll timeout, never a sleep) and then resumes the
//! session (`ServerSession::auth_done`).
//!
//! SECURITY: passwords cross the channel once, in a `Zeroizing` buffer wiped when the
//! request drops; nothing here logs a password or a user name. An unknown user is checked
//! against a dummy hash so the answer takes as long as for a known one (no user
//! enumeration by timing). Each connection has at most one request in flight (the session
//! consumes nothing while it waits), so the queue is bounded by the connection limit.
//!
//! `mailroot hash-password` uses [`hash_password`]: argon2id with the crate's default
//! parameters (19 MiB, 2 passes) and a salt from the OS random source.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use crossbeam_channel::{Receiver, Sender};
use zeroize::Zeroizing;

use crate::config::{Config, User};
use crate::control::Live;
use crate::net::ConnId;

/// How long a client address's failures are remembered after its last one.
pub const FAILURE_MEMORY: Duration = Duration::from_secs(15 * 60);
/// Most client addresses remembered; the stalest is forgotten first.
pub const MAX_TRACKED_CLIENTS: usize = 4096;
/// The delay doubles per failure at most this many times (1 s base: at most 16 s).
pub const MAX_DELAY_DOUBLINGS: u32 = 4;

/// The argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default().hash_password(password)?.to_string())
}

/// The verifier's answer for one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The connection that asked.
    pub conn: ConnId,
    /// Its site (for the counters).
    pub site: usize,
    /// The credentials were right.
    pub ok: bool,
    /// Hold a failure back this long before answering.
    pub delay: Duration,
}

/// Where verdicts for one worker go.
struct VerdictReturn {
    /// The worker's verdict channel.
    results: Sender<Verdict>,
    /// Rings the worker's waker.
    notify: Box<dyn Fn() + Send + Sync>,
}

/// One password to check.
struct VerifyRequest {
    /// The connection asking.
    conn: ConnId,
    /// Its site.
    site: usize,
    /// The client's address, for the failure delay.
    client: IpAddr,
    /// The claimed user name.
    authcid: String,
    /// The password; wiped on drop.
    password: Zeroizing<Vec<u8>>,
    /// Where the verdict goes.
    reply: Arc<VerdictReturn>,
}

/// The sending end of the verifier's request channel (cheap to clone, one per worker).
#[derive(Clone)]
pub struct VerifierClient {
    /// Requests to the `auth-verifier` thread.
    requests: Sender<VerifyRequest>,
}

/// Start the `auth-verifier` thread on a reloadable configuration: each check uses the
/// user list of the request's site current at that moment (`failure_delay` stays as
/// started). It ends when every `VerifierClient` is dropped.
pub fn spawn(config: Arc<Live<Config>>) -> std::io::Result<(VerifierClient, JoinHandle<()>)> {
    let (tx, rx) = crossbeam_channel::unbounded::<VerifyRequest>();
    let base = Duration::from_millis(config.load().auth.failure_delay_ms);
    let thread = std::thread::Builder::new().name("auth-verifier".into()).spawn(move || {
        run(&config, base, &rx);
    })?;
    Ok((VerifierClient { requests: tx }, thread))
}

/// The verifier loop.
fn run(config: &Live<Config>, base: Duration, rx: &Receiver<VerifyRequest>) {
    // Checked for unknown users, so they cost the same time as known ones.
    let dummy = hash_password(b"mailroot dummy password").unwrap_or_default();
    let mut failures = FailureTable::new(base);
    for req in rx {
        let config = config.load(); // one lock-free-ish Arc clone per AUTH (tens of ms each)
        // The session's site's list (its own `[[site.user]]`, else the master `[[user]]`).
        let users: &[User] = config.site_users(req.site);
        let hash =
            users.iter().find(|u| u.name == req.authcid).map_or(&dummy, |u| &u.password_hash);
        let known = users.iter().any(|u| u.name == req.authcid);
        let ok = verify(hash, &req.password) && known;
        let delay = if ok { Duration::ZERO } else { failures.record(req.client, Instant::now()) };
        let verdict = Verdict { conn: req.conn, site: req.site, ok, delay };
        if req.reply.results.send(verdict).is_ok() {
            (req.reply.notify)();
        }
    }
}

/// argon2 verification of `password` against the PHC string `hash` (the hash's own
/// parameters are used).
fn verify(hash: &str, password: &[u8]) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password, &h).is_ok())
}

/// Recent AUTH failures per client address, for the growing delay. Bounded in memory.
#[derive(Debug)]
pub struct FailureTable {
    /// Failures and the time of the last one, per address. Invariant: at most
    /// `MAX_TRACKED_CLIENTS` entries.
    entries: HashMap<IpAddr, (u32, Instant)>,
    /// Delay of a first failure.
    base: Duration,
}

impl FailureTable {
    /// An empty table whose first delay is `base`.
    #[must_use]
    pub fn new(base: Duration) -> FailureTable {
        FailureTable { entries: HashMap::new(), base }
    }

    /// Count a failure of `client` at `now`; returns how long to hold its 535 back.
    pub fn record(&mut self, client: IpAddr, now: Instant) -> Duration {
        let client = client.to_canonical();
        if !self.entries.contains_key(&client) && self.entries.len() >= MAX_TRACKED_CLIENTS {
            self.entries.retain(|_, (_, last)| now.duration_since(*last) < FAILURE_MEMORY);
            if self.entries.len() >= MAX_TRACKED_CLIENTS
                && let Some(stalest) =
                    self.entries.iter().min_by_key(|(_, (_, last))| *last).map(|(ip, _)| *ip)
            {
                self.entries.remove(&stalest);
            }
        }
        let entry = self.entries.entry(client).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_MEMORY {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        self.base.saturating_mul(1 << (entry.0 - 1).min(MAX_DELAY_DOUBLINGS))
    }

    /// Addresses remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No address remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A worker's side of AUTH verification: submit, collect verdicts, hold failures back.
pub struct WorkerAuth {
    /// Requests to the verifier.
    client: VerifierClient,
    /// This worker's verdict channel and waker, shared with every request.
    reply: Arc<VerdictReturn>,
    /// Verdicts arrive here.
    results: Receiver<Verdict>,
    /// Failures waiting for their delay: (due, verdict).
    delayed: Vec<(Instant, Verdict)>,
    /// Verdicts due, reported by `poll`, taken by `take`.
    due: HashMap<ConnId, Verdict>,
}

impl WorkerAuth {
    /// The worker side; `notify` rings the worker's waker (called from the verifier).
    pub fn new(client: VerifierClient, notify: Box<dyn Fn() + Send + Sync>) -> WorkerAuth {
        let (tx, rx) = crossbeam_channel::unbounded();
        WorkerAuth {
            client,
            reply: Arc::new(VerdictReturn { results: tx, notify }),
            results: rx,
            delayed: Vec::new(),
            due: HashMap::new(),
        }
    }

    /// Send credentials to the verifier. The password is copied once into a buffer wiped
    /// on drop (it crosses threads). False if the verifier is gone.
    pub fn submit(
        &self,
        conn: ConnId,
        site: usize,
        client: IpAddr,
        authcid: &str,
        password: &[u8],
    ) -> bool {
        let req = VerifyRequest {
            conn,
            site,
            client,
            authcid: authcid.to_owned(),
            password: Zeroizing::new(password.to_vec()),
            reply: Arc::clone(&self.reply),
        };
        self.client.requests.send(req).is_ok()
    }

    /// Collect verdicts: successes at once, failures once their delay is over. Each
    /// verdict that is due is pushed to `ready` and kept for `take`. Returns the verdicts
    /// that arrived now (for the counters), in arrival order.
    pub fn poll(&mut self, now: Instant, ready: &mut Vec<ConnId>, arrived: &mut Vec<Verdict>) {
        for v in self.results.try_iter() {
            arrived.push(v);
            self.delayed.push((now + v.delay, v));
        }
        let mut i = 0;
        while i < self.delayed.len() {
            if self.delayed[i].0 <= now {
                let (_, v) = self.delayed.swap_remove(i);
                self.due.insert(v.conn, v);
                ready.push(v.conn);
            } else {
                i += 1;
            }
        }
    }

    /// The verdict for `conn`, if one is due.
    pub fn take(&mut self, conn: ConnId) -> Option<Verdict> {
        self.due.remove(&conn)
    }

    /// The connection is gone: drop what is held for it.
    pub fn forget(&mut self, conn: ConnId) {
        self.due.remove(&conn);
        self.delayed.retain(|(_, v)| v.conn != conn);
    }

    /// When the next held-back failure is due.
    #[must_use]
    pub fn deadline(&self) -> Option<Instant> {
        self.delayed.iter().map(|(at, _)| *at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_client_and_are_capped() {
        let mut t = FailureTable::new(Duration::from_secs(1));
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "::ffff:192.0.2.2".parse().unwrap();
        // (client, seconds after t0, expected delay in seconds)
        let cases: &[(IpAddr, u64, u64)] = &[
            (a, 0, 1),
            (a, 1, 2),
            (a, 2, 4),
            (b, 2, 1),
            (a, 3, 8),
            (a, 4, 16),
            (a, 5, 16),
            (a, 5 + 15 * 60, 1),
            ("192.0.2.2".parse().unwrap(), 10, 2),
        ];
        for &(ip, after, want) in cases {
            let got = t.record(ip, t0 + Duration::from_secs(after));
            assert_eq!(got, Duration::from_secs(want), "{ip} at +{after}s");
        }
    }

    #[test]
    fn table_is_bounded() {
        let mut t = FailureTable::new(Duration::from_millis(1));
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED_CLIENTS as u32 + 100) {
            let ip = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = t.record(ip, t0 + Duration::from_millis(u64::from(i)));
        }
        assert_eq!(t.len(), MAX_TRACKED_CLIENTS);
    }

    /// Successes are due at once, failures after their delay; `forget` drops both.
    #[test]
    fn worker_side_holds_failures_back() {
        let (req_tx, _req_rx) = crossbeam_channel::unbounded();
        let mut w = WorkerAuth::new(VerifierClient { requests: req_tx }, Box::new(|| {}));
        let mut table = crate::net::conn_table::ConnTable::default();
        let (a, b, c) = (table.insert(()), table.insert(()), table.insert(()));
        let t0 = Instant::now();
        let verdict =
            |conn, ok, ms| Verdict { conn, site: 0, ok, delay: Duration::from_millis(ms) };
        for v in [verdict(a, true, 0), verdict(b, false, 500), verdict(c, false, 900)] {
            w.reply.results.send(v).unwrap();
        }
        let (mut ready, mut arrived) = (Vec::new(), Vec::new());
        w.poll(t0, &mut ready, &mut arrived);
        assert_eq!((ready.as_slice(), arrived.len()), ([a].as_slice(), 3));
        assert_eq!(w.deadline(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(w.take(a).map(|v| v.ok), Some(true));
        assert_eq!(w.take(a), None);
        ready.clear();
        w.poll(t0 + Duration::from_millis(499), &mut ready, &mut arrived);
        assert!(ready.is_empty());
        w.forget(c);
        w.poll(t0 + Duration::from_millis(500), &mut ready, &mut arrived);
        assert_eq!(ready, [b]);
        assert_eq!(w.take(b).map(|v| v.ok), Some(false));
        assert_eq!(w.deadline(), None, "c was forgotten");
    }

    #[test]
    fn hash_then_verify() {
        let hash = hash_password(b"secret").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify(&hash, b"secret"));
        assert!(!verify(&hash, b"Secret"));
        assert!(!verify("not a hash", b"secret"));
    }

    /// The verifier checks each request against its site's list: site 0 inherits the
    /// master users, site 1 has its own (which replaces them).
    #[test]
    fn verifier_uses_the_sessions_site_list() {
        use argon2::{Algorithm, Params, Version};
        // Cheap parameters (8 KiB, 1 pass) keep the debug-build test quick.
        let cheap =
            Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8, 1, 1, None).unwrap());
        let hash = |pw: &[u8]| cheap.hash_password(pw).unwrap().to_string();
        let text = format!(
            "[auth]\nfailure_delay = \"0s\"\n\
             [[user]]\nname = \"master\"\npassword_hash = \"{}\"\n\
             [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
             [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:26\"]\n\
             [[site.user]]\nname = \"bee\"\npassword_hash = \"{}\"\n",
            hash(b"m-pw"),
            hash(b"b-pw"),
        );
        let sys = crate::config::SystemDefaults { hostname: "mx.test".into(), cores: 2 };
        let config = Config::from_toml_str(&text, &sys).unwrap();
        let (client, thread) = spawn(Live::new(Arc::new(config))).unwrap();
        let mut w = WorkerAuth::new(client, Box::new(|| {}));
        let mut table = crate::net::conn_table::ConnTable::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        // (site, user, password, accepted)
        let cases: &[(usize, &str, &[u8], bool)] = &[
            (0, "master", b"m-pw", true),
            (0, "bee", b"b-pw", false),
            (1, "bee", b"b-pw", true),
            (1, "master", b"m-pw", false),
            (1, "bee", b"m-pw", false),
        ];
        for &(site, user, pw, want) in cases {
            let conn = table.insert(());
            assert!(w.submit(conn, site, ip, user, pw));
            let deadline = Instant::now() + Duration::from_secs(30);
            let (mut ready, mut arrived) = (Vec::new(), Vec::new());
            let v = loop {
                w.poll(Instant::now(), &mut ready, &mut arrived);
                if let Some(v) = w.take(conn) {
                    break v;
                }
                assert!(Instant::now() < deadline, "no verdict for {user} on site {site}");
                std::thread::sleep(Duration::from_millis(5));
            };
            assert_eq!((v.ok, v.site), (want, site), "{user} on site {site}");
        }
        drop(w);
        thread.join().unwrap();
    }
}
