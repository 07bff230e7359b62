//! The house's rules, checked on the source (docs/ARCHITECTURE.md):
//! - layers run one way: a module of `src/` imports only modules of its own layer or lower ones
//!   (the layer table is the one in docs/ARCHITECTURE.md, read here, so it is written once);
//! - no import cycle among the files of `src/` (a child using its parent, or a parent its
//!   children, is a module's own business; siblings and strangers must not go round);
//! - no function over [`MAX_FN_LINES`] lines in `src/` and `bindings/`.
//!
//! Imports are read from `use` items and from `crate::`/`super::`/`self::` paths in code, with
//! re-exports followed to the module that defines the item (a `use` in a parent that a child
//! names through `super::` is not a way around the rule). Items under `#[cfg(test)]` are left
//! out of the layers (a unit test may drive its module from above), not out of the length rule.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// Longest function allowed, in lines, from the line of `fn` to its closing brace.
const MAX_FN_LINES: usize = 80;

/// A source file of the library: its module path (`server::conn`; `""` for `lib.rs`).
struct Source {
    module: String,
    rel: String,
    text: String,
}

/// What one file imports: the paths it names (absolute, from the crate root), and the names
/// its `use` items bind (name -> absolute path), for following re-exports.
#[derive(Default)]
struct FileImports {
    paths: Vec<Vec<String>>,
    binds: BTreeMap<String, Vec<String>>,
}

/// The module path of a file under `src/`, `None` for the binary's files.
fn module_of(rel: &Path) -> Option<String> {
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if parts.first().map(String::as_str) == Some("bin") || parts == ["main.rs"] {
        return None;
    }
    let mut segs: Vec<String> = parts.clone();
    let last = segs.pop()?;
    let stem = last.strip_suffix(".rs")?;
    if stem != "mod" && stem != "lib" {
        segs.push(stem.to_string());
    }
    Some(segs.join("::"))
}

fn has_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && matches!(&a.meta, syn::Meta::List(l) if l.tokens.to_string() == "test")
    })
}

/// Collects the paths one file names, relative to its module `module`.
struct ImportVisitor<'a> {
    module: Vec<String>,
    children: &'a BTreeSet<String>,
    out: FileImports,
}

impl ImportVisitor<'_> {
    /// `segs` as written, made absolute from this file's module; `None` for another crate's.
    fn absolute(&self, segs: &[String]) -> Option<Vec<String>> {
        let (first, rest) = segs.split_first()?;
        match first.as_str() {
            "crate" => Some(rest.to_vec()),
            "self" => Some([self.module.clone(), rest.to_vec()].concat()),
            "super" => {
                let mut base = self.module.clone();
                let mut rest = segs;
                while rest.first().map(String::as_str) == Some("super") {
                    base.pop()?;
                    rest = &rest[1..];
                }
                Some([base, rest.to_vec()].concat())
            }
            _ => {
                let child = [self.module.clone(), vec![first.clone()]]
                    .concat()
                    .join("::");
                self.children
                    .contains(&child)
                    .then(|| [self.module.clone(), segs.to_vec()].concat())
            }
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(p) => {
                prefix.push(p.ident.to_string());
                self.use_tree(prefix, &p.tree);
                prefix.pop();
            }
            syn::UseTree::Name(n) => self.bind(prefix, &n.ident.to_string(), &n.ident.to_string()),
            syn::UseTree::Rename(r) => {
                self.bind(prefix, &r.ident.to_string(), &r.rename.to_string())
            }
            syn::UseTree::Glob(_) => {
                if let Some(abs) = self.absolute(prefix) {
                    self.out.paths.push(abs);
                }
            }
            syn::UseTree::Group(g) => g.items.iter().for_each(|t| self.use_tree(prefix, t)),
        }
    }

    fn bind(&mut self, prefix: &[String], ident: &str, name: &str) {
        let full: Vec<String> = if ident == "self" {
            prefix.to_vec()
        } else {
            [prefix.to_vec(), vec![ident.to_string()]].concat()
        };
        if let Some(abs) = self.absolute(&full) {
            let name = if ident == "self" {
                prefix.last().cloned().unwrap_or_default()
            } else {
                name.to_string()
            };
            self.out.binds.insert(name, abs.clone());
            self.out.paths.push(abs);
        }
    }
}

