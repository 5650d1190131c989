//! End-to-end limits of the real `mailroot` binary: message size (at MAIL via SIZE= and
//! during DATA), recipients per message, messages per connection, connections per IP and in
//! total, idle timeouts, error limit, and 1,000 garbage connections after which the server
//! still accepts mail. Every loop is bounded in count and time; nothing asserts on speed.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Conf, PySend, Raw, Rng, Server, code_text};
use lettre::Transport;
use lettre::address::Envelope;

const LIMIT_BYTES: u64 = 100_000;

fn size_limited() -> Server {
    Server::start(Conf::default().limit("max_message_size", &LIMIT_BYTES.to_string()))
}

#[test]
fn size_param_over_limit_is_refused_at_mail() {
    let srv = size_limited();
    let send = |size: u64| {
        PySend {
            server: &srv,
            from: format!("size{size}@client.test"),
            to: vec!["r@localhost".into()],
            body: b"Subject: s\r\n\r\nsmall\r\n".to_vec(),
            mail_opts: vec![format!("SIZE={size}")],
            source: None,
        }
        .run()
    };
    let big = send(LIMIT_BYTES + 1);
    let (code, text) = code_text(&big["messages"][0]["mail"]);
    assert_eq!(code, 552, "MAIL SIZE over the limit: {text}");
    assert!(text.contains("5.3.4"), "{text}");
    let ok = send(1_000);
    assert_eq!(code_text(&ok["messages"][0]["mail"]).0, 250, "{ok}");
    assert_eq!(code_text(&ok["messages"][0]["data"]).0, 250, "{ok}");
    // The EHLO reply advertises the limit.
    let ehlo = code_text(&ok["ehlo"]).1.to_ascii_uppercase();
    assert!(ehlo.lines().any(|l| l.trim() == format!("SIZE {LIMIT_BYTES}")), "{ehlo}");
    let q = srv.scan();
    assert_eq!(q.len(), 1);
    assert_eq!(q[0].envelope.reverse_path, "size1000@client.test");
}

fn big_body(len: usize) -> Vec<u8> {
    let mut b = b"Subject: big\r\n\r\n".to_vec();
    let line = [b'y'; 78];
    while b.len() < len {
        b.extend_from_slice(&line);
        b.extend_from_slice(b"\r\n");
    }
    b
}

#[test]
fn body_over_limit_is_refused_at_end_of_data_and_not_stored() {
    let srv = size_limited();
    // smtplib, no SIZE= parameter: only the DATA stream shows the size.
    let rep = PySend {
        server: &srv,
        from: "bigpy@client.test".into(),
        to: vec!["r@localhost".into()],
        body: big_body(3 * LIMIT_BYTES as usize),
        mail_opts: vec![],
        source: None,
    }
    .run();
    let (code, text) = code_text(&rep["messages"][0]["data"]);
    assert_eq!(code, 552, "oversize DATA: {text}");
    assert!(text.contains("5.3.4"), "{text}");
    // Same connection goes on: big (refused), then small (accepted).
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r = c.send_message(
        "bigraw@client.test",
        &["r@localhost"],
        &big_body(LIMIT_BYTES as usize + 10),
    );
    assert_eq!(r.code, 552, "{r}");
    let r = c.send_message("small@client.test", &["r@localhost"], b"Subject: s\r\n\r\nok\r\n");
    assert_eq!(r.code, 250, "session continues after 552: {r}");
    let senders: Vec<String> = srv.scan().into_iter().map(|m| m.envelope.reverse_path).collect();
    assert_eq!(senders, ["small@client.test"], "oversize messages must not be stored");
    assert_eq!(srv.queued_senders(), ["small@client.test"]);
}

#[test]
fn recipients_over_limit_get_452_and_message_keeps_the_first_three() {
    let srv = Server::start(Conf::default().limit("max_recipients", "3"));
    let to: Vec<String> = (1..=5).map(|i| format!("r{i}@localhost")).collect();
    let rep = PySend {
        server: &srv,
        from: "many@client.test".into(),
        to: to.clone(),
        body: b"Subject: r\r\n\r\nfive rcpts\r\n".to_vec(),
        mail_opts: vec![],
        source: None,
    }
    .run();
    let rc: Vec<(u16, String)> = rep["messages"][0]["rcpt"]
        .as_array()
        .expect("rcpt replies")
        .iter()
        .map(code_text)
        .collect();
    assert_eq!(rc.len(), 5);
    for (i, (code, text)) in rc.iter().enumerate() {
        if i < 3 {
            assert_eq!(*code, 250, "rcpt {i}: {text}");
        } else {
            assert_eq!(*code, 452, "rcpt {i}: {text}");
            assert!(text.contains("4.5.3"), "rcpt {i}: {text}");
        }
    }
    assert_eq!(code_text(&rep["messages"][0]["data"]).0, 250, "{rep}");
    let q = srv.scan();
    assert_eq!(q.len(), 1);
    let got: Vec<&str> = q[0].envelope.recipients.iter().map(|r| r.forward_path.as_str()).collect();
    assert_eq!(got, ["r1@localhost", "r2@localhost", "r3@localhost"]);
}

