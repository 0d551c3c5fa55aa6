//! No module imports another module that imports it back, directly or
//! through others (issue 10, /work/shared/style.md "Import circles").
//!
//! The test reads every `.rs` file under `src/` of each workspace crate,
//! builds the graph "module A names an item of module B" from `use`
//! declarations and from paths in code (`crate::…`, `super::…`, `self::…`,
//! and paths that start with a child module's name), and fails naming every
//! group of modules that reach each other.
//!
//! Modules are files and inline `mod x { … }` blocks (so a file's
//! `#[cfg(test)] mod tests` is a module of its own, as rustc sees it).
//! A `pub use` (any `pub(...)` visibility) is a re-export: it is not an edge
//! of the module that re-exports, and a path through it is resolved to the
//! module it re-exports from — so `crate::Report` counts as an import of
//! `report`, not of `lib.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Groups still allowed while another branch removes them. Each entry is the
/// exact set of modules of one group (crate-qualified); the test fails if the
/// group grows, shrinks or disappears, so the entry is removed with the fix.
const ALLOWED: &[&[&str]] = &[];

const CRATES: &[(&str, &str)] = &[
    ("ladon_checker", "checker"),
    ("ladon_workloads", "workloads"),
    ("ladon_adapters", "adapters"),
    ("ladon_harness", "harness"),
];

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut report = Vec::new();
    let mut allowed_seen = vec![false; ALLOWED.len()];
    for (krate, dir) in CRATES {
        let graph = Graph::of_crate(krate, &root.join(dir).join("src"));
        for group in graph.cycle_groups() {
            let names: BTreeSet<String> = group.iter().map(|m| graph.qualified(m)).collect();
            if let Some(i) = ALLOWED
                .iter()
                .position(|a| a.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>() == names)
            {
                allowed_seen[i] = true;
                continue;
            }
            report.push(graph.describe(&group));
        }
    }
    for (i, seen) in allowed_seen.iter().enumerate() {
        if !seen {
            report.push(format!(
                "allowed group {:?} no longer exists: remove it from ALLOWED in {}",
                ALLOWED[i],
                file!()
            ));
        }
    }
    assert!(
        report.is_empty(),
        "import cycles:\n\n{}",
        report.join("\n\n")
    );
}

/// The parser on small made-up crates: a re-export is followed to its
/// source, `super::` and child-module paths resolve, and a cycle is named.
#[test]
fn the_parser_finds_a_cycle_through_super_and_ignores_facades() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path();
    std::fs::create_dir_all(src.join("a")).unwrap();
    std::fs::write(
        src.join("lib.rs"),
        "pub mod a;\npub mod b;\npub use b::Thing;\n// crate::a::X in a comment\n",
    )
    .unwrap();
    std::fs::write(src.join("a/mod.rs"), "pub mod x;\npub mod y;\n").unwrap();
    // x -> y through a `use super::…` tree, y -> x through an expression path.
    std::fs::write(
        src.join("a/x.rs"),
        "use super::{y::Y, *};\nuse crate::Thing; // lib.rs re-exports b\npub struct X;\n",
    )
    .unwrap();
    std::fs::write(
        src.join("a/y.rs"),
        "pub struct Y;\nfn f() { let s = \"super::x\"; let _ = super::x::X; }\n\
         #[cfg(test)]\nmod tests { use super::*; use crate::a::x::X; }\n",
    )
    .unwrap();
    std::fs::write(
        src.join("b.rs"),
        "pub struct Thing<'a>(&'a str);\nconst C: char = '{';\n",
    )
    .unwrap();
    let g = Graph::of_crate("demo", src);
    let groups: Vec<BTreeSet<String>> = g
        .cycle_groups()
        .iter()
        .map(|grp| grp.iter().map(|m| g.qualified(m)).collect())
        .collect();
    assert_eq!(
        groups,
        vec![["demo::a::x", "demo::a::y"]
            .iter()
            .map(|s| s.to_string())
            .collect()]
    );
    let text = g.describe(&g.cycle_groups()[0]);
    assert!(text.contains("a/x.rs:1 imports demo::a::y"), "{text}");
    assert!(text.contains("a/y.rs:2 imports demo::a::x"), "{text}");
    // lib.rs's re-export is not an edge; x's `crate::Thing` resolves to b.
    let x = vec!["a".to_string(), "x".to_string()];
    assert!(g.edges[&x].contains_key(&vec!["b".to_string()]));
    assert!(!g.edges[&x].contains_key(&Vec::new()));
}

