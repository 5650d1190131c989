//! Short crash trials (issue 12; the full 100-trial run is `perf/crash_trials.sh`, numbers
//! in perf/RESULTS.md): `perf/crash_trials.py` drives the REAL binary with Python smtplib
//! clients and an aiosmtpd sink, SIGKILLs it at chosen instants (under load, inside a
//! delivery, at a segment roll), optionally damages the newest spool segment, restarts it
//! on the same Mailroot folder and drains to the sink. Here a handful of trials with a
//! small time bound; the assertions are on the counts only (no timing): nothing
//! acknowledged is lost, nothing delivered is corrupt, every drain finishes, every
//! recoverable torn tail is logged, and the trials did something (messages acknowledged,
//! each mode and damage applied).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// Run the driver with `args`; the parsed `{"summary", "trials"}` JSON. The driver must
/// exit with success when `expect_success`, with status 1 otherwise.
fn run_trials(name: &str, args: &[&str], expect_success: bool) -> Value {
    let dir = tempfile::Builder::new().prefix("mailroot-crash-trials-").tempdir().expect("tmp");
    let json = dir.path().join("trials.json");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("perf/crash_trials.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--binary", env!("CARGO_BIN_EXE_mailroot")])
        .args(["--seed", "12", "--clients", "3", "--max-load-seconds", "1.5"])
        .args(["--drain-seconds", "60", "--max-per-client", "300"])
        .arg("--work")
        .arg(dir.path().join("work"))
        .arg("--json-out")
        .arg(&json)
        .args(args)
        .output()
        .expect("run python3 perf/crash_trials.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(dir.path().join("work/server.log")).unwrap_or_default();
    let tail = &log[log.len().saturating_sub(4000)..];
    let want = if expect_success { Some(0) } else { Some(1) };
    assert!(
        out.status.code() == want,
        "{name}: crash trials failed ({}):\n{stdout}\n{stderr}\n--- server log tail ---\n{tail}",
        out.status
    );
    let text = std::fs::read_to_string(&json).expect("trials json");
    serde_json::from_str(&text).expect("parse trials json")
}

fn trials(v: &Value) -> &Vec<Value> {
    v["trials"].as_array().expect("trials array")
}

fn num(t: &Value, key: &str) -> u64 {
    t[key].as_u64().unwrap_or_else(|| panic!("{key} in {t}"))
}

/// What must hold in every trial, whatever its mode.
fn assert_every_trial_sound(v: &Value) {
    for t in trials(v) {
        assert_eq!(num(t, "lost"), 0, "lost messages: {t}");
        assert_eq!(num(t, "corrupt"), 0, "corrupt deliveries: {t}");
        assert_eq!(t["drained"], true, "drain did not finish: {t}");
        assert_eq!(t["unlogged"], false, "torn tail recovered without a logged reason: {t}");
        assert!(num(t, "delivered") + num(t, "excused") >= num(t, "acknowledged"), "{t}");
    }
    let acked: u64 = trials(v).iter().map(|t| num(t, "acknowledged")).sum();
    assert!(acked > 0, "no message was acknowledged in any trial: {v}");
}

#[test]
fn sigkill_under_load_in_delivery_and_at_a_seal_loses_nothing() {
    let v = run_trials("kill modes", &["--trials", "4", "--torn-modes", "none"], true);
    assert_every_trial_sound(&v);
    let modes: Vec<&str> = trials(&v).iter().map(|t| t["kill_mode"].as_str().unwrap()).collect();
    assert_eq!(modes, ["load", "delivery", "seal-pre", "seal-post"]);
    // The delivery kill comes from inside the sink, so it always fires (the seal kills may
    // fall back to the time bound on a slow machine: reported, not asserted).
    assert_eq!(trials(&v)[1]["kill_fired"], true, "{v}");
}

#[test]
fn torn_tail_of_the_newest_segment_loses_only_what_lies_after_it() {
    let v = run_trials(
        "torn modes",
        &[
            "--trials",
            "4",
            "--kill-modes",
            "load",
            "--torn-modes",
            "truncate,flip,zero-page,garbage",
        ],
        true,
    );
    assert_every_trial_sound(&v);
    for (t, mode) in trials(&v).iter().zip(["truncate", "flip", "zero-page", "garbage"]) {
        assert_eq!(t["torn_mode"], mode, "{t}");
        assert!(t["torn"]["damaged_at"].as_u64().is_some(), "no segment was damaged: {t}");
        if mode != "zero-page" {
            // Non-zero bytes remain where the record was torn: recovery must say so.
            assert!(!t["recovery_log"].as_array().expect("log").is_empty(), "{t}");
        }
    }
    // Appended garbage is after every record: nothing may be excused there.
    assert_eq!(num(&trials(&v)[3], "excused"), 0, "{v}");
}

#[test]
fn the_corruption_check_sees_a_forged_record() {
    // The oracle itself: a pending record whose content is changed and whose checksums are
    // recomputed passes recovery (nothing can tell), so the sink gets different bytes than
    // the client sent. The driver must count it as corrupt and fail.
    let v = run_trials(
        "forge",
        &["--trials", "1", "--kill-modes", "load", "--torn-modes", "forge"],
        false,
    );
    let t = &trials(&v)[0];
    assert_eq!(t["torn_mode"], "forge", "{t}");
    assert!(num(t, "corrupt") >= 1, "forged record not seen as corrupt: {t}");
    assert_eq!(v["summary"]["failed_trials"], serde_json::json!([0]), "{v}");
}
