//! The privilege drop (`[service] user`), end to end: the REAL binary started as root binds
//! its listeners, then every thread runs as the service account (`nobody` here: present on
//! every Debian system, so the test adds no account to the machine), mail sent by lettre
//! is accepted and lands in files that account owns, and a bad account is refused with
//! exit status 2 naming the key.
//!
//! The tests that need root print why they skip and pass when not run as root.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use lettre::Transport as _;

/// The account the tests drop to.
const SERVICE_USER: &str = "nobody";

/// The effective uid of this test process, from `/proc/self/status` (no FFI).
fn euid() -> u32 {
    let status = fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    ids(&status, "Uid:")[1]
}

/// The four ids (real, effective, saved, filesystem) of a `Uid:` or `Gid:` line.
fn ids(status: &str, field: &str) -> Vec<u32> {
    let line = status.lines().find(|l| l.starts_with(field)).expect("field in status");
    line[field.len()..].split_whitespace().map(|n| n.parse().expect("numeric id")).collect()
}

/// `id -u NAME` / `id -g NAME` from the system's own tool.
fn id_of(flag: &str, name: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().expect("run id");
    assert!(out.status.success(), "id {flag} {name}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().parse().expect("numeric id")
}

/// True when running as root; otherwise says why the caller skips.
fn root_or_skip(test: &str) -> bool {
    if euid() == 0 {
        return true;
    }
    eprintln!("{test}: skipped: the privilege drop needs the test to run as root (uid 0)");
    false
}

/// A folder the service account can reach (tempdirs are 0700, root's).
fn reachable_tempdir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new().prefix("mailroot-priv-").tempdir().expect("tempdir");
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod tempdir");
    dir
}

/// Every regular file under `dir` (one level of folders deep is all a Mailroot has).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files_under(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn every_thread_runs_as_the_service_user_and_mail_lands_in_its_files() {
    if !root_or_skip("every_thread_runs_as_the_service_user") {
        return;
    }
    let (uid, gid) = (id_of("-u", SERVICE_USER), id_of("-g", SERVICE_USER));
    assert_ne!(uid, 0);
    let top = reachable_tempdir();
    let mailroot = top.path().join("mailroot");
    // A file root left in Logs/ (an earlier run as root): given to the account at start.
    fs::create_dir_all(mailroot.join("Logs")).unwrap();
    fs::write(mailroot.join("Logs/events.log"), b"").unwrap();
    let conf = Conf {
        mailroot: Some(mailroot.clone()),
        // No `[delivery] hold`: the local recipient goes to Drop/ at once.
        extra: format!("\n[service]\nuser = \"{SERVICE_USER}\"\n"),
        ..Conf::default()
    };
    let mut server = Server::start(conf);
    let pid = server.pid().expect("running");

    // Every thread: real, effective, saved and filesystem ids are the account's, and no
    // capability is left (a root process keeps them until its uid changes).
    let tasks: Vec<_> =
        fs::read_dir(format!("/proc/{pid}/task")).expect("task list").flatten().collect();
    assert!(tasks.len() > 5, "expected the relay's threads, got {}", tasks.len());
    for t in &tasks {
        let status = fs::read_to_string(t.path().join("status")).expect("task status");
        let name = status.lines().next().unwrap_or_default().to_owned();
        assert_eq!(ids(&status, "Uid:"), vec![uid; 4], "{name}: {status}");
        assert_eq!(ids(&status, "Gid:"), vec![gid; 4], "{name}: {status}");
        for cap in ["CapEff:", "CapPrm:"] {
            let line = status.lines().find(|l| l.starts_with(cap)).expect("cap line");
            assert!(line.ends_with("0000000000000000"), "{name}: {line}");
        }
    }

    // A message from a real client is accepted and delivered into Drop/.
    let email = lettre::Message::builder()
        .from("sender@client.test".parse().unwrap())
        .to("postmaster@localhost".parse().unwrap())
        .subject("privilege drop")
        .body(String::from("delivered by the service account\r\n"))
        .unwrap();
    server.lettre().send(&email).expect("message accepted");
    let drop_dir = mailroot.join("Drop");
    let dropped = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let f: Vec<_> = files_under(&drop_dir)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect();
        (!f.is_empty()).then_some(f)
    })
    .unwrap_or_else(|| panic!("no Drop file\n{}", server.log_tail(4000)));
    let text = fs::read_to_string(&dropped[0]).unwrap();
    assert!(text.contains("delivered by the service account"), "{text}");

    // Every file and folder of the Mailroot is the account's: the spool segments and lock,
    // the event log root created, the Drop file.
    for p in [&mailroot, &mailroot.join("Queue"), &drop_dir, &mailroot.join("Logs")] {
        assert_eq!(fs::metadata(p).unwrap().uid(), uid, "{}", p.display());
    }
    let files = files_under(&mailroot);
    assert!(files.iter().any(|p| p.starts_with(mailroot.join("Queue"))), "{files:?}");
    for f in &files {
        let m = fs::metadata(f).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, gid), "{}", f.display());
    }

    // SIGHUP after the drop: the service account re-reads the file (readable by it here,
    // as the package's root:mailroot 0640 makes it) and applies the change.
    fs::set_permissions(server.dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&server.config_path, fs::Permissions::from_mode(0o644)).unwrap();
    let text = fs::read_to_string(&server.config_path).unwrap();
    fs::write(&server.config_path, text.replace("[limits]\n", "[limits]\nmax_recipients = 7\n"))
        .unwrap();
    send_signal(pid, libc::SIGHUP);
    let events = mailroot.join("Logs/events.log");
    let reload = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let log = fs::read_to_string(&events).unwrap_or_default();
        log.lines().find(|l| l.contains("\"config.reload")).map(str::to_owned)
    })
    .unwrap_or_else(|| panic!("no reload event\n{}", server.log_tail(4000)));
    assert!(
        reload.contains("\"config.reload\"") && reload.contains("limits.max_recipients"),
        "{reload}"
    );

    let status = server.terminate().expect("exit status");
    assert!(status.success(), "{status}\n{}", server.log_tail(4000));
}