impl<'ast> Visit<'ast> for ImportVisitor<'_> {
    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        if !has_cfg_test(&u.attrs) {
            self.use_tree(&mut Vec::new(), &u.tree);
        }
    }
    fn visit_item_mod(&mut self, m: &'ast syn::ItemMod) {
        if !has_cfg_test(&m.attrs) && m.content.is_some() {
            self.module.push(m.ident.to_string());
            syn::visit::visit_item_mod(self, m);
            self.module.pop();
        }
    }
    fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
        if !has_cfg_test(&f.attrs) {
            syn::visit::visit_item_fn(self, f);
        }
    }
    fn visit_item_impl(&mut self, i: &'ast syn::ItemImpl) {
        if !has_cfg_test(&i.attrs) {
            syn::visit::visit_item_impl(self, i);
        }
    }
    fn visit_path(&mut self, p: &'ast syn::Path) {
        let segs: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
        if matches!(
            segs.first().map(String::as_str),
            Some("crate" | "super" | "self")
        ) {
            if let Some(abs) = self.absolute(&segs) {
                self.out.paths.push(abs);
            }
        }
        syn::visit::visit_path(self, p);
    }
}

/// A violation of a rule, as a line of the failure message.
type Finding = String;

/// The library's module graph: file modules and their import edges (after re-exports).
struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || b.starts_with(&format!("{a}::"))
}

impl Graph {
    fn build(sources: &[Source]) -> Result<Graph, Finding> {
        let modules: BTreeSet<String> = sources.iter().map(|s| s.module.clone()).collect();
        let mut imports = BTreeMap::new();
        for s in sources {
            let file = syn::parse_file(&s.text).map_err(|e| format!("{}: {e}", s.rel))?;
            let module: Vec<String> = if s.module.is_empty() {
                Vec::new()
            } else {
                s.module.split("::").map(String::from).collect()
            };
            let mut v = ImportVisitor {
                module,
                children: &modules,
                out: FileImports::default(),
            };
            v.visit_file(&file);
            imports.insert(s.module.clone(), v.out);
        }
        let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (from, fi) in &imports {
            let set = edges.entry(from.clone()).or_default();
            for path in &fi.paths {
                let to = resolve(&modules, &imports, path, 0);
                if to != *from && !is_ancestor(&to, from) && !is_ancestor(from, &to) {
                    set.insert(to);
                }
            }
        }
        Ok(Graph { edges })
    }

    /// Cycles among the files (Tarjan's strongly connected components of two or more).
    fn cycles(&self) -> Vec<Vec<String>> {
        struct T<'g> {
            g: &'g Graph,
            index: BTreeMap<&'g str, usize>,
            low: BTreeMap<&'g str, usize>,
            stack: Vec<&'g str>,
            on: BTreeSet<&'g str>,
            out: Vec<Vec<String>>,
        }
        fn strong<'g>(t: &mut T<'g>, v: &'g str) {
            let i = t.index.len();
            t.index.insert(v, i);
            t.low.insert(v, i);
            t.stack.push(v);
            t.on.insert(v);
            for w in t.g.edges.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    strong(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).expect("visited");
                    *lv = (*lv).min(iw);
                }
            }
            if t.low[v] == t.index[v] {
                let mut comp = Vec::new();
                while let Some(w) = t.stack.pop() {
                    t.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    t.out.push(comp);
                }
            }
        }
        let mut t = T {
            g: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: Vec::new(),
            on: BTreeSet::new(),
            out: Vec::new(),
        };
        for v in self.edges.keys() {
            if !t.index.contains_key(v.as_str()) {
                strong(&mut t, v);
            }
        }
        t.out
    }
}

