//! Running the built `mailroot` binary as a command-line tool (no server of its own):
//! shared by the CLI tests (`cli_config.rs`, `cli_queue.rs`) and, through `common`, by the
//! end-to-end tests that call `queue`, `stats` or `check-config` beside a running server.
//!
//! `RUST_LOG` is cleared for every run so that output is deterministic.

#![allow(dead_code)] // each test binary uses a different subset of the harness

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_mailroot");

/// `mailroot <args>`.
pub(crate) fn mailroot(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run mailroot: {e}"))
}

/// `mailroot <args> --config <config>`.
pub(crate) fn mailroot_with_config(args: &[&str], config: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run mailroot {args:?}: {e}"))
}

/// Write `text` to `dir/name` and run `mailroot check-config` on it.
pub(crate) fn check_config_file(dir: &Path, name: &str, text: &str) -> Output {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    mailroot_with_config(&["check-config"], &path)
}

/// Output bytes as text (lossy).
pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Panics, showing the exit status, stdout and stderr, unless `out` is a success.
pub(crate) fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `mailroot hash-password` with `password` on stdin: (exit code, stdout, stderr).
pub(crate) fn hash_password(password: &str) -> (i32, String, String) {
    let mut child = Command::new(BIN)
        .arg("hash-password")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run mailroot hash-password");
    child.stdin.take().expect("stdin").write_all(password.as_bytes()).expect("write password");
    let out = child.wait_with_output().expect("wait");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}
