//! Header injection, NUL and 8-bit bytes through the envelope and EHLO, end to end (issue
//! 12, "Relay and injection cases"), on the real binary with the raw socket client of
//! `tests/common` (the cases need exact bytes: bare CR, bare LF, NUL, invalid UTF-8).
//!
//! What must hold: a command carrying CR, NUL, TAB, DEL or invalid UTF-8 gets `500 5.5.2`
//! or `501 5.6.7`, a malformed one `501`, and the session goes on (NOOP 250, a later
//! message is accepted); hostile but valid values (a general address literal holding
//! `( ) " ;`, a UTF-8 HELO name, the longest names, a quoted local part that reads like a
//! header) are carried as data: the Drop file starts with exactly one `x-sender:` line,
//! one `x-receiver:` line per recipient and one `Received:` field (first line plus TAB
//! continuations) whose `from` token holds no comment or quote breaker and no 8-bit byte
//! without SMTPUTF8; nothing the client sent becomes a header field of its own; and an
//! NDR for a hostile recipient keeps it inside its report lines. The W3C protocol log's
//! escaping of the same bytes is tested in `e2e_protocol_log.rs`
//! (`injected_line_ends_and_spaces_cannot_forge_a_line_or_a_field`).

mod common;
mod common_sink;

use std::fs;
use std::time::Duration;

use common::{Conf, Raw, Server, wait_until};
use common_sink::Sink;

/// Bounded waits.
const WAIT: Duration = Duration::from_secs(30);
/// Poll step.
const STEP: Duration = Duration::from_millis(50);

/// `example.com` local, loopback may relay, delivery on (Drop, or `sink` as smart host).
fn server(sink: &Sink) -> Server {
    Server::start(
        Conf {
            local_domains: vec!["example.com".into()],
            relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
            extra: "\n[delivery]\nretry = [\"1s\"]\n".into(),
            ..Conf::default()
        }
        .limit("max_errors", "1000"),
    )
}

/// Send raw bytes (one command, CRLF included) and read the reply.
fn raw(c: &mut Raw, bytes: &[u8]) -> (u16, String) {
    c.send(bytes);
    let r = c
        .read_reply()
        .unwrap_or_else(|| panic!("no reply to {:?}", String::from_utf8_lossy(bytes)));
    (r.code, r.text())
}

/// The Drop file whose content holds `marker`, waited for.
fn drop_file_with(srv: &Server, marker: &str) -> Vec<u8> {
    wait_until(WAIT, STEP, || {
        let rd = fs::read_dir(srv.mailroot.join("Drop")).ok()?;
        rd.filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .filter_map(|p| fs::read(p).ok())
            .find(|b| String::from_utf8_lossy(b).contains(marker))
    })
    .unwrap_or_else(|| panic!("no Drop file with {marker:?}"))
}

/// Split a Drop file into its envelope lines, its `Received:` field (lines) and the rest.
fn drop_parts(file: &[u8]) -> (Vec<String>, Vec<String>, String) {
    let text = String::from_utf8(file.to_vec()).expect("Drop file is UTF-8");
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF: {text:?}");
    let mut lines = text.split("\r\n").peekable();
    let mut envelope = Vec::new();
    while let Some(l) = lines.next_if(|l| l.starts_with("x-")) {
        envelope.push(l.to_owned());
    }
    let mut received = vec![lines.next().expect("Received line").to_owned()];
    assert!(received[0].starts_with("Received: from "), "{text:?}");
    while let Some(l) = lines.next_if(|l| l.starts_with('\t')) {
        received.push(l.to_owned());
    }
    (envelope, received, lines.collect::<Vec<_>>().join("\r\n"))
}

/// Every header field name of the message part (after `Received:`), up to the blank line.
fn field_names(rest: &str) -> Vec<String> {
    rest.split("\r\n")
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with([' ', '\t']))
        .map(|l| l.split(':').next().unwrap_or("").to_ascii_lowercase())
        .collect()
}

