//! Tests of the PROXY header parser: the spec's examples, every error, and properties
//! (never panics; any split of a valid header parses the same; a prefix is `NeedMore`).

use super::*;
use proptest::prelude::*;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn done(input: &[u8]) -> (Header, usize) {
    match parse(input) {
        Ok(Parsed::Done { header, consumed }) => (header, consumed),
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

/// A v2 header: version/command byte, family byte, address block (and TLVs) `body`.
fn v2(ver_cmd: u8, fam: u8, body: &[u8]) -> Vec<u8> {
    let mut h = V2_SIGNATURE.to_vec();
    h.push(ver_cmd);
    h.push(fam);
    h.extend_from_slice(&u16::try_from(body.len()).unwrap_or(u16::MAX).to_be_bytes());
    h.extend_from_slice(body);
    h
}

fn v2_tcp4(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, tlvs: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&src);
    b.extend_from_slice(&dst);
    b.extend_from_slice(&sport.to_be_bytes());
    b.extend_from_slice(&dport.to_be_bytes());
    b.extend_from_slice(tlvs);
    v2(0x21, 0x11, &b)
}

#[test]
fn v1_tcp4_tcp6_unknown() {
    let (h, n) = done(b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 25\r\nEHLO x\r\n");
    assert_eq!(n, 45);
    assert_eq!(h.version, Version::V1);
    assert_eq!(
        h.addresses,
        Addresses::Tcp { source: sa("192.0.2.10:56324"), destination: sa("198.51.100.1:25") }
    );
    let (h, _) = done(b"PROXY TCP6 2001:db8::1 2001:db8::2 65535 587\r\n");
    assert_eq!(
        h.addresses,
        Addresses::Tcp { source: sa("[2001:db8::1]:65535"), destination: sa("[2001:db8::2]:587") }
    );
    let (h, n) = done(b"PROXY UNKNOWN\r\n");
    assert_eq!((h.addresses, n), (Addresses::Local, 15));
    // UNKNOWN may carry anything up to the CRLF (§2.1).
    let (h, _) = done(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
    assert_eq!(h.addresses, Addresses::Local);
}

#[test]
fn v1_worst_case_is_107_bytes() {
    let line = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
    assert!(line.len() < MAX_V1_BYTES);
    let mut long = b"PROXY UNKNOWN ".to_vec();
    long.resize(MAX_V1_BYTES - 2, b'x');
    long.extend_from_slice(b"\r\n");
    assert_eq!(done(&long).1, MAX_V1_BYTES);
    let mut too_long = b"PROXY UNKNOWN ".to_vec();
    too_long.resize(MAX_V1_BYTES, b'x');
    assert_eq!(parse(&too_long), Err(ProxyError::V1TooLong));
    assert_eq!(parse(&too_long[..MAX_V1_BYTES - 1]), Ok(Parsed::NeedMore));
}

#[test]
fn v1_errors() {
    let cases: &[&[u8]] = &[
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\rX",
        b"PROXY TCP5 192.0.2.1 192.0.2.2 1 2\r\n",
        b"PROXY TCP4 2001:db8::1 192.0.2.2 1 2\r\n",
        b"PROXY TCP6 192.0.2.1 2001:db8::2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 3\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 65536 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 +1 2\r\n",
        b"PROXY TCP4 192.0.2.1  192.0.2.2 1 2\r\n",
        b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2 \r\n",
        b"PROXY \xff\r\n",
        b"PROXY \r\n",
    ];
    for &c in cases {
        assert!(
            matches!(parse(c), Err(ProxyError::V1Syntax(_))),
            "{:?}: {:?}",
            String::from_utf8_lossy(c),
            parse(c)
        );
    }
    assert_eq!(parse(b"EHLO x\r\n"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROXZ"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"proxy TCP4"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"PROX"), Ok(Parsed::NeedMore));
    assert_eq!(parse(b""), Ok(Parsed::NeedMore));
}

#[test]
fn v2_inet_inet6_with_tlvs() {
    // A TLV (PP2_TYPE_AUTHORITY "mx") after the addresses is skipped.
    let h = v2_tcp4([203, 0, 113, 7], [10, 0, 0, 1], 40000, 25, &[0x02, 0x00, 0x02, b'm', b'x']);
    let (hd, n) = done(&[h.as_slice(), b"EHLO"].concat());
    assert_eq!(n, h.len());
    assert_eq!(hd.version, Version::V2);
    assert_eq!(
        hd.addresses,
        Addresses::Tcp { source: sa("203.0.113.7:40000"), destination: sa("10.0.0.1:25") }
    );
    let mut b = Vec::new();
    let src: Ipv6Addr = "2001:db8::7".parse().unwrap_or_else(|e| panic!("{e}"));
    b.extend_from_slice(&src.octets());
    b.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
    b.extend_from_slice(&1234u16.to_be_bytes());
    b.extend_from_slice(&587u16.to_be_bytes());
    let (hd, _) = done(&v2(0x21, 0x21, &b));
    assert_eq!(
        hd.addresses,
        Addresses::Tcp { source: sa("[2001:db8::7]:1234"), destination: sa("[::1]:587") }
    );
}

#[test]
fn v2_local_unspec_unix_use_the_real_endpoints() {
    // LOCAL with no address block, and LOCAL with one (ignored).
    assert_eq!(done(&v2(0x20, 0x00, &[])).0.addresses, Addresses::Local);
    assert_eq!(done(&v2(0x20, 0x11, &[1; 12])).0.addresses, Addresses::Local);
    assert_eq!(done(&v2(0x20, 0x11, &[])).0.addresses, Addresses::Local);
    // PROXY with UNSPEC family, or AF_UNIX (216 bytes of paths).
    assert_eq!(done(&v2(0x21, 0x00, &[])).0.addresses, Addresses::Local);
    assert_eq!(done(&v2(0x21, 0x31, &[0; 216])).0.addresses, Addresses::Local);
}

#[test]
fn v2_errors() {
    assert_eq!(parse(&v2(0x11, 0x11, &[0; 12])), Err(ProxyError::V2Version(1)));
    assert_eq!(parse(&v2(0x22, 0x11, &[0; 12])), Err(ProxyError::V2Command(2)));
    assert_eq!(parse(&v2(0x21, 0x12, &[0; 12])), Err(ProxyError::V2Family(0x12)));
    assert_eq!(parse(&v2(0x21, 0x10, &[0; 12])), Err(ProxyError::V2Family(0x10)));
    assert_eq!(parse(&v2(0x21, 0x41, &[0; 12])), Err(ProxyError::V2Family(0x41)));
    assert_eq!(parse(&v2(0x21, 0x11, &[0; 11])), Err(ProxyError::V2Length(11)));
    assert_eq!(parse(&v2(0x21, 0x21, &[0; 35])), Err(ProxyError::V2Length(35)));
    // Errors show as soon as the byte that makes them arrives.
    assert_eq!(parse(&v2(0x11, 0x11, &[])[..13]), Err(ProxyError::V2Version(1)));
    let mut big = V2_SIGNATURE.to_vec();
    big.extend_from_slice(&[0x21, 0x11, 0xFF, 0xFF]);
    assert_eq!(parse(&big), Err(ProxyError::V2TooLong));
    assert_eq!(parse(b"\r\n\r\n\0\r\nQUIX"), Err(ProxyError::NotProxy));
    assert_eq!(parse(b"\r\n\r\n"), Ok(Parsed::NeedMore));
}

/// Valid headers of every kind, for the split property.
fn valid_headers() -> impl Strategy<Value = Vec<u8>> {
    let v4 = (any::<[u8; 4]>(), any::<[u8; 4]>(), any::<u16>(), any::<u16>());
    prop_oneof![
        v4.prop_map(|(s, d, sp, dp)| {
            format!("PROXY TCP4 {} {} {sp} {dp}\r\n", Ipv4Addr::from(s), Ipv4Addr::from(d))
                .into_bytes()
        }),
        (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<u16>(), any::<u16>()).prop_map(
            |(s, d, sp, dp)| {
                format!("PROXY TCP6 {} {} {sp} {dp}\r\n", Ipv6Addr::from(s), Ipv6Addr::from(d))
                    .into_bytes()
            }
        ),
        Just(b"PROXY UNKNOWN\r\n".to_vec()),
        (v4, proptest::collection::vec(any::<u8>(), 0..64))
            .prop_map(|((s, d, sp, dp), tlv)| v2_tcp4(s, d, sp, dp, &tlv)),
        proptest::collection::vec(any::<u8>(), 36..100).prop_map(|b| v2(0x21, 0x21, &b)),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|b| v2(0x20, 0x00, &b)),
    ]
}

proptest! {
    #[test]
    fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse(&bytes);
    }

    #[test]
    fn never_panics_after_a_signature(
        v2sig in any::<bool>(),
        rest in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut bytes = if v2sig { V2_SIGNATURE.to_vec() } else { b"PROXY ".to_vec() };
        bytes.extend_from_slice(&rest);
        if let Ok(Parsed::Done { consumed, .. }) = parse(&bytes) {
            prop_assert!(consumed <= bytes.len());
        }
    }

    #[test]
    fn any_split_parses_the_same(
        header in valid_headers(),
        tail in proptest::collection::vec(any::<u8>(), 0..20),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut all = header.clone();
        all.extend_from_slice(&tail);
        let whole = parse(&all);
        prop_assert_eq!(whole.map(|p| match p {
            Parsed::Done { consumed, .. } => consumed,
            Parsed::NeedMore => 0,
        }), Ok(header.len()));
        // Every strict prefix of the header asks for more; the full header gives the
        // same result as header + whatever followed it.
        let k = cut.index(header.len());
        prop_assert_eq!(parse(&header[..k]), Ok(Parsed::NeedMore));
        prop_assert_eq!(parse(&header), whole);
    }
}

/// Found by the fuzz target `proxy_header` (fuzz/corpus/proxy_header/crash-743c...): an
/// UNKNOWN line holding a bare CR was accepted whole but refused when its reads stopped
/// right after the CR. Now it is refused either way.
#[test]
fn cr_inside_a_v1_line_is_refused_however_it_is_split() {
    let input = b"PROXY UNKNOWN ffUNKNOWN PROXY UNKNOWN ffUNKNOWN f\rf\r\n";
    for k in 0..=input.len() {
        let got = parse(&input[..k]);
        assert!(
            matches!(
                got,
                Ok(Parsed::NeedMore) | Err(ProxyError::V1Syntax("CR not followed by LF"))
            ),
            "prefix {k}: {got:?}"
        );
    }
    assert_eq!(parse(input), Err(ProxyError::V1Syntax("CR not followed by LF")));
}
