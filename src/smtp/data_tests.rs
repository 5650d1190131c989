//! Unit and property tests of `smtp::data`: tables of cases, a model of the scanner, and
//! splits at every byte.

use super::*;
use crate::smtp::stuff::dot_stuff;
use proptest::prelude::*;

/// Scan `input` whole; returns (content, consumed, finished, saw_bare, saw_lookalike).
fn run(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, usize, bool, bool, bool) {
    let mut sc = DataScanner::new(policy);
    let mut out = Vec::new();
    let (n, fin) = sc.scan(input, &mut |b: &[u8]| {
        assert!(!b.is_empty());
        out.extend_from_slice(b)
    });
    (out, n, fin, sc.saw_bare_line_ending(), sc.saw_end_of_data_lookalike())
}

/// Scan `input` fed in pieces of the given sizes (the last piece takes the rest);
/// returns (content, consumed, finished, saw_lookalike).
fn run_split(policy: BareLineEnding, input: &[u8], cuts: &[usize]) -> (Vec<u8>, usize, bool, bool) {
    let mut sc = DataScanner::new(policy);
    let mut out = Vec::new();
    let mut pos = 0;
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = input;
    for &c in cuts {
        let c = c.min(rest.len());
        pieces.push(&rest[..c]);
        rest = &rest[c..];
    }
    pieces.push(rest);
    for p in pieces {
        let (n, fin) = sc.scan(p, &mut |b: &[u8]| out.extend_from_slice(b));
        pos += n;
        if fin {
            return (out, pos, true, sc.saw_end_of_data_lookalike());
        }
        assert_eq!(n, p.len());
    }
    (out, pos, false, sc.saw_end_of_data_lookalike())
}

/// Byte-at-a-time model of the module rules, for comparison: (content, end of data,
/// saw_bare, saw_lookalike). A look-alike is a raw line or an unstuffed content line
/// equal to `.` whose ending, or the ending before it, is bare.
fn model(policy: BareLineEnding, input: &[u8]) -> (Vec<u8>, Option<usize>, bool, bool) {
    let mut out = Vec::new();
    let (mut i, mut line_start, mut saw) = (0, true, false);
    let (mut raw_line, mut content_line) = (Vec::new(), Vec::new());
    let (mut prev_bare, mut look) = (false, false);
    let mut line_end = |bare: bool, raw: &mut Vec<u8>, content: &mut Vec<u8>| {
        if (raw.as_slice() == b"." || content.as_slice() == b".") && (bare || prev_bare) {
            look = true;
        }
        prev_bare = bare;
        raw.clear();
        content.clear();
    };
    while i < input.len() {
        if line_start && input[i..].starts_with(b".\r\n") {
            return (out, Some(i + 3), saw, look);
        }
        if line_start && input[i] == b'.' {
            raw_line.push(b'.');
            i += 1;
            line_start = false;
            continue;
        }
        line_start = false;
        let c = input[i];
        if c == b'\r' && input.get(i + 1) == Some(&b'\n') {
            line_end(false, &mut raw_line, &mut content_line);
            out.extend_from_slice(b"\r\n");
            i += 2;
            line_start = true;
        } else if c == b'\r' || c == b'\n' {
            saw = true;
            line_end(true, &mut raw_line, &mut content_line);
            match policy {
                BareLineEnding::Normalize => out.extend_from_slice(b"\r\n"),
                BareLineEnding::Reject => out.push(c),
            }
            i += 1;
        } else {
            out.push(c);
            raw_line.push(c);
            content_line.push(c);
            i += 1;
        }
    }
    (out, None, saw, look)
}