/// Control bytes, DEL and invalid UTF-8 in EHLO/HELO/MAIL/RCPT (and hostile ENVID/ORCPT
/// values) are refused with the right code; after each the session answers NOOP and at
/// the end still takes a message, whose Drop file carries only the valid envelope.
#[test]
fn control_and_8bit_bytes_in_commands_are_refused_and_the_session_goes_on() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    let mut c = Raw::connect(srv.addr()).expect("connect");
    assert_eq!(c.read_reply().expect("greeting").code, 220);
    let long_label = format!("EHLO {}.example\r\n", "a".repeat(64));
    let long_name = format!("EHLO {}\r\n", vec!["b".repeat(63); 5].join("."));
    let long_line = format!("EHLO {}\r\n", "c".repeat(3000));
    // (bytes, code, enhanced status)
    let before_mail: &[(&[u8], u16, &str)] = &[
        (b"EHLO x\rBcc: evil@attacker.test\r\n", 500, "5.5.2"),
        (b"EHLO x\0y.example\r\n", 500, "5.5.2"),
        (b"HELO x\0\r\n", 500, "5.5.2"),
        (b"EHLO x\x7fy\r\n", 500, "5.5.2"),
        (b"EHLO x\ty\r\n", 500, "5.5.2"),
        (b"EHLO \xff\xfe.example\r\n", 501, "5.6.7"),
        (b"EHLO (evil)\r\n", 501, "5.5.4"),
        (b"EHLO x y\r\n", 501, "5.5.4"),
        (b"EHLO [1.2.3.4\r\n", 501, "5.5.4"),
        (long_label.as_bytes(), 501, "5.5.4"),
        (long_name.as_bytes(), 501, "5.5.4"),
        (long_line.as_bytes(), 500, "5.5.2"),
        (b"\0\0\0\r\n", 500, "5.5.2"),
        (b"\xff\xff\xff\r\n", 500, "5.5.1"),
        (b"EHLO client.test\r\n", 250, ""),
        (b"MAIL FROM:<a\0b@client.test>\r\n", 500, "5.5.2"),
        (b"MAIL FROM:<a\rb@client.test>\r\n", 500, "5.5.2"),
        (b"MAIL FROM:<\xff@client.test>\r\n", 501, "5.6.7"),
        ("MAIL FROM:<\u{e9}@client.test>\r\n".as_bytes(), 553, "5.6.7"),
        (b"MAIL FROM:<a@client.test> ENVID=a+0D+0ABcc:+20evil\r\n", 501, "5.5.4"),
        (b"MAIL FROM:<a@client.test>\r\n", 250, "2.1.0"),
        (b"RCPT TO:<b\0@example.com>\r\n", 500, "5.5.2"),
        (b"RCPT TO:<b@example.com\r>\r\n", 500, "5.5.2"),
        (b"RCPT TO:<\"a\0b\"@example.com>\r\n", 500, "5.5.2"),
        (b"RCPT TO:<\xe9@example.com>\r\n", 501, "5.6.7"),
        ("RCPT TO:<\u{e9}@example.com>\r\n".as_bytes(), 553, "5.6.7"),
        (b"RCPT TO:<b@example.com> ORCPT=rfc822;b+0D+0ABcc:+20e@x\r\n", 501, "5.5.4"),
        (b"RCPT TO:<\"x-receiver: evil\"@example.com>\r\n", 250, "2.1.5"),
        (b"RCPT TO:<user@example.com>\r\n", 250, "2.1.5"),
    ];
    for (bytes, code, status) in before_mail {
        let (got, text) = raw(&mut c, bytes);
        let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(60)]);
        assert_eq!(got, *code, "{shown:?} -> {got} {text}");
        assert!(text.starts_with(status), "{shown:?} -> {got} {text}");
        if got != 250 {
            assert_eq!(raw(&mut c, b"NOOP\r\n").0, 250, "session goes on after {shown:?}");
        }
    }
    assert_eq!(raw(&mut c, b"DATA\r\n").0, 354);
    let (code, text) = raw(&mut c, b"Subject: inject-cmd\r\n\r\nbody\r\n.\r\n");
    assert_eq!(code, 250, "{text}");
    assert_eq!(raw(&mut c, b"QUIT\r\n").0, 221);
    let file = drop_file_with(&srv, "inject-cmd");
    let (envelope, received, rest) = drop_parts(&file);
    assert_eq!(
        envelope,
        [
            "x-sender: a@client.test",
            "x-receiver: \"x-receiver: evil\"@example.com",
            "x-receiver: user@example.com"
        ]
    );
    assert!(received[0].starts_with("Received: from client.test ([127.0.0.1])"), "{received:?}");
    assert_eq!(field_names(&rest), ["subject"], "{rest:?}");
}

