//! A real HAProxy (the Debian package) for the load-balancer tests: `haproxy -db -f FILE`
//! in the foreground, killed and reaped when the guard drops. Tests call
//! [`haproxy_missing`] first and skip, saying why, when it is not installed.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `haproxy -db`, killed on drop.
pub(crate) struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `Some(reason)` when `haproxy` cannot be run (the test should print it and return).
pub(crate) fn haproxy_missing() -> Option<&'static str> {
    match Command::new("haproxy").arg("-v").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("SKIPPED: haproxy is not installed (apt-get install haproxy)"),
    }
}

/// Write `cfg` to `<dir>/haproxy.cfg`, start HAProxy on it, and wait (bounded) until each
/// of `ports` on 127.0.0.1 accepts a connection. Its log goes to `<dir>/haproxy.log`.
pub(crate) fn start_haproxy(dir: &Path, cfg: &str, ports: &[u16]) -> Haproxy {
    let path = dir.join("haproxy.cfg");
    std::fs::write(&path, cfg).expect("write haproxy.cfg");
    let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy.log");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup log"))
        .stderr(log)
        .spawn()
        .expect("spawn haproxy");
    let h = Haproxy(child);
    for &port in ports {
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let up = super::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()
        });
        assert!(up.is_some(), "haproxy did not listen on {addr}");
    }
    h
}
