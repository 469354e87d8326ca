//! The dependency rule as a test (see the book's "How kiln is built"): for every module, the
//! modules it may use. A `crate::NAME` path in a module's code that names a module outside
//! its list fails the test, as does a module missing from the list, a cycle in the list, or a
//! cycle between the files of one module. A new dependency is a decision: add it here and to
//! the book's module map in the same commit.
//!
//! The scan is textual (comments are skipped): `use crate::x::…`, `crate::x::f()` and
//! `use crate::{x, y}` all count.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Leaves any module may use: pure, and knowing no other kiln module.
const ANYWHERE: &[&str] = &[
    "digest",
    "causes",
    "kernel_names",
    "env_file",
    "test_support",
    "scope",
];

/// Each module and what it may use besides [`ANYWHERE`], bottom to top.
const ALLOWED: &[(&str, &[&str])] = &[
    ("digest", &[]),
    ("causes", &[]),
    ("kernel_names", &[]),
    ("env_file", &[]),
    ("test_support", &[]),
    ("scope", &[]),
    ("atomic_file", &[]),
    ("timestamp", &[]),
    ("beneath", &[]),
    ("process", &[]),
    ("inroot", &[]),
    ("reference", &[]),
    ("spec", &["reference"]),
    ("graph", &["spec"]),
    ("layer", &["beneath"]),
    ("store", &["atomic_file"]),
    ("state", &["atomic_file", "process", "timestamp"]),
    (
        "image",
        &["beneath", "layer", "reference", "store", "timestamp"],
    ),
    (
        "registry",
        &["image", "layer", "reference", "store", "timestamp"],
    ),
    ("plan", &["image", "reference", "spec"]),
    // The OCI image config (`image::RuntimeConfig`) is what a container spec starts from.
    ("runtime", &["image", "inroot", "process", "timestamp"]),
    ("net", &["atomic_file", "process", "state", "timestamp"]),
    ("probe", &["net"]),
    (
        "build",
        &[
            "atomic_file",
            "beneath",
            "image",
            "inroot",
            "layer",
            "plan",
            "reference",
            "runtime",
            "spec",
            "store",
            "timestamp",
        ],
    ),
    (
        "containers",
        &[
            "atomic_file",
            "beneath",
            "build",
            "image",
            "inroot",
            "layer",
            "net",
            "probe",
            "process",
            "runtime",
            "spec",
            "state",
            "store",
            "timestamp",
        ],
    ),
    (
        "project",
        &[
            "atomic_file",
            "containers",
            "image",
            "inroot",
            "net",
            "probe",
            "runtime",
            "spec",
            "state",
            "store",
            "timestamp",
        ],
    ),
    // The shell: `cli` may use everything, and `crate::Error` gathers every module's error
    // (the CLI's own included) for the report.
    ("cli", &["*"]),
    ("error", &["*"]),
];

/// Modules whose files may form a cycle, and why. Keep it short.
const FILE_CYCLES: &[(&str, &[&str])] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules: `src/NAME.rs` and `src/NAME/`, without `lib.rs` and `main.rs`.
fn modules() -> BTreeSet<String> {
    std::fs::read_dir(src())
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let name = name.strip_suffix(".rs").map(str::to_string).unwrap_or(name);
            // This file is the test, not a module of kiln; `main.rs` and `bin/` are
            // executables built on the library, not modules of it.
            (!matches!(name.as_str(), "lib" | "main" | "bin" | "architecture")).then_some(name)
        })
        .collect()
}

/// Every `.rs` file under `path` (a file or a directory).
fn rust_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The code of a file without its comment lines.
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first segments of the `PREFIX…` paths in `text`: `crate::x::y` gives `x`,
/// `crate::{x, y::z}` gives `x` and `y`.
fn first_segments(text: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in text.match_indices(prefix) {
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let rest = &text[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if c == ',' && depth == 1 {
                    items.push(std::mem::take(&mut item));
                } else {
                    item.push(c);
                }
            }
            items.push(item);
            found.extend(
                items
                    .iter()
                    .map(|i| ident(i.trim()))
                    .filter(|i| !i.is_empty()),
            );
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// What each module's code names of the others.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut uses = BTreeMap::new();
    for module in &modules {
        let dir = src().join(module);
        let path = if dir.is_dir() {
            dir
        } else {
            src().join(format!("{module}.rs"))
        };
        let mut named = BTreeSet::new();
        for file in rust_files(&path) {
            named.extend(first_segments(&code(&file), "crate::"));
        }
        // `crate::Error` is the `error` module's.
        if named.remove("Error") {
            named.insert("error".to_string());
        }
        named.retain(|n| n != module && modules.contains(n));
        uses.insert(module.clone(), named);
    }
    uses
}

fn allowed(module: &str) -> Option<BTreeSet<&'static str>> {
    let (_, list) = ALLOWED.iter().find(|(m, _)| *m == module)?;
    Some(list.iter().chain(ANYWHERE).copied().collect())
}

