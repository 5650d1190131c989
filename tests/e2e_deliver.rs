//! End-to-end delivery: the real `mailroot` binary relays to a real SMTP sink
//! (`tests/common_sink`), routes by MX through a real DNS server (`tests/common_dns`),
//! writes Drop files, NDRs and Badmail. Loopback only: MX hosts resolve to 127.0.0.x
//! addresses where a sink listens, and `[delivery] port` points at the sink's port.
//! Every wait is bounded.

mod common;
mod common_dns;
mod common_sink;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use common_dns::{DnsServer, Zone};
use common_sink::Sink;
use mail_parser::MimeHeaders;

/// How long a delivery may take in these tests (generous: CI is slow).
const DELIVERY_WAIT: Duration = Duration::from_secs(30);
/// Poll step.
const STEP: Duration = Duration::from_millis(25);

/// A test message with a unique Message-ID.
fn message(tag: &str) -> Vec<u8> {
    format!(
        "From: <alice@sender.test>\r\nTo: <bob@dest.test>\r\nSubject: {tag}\r\n\
         Message-ID: <{tag}@e2e.test>\r\n\r\nHello {tag}.\r\n.dot line\r\n"
    )
    .into_bytes()
}

/// Send one message over a fresh connection; panics unless it is queued.
fn send(srv: &Server, from: &str, to: &[&str], content: &[u8]) {
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r = c.send_message(from, to, &dot_stuff(content));
    assert_eq!(r.code, 250, "not queued: {r}");
    let _ = c.cmd("QUIT");
}

/// A configuration that relays: delivery section, DNS section, local domains.
fn conf(relay_extra: &str, extra: &str, local: &[&str]) -> Conf {
    Conf {
        relay_extra: relay_extra.into(),
        extra: extra.into(),
        local_domains: local.iter().map(|s| s.to_string()).collect(),
        ..Conf::default()
    }
}

/// `[delivery]` with a short retry schedule, sending to `port`, and `[dns]` pointing at
/// `dns` (or at a dead local port, so nothing ever leaves the machine).
fn delivery(port: u16, dns: Option<&DnsServer>, more: &str) -> String {
    let dns = dns.map_or("127.0.0.1:9".to_string(), |d| d.addr.to_string());
    let retry = if more.contains("retry") { "" } else { "retry = [\"1s\"]\n" };
    format!(
        "\n[delivery]\n{retry}port = {port}\nconnect_timeout = \"2s\"\n{more}\n\
         [dns]\nservers = [\"{dns}\"]\ntimeout = \"500ms\"\nattempts = 1\n"
    )
}

/// Messages in `dir` (Drop or Badmail), sorted by name.
fn files_in(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    // Temporary files (`.tmp-*`) are not finished files.
    v.retain(|p| {
        p.extension().is_some_and(|e| e == ext)
            && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
    });
    v.sort();
    v
}

/// Wait until the sink holds `n` messages.
fn wait_sink(sink: &Sink, n: usize, srv: &Server) -> Vec<common_sink::Received> {
    wait_until(DELIVERY_WAIT, STEP, || {
        let r = sink.received();
        (r.len() >= n).then_some(r)
    })
    .unwrap_or_else(|| {
        panic!(
            "sink got {} of {n} messages\n--- log ---\n{}",
            sink.received().len(),
            srv.log_tail(6000)
        )
    })
}

/// Wait until `n` files with extension `ext` are in `dir`.
fn wait_files(dir: &Path, ext: &str, n: usize, srv: &Server) -> Vec<PathBuf> {
    wait_until(DELIVERY_WAIT, STEP, || {
        let f = files_in(dir, ext);
        (f.len() >= n).then_some(f)
    })
    .unwrap_or_else(|| {
        panic!("{n} .{ext} files not in {}\n--- log ---\n{}", dir.display(), srv.log_tail(6000))
    })
}

/// Wait until the queue is empty.
fn wait_queue_empty(srv: &Server) {
    let ok = wait_until(DELIVERY_WAIT, STEP, || srv.scan().is_empty().then_some(()));
    assert!(ok.is_some(), "queue not empty: {:?}\n{}", srv.scan(), srv.log_tail(6000));
}

