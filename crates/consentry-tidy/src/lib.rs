//! consentry-tidy: checks the architecture's invariants by reading the source tree, in the manner of
//! rust-analyzer's tidy tests. Each check is a function over a [`Tree`] (the workspace on disk, or
//! files in memory for the self-tests) returning the violations in words; `tests/tidy.rs` runs them
//! on the workspace and fails with those words.
//!
//! The checks: the domain crate depends (directly or through its path dependencies) on no HTTP,
//! SQL or HTTP-client crate ([`forbidden_dependencies`]); no crate outside the domain reaches past
//! the domain services to their store (`.store()`, [`store_calls`]); `use crate::…` references
//! between a crate's top-level modules form no cycle ([`module_cycles`]); every crate has a `//!`
//! doc ([`missing_crate_docs`]); every path docs/ARCHITECTURE.md names exists
//! ([`missing_doc_paths`]). Invariants with a test of their own elsewhere (every route in the
//! access matrix: consentry-server's `tests/access.rs`) are not repeated here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A source tree: files by path relative to the workspace root, with `/` separators.
pub trait Tree {
    /// The text of a file, `None` when there is none.
    fn read(&self, path: &str) -> Option<String>;
    /// Every file under `dir` (recursively), relative to the root.
    fn files_under(&self, dir: &str) -> Vec<String>;
}

/// The workspace on disk.
#[derive(Debug)]
pub struct Disk {
    root: PathBuf,
}

impl Disk {
    /// The workspace whose root is `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn walk(&self, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "target" || name.to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                self.walk(&path, out);
            } else if let Ok(rel) = path.strip_prefix(&self.root) {
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
}

impl Tree for Disk {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.root.join(path)).ok()
    }

    fn files_under(&self, dir: &str) -> Vec<String> {
        let mut out = Vec::new();
        self.walk(&self.root.join(dir), &mut out);
        out.sort();
        out
    }
}

/// Files in memory (the self-tests' synthetic trees).
#[derive(Debug, Default)]
pub struct Mem(pub BTreeMap<String, String>);

impl Mem {
    /// A tree of `(path, text)` pairs.
    pub fn of(files: &[(&str, &str)]) -> Self {
        Self(
            files
                .iter()
                .map(|(p, t)| (p.to_string(), t.to_string()))
                .collect(),
        )
    }
}

impl Tree for Mem {
    fn read(&self, path: &str) -> Option<String> {
        self.0.get(path).cloned()
    }

    fn files_under(&self, dir: &str) -> Vec<String> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.0
            .keys()
            .filter(|p| p.starts_with(&prefix))
            .cloned()
            .collect()
    }
}

/// The crate directories under `crates/` (names), found through their `Cargo.toml`.
pub fn crate_dirs(tree: &dyn Tree) -> Vec<String> {
    let dirs: BTreeSet<String> = tree
        .files_under("crates")
        .iter()
        .filter_map(|p| {
            let rest = p.strip_prefix("crates/")?;
            let (dir, file) = rest.split_once('/')?;
            (file == "Cargo.toml").then(|| dir.to_string())
        })
        .collect();
    dirs.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// The domain's dependencies.

/// Crates the domain must not depend on: HTTP servers and clients, SQL. A crate named after one of
/// them (`tower-http`, `axum-server`, `hyper-util`) counts too.
pub const FORBIDDEN_IN_DOMAIN: &[&str] = &["axum", "sqlx", "reqwest", "hyper", "tower"];

fn is_forbidden(name: &str) -> bool {
    FORBIDDEN_IN_DOMAIN
        .iter()
        .any(|f| name == *f || name.starts_with(&format!("{f}-")))
}

/// The normal and build dependencies of a manifest: (name, path of a path dependency relative to the
/// workspace root). `workspace = true` entries take their path from the workspace's
/// `[workspace.dependencies]`. Dev-dependencies do not count: they are not part of the crate.
fn dependencies(
    manifest_dir: &str,
    manifest: &toml::Table,
    workspace: &toml::Table,
) -> Vec<(String, Option<String>)> {
    let ws_deps = workspace
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|d| d.as_table());
    let mut out = Vec::new();
    for section in ["dependencies", "build-dependencies"] {
        let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) else {
            continue;
        };
        for (key, spec) in deps {
            let name = spec
                .get("package")
                .and_then(|p| p.as_str())
                .unwrap_or(key)
                .to_string();
            let inherited = spec.get("workspace").and_then(|w| w.as_bool()) == Some(true);
            let path = if inherited {
                ws_deps
                    .and_then(|d| d.get(key))
                    .and_then(|d| d.get("path"))
                    .and_then(|p| p.as_str())
                    .map(normalize)
            } else {
                spec.get("path")
                    .and_then(|p| p.as_str())
                    .map(|p| normalize(&format!("{manifest_dir}/{p}")))
            };
            out.push((name, path));
        }
    }
    out
}

