//! End-to-end SMTP AUTH (RFC 4954) of the real `mailroot` binary, driven by Python's
//! `smtplib` (`tests/py/auth.py`: `SMTP.auth` with PLAIN and LOGIN, with and without an
//! initial response, `SMTP.login`, raw `docmd` lines) and by `lettre` with credentials.
//!
//! TLS (STARTTLS) is being built separately, so these servers run with
//! `allow_plaintext_auth = true` except where the test is that AUTH is *not* offered in
//! plaintext. The user's hash comes from `mailroot hash-password`, so every successful
//! login here also checks that command's output.
//!
//! Covers: PLAIN and LOGIN good and bad; bad base64; `*` abort; AUTH not offered (538)
//! without `allow_plaintext_auth`; an authenticated client relays while the same address
//! unauthenticated is refused 554 5.7.1; `max_auth_failures` (421 and disconnect) with the
//! growing failure delay; `Received: ... with ESMTPA`; the AUTH counters.

mod common;

use std::sync::OnceLock;

use common::{Conf, Server, code_text, hash_password, run_py};
use serde_json::Value;

/// The test user's password.
const PASSWORD: &str = "s3cret pass";

/// The hash of `PASSWORD`, made once per test binary.
fn user_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let (code, out, err) = hash_password(&format!("{PASSWORD}\n"));
        assert_eq!(code, 0, "hash-password failed: {err}");
        assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "password echoed");
        out.trim().to_owned()
    })
}

/// A server with user `alice`; `auth` is the `[auth]` table's body.
fn server(auth: &str, relay_allow: &[&str]) -> Server {
    let mut conf = Conf {
        relay_allow: relay_allow.iter().map(|s| (*s).to_owned()).collect(),
        ..Conf::default()
    };
    conf.extra += &format!(
        "\n[auth]\n{auth}\n\n[[user]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
        user_hash()
    );
    Server::start(conf)
}

/// Run `tests/py/auth.py` against `srv` with `args`.
fn auth_py(srv: &Server, args: &[&str]) -> Value {
    let mut all = vec!["--port".to_owned(), srv.port.to_string()];
    all.extend(args.iter().map(|s| (*s).to_owned()));
    run_py("auth.py", &all)
}

/// The `auth` attempts of a report: (code, text, seconds).
fn attempts(r: &Value) -> Vec<(u64, String, f64)> {
    r["auth"]
        .as_array()
        .unwrap_or_else(|| panic!("no auth in {r}"))
        .iter()
        .map(|a| {
            (
                a["code"].as_u64().unwrap_or(0),
                a["text"].as_str().unwrap_or("").to_owned(),
                a["seconds"].as_f64().unwrap_or(0.0),
            )
        })
        .collect()
}

#[test]
fn plain_and_login_good_and_bad_with_smtplib() {
    let srv = server("allow_plaintext_auth = true\nfailure_delay = \"100ms\"", &["127.0.0.1/32"]);
    let good = format!("alice:{PASSWORD}");
    // (mechanism:initial, credentials, expected code) — one connection each.
    let cases = [
        ("PLAIN:1", good.as_str(), 235),
        ("PLAIN:0", good.as_str(), 235),
        ("LOGIN:1", good.as_str(), 235),
        ("LOGIN:0", good.as_str(), 235),
        ("PLAIN:1", "alice:wrong", 535),
        ("PLAIN:0", "alice:wrong", 535),
        ("LOGIN:1", "alice:wrong", 535),
        ("LOGIN:0", "nobody:wrong", 535),
    ];
    for (mech, creds, want) in cases {
        let r = auth_py(&srv, &["--attempt", &format!("{mech}:{creds}")]);
        assert!(r["auth_offered"].as_bool().unwrap_or(false), "AUTH offered: {r}");
        let got = attempts(&r);
        assert_eq!(got[0].0, want, "{mech} {creds}: {r}");
        if want == 235 {
            assert_eq!(got[0].1, "2.7.0 Authentication successful");
        } else {
            assert_eq!(got[0].1, "5.7.8 Authentication credentials invalid");
        }
    }
    // smtplib's login() picks a mechanism from the EHLO line itself.
    let r = auth_py(&srv, &["--login", &good]);
    assert_eq!(code_text(&r["login"]).0, 235, "{r}");
    // The counters: 5 successes, 4 failures on the default site.
    let (status, _, metrics) = srv.admin_get("/metrics");
    assert_eq!(status, 200);
    let line = |result: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with("mailroot_auth_attempts_total") && l.contains(result))
            .unwrap_or_else(|| panic!("no {result} counter in {metrics}"))
            .to_owned()
    };
    assert!(line("result=\"success\"").ends_with(" 5"), "{}", line("success"));
    assert!(line("result=\"failure\"").ends_with(" 4"), "{}", line("failure"));
    // Never a password (or its base64) in the log.
    let log = srv.log_tail(1 << 20);
    assert!(!log.contains(PASSWORD) && !log.contains("wrong"), "credentials logged:\n{log}");
}

