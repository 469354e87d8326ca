//! `kiln test`: bring the project up (unless `--no-up`), check every assertion of its
//! `test` blocks with the live prober, and report — each assertion as it completes (text),
//! one JSON object, a JUnit file. Exit 0 only when every assertion passed.
//!
//! The verdicts are `project::assert`'s and the observations `project::probe`'s; this file
//! only renders them and points failures back at kiln.kdl.

use std::io::{IsTerminal, Write};

use serde_json::json;

use super::Cli;
use super::args::{OutputFormat, ProjectArg, TestArgs, UpArgs};
use super::error::CliError;
use crate::project::LiveProber;
use crate::project::assert::{self, Verdict};
use crate::spec::render::{self, TextStyle};
use crate::spec::{Loaded, Sources};

pub(super) fn run(cli: &Cli, args: &TestArgs) -> Result<u8, crate::Error> {
    let loaded = super::load_project_file(cli, &args.project.file)?;
    if loaded.has_errors() {
        let style = TextStyle {
            color: super::stderr_color(),
            width: super::render_width(),
        };
        eprint!(
            "{}",
            render::text_all(&loaded.diagnostics, &loaded.sources, style)
        );
        eprintln!(
            "{}: not tested: fix the errors above",
            args.project.file.display()
        );
        return Ok(1);
    }
    check_names(&loaded, &args.names)?;
    if loaded.project.tests.is_empty() {
        eprintln!(
            "{}: the project declares no test",
            args.project.file.display()
        );
    }
    if !args.no_up {
        let up = UpArgs {
            project: ProjectArg {
                file: args.project.file.clone(),
            },
            services: Vec::new(),
            detach: true,
            timeout: args.timeout,
            dry_run: false,
        };
        // What coming up prints is progress: stdout is kept for the report.
        let code = {
            let _redirect = StdoutToStderr::install()?;
            super::project::up_detached(cli, &up)?
        };
        if code != 0 {
            eprintln!("{}: not tested: the project is not up", loaded.project.name);
            return Ok(code);
        }
    }
    let prober = LiveProber::new(super::state_root(cli), &loaded.project.name);
    let mut text = TextReport {
        sources: &loaded.sources,
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        current_test: None,
        failed_write: None,
    };
    let verdicts = assert::run_tests(&loaded.project, &args.names, &prober, &mut |verdict| {
        if args.format == OutputFormat::Text {
            text.verdict(verdict);
        }
    })
    .map_err(unknown_test)?;
    if let Some(err) = text.failed_write {
        return Err(crate::Error::Output(err));
    }
    let passed = verdicts.iter().filter(|v| v.passed).count();
    let failed = verdicts.len() - passed;
    if let Some(path) = &args.junit {
        let xml = assert::junit(&loaded.project.name, &verdicts, |v| {
            let (location, line) = locate(&loaded.sources, v);
            format!("{location}\n{}", line.trim())
        });
        std::fs::write(path, xml).map_err(|source| CliError::Write {
            what: "the JUnit report",
            path: path.clone(),
            source,
        })?;
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            let results: Vec<_> = verdicts
                .iter()
                .map(|v| {
                    let mut value = serde_json::to_value(v).unwrap_or_default();
                    value["location"] = json!(locate(&loaded.sources, v).0);
                    value
                })
                .collect();
            let report = json!({ "passed": passed, "failed": failed, "results": results });
            writeln!(out, "{report}").map_err(crate::Error::Output)?;
        }
        OutputFormat::Text => {
            writeln!(out, "{passed} passed, {failed} failed").map_err(crate::Error::Output)?;
        }
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Every name asked for must be a test of the project: checked before anything starts.
fn check_names(loaded: &Loaded, names: &[String]) -> Result<(), crate::Error> {
    let tests = &loaded.project.tests;
    match names
        .iter()
        .find(|name| !tests.iter().any(|t| &&t.name.value == name))
    {
        None => Ok(()),
        Some(name) => Err(unknown_test(assert::UnknownTest {
            name: name.clone(),
            known: tests
                .iter()
                .map(|t| format!("`{}`", t.name.value))
                .collect::<Vec<_>>()
                .join(", "),
        })),
    }
}

fn unknown_test(err: assert::UnknownTest) -> crate::Error {
    let help = if err.known.is_empty() {
        "the project declares no test".to_string()
    } else {
        format!("the project declares: {}", err.known)
    };
    CliError::UnknownTest {
        name: err.name,
        help,
    }
    .into()
}

/// `kiln.kdl:LINE:COL` of the verdict's assertion, and the text of that line.
fn locate(sources: &Sources, verdict: &Verdict) -> (String, String) {
    let file = sources.get(verdict.span.file);
    let at = sources.line_col(verdict.span);
    let line = file.text.lines().nth(at.line - 1).unwrap_or("").to_string();
    (format!("{}:{}:{}", file.name, at.line, at.column), line)
}

/// The text report, printed as verdicts arrive: each test's name once, then its
/// assertions; a failure with its place in kiln.kdl and what was observed.
struct TextReport<'a> {
    sources: &'a Sources,
    color: bool,
    current_test: Option<String>,
    /// The first failure to write (a closed pipe): reported once the tests are done.
    failed_write: Option<std::io::Error>,
}