/// The content as the sink (or Drop) sees it ends with exactly what we sent.
fn assert_carries(data: &[u8], content: &[u8]) {
    assert!(data.ends_with(content), "content changed:\n{}", String::from_utf8_lossy(data));
    assert!(data.starts_with(b"Received: "), "our Received header comes first");
}

/// The parts of an NDR in a Drop file: (human text, delivery-status text, whole text).
fn parse_ndr(path: &Path) -> (String, String, String) {
    let bytes = fs::read(path).unwrap();
    // Skip the x-sender / x-receiver lines of the Drop format.
    let mut start = 0;
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b"x-sender:") || line.starts_with(b"x-receiver:") {
            start += line.len();
        } else {
            break;
        }
    }
    let msg = mail_parser::MessageParser::default().parse(&bytes[start..]).expect("NDR parses");
    let ct = msg.content_type().expect("content type");
    assert_eq!(ct.c_type.as_ref(), "multipart");
    assert_eq!(ct.subtype(), Some("report"));
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    let human = msg.body_text(0).map(|s| s.into_owned()).unwrap_or_default();
    let status = msg
        .parts
        .iter()
        .find(|p| p.content_type().is_some_and(|c| c.subtype() == Some("delivery-status")))
        .map(|p| String::from_utf8_lossy(p.contents()).into_owned())
        .expect("a message/delivery-status part");
    (human, status, String::from_utf8_lossy(&bytes).into_owned())
}

#[test]
fn relays_by_smart_host_and_empties_the_queue() {
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost"]));
    let content = message("smart");
    send(&srv, "alice@sender.test", &["bob@dest.test"], &content);
    let got = wait_sink(&sink, 1, &srv);
    assert_eq!(got[0].mail_from, "alice@sender.test");
    assert_eq!(got[0].rcpts, ["bob@dest.test"]);
    assert_carries(&got[0].data, &content);
    wait_queue_empty(&srv);
}

/// Large messages go out from the task's shared copy in verbatim runs written with
/// `writev` (issue 15): two of them, with leading dots, arrive byte-exact.
#[test]
fn large_messages_with_leading_dots_relay_byte_exact() {
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost"]));
    let contents: Vec<Vec<u8>> = (0..2)
        .map(|m| {
            let mut c = message(&format!("large{m}"));
            for i in 0..12_000 {
                let dot = if i % (700 + m) == 0 { "." } else { "" };
                c.extend_from_slice(format!("{dot}{m} line {i:05} la de da de da\r\n").as_bytes());
            }
            c
        })
        .collect();
    for c in &contents {
        send(&srv, "alice@sender.test", &["bob@dest.test"], c);
    }
    let got = wait_sink(&sink, 2, &srv);
    let mut seen: Vec<bool> = contents.iter().map(|_| false).collect();
    for g in &got {
        let k = contents.iter().position(|c| g.data.ends_with(c)).expect("a sent message");
        assert_carries(&g.data, &contents[k]);
        seen[k] = true;
    }
    assert_eq!(seen, [true, true]);
    wait_queue_empty(&srv);
}

#[test]
fn relays_by_mx_host_table_and_domain_rule() {
    let mx_sink = Sink::start("127.0.0.2");
    let port = mx_sink.port();
    let hosts_sink = Sink::start_on(&format!("127.0.0.3:{port}"));
    let rule_sink = Sink::start("127.0.0.4");
    let dns =
        DnsServer::start(Zone::parse("mx.test MX 10 mail.mx.test\nmail.mx.test A 127.0.0.2\n"));
    let extra = format!(
        "{}\n[hosts]\n\"hosts.test\" = [\"127.0.0.3\"]\n\n[[domain]]\nname = \"*.rule.test\"\n\
         smart_host = \"[127.0.0.4]:{}\"\n",
        delivery(port, Some(&dns), ""),
        rule_sink.port()
    );
    let srv = Server::start(conf("", &extra, &["localhost"]));
    let (a, b, c) = (message("by-mx"), message("by-hosts"), message("by-rule"));
    send(&srv, "alice@sender.test", &["x@mx.test"], &a);
    send(&srv, "alice@sender.test", &["y@hosts.test"], &b);
    send(&srv, "alice@sender.test", &["z@a.rule.test"], &c);
    assert_carries(&wait_sink(&mx_sink, 1, &srv)[0].data, &a);
    assert_carries(&wait_sink(&hosts_sink, 1, &srv)[0].data, &b);
    assert_carries(&wait_sink(&rule_sink, 1, &srv)[0].data, &c);
    wait_queue_empty(&srv);
}

