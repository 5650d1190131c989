//! The layer checker behind `tests/architecture.rs`: reads the layer table (`src/LAYERS.md`),
//! builds the crate's module tree by following `mod` declarations from `src/lib.rs`
//! (`#[path]` included, `#[cfg(test)]` modules left out), and checks every `crate::`,
//! `self::` and `super::` path, in `use` trees (nested ones flattened) and written inline in
//! code, against the table's rules. Paths through `use` aliases and `pub use` re-exports are
//! followed to the module that defines the item, so `crate::spool::QueueId` counts as
//! `spool::format`. External paths (`std::fs`, `mio::...`) in pure modules are checked
//! against the table's "pure code never names" list, `use` aliases expanded (so
//! `use std::time::Instant;` + `Instant::now()` is `std::time::Instant::now`).
//!
//! It works on a map `path -> source`, so it runs the same on the real tree and on the small
//! fixture crates of `self_test.rs`.

mod lexer;
mod scan;
mod self_test;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use scan::{Entry, UseLeaf};

/// The four layers, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Pure,
    Mechanism,
    Service,
    Wiring,
}

impl Layer {
    /// The word the table uses.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Pure => "pure",
            Layer::Mechanism => "mechanism",
            Layer::Service => "service",
            Layer::Wiring => "wiring",
        }
    }
}

/// One row of the layer table.
#[derive(Clone, Debug)]
pub(crate) struct Row {
    pub(crate) module: String,
    pub(crate) layer: Layer,
    /// The owning service, `None` for `shared`.
    pub(crate) owner: Option<String>,
    /// Module prefixes this module never imports (the `never imports` column).
    pub(crate) never: Vec<String>,
}

/// The layer table and the list of names pure code never uses.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    pub(crate) rows: Vec<Row>,
    pub(crate) forbidden_in_pure: Vec<String>,
}

fn cells(line: &str) -> Vec<String> {
    let t = line.trim().trim_start_matches('|').trim_end_matches('|');
    t.split('|').map(|c| c.trim().replace('`', "")).collect()
}

impl Table {
    /// Parses the two markdown tables of `LAYERS.md` (see that file for the format).
    pub(crate) fn parse(md: &str) -> Result<Table, String> {
        let mut rows = Vec::new();
        let mut forbidden = Vec::new();
        let mut current: Option<&str> = None;
        for line in md.lines() {
            let line = line.trim();
            if !line.starts_with('|') {
                current = None;
                continue;
            }
            let c = cells(line);
            if c.first().is_some_and(|h| h == "module") {
                current = Some("layers");
                continue;
            }
            if c.first().is_some_and(|h| h == "pure code never names") {
                current = Some("forbidden");
                continue;
            }
            if c.iter().all(|c| c.chars().all(|ch| ch == '-')) {
                continue;
            }
            match current {
                Some("layers") => {
                    let [module, layer, owner, never] = c.as_slice() else {
                        return Err(format!("layer row needs 4 cells: {line}"));
                    };
                    let layer = match layer.as_str() {
                        "pure" => Layer::Pure,
                        "mechanism" => Layer::Mechanism,
                        "service" => Layer::Service,
                        "wiring" => Layer::Wiring,
                        other => return Err(format!("unknown layer {other:?}: {line}")),
                    };
                    let owner = (owner != "shared").then(|| owner.clone());
                    let never = never
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect();
                    rows.push(Row { module: module.clone(), layer, owner, never });
                }
                Some("forbidden") => forbidden.push(c[0].clone()),
                _ => {}
            }
        }
        if rows.is_empty() {
            return Err("no layer table found".into());
        }
        Ok(Table { rows, forbidden_in_pure: forbidden })
    }

    /// The row of `module`: the longest table entry that is a prefix of it.
    pub(crate) fn row(&self, module: &str) -> Option<&Row> {
        self.rows.iter().filter(|r| is_prefix(&r.module, module)).max_by_key(|r| r.module.len())
    }
}

/// `prefix` is `path` or one of its ancestors (`a::b` is a prefix of `a::b::c`, not of `a::bc`).
pub(crate) fn is_prefix(prefix: &str, path: &str) -> bool {
    path == prefix
        || (path.starts_with(prefix) && path[prefix.len()..].starts_with("::"))
        || prefix.is_empty()
}

/// One import that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Violation {
    pub(crate) file: String,
    pub(crate) line: usize,
    /// The importing module (`receive::policy`).
    pub(crate) from: String,
    /// The imported module (`deliver::route`) or external path (`std::fs`).
    pub(crate) to: String,
    pub(crate) rule: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {} -> {}: {}", self.file, self.line, self.from, self.to, self.rule)
    }
}

/// The result of a check: rule violations, and problems with the table or the tree itself
/// (a module without a row, a row naming no module, a `mod` whose file is missing).
#[derive(Debug, Default)]
pub(crate) struct Report {
    pub(crate) violations: Vec<Violation>,
    pub(crate) errors: Vec<String>,
    /// Every module found, by path (`""` is the crate root).
    pub(crate) modules: BTreeSet<String>,
}