#[test]
fn bad_base64_and_abort() {
    let srv = server("allow_plaintext_auth = true", &["127.0.0.1/32"]);
    let r = auth_py(
        &srv,
        &[
            "--docmd",
            "AUTH PLAIN",
            "--docmd",
            "%%% not base64 %%%",
            "--docmd",
            "AUTH PLAIN",
            "--docmd",
            "*",
            "--docmd",
            "AUTH LOGIN",
            "--docmd",
            "YWxpY2U=",
            "--docmd",
            "*",
            "--docmd",
            "AUTH PLAIN AGFsaWNl",
            "--docmd",
            "NOOP",
        ],
    );
    let got: Vec<(u16, String)> =
        r["docmd"].as_array().expect("docmd").iter().map(code_text).collect();
    let want: Vec<(u16, &str)> = vec![
        (334, ""),
        (501, "5.5.2 Invalid authentication response"),
        (334, ""),
        (501, "5.0.0 Authentication aborted"),
        (334, "VXNlcm5hbWU6"),
        (334, "UGFzc3dvcmQ6"),
        (501, "5.0.0 Authentication aborted"),
        (501, "5.5.2 Invalid authentication response"),
        (250, "2.0.0 Ok"),
    ];
    let got: Vec<(u16, &str)> = got.iter().map(|(c, t)| (*c, t.as_str())).collect();
    assert_eq!(got, want, "{r}");
}

#[test]
fn auth_not_offered_in_plaintext_by_default() {
    let srv = server("", &["127.0.0.1/32"]);
    let r = auth_py(
        &srv,
        &["--login", &format!("alice:{PASSWORD}"), "--docmd", "AUTH PLAIN AGFsaWNlAHg="],
    );
    assert_eq!(r["auth_offered"], Value::Bool(false), "{r}");
    assert_eq!(r["login"], Value::String("not-supported".into()), "{r}");
    let (code, text) = code_text(&r["docmd"][0]);
    assert_eq!(code, 538, "{r}");
    assert_eq!(text, "5.7.11 Encryption required for requested authentication mechanism");
}

