//! Unit tests for `dns::wire`: tables of (input, expected), plus a decoder proptest.

use std::net::{Ipv4Addr, Ipv6Addr};

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, SOA};
use proptest::prelude::*;

use super::*;

fn name(s: &str) -> Name {
    Name::from_ascii(s).unwrap()
}

fn rec(owner: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(name(owner), ttl, data)
}

fn mx(pref: u16, exchange: &str) -> RData {
    RData::MX(MX::new(pref, name(exchange)))
}

fn a(ip: [u8; 4]) -> RData {
    RData::A(A(Ipv4Addr::from(ip)))
}

fn soa(minimum: u32) -> RData {
    RData::SOA(SOA::new(name("ns.example."), name("host.example."), 1, 3600, 600, 86400, minimum))
}

/// A response to (`id`, `qname`, `qtype`) with the given answers and authorities, encoded.
fn response(
    id: u16,
    qname: &str,
    qtype: RecordType,
    rcode: ResponseCode,
    answers: Vec<Record>,
    authorities: Vec<Record>,
) -> Vec<u8> {
    let mut msg = Message::new(id, MessageType::Response, OpCode::Query);
    msg.metadata.response_code = rcode;
    msg.add_query(Query::query(name(qname), qtype));
    msg.add_answers(answers);
    msg.add_authorities(authorities);
    msg.to_vec().unwrap()
}

fn mxr(preference: u16, exchange: &str) -> MxRecord {
    MxRecord { preference, exchange: exchange.to_string() }
}

#[test]
fn encode_query_round_trips() {
    let cases = [
        ("example.com", QueryType::Mx, RecordType::MX),
        ("Example.COM.", QueryType::A, RecordType::A),
        ("mx.example.org", QueryType::Aaaa, RecordType::AAAA),
        ("bücher.example", QueryType::Mx, RecordType::MX),
    ];
    for (qname, qtype, rtype) in cases {
        let bytes = encode_query(0x1234, qname, qtype, Edns0::On).unwrap();
        let msg = Message::from_vec(&bytes).unwrap();
        assert_eq!(msg.metadata.id, 0x1234, "{qname}");
        assert!(msg.metadata.recursion_desired, "{qname}");
        assert_eq!(msg.queries.len(), 1, "{qname}");
        assert_eq!(msg.queries[0].query_type, rtype, "{qname}");
        assert!(msg.queries[0].name.is_fqdn(), "{qname}");
        assert_eq!(msg.max_payload(), EDNS_UDP_PAYLOAD_BYTES, "{qname}");
        let id = u16::from_be_bytes([bytes[0], bytes[1]]);
        assert_eq!(id, 0x1234, "the id is the first two octets");
        let plain = Message::from_vec(&encode_query(7, qname, qtype, Edns0::Off).unwrap()).unwrap();
        assert!(plain.edns.is_none(), "{qname}");
        assert_eq!(plain.queries, msg.queries, "{qname}");
    }
    assert_eq!(
        encode_query(1, "bücher.example", QueryType::Mx, Edns0::On)
            .map(|b| Message::from_vec(&b).unwrap()),
        Ok(Message::from_vec(
            &encode_query(1, "xn--bcher-kva.example", QueryType::Mx, Edns0::On).unwrap()
        )
        .unwrap())
    );
}

