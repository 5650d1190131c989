//! The inbound service end to end over loopback: real workers, real spool (temp dir).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::config::{Config, SystemDefaults};
use crate::relay::{self, Running};

fn config(dir: &std::path::Path, workers: usize) -> Config {
    let sys = SystemDefaults { hostname: "mx.test".into(), cores: workers };
    let mut c = Config::embedded_default(&sys);
    c.mailroot = dir.to_path_buf();
    c.workers = workers;
    c.sites[0].listen = vec!["127.0.0.1:0".parse().unwrap()];
    c.limits.shutdown_grace_ms = 2000;
    c.limits.min_free_disk_bytes = 0;
    // These tests look at what was received: keep it in the queue (no delivery).
    c.delivery.hold = true;
    // Tests run in parallel: no admin listener on the fixed default port.
    c.admin.listen = None;
    c
}

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { r: BufReader::new(s.try_clone().unwrap()), w: s }
    }
    /// Read one complete (possibly multi-line) reply; return its last line.
    fn reply(&mut self) -> String {
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            if l.len() < 4 || l.as_bytes()[3] != b'-' {
                return l;
            }
        }
    }
    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).unwrap();
    }
    fn cmd(&mut self, s: &str) -> String {
        self.send(s);
        self.reply()
    }
}

fn addr(r: &Running) -> SocketAddr {
    r.listening()[0].1
}

#[test]
fn message_is_spooled_and_queued() {
    let dir = tempfile::tempdir().unwrap();
    let running = relay::start(config(dir.path(), 2)).unwrap();
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO client.test\r\n").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<a@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("RCPT TO:<b@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("RCPT TO:<b@example.org>\r\n").starts_with("250 "), "loopback may relay");
    assert!(c.cmd("DATA\r\n").starts_with("354 "));
    let done = c.cmd("Subject: t\r\n\r\nhi\r\n..dot\r\n.\r\n");
    assert!(done.starts_with("250 2.0.0"), "{done}");
    // Pipelined: second message and QUIT in one write.
    c.send("MAIL FROM:<>\r\nRCPT TO:<Postmaster>\r\nDATA\r\n");
    assert!(c.reply().starts_with("250 "));
    assert!(c.reply().starts_with("250 "));
    assert!(c.reply().starts_with("354 "));
    c.send("x\r\n.\r\nQUIT\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("221 "));
    running.stopper().stop();
    running.wait().unwrap();

    let queued = crate::spool::scan(&dir.path().join("Queue")).unwrap();
    assert_eq!(queued.len(), 2);
    let first = &queued[0];
    assert_eq!(first.envelope.reverse_path, "a@localhost");
    assert_eq!(first.envelope.recipients.len(), 2);
    assert_eq!(first.envelope.site, "default");
    assert!(first.envelope.client_addr.starts_with("127.0.0.1:"));
    // The message is re-read after a restart (recovery) and starts with our trace header.
    let (spool, recovered) =
        crate::spool::Spool::open(&dir.path().join("Queue"), Default::default()).unwrap();
    assert_eq!(recovered.len(), 2);
    let body = spool.read_message(first.id).unwrap();
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("Received: from client.test ([127.0.0.1])"), "{text}");
    assert!(text.ends_with("Subject: t\r\n\r\nhi\r\n.dot\r\n"), "{text}");
}

#[test]
fn relay_denied_and_connection_control() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1);
    cfg.relay.allow.clear();
    let running = relay::start(cfg).unwrap();
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("HELO x\r\n").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<a@localhost>\r\n").starts_with("250 "));
    assert_eq!(c.cmd("RCPT TO:<b@example.org>\r\n"), "554 5.7.1 Relay access denied\r\n");
    assert_eq!(c.cmd("RCPT TO:<b%example.org@localhost>\r\n"), "554 5.7.1 Relay access denied\r\n");
    assert!(c.cmd("RCPT TO:<b@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("QUIT\r\n").starts_with("221 "));
    running.stopper().stop();
    running.wait().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1);
    cfg.connections.deny = vec!["127.0.0.0/8".parse().unwrap()];
    let running = relay::start(cfg).unwrap();
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("554 5.7.1"));
    running.stopper().stop();
    running.wait().unwrap();
}