/// A path after its first segment is understood.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    Internal(Vec<String>),
    External(Vec<String>),
}

struct Module {
    file: String,
    aliases: HashMap<String, Target>,
    /// Targets of `use path::*` in this module (followed when it has exactly one).
    globs: Vec<Target>,
}

fn join(base: &str, name: &str) -> String {
    if base.is_empty() { name.to_string() } else { format!("{base}::{name}") }
}

fn dir_of(file: &str) -> &str {
    file.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Checks the crate in `files` (`"src/lib.rs" -> source`, ...) against `table`.
pub(crate) fn check(files: &BTreeMap<String, String>, table: &Table) -> Report {
    let mut report = Report::default();
    let mut modules: BTreeMap<String, Module> = BTreeMap::new();
    let mut entries: Vec<(String, Entry)> = Vec::new();

    // 1. the module tree, from src/lib.rs down
    let mut todo = vec![(String::new(), "src/lib.rs".to_string())];
    while let Some((path, file)) = todo.pop() {
        let Some(src) = files.get(&file) else {
            report.errors.push(format!("module {path:?}: file {file} not found"));
            continue;
        };
        modules.insert(
            path.clone(),
            Module { file: file.clone(), aliases: HashMap::new(), globs: Vec::new() },
        );
        let mod_rs = file.ends_with("/lib.rs") || file.ends_with("/mod.rs");
        let own_dir = if mod_rs {
            dir_of(&file).to_string()
        } else {
            file.trim_end_matches(".rs").to_string()
        };
        for (scope, entry) in scan::scan(&lexer::tokenize(src)).entries {
            let mut here = path.clone();
            for s in &scope {
                here = join(&here, s);
            }
            match &entry {
                Entry::ModDecl { name, path_attr } => {
                    let child = join(&here, name);
                    let child_file = match path_attr {
                        Some(p) => format!("{}/{p}", dir_of(&file)),
                        None => {
                            let base =
                                scope.iter().fold(own_dir.clone(), |d, s| format!("{d}/{s}"));
                            let flat = format!("{base}/{name}.rs");
                            if files.contains_key(&flat) {
                                flat
                            } else {
                                format!("{base}/{name}/mod.rs")
                            }
                        }
                    };
                    todo.push((child, child_file));
                }
                Entry::InlineMod { name } => {
                    modules.insert(
                        join(&here, name),
                        Module { file: file.clone(), aliases: HashMap::new(), globs: Vec::new() },
                    );
                }
                _ => entries.push((here, entry)),
            }
        }
    }
    report.modules = modules.keys().cloned().collect();

    // 2. `use` aliases, per module (a leaf may name a module declared anywhere in the tree)
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let externs = extern_roots(table);
    let mut aliases: Vec<(String, Option<String>, Target)> = Vec::new();
    for (here, entry) in &entries {
        if let Entry::Use(UseLeaf { segs, alias, glob, leading_colons, .. }) = entry
            && (alias.is_some() || *glob)
        {
            let empty = HashMap::new();
            if let Some(t) = absolutize(segs, here, *leading_colons, true, &names, &empty, &externs)
            {
                aliases.push((here.clone(), alias.clone(), t));
            }
        }
    }
    for (here, a, t) in aliases {
        if let Some(m) = modules.get_mut(&here) {
            match a {
                Some(a) => drop(m.aliases.insert(a, t)),
                None => m.globs.push(t),
            }
        }
    }

    // 3. every path, checked
    for (here, entry) in &entries {
        let Some(from_row) = table.row(here) else { continue };
        let (segs, line, leading, is_use, glob) = match entry {
            Entry::Use(l) => (&l.segs, l.line, l.leading_colons, true, l.glob),
            Entry::Path { segs, line, leading_colons } => {
                (segs, *line, *leading_colons, false, false)
            }
            _ => continue,
        };
        let file = modules[here].file.clone();
        let al = &modules[here].aliases;
        if !is_use && matches!(al.get(&segs[0]), Some(Target::Internal(_))) {
            continue; // `alias::item` in code: the `use` that made the alias is reported
        }
        let Some(target) = absolutize(segs, here, leading, is_use, &names, al, &externs) else {
            continue;
        };
        match target {
            Target::Internal(p) => {
                let to = resolve_module(&p, &modules);
                if to.is_empty() || to == *here {
                    continue;
                }
                let Some(to_row) = table.row(&to) else { continue };
                if let Some(rule) = edge_rule(here, from_row, &to, to_row) {
                    report.violations.push(Violation { file, line, from: here.clone(), to, rule });
                }
            }
            Target::External(p) if from_row.layer == Layer::Pure => {
                let path = p.join("::");
                for bad in &table.forbidden_in_pure {
                    if is_prefix(bad, &path) || (glob && is_prefix(&path, bad)) {
                        let rule = format!("pure code never names {bad}");
                        report.violations.push(Violation {
                            file: file.clone(),
                            line,
                            from: here.clone(),
                            to: path.clone(),
                            rule,
                        });
                    }
                }
            }
            Target::External(_) => {}
        }
    }
    report.violations.sort();
    report.violations.dedup();

    // 4. the table covers the tree and names only real modules
    for m in &report.modules {
        if !m.is_empty() && table.row(m).is_none() {
            report.errors.push(format!("module {m} has no row in the layer table"));
        }
    }
    for r in &table.rows {
        if !report.modules.contains(&r.module) {
            report.errors.push(format!("layer table row {} names no module", r.module));
        }
    }
    report
}

/// First segments that make an inline path external: the standard library and the crates
/// in the forbidden list.
fn extern_roots(table: &Table) -> BTreeSet<String> {
    let mut s: BTreeSet<String> = ["std", "core", "alloc"].iter().map(|s| s.to_string()).collect();
    for f in &table.forbidden_in_pure {
        s.insert(f.split("::").next().unwrap_or_default().to_string());
    }
    s
}

/// Turns a path as written in module `here` into an absolute one; `None` when it names
/// something local (a type, a variant) that no rule is about.
fn absolutize(
    segs: &[String],
    here: &str,
    leading_colons: bool,
    is_use: bool,
    modules: &BTreeSet<String>,
    aliases: &HashMap<String, Target>,
    externs: &BTreeSet<String>,
) -> Option<Target> {
    let first = segs.first()?;
    let std_name = |s: &[String]| {
        let mut v = s.to_vec();
        if v[0] == "core" || v[0] == "alloc" {
            v[0] = "std".into();
        }
        v
    };
    if leading_colons {
        return Some(Target::External(std_name(segs)));
    }
    let internal = |base: Vec<String>, rest: &[String]| {
        let mut v = base;
        v.extend(rest.iter().cloned());
        Some(Target::Internal(v))
    };
    let here_segs: Vec<String> =
        if here.is_empty() { vec![] } else { here.split("::").map(String::from).collect() };
    match first.as_str() {
        "crate" => internal(vec![], &segs[1..]),
        "self" => internal(here_segs, &segs[1..]),
        "super" => {
            let mut base = here_segs;
            let mut k = 0;
            while segs.get(k).is_some_and(|s| s == "super") {
                base.pop();
                k += 1;
            }
            internal(base, &segs[k..])
        }
        _ if modules.contains(&join(here, first)) => internal(here_segs, segs),
        _ if aliases.contains_key(first) => match &aliases[first] {
            Target::Internal(t) => internal(t.clone(), &segs[1..]),
            Target::External(t) => {
                let mut v = t.clone();
                v.extend(segs[1..].iter().cloned());
                Some(Target::External(v))
            }
        },
        _ if is_use || externs.contains(first) => Some(Target::External(std_name(segs))),
        _ => None,
    }
}

/// The module an absolute internal path lands in, following `use`/`pub use` aliases of the
/// modules it walks through, and a module's glob import when it has exactly one (as the
/// compatibility modules `pub use crate::x::*` do); bounded, in case of a cycle.
fn resolve_module(path: &[String], modules: &BTreeMap<String, Module>) -> String {
    let mut segs = path.to_vec();
    'restart: for _ in 0..8 {
        let mut cur = String::new();
        for (k, s) in segs.iter().enumerate() {
            let cand = join(&cur, s);
            if modules.contains_key(&cand) {
                cur = cand;
                continue;
            }
            let m = modules.get(&cur);
            let glob = m.filter(|m| m.globs.len() == 1).map(|m| (&m.globs[0], k));
            let alias = m.and_then(|m| m.aliases.get(s)).map(|t| (t, k + 1));
            if let Some((Target::Internal(t), rest)) = alias.or(glob) {
                let mut next = t.clone();
                next.extend(segs[rest..].iter().cloned());
                if next != segs {
                    segs = next;
                    continue 'restart;
                }
            }
            return cur;
        }
        return cur;
    }
    segs.join("::")
}