#[test]
fn encode_query_rejects_bad_names() {
    let long_label = "a".repeat(64);
    let long_name = vec!["abcdefghi"; 30].join(".");
    for bad in ["", ".", "  ", long_label.as_str(), long_name.as_str()] {
        assert!(
            matches!(
                encode_query(1, bad, QueryType::Mx, Edns0::On),
                Err(WireError::InvalidName { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn decode_mx_answer() {
    let bytes = response(
        7,
        "example.com.",
        RecordType::MX,
        ResponseCode::NoError,
        vec![
            rec("example.com.", 300, mx(20, "MX2.Example.com.")),
            rec("example.com.", 200, mx(10, "mx1.example.com.")),
            rec("other.example.", 5, mx(1, "evil.example.")),
        ],
        vec![],
    );
    let r = decode_response(7, "EXAMPLE.com", QueryType::Mx, &bytes).unwrap();
    assert_eq!(r.rcode, Rcode::NoError);
    assert!(!r.truncated);
    assert_eq!(r.mx, vec![mxr(20, "mx2.example.com"), mxr(10, "mx1.example.com")]);
    assert_eq!(r.ttl_secs, Some(200), "records for other names are ignored, TTLs too");
    assert_eq!(r.canonical_name, "example.com");
}

#[test]
fn decode_rejects_mismatches() {
    let ok = response(9, "example.com.", RecordType::MX, ResponseCode::NoError, vec![], vec![]);
    let cases: &[(u16, &str, QueryType, WireError)] = &[
        (10, "example.com", QueryType::Mx, WireError::IdMismatch { expected: 10, got: 9 }),
        (9, "example.org", QueryType::Mx, WireError::QuestionMismatch),
        (9, "example.com", QueryType::A, WireError::QuestionMismatch),
    ];
    for (id, qname, qtype, expected) in cases {
        assert_eq!(decode_response(*id, qname, *qtype, &ok).as_ref(), Err(expected), "{qname}");
    }
    let query = encode_query(9, "example.com", QueryType::Mx, Edns0::Off).unwrap();
    assert_eq!(
        decode_response(9, "example.com", QueryType::Mx, &query),
        Err(WireError::NotAResponse)
    );
    assert_eq!(
        decode_response(9, "example.com", QueryType::Mx, &[1, 2, 3]),
        Err(WireError::Malformed)
    );
}

#[test]
fn decode_rcodes() {
    let cases = [
        (ResponseCode::NoError, Rcode::NoError),
        (ResponseCode::FormErr, Rcode::FormErr),
        (ResponseCode::ServFail, Rcode::ServFail),
        (ResponseCode::NXDomain, Rcode::NxDomain),
        (ResponseCode::NotImp, Rcode::NotImp),
        (ResponseCode::Refused, Rcode::Refused),
        (ResponseCode::YXDomain, Rcode::Other(6)),
    ];
    for (wire, expected) in cases {
        let bytes = response(3, "example.com.", RecordType::A, wire, vec![], vec![]);
        let r = decode_response(3, "example.com", QueryType::A, &bytes).unwrap();
        assert_eq!(r.rcode, expected, "{wire:?}");
    }
}

#[test]
fn negative_answers_take_the_soa_ttl() {
    let cases = [
        // (rcode, SOA record TTL, SOA MINIMUM, expected ttl)
        (ResponseCode::NXDomain, 900, 300, Some(300)),
        (ResponseCode::NoError, 60, 300, Some(60)),
        (ResponseCode::NXDomain, 0x8000_0000, 300, Some(0)),
    ];
    for (rc, soa_ttl, minimum, expected) in cases {
        let auth = vec![rec("example.com.", soa_ttl, soa(minimum))];
        let bytes = response(5, "nope.example.com.", RecordType::MX, rc, vec![], auth);
        let r = decode_response(5, "nope.example.com", QueryType::Mx, &bytes).unwrap();
        assert_eq!(r.ttl_secs, expected, "{rc:?} {soa_ttl} {minimum}");
    }
    let bytes = response(5, "x.example.", RecordType::MX, ResponseCode::NXDomain, vec![], vec![]);
    assert_eq!(decode_response(5, "x.example", QueryType::Mx, &bytes).unwrap().ttl_secs, None);
}

#[test]
fn cname_chains_are_followed() {
    let cname = |target: &str| RData::CNAME(CNAME(name(target)));
    // (answers, expected canonical name, expected addrs, expected ttl)
    type Case = (Vec<Record>, &'static str, Vec<IpAddr>, Option<u32>);
    let cases: Vec<Case> = vec![
        (
            vec![rec("www.example.", 60, a([192, 0, 2, 1]))],
            "www.example",
            vec![[192, 0, 2, 1].into()],
            Some(60),
        ),
        (
            vec![
                rec("www.example.", 30, cname("web.example.")),
                rec("web.example.", 100, cname("host.cdn.example.")),
                rec("host.cdn.example.", 50, a([192, 0, 2, 7])),
                rec("unrelated.example.", 1, a([192, 0, 2, 9])),
            ],
            "host.cdn.example",
            vec![[192, 0, 2, 7].into()],
            Some(30),
        ),
        (
            // Records out of order in the section: still followed.
            vec![
                rec("host.cdn.example.", 50, a([192, 0, 2, 7])),
                rec("www.example.", 300, cname("host.cdn.example.")),
            ],
            "host.cdn.example",
            vec![[192, 0, 2, 7].into()],
            Some(50),
        ),
        // A dangling CNAME: the canonical name has no data (NODATA for the caller).
        (vec![rec("www.example.", 30, cname("gone.example."))], "gone.example", vec![], None),
    ];
    for (answers, canonical, addrs, ttl) in cases {
        let bytes =
            response(11, "www.example.", RecordType::A, ResponseCode::NoError, answers, vec![]);
        let r = decode_response(11, "www.example", QueryType::A, &bytes).unwrap();
        assert_eq!((r.canonical_name.as_str(), &r.addrs, r.ttl_secs), (canonical, &addrs, ttl));
    }
    let looping = vec![
        rec("a.example.", 30, cname("b.example.")),
        rec("b.example.", 30, cname("a.example.")),
    ];
    let bytes = response(12, "a.example.", RecordType::A, ResponseCode::NoError, looping, vec![]);
    assert_eq!(
        decode_response(12, "a.example", QueryType::A, &bytes),
        Err(WireError::CnameChainTooLong)
    );
}

#[test]
fn decode_aaaa() {
    let v6 = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let answers = vec![rec("h.example.", 10, RData::AAAA(AAAA(v6)))];
    let bytes = response(4, "h.example.", RecordType::AAAA, ResponseCode::NoError, answers, vec![]);
    let r = decode_response(4, "h.example", QueryType::Aaaa, &bytes).unwrap();
    assert_eq!(r.addrs, vec![IpAddr::V6(v6)]);
}

#[test]
fn truncated_answers() {
    let mut msg = Message::new(21, MessageType::Response, OpCode::Query);
    msg.metadata.truncation = true;
    msg.add_query(Query::query(name("big.example."), RecordType::MX));
    let bytes = msg.to_vec().unwrap();
    assert!(decode_response(21, "big.example", QueryType::Mx, &bytes).unwrap().truncated);
    // A truncated datagram cut inside a record: the header alone says "retry over TCP".
    let full = response(
        21,
        "big.example.",
        RecordType::MX,
        ResponseCode::NoError,
        vec![rec("big.example.", 60, mx(10, "mx.big.example."))],
        vec![],
    );
    let mut cut = full[..full.len() - 5].to_vec();
    cut[2] |= 0x02;
    assert!(decode_response(21, "big.example", QueryType::Mx, &cut).unwrap().truncated);
    let mut wrong_id = cut.clone();
    wrong_id[1] ^= 1;
    assert_eq!(
        decode_response(21, "big.example", QueryType::Mx, &wrong_id),
        Err(WireError::Malformed)
    );
}

#[test]
fn null_mx_detection() {
    let cases: Vec<(Vec<MxRecord>, MxOutcome)> = vec![
        (vec![mxr(0, ".")], MxOutcome::NullMx),
        // Not a null MX: wrong preference, or other records beside it (the "." is dropped).
        (vec![mxr(10, ".")], MxOutcome::Exchanges(vec![])),
        (
            vec![mxr(0, "."), mxr(10, "mx.example")],
            MxOutcome::Exchanges(vec![mxr(10, "mx.example")]),
        ),
        (vec![], MxOutcome::Exchanges(vec![])),
        (vec![mxr(0, "mx.example")], MxOutcome::Exchanges(vec![mxr(0, "mx.example")])),
    ];
    for (records, expected) in cases {
        assert_eq!(mx_outcome(records.clone(), 42), expected, "{records:?}");
    }
}

#[test]
fn mx_ordering_by_preference() {
    let cases: Vec<(Vec<MxRecord>, Vec<MxRecord>)> = vec![
        (
            vec![mxr(30, "c"), mxr(10, "a"), mxr(20, "b")],
            vec![mxr(10, "a"), mxr(20, "b"), mxr(30, "c")],
        ),
        // Duplicates collapse onto the best preference.
        (vec![mxr(20, "a"), mxr(5, "a"), mxr(10, "b")], vec![mxr(5, "a"), mxr(10, "b")]),
    ];
    for (input, expected) in cases {
        for seed in 0..8 {
            assert_eq!(mx_outcome(input.clone(), seed), MxOutcome::Exchanges(expected.clone()));
        }
    }
}

#[test]
fn mx_equal_preferences_are_shuffled() {
    let input = vec![mxr(10, "a"), mxr(10, "b"), mxr(10, "c"), mxr(5, "first"), mxr(20, "last")];
    let mut seen_first_of_run = std::collections::HashSet::new();
    for seed in 0..64u64 {
        let MxOutcome::Exchanges(out) = mx_outcome(input.clone(), seed) else { panic!() };
        assert_eq!(out.len(), 5);
        assert_eq!(out[0].exchange, "first");
        assert_eq!(out[4].exchange, "last");
        assert!(out[1..4].iter().all(|r| r.preference == 10));
        seen_first_of_run.insert(out[1].exchange.clone());
        // Same seed, same order: the function is deterministic.
        assert_eq!(mx_outcome(input.clone(), seed), MxOutcome::Exchanges(out));
    }
    assert_eq!(seen_first_of_run.len(), 3, "every equal-preference host comes first sometimes");
}

#[test]
fn normalize_names() {
    let cases =
        [("Example.COM.", "example.com"), ("mx", "mx"), (".", "."), ("", "."), (" a.b ", "a.b")];
    for (input, expected) in cases {
        assert_eq!(normalize_name(input), expected, "{input:?}");
    }
}

proptest! {
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_response(0, "example.com", QueryType::Mx, &bytes);
        let _ = decode_response(0, "example.com", QueryType::A, &bytes);
    }

    #[test]
    fn decoder_never_panics_on_mutated_answers(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        cut in any::<usize>(),
    ) {
        let mut bytes = response(
            77,
            "example.com.",
            RecordType::MX,
            ResponseCode::NoError,
            vec![
                rec("example.com.", 300, mx(10, "mx1.example.com.")),
                rec("example.com.", 300, RData::CNAME(CNAME(name("example.com.")))),
            ],
            vec![rec("example.com.", 60, soa(30))],
        );
        for (pos, val) in flips {
            let len = bytes.len();
            bytes[pos % len] = val;
        }
        let len = bytes.len();
        bytes.truncate(cut % (len + 1));
        let _ = decode_response(77, "example.com", QueryType::Mx, &bytes);
    }
}