/// EHLO names the parser accepts but a header must not carry as they are: a general
/// address literal full of comment and quote breakers, a UTF-8 name without SMTPUTF8, a
/// bare LF splitting the line in two (the tail becomes an unknown command), and the
/// longest valid name. Each message's `Received:` field shows the cleaned name.
#[test]
fn hostile_but_valid_ehlo_names_are_cleaned_in_the_received_field() {
    let sink = Sink::start("127.0.0.1");
    let srv = server(&sink);
    let longest = ["d".repeat(63), "e".repeat(63), "f".repeat(63), "g".repeat(63)].join(".");
    // (EHLO bytes after "EHLO ", the `from` token expected in Received)
    let cases: Vec<(Vec<u8>, String)> = vec![
        (b"[x-tag:a)(b\"c;d]".to_vec(), "[x-tag:a??b?c?d]".into()),
        ("h\u{e9}llo.example".as_bytes().to_vec(), "h?llo.example".into()),
        (b"x\nBcc: evil@attacker.test".to_vec(), "x".into()),
        (b"[IPv6:::1]".to_vec(), "[IPv6:::1]".into()),
        (b"my_pc.".to_vec(), "my_pc.".into()),
        (longest.clone().into_bytes(), longest),
    ];
    for (i, (ehlo, want)) in cases.iter().enumerate() {
        let mut c = Raw::connect(srv.addr()).expect("connect");
        assert_eq!(c.read_reply().expect("greeting").code, 220);
        let (code, text) = raw(&mut c, &[b"EHLO ".as_slice(), ehlo, b"\r\n"].concat());
        assert_eq!(code, 250, "EHLO {:?}: {text}", String::from_utf8_lossy(ehlo));
        if ehlo.contains(&b'\n') {
            let (code, text) = c.read_reply().map(|r| (r.code, r.text())).expect("second reply");
            assert_eq!((code, &text[..5]), (500, "5.5.1"), "the tail is a command of its own");
        }
        let marker = format!("ehlo-case-{i}");
        let r = c.send_message(
            "a@client.test",
            &["user@example.com"],
            format!("Subject: {marker}\r\n\r\nbody\r\n").as_bytes(),
        );
        assert_eq!(r.code, 250, "{r}");
        assert_eq!(raw(&mut c, b"QUIT\r\n").0, 221);
        let file = drop_file_with(&srv, &marker);
        let (_, received, rest) = drop_parts(&file);
        let first = &received[0];
        assert!(
            first.starts_with(&format!("Received: from {want} ([127.0.0.1])")),
            "case {i}: {received:?}"
        );
        assert!(received.iter().all(|l| l.is_ascii() && l.len() < 998), "{received:?}");
        assert_eq!(field_names(&rest), ["subject"], "case {i}: {rest:?}");
    }
}

/// An NDR about a recipient whose quoted local part reads like a header field keeps it on
/// its report lines: the NDR (delivered to the local sender's Drop) has no such field.
#[test]
fn hostile_recipient_stays_inside_the_ndr() {
    let sink = Sink::start("127.0.0.1");
    let evil = "\"Bcc: victim\"@remote.test";
    sink.script(evil, &[550]);
    let srv = server(&sink);
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let r = c.send_message("sender@example.com", &[evil], b"Subject: to-bounce\r\n\r\nbody\r\n");
    assert_eq!(r.code, 250, "{r}");
    assert_eq!(raw(&mut c, b"QUIT\r\n").0, 221);
    let ndr = drop_file_with(&srv, "Final-Recipient");
    let text = String::from_utf8(ndr).expect("NDR is UTF-8");
    assert!(!text.replace("\r\n", "").contains(['\r', '\n']), "bare CR or LF in {text:?}");
    assert!(text.split("\r\n").all(|l| l.len() <= 998));
    let after_envelope: Vec<&str> =
        text.split("\r\n").skip_while(|l| l.starts_with("x-")).collect();
    let names = field_names(&after_envelope.join("\r\n"));
    assert!(names.iter().any(|n| n == "subject"), "{names:?}");
    assert!(!names.iter().any(|n| n == "bcc"), "{names:?}");
    assert!(
        text.split("\r\n").any(|l| l.starts_with("Final-Recipient: rfc822;") && l.contains(evil)),
        "{text}"
    );
    assert!(!text.split("\r\n").any(|l| l.starts_with("Bcc:")), "{text}");
}
