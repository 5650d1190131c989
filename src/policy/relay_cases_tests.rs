//! The open-relay test list (issue 12, "Relay and injection cases"), one named test per
//! category, run through the whole RCPT decision: the command parser
//! (`smtp::command::parse`, so syntax refusals are the replies a client really gets) and
//! then [`check_rcpt`].
//!
//! Configuration: `example.com` is local, `192.0.2.7` may relay, `198.51.100.1` is an
//! outsider (may not relay). For the outsider every trick below must be refused (501/553
//! syntax, or `554 5.7.1`), or accepted only when it is plainly mail for a local mailbox
//! that is delivered locally: the stored forward path (the `Display` of the mailbox) is
//! then checked to name a local domain, so `plan::route` can only send it to Drop.
//! The relay client and an authenticated outsider show the refusals are not "refuse
//! everything". Prior art read: abuse.net's relay test list, Postfix `allow_percent_hack`,
//! `swap_bangpath`, `resolve_dequoted_address` (Postfix refuses these by default too).

use super::*;
use crate::config::SystemDefaults;
use crate::plan::route::{Route, route};
use crate::smtp::command::{self, Command};

/// An outsider: not in `relay.allow`.
const OUTSIDER: &str = "198.51.100.1";
/// A client in `relay.allow`.
const RELAY_CLIENT: &str = "192.0.2.7";

fn cfg() -> Config {
    let sys = SystemDefaults { hostname: "mx.example.com".into(), cores: 1 };
    let text = "[domains]\nlocal = [\"example.com\"]\n\
                [relay]\nallow = [\"192.0.2.7/32\"]\n\
                [[domain]]\nname = \"*.partner.example\"\nrelay = true";
    Config::from_toml_str(text, &sys).unwrap_or_else(|e| panic!("{e}"))
}

/// What became of one `RCPT TO:` argument.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// 250, stored as this canonical forward path.
    Accepted(String),
    /// Refused with this code and enhanced status.
    Refused(u16, String),
}
use Verdict::{Accepted, Refused};

/// Run `RCPT TO:<arg>` from `client` through the parser and the policy.
fn decide(cfg: &Config, client: &str, authenticated: bool, arg: &str) -> Verdict {
    let line = format!("RCPT TO:{arg}");
    let refused = |r: Reply| {
        let status = r.status.map(|s| format!("{}.{}.{}", s.class, s.subject, s.detail));
        Refused(r.code, status.unwrap_or_default())
    };
    match command::parse(line.as_bytes()) {
        Err(e) => refused(Reply::from(&e)),
        Ok(Command::Rcpt { to, .. }) => {
            match check_rcpt(cfg, client.parse().unwrap(), authenticated, &to) {
                Ok(()) => Accepted(match &to {
                    ForwardPath::Postmaster => "Postmaster".into(),
                    ForwardPath::Mailbox(m) => m.to_string(),
                }),
                Err(r) => refused(r),
            }
        }
        Ok(other) => panic!("{line:?} parsed as {other:?}"),
    }
}

/// Each case: (RCPT TO argument, expected verdict for the outsider). Every acceptance must
/// be local mail: its stored domain routes to the Drop folder.
fn check(cases: &[(&str, Verdict)]) {
    let cfg = cfg();
    for (arg, want) in cases {
        let got = decide(&cfg, OUTSIDER, false, arg);
        assert_eq!(&got, want, "outsider RCPT TO:{arg}");
        match got {
            Accepted(fp) => {
                let domain = fp.rsplit_once('@').map_or("example.com", |(_, d)| d);
                assert!(
                    matches!(route(&cfg, domain), Route::Local { .. }),
                    "{arg} accepted as {fp} but not routed locally"
                );
            }
            Refused(code, status) => {
                assert!(matches!(code, 501 | 550 | 553 | 554), "{arg}: {code} {status}");
                assert!(
                    ["5.7.1", "5.1.3", "5.5.4", "5.6.7"].contains(&status.as_str()),
                    "{arg}: {code} {status}"
                );
            }
        }
    }
}

fn denied() -> Verdict {
    Refused(554, "5.7.1".into())
}

fn bad_syntax() -> Verdict {
    Refused(501, "5.1.3".into())
}

fn local(fp: &str) -> Verdict {
    Accepted(fp.into())
}

#[test]
fn percent_hack_is_refused() {
    check(&[
        ("<user%evil.org@example.com>", denied()),
        ("<user%evil.org%other.net@example.com>", denied()),
        ("<user%evil.org@EXAMPLE.COM>", denied()),
        ("<user%[192.0.2.99]@example.com>", bad_syntax()),
        ("<user%evil.org@[127.0.0.1]>", denied()),
        ("<\"user%evil.org\"@example.com>", denied()),
        ("<user%evil.org>", bad_syntax()),
        ("<user%example.com@evil.org>", denied()),
    ]);
}

