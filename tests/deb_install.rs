//! The Debian package, end to end: `deploy/test-install.sh` builds the .deb around the
//! binary under test with `deploy/build-deb.sh`, installs it with the real dpkg into a
//! throwaway root, checks the files, the `mailroot` user and the Mailroot folder, runs
//! `check-config` and `systemd-analyze verify`, starts the installed binary as root in that
//! root (it must drop to the `mailroot` user and accept a message from Python's smtplib),
//! and purges it. About 15 s, most of it compressing the debug binary.
//!
//! Skipped (with the reason printed) when not root or when a tool the script needs is
//! missing (the script's exit status 77).

use std::process::Command;

/// `deploy/test-install.sh`'s exit status for "cannot run here".
const EXIT_SKIP: i32 = 77;

#[test]
fn the_package_installs_creates_the_user_and_runs_as_it() {
    if Command::new("dpkg-deb").arg("--version").output().is_err() {
        eprintln!("deb_install: skipped: dpkg-deb is not installed");
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/test-install.sh");
    let out = Command::new("bash")
        .arg(script)
        .args(["--bin", env!("CARGO_BIN_EXE_mailroot")])
        .env_remove("RUST_LOG")
        .output()
        .expect("run deploy/test-install.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(EXIT_SKIP) {
        eprintln!("deb_install: {}", stderr.trim());
        return;
    }
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    // Every check printed its line; none failed; the key ones ran.
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
    assert!(!stdout.contains("FAILED"), "{stdout}");
    for must in [
        "ok: dpkg -i into the throwaway root",
        "ok: user mailroot created",
        "ok: check-config on the installed configuration",
        "ok: installed relay accepted a message",
        "ok: message delivered into Drop/",
        "ok: purge removed /var/spool/mailroot",
    ] {
        assert!(stdout.contains(must), "missing {must:?}:\n{stdout}");
    }
    assert!(stdout.lines().any(|l| l.starts_with("ok: all ") && l.contains(" threads run as uid")));
}