type ModPath = Vec<String>;

#[derive(Default)]
struct Module {
    file: PathBuf,
    children: BTreeSet<String>,
    /// name -> (path as written, relative to this module), from `use`.
    aliases: BTreeMap<String, Vec<String>>,
    globs: Vec<Vec<String>>,
    /// names of items defined here (for glob resolution)
    defined: BTreeSet<String>,
    /// paths this module names (not re-exports), with their line
    refs: Vec<(Vec<String>, usize)>,
}

struct Graph {
    krate: String,
    src: PathBuf,
    modules: BTreeMap<ModPath, Module>,
    /// from -> to -> (file, line) of the first import
    edges: BTreeMap<ModPath, BTreeMap<ModPath, (PathBuf, usize)>>,
}

impl Graph {
    fn of_crate(krate: &str, src: &Path) -> Graph {
        let mut g = Graph {
            krate: krate.to_string(),
            src: src.to_path_buf(),
            modules: BTreeMap::new(),
            edges: BTreeMap::new(),
        };
        let root = if src.join("lib.rs").exists() {
            src.join("lib.rs")
        } else {
            src.join("main.rs")
        };
        g.load_file(Vec::new(), &root);
        let paths: Vec<ModPath> = g.modules.keys().cloned().collect();
        for from in paths {
            let refs = g.modules[&from].refs.clone();
            for (path, line) in refs {
                let mut seen = BTreeSet::new();
                if let Some(to) = g.resolve(&from, &path, &mut seen) {
                    if to != from && !is_ancestor_scope(&from, &to, &g) {
                        let file = g.modules[&from].file.clone();
                        g.edges
                            .entry(from.clone())
                            .or_default()
                            .entry(to)
                            .or_insert((file, line));
                    }
                }
            }
        }
        g
    }