#[test]
fn limits_timeout_and_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1);
    cfg.limits.max_connections_per_ip = 1;
    cfg.limits.command_timeout_ms = 300;
    let running = relay::start(cfg).unwrap();
    let mut a = Client::connect(addr(&running));
    assert!(a.reply().starts_with("220 "));
    let mut b = Client::connect(addr(&running));
    assert!(b.reply().starts_with("421 4.7.0"));
    // `a` idles past the command timeout.
    assert!(a.reply().starts_with("421 4.4.2"));
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("220 "));
    running.stopper().stop();
    assert!(c.reply().starts_with("421 4.3.2"));
    running.wait().unwrap();
}

#[test]
fn shutdown_lets_data_in_flight_finish() {
    let dir = tempfile::tempdir().unwrap();
    let running = relay::start(config(dir.path(), 1)).unwrap();
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO x\r\n").starts_with("250 "));
    assert!(c.cmd("MAIL FROM:<a@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("RCPT TO:<b@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("DATA\r\n").starts_with("354 "));
    c.send("Subject: in flight\r\n");
    std::thread::sleep(Duration::from_millis(50));
    let stopper = running.stopper();
    stopper.stop();
    std::thread::sleep(Duration::from_millis(100));
    c.send("\r\nbody\r\n.\r\n");
    assert!(c.reply().starts_with("250 2.0.0"));
    assert!(c.reply().starts_with("421 4.3.2"), "goodbye once idle");
    running.wait().unwrap();
    assert_eq!(crate::spool::scan(&dir.path().join("Queue")).unwrap().len(), 1);
}

#[test]
fn bdat_large_and_oversize_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path(), 1);
    cfg.limits.max_message_size_bytes = 2 * 1024 * 1024;
    let running = relay::start(cfg).unwrap();
    let mut c = Client::connect(addr(&running));
    assert!(c.reply().starts_with("220 "));
    assert!(c.cmd("EHLO x\r\n").starts_with("250 "));
    // BDAT, pipelined with the next transaction.
    c.send("MAIL FROM:<a@localhost>\r\nRCPT TO:<b@localhost>\r\nBDAT 7 LAST\r\nhello\r\n");
    c.send("MAIL FROM:<a@localhost>\r\n");
    assert!(c.reply().starts_with("250 "));
    assert!(c.reply().starts_with("250 "));
    assert!(c.reply().starts_with("250 2.0.0"), "BDAT LAST queued");
    assert!(c.reply().starts_with("250 "), "pipelined MAIL after the commit");
    // 1.5 MiB through DATA: many reads, spool spill.
    assert!(c.cmd("RCPT TO:<b@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("DATA\r\n").starts_with("354 "));
    let line = format!("{}\r\n", "x".repeat(998));
    let big: String = std::iter::repeat_n(line.as_str(), 1536).collect();
    c.send(&big);
    assert!(c.cmd(".\r\n").starts_with("250 2.0.0"));
    // Over the limit: drained, 552, nothing stored.
    assert!(c.cmd("MAIL FROM:<a@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("RCPT TO:<b@localhost>\r\n").starts_with("250 "));
    assert!(c.cmd("DATA\r\n").starts_with("354 "));
    c.send(&big);
    c.send(&big);
    assert!(c.cmd(".\r\n").starts_with("552 5.3.4"));
    assert!(c.cmd("QUIT\r\n").starts_with("221 "));
    running.stopper().stop();
    running.wait().unwrap();
    let queued = crate::spool::scan(&dir.path().join("Queue")).unwrap();
    let sizes: Vec<u64> = queued.iter().map(|m| m.message_bytes).collect();
    assert_eq!(sizes.len(), 2, "{sizes:?}");
    assert!(sizes[1] > big.len() as u64, "{sizes:?}");
}
