//! Golden diagnostics: every bad input under `tests/diagnostics/` with its rendered output.
//!
//! A fixture is either `NAME.kdl` with `NAME.expected` beside it, or a directory `NAME/`
//! holding `kiln.kdl` (and whatever it imports) with `NAME/expected`. The output is what
//! `kiln check` prints on stderr: no colour, 100 columns.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kiln::spec::render::{self, TextStyle};
use kiln::spec::{self, Code, Options, RealFs};

use crate::harness::{assert_golden, repo};

/// `(display name, project file, expected file)` of every fixture.
fn fixtures() -> Vec<(String, PathBuf, PathBuf)> {
    let dir = repo().join("tests/diagnostics");
    let mut out = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/diagnostics exists")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            out.push((
                "kiln.kdl".to_string(),
                path.join("kiln.kdl"),
                path.join("expected"),
            ));
        } else if path.extension().is_some_and(|e| e == "kdl") {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            out.push((name, path.clone(), path.with_extension("expected")));
        }
    }
    out
}

/// Renders a fixture the way `kiln check` does, with the file named relative to its folder.
fn render_fixture(name: &str, path: &Path) -> (String, Vec<Code>) {
    let text = std::fs::read_to_string(path).expect("fixture readable");
    let options = Options {
        check_paths: true,
        check_seccomp_profile: Some(kiln::cli::check_seccomp_profile),
        check_placement: Some(kiln::project::placement::check),
        ..Options::default()
    };
    let loaded = spec::load_source(name, Some(path), &text, &RealFs, &options);
    let codes = loaded.diagnostics.iter().map(|d| d.code).collect();
    (
        render::text_all(
            &loaded.diagnostics,
            &loaded.sources,
            TextStyle {
                color: false,
                width: 100,
            },
        ),
        codes,
    )
}

#[test]
fn every_fixture_renders_as_expected() {
    let fixtures = fixtures();
    assert!(
        fixtures.len() >= 40,
        "at least 40 bad inputs, found {}",
        fixtures.len()
    );
    let mut failures = Vec::new();
    for (name, path, expected) in &fixtures {
        let (rendered, codes) = render_fixture(name, path);
        if codes.is_empty() {
            failures.push(format!("{}: no diagnostic at all", path.display()));
            continue;
        }
        let result = std::panic::catch_unwind(|| assert_golden(expected, &rendered));
        if let Err(panic) = result {
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
            failures.push(message);
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn every_code_has_a_fixture() {
    let mut seen = BTreeSet::new();
    for (name, path, _) in fixtures() {
        seen.extend(render_fixture(&name, &path).1);
    }
    let missing: Vec<String> = Code::ALL
        .iter()
        .filter(|c| !seen.contains(c))
        .map(|c| c.as_str())
        .collect();
    assert!(
        missing.is_empty(),
        "codes without a fixture in tests/diagnostics: {missing:?}"
    );
}

#[test]
fn json_positions_are_one_based_and_match_the_text() {
    for (name, path, _) in fixtures() {
        let text = std::fs::read_to_string(&path).expect("readable");
        let loaded = spec::load_source(
            &name,
            Some(&path),
            &text,
            &RealFs,
            &Options {
                check_paths: true,
                check_seccomp_profile: Some(kiln::cli::check_seccomp_profile),
                check_placement: Some(kiln::project::placement::check),
                ..Options::default()
            },
        );
        for d in &loaded.diagnostics {
            let json = render::json(d, &loaded.sources);
            assert!(
                json.line >= 1 && json.column >= 1,
                "{}: {json:?}",
                path.display()
            );
            if json.file == name {
                let line = text.lines().nth(json.line - 1).unwrap_or("");
                let from_column: String = line.chars().skip(json.column - 1).collect();
                let spanned = loaded.sources.slice(d.span);
                let first_line = spanned.lines().next().unwrap_or("");
                assert!(
                    from_column.starts_with(first_line),
                    "{}: line {} column {} does not start {first_line:?}",
                    path.display(),
                    json.line,
                    json.column
                );
            }
        }
    }
}
