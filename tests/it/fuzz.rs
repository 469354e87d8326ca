//! Mutation fuzzing of the front end: take every example and fixture, mutate it (insert
//! KDL-significant characters, delete and duplicate ranges, splice lines from other inputs),
//! and check that loading never panics and always finishes. Bounded for CI; raise the number
//! of cases with `PROPTEST_CASES=100000 cargo test --test it fuzz`.

use std::path::PathBuf;

use proptest::prelude::*;

use kiln::spec::{self, Options, RealFs};

use crate::harness::repo;

fn corpus() -> Vec<String> {
    let mut paths: Vec<PathBuf> = Vec::new();
    for dir in ["examples", "tests/diagnostics", "stdlib"] {
        let mut stack = vec![repo().join(dir)];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "kdl") {
                    paths.push(path);
                }
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, &'static str),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Splice(usize, usize, usize),
}

const TOKENS: &[&str] = &[
    "{",
    "}",
    ";",
    "\"",
    "=",
    "#",
    "/*",
    "*/",
    "//",
    "\\",
    "\n",
    " ",
    "(",
    ")",
    "r#\"",
    "\"\"\"",
    "-",
    "0x",
    "1.",
    "#true",
    "#null",
    "é",
    "\u{200b}",
    "image",
    "container",
    "link",
    "network",
    "from",
    "subnet=",
    "ip=",
    "\"a:eth1\"",
    "10.0.0.0/8",
    "replicas=0",
    "depends-on",
    "import",
    "\"std:toolbox\"",
    "\"../x\"",
    "health",
    "impair",
    "test",
    "http",
    "\"1%\"",
    "999999999999999999999999",
];

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), proptest::sample::select(TOKENS))
            .prop_map(|(at, t)| Mutation::Insert(at, t)),
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Delete(at, len)),
        (any::<usize>(), 0usize..80).prop_map(|(at, len)| Mutation::Duplicate(at, len)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(a, b, c)| Mutation::Splice(a, b, c)),
    ]
}

fn floor(text: &str, at: usize) -> usize {
    let mut at = at % (text.len() + 1);
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply(text: &mut String, m: &Mutation, corpus: &[String]) {
    match m {
        Mutation::Insert(at, token) => {
            let at = floor(text, *at);
            text.insert_str(at, token);
        }
        Mutation::Delete(at, len) => {
            let start = floor(text, *at);
            let end = floor(text, (start + len).min(text.len()));
            text.replace_range(start..end.max(start), "");
        }
        Mutation::Duplicate(at, len) => {
            let start = floor(text, *at);
            let end = floor(text, (start + len).min(text.len())).max(start);
            let piece = text[start..end].to_string();
            text.insert_str(end, &piece);
        }
        Mutation::Splice(source, line, at) => {
            let other = &corpus[source % corpus.len()];
            let lines: Vec<&str> = other.lines().collect();
            if let Some(l) = lines.get(line % lines.len().max(1)) {
                let at = floor(text, *at);
                text.insert_str(at, &format!("{l}\n"));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn loading_mutated_projects_never_panics(seed in any::<usize>(), mutations in proptest::collection::vec(mutation(), 1..8)) {
        let corpus = corpus();
        let mut text = corpus[seed % corpus.len()].clone();
        for m in &mutations {
            apply(&mut text, m, &corpus);
        }
        let loaded = spec::load_source("kiln.kdl", None, &text, &RealFs, &Options::default());
        // Every diagnostic points inside a file it names.
        for d in &loaded.diagnostics {
            let file = loaded.sources.get(d.span.file);
            prop_assert!(d.span.end() <= file.text.len(), "span out of range: {d:?}");
            let _ = kiln::spec::render::text(d, &loaded.sources, Default::default());
        }
    }
}
