//! The checker tested on itself: a small fixture crate (sources as strings) with a small
//! layer table; each case adds one file body and states which violations must be reported.
//! A deliberately wrong import must be caught, a correct one must not.

use std::collections::BTreeMap;

use super::{Table, check};

const TABLE: &str = "
| module | layer | owner | never imports |
| --- | --- | --- | --- |
| `smtp` | pure | shared | `spool` |
| `spool::format` | pure | shared | |
| `receive::policy` | pure | receive | |
| `deliver::route` | pure | deliver | |
| `net` | mechanism | shared | `smtp` |
| `spool` | mechanism | shared | |
| `receive` | service | receive | |
| `deliver` | service | deliver | |
| `relay` | wiring | shared | |

| pure code never names | because |
| --- | --- |
| `mio` | loops |
| `std::fs` | files |
| `std::net::TcpStream` | sockets |
| `std::thread` | threads |
| `std::time::Instant::now` | clock |
";

/// The fixture crate: every module exists and imports nothing; `probe` files are where a
/// case puts its source.
fn fixture() -> BTreeMap<String, String> {
    let files: &[(&str, &str)] = &[
        (
            "src/lib.rs",
            "pub mod smtp; pub mod spool; pub mod net; pub mod receive; pub mod deliver; pub mod relay;",
        ),
        ("src/smtp/mod.rs", "pub mod reply; pub mod probe;"),
        ("src/smtp/reply.rs", "pub struct Reply;"),
        ("src/spool/mod.rs", "pub mod format; pub mod probe; pub use format::QueueId;"),
        ("src/spool/format.rs", "pub struct QueueId;"),
        ("src/net/mod.rs", "pub mod worker; pub mod timer; pub mod probe;"),
        ("src/net/worker.rs", "pub struct Worker;"),
        ("src/net/timer.rs", "pub struct Wheel;"),
        ("src/receive/mod.rs", "pub mod inbound; pub mod policy; pub mod inbox; pub mod probe;"),
        ("src/receive/inbound.rs", "pub struct Inbound;"),
        ("src/receive/policy.rs", "pub fn allowed() {}"),
        ("src/receive/inbox.rs", "pub struct Batch;"),
        (
            "src/deliver/mod.rs",
            "pub mod outbound; pub mod route; pub mod inbox; pub mod shim;\n#[path = \"probe_file.rs\"] pub mod probe;",
        ),
        ("src/deliver/outbound.rs", "pub struct Outbound;"),
        ("src/deliver/route.rs", "pub fn route() {}"),
        ("src/deliver/inbox.rs", "pub struct Task;"),
        ("src/deliver/shim.rs", "pub use crate::spool::format::*;"),
        ("src/relay.rs", ""),
        ("src/smtp/probe.rs", ""),
        ("src/spool/probe.rs", ""),
        ("src/net/probe.rs", ""),
        ("src/receive/probe.rs", ""),
        ("src/deliver/probe_file.rs", ""),
    ];
    files.iter().map(|(p, s)| (p.to_string(), s.to_string())).collect()
}

/// Violations reported when `file` holds `src`, as `from -> to` strings.
fn violations(file: &str, src: &str) -> Vec<String> {
    let mut files = fixture();
    assert!(files.contains_key(file), "{file} is not in the fixture");
    files.insert(file.to_string(), src.to_string());
    let table = Table::parse(TABLE).unwrap();
    let report = check(&files, &table);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    report.violations.iter().map(|v| format!("{}:{} -> {}", v.file, v.line, v.to)).collect()
}

const PURE: &str = "src/smtp/probe.rs";
const MECH: &str = "src/net/probe.rs";
const RECEIVE: &str = "src/receive/probe.rs";
const DELIVER: &str = "src/deliver/probe_file.rs";

