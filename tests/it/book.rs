//! The book stays true: every `kdl` block (of the book and of README.md) parses and validates, every diagnostic code has a
//! page in the error index, and `mdbook build` succeeds where mdbook is installed (CI
//! installs it, so there it is required).
//!
//! A block meant to show a mistake is fenced as ```` ```kdl,bad ````: it must produce at
//! least one error. Other `kdl` blocks must produce no diagnostic at all.

use std::path::{Path, PathBuf};

use kiln::spec::{self, Code, Options, RealFs};

use crate::harness::repo;

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("book/src readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            markdown_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// `(file, first line, info string, code)` of every fenced block whose language is kdl.
fn kdl_blocks() -> Vec<(PathBuf, usize, String, String)> {
    let mut files = Vec::new();
    markdown_files(&repo().join("book/src"), &mut files);
    files.sort();
    files.push(repo().join("README.md"));
    let mut blocks = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("readable");
        let mut current: Option<(usize, String, String)> = None;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            match &mut current {
                None => {
                    if let Some(info) = trimmed.strip_prefix("```")
                        && info.split(',').next() == Some("kdl")
                    {
                        current = Some((i + 1, info.to_string(), String::new()));
                    }
                }
                Some((start, info, code)) => {
                    if trimmed.starts_with("```") {
                        blocks.push((file.clone(), *start, info.clone(), std::mem::take(code)));
                        current = None;
                    } else {
                        code.push_str(line);
                        code.push('\n');
                    }
                }
            }
        }
    }
    blocks
}

#[test]
fn every_kdl_block_in_the_book_is_valid_or_marked_bad() {
    let blocks = kdl_blocks();
    assert!(
        blocks.len() >= 20,
        "the book shows the language: found {} kdl blocks",
        blocks.len()
    );
    let mut problems = Vec::new();
    for (file, line, info, code) in blocks {
        let bad = info.split(',').any(|t| t == "bad");
        // Mistakes about paths only show with a real directory: check bad blocks as a file
        // in an empty one, with path checks on.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kiln.kdl");
        let loaded = if bad {
            let options = Options {
                check_paths: true,
                ..Options::default()
            };
            spec::load_source("kiln.kdl", Some(&path), &code, &RealFs, &options)
        } else {
            spec::load_source("kiln.kdl", None, &code, &RealFs, &Options::default())
        };
        let place = format!(
            "{}:{line}",
            file.strip_prefix(repo()).unwrap_or(&file).display()
        );
        if bad && !loaded.has_errors() {
            problems.push(format!("{place}: marked bad but valid"));
        }
        if !bad && !loaded.diagnostics.is_empty() {
            let messages: Vec<String> = loaded
                .diagnostics
                .iter()
                .map(|d| format!("{}: {}", d.code, d.message))
                .collect();
            problems.push(format!("{place}: {}", messages.join("; ")));
        }
    }
    assert!(
        problems.is_empty(),
        "book kdl blocks:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_code_has_a_page_in_the_error_index() {
    let summary = std::fs::read_to_string(repo().join("book/src/SUMMARY.md")).expect("SUMMARY.md");
    let mut missing = Vec::new();
    for code in Code::ALL {
        let page = repo().join(format!("book/src/errors/{}.md", code.name()));
        let linked = summary.contains(&format!("(errors/{}.md)", code.name()));
        let text = std::fs::read_to_string(&page).unwrap_or_default();
        if !linked || !text.contains(&code.as_str()) || !text.contains("```kdl,bad") {
            missing.push(code.name());
        }
    }
    assert!(
        missing.is_empty(),
        "codes without a page (book/src/errors/NAME.md naming the full code, with a ```kdl,bad example, linked from SUMMARY.md): {missing:?}"
    );
}

#[test]
fn mdbook_builds_the_book() {
    let found = std::process::Command::new("mdbook")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs mdbook: the book must build there"
        );
        eprintln!("mdbook is not installed: skipping the build (CI runs it)");
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    let status = std::process::Command::new("mdbook")
        .args(["build", "--dest-dir"])
        .arg(out.path())
        .arg(repo().join("book"))
        .output()
        .expect("mdbook runs");
    assert!(
        status.status.success(),
        "mdbook build failed:\n{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(out.path().join("index.html").exists());
}

/// The book's command reference is `--help` itself: generated from the clap definition
/// (the one source), compared here, rewritten with `KILN_BLESS=1`.
#[test]
fn the_command_reference_is_the_help_text() {
    use clap::CommandFactory;
    let mut cli = kiln::cli::Cli::command().term_width(100);
    cli.build();
    let mut page = String::from(
        "# Commands\n\nEvery command with its `--help`, generated from the definition kiln's \
         own `--help` prints (`tests/it/book.rs` keeps this page equal to it).\n\n",
    );
    page.push_str("```text\n");
    page.push_str(&cli.render_long_help().to_string());
    page.push_str("```\n");
    let mut commands: Vec<clap::Command> = cli
        .get_subcommands()
        .filter(|c| !c.is_hide_set() && c.get_name() != "help")
        .cloned()
        .collect();
    while !commands.is_empty() {
        let mut next = Vec::new();
        for mut command in commands {
            let name = command
                .get_bin_name()
                .unwrap_or(command.get_name())
                .to_string();
            page.push_str(&format!("\n## {name}\n\n```text\n"));
            page.push_str(command.render_long_help().to_string().trim_end());
            page.push_str("\n```\n");
            next.extend(
                command
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set() && c.get_name() != "help")
                    .cloned(),
            );
        }
        commands = next;
    }
    crate::harness::assert_golden(&repo().join("book/src/reference/cli.md"), &page);
}
