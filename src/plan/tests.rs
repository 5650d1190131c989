//! Tests of the delivery planner: tables of (envelope, job, content) -> plan, no sockets,
//! no files, no clock.

use std::path::PathBuf;

use super::*;
use crate::config::SystemDefaults;
use crate::spool::format::EnvelopeRecipient;

fn cfg(extra: &str) -> Config {
    let sys = SystemDefaults { hostname: "mx.example.org".into(), cores: 1 };
    let text = format!(
        "mailroot = \"/m\"\n{extra}\n[domains]\nlocal = [\"example.org\"]\n\
         [[domain]]\nname = \"corp.example\"\nsmart_host = \"[10.1.2.3]:2525\""
    );
    Config::from_toml_str(&text, &sys).unwrap_or_else(|e| panic!("{e}"))
}

fn rcpt(fp: &str, notify: u8, orcpt: Option<&str>) -> EnvelopeRecipient {
    EnvelopeRecipient { forward_path: fp.into(), notify, orcpt: orcpt.map(Into::into) }
}

fn env() -> Envelope {
    Envelope {
        reverse_path: "alice@internal.test".into(),
        recipients: vec![
            rcpt("bob@example.org", 0, None),
            rcpt("carol@corp.example", NOTIFY_SUCCESS | NOTIFY_FAILURE, Some("rfc822;c@x")),
            rcpt("dave@corp.example", 0, None),
        ],
        body: 1,
        smtputf8: false,
        ret: 2,
        envid: Some("env-1".into()),
        client_addr: "192.0.2.1:4567".into(),
        helo: "client.example".into(),
        arrival_unix_ms: 0,
        site: "default".into(),
    }
}

fn job(reverse_path: &str, rcpts: &[(&str, Option<Notify>, Option<&str>)], size: u64) -> Job {
    Job {
        reverse_path: reverse_path.into(),
        recipients: rcpts
            .iter()
            .map(|&(fp, notify, orcpt)| JobRecipient {
                forward_path: fp.into(),
                notify,
                orcpt: orcpt.map(Into::into),
            })
            .collect(),
        body_8bit: true,
        smtputf8: false,
        size,
        ret: Some(Ret::Hdrs),
        envid: Some("env-1".into()),
    }
}

#[test]
fn plans() {
    let plain = cfg("");
    let masq = cfg("[relay]\nmasquerade_domain = \"corp.test\"\nmax_hop_count = 2");
    let content: &[u8] = b"Received: a\r\nReceived: b\r\n\r\nbody\r\n";
    let looped: &[u8] = b"Received: a\r\nReceived: b\r\nReceived: c\r\n\r\nbody\r\n";
    let local = Route::Local { drop_dir: PathBuf::from("/m/Drop") };
    let smart = route::route(&plain, "corp.example");
    let both = Some(Notify { never: false, success: true, failure: true, delay: false });
    let carol = ("carol@corp.example", both, Some("rfc822;c@x"));
    let dave = ("dave@corp.example", None, None);
    let size = content.len() as u64;
    /// (config, domain, recipient indexes, content, plan)
    type Case<'a> = (&'a Config, &'a str, &'a [u32], &'a [u8], Plan);
    let cases: Vec<Case<'_>> = vec![
        (
            &plain,
            "example.org",
            &[0],
            content,
            Plan::Deliver {
                route: local.clone(),
                job: job("alice@internal.test", &[("bob@example.org", None, None)], size),
            },
        ),
        (
            &masq,
            "example.org",
            &[0],
            content,
            Plan::Deliver {
                route: local,
                job: job("alice@internal.test", &[("bob@example.org", None, None)], size),
            },
        ),
        (
            &plain,
            "corp.example",
            &[2, 1],
            content,
            Plan::Deliver {
                route: smart.clone(),
                job: job("alice@internal.test", &[dave, carol], size),
            },
        ),
        (
            &masq,
            "corp.example",
            &[1, 9],
            content,
            Plan::Deliver { route: smart, job: job("alice@corp.test", &[carol], size) },
        ),
        (&masq, "corp.example", &[1], looped, Plan::RoutingLoop { max_hop_count: 2 }),
        (&masq, "example.org", &[0], looped, Plan::RoutingLoop { max_hop_count: 2 }),
    ];
    for (c, domain, rcpts, content, want) in cases {
        assert_eq!(plan(c, &env(), domain, rcpts, content), want, "{domain} {rcpts:?}");
    }
}

#[test]
fn null_sender_and_7bit() {
    let mut e = env();
    e.reverse_path.clear();
    e.body = 0;
    e.ret = 0;
    let c = cfg("[relay]\nmasquerade_domain = \"corp.test\"");
    let Plan::Deliver { job, .. } = plan(&c, &e, "corp.example", &[2], b"x") else {
        panic!("not a delivery")
    };
    assert_eq!((job.reverse_path.as_str(), job.body_8bit, job.ret, job.size), ("", false, None, 1));
}

#[test]
fn masquerading() {
    // (reverse path, masquerade domain, sent as)
    let cases: &[(&str, Option<&str>, &str)] = &[
        ("alice@internal.test", Some("corp.test"), "alice@corp.test"),
        ("alice@internal.test", None, "alice@internal.test"),
        ("", Some("corp.test"), ""),
        ("a@b@c", Some("d"), "a@b@d"),
    ];
    for &(rp, m, want) in cases {
        assert_eq!(masquerade(rp, m), want, "{rp:?} {m:?}");
    }
}

#[test]
fn notify_bits() {
    /// (never, success, failure, delay)
    type Flags = (bool, bool, bool, bool);
    let cases: &[(u8, Option<Flags>)] = &[
        (0, None),
        (NOTIFY_NEVER, Some((true, false, false, false))),
        (NOTIFY_SUCCESS | NOTIFY_FAILURE, Some((false, true, true, false))),
        (NOTIFY_DELAY, Some((false, false, false, true))),
    ];
    for &(bits, want) in cases {
        let got = notify_of(bits).map(|n| (n.never, n.success, n.failure, n.delay));
        assert_eq!(got, want, "{bits}");
    }
    assert_eq!(ret_of(1), Some(Ret::Full));
    assert_eq!(ret_of(2), Some(Ret::Hdrs));
    assert_eq!(ret_of(0), None);
}