#[test]
fn wrong_imports_are_reported() {
    let cases: &[(&str, &str, &[&str])] = &[
        // pure -> mechanism, plain and nested
        (PURE, "use crate::net::worker::Worker;", &["src/smtp/probe.rs:1 -> net::worker"]),
        (
            PURE,
            "use crate::{smtp::reply, net::{worker::Worker, timer}};",
            &["src/smtp/probe.rs:1 -> net::timer", "src/smtp/probe.rs:1 -> net::worker"],
        ),
        (
            PURE,
            "fn f() {\n let w = crate::net::worker::Worker;\n}",
            &["src/smtp/probe.rs:2 -> net::worker"],
        ),
        // pure -> forbidden external, through nested trees and aliases
        (
            PURE,
            "use std::{fs, net::TcpStream};",
            &["src/smtp/probe.rs:1 -> std::fs", "src/smtp/probe.rs:1 -> std::net::TcpStream"],
        ),
        (
            PURE,
            "use std::{io, net::{IpAddr, TcpStream as S}};",
            &["src/smtp/probe.rs:1 -> std::net::TcpStream"],
        ),
        (
            PURE,
            "use std::time::Instant;\nfn f() { let _ = Instant::now(); }",
            &["src/smtp/probe.rs:2 -> std::time::Instant::now"],
        ),
        (
            PURE,
            "fn f() { std::thread::spawn(|| ()); }",
            &["src/smtp/probe.rs:1 -> std::thread::spawn"],
        ),
        (PURE, "use core::time; use mio::Poll;", &["src/smtp/probe.rs:1 -> mio::Poll"]),
        (PURE, "pub(crate) use ::std::fs::read;", &["src/smtp/probe.rs:1 -> std::fs::read"]),
        (PURE, "use std::net::*;", &["src/smtp/probe.rs:1 -> std::net"]),
        (PURE, "#[cfg(not(test))]\nuse std::fs;", &["src/smtp/probe.rs:2 -> std::fs"]),
        (
            PURE,
            "use std::thread as t;\nfn f() { t::sleep(d); }",
            &["src/smtp/probe.rs:1 -> std::thread", "src/smtp/probe.rs:2 -> std::thread::sleep"],
        ),
        // `never imports` column
        (PURE, "use crate::spool::format::QueueId;", &["src/smtp/probe.rs:1 -> spool::format"]),
        (MECH, "use crate::smtp::reply::Reply;", &["src/net/probe.rs:1 -> smtp::reply"]),
        // super:: resolves to the module it names
        (
            MECH,
            "use super::super::receive::inbound::Inbound;",
            &["src/net/probe.rs:1 -> receive::inbound"],
        ),
        // a service importing another service, in every spelling
        (
            RECEIVE,
            "use crate::deliver::outbound::Outbound;",
            &["src/receive/probe.rs:1 -> deliver::outbound"],
        ),
        (
            RECEIVE,
            "use crate::{deliver::{inbox::Task, outbound}};",
            &["src/receive/probe.rs:1 -> deliver::outbound"],
        ),
        (
            RECEIVE,
            "fn f() { crate::deliver::outbound::Outbound; }",
            &["src/receive/probe.rs:1 -> deliver::outbound"],
        ),
        (
            RECEIVE,
            "use super::super::deliver::route;",
            &["src/receive/probe.rs:1 -> deliver::route"],
        ),
        (
            DELIVER,
            "use crate::receive::inbound;\nfn f() { inbound::Inbound; }",
            &["src/deliver/probe_file.rs:1 -> receive::inbound"],
        ),
        // only the wiring imports the wiring
        (RECEIVE, "use crate::relay;", &["src/receive/probe.rs:1 -> relay"]),
    ];
    for (file, src, want) in cases {
        assert_eq!(violations(file, src), *want, "{src}");
    }
}

#[test]
fn correct_imports_pass() {
    let cases: &[(&str, &str)] = &[
        (PURE, "use crate::smtp::reply::Reply; use super::reply;"),
        (
            PURE,
            "use std::{fmt, net::{IpAddr, SocketAddr}, time::{Duration, Instant}};\nfn f(now: Instant) {}",
        ),
        (
            PURE,
            "// use crate::net::worker::Worker;\n/* std::fs::read */ fn f() { \"crate::net::x\"; }",
        ),
        (PURE, "#[cfg(test)]\nmod tests { use std::fs; use crate::net::worker::Worker; }"),
        (PURE, "#[cfg(test)]\nfn helper() { std::thread::spawn(|| ()); }\nfn after() {}"),
        (
            MECH,
            "use crate::spool::QueueId; use super::worker::Worker; use self::inner::X; mod inner { pub struct X; }",
        ),
        (MECH, "use crate::spool::{self, format::QueueId};"),
        (
            RECEIVE,
            "use crate::deliver::inbox::Task; use crate::receive::policy; use super::inbound::Inbound;",
        ),
        (RECEIVE, "use crate::net::worker::Worker; use crate::smtp::reply::Reply; use std::fs;"),
        (DELIVER, "use crate::receive::inbox::Batch; use super::route::route;"),
        ("src/relay.rs", "use crate::{deliver::outbound, receive::inbound::Inbound, net::worker};"),
    ];
    for (file, src) in cases {
        assert_eq!(violations(file, src), Vec::<String>::new(), "{src}");
    }
}

#[test]
fn re_exports_are_followed_to_the_defining_module() {
    // `crate::spool::QueueId` is `spool::format::QueueId`: a pure module may name it
    let pure_ok = violations("src/receive/policy.rs", "use crate::spool::QueueId;");
    assert_eq!(pure_ok, Vec::<String>::new());
    // through a compatibility module's one glob re-export too
    let through_glob = violations("src/receive/policy.rs", "use crate::deliver::shim::QueueId;");
    assert_eq!(through_glob, Vec::<String>::new());
    // but naming `spool` itself from pure code is importing a mechanism
    let pure_bad = violations("src/receive/policy.rs", "use crate::spool::probe;");
    assert_eq!(pure_bad, ["src/receive/policy.rs:1 -> spool::probe"]);
}

#[test]
fn table_problems_are_errors() {
    let mut files = fixture();
    files.insert(
        "src/lib.rs".into(),
        format!("{} pub mod extra; pub mod gone;", files["src/lib.rs"]),
    );
    files.insert("src/extra.rs".into(), String::new());
    let report = check(&files, &Table::parse(TABLE).unwrap());
    assert_eq!(
        report.errors,
        [
            "module \"gone\": file src/gone/mod.rs not found",
            "module extra has no row in the layer table",
        ]
    );
    let t = Table::parse(&format!(
        "{TABLE}\n| module | layer | owner | never imports |\n| `nope` | pure | shared | |\n"
    ))
    .unwrap();
    let report = check(&fixture(), &t);
    assert_eq!(report.errors, ["layer table row nope names no module"]);
}