#[test]
fn messages_per_connection_limit() {
    let srv = Server::start(Conf::default().limit("max_messages_per_connection", "2"));
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    for i in 0..2 {
        let r = c.send_message(&format!("m{i}@client.test"), &["r@localhost"], b"x\r\n");
        assert_eq!(r.code, 250, "message {i}: {r}");
    }
    // Third: either 452 4.5.3 at MAIL or 421 4.7.0 and close (documented choice).
    c.send(b"MAIL FROM:<m2@client.test>\r\n");
    let r = c.read_reply();
    match r {
        Some(r) if r.code == 452 => assert!(r.text().contains("4.5.3"), "{r}"),
        Some(r) if r.code == 421 => {
            assert!(c.wait_closed(Duration::from_secs(5)), "421 must close the connection")
        }
        other => panic!("third message on a 2-message connection: {other:?}"),
    }
    assert_eq!(srv.scan().len(), 2);
}

/// Open `n` connections from `src` that all got 220; retries while closes of earlier
/// connections are still being processed by the server (bounded).
fn open_greeted(addr: SocketAddr, srcs: &[Ipv4Addr]) -> Vec<Raw> {
    for _ in 0..20 {
        let mut conns = Vec::new();
        let mut all_ok = true;
        for &src in srcs {
            let mut c = Raw::connect_from(src, addr).expect("connect");
            match c.read_reply() {
                Some(r) if r.code == 220 => conns.push(c),
                _ => {
                    all_ok = false;
                    break;
                }
            }
        }
        if all_ok {
            return conns;
        }
        drop(conns);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("could not open {} greeted connections", srcs.len());
}

#[test]
fn third_connection_from_one_ip_gets_421() {
    let srv = Server::start(Conf::default().limit("max_connections_per_ip", "2"));
    let one = Ipv4Addr::LOCALHOST;
    let held = open_greeted(srv.addr(), &[one, one]);
    let mut third = Raw::connect_from(one, srv.addr()).expect("connect");
    let r = third.read_reply().expect("reply to the third connection");
    assert_eq!(r.code, 421, "third connection from one IP: {r}");
    assert!(third.wait_closed(Duration::from_secs(5)), "421 connection must be closed");
    // Another address is not affected.
    let mut other = Raw::connect_from(Ipv4Addr::new(127, 0, 0, 2), srv.addr()).expect("connect");
    assert_eq!(other.read_reply().map(|r| r.code), Some(220));
    // Closing one frees a slot (the server notices the close asynchronously: bounded retry).
    drop(held);
    let again = open_greeted(srv.addr(), &[one]);
    assert_eq!(again.len(), 1);
}

#[test]
fn connections_over_max_connections_get_421() {
    let srv = Server::start(Conf::default().limit("max_connections", "2"));
    let held =
        open_greeted(srv.addr(), &[Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)]);
    let mut third = Raw::connect_from(Ipv4Addr::new(127, 0, 0, 3), srv.addr()).expect("connect");
    let r = third.read_reply();
    match r {
        Some(r) => assert_eq!(r.code, 421, "{r}"),
        None => panic!("over max_connections: expected 421 before close, got nothing"),
    }
    drop(held);
    assert_eq!(open_greeted(srv.addr(), &[Ipv4Addr::new(127, 0, 0, 3)]).len(), 1);
}

#[test]
fn idle_client_gets_421_4_4_2_and_is_closed() {
    let srv = Server::start(Conf::default().limit("command_timeout", "1"));
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let start = Instant::now();
    let r = c.read_reply().expect("timeout reply before close");
    assert_eq!(r.code, 421, "{r}");
    assert!(r.text().contains("4.4.2"), "{r}");
    assert!(c.wait_closed(Duration::from_secs(5)), "connection must close after 421");
    assert!(start.elapsed() >= Duration::from_millis(500), "timed out too early");
    // Mid-command-line (no CRLF yet) idles out too.
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    c.send(b"MAIL FROM:<slow@client");
    let r = c.read_reply().expect("timeout reply");
    assert_eq!(r.code, 421, "{r}");
    assert!(c.wait_closed(Duration::from_secs(5)));
}

#[test]
fn idle_in_data_times_out_and_stores_nothing() {
    let conf = Conf::default().limit("data_timeout", "\"1s\"").limit("command_timeout", "30");
    let srv = Server::start(conf);
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<slowdata@client.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r@localhost>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: half\r\n\r\nthis message never ends\r\n");
    if let Some(r) = c.read_reply() {
        assert_eq!(r.code, 421, "only 421 may come before close: {r}");
    }
    assert!(c.wait_closed(Duration::from_secs(8)), "DATA idle timeout must close");
    assert!(srv.scan().is_empty(), "a timed-out DATA must not be queued");
}

