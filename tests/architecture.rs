//! Architecture check: keeps the dependency direction of DESIGN.md true by scanning sources.
//!
//! Layer 0 (pure) modules never import mio, rustls, crossbeam, memmap2, std::fs, sockets or
//! threads and never read the clock; `net` knows nothing about SMTP; `smtp` knows nothing
//! about sockets; only `spool/map.rs` may contain `unsafe`.

use std::fs;
use std::path::{Path, PathBuf};

/// Files (or directories) of layer 0, relative to the crate root.
const PURE: &[&str] = &[
    "src/smtp",
    "src/spool/format.rs",
    "src/config",
    "src/policy",
    "src/plan",
    "src/dsn",
    "src/dns/wire.rs",
    "src/dns/cache.rs",
    "src/dns/conf.rs",
    "src/dns/hosts.rs",
    "src/deliver/dest.rs",
    "src/deliver/outcome.rs",
    "src/deliver/inbox.rs",
    "src/queue/inbox.rs",
    "src/queue/schedule.rs",
    "src/queue/schedule_types.rs",
    "src/pickup/parse.rs",
    "src/stats/names.rs",
    "src/stats/render.rs",
];

/// Substrings a pure module must never contain (outside `#[cfg(test)]` tails).
const FORBIDDEN_IN_PURE: &[&str] = &[
    "mio::",
    "rustls",
    "crossbeam",
    "memmap2",
    "std::fs",
    "std::net::TcpStream",
    "std::net::TcpListener",
    "std::net::UdpSocket",
    "std::thread",
    "Instant::now",
    "SystemTime::now",
    "libc::",
];

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

/// The part of a source file before its unit tests (tests may use anything).
fn non_test_source(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}

fn files_under(rel: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = Vec::new();
    rust_files(&root.join(rel), &mut v);
    v
}

#[test]
fn pure_layer_does_no_io() {
    let mut violations = Vec::new();
    for rel in PURE {
        for f in files_under(rel) {
            let src = non_test_source(&f);
            for bad in FORBIDDEN_IN_PURE {
                if src.contains(bad) {
                    violations.push(format!("{} uses {bad}", f.display()));
                }
            }
        }
    }
    assert!(violations.is_empty(), "layer-0 violations:\n{}", violations.join("\n"));
}

#[test]
fn net_knows_nothing_about_smtp() {
    let mut violations = Vec::new();
    for f in files_under("src/net") {
        let src = non_test_source(&f);
        for bad in ["crate::smtp", "crate::receive", "crate::spool", "crate::relay"] {
            if src.contains(bad) {
                violations.push(format!("{} uses {bad}", f.display()));
            }
        }
    }
    assert!(violations.is_empty(), "net layering violations:\n{}", violations.join("\n"));
}

#[test]
fn smtp_knows_nothing_about_sockets_or_services() {
    let mut violations = Vec::new();
    for f in files_under("src/smtp") {
        let src = non_test_source(&f);
        for bad in ["crate::net", "crate::receive", "crate::spool", "crate::relay", "crate::cli"] {
            if src.contains(bad) {
                violations.push(format!("{} uses {bad}", f.display()));
            }
        }
    }
    assert!(violations.is_empty(), "smtp layering violations:\n{}", violations.join("\n"));
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
    for f in files_under("src") {
        let src = fs::read_to_string(&f).unwrap();
        if !src.trim_start().starts_with("//!") {
            missing.push(f.display().to_string());
        }
    }
    assert!(missing.is_empty(), "modules without a //! header:\n{}", missing.join("\n"));
}
