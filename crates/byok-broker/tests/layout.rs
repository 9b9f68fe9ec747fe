//! The code's shape, checked: no two modules of `byok-broker` import each other (directly or
//! round a loop), and no source file in the workspace is over 600 lines.

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
        [dirs @ .., last] if last == "mod" => dirs.join("::"),
        all => all.join("::"),
    }
}

/// The code of a file without its comments (doc links are not imports).
fn code(text: &str) -> String {
    text.lines().map(|l| l.split("//").next().unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

/// Modules a file names: `crate::a::b…` paths, resolved to the longest known module.
fn imports(text: &str, this: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let code = code(text);
    let mut found = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let target = (1..=segments.len()).rev().map(|n| segments[..n].join("::")).find(|m| modules.contains(m));
        if let Some(target) = target {
            if target != this && !this.starts_with(&format!("{target}::")) {
                found.insert(target);
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

#[test]
fn no_module_of_the_broker_imports_another_round_a_loop() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let graph: BTreeMap<String, BTreeSet<String>> = files
        .iter()
        .filter(|f| module_of(&src, f) != "crate")
        .map(|f| {
            let this = module_of(&src, f);
            let text = std::fs::read_to_string(f).expect("read");
            let found = imports(&text, &this, &modules);
            (this, found)
        })
        .collect();
    assert!(graph.len() > 10, "the broker's modules were found: {:?}", graph.keys());
    assert_eq!(cycle(&graph), None, "modules that import each other (round a loop)");
    // The checker itself finds a loop when there is one.
    let mut looped = graph.clone();
    looped.entry("clock".into()).or_default().insert("broker".into());
    assert!(cycle(&looped).is_some(), "broker imports clock; clock importing broker must be a loop");
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
