//! A small Rust tokenizer for the layer check: identifiers, `::`, punctuation, and literals
//! reduced to one opaque token, so that comments, strings and char literals can never look
//! like a path. Lifetimes are dropped. Good enough for `use` trees and paths; not a parser.

/// One token and the 1-based line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tok {
    pub(crate) kind: Kind,
    pub(crate) line: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An identifier or keyword (`r#` stripped from raw identifiers).
    Ident(String),
    /// `::`
    PathSep,
    /// Any other single punctuation character.
    Punct(char),
    /// A plain string literal `"..."`, its text as written (escapes not processed): read only
    /// for `#[path = "..."]`.
    Str(String),
    /// Any other literal: raw or byte strings, chars, numbers (contents never inspected).
    Lit,
}

impl Tok {
    pub(crate) fn is_ident(&self, s: &str) -> bool {
        matches!(&self.kind, Kind::Ident(i) if i == s)
    }
    pub(crate) fn is_punct(&self, c: char) -> bool {
        self.kind == Kind::Punct(c)
    }
    pub(crate) fn ident(&self) -> Option<&str> {
        match &self.kind {
            Kind::Ident(i) => Some(i),
            _ => None,
        }
    }
}

/// Tokenizes `src`. Unterminated comments or literals end the input (the compiler would
/// have refused the file anyway).
pub(crate) fn tokenize(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line) = (0, 1);
    let ident_start = |c: char| c == '_' || c.is_alphabetic();
    let ident_cont = |c: char| c == '_' || c.is_alphanumeric();
    while i < b.len() {
        let c = b[i];
        let start_line = line;
        let at = |k: usize| b.get(i + k).copied().unwrap_or('\0');
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && at(1) == '/' {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    line += usize::from(b[i] == '\n');
                    i += 1;
                }
            }
        } else if let Some(hashes) = raw_string_start(&b, i) {
            // r"..", r#".."#, br".." , cr".."
            while b[i] != '"' {
                i += 1;
            }
            i += 1;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                line += usize::from(b[i] == '\n');
                i += 1;
            }
            out.push(Tok { kind: Kind::Lit, line: start_line });
        } else if c == '"' || ((c == 'b' || c == 'c') && at(1) == '"') {
            i += if c == '"' { 1 } else { 2 };
            let s = i;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                line += usize::from(b.get(i) == Some(&'\n'));
                i += 1;
            }
            let text: String = b[s..i.min(b.len())].iter().collect();
            i += 1;
            let kind = if c == '"' { Kind::Str(text) } else { Kind::Lit };
            out.push(Tok { kind, line: start_line });
        } else if c == '\'' || (c == 'b' && at(1) == '\'') {
            let q = if c == '\'' { i } else { i + 1 };
            let next = b.get(q + 1).copied().unwrap_or('\0');
            if next == '\\' {
                // escaped char literal: skip the escaped character, then to the closing quote
                i = q + 3;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(Tok { kind: Kind::Lit, line });
            } else if b.get(q + 2) == Some(&'\'') {
                i = q + 3;
                out.push(Tok { kind: Kind::Lit, line });
            } else {
                // a lifetime or label: drop it
                i = q + 1;
                while i < b.len() && ident_cont(b[i]) {
                    i += 1;
                }
            }
        } else if c == 'r' && at(1) == '#' && ident_start(at(2)) {
            i += 2;
            let s = i;
            while i < b.len() && ident_cont(b[i]) {
                i += 1;
            }
            out.push(Tok { kind: Kind::Ident(b[s..i].iter().collect()), line });
        } else if ident_start(c) {
            let s = i;
            while i < b.len() && ident_cont(b[i]) {
                i += 1;
            }
            out.push(Tok { kind: Kind::Ident(b[s..i].iter().collect()), line });
        } else if c.is_ascii_digit() {
            while i < b.len()
                && (ident_cont(b[i])
                    || (b[i] == '.' && b.get(i + 1).is_some_and(|d| d.is_ascii_digit())))
            {
                i += 1;
            }
            out.push(Tok { kind: Kind::Lit, line });
        } else if c == ':' && at(1) == ':' {
            out.push(Tok { kind: Kind::PathSep, line });
            i += 2;
        } else {
            out.push(Tok { kind: Kind::Punct(c), line });
            i += 1;
        }
    }
    out
}

/// If a raw string literal starts at `i`, the number of `#`s it uses.
fn raw_string_start(b: &[char], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(b.get(j), Some('b' | 'c')) {
        j += 1;
    }
    if b.get(j) != Some(&'r') {
        return None;
    }
    // not the tail of an identifier such as `bar"`: the caller only calls at a token start
    if i > 0 && (b[i - 1] == '_' || b[i - 1].is_alphanumeric()) {
        return None;
    }
    j += 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idents(src: &str) -> Vec<String> {
        tokenize(src).iter().filter_map(|t| t.ident().map(str::to_string)).collect()
    }

    #[test]
    fn comments_strings_and_chars_hide_their_contents() {
        let cases: &[(&str, &[&str])] = &[
            ("a // crate::net\nb", &["a", "b"]),
            ("a /* x /* crate::net */ y */ b", &["a", "b"]),
            (r#"a "crate::net \" still" b"#, &["a", "b"]),
            ("a r#\"crate::net \" still\"# b", &["a", "b"]),
            ("a b\"std::fs\" b'x' '\\'' 'c' b", &["a", "b"]),
            ("fn f<'a>(x: &'a str) {}", &["fn", "f", "x", "str"]),
            ("r#type::x", &["type", "x"]),
        ];
        for (src, want) in cases {
            assert_eq!(idents(src), *want, "{src}");
        }
    }

    #[test]
    fn lines_are_counted_through_comments_and_strings() {
        let t = tokenize("a\n/* \n */ \"\n\" b\nr\"\n\" c");
        let lines: Vec<_> = t.iter().filter(|t| t.ident().is_some()).map(|t| t.line).collect();
        assert_eq!(lines, [1, 4, 6]);
    }
}