#[test]
fn too_many_errors_get_421() {
    let srv = Server::start(Conf::default().limit("max_errors", "3"));
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let mut codes = Vec::new();
    for _ in 0..10 {
        c.send(b"BOGUS command\r\n");
        match c.read_reply() {
            Some(r) => {
                codes.push(r.code);
                if r.code == 421 {
                    break;
                }
            }
            None => break,
        }
    }
    assert_eq!(codes.last(), Some(&421), "error limit must end with 421: {codes:?}");
    assert!(codes.len() <= 4, "at most max_errors errors before 421: {codes:?}");
    assert!(c.wait_closed(Duration::from_secs(5)));
}

#[test]
fn overlong_command_line_gets_500_and_session_continues() {
    let srv = Server::start(Conf::default());
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let mut line = b"MAIL FROM:<".to_vec();
    line.extend(std::iter::repeat_n(b'a', 50_000));
    line.extend_from_slice(b"@client.test>\r\n");
    c.send(&line);
    let r = c.read_reply().expect("reply to overlong line");
    assert_eq!(r.code, 500, "{r}");
    let r = c.send_message("after@client.test", &["r@localhost"], b"x\r\n");
    assert_eq!(r.code, 250, "{r}");
}

/// One garbage connection; every failure is ignored (the server may close on us any time).
fn garbage_connection(addr: SocketAddr, rng: &mut Rng) {
    let Ok(mut c) = Raw::connect_from_timeout(Ipv4Addr::LOCALHOST, addr, Duration::from_secs(2))
    else {
        return;
    };
    let _ = c.stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = c.stream.set_write_timeout(Some(Duration::from_secs(2)));
    match rng.below(9) {
        0 => {} // connect and vanish
        1 => {
            let n = 1 + rng.below(4096) as usize;
            let junk = rng.bytes(n);
            c.send(&junk);
            let _ = c.read_line();
        }
        2 => c.send(b"MAIL FROM:<half@line"), // half a line, then close
        3 => {
            c.send(b"\0\0\0HELO \0x\0\r\nEHLO a\0b\r\n\0\r\n");
            let _ = c.read_line();
        }
        4 => {
            let mut l = vec![b'A'; 2_000 + rng.below(30_000) as usize];
            l.extend_from_slice(b"\r\n");
            c.send(&l);
            let _ = c.read_line();
        }
        5 => {
            // Abrupt close in the middle of DATA.
            c.send(b"EHLO g\r\nMAIL FROM:<g@g.test>\r\nRCPT TO:<r@localhost>\r\nDATA\r\n");
            let n = rng.below(20_000) as usize;
            let body = rng.bytes(n);
            c.send(&body);
        }
        6 => {
            // RST instead of FIN.
            let _ = socket2::SockRef::from(&c.stream).set_linger(Some(Duration::ZERO));
            let junk = rng.bytes(64);
            c.send(&junk);
        }
        7 => {
            // Many short garbage lines (error limit) with stray CR/LF.
            let mut buf = Vec::new();
            for _ in 0..(1 + rng.below(40)) {
                let n = rng.below(60) as usize;
                buf.extend(rng.bytes(n));
                buf.extend_from_slice(if rng.below(2) == 0 { b"\r\n" } else { b"\n" });
            }
            c.send(&buf);
            let _ = c.read_line();
        }
        _ => {
            // Valid prefix, then protocol violations.
            c.send(
                b"EHLO x\r\nDATA\r\nRCPT TO:<a@b>\r\nMAIL FROM:<>\r\nMAIL FROM:<>\r\nBDAT x\r\n",
            );
            let _ = c.read_line();
        }
    }
}

#[test]
fn a_thousand_garbage_connections_then_clean_mail_is_accepted() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 250;
    const WALL_LIMIT: Duration = Duration::from_secs(60); // a bound, not a speed assertion
    let mut srv = Server::start(Conf::default().limit("command_timeout", "5"));
    let addr = srv.addr();
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + WALL_LIMIT;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let done = Arc::clone(&done);
            std::thread::spawn(move || {
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (t + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
                for _ in 0..PER_THREAD {
                    if Instant::now() >= deadline {
                        break;
                    }
                    garbage_connection(addr, &mut rng);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("garbage thread");
    }
    eprintln!("garbage connections made: {}", done.load(Ordering::Relaxed));
    assert!(srv.is_alive(), "server died under garbage:\n{}", srv.log_tail(4000));
    // A clean message via lettre is still accepted (bounded retry: per-IP slots of the
    // garbage connections are released asynchronously).
    let env = Envelope::new(
        Some("clean@client.test".parse().expect("addr")),
        vec!["r@localhost".parse().expect("addr")],
    )
    .expect("envelope");
    let mailer = srv.lettre();
    let sent = common::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        mailer.send_raw(&env, b"Subject: clean\r\n\r\nstill alive\r\n").ok()
    });
    assert!(sent.is_some(), "clean message refused after garbage");
    assert!(srv.is_alive());
    let senders = srv.queued_senders();
    assert_eq!(senders, ["clean@client.test"], "garbage must never produce a queued message");
}