    fn qualified(&self, m: &ModPath) -> String {
        std::iter::once(self.krate.as_str())
            .chain(m.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("::")
    }

    fn load_file(&mut self, path: ModPath, file: &Path) {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        let toks = tokenize(&text);
        // Directory that holds this module's child files.
        let is_dir_owner = matches!(
            file.file_name().and_then(|n| n.to_str()),
            Some("mod.rs" | "lib.rs" | "main.rs")
        );
        let child_dir = if is_dir_owner {
            file.parent().unwrap().to_path_buf()
        } else {
            file.with_extension("")
        };
        let mut files = Vec::new();
        self.parse_items(&toks, path, file, &child_dir, &mut files);
        for (child, child_file) in files {
            self.load_file(child, &child_file);
        }
    }

    /// Walks the tokens of one file, tracking inline `mod x { … }` scopes.
    fn parse_items(
        &mut self,
        toks: &[Tok],
        base: ModPath,
        file: &Path,
        child_dir: &Path,
        files: &mut Vec<(ModPath, PathBuf)>,
    ) {
        // stack of (module path, brace depth at which it closes, child dir)
        let mut scopes: Vec<(ModPath, usize, PathBuf)> = vec![(base.clone(), 0, child_dir.into())];
        self.modules.entry(base).or_default().file = file.to_path_buf();
        let mut depth = 0usize;
        let mut i = 0;
        while i < toks.len() {
            let cur = scopes.last().unwrap().0.clone();
            let t = &toks[i].text;
            match t.as_str() {
                "{" => depth += 1,
                "}" => {
                    depth -= 1;
                    if scopes.len() > 1 && scopes.last().unwrap().1 == depth {
                        scopes.pop();
                    }
                }
                "mod" if i + 2 < toks.len() && is_ident(&toks[i + 1].text) => {
                    let name = toks[i + 1].text.clone();
                    let mut child = cur.clone();
                    child.push(name.clone());
                    self.modules
                        .get_mut(&cur)
                        .unwrap()
                        .children
                        .insert(name.clone());
                    let dir = scopes.last().unwrap().2.clone();
                    if toks[i + 2].text == ";" {
                        let f = if dir.join(format!("{name}.rs")).exists() {
                            dir.join(format!("{name}.rs"))
                        } else {
                            dir.join(&name).join("mod.rs")
                        };
                        assert!(
                            f.exists(),
                            "module file for {child:?} not found in {}",
                            dir.display()
                        );
                        files.push((child, f));
                        i += 3;
                        continue;
                    } else if toks[i + 2].text == "{" {
                        self.modules.entry(child.clone()).or_default().file = file.to_path_buf();
                        scopes.push((child, depth, dir.join(&name)));
                        depth += 1;
                        i += 3;
                        continue;
                    }
                }
                "fn" | "struct" | "enum" | "trait" | "type" | "const" | "static" | "union"
                | "macro_rules"
                    if i + 1 < toks.len() && is_ident(&toks[i + 1].text) =>
                {
                    let name = toks[i + 1].text.clone();
                    self.modules.get_mut(&cur).unwrap().defined.insert(name);
                }
                "use" => {
                    let public = is_pub_before(toks, i);
                    let line = toks[i].line;
                    let (trees, next) = parse_use_tree(toks, i + 1, Vec::new());
                    let m = self.modules.get_mut(&cur).unwrap();
                    for (path, leaf) in trees {
                        match leaf {
                            Leaf::Glob => m.globs.push(path.clone()),
                            Leaf::Name(alias) => {
                                if alias != "_" {
                                    m.aliases.insert(alias, path.clone());
                                }
                            }
                        }
                        if !public {
                            m.refs.push((path, line));
                        }
                    }
                    i = next;
                    continue;
                }
                "crate" | "super" | "self" => {
                    let prev_is_path = i > 0 && toks[i - 1].text == "::";
                    if !prev_is_path && i + 1 < toks.len() && toks[i + 1].text == "::" {
                        let (path, next) = parse_plain_path(toks, i);
                        let line = toks[i].line;
                        self.modules.get_mut(&cur).unwrap().refs.push((path, line));
                        i = next;
                        continue;
                    }
                }
                _ if is_ident(t) => {
                    // A path that starts with a child module's name; the
                    // children are all declared before use in practice, and
                    // the check is repeated after parsing below.
                    let prev_is_path =
                        i > 0 && (toks[i - 1].text == "::" || toks[i - 1].text == ".");
                    if !prev_is_path && i + 1 < toks.len() && toks[i + 1].text == "::" {
                        let (path, next) = parse_plain_path(toks, i);
                        let line = toks[i].line;
                        let mut p = vec!["self".to_string()];
                        p.extend(path);
                        // Kept only if the first segment is a child module
                        // or an alias (checked in resolve).
                        self.modules.get_mut(&cur).unwrap().refs.push((p, line));
                        i = next;
                        continue;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// The module that `path` (as written in module `from`) names an item of,
    /// or `None` for paths outside the crate.
    fn resolve(
        &self,
        from: &ModPath,
        path: &[String],
        seen: &mut BTreeSet<(ModPath, String)>,
    ) -> Option<ModPath> {
        let mut segs = path.iter();
        let first = segs.next()?;
        let mut cur: ModPath = match first.as_str() {
            "crate" => Vec::new(),
            "self" => from.clone(),
            "super" => {
                let mut p = from.clone();
                p.pop()?;
                p
            }
            // A `use x::…` in edition 2018+: a child module or an item in
            // scope (alias), else an external crate.
            name => {
                let m = self.modules.get(from)?;
                if m.children.contains(name) {
                    let mut p = from.clone();
                    p.push(name.to_string());
                    p
                } else if let Some(target) = m.aliases.get(name) {
                    if !seen.insert((from.clone(), name.to_string())) {
                        return None;
                    }
                    let mut whole = target.clone();
                    whole.extend(segs.cloned());
                    return self.resolve(from, &whole, seen);
                } else {
                    return None;
                }
            }
        };
        let rest: Vec<&String> = segs.collect();
        let mut k = 0;
        while k < rest.len() {
            let seg = rest[k];
            if seg == "super" {
                cur.pop()?;
                k += 1;
                continue;
            }
            if seg == "self" {
                k += 1;
                continue;
            }
            let m = self.modules.get(&cur)?;
            if m.children.contains(seg.as_str()) {
                cur.push(seg.clone());
                k += 1;
                continue;
            }
            if let Some(target) = m.aliases.get(seg.as_str()) {
                // A name imported into `cur`: follow it (re-export or not).
                if !seen.insert((cur.clone(), seg.clone())) {
                    return Some(cur);
                }
                let mut whole = target.clone();
                whole.extend(rest[k + 1..].iter().map(|s| s.to_string()));
                return match self.resolve(&cur, &whole, seen) {
                    Some(p) => Some(p),
                    // re-export of an external item: the module that
                    // re-exports it is what is named
                    None => Some(cur),
                };
            }
            // A glob re-export that provides this name: the glob's module
            // if it is a module of this crate and has the name.
            for g in &m.globs {
                let mut s2 = seen.clone();
                if let Some(gm) = self.resolve(&cur, g, &mut s2) {
                    if gm != cur && self.defines(&gm, seg) {
                        return Some(gm);
                    }
                }
            }
            // An item defined in `cur` itself.
            return Some(cur);
        }
        Some(cur)
    }

    /// Whether module `m` declares an item, child or alias named `name`.
    fn defines(&self, m: &ModPath, name: &str) -> bool {
        self.modules.get(m).is_some_and(|module| {
            module.children.contains(name)
                || module.aliases.contains_key(name)
                || module.defined.contains(name)
        })
    }

    /// Strongly connected groups of more than one module (Tarjan).
    fn cycle_groups(&self) -> Vec<Vec<ModPath>> {
        let nodes: Vec<&ModPath> = self.modules.keys().collect();
        let idx: BTreeMap<&ModPath, usize> =
            nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let adj: Vec<Vec<usize>> = nodes
            .iter()
            .map(|m| {
                self.edges
                    .get(*m)
                    .map(|e| e.keys().filter_map(|t| idx.get(t).copied()).collect())
                    .unwrap_or_default()
            })
            .collect();
        let n = nodes.len();
        let mut t = Tarjan {
            index: vec![usize::MAX; n],
            low: vec![0; n],
            on_stack: vec![false; n],
            stack: Vec::new(),
            next: 0,
            groups: Vec::new(),
        };
        for v in 0..n {
            if t.index[v] == usize::MAX {
                t.strong(v, &adj);
            }
        }
        let mut groups = t.groups;
        groups.sort();
        groups
            .into_iter()
            .map(|g| g.into_iter().map(|i| nodes[i].clone()).collect())
            .collect()
    }

    /// The group's modules and every import between them, with file:line.
    fn describe(&self, group: &[ModPath]) -> String {
        let set: BTreeSet<&ModPath> = group.iter().collect();
        let mut out = format!(
            "{} modules of {} import each other:",
            group.len(),
            self.krate
        );
        for from in group {
            for (to, (file, line)) in self.edges.get(from).into_iter().flatten() {
                if set.contains(to) {
                    let rel = file.strip_prefix(&self.src).unwrap_or(file);
                    out.push_str(&format!(
                        "\n  {} ({}:{} imports {})",
                        self.qualified(from),
                        rel.display(),
                        line,
                        self.qualified(to)
                    ));
                }
            }
        }
        out
    }
}

/// Whether `to` is a scope that `from` sits in (a `use super::*` from an
/// inline `mod tests` names the file's module: not an import between
/// modules the cycle rule is about, since a module's own tests live in it).
fn is_ancestor_scope(from: &ModPath, to: &ModPath, g: &Graph) -> bool {
    from.starts_with(to)
        && g.modules.get(from).map(|m| &m.file) == g.modules.get(to).map(|m| &m.file)
}

fn is_pub_before(toks: &[Tok], i: usize) -> bool {
    if i == 0 {
        return false;
    }
    if toks[i - 1].text == "pub" {
        return true;
    }
    if toks[i - 1].text == ")" {
        // pub(crate) / pub(super) / pub(in path)
        let mut j = i - 1;
        while j > 0 && toks[j].text != "(" {
            j -= 1;
        }
        return j > 0 && toks[j - 1].text == "pub";
    }
    false
}

enum Leaf {
    Name(String),
    Glob,
}

/// Parses a use tree starting at `i` (after `use` or inside braces) with
/// the prefix `prefix`; returns the leaves and the index after the tree's
/// terminator (`;` at top level).
fn parse_use_tree(
    toks: &[Tok],
    mut i: usize,
    prefix: Vec<String>,
) -> (Vec<(Vec<String>, Leaf)>, usize) {
    let mut out = Vec::new();
    let mut path = prefix;
    if i < toks.len() && toks[i].text == "::" {
        i += 1; // `use ::std::…`
    }
    loop {
        let Some(t) = toks.get(i) else {
            return (out, i);
        };
        match t.text.as_str() {
            "{" => {
                i += 1;
                loop {
                    let (mut sub, next) = parse_use_tree(toks, i, path.clone());
                    out.append(&mut sub);
                    i = next;
                    match toks.get(i).map(|t| t.text.as_str()) {
                        Some(",") => {
                            i += 1;
                            if toks.get(i).map(|t| t.text.as_str()) == Some("}") {
                                i += 1;
                                break;
                            }
                        }
                        Some("}") => {
                            i += 1;
                            break;
                        }
                        _ => return (out, i),
                    }
                }
                if toks.get(i).map(|t| t.text.as_str()) == Some(";") {
                    i += 1;
                }
                return (out, i);
            }
            "*" => {
                out.push((path, Leaf::Glob));
                i += 1;
                break;
            }
            s if is_ident(s) => {
                path.push(s.to_string());
                i += 1;
                match toks.get(i).map(|t| t.text.as_str()) {
                    Some("::") => i += 1,
                    Some("as") => {
                        let alias = toks.get(i + 1).map(|t| t.text.clone()).unwrap_or_default();
                        let leaf_path = path.clone();
                        out.push((leaf_path, Leaf::Name(alias)));
                        i += 2;
                        break;
                    }
                    _ => {
                        let name = path.last().unwrap().clone();
                        let name = if name == "self" {
                            path.pop();
                            path.last().cloned().unwrap_or_default()
                        } else {
                            name
                        };
                        out.push((path, Leaf::Name(name)));
                        break;
                    }
                }
            }
            _ => return (out, i),
        }
    }
    if toks.get(i).map(|t| t.text.as_str()) == Some(";") {
        i += 1;
    }
    (out, i)
}

/// `a::b::c` starting at `i`; stops at the first token that is not
/// `:: ident`. Returns the segments and the index after them.
fn parse_plain_path(toks: &[Tok], mut i: usize) -> (Vec<String>, usize) {
    let mut path = vec![toks[i].text.clone()];
    i += 1;
    while i + 1 < toks.len() && toks[i].text == "::" && is_ident(&toks[i + 1].text) {
        path.push(toks[i + 1].text.clone());
        i += 2;
    }
    (path, i)
}

fn is_ident(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_alphabetic() || ch == '_')
        && c.all(|ch| ch.is_alphanumeric() || ch == '_')
}

struct Tok {
    text: String,
    line: usize,
}

/// Identifiers, `::` and punctuation; comments, strings and char literals
/// dropped; lifetimes kept as identifiers without their quote.
fn tokenize(src: &str) -> Vec<Tok> {
    let b: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < b.len() {
        let c = b[i];
        if c == '\n' {
            line += 1;
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '/' && b.get(i + 1) == Some(&'/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && b.get(i + 1) == Some(&'*') {
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
                    if b[i] == '\n' {
                        line += 1;
                    }
                    i += 1;
                }
            }
        } else if c == '"' || ((c == 'b' || c == 'c') && b.get(i + 1) == Some(&'"')) {
            i += if c == '"' { 1 } else { 2 };
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                if b.get(i) == Some(&'\n') {
                    line += 1;
                }
                i += 1;
            }
            i += 1;
        } else if (c == 'r' || ((c == 'b' || c == 'c') && b.get(i + 1) == Some(&'r'))) && {
            let s = if c == 'r' { i + 1 } else { i + 2 };
            let mut k = s;
            while b.get(k) == Some(&'#') {
                k += 1;
            }
            b.get(k) == Some(&'"')
        } {
            let s = if c == 'r' { i + 1 } else { i + 2 };
            let mut k = s;
            while b.get(k) == Some(&'#') {
                k += 1;
            }
            let hashes = k - s;
            i = k + 1;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"' && (0..hashes).all(|h| b.get(i + 1 + h) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                if b[i] == '\n' {
                    line += 1;
                }
                i += 1;
            }
        } else if c == '\'' {
            // char literal ('x', '\n', '\u{..}') or lifetime ('a)
            if b.get(i + 1) == Some(&'\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
            } else {
                i += 1; // lifetime: the identifier follows
            }
        } else if c.is_alphanumeric() || c == '_' {
            let s = i;
            while i < b.len() && (b[i].is_alphanumeric() || b[i] == '_') {
                i += 1;
            }
            let mut text: String = b[s..i].iter().collect();
            if let Some(raw) = text.strip_prefix("r#") {
                text = raw.to_string();
            }
            out.push(Tok { text, line });
        } else if c == ':' && b.get(i + 1) == Some(&':') {
            out.push(Tok {
                text: "::".into(),
                line,
            });
            i += 2;
        } else {
            out.push(Tok {
                text: c.to_string(),
                line,
            });
            i += 1;
        }
    }
    out
}

/// Tarjan's strongly connected components; `groups` keeps those of more
/// than one node.
struct Tarjan {
    index: Vec<usize>,
    low: Vec<usize>,
    on_stack: Vec<bool>,
    stack: Vec<usize>,
    next: usize,
    groups: Vec<Vec<usize>>,
}

impl Tarjan {
    fn strong(&mut self, v: usize, adj: &[Vec<usize>]) {
        self.index[v] = self.next;
        self.low[v] = self.next;
        self.next += 1;
        self.stack.push(v);
        self.on_stack[v] = true;
        for &w in &adj[v] {
            if self.index[w] == usize::MAX {
                self.strong(w, adj);
                self.low[v] = self.low[v].min(self.low[w]);
            } else if self.on_stack[w] {
                self.low[v] = self.low[v].min(self.index[w]);
            }
        }
        if self.low[v] == self.index[v] {
            let mut g = Vec::new();
            loop {
                let w = self.stack.pop().unwrap();
                self.on_stack[w] = false;
                g.push(w);
                if w == v {
                    break;
                }
            }
            if g.len() > 1 {
                g.sort();
                self.groups.push(g);
            }
        }
    }
}