#[test]
fn table() {
    use BareLineEnding::{Normalize as N, Reject as R};
    // (policy, input, content, consumed, finished, saw_bare, saw_lookalike)
    type Case = (BareLineEnding, &'static [u8], &'static [u8], usize, bool, bool, bool);
    let cases: &[Case] = &[
        (N, b".\r\n", b"", 3, true, false, false),
        (N, b".\r\nMAIL", b"", 3, true, false, false),
        (N, b"a\r\n.\r\nQUIT\r\n", b"a\r\n", 6, true, false, false),
        (N, b"..x\r\n.\r\n", b".x\r\n", 8, true, false, false),
        (N, b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", 10, true, false, false),
        (N, b".a\r\n.\r\n", b"a\r\n", 7, true, false, false),
        (N, b"a\r\nb", b"a\r\nb", 4, false, false, false),
        // Smuggling variants: all content, none ends the data, every one a look-alike.
        (N, b"a\n.\nMAIL", b"a\r\n.\r\nMAIL", 8, false, true, true),
        (N, b"a\n.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true, true),
        (N, b"a\r.\r\nMAIL", b"a\r\n.\r\nMAIL", 9, false, true, true),
        (N, b"a\r.\rMAIL", b"a\r\n.\r\nMAIL", 8, false, true, true),
        (N, b"a\r\n.\rMAIL", b"a\r\n\r\nMAIL", 9, false, true, true),
        (N, b"a\r\n.\nMAIL", b"a\r\n\r\nMAIL", 9, false, true, true),
        (N, b"a\r\n..\nMAIL", b"a\r\n.\r\nMAIL", 10, false, true, true),
        (N, b"a\r\n..\rMAIL", b"a\r\n.\r\nMAIL", 10, false, true, true),
        (N, b"a\r\n.\r\r\nMAIL", b"a\r\n\r\n\r\nMAIL", 11, false, true, true),
        (N, b".\nMAIL", b"\r\nMAIL", 6, false, true, true),
        (N, b"a\n\n.\nb", b"a\r\n\r\n.\r\nb", 6, false, true, true),
        (R, b"a\n.\nMAIL", b"a\n.\nMAIL", 8, false, true, true),
        (R, b"a\r\n.\rMAIL", b"a\r\n\rMAIL", 9, false, true, true),
        // Dots near bare endings that are not look-alikes.
        (N, b"a\n..\nb\r\n.\r\n", b"a\r\n..\r\nb\r\n", 11, true, true, false),
        (N, b"a\n.x\nb\r\n.\r\n", b"a\r\n.x\r\nb\r\n", 11, true, true, false),
        (N, b"a\r\n.x\nb\r\n.\r\n", b"a\r\nx\r\nb\r\n", 12, true, true, false),
        (N, b"a\r\n..\r\n.\r\n", b"a\r\n.\r\n", 10, true, false, false),
        // Bare endings.
        (N, b"a\nb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true, false),
        (N, b"a\rb\r\n.\r\n", b"a\r\nb\r\n", 8, true, true, false),
        (N, b"a\r\r\n.\r\n", b"a\r\n\r\n", 7, true, true, false),
        (R, b"a\nb\r\n.\r\n", b"a\nb\r\n", 8, true, true, false),
        (N, b"\n.\r\n.\r\n", b"\r\n.\r\n", 7, true, true, true),
        // NUL and 8-bit bytes are content.
        (N, b"\0\xff\r\n.\r\n", b"\0\xff\r\n", 7, true, false, false),
    ];
    for (i, (pol, input, want, n, fin, bare, look)) in cases.iter().enumerate() {
        let got = run(*pol, input);
        assert_eq!(
            (got.0.as_slice(), got.1, got.2, got.3, got.4),
            (*want, *n, *fin, *bare, *look),
            "case {i}: {:?}",
            String::from_utf8_lossy(input)
        );
        let m = model(*pol, input);
        assert_eq!((m.2, m.3), (*bare, *look), "model, case {i}");
        // Every two-piece split gives the same content and verdict.
        for cut in 0..=input.len() {
            let (c, m, f, l) = run_split(*pol, input, &[cut]);
            assert_eq!((c.as_slice(), m, f, l), (*want, *n, *fin, *look), "case {i} cut {cut}");
        }
    }
}

/// Run a `LineCheck` over `input` in pieces; returns (saw_bare, saw_lookalike).
fn check_lines(input: &[u8], cuts: &[usize]) -> (bool, bool) {
    let mut c = LineCheck::new();
    let mut rest = input;
    for &cut in cuts {
        let cut = cut.min(rest.len());
        c.feed(&rest[..cut]);
        rest = &rest[cut..];
    }
    c.feed(rest);
    c.finish();
    (c.saw_bare_line_ending(), c.saw_end_of_data_lookalike())
}

/// Model of `LineCheck`: split into (line, ending) pairs; a look-alike is a line `.`
/// whose ending or the ending before it is bare; a last unended line counts as ended
/// by CRLF.
fn lines_model(input: &[u8]) -> (bool, bool) {
    let (mut i, mut start, mut prev_bare, mut saw, mut look) = (0, 0, false, false, false);
    loop {
        let (end, next, bare) = match input[i..].iter().position(|&b| b == b'\r' || b == b'\n') {
            None => (input.len(), input.len(), false),
            Some(k) if input[i + k] == b'\r' && input.get(i + k + 1) == Some(&b'\n') => {
                (i + k, i + k + 2, false)
            }
            Some(k) => (i + k, i + k + 1, true),
        };
        saw |= bare;
        look |= &input[start..end] == b"." && (bare || prev_bare);
        if next == input.len() && end == input.len() {
            return (saw, look);
        }
        prev_bare = bare;
        i = next;
        start = next;
        if i == input.len() {
            return (saw, look);
        }
    }
}

#[test]
fn line_check_table() {
    // (content, saw_bare, saw_lookalike)
    let cases: &[(&[u8], bool, bool)] = &[
        (b"", false, false),
        (b".", false, false),
        (b".\r\n", false, false),
        (b"a\r\n.\r\nb\r\n", false, false),
        (b"a\r\n.a\nb\r\n.\r\n", true, false),
        (b"a\n..\n", true, false),
        (b"a\n.\nMAIL", true, true),
        (b"a\n.\r\nMAIL", true, true),
        (b"a\r.\r\nMAIL", true, true),
        (b"a\r.\rMAIL", true, true),
        (b"a\r\n.\rMAIL", true, true),
        (b"a\r\n.\nMAIL", true, true),
        (b".\nMAIL", true, true),
        (b"a\n.", true, true),
        (b"a\r\n.\r", true, true),
        (b"a\r", true, false),
    ];
    for (input, bare, look) in cases {
        assert_eq!(
            lines_model(input),
            (*bare, *look),
            "model {:?}",
            String::from_utf8_lossy(input)
        );
        for cut in 0..=input.len() {
            assert_eq!(
                check_lines(input, &[cut]),
                (*bare, *look),
                "{:?} cut {cut}",
                String::from_utf8_lossy(input)
            );
        }
        assert_eq!(has_end_of_data_lookalike(input), *look);
    }
}

#[test]
fn withholds_at_most_a_dot_and_a_cr() {
    let mut sc = DataScanner::new(BareLineEnding::Normalize);
    let mut out = Vec::new();
    assert_eq!(sc.scan(b"ab\r", &mut |b: &[u8]| out.extend_from_slice(b)), (3, false));
    assert_eq!(out, b"ab");
    assert_eq!(sc.scan(b"\n.", &mut |b: &[u8]| out.extend_from_slice(b)), (2, false));
    assert_eq!(out, b"ab\r\n");
    assert_eq!(sc.scan(b"\r", &mut |b: &[u8]| out.extend_from_slice(b)), (1, false));
    assert_eq!(sc.scan(b"\nX", &mut |b: &[u8]| out.extend_from_slice(b)), (1, true));
    assert_eq!(out, b"ab\r\n");
    assert!(sc.is_finished());
    assert_eq!(sc.scan(b"X", &mut |_: &[u8]| panic!()), (0, true));
}

#[test]
fn policy_names() {
    let p: BareLineEnding = serde_json::from_str("\"reject\"").unwrap();
    assert_eq!(p, BareLineEnding::Reject);
    assert_eq!(serde_json::to_string(&BareLineEnding::Normalize).unwrap(), "\"normalize\"");
}

#[test]
fn chunk_counter() {
    let mut c = ChunkCounter::new(5);
    assert_eq!(c.take(b"abc"), b"abc");
    assert_eq!(c.remaining(), 2);
    assert_eq!(c.take(b"defg"), b"de");
    assert!(c.is_done());
    assert_eq!(c.take(b"x"), b"");
    let mut big = ChunkCounter::new(u64::MAX);
    assert_eq!(big.take(b"xy"), b"xy");
    assert_eq!(big.remaining(), u64::MAX - 2);
}

/// Content made of CRLF-terminated lines over an alphabet rich in dots and line ends.
fn crlf_lines() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        proptest::collection::vec(
            prop_oneof![Just(b'.'), Just(b'a'), Just(0u8), any::<u8>()],
            0..8,
        )
        .prop_map(|l| l.into_iter().filter(|&b| b != b'\r' && b != b'\n').collect::<Vec<u8>>()),
        0..12,
    )
    .prop_map(|lines| {
        let mut v = Vec::new();
        for l in lines {
            v.extend_from_slice(&l);
            v.extend_from_slice(b"\r\n");
        }
        v
    })
}

/// Where a lax receiver ends the data: after the first raw line `.`, lines being ended
/// by CRLF, bare CR or bare LF.
fn lax_end_of_data(input: &[u8]) -> Option<usize> {
    let mut start = 0;
    let mut i = 0;
    while i < input.len() {
        let end = match input[i] {
            b'\r' if input.get(i + 1) == Some(&b'\n') => i + 2,
            b'\r' | b'\n' => i + 1,
            _ => {
                i += 1;
                continue;
            }
        };
        if &input[start..i] == b"." {
            return Some(end);
        }
        start = end;
        i = end;
    }
    None
}

/// The lines of `bytes` (lines ended by CRLF, bare CR or bare LF) that are ended by a
/// CRLF and start the input or follow a CRLF.
fn crlf_framed_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut lines = Vec::new();
    let (mut start, mut i, mut framed) = (0, 0, true);
    while i < bytes.len() {
        let (end, crlf) = match bytes[i] {
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => (i + 2, true),
            b'\r' | b'\n' => (i + 1, false),
            _ => {
                i += 1;
                continue;
            }
        };
        if framed && crlf {
            lines.push(&bytes[start..i]);
        }
        framed = crlf;
        start = end;
        i = end;
    }
    lines.into_iter()
}