/// The module that defines what `path` names: its longest module prefix, then through that
/// module's `use` bindings while they point elsewhere.
fn resolve(
    modules: &BTreeSet<String>,
    imports: &BTreeMap<String, FileImports>,
    path: &[String],
    depth: usize,
) -> String {
    let mut n = path.len();
    let module = loop {
        let m = path[..n].join("::");
        if modules.contains(&m) || n == 0 {
            break m;
        }
        n -= 1;
    };
    if depth < 8 && n < path.len() {
        if let Some(target) = imports.get(&module).and_then(|fi| fi.binds.get(&path[n])) {
            let next = [target.clone(), path[n + 1..].to_vec()].concat();
            return resolve(modules, imports, &next, depth + 1);
        }
    }
    module
}

/// The layer table of docs/ARCHITECTURE.md: its rows `| <n> | `a`, `b` | … |`.
fn layer_table(doc: &str) -> BTreeMap<String, usize> {
    let mut layers = BTreeMap::new();
    for line in doc.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let (Some(n), Some(mods)) = (cells.get(1), cells.get(2)) else {
            continue;
        };
        let Ok(n) = n.parse::<usize>() else { continue };
        for m in mods.split('`').skip(1).step_by(2) {
            layers.insert(m.to_string(), n);
        }
    }
    layers
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// Every import that goes up a layer, and every top-level module the table lacks.
fn layer_findings(graph: &Graph, layers: &BTreeMap<String, usize>) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut missing = BTreeSet::new();
    for (from, tos) in &graph.edges {
        if from.is_empty() {
            continue;
        }
        let Some(&lf) = layers.get(top(from)) else {
            missing.insert(top(from).to_string());
            continue;
        };
        for to in tos {
            match layers.get(top(to)) {
                Some(&lt) if lt > lf => out.push(format!(
                    "upward import: {from} (layer {lf}) uses {to} (layer {lt})"
                )),
                Some(_) => {}
                None if to.is_empty() => {}
                None => {
                    missing.insert(top(to).to_string());
                }
            }
        }
    }
    out.extend(
        missing
            .into_iter()
            .map(|m| format!("module `{m}` has no layer in docs/ARCHITECTURE.md")),
    );
    out
}

/// Functions longer than [`MAX_FN_LINES`] in one file.
fn long_functions(rel: &str, text: &str) -> Result<Vec<Finding>, Finding> {
    struct V<'a> {
        rel: &'a str,
        out: Vec<Finding>,
    }
    impl V<'_> {
        fn check(&mut self, name: &syn::Ident, start: proc_macro2::Span, block: &syn::Block) {
            let first = start.start().line;
            let last = block.brace_token.span.close().end().line;
            let lines = last + 1 - first;
            if lines > MAX_FN_LINES {
                self.out.push(format!(
                    "{}:{first}: fn {name} is {lines} lines (at most {MAX_FN_LINES})",
                    self.rel
                ));
            }
        }
    }
    impl<'ast> Visit<'ast> for V<'_> {
        fn visit_item_fn(&mut self, f: &'ast syn::ItemFn) {
            self.check(&f.sig.ident, f.sig.span(), &f.block);
            syn::visit::visit_item_fn(self, f);
        }
        fn visit_impl_item_fn(&mut self, f: &'ast syn::ImplItemFn) {
            self.check(&f.sig.ident, f.sig.span(), &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
        fn visit_trait_item_fn(&mut self, f: &'ast syn::TraitItemFn) {
            if let Some(b) = &f.default {
                self.check(&f.sig.ident, f.sig.span(), b);
            }
            syn::visit::visit_trait_item_fn(self, f);
        }
    }
    let file = syn::parse_file(text).map_err(|e| format!("{rel}: {e}"))?;
    let mut v = V {
        rel,
        out: Vec::new(),
    };
    v.visit_file(&file);
    Ok(v.out)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name();
        if p.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn library_sources() -> Vec<Source> {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(&src).ok()?.to_path_buf();
            let module = module_of(&rel)?;
            let text = fs::read_to_string(&p).ok()?;
            Some(Source {
                module,
                rel: format!("src/{}", rel.display()),
                text,
            })
        })
        .collect()
}