/// `a/b/../c` → `a/c`.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

/// Violations of "the domain crate knows nothing of HTTP, SQL or HTTP clients": every forbidden
/// crate reachable from `crates/{domain}` through its dependencies and its path dependencies'
/// dependencies, with the chain that reaches it.
pub fn forbidden_dependencies(tree: &dyn Tree, domain: &str) -> Vec<String> {
    let parse = |path: &str| -> Result<toml::Table, String> {
        let text = tree
            .read(path)
            .ok_or_else(|| format!("{path} could not be read"))?;
        text.parse::<toml::Table>()
            .map_err(|e| format!("{path} is not valid TOML: {e}"))
    };
    let workspace = match parse("Cargo.toml") {
        Ok(w) => w,
        Err(e) => return vec![e],
    };
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = vec![(format!("crates/{domain}"), vec![domain.to_string()])];
    while let Some((dir, chain)) = queue.pop() {
        if !seen.insert(dir.clone()) {
            continue;
        }
        let manifest = match parse(&format!("{dir}/Cargo.toml")) {
            Ok(m) => m,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for (name, path) in dependencies(&dir, &manifest, &workspace) {
            let mut via = chain.clone();
            via.push(name.clone());
            if is_forbidden(&name) {
                problems.push(format!(
                    "{domain} must not depend on HTTP, SQL or HTTP-client crates, but depends on {name} ({}); put that code behind a port in another crate",
                    via.join(" -> ")
                ));
            }
            if let Some(path) = path {
                queue.push((path, via));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// `.store()` outside the domain.

/// The `.store()` calls in the product code (`src`) of the crates outside `domain`: (file, number of
/// calls). Comment lines are not counted. Tests may reach the store to arrange a state no service
/// offers (the domain's `test-store` feature, enabled only as a dev-dependency), so `tests/` is not
/// read.
pub fn store_calls(tree: &dyn Tree, domain: &str) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for krate in crate_dirs(tree) {
        if krate == domain || krate == "consentry-tidy" {
            continue;
        }
        for file in tree.files_under(&format!("crates/{krate}/src")) {
            if !file.ends_with(".rs") {
                continue;
            }
            let Some(text) = tree.read(&file) else {
                continue;
            };
            let n: usize = code_lines(&text)
                .map(|(_, l)| l.matches(".store()").count())
                .sum();
            if n > 0 {
                calls.insert(file, n);
            }
        }
    }
    calls
}

/// Violations of "only the domain reaches the store through `Consentry::store()`": calls in files
/// not in `known` (file, calls allowed there), more calls than allowed, and known entries that are
/// no longer needed (so the list only shrinks).
pub fn store_call_violations(
    calls: &BTreeMap<String, usize>,
    known: &[(&str, usize)],
) -> Vec<String> {
    let known: BTreeMap<&str, usize> = known.iter().copied().collect();
    let mut problems = Vec::new();
    for (file, n) in calls {
        let allowed = known.get(file.as_str()).copied().unwrap_or(0);
        if *n > allowed {
            problems.push(format!(
                "{file} calls .store() {n} time(s) ({allowed} known): outside consentry-domain, use the domain services instead of their store"
            ));
        }
    }
    for (file, allowed) in &known {
        let n = calls.get(*file).copied().unwrap_or(0);
        if n < *allowed {
            problems.push(format!(
                "{file} is listed with {allowed} known .store() call(s) but has {n}: lower or remove its entry in KNOWN_STORE_CALLS"
            ));
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Module cycles.

/// The lines of `text` that are code: comment lines dropped, and everything from a
/// `#[cfg(test)]` module on (test modules sit at the end of a file and may use what they like).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = lines
        .windows(2)
        .position(|w| w[0].trim() == "#[cfg(test)]" && w[1].trim_start().starts_with("mod "))
        .unwrap_or(lines.len());
    lines
        .into_iter()
        .take(end)
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l))
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segments named after `prefix` (`crate::`) on a line: `crate::a::X` gives `a`,
/// `crate::{a::X, b}` gives `a` and `b`.
fn referenced_after<'a>(line: &'a str, prefix: &str, out: &mut Vec<&'a str>) {
    let mut rest = line;
    while let Some(i) = rest.find(prefix) {
        let before = rest[..i].chars().last();
        rest = &rest[i + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue; // `foo_crate::` or `$crate::`-like: not this crate's root.
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut start = true;
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if c.is_whitespace() => {}
                    _ if start => {
                        out.push(ident_at(&group[j..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            out.push(ident_at(rest));
        }
    }
}

/// The top-level module a source file of a crate belongs to (`src/a.rs`, `src/a/mod.rs` and
/// `src/a/b.rs` are all `a`), and whether `super::` in it names the crate root.
fn module_of(src_rel: &str) -> Option<(String, bool)> {
    let path = src_rel.strip_suffix(".rs")?;
    match path.split_once('/') {
        None if path == "lib" || path == "main" => None,
        None => Some((path.to_string(), true)),
        Some(("bin", _)) => None,
        Some((dir, rest)) => Some((dir.to_string(), rest == "mod")),
    }
}

/// The `use crate::…` graph between a crate's top-level modules: module → module it refers to →
/// where (file:line) it first does.
pub fn module_graph(tree: &dyn Tree, krate: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let src = format!("crates/{krate}/src/");
    let files: Vec<String> = tree
        .files_under(&format!("crates/{krate}/src"))
        .into_iter()
        .filter(|f| f.ends_with(".rs"))
        .collect();
    let modules: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module_of(f.strip_prefix(&src)?).map(|(m, _)| m))
        .collect();
    let mut graph: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let Some((module, super_is_root)) = module_of(file.strip_prefix(&src).unwrap_or(file))
        else {
            continue;
        };
        let text = tree.read(file).unwrap_or_default();
        let edges = graph.entry(module.clone()).or_default();
        for (n, line) in code_lines(&text) {
            let mut refs = Vec::new();
            referenced_after(line, "crate::", &mut refs);
            if super_is_root {
                referenced_after(line, "super::", &mut refs);
            }
            for target in refs {
                if target != module && modules.contains(target) {
                    edges
                        .entry(target.to_string())
                        .or_insert_with(|| format!("{file}:{n}"));
                }
            }
        }
    }
    graph
}

/// Whether `to` reaches `from` in `graph` (so the edge `from → to` closes a cycle).
fn reaches(graph: &BTreeMap<String, BTreeMap<String, String>>, to: &str, from: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![to.to_string()];
    while let Some(m) = stack.pop() {
        if m == from {
            return true;
        }
        if seen.insert(m.clone())
            && let Some(next) = graph.get(&m)
        {
            stack.extend(next.keys().cloned());
        }
    }
    false
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn cycles(graph: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<Vec<String>> {
    struct Walk<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        found: Vec<Vec<String>>,
    }
    impl<'g> Walk<'g> {
        fn visit(&mut self, v: &'g str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for w in self.graph.get(v).into_iter().flat_map(|e| e.keys()) {
                let w = w.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.found.push(component);
                }
            }
        }
    }
    let mut walk = Walk {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !walk.index.contains_key(v.as_str()) {
            walk.visit(v);
        }
    }
    walk.found
}

/// Violations of "a crate's modules refer to each other top-down": the cycles of `use crate::…`
/// references between `krate`'s top-level modules once the `known` edges (from, to) are set
/// aside, each with where its references are; and known edges that no longer close a cycle (so the
/// list only shrinks).
pub fn module_cycles(tree: &dyn Tree, krate: &str, known: &[(&str, &str)]) -> Vec<String> {
    let full = module_graph(tree, krate);
    let mut problems = Vec::new();
    for (from, to) in known {
        let present = full.get(*from).is_some_and(|e| e.contains_key(*to));
        if !present || !reaches(&full, to, from) {
            problems.push(format!(
                "{krate}: the known cycle edge {from} -> {to} no longer closes a cycle: remove it from the known exceptions"
            ));
        }
    }
    let mut graph = full;
    for (from, to) in known {
        if let Some(edges) = graph.get_mut(*from) {
            edges.remove(*to);
        }
    }
    for component in cycles(&graph) {
        let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
        let mut edges = Vec::new();
        for m in &component {
            for (to, at) in &graph[m] {
                if members.contains(to.as_str()) {
                    edges.push(format!("{m} -> {to} ({at})"));
                }
            }
        }
        problems.push(format!(
            "{krate}: the modules {} refer to each other in a cycle; move what the lower module needs down so references go one way: {}",
            component.join(", "),
            edges.join("; ")
        ));
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Crate docs.

/// Crates whose root (`src/lib.rs`, `src/main.rs`) does not begin with a `//!` doc.
pub fn missing_crate_docs(tree: &dyn Tree) -> Vec<String> {
    let mut problems = Vec::new();
    for krate in crate_dirs(tree) {
        let roots: Vec<String> = ["lib.rs", "main.rs"]
            .iter()
            .map(|f| format!("crates/{krate}/src/{f}"))
            .filter(|p| tree.read(p).is_some())
            .collect();
        if roots.is_empty() {
            problems.push(format!(
                "crates/{krate} has neither src/lib.rs nor src/main.rs"
            ));
        }
        for root in roots {
            let text = tree.read(&root).unwrap_or_default();
            let first = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with("#!["));
            if !first.is_some_and(|l| l.starts_with("//!")) {
                problems.push(format!(
                    "{root} does not begin with a //! doc saying what the crate is for"
                ));
            }
        }
    }
    problems
}

// ---------------------------------------------------------------------------------------------
// Paths in docs/ARCHITECTURE.md.

/// The backticked spans of a line.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

/// The crate directories a heading or path names (`crates/x`, or `x/src/…` for a crate `x`).
fn crates_named<'a>(span: &'a str, crates: &[String]) -> Option<&'a str> {
    let name = span.strip_prefix("crates/").unwrap_or(span);
    let first = name.split('/').next()?;
    crates.iter().any(|c| c == first).then_some(first)
}

/// Paths the document `doc` names that do not exist: backticked `crates/…` paths, crate-relative
/// paths (`consentry-store/src/sql/schedule.rs`), and `.rs` file names (`ports.rs`,
/// `sql/schedule.rs`) under a heading that names a crate, which must exist somewhere in one of the
/// crates that heading names.
pub fn missing_doc_paths(tree: &dyn Tree, doc: &str) -> Vec<String> {
    let Some(text) = tree.read(doc) else {
        return vec![format!("{doc} could not be read")];
    };
    let crates = crate_dirs(tree);
    let files: BTreeSet<String> = tree.files_under("crates").into_iter().collect();
    let exists = |p: &str| {
        let p = p.trim_end_matches('/');
        files.contains(p) || files.iter().any(|f| f.starts_with(&format!("{p}/")))
    };
    let mut heading_crates: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    let mut in_code = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code {
            continue;
        }
        let spans = backticked(line);
        if line.starts_with('#') {
            heading_crates = spans
                .iter()
                .filter_map(|s| crates_named(s, &crates))
                .map(str::to_string)
                .collect();
        }
        for span in spans {
            if span.contains(char::is_whitespace) || span.contains('*') || span.contains('{') {
                continue;
            }
            let (missing, within) = if span.starts_with("crates/") {
                (!exists(span), None)
            } else if let Some(k) = crates_named(span, &crates).filter(|_| span.contains('/')) {
                (!exists(&format!("crates/{k}{}", &span[k.len()..])), None)
            } else if span.ends_with(".rs") && !heading_crates.is_empty() {
                let found = heading_crates.iter().any(|k| {
                    let under = format!("crates/{k}/");
                    files
                        .iter()
                        .any(|f| f.starts_with(&under) && f.ends_with(&format!("/{span}")))
                });
                (!found, Some(heading_crates.join(" or ")))
            } else {
                (false, None)
            };
            if missing {
                let within = within.map(|c| format!(" in {c}")).unwrap_or_default();
                problems.push(format!("{doc}:{}: `{span}` does not exist{within}", n + 1));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORKSPACE: &str = r#"
[workspace]
members = ["crates/*"]
[workspace.dependencies]
dom = { path = "crates/dom" }
helper = { path = "crates/helper" }
axum = "0.8"
serde = "1"
"#;

    #[test]
    fn a_forbidden_dependency_is_found_directly_and_through_a_path_dependency() {
        let clean = Mem::of(&[
            ("Cargo.toml", WORKSPACE),
            (
                "crates/dom/Cargo.toml",
                "[dependencies]\nserde.workspace = true\nhelper.workspace = true\n[dev-dependencies]\naxum.workspace = true\n",
            ),
            (
                "crates/helper/Cargo.toml",
                "[dependencies]\nserde = \"1\"\n",
            ),
        ]);
        assert_eq!(forbidden_dependencies(&clean, "dom"), Vec::<String>::new());
        let direct = Mem::of(&[
            ("Cargo.toml", WORKSPACE),
            (
                "crates/dom/Cargo.toml",
                "[dependencies]\nhttp = { package = \"tower-http\", version = \"0.7\" }\n",
            ),
        ]);
        let p = forbidden_dependencies(&direct, "dom");
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("depends on tower-http (dom -> tower-http)"),
            "{p:?}"
        );
        let through = Mem::of(&[
            ("Cargo.toml", WORKSPACE),
            (
                "crates/dom/Cargo.toml",
                "[dependencies]\nlocal = { path = \"../helper\" }\n",
            ),
            (
                "crates/helper/Cargo.toml",
                "[dependencies]\naxum.workspace = true\n",
            ),
        ]);
        let p = forbidden_dependencies(&through, "dom");
        assert!(
            p.len() == 1 && p[0].contains("(dom -> local -> axum)"),
            "{p:?}"
        );
    }

    #[test]
    fn store_calls_outside_the_domain_are_counted_against_the_known_ones() {
        let tree = Mem::of(&[
            ("crates/dom/Cargo.toml", ""),
            ("crates/dom/src/service.rs", "self.store().put(x)"),
            ("crates/api/Cargo.toml", ""),
            (
                "crates/api/src/a.rs",
                "svc.store().get();\n// svc.store() in a comment\nflag.store(true, Ordering::SeqCst);",
            ),
            ("crates/api/src/b.rs", "x.store(); y.store();"),
            ("crates/api/tests/c.rs", "x.store(); y.store();"),
        ]);
        let calls = store_calls(&tree, "dom");
        assert_eq!(
            calls.into_iter().collect::<Vec<_>>(),
            vec![
                ("crates/api/src/a.rs".to_string(), 1),
                ("crates/api/src/b.rs".to_string(), 2)
            ]
        );
        let calls = store_calls(&tree, "dom");
        let p = store_call_violations(&calls, &[("crates/api/src/b.rs", 1)]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].starts_with("crates/api/src/a.rs calls .store() 1 time(s) (0 known)"));
        assert!(p[1].contains("2 time(s) (1 known)"));
        let stale = store_call_violations(
            &calls,
            &[
                ("crates/api/src/a.rs", 1),
                ("crates/api/src/b.rs", 2),
                ("crates/gone.rs", 1),
            ],
        );
        assert_eq!(stale.len(), 1);
        assert!(
            stale[0].contains("crates/gone.rs is listed with 1"),
            "{stale:?}"
        );
    }

    fn modules(files: &[(&str, &str)]) -> Mem {
        let mut all = vec![
            ("crates/k/Cargo.toml", ""),
            ("crates/k/src/lib.rs", "//! k\nmod a;\nmod b;\nmod c;\n"),
        ];
        all.extend_from_slice(files);
        Mem::of(&all)
    }

    #[test]
    fn a_cycle_of_crate_references_is_reported_with_where_it_is() {
        let tree = modules(&[
            ("crates/k/src/a.rs", "use crate::b::X;\n"),
            ("crates/k/src/b/mod.rs", "mod inner;\n"),
            (
                "crates/k/src/b/inner.rs",
                "use crate::{c::{Y, Z}, model};\n",
            ),
            (
                "crates/k/src/c.rs",
                "// use crate::b;\nfn f() { super::a::g() }\n#[cfg(test)]\nmod tests {\n    use crate::b;\n}\n",
            ),
        ]);
        let p = module_cycles(&tree, "k", &[]);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("the modules a, b, c refer to each other in a cycle"),
            "{p:?}"
        );
        assert!(p[0].contains("b -> c (crates/k/src/b/inner.rs:1)"), "{p:?}");
        assert!(p[0].contains("c -> a (crates/k/src/c.rs:2)"), "{p:?}");
    }

    #[test]
    fn a_known_edge_is_set_aside_until_it_no_longer_closes_a_cycle() {
        let cyclic = modules(&[
            ("crates/k/src/a.rs", "use crate::b::X;\n"),
            ("crates/k/src/b.rs", "use crate::a::Y;\n"),
        ]);
        assert!(!module_cycles(&cyclic, "k", &[]).is_empty());
        assert_eq!(
            module_cycles(&cyclic, "k", &[("b", "a")]),
            Vec::<String>::new()
        );
        let fixed = modules(&[
            ("crates/k/src/a.rs", "use crate::b::X;\n"),
            ("crates/k/src/b.rs", ""),
        ]);
        let p = module_cycles(&fixed, "k", &[("b", "a")]);
        assert_eq!(p.len(), 1);
        assert!(p[0].contains("b -> a no longer closes a cycle"));
        let one_way = modules(&[
            ("crates/k/src/a.rs", "use crate::b::X;\n"),
            ("crates/k/src/b.rs", ""),
        ]);
        assert!(
            module_cycles(&one_way, "k", &[("a", "b")])[0].contains("no longer closes a cycle")
        );
    }

    #[test]
    fn a_crate_root_without_a_doc_is_reported() {
        let tree = Mem::of(&[
            ("crates/good/Cargo.toml", ""),
            (
                "crates/good/src/lib.rs",
                "#![forbid(unsafe_code)]\n\n//! Good.\n",
            ),
            ("crates/bad/Cargo.toml", ""),
            (
                "crates/bad/src/main.rs",
                "/// Not a crate doc.\nfn main() {}\n",
            ),
            ("crates/empty/Cargo.toml", ""),
        ]);
        let p = missing_crate_docs(&tree);
        assert_eq!(
            p,
            vec![
                "crates/bad/src/main.rs does not begin with a //! doc saying what the crate is for",
                "crates/empty has neither src/lib.rs nor src/main.rs",
            ]
        );
    }

    #[test]
    fn a_path_the_architecture_names_must_exist() {
        let tree = Mem::of(&[
            ("crates/dom/Cargo.toml", ""),
            ("crates/dom/src/ports.rs", ""),
            ("crates/dom/src/reauth/mod.rs", ""),
            ("crates/web/Cargo.toml", ""),
            ("crates/web/src/console/mod.rs", ""),
            (
                "docs/A.md",
                "# A\nThe `crates/dom` crate, `crates/nope`.\n```\ncrates/dom/src/not_checked.rs\n```\n### Domain (`dom/src/reauth/`, `ports.rs`)\n`ports.rs`, `gone.rs`, `console/mod.rs`, `dom/src/x.rs`, `Store::put`, `a b.rs`\n### `crates/web`\n`console/mod.rs`, `ports.rs`\n## Conventions\n`anything.rs`\n",
            ),
        ]);
        let p = missing_doc_paths(&tree, "docs/A.md");
        assert_eq!(
            p,
            vec![
                "docs/A.md:2: `crates/nope` does not exist",
                "docs/A.md:7: `gone.rs` does not exist in dom",
                "docs/A.md:7: `console/mod.rs` does not exist in dom",
                "docs/A.md:7: `dom/src/x.rs` does not exist",
                "docs/A.md:9: `ports.rs` does not exist in web",
            ]
        );
    }
}
