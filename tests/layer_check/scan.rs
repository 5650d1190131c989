//! Reads one source file's tokens into what the layer check needs: `mod` declarations
//! (with `#[path]`), inline modules, `use` trees flattened to leaves, and multi-segment
//! paths written in code. Items under `#[cfg(test)]` are skipped whole: tests may use
//! anything.

use super::lexer::{Kind, Tok};

/// What one file says, each entry tagged with its inline-module scope inside the file.
#[derive(Debug, Default)]
pub(crate) struct FileScan {
    pub(crate) entries: Vec<(Vec<String>, Entry)>,
}

#[derive(Debug)]
pub(crate) enum Entry {
    /// `mod name;` (non-test), with its `#[path = "..."]` if any.
    ModDecl { name: String, path_attr: Option<String> },
    /// `mod name { ... }` (non-test).
    InlineMod { name: String },
    /// One leaf of a `use` tree.
    Use(UseLeaf),
    /// A path of two or more segments written in code, e.g. `crate::net::Peer` or
    /// `Instant::now`.
    Path { segs: Vec<String>, line: usize, leading_colons: bool },
}

/// `use a::{b::c as d, e::*}` gives two leaves: `[a, b, c]` as `d`, and `[a, e]` glob.
#[derive(Debug, Clone)]
pub(crate) struct UseLeaf {
    pub(crate) segs: Vec<String>,
    /// The name the leaf brings into scope (`None` for `as _` and globs).
    pub(crate) alias: Option<String>,
    pub(crate) glob: bool,
    pub(crate) line: usize,
    pub(crate) leading_colons: bool,
}

/// Scans a token stream (see the module doc).
pub(crate) fn scan(toks: &[Tok]) -> FileScan {
    let mut out = FileScan::default();
    let mut scope: Vec<(String, usize)> = Vec::new();
    let mut depth = 0usize;
    let mut pending_test = false;
    let mut pending_path: Option<String> = None;
    let mut i = 0;
    let names = |scope: &[(String, usize)]| scope.iter().map(|s| s.0.clone()).collect::<Vec<_>>();
    while i < toks.len() {
        let t = &toks[i];
        let inner = toks.get(i + 1).is_some_and(|t| t.is_punct('!'));
        let open = i + 1 + usize::from(inner);
        if t.is_punct('#') && toks.get(open).is_some_and(|t| t.is_punct('[')) {
            let close = matching(toks, open);
            let attr = &toks[(open + 1).min(close)..close];
            if is_cfg_test(attr) {
                if inner && depth == 0 && scope.is_empty() {
                    return FileScan::default(); // #![cfg(test)]: the whole file is test code
                }
                pending_test = true;
            }
            if let Some(p) = path_attr(attr) {
                pending_path = Some(p);
            }
            i = close + 1;
            continue;
        }
        if pending_test {
            pending_test = false;
            pending_path = None;
            i = skip_item(toks, i);
            continue;
        }
        let path_attr = if t.is_ident("mod") { pending_path.take() } else { None };
        if t.is_punct(';') || t.is_punct('{') || t.is_punct('}') {
            pending_path = None;
        }
        let mod_name = toks.get(i + 1).and_then(Tok::ident).filter(|_| t.is_ident("mod"));
        if let Some(name) = mod_name {
            match toks.get(i + 2) {
                Some(n) if n.is_punct(';') => {
                    let decl = Entry::ModDecl { name: name.to_string(), path_attr };
                    out.entries.push((names(&scope), decl));
                    i += 3;
                    continue;
                }
                Some(n) if n.is_punct('{') => {
                    out.entries.push((names(&scope), Entry::InlineMod { name: name.to_string() }));
                    scope.push((name.to_string(), depth));
                    depth += 1;
                    i += 3;
                    continue;
                }
                _ => {}
            }
        }
        if t.is_ident("use") {
            let mut leaves = Vec::new();
            let end = use_tree(toks, i + 1, Vec::new(), &mut leaves);
            for l in leaves {
                out.entries.push((names(&scope), Entry::Use(l)));
            }
            i = end;
            continue;
        }
        if t.is_punct('{') {
            depth += 1;
        } else if t.is_punct('}') {
            depth = depth.saturating_sub(1);
            if scope.last().is_some_and(|s| s.1 == depth) {
                scope.pop();
            }
        }
        // a path: `a::b::c`, or `::a::b` where the `::` does not follow a name or `>`
        let leading = t.kind == Kind::PathSep
            && toks.get(i + 1).is_some_and(|n| n.ident().is_some())
            && !(i > 0 && (toks[i - 1].ident().is_some() || toks[i - 1].is_punct('>')));
        let starts =
            t.ident().is_some() && toks.get(i + 1).is_some_and(|n| n.kind == Kind::PathSep);
        let after_dot = i > 0 && toks[i - 1].is_punct('.');
        if (starts || leading) && !after_dot {
            let mut j = i + usize::from(leading);
            let mut segs = Vec::new();
            while let Some(name) = toks.get(j).and_then(Tok::ident) {
                segs.push(name.to_string());
                if toks.get(j + 1).is_some_and(|n| n.kind == Kind::PathSep) {
                    j += 2;
                } else {
                    j += 1;
                    break;
                }
            }
            if segs.len() >= 2 || leading {
                out.entries.push((
                    names(&scope),
                    Entry::Path { segs, line: t.line, leading_colons: leading },
                ));
            }
            i = j.max(i + 1);
            continue;
        }
        i += 1;
    }
    out
}

