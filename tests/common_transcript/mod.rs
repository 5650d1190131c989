//! Shared by the transcript runners (`tests/transcripts.rs` for the server session,
//! `tests/client_transcripts.rs` for the client session): the escape syntax of `C:`/`S:`
//! lines, documented in `tests/transcripts/README.md`, and where the transcript files are.

use std::path::{Path, PathBuf};

/// The `*.txt` transcripts in `dir` (relative to the crate root), sorted by name.
pub(crate) fn transcript_files(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
}

/// Decode `\r`, `\n`, `\t`, `\0`, `\\`, `\xHH` and `\{N*TEXT}` (TEXT repeated N times).
/// Panics (failing the test) on a malformed escape, naming the transcript line.
pub(crate) fn unescape(s: &str, line_no: usize) -> Vec<u8> {
    let b = s.as_bytes();
    let mut v = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            v.push(b[i]);
            i += 1;
            continue;
        }
        let e = *b.get(i + 1).unwrap_or_else(|| panic!("line {line_no}: trailing backslash"));
        i += 2;
        match e {
            b'r' => v.push(b'\r'),
            b'n' => v.push(b'\n'),
            b't' => v.push(b'\t'),
            b'0' => v.push(0),
            b'\\' => v.push(b'\\'),
            b'x' => {
                let hex = std::str::from_utf8(&b[i..i + 2]).unwrap();
                v.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b'{' => {
                let end = i + s[i..].find('}').expect("unterminated \\{");
                let (n, text) = s[i..end].split_once('*').expect("\\{N*TEXT}");
                let n: usize = n.parse().unwrap();
                let text = unescape(text, line_no);
                for _ in 0..n {
                    v.extend_from_slice(&text);
                }
                i = end + 1;
            }
            _ => panic!("line {line_no}: unknown escape \\{}", e as char),
        }
    }
    v
}
