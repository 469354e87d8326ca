//! The official KDL 2 test suite (github.com/kdl-org/kdl, `tests/test_cases`, vendored under
//! `tests/kdl-spec/` with its licence): every `input/NAME.kdl` without the `_fail` suffix must
//! parse to the document `expected_kdl/NAME.kdl` describes, and every `_fail` input must be
//! rejected.
//!
//! The expected files are the inputs pretty-printed (comments dropped, properties deduplicated
//! with the rightmost kept and sorted, numbers in decimal, strings quoted), so both sides are
//! parsed and compared as data: node names and types, arguments in order, properties by key,
//! non-empty children. The expected side uses a different spelling of the same values (plain
//! quoted strings for raw and multi-line ones, decimal for hex), so a mistake in either
//! spelling shows up as a difference.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kdl::KdlValue;

use super::{Document, parse};

fn suite() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/kdl-spec")
}

/// A value as the suite compares it: floats by value (NaN equal to NaN).
#[derive(Debug)]
struct Value(Option<String>, KdlValue);

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.0 == other.0
            && match (&self.1, &other.1) {
                (KdlValue::Float(a), KdlValue::Float(b)) => a == b || (a.is_nan() && b.is_nan()),
                (a, b) => a == b,
            }
    }
}

#[derive(Debug, PartialEq)]
struct Node {
    ty: Option<String>,
    name: String,
    args: Vec<Value>,
    props: BTreeMap<String, Value>,
    children: Vec<Node>,
}

fn normalize(doc: &Document) -> Vec<Node> {
    doc.nodes()
        .iter()
        .map(|n| {
            let mut args = Vec::new();
            let mut props = BTreeMap::new();
            for e in n.entries() {
                let value = Value(e.ty().map(|t| t.value().to_owned()), e.value().clone());
                match e.name() {
                    // The rightmost of duplicate properties wins.
                    Some(key) => {
                        props.insert(key.value().to_owned(), value);
                    }
                    None => args.push(value),
                }
            }
            Node {
                ty: n.ty().map(|t| t.value().to_owned()),
                name: n.name().value().to_owned(),
                args,
                props,
                children: n.children().map(normalize).unwrap_or_default(),
            }
        })
        .collect()
}

/// Every case's name, input bytes, and expected text (`None` for a `_fail` case).
fn cases() -> Vec<(String, Vec<u8>, Option<String>)> {
    let dir = suite();
    let mut names: Vec<String> = std::fs::read_dir(dir.join("input"))
        .expect("tests/kdl-spec/input is readable")
        .map(|e| e.expect("entry").file_name().into_string().expect("utf-8"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let input = std::fs::read(dir.join("input").join(&name)).expect("input");
            let expected = (!name.trim_end_matches(".kdl").ends_with("_fail")).then(|| {
                let path: &Path = &dir.join("expected_kdl").join(&name);
                std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            });
            (name, input, expected)
        })
        .collect()
}

/// What went wrong with one case, or None.
fn check(input: &[u8], expected: Option<&str>) -> Option<String> {
    let parsed = std::str::from_utf8(input)
        .map_err(|e| e.to_string())
        .and_then(|text| parse(text).map_err(|e| e.to_string()));
    match (expected, parsed) {
        (None, Err(_)) => None,
        (None, Ok(doc)) => Some(format!(
            "accepted an invalid document: {:?}",
            normalize(&doc)
        )),
        (Some(_), Err(e)) => Some(format!("rejected a valid document: {e}")),
        (Some(expected), Ok(doc)) => {
            let want = match parse(expected) {
                Ok(want) => normalize(&want),
                Err(e) => return Some(format!("cannot parse the expected document: {e}")),
            };
            let got = normalize(&doc);
            (got != want).then(|| format!("got {got:?}\nwant {want:?}"))
        }
    }
}

#[test]
fn the_official_test_suite_passes() {
    let cases = cases();
    assert!(cases.len() > 300, "only {} cases found", cases.len());
    assert!(cases.iter().any(|(_, _, e)| e.is_none()));
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(name, input, expected)| {
            check(input, expected.as_deref()).map(|why| format!("{name}: {why}"))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