#[test]
fn every_module_uses_only_what_the_table_allows() {
    let mut wrong = Vec::new();
    for (module, named) in uses() {
        let Some(allowed) = allowed(&module) else {
            wrong.push(format!(
                "module `{module}` is not in src/architecture.rs's table"
            ));
            continue;
        };
        if allowed.contains("*") {
            continue;
        }
        for other in named {
            if !allowed.contains(other.as_str()) {
                wrong.push(format!("`{module}` uses `{other}`"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies outside the table (move the shared part to a module below both, or \
         convert where the two meet; see book/src/inside/architecture.md):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_table_names_real_modules_and_has_no_cycle() {
    let modules = modules();
    for (module, list) in ALLOWED {
        assert!(
            modules.contains(*module),
            "`{module}` is in the table but not in src/"
        );
        for other in *list {
            assert!(
                *other == "*" || modules.contains(*other),
                "`{module}` may use `{other}`, which is not in src/"
            );
        }
    }
    // Every module's allowed list may only name modules listed before it (the shell aside):
    // then the table is ordered bottom to top, and has no cycle.
    let order: Vec<&str> = ALLOWED.iter().map(|(m, _)| *m).collect();
    for (index, (module, list)) in ALLOWED.iter().enumerate() {
        for other in list.iter().filter(|o| **o != "*") {
            let at = order.iter().position(|m| m == other).unwrap();
            assert!(
                at < index,
                "`{module}` may use `{other}`, which comes later in the table (a cycle?)"
            );
        }
    }
}

/// The sibling files a file of `dir` names: `super::x`, `super::{x, y}`, `crate::M::x`.
fn file_edges(module: &str, dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut siblings = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let name = name.strip_suffix(".rs").map(str::to_string).unwrap_or(name);
        if !matches!(name.as_str(), "mod" | "tests") && !name.ends_with("_tests") {
            siblings.insert(name);
        }
    }
    let mut edges = BTreeMap::new();
    for sibling in &siblings {
        // `super::` names a sibling from `x.rs` and `x/mod.rs`; deeper files (tests aside)
        // count by their `crate::MODULE::` paths.
        let mut near = String::new();
        let mut deep = String::new();
        let file = dir.join(format!("{sibling}.rs"));
        if file.is_file() {
            near.push_str(&code(&file));
        }
        for file in rust_files(&dir.join(sibling)) {
            if file.components().any(|c| c.as_os_str() == "tests") || file.ends_with("tests.rs") {
                continue;
            }
            if file == dir.join(sibling).join("mod.rs") {
                near.push_str(&code(&file));
            } else {
                deep.push_str(&code(&file));
            }
        }
        let text = format!("{near}\n{deep}");
        let mut named = first_segments(&near, "super::");
        named.extend(first_segments(&text, &format!("crate::{module}::")));
        named.retain(|n| n != sibling && siblings.contains(n));
        edges.insert(sibling.clone(), named);
    }
    edges
}

/// The strongly connected components of more than one file.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reach = |from: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(next) = todo.pop() {
            for to in edges.get(&next).into_iter().flatten() {
                if seen.insert(to.clone()) {
                    todo.push(to.clone());
                }
            }
        }
        seen
    };
    let mut found: Vec<BTreeSet<String>> = Vec::new();
    for node in edges.keys() {
        let from_node = reach(node);
        let component: BTreeSet<String> = edges
            .keys()
            .filter(|other| {
                *other == node || (from_node.contains(*other) && reach(other).contains(node))
            })
            .cloned()
            .collect();
        if component.len() > 1 && !found.contains(&component) {
            found.push(component);
        }
    }
    found
}

#[test]
fn the_files_of_a_module_do_not_need_each_other_in_a_circle() {
    let mut wrong = Vec::new();
    for module in modules() {
        let dir = src().join(&module);
        if !dir.is_dir() {
            continue;
        }
        for cycle in cycles(&file_edges(&module, &dir)) {
            let known = FILE_CYCLES.iter().any(|(m, files)| {
                *m == module && cycle.iter().all(|f| files.contains(&f.as_str()))
            });
            if !known {
                wrong.push(format!("{module}: {cycle:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "files that depend on each other in a circle (move what they share to one file \
         below both, or to the module's mod.rs):\n  {}",
        wrong.join("\n  ")
    );
}

#[test]
fn the_scan_finds_paths_and_groups() {
    let text = "use crate::{store::Store, digest};\nlet x = crate::net::f();\nfoo::crate::no;";
    assert_eq!(
        first_segments(text, "crate::"),
        ["digest", "net", "store"].map(String::from).into()
    );
    let edges: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec!["a"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(
        cycles(&edges),
        vec![["a", "b", "c"].map(String::from).into()]
    );
}
