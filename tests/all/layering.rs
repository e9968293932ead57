//! The host's modules depend on each other one way: no cycles, and the store never reaches for
//! plugin types. Read from the sources, so a new `use` that breaks the layering fails here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules of the host library, each with the other modules its code names
/// (`crate::X`), comments left out.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if ["lib", "main"].contains(&name.as_str()) {
            continue;
        }
        let mut deps = BTreeSet::new();
        for file in rust_files(&path) {
            let text = std::fs::read_to_string(&file).unwrap();
            for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let m: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    if !m.is_empty() && m != name {
                        deps.insert(m);
                    }
                }
            }
        }
        graph.insert(name, deps);
    }
    graph
}

fn rust_files(path: &Path) -> Vec<std::path::PathBuf> {
    if path.is_file() {
        return if path.extension().is_some_and(|e| e == "rs") { vec![path.to_path_buf()] } else { vec![] };
    }
    std::fs::read_dir(path).unwrap().flat_map(|e| rust_files(&e.unwrap().path())).collect()
}

/// A cycle through `from`, as the list of modules on it, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    fn walk(graph: &BTreeMap<String, BTreeSet<String>>, at: &str, path: &mut Vec<String>) -> Option<Vec<String>> {
        for next in graph.get(at).into_iter().flatten() {
            if next == &path[0] {
                return Some([path.clone(), vec![next.clone()]].concat());
            }
            if !path.contains(next) {
                path.push(next.clone());
                if let Some(c) = walk(graph, next, path) {
                    return Some(c);
                }
                path.pop();
            }
        }
        None
    }
    walk(graph, from, &mut vec![from.to_string()])
}

#[test]
fn modules_have_no_cycles_and_the_store_no_plugin_types() {
    let graph = module_graph();
    assert!(graph.contains_key("store") && graph.contains_key("lifecycle"), "{graph:?}");
    // The command line and the configuration it reads belong together, as do the API and what
    // serves it; the layers under them must not depend back on them.
    for lower in ["workflow", "lifecycle", "events", "store", "handoff", "plugins", "engine", "clock", "json"] {
        if let Some(c) = cycle(&graph, lower) {
            panic!("module cycle: {}", c.join(" -> "));
        }
    }
    for (module, deps) in &graph {
        if ["workflow", "lifecycle", "events", "store"].contains(&module.as_str()) {
            assert!(!deps.contains("plugins") && !deps.contains("engine"), "`{module}` depends on {deps:?}");
        }
    }
}
