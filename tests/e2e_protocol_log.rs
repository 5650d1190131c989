//! End-to-end W3C protocol log and message lifecycle lines of the real `mailroot` binary.
//!
//! Clients: Python's `smtplib` (`tests/py/protolog.py`, which also measures the bytes of
//! each command and reply on the wire) and, where the exact bytes matter (CR, LF, NUL,
//! TAB injected into EHLO and MAIL), the raw socket client of `tests/common`. The
//! lifecycle test relays through the real sink of `tests/common_sink`.
//!
//! Covers: the header block; one line per command with the right fields, status and byte
//! counts; escaping (no forged line, no extra field); AUTH without credentials; size
//! rotation (new files with headers); a site with the log off; lifecycle lines at info
//! with the queue id (received, delivered, deferred, bounced).

mod common;
mod common_sink;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use common_sink::Sink;
use serde_json::Value;

/// Lines are flushed at least once a second; this is generous for a slow machine.
const LOG_WAIT: Duration = Duration::from_secs(20);
/// Poll step.
const STEP: Duration = Duration::from_millis(50);
/// The W3C fields, as IIS SMTP wrote them.
const FIELDS: &str = "date time c-ip cs-username s-sitename s-computername s-ip s-port \
                      cs-method cs-uri-query sc-status sc-bytes cs-bytes time-taken";

/// A server whose default site logs; `extra` goes into `[protocol_log]`.
fn server(extra: &str) -> Server {
    let mut conf = Conf::default();
    conf.extra += &format!("\n[protocol_log]\nenabled = true\n{extra}\n");
    Server::start(conf)
}

/// Log files of the default site, sorted by name.
fn log_files(srv: &Server) -> Vec<PathBuf> {
    let dir = srv.mailroot.join("Logs").join("default");
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file's text, concatenated in name order.
fn log_text(srv: &Server) -> String {
    log_files(srv).iter().map(|p| fs::read_to_string(p).unwrap_or_default()).collect()
}

/// Wait until the log holds `n` lines (not directives) of the test's clients (not the
/// harness's readiness probe from `PROBE_IP`); returns them, split into fields.
fn wait_lines(srv: &Server, n: usize) -> Vec<Vec<String>> {
    let probe = PROBE_IP.to_string();
    let got = wait_until(LOG_WAIT, STEP, || {
        let mut lines = data_lines(&log_text(srv));
        lines.retain(|f| f.get(2) != Some(&probe));
        (lines.len() >= n).then_some(lines)
    });
    got.unwrap_or_else(|| {
        panic!(
            "fewer than {n} log lines:\n{}\n--- server ---\n{}",
            log_text(srv),
            srv.log_tail(4000)
        )
    })
}

/// The non-directive lines of `text`, split into fields; every line must end in CRLF.
fn data_lines(text: &str) -> Vec<Vec<String>> {
    assert!(text.is_empty() || text.ends_with("\r\n"), "torn last line: {text:?}");
    text.split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split(' ').map(str::to_owned).collect())
        .collect()
}

