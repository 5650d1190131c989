//! Architecture check: keeps the layer table of `src/LAYERS.md` true by parsing the sources.
//!
//! `layer_check` (this file's helper module, tested on fixture crates in
//! `layer_check/self_test.rs`) follows every `crate::`/`self::`/`super::` path, in nested
//! `use` trees and inline, to the module it names and applies the table's rules: pure
//! modules import only pure ones and never name `mio`, `std::fs`, sockets, threads or the
//! clock; mechanisms import no service; a service imports another service's `inbox` only;
//! nothing but the wiring imports the wiring; `net` knows nothing about SMTP or the spool.
//! Besides: the table is quoted verbatim in `ARCHITECTURE.md` and included in the `lib.rs`
//! docs, `unsafe` appears only in `src/spool/map.rs`, every module has a `//!` header, and
//! files stay under 800 lines.

mod layer_check;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use layer_check::{Table, Violation, check, is_prefix};

/// Imports that break the table but are allowed for now (`from` module prefix, `to` module
/// prefix, the change that removes it). Empty since the issue-13 runner split and outbound
/// delivery on `net` merged; an entry that no longer matches anything fails the test, so
/// the list can only shrink.
const KNOWN_VIOLATIONS: &[(&str, &str, &str)] = &[];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(p).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for e in entries {
            rust_files(&e, out);
        }
    } else if p.extension().is_some_and(|e| e == "rs") {
        out.push(p.to_path_buf());
    }
}

fn files_under(rel: &str) -> Vec<PathBuf> {
    let mut v = Vec::new();
    rust_files(&root().join(rel), &mut v);
    v
}

/// Every source file of the library, keyed by its path relative to the crate root.
fn crate_sources() -> BTreeMap<String, String> {
    files_under("src")
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
            (rel, fs::read_to_string(&f).unwrap())
        })
        .collect()
}

fn layers_md() -> String {
    fs::read_to_string(root().join("src/LAYERS.md")).unwrap()
}

fn known(v: &Violation) -> Option<usize> {
    KNOWN_VIOLATIONS
        .iter()
        .position(|(from, to, _)| is_prefix(from, &v.from) && is_prefix(to, &v.to))
}

#[test]
fn layer_table_is_kept() {
    let table = Table::parse(&layers_md()).unwrap();
    let report = check(&crate_sources(), &table);
    assert!(report.errors.is_empty(), "layer table problems:\n{}", report.errors.join("\n"));
    assert!(report.modules.len() > 50, "module tree not found: {:?}", report.modules);
    let mut used = vec![false; KNOWN_VIOLATIONS.len()];
    let mut new = Vec::new();
    for v in &report.violations {
        match known(v) {
            Some(i) => used[i] = true,
            None => new.push(v.to_string()),
        }
    }
    assert!(new.is_empty(), "layer violations (rules in src/LAYERS.md):\n{}", new.join("\n"));
    let stale: Vec<_> = KNOWN_VIOLATIONS
        .iter()
        .zip(&used)
        .filter(|(_, u)| !**u)
        .map(|((f, t, why), _)| format!("{f} -> {t} ({why})"))
        .collect();
    assert!(
        stale.is_empty(),
        "KNOWN_VIOLATIONS entries now gone, remove them:\n{}",
        stale.join("\n")
    );
}

/// Prints today's known violations with their lines (`cargo test --test architecture --
/// --nocapture known_violations_are_listed`).
#[test]
fn known_violations_are_listed() {
    let table = Table::parse(&layers_md()).unwrap();
    for v in check(&crate_sources(), &table).violations.iter().filter(|v| known(v).is_some()) {
        println!("known: {v}");
    }
}

#[test]
fn layer_table_is_quoted_not_retyped() {
    let md = layers_md();
    let body = md.split_once('\n').map_or("", |(_, rest)| rest).trim();
    let arch = fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    assert!(
        arch.contains(body),
        "ARCHITECTURE.md must quote src/LAYERS.md verbatim (everything after its heading)"
    );
    let lib = fs::read_to_string(root().join("src/lib.rs")).unwrap();
    assert!(
        lib.contains(r#"#![doc = include_str!("LAYERS.md")]"#),
        "src/lib.rs must include src/LAYERS.md in its docs"
    );
}

#[test]
fn unsafe_only_in_spool_map() {
    let mut violations = Vec::new();
    for f in files_under("src") {
        if f.ends_with("spool/map.rs") {
            continue;
        }
        let src = fs::read_to_string(&f).unwrap();
        if src.contains("unsafe {") || src.contains("unsafe fn") || src.contains("unsafe impl") {
            violations.push(f.display().to_string());
        }
    }
    assert!(violations.is_empty(), "unsafe outside spool/map.rs:\n{}", violations.join("\n"));
}

#[test]
fn every_module_has_a_header_doc() {
    let mut missing = Vec::new();
    for f in files_under("src").into_iter().chain(files_under("tests/layer_check")) {
        let src = fs::read_to_string(&f).unwrap();
        if !src.trim_start().starts_with("//!") {
            missing.push(f.display().to_string());
        }
    }
    assert!(missing.is_empty(), "modules without a //! header:\n{}", missing.join("\n"));
}

/// Files allowed over `MAX_FILE_LINES` for now (path, the change that splits it). Like
/// `KNOWN_VIOLATIONS`, an entry that no longer applies fails the test.
const KNOWN_LONG_FILES: &[(&str, &str)] = &[];

/// STYLE.md: one concept per file, files under ~800 lines.
const MAX_FILE_LINES: usize = 800;

#[test]
fn files_stay_under_800_lines() {
    let mut long = Vec::new();
    for f in files_under("src").into_iter().chain(files_under("tests")) {
        let rel = f.strip_prefix(root()).unwrap().to_string_lossy().replace('\\', "/");
        let lines = fs::read_to_string(&f).unwrap().lines().count();
        if lines > MAX_FILE_LINES {
            long.push((rel, lines));
        }
    }
    let new: Vec<_> = long
        .iter()
        .filter(|(rel, _)| !KNOWN_LONG_FILES.iter().any(|(k, _)| k == rel))
        .map(|(rel, n)| format!("{rel}: {n} lines"))
        .collect();
    assert!(new.is_empty(), "files over {MAX_FILE_LINES} lines:\n{}", new.join("\n"));
    let stale: Vec<_> = KNOWN_LONG_FILES
        .iter()
        .filter(|(k, _)| !long.iter().any(|(rel, _)| rel == k))
        .map(|(k, why)| format!("{k} ({why})"))
        .collect();
    assert!(
        stale.is_empty(),
        "KNOWN_LONG_FILES entries now short, remove them:\n{}",
        stale.join("\n")
    );
}
