//! The code's shape, checked: no two modules of a crate (`byok-broker` first) import each other
//! (directly or round a loop), and no source file in the workspace is over 600 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `monitor/mod.rs` → `monitor`, `monitor/judge.rs` → `monitor::judge`, `lib.rs` → `crate`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src").with_extension("");
    let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    match parts.as_slice() {
        [only] if only == "lib" => "crate".into(),
        [only] if only == "main" => "main".into(),
        [dirs @ .., last] if last == "mod" => dirs.join("::"),
        all => all.join("::"),
    }
}

/// The code of a file without its comments (doc links are not imports) and without its unit
/// tests (the `#[cfg(test)]` module at its end, whose `super::` is the file itself).
fn code(text: &str) -> String {
    text.lines().take_while(|l| l.trim() != "#[cfg(test)]").map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Modules a file names: `crate::a::b…` and `super::…` paths, resolved to the longest known
/// module.
fn imports(text: &str, this: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code(text);
    let parent = this.rsplit_once("::").map_or("", |(p, _)| p);
    let mut found = BTreeSet::new();
    for (prefix, base) in [("crate::", ""), ("super::", parent)] {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().last();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            let mut segments: Vec<&str> = base.split("::").filter(|s| !s.is_empty()).collect();
            segments.extend(path.split("::").filter(|s| !s.is_empty()));
            // An item of the root itself (`crate::AppState`) is an import of the root.
            let target = (1..=segments.len())
                .rev()
                .map(|n| segments[..n].join("::"))
                .find(|m| modules.contains(m))
                .or_else(|| (!segments.is_empty()).then(|| "crate".to_string()));
            if let Some(target) = target {
                if target != this && !this.starts_with(&format!("{target}::")) {
                    found.insert(target);
                }
            }
        }
    }
    // A module's own children, named relatively (`session::Sessions` in `console/mod.rs`).
    for child in modules.iter().filter(|m| *m != this && *m != "crate" && m.rsplit_once("::").map_or(this == "crate", |(p, _)| p == this)) {
        let name = child.rsplit("::").next().unwrap_or_default();
        let needle = format!("{name}::");
        let mut rest = code.as_str();
        while let Some(at) = rest.find(&needle) {
            let before = rest[..at].chars().last();
            rest = &rest[at + needle.len()..];
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                found.insert(child.clone());
                break;
            }
        }
    }
    found
}

fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut found = stack[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, stack, done) {
                return Some(found);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

/// Each module of the crate at `src` and the modules it imports.
fn import_graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(src, f)).collect();
    files
        .iter()
        .filter(|f| module_of(src, f) != "main")
        .map(|f| {
            let this = module_of(src, f);
            let mut text = std::fs::read_to_string(f).expect("read");
            if this == "crate" {
                // The root declares and re-exports every module: only its own code counts.
                text = text
                    .lines()
                    .filter(|l| {
                        let l = l.trim_start();
                        !(l.starts_with("pub use ")
                            || l.starts_with("mod ")
                            || l.starts_with("pub mod ")
                            || l.starts_with("pub(crate) mod "))
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
            }
            let found = imports(&text, &this, &modules);
            (this, found)
        })
        .collect()
}

#[test]
fn no_module_of_the_broker_imports_another_round_a_loop() {
    let graph = import_graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 10, "the broker's modules were found: {:?}", graph.keys());
    assert_eq!(cycle(&graph), None, "modules that import each other (round a loop)");
    // The checker itself finds a loop when there is one.
    let mut looped = graph.clone();
    looped.entry("clock".into()).or_default().insert("broker".into());
    assert!(cycle(&looped).is_some(), "broker imports clock; clock importing broker must be a loop");
}

#[test]
fn no_module_of_any_crate_imports_another_round_a_loop() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut loops = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates") {
        let src = entry.expect("entry").path().join("src");
        if src.is_dir() {
            let mut graph = import_graph(&src);
            // Every loop, not only the first: each found one is cut and the search goes on.
            while let Some(found) = cycle(&graph) {
                if let [from, to, ..] = found.as_slice() {
                    graph.entry(from.clone()).or_default().remove(to);
                }
                loops.push((src.display().to_string(), found));
            }
        }
    }
    assert!(loops.is_empty(), "modules that import each other (round a loop): {loops:?}");
}

#[test]
fn no_source_file_in_the_workspace_is_over_600_lines() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    rust_files(&crates, &mut files);
    let long: Vec<(String, usize)> = files
        .iter()
        .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).expect("read").lines().count()))
        .filter(|(_, lines)| *lines > 600)
        .collect();
    assert!(files.len() > 50, "the workspace's files were found");
    assert!(long.is_empty(), "files over 600 lines (split them by what they do): {long:?}");
}
