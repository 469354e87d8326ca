//! `kiln test`: bring the project up (unless `--no-up`), check every assertion of its
//! `test` blocks with the live prober, and report — each assertion as it completes (text),
//! one JSON object, a JUnit file. Exit 0 only when every assertion passed.
//!
//! The verdicts are `project::assert`'s and the observations `project::probe`'s; this file
//! only renders them and points failures back at kiln.kdl.

use std::io::{IsTerminal, Write};
use std::os::fd::AsFd;

use serde_json::json;

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

use super::Cli;
use super::args::{OutputFormat, ProjectArg, TestArgs, UpArgs};
use super::error::CliError;
use crate::containers::{self, ContainerError};
use crate::project::assert::{self, Kind, Verdict};
use crate::project::{LiveProber, ProjectPlan};
use crate::spec::model::FaultAction;
use crate::spec::render::{self, TextStyle};
use crate::spec::{Loaded, Sources};
use crate::state::{Record, Records};

pub(super) fn run(cli: &Cli, args: &TestArgs) -> Result<u8, crate::Error> {
    let mut loaded = super::load_project_file(cli, &args.project.file)?;
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
            host: args.host.clone(),
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
    if let Some(host) = &args.host {
        let plan = match super::project::plan_of(cli, &args.project.file, Some(host))? {
            Ok(plan) => plan,
            Err(code) => return Ok(code),
        };
        let left_out = assert::share(&mut loaded.project.tests, &args.names, |name| {
            plan.elsewhere(name)
        });
        eprintln!(
            "{}: testing from {host}: only the assertions whose container runs on {host}; \
             {left_out} from containers on other hosts left out (`kiln test --host` there checks them)",
            loaded.project.name
        );
    }
    let prober = LiveProber::new(super::state_root(cli), &loaded.project.name);
    let faults = LiveFaults {
        cli,
        project: loaded.project.name.clone(),
        plan: if needs_plan(&loaded, &args.names) {
            match super::project::plan_of(cli, &args.project.file, args.host.as_deref())? {
                Ok(plan) => Some(plan),
                Err(code) => return Ok(code),
            }
        } else {
            None
        },
    };
    let interrupted = on_interrupt()?;
    let mut text = TextReport {
        sources: &loaded.sources,
        color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        current_test: None,
        failed_write: None,
    };
    let verdicts = assert::run_tests(
        &loaded.project,
        &args.names,
        &prober,
        &faults,
        interrupted,
        &mut |verdict| {
            if args.format == OutputFormat::Text {
                text.verdict(verdict);
            }
        },
    )
    .map_err(unknown_test)?;
    if let Some(err) = text.failed_write {
        return Err(crate::Error::Output(err));
    }
    // A fault that was made and undone is no assertion: it counts only when it failed.
    let passed = verdicts
        .iter()
        .filter(|v| v.passed && v.kind == Kind::Assertion)
        .count();
    let failed = verdicts.iter().filter(|v| !v.passed).count();
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
    if interrupted.load(Ordering::Relaxed) {
        return Ok(130);
    }
    Ok(if failed == 0 { 0 } else { 1 })
}

/// Whether a test that runs has a fault that takes a container away (its end brings the
/// container back as `kiln up` would, which needs the project's plan).
fn needs_plan(loaded: &Loaded, names: &[String]) -> bool {
    loaded
        .project
        .tests
        .iter()
        .filter(|t| names.is_empty() || names.contains(&t.name.value))
        .flat_map(|t| &t.faults)
        .any(|f| !matches!(f.value.action.value, FaultAction::LinkDown { .. }))
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigint(_: nix::libc::c_int) {
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// From here on, Ctrl-C (SIGINT, SIGTERM) stops the tests instead of the process, so the
/// faults in force are undone before kiln exits (130).
fn on_interrupt() -> Result<&'static AtomicBool, crate::Error> {
    let action = SigAction::new(
        SigHandler::Handler(on_sigint),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &action) }.map_err(CliError::CatchSignals)?;
    }
    Ok(&INTERRUPTED)
}

/// The faults of `kiln test`, made on the running project.
struct LiveFaults<'a> {
    cli: &'a Cli,
    /// The project whose containers the faults name.
    project: String,
    /// The plan a container taken away is brought back with (when a test takes one).
    plan: Option<ProjectPlan>,
}

impl LiveFaults<'_> {
    fn carrier(&self, end: &str, up: bool) -> Result<(), String> {
        let root = super::state_root(self.cli);
        match super::links::set_carrier(&root, Some(&self.project), end, up) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(one_line(&err)),
            Err(err) => Err(one_line(&err)),
        }
    }

    fn container(
        &self,
        name: &str,
        act: impl Fn(&Records, &Record) -> Result<(), ContainerError>,
    ) -> Result<(), String> {
        let root = super::state_root(self.cli);
        let records = Records::open(&root).map_err(|e| one_line(&e))?;
        let record = records
            .resolve(name, Some(&self.project))
            .map_err(|e| one_line(&e))?;
        act(&records, &record).map_err(|e| one_line(&e))
    }

    /// Brings the instance back as `kiln up` would (its links with it).
    fn restore(&self, instance: &str) -> Result<(), String> {
        let plan = self
            .plan
            .as_ref()
            .ok_or_else(|| "the project's plan is missing".to_string())?;
        let service = plan
            .instances
            .iter()
            .find(|i| i.name == instance)
            .map_or_else(|| instance.to_string(), |i| i.service.clone());
        super::project::restore(self.cli, plan, &[service]).map_err(|e| one_line(&e))
    }
}

impl assert::Faults for LiveFaults<'_> {
    fn begin(&self, fault: &FaultAction) -> Result<(), String> {
        match fault {
            FaultAction::LinkDown { end } => self.carrier(&end.value, false),
            FaultAction::Stop { container } => {
                self.container(&container.value, |r, c| containers::stop(r, c, None))
            }
            FaultAction::Kill { container } => self.container(&container.value, |r, c| {
                containers::kill_container(r, c, Signal::SIGKILL)
            }),
        }
    }

    fn end(&self, fault: &FaultAction) -> Result<(), String> {
        match fault {
            FaultAction::LinkDown { end } => self.carrier(&end.value, true),
            FaultAction::Stop { container } | FaultAction::Kill { container } => {
                self.restore(&container.value)
            }
        }
    }
}

/// An error and its causes on one line.
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
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
        if verdict.kind == Kind::Fault && verdict.passed {
            text.push_str(&format!(
                "  {} {} ({})\n",
                self.paint("33", "⚡"),
                verdict.assertion,
                verdict.observed
            ));
            return text;
        }
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
        // Close-on-exec: what `up` starts and leaves running (the DNS daemon) must not
        // inherit the real stdout, or whoever reads `kiln test`'s output waits for it.
        let saved = std::io::stdout()
            .as_fd()
            .try_clone_to_owned()
            .map_err(|e| failed(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))))?;
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