#[test]
fn bang_paths_are_refused() {
    check(&[
        ("<evil.org!user@example.com>", denied()),
        ("<evil.org!other.net!user@example.com>", denied()),
        ("<evil.org!user>", bad_syntax()),
        ("<\"evil.org!user\"@example.com>", denied()),
        ("<evil.org!user@[127.0.0.1]>", denied()),
        ("<example.com!user@evil.org>", denied()),
    ]);
}

#[test]
fn quoted_local_parts_with_at_are_refused() {
    check(&[
        ("<\"user@evil.org\"@example.com>", denied()),
        ("<\"user\\@evil.org\"@example.com>", denied()),
        ("<\"user@evil.org\">", bad_syntax()),
        ("<\"user@evil.org\"@[127.0.0.1]>", denied()),
        ("<\"@evil.org:user@other.net\"@example.com>", denied()),
        // A quoted local part without a trick is ordinary local mail.
        ("<\"john doe\"@example.com>", local("\"john doe\"@example.com")),
        ("<\"user\"@example.com>", local("user@example.com")),
    ]);
}

#[test]
fn source_routes_are_refused_unless_the_mailbox_is_local() {
    check(&[
        ("<@example.com:user@evil.org>", denied()),
        ("<@example.com,@x:user@evil.org>", denied()),
        ("<@example.com,@example.com:user@evil.org>", denied()),
        // RFC 5321 `At-domain` takes a name only, no address literal.
        ("<@[127.0.0.1]:user@evil.org>", bad_syntax()),
        // The route is ignored (RFC 5321 §4.1.1.3, App. C): local mail stays local, and
        // the stored path has no route left in it.
        ("<@evil.org:user@example.com>", local("user@example.com")),
        ("<@evil.org,@other.net:user@example.com>", local("user@example.com")),
        ("<@:user@evil.org>", bad_syntax()),
        ("<@example.com user@evil.org>", bad_syntax()),
        ("<@example.com;user@evil.org>", bad_syntax()),
    ]);
}

/// Address literals are never local domains, not even our own address (`[domains] local`
/// holds names only; the config refuses literals there). So `user@[<our address>]` is a
/// relay request like any other: refused for outsiders (a local domain cannot be spoofed
/// through a literal), and from a relay client it is routed to that address, where the
/// delivery loop check answers "Cannot connect to self" (5.4.6) instead of looping.
#[test]
fn ip_literals_are_never_local() {
    check(&[
        ("<user@[1.2.3.4]>", denied()),
        ("<user@[127.0.0.1]>", denied()),
        ("<user@[127.000.000.001]>", denied()),
        ("<user@[IPv6:::1]>", denied()),
        ("<user@[ipv6:0:0:0:0:0:0:0:1]>", denied()),
        ("<user@[IPv6:::ffff:127.0.0.1]>", denied()),
        ("<user@[0.0.0.0]>", denied()),
        ("<user@[x-local:example.com]>", denied()),
        ("<Postmaster@[127.0.0.1]>", denied()),
        ("<user@1.2.3.4>", denied()),
        // Not literals at all: a name in brackets, decimal and hex forms.
        ("<user@[example.com]>", bad_syntax()),
        ("<user@[2130706433]>", bad_syntax()),
        ("<user@[0x7f.0.0.1]>", bad_syntax()),
        ("<user@[127.0.0.1.]>", bad_syntax()),
        ("<user@[IPv6:example.com]>", bad_syntax()),
        ("<user@[1.2.3.256]>", bad_syntax()),
    ]);
}

/// Case does not matter; a trailing dot is refused as syntax (RFC 5321 `Domain` has
/// none), so `user@evil.org.` can never be relayed and `user@example.com.` never
/// reaches a different place than `user@example.com`.
#[test]
fn upper_case_and_trailing_dot_domains() {
    check(&[
        ("<user@EXAMPLE.COM>", local("user@EXAMPLE.COM")),
        ("<user@Example.Com>", local("user@Example.Com")),
        ("<USER@example.com>", local("USER@example.com")),
        ("<user@example.com.>", Refused(501, "5.1.3".into())),
        ("<user@EXAMPLE.COM.>", bad_syntax()),
        ("<user@evil.org.>", bad_syntax()),
        ("<user@EVIL.ORG>", denied()),
        ("<Postmaster>", local("Postmaster")),
        ("<POSTMASTER>", local("Postmaster")),
        ("<postmaster@example.com>", local("postmaster@example.com")),
        ("<postmaster@evil.org>", denied()),
    ]);
}