#[test]
fn attempt_direct_first_falls_back_to_the_smart_host() {
    let smart = Sink::start("127.0.0.1");
    // The MX resolves to 127.0.0.5, where nothing listens on the delivery port.
    let dead_port = free_port();
    let dns = DnsServer::start(Zone::parse(
        "direct.test MX 10 mx.direct.test\nmx.direct.test A 127.0.0.5\n",
    ));
    let relay =
        format!("smart_host = \"[127.0.0.1]:{}\"\nattempt_direct_first = true", smart.port());
    let srv = Server::start(conf(&relay, &delivery(dead_port, Some(&dns), ""), &["localhost"]));
    let content = message("direct-first");
    send(&srv, "alice@sender.test", &["q@direct.test"], &content);
    assert_carries(&wait_sink(&smart, 1, &srv)[0].data, &content);
}

#[test]
fn reuses_one_connection_for_several_messages() {
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(
        &relay,
        &delivery(25, None, "max_connections_per_domain = 1"),
        &["localhost"],
    ));
    // Hold the first reply so the next messages queue up behind the one connection.
    sink.set_data_delay(Duration::from_millis(200));
    for i in 0..5 {
        send(&srv, "alice@sender.test", &["bob@dest.test"], &message(&format!("reuse-{i}")));
    }
    let got = wait_sink(&sink, 5, &srv);
    assert_eq!(sink.connections(), 1, "5 messages over one connection: {got:?}");
}

#[test]
fn respects_the_per_destination_limit() {
    let sink = Sink::start("127.0.0.1");
    sink.set_data_delay(Duration::from_millis(300));
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(
        &relay,
        &delivery(25, None, "max_connections_per_domain = 2\nmax_messages_per_connection = 1"),
        &["localhost"],
    ));
    for i in 0..8 {
        send(&srv, "alice@sender.test", &["bob@dest.test"], &message(&format!("limit-{i}")));
    }
    wait_sink(&sink, 8, &srv);
    assert!(sink.max_concurrent() <= 2, "max concurrent {}", sink.max_concurrent());
    assert!(sink.connections() >= 4, "one message per connection: {}", sink.connections());
}

#[test]
fn temporary_failure_is_retried_and_delivered() {
    let sink = Sink::start("127.0.0.1");
    sink.script("later@dest.test", &[451]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost"]));
    send(&srv, "alice@sender.test", &["later@dest.test"], &message("retry"));
    let got = wait_sink(&sink, 1, &srv);
    assert_eq!(got[0].rcpts, ["later@dest.test"]);
    assert!(sink.rcpt_seen() >= 2);
    wait_queue_empty(&srv);
}

#[test]
fn queue_list_shows_attempts_next_retry_and_last_error() {
    let sink = Sink::start("127.0.0.1");
    sink.script("wait@dest.test", &[451; 10]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, "retry = [\"1h\"]"), &["localhost"]));
    send(&srv, "alice@sender.test", &["wait@dest.test"], &message("listed"));
    let rcpt = wait_until(DELIVERY_WAIT, STEP, || {
        let list = srv.queue_list();
        let r = list.first()?.get("recipients")?.get(0)?.clone();
        (r.get("attempts").and_then(serde_json::Value::as_u64) == Some(1)).then_some(r)
    })
    .unwrap_or_else(|| panic!("no attempt listed: {:?}\n{}", srv.queue_list(), srv.log_tail(4000)));
    assert_eq!(rcpt["status"], "pending");
    let err = rcpt["last_error"].as_str().unwrap_or_default();
    assert!(err.contains("451 4.7.1"), "{err}");
    assert!(rcpt["next_retry"].as_str().is_some_and(|t| t.ends_with('Z')), "{rcpt}");
}