impl TextReport<'_> {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn verdict(&mut self, verdict: &Verdict) {
        let text = self.render(verdict);
        if self.failed_write.is_none()
            && let Err(err) = std::io::stdout().lock().write_all(text.as_bytes())
        {
            self.failed_write = Some(err);
        }
    }

    fn render(&mut self, verdict: &Verdict) -> String {
        let mut text = String::new();
        if self.current_test.as_deref() != Some(verdict.test.as_str()) {
            text.push_str(&self.paint("1", &verdict.test));
            text.push('\n');
            self.current_test = Some(verdict.test.clone());
        }
        let elapsed = format!("{:.1} ms", verdict.elapsed_ms);
        if verdict.passed {
            text.push_str(&format!(
                "  {} {} ({}, {elapsed})\n",
                self.paint("32", "✓"),
                verdict.assertion,
                verdict.observed
            ));
            return text;
        }
        text.push_str(&format!(
            "  {} {} ({elapsed})\n",
            self.paint("31", "✗"),
            verdict.assertion
        ));
        let (location, line) = locate(self.sources, verdict);
        let at = self.sources.line_col(verdict.span);
        let number = at.line.to_string();
        let gutter = " ".repeat(number.len());
        text.push_str(&format!("    {}\n", self.paint("36", &location)));
        text.push_str(&format!("    {gutter} |\n"));
        text.push_str(&format!("    {number} | {line}\n"));
        text.push_str(&format!(
            "    {gutter} | {}{}\n",
            " ".repeat(at.column - 1),
            self.paint(
                "31",
                &"^".repeat(caret_width(self.sources, verdict, &line, at.column))
            )
        ));
        text.push_str(&format!("    observed: {}\n", verdict.observed));
        text
    }
}

/// How many characters of `line` (from 1-based `column`) the verdict's span covers: to the
/// span's end, or to the end of the line's text when the span goes on.
fn caret_width(sources: &Sources, verdict: &Verdict, line: &str, column: usize) -> usize {
    let covered = sources.slice(verdict.span);
    let first_line = covered.lines().next().unwrap_or("");
    let rest_of_line: String = line.chars().skip(column - 1).collect();
    let width = if covered.contains('\n') {
        rest_of_line.trim_end().chars().count()
    } else {
        first_line.trim_end().chars().count()
    };
    width.max(1)
}

/// While alive, the process's stdout goes to its stderr.
struct StdoutToStderr {
    saved: std::os::fd::OwnedFd,
}

impl StdoutToStderr {
    fn install() -> Result<StdoutToStderr, crate::Error> {
        let failed = CliError::Redirect;
        std::io::stdout().flush().map_err(crate::Error::Output)?;
        let saved = nix::unistd::dup(std::io::stdout()).map_err(failed)?;
        nix::unistd::dup2_stdout(std::io::stderr()).map_err(failed)?;
        Ok(StdoutToStderr { saved })
    }
}

impl Drop for StdoutToStderr {
    fn drop(&mut self) {
        let _ = std::io::stdout().flush();
        let _ = nix::unistd::dup2_stdout(&self.saved);
    }
}
