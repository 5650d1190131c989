//! `mailroot check-config` run as a real process: exit status, stdout and stderr.
//!
//! Good configurations print the effective TOML and exit 0; bad ones exit 2 and name the
//! offending key on stderr as ``mailroot: config error at `key`: problem``.

mod common_cli;

use common_cli::{check_config_file as check, mailroot, text};

#[test]
fn no_file_prints_defaults() {
    let out = mailroot(&["check-config"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for line in [
        "mailroot = \"./mailroot\"",
        "max_message_size = \"10MiB\"",
        "allow = [\"127.0.0.0/8\", \"::1/128\"]",
        "local = [\"localhost\"]",
        "[[site]]\nname = \"default\"\nlisten = [\"127.0.0.1:2525\"]",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    assert!(out.stderr.is_empty(), "stderr: {}", text(&out.stderr));
}

#[test]
fn good_file_round_trips() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = check(
        dir.path(),
        "good.toml",
        "hostname = \"mx.example.com\"\nworkers = 2\n\
         [limits]\nmax_message_size = \"25MB\"\ncommand_timeout = \"90s\"\n\
         [domains]\nlocal = [\"Example.COM\"]\n\
         [[site]]\nname = \"public\"\nlisten = [\"0.0.0.0:2525\", \"[::1]:2526\"]\n",
    );
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let printed = text(&out.stdout);
    for line in [
        "hostname = \"mx.example.com\"",
        "workers = 2",
        "max_message_size = \"25MB\"",
        "command_timeout = \"90s\"",
        "local = [\"example.com\"]",
        "listen = [\"0.0.0.0:2525\", \"[::1]:2526\"]",
    ] {
        assert!(printed.contains(line), "missing {line:?} in\n{printed}");
    }
    // The printed configuration is itself accepted and prints the same.
    let again = check(dir.path(), "printed.toml", &printed);
    assert_eq!(again.status.code(), Some(0), "stderr: {}", text(&again.stderr));
    assert_eq!(text(&again.stdout), printed);
}

#[test]
fn bad_files_exit_2_and_name_the_key() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // (what, file text, key that stderr must name)
    let cases: &[(&str, &str, &str)] = &[
        ("unknown key", "[limits]\nmax_conections = 5\n", "limits.max_conections"),
        ("bad CIDR", "[relay]\nallow = [\"127.0.0.0/8\", \"10.0.0.0/40\"]\n", "relay.allow[1]"),
        ("bad size", "[limits]\nmax_message_size = \"10 parsecs\"\n", "limits.max_message_size"),
        ("bad duration", "[limits]\ndata_timeout = \"soon\"\n", "limits.data_timeout"),
        ("zero limit", "[limits]\nmax_connections = 0\n", "limits.max_connections"),
        (
            "bad listen",
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\", \"nowhere:25\"]\n",
            "site[0].listen[1]",
        ),
        (
            "duplicate site",
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
             [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:26\"]\n",
            "site[1].name",
        ),
        (
            "duplicate listen",
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\n\
             [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:25\"]\n",
            "site[1].listen[0]",
        ),
        ("bad hostname", "hostname = \"not a host\"\n", "hostname"),
        ("bad workers", "workers = 0\n", "workers"),
        ("TOML syntax", "workers = = 3\n", "line 1, column 11"),
        ("bad rotate", "[protocol_log]\nrotate = \"hourly\"\n", "protocol_log.rotate"),
        ("zero log size", "[protocol_log]\nmax_size = 0\n", "protocol_log.max_size"),
        ("bad log switch", "[protocol_log]\nenabled = \"on\"\n", "protocol_log.enabled"),
        (
            "bad site log switch",
            "[[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:25\"]\nprotocol_log = \"yes\"\n",
            "site[0].protocol_log",
        ),
    ];
    for &(what, toml, key) in cases {
        let out = check(dir.path(), "bad.toml", toml);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: stderr: {stderr}");
        assert!(
            stderr.starts_with(&format!("mailroot: config error at `{key}`: ")),
            "{what}: stderr: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{what}: stdout: {}", text(&out.stdout));
    }
}

/// Two sites: `a` inherits every master property, `b` overrides some.
const TWO_SITES: &str = "hostname = \"master.example\"\n[limits]\nmax_recipients = 40\n\
     [[site]]\nname = \"a\"\nlisten = [\"127.0.0.1:2525\"]\n\
     [[site]]\nname = \"b\"\nlisten = [\"127.0.0.1:2526\"]\nhostname = \"b.example\"\n\
     max_recipients = 7\nrelay_allow = []\nlocal_domains = [\"b.example\"]\n";

#[test]
fn site_overrides_show_their_origin() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = check(dir.path(), "sites.toml", TWO_SITES);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let printed = text(&out.stdout);
    let site = |name: &str| -> String {
        let start = printed
            .find(&format!("[[site]]\nname = \"{name}\""))
            .unwrap_or_else(|| panic!("no site {name} in\n{printed}"));
        let rest = &printed[start + 8..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
    };
    let (a, b) = (site("a"), site("b"));
    for line in [
        "# hostname = \"master.example\"  # from master",
        "# max_recipients = 40  # from master",
        "# relay_allow = [\"127.0.0.0/8\", \"::1/128\"]  # from master",
        "# local_domains = [\"localhost\"]  # from master",
        "# max_message_size = \"10MiB\"  # from master",
        "# drop_folder = \"./mailroot/Drop\"  # from master",
    ] {
        assert!(a.contains(line), "site a lacks {line:?}:\n{a}");
    }
    for line in [
        "hostname = \"b.example\"  # from site",
        "max_recipients = 7  # from site",
        "relay_allow = []  # from site",
        "local_domains = [\"b.example\"]  # from site",
        "# max_message_size = \"10MiB\"  # from master",
    ] {
        assert!(b.lines().any(|l| l == line), "site b lacks {line:?}:\n{b}");
    }
    // The printed configuration is accepted and prints the same.
    let again = check(dir.path(), "printed.toml", &printed);
    assert_eq!(again.status.code(), Some(0), "stderr: {}", text(&again.stderr));
    assert_eq!(text(&again.stdout), printed);
}

#[test]
fn bad_site_override_exits_2_naming_key_and_bound() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // (site b's bad line, key, words of the problem)
    let cases: &[(&str, &str, &str)] = &[
        ("max_recipients = 0", "site[1].max_recipients", "must be > 0"),
        ("max_errors = 4294967296", "site[1].max_errors", "must be at most 4294967295"),
        ("command_timeout = \"0s\"", "site[1].command_timeout", "must be > 0"),
        ("max_connections = 3", "site[1].max_connections", "unknown key"),
        ("connection_deny = [\"10.0.0.1/8\"]", "site[1].connection_deny[0]", "host bits"),
    ];
    for &(line, key, words) in cases {
        let toml = TWO_SITES.replace("max_recipients = 7\n", &format!("{line}\n"));
        let out = check(dir.path(), "bad.toml", &toml);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: stderr: {stderr}");
        assert!(
            stderr.starts_with(&format!("mailroot: config error at `{key}`: ")),
            "{line}: stderr: {stderr}"
        );
        assert!(stderr.contains(words), "{line}: stderr: {stderr}");
    }
}

#[test]
fn missing_file_exits_2() {
    let out = mailroot(&["check-config", "--config", "/nonexistent/mailroot.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("mailroot: cannot read config file"), "{stderr}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [&["bogus"][..], &["check-config", "--bogus"], &[]] {
        let out = mailroot(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
    assert_eq!(mailroot(&["--help"]).status.code(), Some(0));
}

#[test]
fn smart_host_auth_password_file_and_redaction() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let pw = dir.path().join("smart-host.pw");
    std::fs::write(&pw, "s3cret-in-file\n").unwrap_or_else(|e| panic!("{e}"));
    let head = "[relay]\nsmart_host = \"smart.example:587\"\n";
    // A password file: read at load; check-config names the file, never the password.
    let with_file = format!(
        "{head}smart_host_auth = {{ user = \"relay\", password_file = {:?} }}\n\
         [delivery]\ntls = \"encrypt\"\n[[domain]]\nname = \"bank.example\"\ntls = \"verify\"\n",
        pw.to_string_lossy()
    );
    let out = check(dir.path(), "file.toml", &with_file);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("password_file = "), "{printed}");
    assert!(printed.contains("tls = \"encrypt\"") && printed.contains("tls = \"verify\""));
    assert!(!printed.contains("s3cret-in-file"), "{printed}");
    // An inline password is printed as <redacted>.
    let inline = format!("{head}smart_host_auth = {{ user = \"relay\", password = \"s3cret\" }}\n");
    let out = check(dir.path(), "inline.toml", &inline);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let printed = text(&out.stdout);
    assert!(printed.contains("password = \"<redacted>\""), "{printed}");
    assert!(!printed.contains("s3cret"), "{printed}");
    // A missing password file is a config error naming the key: exit 2.
    let missing = format!(
        "{head}smart_host_auth = {{ user = \"relay\", password_file = \"/nonexistent/pw\" }}\n"
    );
    let out = check(dir.path(), "missing.toml", &missing);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.starts_with("mailroot: config error at `relay.smart_host_auth.password_file`: "),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn delivery_tls_ca_file_is_loaded_and_printed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    // An unreadable CA file: exit 2, naming the key and the file.
    let out = check(dir.path(), "ca.toml", "[delivery]\ntls_ca_file = \"/nonexistent/ca.pem\"\n");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.starts_with("mailroot: config error at `delivery.tls_ca_file`: "), "{stderr}");
    assert!(stderr.contains("/nonexistent/ca.pem"), "{stderr}");
    // A good one is printed back.
    let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()])
        .unwrap_or_else(|e| panic!("{e}"));
    let pem = dir.path().join("ca.pem");
    std::fs::write(&pem, ca.cert.pem()).unwrap_or_else(|e| panic!("{e}"));
    let good = format!("[delivery]\ntls_ca_file = {:?}\n", pem.to_string_lossy());
    let out = check(dir.path(), "good.toml", &good);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("tls_ca_file = "), "{}", text(&out.stdout));
}