#[test]
fn an_unknown_service_user_exits_2_naming_the_key() {
    // The account is looked up whoever runs this: no root needed.
    let dir = reachable_tempdir();
    let config = dir.path().join("mailroot.toml");
    for (toml, key, words) in [
        (
            "[service]\nuser = \"mailroot-no-such-user\"\n",
            "`service.user`",
            "no user \"mailroot-no-such-user\"",
        ),
        (
            "[service]\nuser = \"root\"\ngroup = \"mailroot-no-such-group\"\nallow_root = true\n",
            "`service.group`",
            "no group",
        ),
    ] {
        let text = format!(
            "mailroot = {:?}\n[[site]]\nname = \"d\"\nlisten = [\"127.0.0.1:2\"]\n{toml}",
            dir.path().join("mr").display().to_string()
        );
        fs::write(&config, text).unwrap();
        let out = mailroot(&["serve", "--config", config.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}: {err}");
        assert!(err.contains(key) && err.contains(words), "{toml}: {err}");
        assert!(!dir.path().join("mr").exists(), "refused before touching the Mailroot");
    }
}

#[test]
fn root_without_a_service_user_is_refused_unless_allowed() {
    if !root_or_skip("root_without_a_service_user_is_refused") {
        return;
    }
    let dir = reachable_tempdir();
    let config = dir.path().join("mailroot.toml");
    fs::write(
        &config,
        format!(
            "mailroot = {:?}\n[[site]]\nname = \"d\"\nlisten = [\"127.0.0.1:2\"]\n",
            dir.path().join("mr").display().to_string()
        ),
    )
    .unwrap();
    let out = mailroot(&["serve", "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`service.user`") && err.contains("allow_root = true"), "{err}");
    // The embedded default (no file, loopback only) is the quick start: it runs as root,
    // with a warning naming the keys a configuration file would need.
    embedded_default_runs_as_root_with_a_warning();
}

/// `mailroot serve` with no file, in a scratch working directory (its Mailroot is
/// `./mailroot`): greets on 127.0.0.1:2525, warned on stderr, exits 0 on SIGTERM.
fn embedded_default_runs_as_root_with_a_warning() {
    if std::net::TcpListener::bind("127.0.0.1:2525").is_err() {
        eprintln!("embedded default part skipped: 127.0.0.1:2525 is in use on this machine");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let stderr = fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(stderr)
        .spawn()
        .expect("spawn mailroot serve");
    let greeted = wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let s = std::net::TcpStream::connect("127.0.0.1:2525").ok()?;
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).ok()?;
        line.starts_with("220 ").then_some(())
    })
    .is_some();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().expect("wait mailroot");
    let err = fs::read_to_string(dir.path().join("stderr")).unwrap();
    assert!(greeted, "no 220 from the embedded default as root: {err}");
    assert!(err.contains("running as root on the embedded default"), "{err}");
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(dir.path().join("mailroot/Queue").is_dir(), "Mailroot made in the working dir");
}