/// Parses a `use` tree starting at `i` (after `use` or inside braces); returns the index
/// after it (after the `;` at the top level).
fn use_tree(toks: &[Tok], mut i: usize, prefix: Vec<String>, out: &mut Vec<UseLeaf>) -> usize {
    let top = prefix.is_empty();
    let mut segs = prefix;
    let mut leading_colons = false;
    if toks.get(i).is_some_and(|t| t.kind == Kind::PathSep) {
        leading_colons = top;
        i += 1;
    }
    loop {
        let Some(t) = toks.get(i) else { return i };
        match &t.kind {
            Kind::Ident(s) => {
                segs.push(s.clone());
                i += 1;
                if toks.get(i).is_some_and(|t| t.kind == Kind::PathSep) {
                    i += 1;
                    continue;
                }
                let mut alias = segs.last().cloned();
                if segs.last().is_some_and(|s| s == "self") {
                    segs.pop();
                    alias = segs.last().cloned();
                }
                if toks.get(i).is_some_and(|t| t.is_ident("as")) {
                    alias = toks.get(i + 1).and_then(Tok::ident).map(str::to_string);
                    if alias.as_deref() == Some("_") {
                        alias = None;
                    }
                    i += 2;
                }
                out.push(UseLeaf { segs, alias, glob: false, line: t.line, leading_colons });
                break;
            }
            Kind::Punct('*') => {
                out.push(UseLeaf { segs, alias: None, glob: true, line: t.line, leading_colons });
                i += 1;
                break;
            }
            Kind::Punct('{') => {
                i += 1;
                while let Some(t) = toks.get(i) {
                    if t.is_punct('}') {
                        i += 1;
                        break;
                    }
                    if t.is_punct(',') {
                        i += 1;
                        continue;
                    }
                    i = use_tree(toks, i, segs.clone(), out);
                }
                break;
            }
            _ => break,
        }
    }
    if top {
        while i < toks.len() && !toks[i].is_punct(';') {
            i += 1;
        }
        i += 1;
    }
    i
}

/// Index of the bracket closing the one at `open` (`(`, `[` or `{`).
fn matching(toks: &[Tok], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        match t.kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(')' | ']' | '}') => {
                depth -= 1;
                if depth == 0 {
                    return k;
                }
            }
            _ => {}
        }
    }
    toks.len().saturating_sub(1)
}

/// `cfg(test)` or `cfg(all(test, ...))`; `cfg(not(test))` is not test code.
fn is_cfg_test(attr: &[Tok]) -> bool {
    let ids: Vec<&str> = attr.iter().filter_map(Tok::ident).collect();
    matches!(ids.as_slice(), ["cfg", "test", ..] | ["cfg", "all", "test", ..])
}

/// The file named by `#[path = "..."]`.
fn path_attr(attr: &[Tok]) -> Option<String> {
    match attr {
        [p, eq, Tok { kind: Kind::Str(s), .. }] if p.is_ident("path") && eq.is_punct('=') => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// Skips one item (its further attributes included) starting at `i`; returns the index
/// after it.
fn skip_item(toks: &[Tok], mut i: usize) -> usize {
    while toks.get(i).is_some_and(|t| t.is_punct('#')) {
        let open = i + 1 + usize::from(toks.get(i + 1).is_some_and(|t| t.is_punct('!')));
        i = matching(toks, open) + 1;
    }
    let mut k = i;
    if toks.get(k).is_some_and(|t| t.is_ident("pub")) {
        k += 1;
        if toks.get(k).is_some_and(|t| t.is_punct('(')) {
            k = matching(toks, k) + 1;
        }
    }
    let semicolon_only = toks.get(k).is_some_and(|t| {
        ["use", "const", "static", "type", "extern", "let"].iter().any(|kw| t.is_ident(kw))
    });
    let mut depth = 0usize;
    while let Some(t) = toks.get(i) {
        match t.kind {
            Kind::Punct('(' | '[' | '{') => depth += 1,
            Kind::Punct(')' | ']') => depth = depth.saturating_sub(1),
            Kind::Punct('}') => {
                depth = depth.saturating_sub(1);
                if depth == 0 && !semicolon_only {
                    return i + 1;
                }
            }
            Kind::Punct(';') if depth == 0 => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}