/// The complete CRLF-ended lines of `bytes` (without their CRLF).
fn complete_crlf_lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let complete = bytes.len() - bytes.rsplit(|&b| b == b'\n').next().map_or(0, <[u8]>::len);
    bytes[..complete].split(|&b| b == b'\n').filter_map(|l| l.strip_suffix(b"\r"))
}

fn smtp_bytes() -> impl Strategy<Value = Vec<u8>> {
    crate::smtp::test_bytes::smtp_bytes(64)
}

proptest! {
    #[test]
    fn stuff_then_scan_is_identity(content in crlf_lines(), cuts in proptest::collection::vec(0usize..16, 0..6)) {
        let mut wire = Vec::new();
        dot_stuff(&content, &mut wire);
        let wire_len = wire.len();
        wire.extend_from_slice(b"MAIL FROM:<>\r\n");
        let (out, n, fin, bare, look) = run(BareLineEnding::Normalize, &wire);
        prop_assert!(fin && !bare && !look);
        prop_assert_eq!(n, wire_len);
        prop_assert_eq!(&out, &content);
        let (out2, n2, fin2, look2) = run_split(BareLineEnding::Normalize, &wire, &cuts);
        prop_assert_eq!((out2, n2, fin2, look2), (content, wire_len, true, false));
    }

    #[test]
    fn matches_model_and_any_split(
        body in smtp_bytes(),
        reject in any::<bool>(),
        cuts in proptest::collection::vec(0usize..12, 0..8),
    ) {
        let policy = if reject { BareLineEnding::Reject } else { BareLineEnding::Normalize };
        let mut input = body;
        input.extend_from_slice(b"\r\n.\r\nNOOP\r\n");
        let (want, end, saw, look_want) = model(policy, &input);
        let (out, n, fin, bare, look) = run(policy, &input);
        prop_assert_eq!(Some(n), end);
        prop_assert!(fin);
        prop_assert_eq!(bare, saw);
        prop_assert_eq!(look, look_want);
        prop_assert_eq!(&out, &want);
        let (out2, n2, fin2, look2) = run_split(policy, &input, &cuts);
        prop_assert_eq!((out2, n2, fin2, look2), (want, n, true, look));
    }

    #[test]
    fn line_check_matches_model_at_any_split(
        input in smtp_bytes(),
        cuts in proptest::collection::vec(0usize..12, 0..8),
    ) {
        prop_assert_eq!(check_lines(&input, &cuts), lines_model(&input));
    }

    /// Without the look-alike flag, a lax receiver (one that takes bare CR and bare LF
    /// for line ends, and any line `.` for the end) finds the end of the data exactly
    /// where we do, and every lone-dot line we store is one the client sent stuffed
    /// (`<CRLF>..<CRLF>`): normalising never manufactures one.
    #[test]
    fn unflagged_content_cannot_smuggle(body in smtp_bytes(), reject in any::<bool>()) {
        let policy = if reject { BareLineEnding::Reject } else { BareLineEnding::Normalize };
        let mut input = body;
        input.extend_from_slice(b"\r\n.\r\n");
        let (out, n, fin, _, look) = run(policy, &input);
        prop_assert!(fin);
        if !look {
            prop_assert_eq!(lax_end_of_data(&input), Some(n));
            let stuffed = crlf_framed_lines(&input[..n]).filter(|l| *l == b"..").count();
            if policy == BareLineEnding::Normalize {
                prop_assert_eq!(complete_crlf_lines(&out).filter(|l| *l == b".").count(), stuffed);
            }
        }
    }
}