#[test]
fn authenticated_client_may_relay_unauthenticated_may_not() {
    // Only 127.0.0.1 may relay by address; the clients come from 127.0.0.2.
    let srv = server("allow_plaintext_auth = true", &["127.0.0.1/32"]);
    let from = ["--source", "127.0.0.2", "--from", "a@client.test", "--to", "far@example.com"];
    let denied = auth_py(&srv, &from);
    let (code, text) = code_text(&denied["rcpt"][0]);
    assert_eq!((code, text.as_str()), (554, "5.7.1 Relay access denied"), "{denied}");
    let mut args = vec!["--attempt"];
    let attempt = format!("PLAIN:1:alice:{PASSWORD}");
    args.push(&attempt);
    args.extend(from);
    let allowed = auth_py(&srv, &args);
    assert_eq!(attempts(&allowed)[0].0, 235, "{allowed}");
    assert_eq!(code_text(&allowed["rcpt"][0]).0, 250, "{allowed}");
    assert_eq!(code_text(&allowed["data"]).0, 250, "{allowed}");
    let q = srv.scan();
    assert_eq!(q.len(), 1, "only the authenticated message is queued");
    // relay_authenticated = false: authenticated, yet refused.
    let strict =
        server("allow_plaintext_auth = true\nrelay_authenticated = false", &["127.0.0.1/32"]);
    let refused = auth_py(&strict, &args);
    assert_eq!(attempts(&refused)[0].0, 235, "{refused}");
    assert_eq!(code_text(&refused["rcpt"][0]).0, 554, "{refused}");
}

#[test]
fn received_header_says_esmtpa() {
    let mut srv = server("allow_plaintext_auth = true", &["127.0.0.1/32"]);
    let attempt = format!("LOGIN:0:alice:{PASSWORD}");
    let r =
        auth_py(&srv, &["--attempt", &attempt, "--from", "a@client.test", "--to", "r@localhost"]);
    assert_eq!(code_text(&r["data"]).0, 250, "{r}");
    let stored = srv.stop_and_read_all();
    assert_eq!(stored.len(), 1);
    let text = String::from_utf8_lossy(&stored[0].1);
    assert!(text.starts_with("Received: from client.test"), "{text}");
    assert!(text.contains("with ESMTPA"), "{text}");
}

#[test]
fn max_auth_failures_disconnects_after_growing_delays() {
    let srv = server(
        "allow_plaintext_auth = true\nmax_auth_failures = 3\nfailure_delay = \"200ms\"",
        &["127.0.0.1/32"],
    );
    let bad = "PLAIN:1:alice:wrong";
    let r =
        auth_py(&srv, &["--attempt", bad, "--attempt", bad, "--attempt", bad, "--attempt", bad]);
    let got = attempts(&r);
    let codes: Vec<u64> = got.iter().map(|a| a.0).collect();
    assert_eq!(codes, [535, 535, 421], "{r}");
    assert_eq!(got[2].1, "4.7.0 Too many authentication failures, closing connection");
    // 200 ms, then 400 ms, then 800 ms for this client address (lower bounds only).
    assert!(got[0].2 >= 0.15 && got[1].2 >= 0.35 && got[2].2 >= 0.7, "delays: {got:?}");
    assert!(r["closed"].as_bool().unwrap_or(false), "connection closed after 421: {r}");
}

#[test]
fn hash_password_command() {
    let (code, out, _) = hash_password("hunter2\n");
    assert_eq!(code, 0);
    assert!(out.starts_with("$argon2id$v=19$") && out.ends_with('\n'), "{out}");
    let (again, _, _) = hash_password("hunter2\n");
    assert_eq!(again, 0);
    assert_ne!(hash_password("hunter2\n").1, out, "a fresh salt each time");
    // An empty password is a usage error.
    let (code, _, err) = hash_password("\n");
    assert_eq!(code, 2, "{err}");
    // A bad hash in the config is an error naming the key (exit 2).
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = common::check_config_file(
        dir.path(),
        "bad.toml",
        "[[user]]\nname = \"a\"\npassword_hash = \"$argon2id$nope\"\n",
    );
    assert_eq!(bad.status.code(), Some(2));
    assert!(common::text(&bad.stderr).contains("user[0].password_hash"));
}