#[test]
fn layers_run_one_way_and_no_module_cycles() {
    let doc = fs::read_to_string(root().join("docs/ARCHITECTURE.md"))
        .expect("docs/ARCHITECTURE.md holds the layer table");
    let layers = layer_table(&doc);
    assert!(layers.len() > 10, "no layer table found: {layers:?}");
    let sources = library_sources();
    assert!(sources.len() > 20, "src/ not found");
    let graph = Graph::build(&sources).unwrap_or_else(|e| panic!("{e}"));
    let mut findings = layer_findings(&graph, &layers);
    for c in graph.cycles() {
        findings.push(format!("import cycle: {}", c.join(" <-> ")));
    }
    assert!(findings.is_empty(), "\n{}", findings.join("\n"));
}

#[test]
fn no_function_over_80_lines_in_src_and_bindings() {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    rust_files(&root().join("bindings"), &mut files);
    files.sort();
    assert!(files.len() > 20);
    let mut findings = Vec::new();
    for p in files {
        let rel = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
        let text = fs::read_to_string(&p).unwrap_or_else(|e| panic!("{rel}: {e}"));
        findings.extend(long_functions(&rel, &text).unwrap_or_else(|e| panic!("{e}")));
    }
    assert!(findings.is_empty(), "\n{}", findings.join("\n"));
}

// The checker's own tests: each rule fails on a planted violation.

fn sources(files: &[(&str, &str)]) -> Vec<Source> {
    files
        .iter()
        .map(|(rel, text)| Source {
            module: module_of(Path::new(rel)).expect("a library file"),
            rel: rel.to_string(),
            text: text.to_string(),
        })
        .collect()
}

const TABLE: &str = "| 0 | `a` |\n| 1 | `b`, `c` |\n| 2 | `d` |\n";

#[test]
fn the_checker_finds_an_upward_import_and_a_missing_layer() {
    let g = Graph::build(&sources(&[
        ("lib.rs", "pub mod a; pub mod b; pub mod e;"),
        ("a.rs", "use crate::b::Thing;"),
        ("b.rs", "pub struct Thing;"),
        ("e.rs", "pub fn f() { crate::a::g() }"),
    ]))
    .unwrap();
    let f = layer_findings(&g, &layer_table(TABLE));
    assert_eq!(
        f,
        [
            "upward import: a (layer 0) uses b (layer 1)",
            "module `e` has no layer in docs/ARCHITECTURE.md"
        ]
    );
}

#[test]
fn the_checker_finds_a_sibling_cycle_through_a_parents_reexport() {
    let g = Graph::build(&sources(&[
        ("lib.rs", "pub mod d;"),
        ("d/mod.rs", "mod x; mod y; use x::X; pub use self::y::Y;"),
        ("d/x.rs", "pub struct X; fn f() -> super::Y { todo!() }"),
        ("d/y.rs", "use super::X; pub struct Y(X);"),
    ]))
    .unwrap();
    assert_eq!(g.cycles(), [vec!["d::x".to_string(), "d::y".to_string()]]);
    // A child using its parent's own items and the parent its children: no cycle.
    let g = Graph::build(&sources(&[
        ("lib.rs", "pub mod d;"),
        ("d/mod.rs", "mod x; pub struct P; pub use x::X;"),
        ("d/x.rs", "use super::P; pub struct X(P);"),
    ]))
    .unwrap();
    assert!(g.cycles().is_empty());
}

#[test]
fn the_checker_leaves_unit_tests_out_of_the_layers() {
    let g = Graph::build(&sources(&[
        ("lib.rs", "pub mod a; pub mod b;"),
        ("a.rs", "#[cfg(test)] mod tests { use crate::b::Thing; }"),
        ("b.rs", "pub struct Thing;"),
    ]))
    .unwrap();
    assert!(layer_findings(&g, &layer_table(TABLE)).is_empty());
}

#[test]
fn the_checker_counts_a_function_from_fn_to_its_brace() {
    let body = |n: usize| "    let _x = 1;\n".repeat(n);
    let ok = format!("fn short() {{\n{}}}\n", body(78));
    assert!(long_functions("ok.rs", &ok).unwrap().is_empty());
    let long = format!("impl S {{\n    fn long(&self) {{\n{}    }}\n}}\n", body(79));
    assert_eq!(
        long_functions("long.rs", &long).unwrap(),
        ["long.rs:2: fn long is 81 lines (at most 80)"]
    );
}