#[test]
fn permanent_failure_yields_a_parsable_ndr() {
    let sink = Sink::start("127.0.0.1");
    sink.script("nobody@dest.test", &[550]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    // The sender's domain is local: the NDR lands in Drop/.
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    let content = message("ndr");
    send(&srv, "alice@home.test", &["nobody@dest.test", "bob@dest.test"], &content);
    let got = wait_sink(&sink, 1, &srv);
    assert_eq!(got[0].rcpts, ["bob@dest.test"]);
    let drop = srv.mailroot.join("Drop");
    let files = wait_files(&drop, "eml", 1, &srv);
    let (human, status, whole) = parse_ndr(&files[0]);
    assert!(whole.starts_with("x-sender: \r\nx-receiver: alice@home.test\r\n"), "{whole}");
    assert!(human.contains("nobody@dest.test"), "{human}");
    assert!(human.contains("user unknown here"), "{human}");
    assert!(status.contains("Final-Recipient: rfc822; nobody@dest.test"), "{status}");
    assert!(status.contains("Action: failed"), "{status}");
    assert!(status.contains("Status: 5.1.1"), "{status}");
    assert!(status.contains("Diagnostic-Code: smtp; 550 5.1.1"), "{status}");
    assert!(!status.contains("bob@dest.test"), "delivered recipient is not reported");
    assert!(whole.contains("Subject: ndr"), "original headers returned");
    wait_queue_empty(&srv);
}

#[test]
fn expiry_yields_an_ndr() {
    let sink = Sink::start("127.0.0.1");
    sink.script("slow@dest.test", &[451; 100]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(
        &relay,
        &delivery(25, None, "expire = \"3s\""),
        &["localhost", "home.test"],
    ));
    send(&srv, "alice@home.test", &["slow@dest.test"], &message("expire"));
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (_, status, _) = parse_ndr(&files[0]);
    assert!(status.contains("Status: 4.4.7"), "{status}");
    assert!(status.contains("slow@dest.test"), "{status}");
    wait_queue_empty(&srv);
}

#[test]
fn notify_never_and_success_are_honoured() {
    let sink = Sink::start("127.0.0.1");
    sink.script("never@dest.test", &[550]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    let mut c = Raw::connect(srv.addr()).unwrap();
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<alice@home.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<never@dest.test> NOTIFY=NEVER").code, 250);
    assert_eq!(c.cmd("RCPT TO:<ok@dest.test> NOTIFY=SUCCESS").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(&dot_stuff(&message("notify")));
    c.send(b".\r\n");
    assert_eq!(c.read_reply().unwrap().code, 250);
    wait_sink(&sink, 1, &srv);
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    wait_queue_empty(&srv);
    // Exactly one report: the success DSN for ok@; nothing for never@.
    let files_now = files_in(&srv.mailroot.join("Drop"), "eml");
    assert_eq!(files_now.len(), 1, "{files:?}");
    let (_, status, _) = parse_ndr(&files_now[0]);
    assert!(status.contains("Action: delivered"), "{status}");
    assert!(status.contains("ok@dest.test"), "{status}");
    assert!(!status.contains("never@dest.test"), "{status}");
}

#[test]
fn null_sender_failure_goes_to_badmail() {
    let sink = Sink::start("127.0.0.1");
    sink.script("gone@dest.test", &[550]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost"]));
    send(&srv, "", &["gone@dest.test"], &message("badmail"));
    let bad = wait_files(&srv.mailroot.join("Badmail"), "BAD", 1, &srv);
    let bdr = fs::read_to_string(bad[0].with_extension("BDR")).unwrap();
    assert!(bdr.contains("550"), "{bdr}");
    assert!(fs::read(&bad[0]).unwrap().ends_with(&message("badmail")));
    wait_queue_empty(&srv);
}

#[test]
fn loop_to_self_is_cannot_connect_to_self() {
    let mut srv = Server::start(conf("", &delivery(25, None, ""), &["localhost", "home.test"]));
    // Now that the port is known, make our own address the smart host.
    srv.conf.relay_extra = format!("smart_host = \"[127.0.0.1]:{}\"", srv.port);
    srv.restart();
    send(&srv, "alice@home.test", &["far@dest.test"], &message("self"));
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (human, status, _) = parse_ndr(&files[0]);
    assert!(human.contains("Cannot connect to self"), "{human}");
    assert!(status.contains("Status: 5.4.6"), "{status}");
    assert!(!human.to_lowercase().contains("connection to host failed"));
}

#[test]
fn greeting_naming_us_is_a_loop() {
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    sink.set_greeting_name(&srv.hostname);
    send(&srv, "alice@home.test", &["far@dest.test"], &message("self-greeting"));
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (human, status, _) = parse_ndr(&files[0]);
    assert!(human.contains("Cannot connect to self"), "{human}");
    assert!(status.contains("Status: 5.4.6"), "{status}");
    assert!(sink.received().is_empty());
}

#[test]
fn too_many_hops_is_a_routing_loop() {
    let sink = Sink::start("127.0.0.1");
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"\nmax_hop_count = 5", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    let mut content = b"Received: from a by b; Sat, 28 Nov 2026 10:00:00 +0000\r\n".repeat(5);
    content.extend_from_slice(&message("hops"));
    send(&srv, "alice@home.test", &["far@dest.test"], &content);
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (human, status, _) = parse_ndr(&files[0]);
    assert!(human.contains("routing loop detected"), "{human}");
    assert!(status.contains("Status: 5.4.6"), "{status}");
    assert!(sink.received().is_empty());
}

#[test]
fn drop_files_are_byte_exact() {
    let srv = Server::start(conf("", &delivery(25, None, ""), &["localhost", "local.test"]));
    let content = message("drop");
    send(&srv, "alice@sender.test", &["u1@local.test", "u2@local.test"], &content);
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let bytes = fs::read(&files[0]).unwrap();
    let head = b"x-sender: alice@sender.test\r\nx-receiver: u1@local.test\r\nx-receiver: u2@local.test\r\n";
    assert!(bytes.starts_with(head), "{}", String::from_utf8_lossy(&bytes));
    let rest = &bytes[head.len()..];
    assert_carries(rest, &content);
    let (received, after) = split_received(rest);
    assert!(!received.is_empty());
    assert_eq!(after, &content[..]);
    wait_queue_empty(&srv);
}

#[test]
fn flush_retries_now() {
    let sink = Sink::start("127.0.0.1");
    sink.script("flush@dest.test", &[451]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, "retry = [\"1h\"]"), &["localhost"]));
    send(&srv, "alice@sender.test", &["flush@dest.test"], &message("flush"));
    wait_until(DELIVERY_WAIT, STEP, || (sink.rcpt_seen() >= 1).then_some(()))
        .expect("first attempt");
    std::thread::sleep(Duration::from_millis(300));
    assert!(sink.received().is_empty());
    assert_success(&mailroot_with_config(&["queue", "flush"], &srv.config_path), "queue flush");
    wait_sink(&sink, 1, &srv);
}

#[test]
fn kill_during_delivery_loses_nothing() {
    let sink = Sink::start("127.0.0.1");
    sink.set_data_delay(Duration::from_millis(100));
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let mut srv = Server::start(conf(
        &relay,
        &delivery(25, None, "max_connections_per_domain = 1"),
        &["localhost"],
    ));
    let n = 20;
    for i in 0..n {
        send(&srv, "alice@sender.test", &["bob@dest.test"], &message(&format!("crash-{i}")));
    }
    wait_until(DELIVERY_WAIT, STEP, || (!sink.received().is_empty()).then_some(()))
        .expect("delivery started");
    if let Some(pid) = srv.pid() {
        send_signal(pid, libc::SIGKILL);
    }
    let _ = srv.wait_exit(Duration::from_secs(10));
    srv.restart();
    let all = wait_until(DELIVERY_WAIT, STEP, || {
        let got = sink.received();
        let ids: std::collections::HashSet<String> = got
            .iter()
            .filter_map(|m| {
                let t = String::from_utf8_lossy(&m.data).into_owned();
                t.lines().find(|l| l.starts_with("Subject: ")).map(|l| l.to_string())
            })
            .collect();
        (ids.len() == n).then_some(ids)
    });
    assert!(
        all.is_some(),
        "not every message arrived: {}\n{}",
        sink.received().len(),
        srv.log_tail(6000)
    );
    wait_queue_empty(&srv);
}

#[test]
fn next_mx_after_refused_greeting_and_dead_host() {
    // MX 10: a sink that answers 421 to the greeting; MX 20: nothing listens;
    // MX 30: the sink that takes the mail.
    let busy = Sink::start("127.0.0.6");
    busy.set_greeting_code(421);
    let port = busy.port();
    let good = Sink::start_on(&format!("127.0.0.8:{port}"));
    let dns = DnsServer::start(Zone::parse(
        "multi.test MX 10 a.multi.test\nmulti.test MX 20 b.multi.test\n\
         multi.test MX 30 c.multi.test\na.multi.test A 127.0.0.6\n\
         b.multi.test A 127.0.0.7\nc.multi.test A 127.0.0.8\n",
    ));
    let srv = Server::start(conf("", &delivery(port, Some(&dns), ""), &["localhost"]));
    let content = message("next-mx");
    send(&srv, "alice@sender.test", &["m@multi.test"], &content);
    assert_carries(&wait_sink(&good, 1, &srv)[0].data, &content);
    assert!(busy.connections() >= 1, "the first MX was tried");
    assert!(busy.received().is_empty());
}

#[test]
fn null_mx_bounces_with_5_1_10() {
    let dns = DnsServer::start(Zone::parse("nomail.test MX 0 .\n"));
    let srv = Server::start(conf("", &delivery(25, Some(&dns), ""), &["localhost", "home.test"]));
    send(&srv, "alice@home.test", &["x@nomail.test"], &message("nullmx"));
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (_, status, _) = parse_ndr(&files[0]);
    assert!(status.contains("Status: 5.1.10"), "{status}");
    wait_queue_empty(&srv);
}

#[test]
fn masquerade_rewrites_the_sender_domain_and_ndr_copy_goes_out() {
    let sink = Sink::start("127.0.0.1");
    sink.script("no@dest.test", &[550]);
    let relay = format!(
        "smart_host = \"[127.0.0.1]:{}\"\nmasquerade_domain = \"corp.test\"\n\
         send_ndr_copy_to = \"postmaster@home.test\"",
        sink.port()
    );
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    send(&srv, "alice@internal.test", &["ok@dest.test", "no@dest.test"], &message("masq"));
    let got = wait_sink(&sink, 2, &srv);
    // The original goes out with the masqueraded sender ...
    let orig = got.iter().find(|m| m.rcpts == ["ok@dest.test"]).expect("original relayed");
    assert_eq!(orig.mail_from, "alice@corp.test");
    // ... the NDR goes to the (unmasqueraded) sender by the smart host, with a null sender,
    let ndr = got.iter().find(|m| m.rcpts.contains(&"alice@internal.test".to_string()));
    let ndr = ndr.expect("NDR relayed to the sender");
    assert_eq!(ndr.mail_from, "");
    // ... and its copy lands in Drop (home.test is local).
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (_, status, whole) = parse_ndr(&files[0]);
    assert!(whole.contains("x-receiver: postmaster@home.test"), "{whole}");
    assert!(status.contains("no@dest.test"), "{status}");
}

#[test]
fn delay_dsn_after_delay_notify() {
    let sink = Sink::start("127.0.0.1");
    sink.script("slow@dest.test", &[451; 100]);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let mut srv = Server::start(conf(
        &relay,
        &delivery(25, None, "delay_notify = \"2s\""),
        &["localhost", "home.test"],
    ));
    let mut c = Raw::connect(srv.addr()).unwrap();
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<alice@home.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<slow@dest.test> NOTIFY=DELAY,FAILURE").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(&dot_stuff(&message("delay")));
    c.send(b".\r\n");
    assert_eq!(c.read_reply().unwrap().code, 250);
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (_, status, _) = parse_ndr(&files[0]);
    assert!(status.contains("Action: delayed"), "{status}");
    assert!(status.contains("slow@dest.test"), "{status}");
    // Still queued: a delay notice is not a bounce.
    assert_eq!(srv.scan().len(), 1);
    // Killed and started again: the message is recovered and tried again (451), and its
    // state file says the notice went out, so none is sent twice (its 2 s are long past:
    // without that line a second notice would be due at once).
    srv.restart();
    let tried = sink.rcpt_seen();
    let again = wait_until(DELIVERY_WAIT, STEP, || (sink.rcpt_seen() > tried).then_some(()));
    assert!(again.is_some(), "not tried after the restart\n{}", srv.log_tail(4000));
    std::thread::sleep(Duration::from_secs(2));
    let drops = files_in(&srv.mailroot.join("Drop"), "eml");
    assert_eq!(drops.len(), 1, "a second delay notice: {drops:?}\n{}", srv.log_tail(4000));
}

#[test]
fn eight_bit_content_to_a_7bit_hop_bounces_5_6_3() {
    let sink = Sink::start("127.0.0.1");
    sink.without_8bitmime();
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let srv = Server::start(conf(&relay, &delivery(25, None, ""), &["localhost", "home.test"]));
    let mut c = Raw::connect(srv.addr()).unwrap();
    c.hello();
    assert_eq!(c.cmd("MAIL FROM:<alice@home.test> BODY=8BITMIME").code, 250);
    assert_eq!(c.cmd("RCPT TO:<u@dest.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send("Subject: caf\u{e9}\r\n\r\nd\u{e9}j\u{e0} vu\r\n".as_bytes());
    c.send(b".\r\n");
    assert_eq!(c.read_reply().unwrap().code, 250);
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 1, &srv);
    let (_, status, _) = parse_ndr(&files[0]);
    assert!(status.contains("Status: 5.6.3"), "{status}");
    assert!(sink.received().is_empty());
    wait_queue_empty(&srv);
}

/// The value of an unlabelled sample on the admin listener's `/metrics`.
fn metric(srv: &Server, name: &str) -> Option<f64> {
    let (_, _, body) = srv.admin_get("/metrics");
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// Wait until at least `n` messages are parked and `also` holds; panics with the log if not.
fn wait_parked(srv: &Server, n: usize, also: impl Fn() -> bool) {
    let ok = wait_until(DELIVERY_WAIT, STEP, || {
        let p = metric(srv, "mailroot_queue_parked_messages")?;
        (p >= n as f64 && also()).then_some(())
    });
    let p = metric(srv, "mailroot_queue_parked_messages");
    assert!(ok.is_some(), "parked {p:?}, want {n}\n{}", srv.log_tail(6000));
}

/// The recipients of every message the sink got, sorted, equal `want` (any order).
fn assert_rcpts(got: &[common_sink::Received], want: &[String]) {
    let mut seen: Vec<String> = got.iter().flat_map(|m| m.rcpts.clone()).collect();
    seen.sort();
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn deferred_mail_beyond_the_active_limit_is_parked_and_keeps_its_retry_schedule() {
    const N: usize = 12;
    let sink = Sink::start("127.0.0.1");
    let rcpts: Vec<String> = (0..N).map(|i| format!("r{i}@dest.test")).collect();
    for r in &rcpts {
        sink.script(r, &[451, 451]);
    }
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    // Three in memory at once; after two failures a message waits an hour.
    let more = "retry = [\"1s\", \"1h\"]\nactive_limit = 3";
    let srv = Server::start(conf(&relay, &delivery(25, None, more), &["localhost"]));
    for r in &rcpts {
        send(&srv, "alice@sender.test", &[r.as_str()], &message(r));
    }
    // Every message gets its two attempts although only three fit in at a time, and then
    // all twelve are parked (out of memory) for their hour.
    wait_parked(&srv, N, || sink.rcpt_seen() >= 2 * N);
    assert_eq!(metric(&srv, "mailroot_queue_parked_messages"), Some(N as f64));
    assert_eq!(metric(&srv, "mailroot_queue_retry_messages"), Some(N as f64));
    // Parking kept each one's failure count: the next try is the 1 h one, not another
    // 1 s one (which the sink would accept).
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(sink.rcpt_seen(), 2 * N, "no third attempt before the hour");
    assert!(sink.received().is_empty());
    let list = srv.queue_list();
    assert_eq!(list.len(), N);
    for m in &list {
        assert_eq!(m["recipients"][0]["attempts"], 2, "{m}");
    }
    // A flush brings parked mail back at once, through the same limit.
    assert_success(&mailroot_with_config(&["queue", "flush"], &srv.config_path), "queue flush");
    assert_rcpts(&wait_sink(&sink, N, &srv), &rcpts);
    wait_queue_empty(&srv);
    assert_eq!(metric(&srv, "mailroot_queue_parked_messages"), Some(0.0));
}

#[test]
fn a_dead_next_hop_gets_one_probe_per_backoff_while_its_mail_is_parked() {
    const N: usize = 20;
    let sink = Sink::start("127.0.0.1");
    sink.set_greeting_code(421);
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    // Backoff of the dead destination: 1 s, then 2 s (the retry intervals).
    let more = "retry = [\"1s\", \"2s\"]";
    let srv = Server::start(conf(&relay, &delivery(25, None, more), &["localhost"]));
    // The first 421 marks the destination dead (the runner has its report once that
    // message is parked: the same report marked the destination)...
    send(&srv, "alice@sender.test", &["bob@dest.test"], &message("first"));
    wait_parked(&srv, 1, || sink.connections() >= 1);
    // ...so what comes next is held, then parked until it answers: none waits in memory.
    let start = std::time::Instant::now();
    let before = sink.connections();
    for i in 1..N {
        send(&srv, "alice@sender.test", &["bob@dest.test"], &message(&format!("dead{i}")));
    }
    wait_parked(&srv, N - 1, || true);
    std::thread::sleep(Duration::from_secs(6));
    // One probe per wake-up (at least 1 s, then 2 s apart), never the whole queue: the
    // wake-ups that fit in the time, plus one of slack.
    let probes = sink.connections() - before;
    let secs = start.elapsed().as_secs_f64();
    let wakes = 1 + ((secs - 1.0) / 2.0).max(0.0) as usize;
    assert!(probes <= wakes + 1, "{probes} connections in {secs:.1} s\n{}", srv.log_tail(6000));
    // It answers again: a probe gets through and all the parked mail follows.
    sink.set_greeting_code(220);
    let got = wait_sink(&sink, N, &srv);
    assert_eq!(got.len(), N);
    wait_queue_empty(&srv);
    assert_eq!(metric(&srv, "mailroot_queue_parked_messages"), Some(0.0));
}

#[test]
fn parked_mail_survives_kill_9_and_comes_back_through_the_limit() {
    const N: usize = 6;
    let sink = Sink::start("127.0.0.1");
    let rcpts: Vec<String> = (0..N).map(|i| format!("k{i}@dest.test")).collect();
    for r in &rcpts {
        sink.script(r, &[451]);
    }
    let relay = format!("smart_host = \"[127.0.0.1]:{}\"", sink.port());
    let more = "retry = [\"1h\"]\nactive_limit = 2";
    let mut srv = Server::start(conf(&relay, &delivery(25, None, more), &["localhost"]));
    for r in &rcpts {
        send(&srv, "alice@sender.test", &[r.as_str()], &message(r));
    }
    // One failure each, then parked for an hour.
    wait_parked(&srv, N, || sink.rcpt_seen() >= N);
    // SIGKILL: nothing parked was only in memory. After the restart every message is
    // recovered (a restart retries at once), two at a time, and delivered.
    srv.restart();
    assert_rcpts(&wait_sink(&sink, N, &srv), &rcpts);
    wait_queue_empty(&srv);
}

#[test]
fn a_message_to_two_local_domains_leaves_a_drop_file_for_each() {
    let srv = Server::start(conf("", &delivery(25, None, ""), &["localhost", "local2.test"]));
    let content = message("two-domains");
    send(&srv, "alice@sender.test", &["bob@localhost", "carol@local2.test"], &content);
    // One delivery per domain: two files, neither replacing the other.
    let files = wait_files(&srv.mailroot.join("Drop"), "eml", 2, &srv);
    let mut receivers: Vec<String> = files
        .iter()
        .map(|f| {
            let text = String::from_utf8(fs::read(f).unwrap()).unwrap();
            assert_carries(
                text.split_once("x-receiver: ").unwrap().1.split_once("\r\n").unwrap().1.as_bytes(),
                &content,
            );
            text.lines().nth(1).unwrap().to_owned()
        })
        .collect();
    receivers.sort();
    assert_eq!(receivers, ["x-receiver: bob@localhost", "x-receiver: carol@local2.test"]);
    wait_queue_empty(&srv);
}