#[test]
fn lettre_with_credentials() {
    use lettre::Transport;
    use lettre::transport::smtp::authentication::{Credentials, Mechanism};
    let srv = server("allow_plaintext_auth = true", &[]);
    for mech in [Mechanism::Plain, Mechanism::Login] {
        let mailer = lettre::SmtpTransport::builder_dangerous("127.0.0.1")
            .port(srv.port)
            .timeout(Some(common::IO_TIMEOUT))
            .credentials(Credentials::new("alice".into(), PASSWORD.into()))
            .authentication(vec![mech])
            .build();
        let envelope = lettre::address::Envelope::new(
            Some("a@client.test".parse().expect("from")),
            vec!["far@example.com".parse().expect("to")],
        )
        .expect("envelope");
        let r = mailer.send_raw(&envelope, b"Subject: lettre\r\n\r\nhi\r\n");
        let r = r.unwrap_or_else(|e| panic!("lettre {mech:?}: {e}"));
        assert_eq!(u16::from(r.code()), 250);
    }
    assert_eq!(srv.scan().len(), 2, "relay [] but authenticated: both queued");
}

/// Per-site user lists (issue 11): three sites on three ports. `default` has no list and
/// inherits the master `[[user]]` alice; `a` has its own `[[site.user]]` ann, `b` its own
/// bob. A site's list replaces the master's there. Then a SIGHUP renames b's user: the
/// verifier uses the new list at once.
#[test]
fn each_site_authenticates_against_its_own_list() {
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let site = |name: &str, port: u16, user: &str| {
        format!(
            "[[site]]\nname = \"{name}\"\nlisten = [\"127.0.0.1:{port}\"]\n\
             [[site.user]]\nname = \"{user}\"\npassword_hash = \"{}\"\n",
            user_hash()
        )
    };
    let mut conf = Conf {
        site_extra: format!("{}{}", site("a", port_a, "ann"), site("b", port_b, "bob")),
        ..Conf::default()
    };
    conf.extra += &format!(
        "\n[auth]\nallow_plaintext_auth = true\nfailure_delay = \"100ms\"\n\n\
         [[user]]\nname = \"alice\"\npassword_hash = \"{}\"\n",
        user_hash()
    );
    let srv = Server::start(conf);
    let login = |port: u16, user: &str| -> u64 {
        let r = run_py(
            "auth.py",
            &[
                "--port".to_owned(),
                port.to_string(),
                "--attempt".to_owned(),
                format!("PLAIN:1:{user}:{PASSWORD}"),
            ],
        );
        assert!(r["auth_offered"].as_bool().unwrap_or(false), "AUTH offered on {port}: {r}");
        attempts(&r)[0].0
    };
    // (port, user, expected AUTH reply)
    let cases = [
        (port_a, "ann", 235),
        (port_b, "ann", 535),
        (port_b, "bob", 235),
        (port_a, "bob", 535),
        (srv.port, "alice", 235), // no list of its own: the master's
        (srv.port, "ann", 535),
        (port_a, "alice", 535), // a's list replaces the master's
    ];
    for (port, user, want) in cases {
        assert_eq!(login(port, user), want, "{user} on port {port}");
    }
    // check-config shows where each site's list comes from.
    let out = common::mailroot_with_config(&["check-config"], &srv.config_path);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("# user = [{ name = \"alice\""), "{text}");
    assert!(text.contains("user = [{ name = \"bob\"") && text.contains("# from site"), "{text}");
    // The admin API masks the site users' hashes.
    let (_, _, config) = srv.admin_get("/api/config");
    assert!(config.contains("\"bob\"") && !config.contains(user_hash()), "{config}");

    // Live on reload: b's user becomes "bea".
    let text = std::fs::read_to_string(&srv.config_path).expect("read config");
    std::fs::write(&srv.config_path, text.replace("name = \"bob\"", "name = \"bea\""))
        .expect("write config");
    common::send_signal(srv.pid().expect("running"), libc::SIGHUP);
    let reload = srv.wait_event("config.reload", |_| true);
    let changes = reload["changes"].to_string();
    assert!(changes.contains("site[2].user[0].name"), "{reload}");
    assert!(!changes.contains(user_hash()), "hash in the reload event: {reload}");
    assert_eq!(login(port_b, "bea"), 235);
    assert_eq!(login(port_b, "bob"), 535);
}