#[test]
fn empty_labels_and_odd_characters_are_refused() {
    check(&[
        ("<user@example..com>", bad_syntax()),
        ("<user@.example.com>", bad_syntax()),
        ("<user@example.com..>", bad_syntax()),
        ("<user@>", bad_syntax()),
        ("<@example.com>", bad_syntax()),
        ("<user@exa_mple.com>", bad_syntax()),
        ("<user@-example.com>", bad_syntax()),
        ("<user@example-.com>", bad_syntax()),
        ("<user@exa%mple.com>", bad_syntax()),
        ("<user@example.com\\>", bad_syntax()),
        ("<user@exa(mple).com>", bad_syntax()),
        ("<user@example.com(comment)>", bad_syntax()),
        ("<user@example.com=evil.org>", bad_syntax()),
        ("<user @example.com>", Refused(501, "5.1.3".into())),
        ("<user@ example.com>", bad_syntax()),
        ("<user@example.com\u{3002}evil.org>", denied()),
        ("<user@example\u{3002}com>", denied()),
        ("<user@\u{435}xample.com>", denied()),
    ]);
}

#[test]
fn double_at_and_unbalanced_brackets_are_refused() {
    check(&[
        ("<user@example.com@evil.org>", bad_syntax()),
        ("<user@evil.org@example.com>", bad_syntax()),
        ("<user@@example.com>", bad_syntax()),
        ("<user@example.com", bad_syntax()),
        ("user@example.com>", bad_syntax()),
        ("user@example.com", bad_syntax()),
        ("<<user@example.com>>", bad_syntax()),
        ("<user@example.com>>", Refused(501, "5.5.4".into())),
        ("<user@example.com><user@evil.org>", Refused(501, "5.5.4".into())),
        ("<user@example.com> <user@evil.org>", Refused(501, "5.5.4".into())),
        ("<user@[1.2.3.4>", bad_syntax()),
        ("<user@1.2.3.4]>", bad_syntax()),
        ("<user@[[1.2.3.4]]>", bad_syntax()),
        ("<[user@evil.org]@example.com>", bad_syntax()),
        ("<user@evil.org>@example.com", Refused(501, "5.5.4".into())),
    ]);
}

#[test]
fn local_domain_as_a_suffix_or_prefix_is_not_local() {
    check(&[
        ("<user@example.com.evil.org>", denied()),
        ("<user@evilexample.com>", denied()),
        ("<user@evil-example.com>", denied()),
        ("<user@sub.example.com>", denied()),
        ("<user@example.co>", denied()),
        ("<user@example.com-evil.org>", denied()),
        ("<user@partner.example.evil.org>", denied()),
        ("<user@evilpartner.example>", denied()),
    ]);
}

/// The same tricks from a relay client, and from an authenticated outsider: plain remote
/// mail is accepted (so the refusals above are about the address, not "refuse all"),
/// while local-part tricks and source routes stay refused for everybody.
#[test]
fn relay_is_allowed_where_configured() {
    let cfg = cfg();
    // (client, authenticated, RCPT TO argument, accepted?)
    let cases: &[(&str, bool, &str, bool)] = &[
        (RELAY_CLIENT, false, "<user@evil.org>", true),
        (RELAY_CLIENT, false, "<user@[1.2.3.4]>", true),
        (RELAY_CLIENT, false, "<user@[IPv6:2001:db8::1]>", true),
        (RELAY_CLIENT, false, "<user@example.com.evil.org>", true),
        (OUTSIDER, true, "<user@evil.org>", true),
        (OUTSIDER, true, "<user@[1.2.3.4]>", true),
        (OUTSIDER, false, "<user@a.partner.example>", true),
        (OUTSIDER, false, "<user@A.PARTNER.EXAMPLE>", true),
        (RELAY_CLIENT, false, "<user%evil.org@example.com>", false),
        (RELAY_CLIENT, false, "<evil.org!user@example.com>", false),
        (RELAY_CLIENT, false, "<\"user@evil.org\"@example.com>", false),
        (RELAY_CLIENT, false, "<@example.com:user@evil.org>", false),
        (OUTSIDER, true, "<user%evil.org@example.com>", false),
        (OUTSIDER, true, "<@example.com:user@evil.org>", false),
        (OUTSIDER, false, "<user%evil.org@a.partner.example>", false),
        (OUTSIDER, false, "<@x.example:user@a.partner.example>", false),
        (OUTSIDER, false, "<user@evil.org>", false),
    ];
    for &(client, auth, arg, want) in cases {
        let got = decide(&cfg, client, auth, arg);
        assert_eq!(matches!(got, Accepted(_)), want, "{client} auth={auth} {arg} -> {got:?}");
        if !want {
            assert_eq!(got, denied(), "{client} auth={auth} {arg}");
        }
    }
}
