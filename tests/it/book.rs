//! The book stays true: every `kdl` block (of the book and of README.md) parses and validates, every diagnostic code has a
//! page in the error index, and `mdbook build` succeeds where mdbook is installed (CI
//! installs it, so there it is required).
//!
//! A block meant to show a mistake is fenced as ```` ```kdl,bad ````: it must produce at
//! least one error. Other `kdl` blocks must produce no diagnostic at all.

use kiln::spec::{self, Code, Options, RealFs};

use crate::harness::markdown::{Block, blocks, book_pages};
use crate::harness::tools::run;
use crate::harness::{assert_golden, repo, which};

/// Every fenced `kdl` block of the book, then of README.md.
fn kdl_blocks() -> Vec<Block> {
    book_pages()
        .into_iter()
        .chain([repo().join("README.md")])
        .flat_map(|page| blocks(&page))
        .filter(|b| b.language() == "kdl")
        .collect()
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
    for block in blocks {
        let bad = block.has("bad");
        let code = &block.text;
        // Mistakes about paths only show with a real directory: check bad blocks as a file
        // in an empty one, with path checks on.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kiln.kdl");
        let loaded = if bad {
            let options = Options {
                check_paths: true,
                check_placement: Some(kiln::project::placement::check),
                ..Options::default()
            };
            spec::load_source("kiln.kdl", Some(&path), code, &RealFs, &options)
        } else {
            let options = Options {
                check_placement: Some(kiln::project::placement::check),
                ..Options::default()
            };
            spec::load_source("kiln.kdl", None, code, &RealFs, &options)
        };
        let place = block.place();
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
    if !which("mdbook") {
        return;
    }
    let out = tempfile::tempdir().expect("tempdir");
    run(std::process::Command::new("mdbook")
        .args(["build", "--dest-dir"])
        .arg(out.path())
        .arg(repo().join("book")));
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
    assert_golden(&repo().join("book/src/reference/cli.md"), &page);
}

/// Every `src/…` path the book or README.md names (in backticks) is there: a module moved
/// is a page to update. A pattern (`src/*.rs`) names the directory before its `*`.
#[test]
fn every_source_path_the_book_names_exists() {
    let mut missing = Vec::new();
    for page in book_pages().into_iter().chain([repo().join("README.md")]) {
        let text = std::fs::read_to_string(&page).expect("readable");
        for (i, piece) in text.split('`').enumerate() {
            let named = match piece.split_once('*') {
                Some((before, _)) => before,
                None => piece,
            };
            // Odd pieces are inside backticks.
            if i % 2 == 1
                && piece.starts_with("src/")
                && !piece.contains(char::is_whitespace)
                && !repo().join(named).exists()
            {
                let page = page.strip_prefix(repo()).unwrap_or(&page).display();
                missing.push(format!("{page}: {piece}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "paths that are not there:\n{}",
        missing.join("\n")
    );
}

/// The introduction links every chapter of the guide and of Inside kiln (the pages of
/// SUMMARY.md but the reference and the error index, which it names as wholes).
#[test]
fn the_introduction_links_every_chapter() {
    let summary = std::fs::read_to_string(repo().join("book/src/SUMMARY.md")).expect("SUMMARY.md");
    let introduction =
        std::fs::read_to_string(repo().join("book/src/introduction.md")).expect("introduction");
    let unlinked: Vec<&str> = summary
        .split("](")
        .skip(1)
        .filter_map(|rest| rest.split_once(')').map(|(target, _)| target))
        .filter(|t| {
            *t != "introduction.md"
                && !t.starts_with("reference/")
                && !t.starts_with("errors")
                && !introduction.contains(&format!("]({t})"))
        })
        .collect();
    assert!(
        unlinked.is_empty(),
        "chapters the introduction does not link: {unlinked:?}"
    );
}

/// Every chapter of Inside kiln ends with a section `## The code` that names the modules
/// and files doing what the chapter shows.
#[test]
fn every_inside_chapter_ends_with_the_code() {
    let mut lacking = Vec::new();
    for page in book_pages() {
        let name = page.strip_prefix(repo().join("book/src")).expect("a page");
        if !name.starts_with("inside") {
            continue;
        }
        let text = std::fs::read_to_string(&page).expect("readable");
        let last = text.lines().rfind(|l| l.starts_with("## "));
        if last != Some("## The code") {
            lacking.push(name.display().to_string());
        }
    }
    assert!(
        lacking.is_empty(),
        "chapters whose last section is not `## The code`: {lacking:?}"
    );
}