/// The rule an import from `from` (row `fr`) of `to` (row `tr`) breaks, if any.
fn edge_rule(from: &str, fr: &Row, to: &str, tr: &Row) -> Option<String> {
    if let Some(n) = fr.never.iter().find(|n| is_prefix(n, to)) {
        return Some(format!("{} never imports {n}", fr.module));
    }
    if fr.layer == Layer::Wiring {
        return None;
    }
    if tr.layer == Layer::Wiring {
        return Some("only the wiring imports the wiring".into());
    }
    if fr.layer == Layer::Pure && tr.layer != Layer::Pure {
        return Some(format!("pure imports only pure ({to} is a {})", tr.layer.name()));
    }
    if fr.layer == Layer::Mechanism && tr.layer == Layer::Service {
        return Some("mechanisms do not import services".into());
    }
    if let Some(owner) = &tr.owner {
        if fr.owner.as_ref() == Some(owner) {
            return None;
        }
        let inbox = format!("{owner}::inbox");
        match &fr.owner {
            Some(_) if is_prefix(&inbox, to) => return None,
            Some(mine) => {
                return Some(format!(
                    "{mine} imports {owner}'s {to}: of another service only {inbox} is open"
                ));
            }
            None => return Some(format!("shared {from} imports {to}, owned by {owner}")),
        }
    }
    None
}