/// Undo the W3C escaping (`+` = space, `%XX`, `-` = empty).
fn unescape(f: &str) -> Vec<u8> {
    if f == "-" {
        return Vec::new();
    }
    let b = f.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                out.push(u8::from_str_radix(&f[i + 1..i + 3], 16).expect("hex"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Run `tests/py/protolog.py` against `srv`; its measured steps.
fn smtplib_session(srv: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["--port".to_owned(), srv.port.to_string()];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    let r = run_py("protolog.py", &all);
    r["steps"].as_array().expect("steps").clone()
}

#[test]
fn smtplib_session_gives_one_line_per_command_with_the_right_fields() {
    let srv = server("");
    let steps = smtplib_session(&srv, &["--ehlo", "client.test"]);
    let lines = wait_lines(&srv, steps.len());
    let text = log_text(&srv);
    let header =
        format!("#Software: mailroot {}\r\n#Version: 1.0\r\n#Date: ", env!("CARGO_PKG_VERSION"));
    assert!(text.starts_with(&header), "{text}");
    assert!(text.contains(&format!("\r\n#Fields: {FIELDS}\r\n")), "{text}");
    assert_eq!(lines.len(), steps.len(), "{text}");
    for (step, f) in steps.iter().zip(&lines) {
        assert_eq!(f.len(), 14, "{f:?}");
        let cmd = step["cmd"].as_str().unwrap();
        assert!(f[0].len() == 10 && f[0].as_bytes()[4] == b'-', "date {f:?}");
        assert!(f[1].len() == 8 && f[1].as_bytes()[2] == b':', "time {f:?}");
        assert_eq!(f[2], "127.0.0.1");
        assert_eq!(f[3], "-", "no AUTH: no user name");
        assert_eq!(f[4], "default");
        assert_eq!(f[5], srv.hostname);
        assert_eq!((f[6].as_str(), f[7].as_str()), ("127.0.0.1", srv.port.to_string().as_str()));
        assert_eq!(f[8], cmd);
        assert_eq!(f[10], step["code"].to_string(), "{cmd} status");
        assert_eq!(f[11], step["sc"].to_string(), "{cmd} sc-bytes = reply bytes read");
        assert_eq!(f[12], step["cs"].to_string(), "{cmd} cs-bytes = bytes sent");
        assert!(f[13].parse::<u64>().is_ok(), "time-taken {f:?}");
    }
    let query: Vec<&str> = lines.iter().map(|f| f[9].as_str()).collect();
    assert_eq!(query, ["client.test", "FROM:<alice@example.com>", "TO:<bob@localhost>", "-", "-"]);
    // MAIL's cs-bytes is the command line with its CRLF.
    assert_eq!(lines[1][12], "MAIL FROM:<alice@example.com>\r\n".len().to_string());
}

#[test]
fn injected_line_ends_and_spaces_cannot_forge_a_line_or_a_field() {
    let srv = server("");
    let mut c = Raw::connect(srv.addr()).expect("connect");
    assert_eq!(c.read_reply().expect("greeting").code, 220);
    let forged = "2026-01-01 00:00:00 6.6.6.6 root default mx 6.6.6.6 25 MAIL - 250 1 1 0";
    // A CR alone, a TAB, a NUL and spaces inside one line; then CRLF with a forged line.
    c.send(b"EHLO evil\rname with\tspace\0here\r\n");
    let r1 = c.read_reply().expect("ehlo reply");
    c.send(format!("MAIL FROM:<a@b.example> X=1\r\n{forged}\r\n").as_bytes());
    let r2 = c.read_reply().expect("mail reply");
    let r3 = c.read_reply().expect("forged line reply");
    let _ = c.cmd("QUIT");
    let lines = wait_lines(&srv, 4);
    let text = log_text(&srv);
    for f in &lines {
        assert_eq!(f.len(), 14, "one line, 14 fields: {f:?}\n{text}");
        assert_eq!(f[2], "127.0.0.1", "only our client: {f:?}");
        assert!(f.iter().all(|x| x.bytes().all(|b| b.is_ascii_graphic())), "{f:?}");
    }
    assert!(!text.contains("6.6.6.6 root"), "{text}");
    assert!(!text.contains('\t') && !text.contains('\0'));
    assert_eq!(text.matches('\n').count(), text.matches("\r\n").count(), "only CRLF line ends");
    assert_eq!(lines[0][8], "EHLO");
    assert_eq!(unescape(&lines[0][9]), b"evil\rname with\tspace\0here");
    assert_eq!(lines[0][10], r1.code.to_string());
    assert_eq!(lines[1][8], "MAIL");
    assert_eq!(unescape(&lines[1][9]), b"FROM:<a@b.example> X=1");
    assert_eq!(lines[1][10], r2.code.to_string());
    // The would-be forged line is a command of its own: not a known verb, so it is
    // written without verb and arguments (it could be a credential sent out of turn).
    assert_eq!((lines[2][8].as_str(), lines[2][9].as_str()), ("-", "-"));
    assert_eq!(lines[2][10], r3.code.to_string());
    assert_eq!(lines[2][12], (forged.len() + 2).to_string());
    assert_eq!(lines[3][8], "QUIT");
}

/// The test user's password.
const PASSWORD: &str = "pr0tocol s3cret";

#[test]
fn auth_line_holds_no_credential() {
    let (code, hash, err) = hash_password(&format!("{PASSWORD}\n"));
    assert_eq!(code, 0, "{err}");
    let mut conf = Conf::default();
    conf.extra += &format!(
        "\n[protocol_log]\nenabled = true\n\n[auth]\nallow_plaintext_auth = true\n\n\
         [[user]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
        hash.trim()
    );
    let srv = Server::start(conf);
    let steps = smtplib_session(&srv, &["--user", "alice", "--password", PASSWORD]);
    assert_eq!(steps[1]["cmd"], "AUTH");
    assert_eq!(steps[1]["code"], 235, "{steps:?}");
    let lines = wait_lines(&srv, steps.len());
    let auth = &lines[1];
    assert_eq!((auth[8].as_str(), auth[9].as_str(), auth[10].as_str()), ("AUTH", "PLAIN", "235"));
    assert_eq!(auth[12], "-", "AUTH cs-bytes withheld (the credentials' length)");
    assert_eq!(auth[11], steps[1]["sc"].to_string());
    assert_eq!(lines[0][3], "-", "before AUTH: no user");
    for f in &lines[1..] {
        assert_eq!(f[3], "alice", "after AUTH: the identity: {f:?}");
    }
    let text = log_text(&srv);
    let plain = base64_plain("alice", PASSWORD);
    for secret in [PASSWORD, "pr0tocol", "s3cret", plain.as_str(), &plain[..12]] {
        assert!(!text.contains(secret), "{secret:?} in the log:\n{text}");
        assert!(!srv.log_tail(100_000).contains(secret), "{secret:?} in the server log");
    }
}

/// `base64("\0user\0password")`, the SASL PLAIN initial response.
fn base64_plain(user: &str, password: &str) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let data = format!("\0{user}\0{password}").into_bytes();
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn size_rotation_starts_new_files_with_headers() {
    let srv = server("rotate = \"size\"\nmax_size = \"1KiB\"");
    for _ in 0..4 {
        smtplib_session(&srv, &[]);
    }
    let _ = wait_lines(&srv, 20);
    let files = log_files(&srv);
    assert!(files.len() >= 2, "{files:?}");
    for (i, p) in files.iter().enumerate() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let (stem, seq) = name.strip_suffix(".log").unwrap().split_at(8);
        assert!(stem.starts_with("ex") && stem[2..].bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert_eq!(seq, if i == 0 { String::new() } else { format!("_{i}") }, "{name}");
        let text = fs::read_to_string(p).unwrap();
        assert!(text.starts_with("#Software: mailroot "), "{name}: {text}");
        assert!(text.contains(&format!("#Fields: {FIELDS}\r\n")), "{name}");
        assert!(!data_lines(&text).is_empty(), "{name} holds lines");
    }
}

#[test]
fn a_site_with_the_log_off_writes_nothing() {
    let mut conf = Conf::default();
    conf.extra += "\n[protocol_log]\nenabled = true\n";
    conf.site_extra = "protocol_log = false".into();
    let srv = Server::start(conf);
    smtplib_session(&srv, &[]);
    std::thread::sleep(Duration::from_millis(1500)); // past one flush interval
    // `Logs/` itself holds the event log (`events.log`); the site's folder must not exist.
    assert!(!srv.mailroot.join("Logs").join("default").exists(), "{:?}", log_files(&srv));
}

#[test]
fn lifecycle_lines_name_the_queue_id() {
    let sink = Sink::start("127.0.0.1");
    sink.script("later@dest.test", &[451]);
    sink.script("no@dest.test", &[550]);
    let mut conf = Conf {
        relay_extra: format!("smart_host = \"[127.0.0.1]:{}\"", sink.port()),
        ..Conf::default()
    };
    conf.extra = "\n[delivery]\nretry = [\"1s\"]\nconnect_timeout = \"2s\"\n\
                  [dns]\nservers = [\"127.0.0.1:9\"]\ntimeout = \"500ms\"\nattempts = 1\n"
        .into();
    let srv = Server::start(conf);
    let mut c = Raw::connect(srv.addr()).expect("connect");
    c.hello();
    let body = dot_stuff(b"Subject: lifecycle\r\n\r\nHello.\r\n");
    let rcpts = ["ok@dest.test", "later@dest.test", "no@dest.test"];
    let r = c.send_message("alice@sender.test", &rcpts, &body);
    assert_eq!(r.code, 250, "{r}");
    let _ = c.cmd("QUIT");
    let id = r.text().rsplit(' ').next().unwrap().trim().to_owned();
    let want = [
        format!("queue_id={id} received from=<alice@sender.test> nrcpt=3 "),
        format!("queue_id={id} delivered rcpt=ok@dest.test "),
        format!("queue_id={id} deferred rcpt=later@dest.test attempts=1 reason="),
        format!("queue_id={id} bounced rcpt=no@dest.test status=5."),
        format!("queue_id={id} delivered rcpt=later@dest.test "),
    ];
    let found = wait_until(Duration::from_secs(30), STEP, || {
        let log = srv.log_tail(200_000);
        want.iter().all(|w| log.contains(w)).then_some(log)
    });
    let log = found
        .unwrap_or_else(|| panic!("missing lifecycle lines {want:?}:\n{}", srv.log_tail(8000)));
    for w in &want {
        let line = log.lines().find(|l| l.contains(w.as_str())).unwrap();
        assert!(line.contains(" INFO ") && line.contains("mailroot::message"), "{line}");
    }
    assert!(log.contains("550"), "the remote reply is in the bounce line");
}

#[test]
fn lines_are_flushed_at_shutdown() {
    let mut srv = server("");
    let steps = smtplib_session(&srv, &[]);
    // Stop at once: the lines are still in a worker's buffer or the log thread's.
    let status = srv.terminate().expect("server stopped");
    assert!(status.success(), "{status:?}");
    let mut lines = data_lines(&log_text(&srv));
    lines.retain(|f| f[2] != PROBE_IP.to_string());
    let methods: Vec<&str> = lines.iter().map(|f| f[8].as_str()).collect();
    assert_eq!(methods, ["EHLO", "MAIL", "RCPT", "DATA", "QUIT"], "{steps:?}");
}

#[test]
fn behind_a_proxy_header_the_client_is_the_carried_address() {
    let lb = free_port();
    let mut conf = Conf::default();
    conf.extra += &format!(
        "\n[[site]]\nname = \"lb\"\nlisten = [\"127.0.0.1:{lb}\"]\nproxy_protocol = true\n\
         proxy_trusted = [\"127.0.0.1/32\"]\nprotocol_log = true\n"
    );
    let srv = Server::start(conf);
    let mut c = Raw::connect(std::net::SocketAddr::from(([127, 0, 0, 1], lb))).expect("connect");
    c.send(b"PROXY TCP4 192.0.2.9 198.51.100.1 1234 25\r\n");
    assert_eq!(c.read_reply().expect("greeting").code, 220);
    assert_eq!(c.cmd("EHLO behind.example").code, 250);
    assert_eq!(c.cmd("QUIT").code, 221);
    let dir = srv.mailroot.join("Logs").join("lb");
    let text = wait_until(LOG_WAIT, STEP, || {
        let t: String = fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| fs::read_to_string(e.ok()?.path()).ok()).collect())
            .unwrap_or_default();
        t.contains(" QUIT ").then_some(t)
    })
    .unwrap_or_else(|| panic!("no lb log\n{}", srv.log_tail(4000)));
    let lines = data_lines(&text);
    assert_eq!(lines.len(), 2, "{text}");
    for f in &lines {
        assert_eq!((f[2].as_str(), f[4].as_str()), ("192.0.2.9", "lb"), "{f:?}");
        assert_eq!(f[7], lb.to_string());
    }
    assert!(!srv.mailroot.join("Logs").join("default").exists(), "default site logs nothing");
}

/// The lines of the test's clients (not the readiness probe) logged so far.
fn client_lines(srv: &Server) -> usize {
    let probe = PROBE_IP.to_string();
    data_lines(&log_text(srv)).iter().filter(|f| f.get(2) != Some(&probe)).count()
}

#[test]
fn a_reload_switches_the_log_on_and_off() {
    // Off at start (the default): a session writes nothing.
    let srv = Server::start(Conf::default());
    smtplib_session(&srv, &[]);
    std::thread::sleep(Duration::from_millis(1500)); // past one flush interval
    assert_eq!(client_lines(&srv), 0, "{:?}", log_files(&srv));

    // SIGHUP with `[protocol_log] enabled = true`: applied live, not "restart needed".
    let text = fs::read_to_string(&srv.config_path).expect("read config");
    fs::write(&srv.config_path, format!("{text}\n[protocol_log]\nenabled = true\n"))
        .expect("write config");
    send_signal(srv.pid().expect("pid"), libc::SIGHUP);
    let e = srv.wait_event("config.reload", |_| true);
    assert!(
        e["changes"].as_array().unwrap().iter().any(|c| c["key"] == "protocol_log.enabled"),
        "{e}"
    );
    assert_eq!(e["restart_needed"], serde_json::json!([]), "{e}");
    let steps = smtplib_session(&srv, &[]);
    let on = wait_lines(&srv, steps.len()).len();
    assert_eq!(on, steps.len(), "{}", log_text(&srv));

    // And off again: the next session writes nothing more.
    let text = fs::read_to_string(&srv.config_path).expect("read config");
    fs::write(&srv.config_path, text.replace("enabled = true", "enabled = false"))
        .expect("write config");
    send_signal(srv.pid().expect("pid"), libc::SIGHUP);
    srv.wait_event("config.reload", |e| {
        e["changes"].as_array().unwrap().iter().any(|c| c["new"] == "false")
    });
    smtplib_session(&srv, &[]);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(client_lines(&srv), on, "{}", log_text(&srv));
}
