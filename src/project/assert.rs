//! `kiln test`: every assertion of the project's `test` blocks, checked against what a
//! [`Prober`] observes, with a verdict and what was seen.
//!
//! The prober does the work (connections from inside a container's network namespace, exec
//! in a container); this module only decides pass or fail and says why, so its logic is
//! tested with a fake prober and the real one is tested where it lives.

use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::spec::model::{
    Assertion, Check, Fault, FaultAction, PingExpect, Project, TcpExpect, Test,
};
use crate::spec::{Span, Spanned};

/// What an HTTP GET saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSeen {
    pub status: u16,
    /// The start of the body (enough to show in a failure).
    pub body: String,
}

/// How a TCP connection attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpSeen {
    Open,
    Refused,
    Timeout,
}

/// What `count` echo requests got back.
#[derive(Debug, Clone, PartialEq)]
pub struct PingSeen {
    /// The address the target resolved to.
    pub address: IpAddr,
    pub sent: u32,
    pub rtts: Vec<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSeen {
    pub code: i32,
    pub stdout: String,
}

/// Makes the observations, from inside the named container. An `Err` is a failure to
/// observe at all (no such container, the name does not resolve…), shown as what was seen.
pub trait Prober {
    fn http(&self, from: &str, url: &str, timeout: Duration) -> Result<HttpSeen, String>;
    fn tcp(&self, from: &str, address: &str, timeout: Duration) -> Result<TcpSeen, String>;
    fn ping(&self, from: &str, target: &str, count: u32) -> Result<PingSeen, String>;
    /// The addresses `name` resolves to with the container's resolver; empty for NXDOMAIN.
    fn dns(&self, from: &str, name: &str) -> Result<Vec<IpAddr>, String>;
    fn exec(&self, container: &str, command: &[String]) -> Result<ExecSeen, String>;
}

/// Makes a test's faults and undoes them (the live one brings the link up again, the
/// container back with `kiln up`'s reconciliation).
pub trait Faults: Sync {
    fn begin(&self, fault: &FaultAction) -> Result<(), String>;
    fn end(&self, fault: &FaultAction) -> Result<(), String>;
}

/// What a verdict is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Assertion,
    /// A fault of the timeline: passed when it was made and undone.
    Fault,
}

/// The verdict on one assertion, or on one fault of the timeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub kind: Kind,
    pub test: String,
    /// The assertion, as written (`http from=client-1 http://web:8080/ status=200`).
    pub assertion: String,
    pub passed: bool,
    /// What was observed: on success a short summary, on failure what differed.
    pub observed: String,
    #[serde(skip)]
    pub span: Span,
    pub elapsed_ms: f64,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("no test named `{name}` in the project")]
#[diagnostic(help("the project declares: {known}"))]
pub struct UnknownTest {
    pub name: String,
    pub known: String,
}

/// How long an HTTP probe of a test may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// How often an assertion inside `eventually` is tried again.
const RETRY: Duration = Duration::from_millis(200);

/// How many assertions are checked at once.
const PARALLEL: usize = 8;

/// The container an assertion is checked from (`from=`, or `exec`'s container).
fn source(assertion: &Assertion) -> &str {
    match assertion {
        Assertion::Http { from, .. }
        | Assertion::Dns { from, .. }
        | Assertion::Ping { from, .. }
        | Assertion::Tcp { from, .. } => &from.value,
        Assertion::Exec { container, .. } => &container.value,
    }
}

/// The container a fault acts on.
fn target(fault: &FaultAction) -> &str {
    match fault {
        FaultAction::LinkDown { end } => end.value.split(':').next().unwrap_or_default(),
        FaultAction::Stop { container } | FaultAction::Kill { container } => &container.value,
    }
}

/// Keeps of `tests` what this machine can check when it runs one host's share (`kiln test
/// --host`): the assertions whose source container runs here. A test with a fault on a
/// container elsewhere is left out whole (its timeline cannot be kept from here). A test
/// keeps its name even when nothing of it is left. Returns how many assertions of the
/// tests named (all when `names` is empty) were left out. `elsewhere` names the host a
/// container runs on when it is not this one.
pub fn share<'a>(
    tests: &mut [Test],
    names: &[String],
    elsewhere: impl Fn(&str) -> Option<&'a str>,
) -> usize {
    let mut left_out = 0;
    for test in tests
        .iter_mut()
        .filter(|t| names.is_empty() || names.contains(&t.name.value))
    {
        if test
            .faults
            .iter()
            .any(|f| elsewhere(target(&f.action.value)).is_some())
        {
            left_out += test.assertions.len();
            test.assertions.clear();
            test.faults.clear();
            continue;
        }
        let before = test.assertions.len();
        test.assertions
            .retain(|c| elsewhere(source(&c.assertion.value)).is_none());
        left_out += before - test.assertions.len();
    }
    left_out
}

/// Runs the named tests (all when `names` is empty). The assertions of tests without
/// faults or `eventually` run up to [`PARALLEL`] at once, except that the `exec`s of one
/// container run one after another in file order (one may read what another wrote). A test
/// with faults or `eventually` runs its assertions in order while its faults happen on their
/// timeline, and they are undone by the time the test ends; once `interrupted` is set
/// (Ctrl-C), what is left is skipped, and the faults are undone all the same. `each` is
/// called with every verdict in declaration order, as soon as every verdict before it is in.
pub fn run_tests(
    project: &Project,
    names: &[String],
    prober: &(dyn Prober + Sync),
    faults: &dyn Faults,
    interrupted: &AtomicBool,
    each: &mut dyn FnMut(&Verdict),
) -> Result<Vec<Verdict>, UnknownTest> {
    for name in names {
        if !project.tests.iter().any(|t| &t.name.value == name) {
            return Err(UnknownTest {
                name: name.clone(),
                known: project
                    .tests
                    .iter()
                    .map(|t| t.name.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    let mut verdicts = Vec::new();
    let mut report = |verdict: Verdict| {
        each(&verdict);
        verdicts.push(verdict);
    };
    // Consecutive tests without a timeline are checked together, in parallel.
    let mut batch: Vec<(&str, &Spanned<Assertion>)> = Vec::new();
    for test in project
        .tests
        .iter()
        .filter(|t| names.is_empty() || names.contains(&t.name.value))
    {
        let timed = !test.faults.is_empty() || test.assertions.iter().any(|c| c.within.is_some());
        if !timed {
            batch.extend(
                test.assertions
                    .iter()
                    .map(|c| (test.name.value.as_str(), &c.assertion)),
            );
            continue;
        }
        run_parallel(&std::mem::take(&mut batch), prober, &mut report);
        run_test(test, prober, faults, interrupted, &mut report);
    }
    run_parallel(&batch, prober, &mut report);
    Ok(verdicts)
}

/// Checks `jobs` up to [`PARALLEL`] at once (the `exec`s of one container in order),
/// reporting the verdicts in the jobs' order.
fn run_parallel(
    jobs: &[(&str, &Spanned<Assertion>)],
    prober: &(dyn Prober + Sync),
    report: &mut dyn FnMut(Verdict),
) {
    if jobs.is_empty() {
        return;
    }
    super::ordered::run_in_order(
        jobs,
        |(_, assertion)| match &assertion.value {
            Assertion::Exec { container, .. } => Some(container.value.as_str()),
            _ => None,
        },
        PARALLEL,
        |(test, assertion)| {
            let started = Instant::now();
            let (passed, observed) = check(&assertion.value, prober);
            Verdict {
                kind: Kind::Assertion,
                test: test.to_string(),
                assertion: describe(&assertion.value),
                passed,
                observed,
                span: assertion.span,
                elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
            }
        },
        |_, verdict| report(verdict),
    );
}

/// When a fault of the timeline began and ended (from the test's start), or why not.
#[derive(Debug, Clone, Default)]
struct Happened {
    began: Option<Duration>,
    ended: Option<Duration>,
    error: Option<String>,
}

fn run_test(
    test: &Test,
    prober: &dyn Prober,
    faults: &dyn Faults,
    interrupted: &AtomicBool,
    each: &mut dyn FnMut(Verdict),
) {
    let start = Instant::now();
    let log: Vec<Mutex<Happened>> = test.faults.iter().map(|_| Mutex::default()).collect();
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        if !test.faults.is_empty() {
            scope.spawn(|| timeline(&test.faults, faults, start, &log, &done, interrupted));
        }
        for check in &test.assertions {
            let verdict = if interrupted.load(Ordering::Relaxed) {
                Verdict {
                    kind: Kind::Assertion,
                    test: test.name.value.clone(),
                    assertion: describe(&check.assertion.value),
                    passed: false,
                    observed: "not checked: interrupted".to_string(),
                    span: check.assertion.span,
                    elapsed_ms: 0.0,
                }
            } else {
                run_check(&test.name.value, check, prober, interrupted)
            };
            each(verdict);
        }
        done.store(true, Ordering::Relaxed);
    });
    // What is still in force is undone now, whatever the assertions found.
    let ended_at = start.elapsed();
    for (fault, happened) in test.faults.iter().zip(&log) {
        let mut happened = lock(happened);
        if happened.began.is_some() && happened.ended.is_none() {
            if let Err(err) = faults.end(&fault.value.action.value) {
                happened.error.get_or_insert(err);
            }
            happened.ended = Some(start.elapsed());
        }
        each(fault_verdict(&test.name.value, fault, &happened, ended_at));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes and undoes the faults when their times come, until the assertions are done.
fn timeline(
    list: &[crate::spec::Spanned<Fault>],
    faults: &dyn Faults,
    start: Instant,
    log: &[Mutex<Happened>],
    done: &AtomicBool,
    interrupted: &AtomicBool,
) {
    // (when, which, begin?), in time order; at one instant, ends come before beginnings.
    let mut events: Vec<(Duration, usize, bool)> = Vec::new();
    for (index, fault) in list.iter().enumerate() {
        let at = fault.value.at.as_std();
        events.push((at, index, true));
        if let Some(lasts) = fault.value.lasts {
            events.push((at + lasts.as_std(), index, false));
        }
    }
    events.sort_by_key(|&(when, index, begin)| (when, begin, index));
    for (when, index, begin) in events {
        loop {
            if done.load(Ordering::Relaxed) || interrupted.load(Ordering::Relaxed) {
                return;
            }
            let now = start.elapsed();
            if now >= when {
                break;
            }
            std::thread::sleep((when - now).min(Duration::from_millis(20)));
        }
        let action = &list[index].value.action.value;
        let mut happened = lock(&log[index]);
        if begin {
            happened.began = Some(start.elapsed());
            if let Err(err) = faults.begin(action) {
                happened.error = Some(err);
            }
        } else if happened.began.is_some() && happened.ended.is_none() {
            if let Err(err) = faults.end(action) {
                happened.error.get_or_insert(err);
            }
            happened.ended = Some(start.elapsed());
        }
    }
}

/// One assertion: once, or inside `eventually` until it passes or its time is up.
fn run_check(test: &str, check: &Check, prober: &dyn Prober, interrupted: &AtomicBool) -> Verdict {
    let started = Instant::now();
    let mut tries = 0u32;
    let (passed, mut observed) = loop {
        tries += 1;
        let (passed, observed) = self::check(&check.assertion.value, prober);
        let Some(within) = &check.within else {
            break (passed, observed);
        };
        if passed
            || started.elapsed() >= within.value.as_std()
            || interrupted.load(Ordering::Relaxed)
        {
            break (passed, observed);
        }
        std::thread::sleep(RETRY);
    };
    if let Some(within) = &check.within {
        observed = if passed {
            format!("{observed}; after {tries} tries")
        } else {
            format!("{observed}; still after {tries} tries in {}", within.value)
        };
    }
    let mut assertion = describe(&check.assertion.value);
    if let Some(within) = &check.within {
        assertion = format!("eventually within={} {{ {assertion} }}", within.value);
    }
    Verdict {
        kind: Kind::Assertion,
        test: test.to_string(),
        assertion,
        passed,
        observed,
        span: check.assertion.span,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
    }
}

/// The fault in kiln.kdl's words.
pub fn describe_fault(fault: &Fault) -> String {
    let action = match &fault.action.value {
        FaultAction::LinkDown { end } => format!("link-down {}", end.value),
        FaultAction::Stop { container } => format!("stop {}", container.value),
        FaultAction::Kill { container } => format!("kill {}", container.value),
    };
    match fault.lasts {
        Some(lasts) => format!("fault at={} for={lasts} {{ {action} }}", fault.at),
        None => format!("fault at={} {{ {action} }}", fault.at),
    }
}

fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

fn fault_verdict(
    test: &str,
    fault: &crate::spec::Spanned<Fault>,
    happened: &Happened,
    ended_at: Duration,
) -> Verdict {
    let (passed, observed) = match (happened.began, happened.ended, &happened.error) {
        (_, _, Some(err)) => (false, err.clone()),
        (None, _, None) => (
            false,
            format!(
                "never happened: the assertions were done at {}; keep one waiting for it \
                 (`eventually within=…`)",
                seconds(ended_at)
            ),
        ),
        (Some(began), ended, None) => (
            true,
            format!(
                "from {} to {}",
                seconds(began),
                ended.map_or_else(|| "the end".to_string(), seconds)
            ),
        ),
    };
    Verdict {
        kind: Kind::Fault,
        test: test.to_string(),
        assertion: describe_fault(&fault.value),
        passed,
        observed,
        span: fault.span,
        elapsed_ms: 0.0,
    }
}

/// The assertion in kiln.kdl's words.
pub fn describe(assertion: &Assertion) -> String {
    match assertion {
        Assertion::Http {
            from,
            url,
            status,
            contains,
        } => {
            let mut text = format!("http from={} {} status={status}", from.value, url.value);
            if let Some(c) = contains {
                text.push_str(&format!(" contains={:?}", c.value));
            }
            text
        }
        Assertion::Dns { from, name, expect } => {
            let mut text = format!("dns from={} {}", from.value, name.value);
            match expect {
                Some(list) if list.is_empty() => text.push_str(" expect=\"nxdomain\""),
                Some(list) => {
                    let list: Vec<_> = list.iter().map(|a| a.value.to_string()).collect();
                    text.push_str(&format!(" expect={:?}", list.join(",")));
                }
                None => {}
            }
            text
        }
        Assertion::Ping {
            from,
            target,
            count,
            min_rtt,
            max_rtt,
            expect,
        } => {
            let mut text = format!("ping from={} {} count={count}", from.value, target.value);
            if let Some(min) = min_rtt {
                text.push_str(&format!(" min-rtt={}", min.value));
            }
            if let Some(max) = max_rtt {
                text.push_str(&format!(" max-rtt={}", max.value));
            }
            if *expect == PingExpect::Unreachable {
                text.push_str(" expect=\"unreachable\"");
            }
            text
        }
        Assertion::Tcp {
            from,
            address,
            expect,
            ..
        } => format!(
            "tcp from={} {} expect={:?}",
            from.value,
            address.value,
            tcp_name(*expect)
        ),
        Assertion::Exec {
            container,
            command,
            stdout,
            exit,
        } => {
            let argv: Vec<_> = command.iter().map(|a| format!("{:?}", a.value)).collect();
            let mut text = format!("exec {:?} {}", container.value, argv.join(" "));
            if let Some(out) = stdout {
                text.push_str(&format!(" stdout={:?}", out.value));
            }
            if *exit != 0 {
                text.push_str(&format!(" exit={exit}"));
            }
            text
        }
    }
}

fn tcp_name(expect: TcpExpect) -> &'static str {
    match expect {
        TcpExpect::Open => "open",
        TcpExpect::Refused => "refused",
        TcpExpect::Timeout => "timeout",
    }
}

fn excerpt(text: &str) -> String {
    const MAX: usize = 120;
    let one_line = text.replace('\n', "\\n");
    if one_line.chars().count() <= MAX {
        return one_line;
    }
    let cut: String = one_line.chars().take(MAX).collect();
    format!("{cut}…")
}

/// Milliseconds, with enough decimals that a loopback RTT is not shown as 0.
fn millis(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.3} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// Pass or fail, and what was seen.
fn check(assertion: &Assertion, prober: &dyn Prober) -> (bool, String) {
    match assertion {
        Assertion::Http {
            from,
            url,
            status,
            contains,
        } => match prober.http(&from.value, &url.value, HTTP_TIMEOUT) {
            Err(err) => (false, err),
            Ok(seen) => {
                let status_ok = seen.status == *status;
                let body_ok = contains
                    .as_ref()
                    .is_none_or(|c| seen.body.contains(&c.value));
                let mut observed = format!("status {}", seen.status);
                if !body_ok || !status_ok {
                    observed.push_str(&format!(", body \"{}\"", excerpt(&seen.body)));
                }
                (status_ok && body_ok, observed)
            }
        },
        Assertion::Dns { from, name, expect } => match prober.dns(&from.value, &name.value) {
            Err(err) => (false, err),
            Ok(mut seen) => {
                seen.sort();
                let shown = if seen.is_empty() {
                    "NXDOMAIN".to_string()
                } else {
                    seen.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let passed = match expect {
                    None => !seen.is_empty(),
                    Some(expected) => {
                        let mut expected: Vec<IpAddr> = expected.iter().map(|a| a.value).collect();
                        expected.sort();
                        expected == seen
                    }
                };
                (passed, format!("resolved to {shown}"))
            }
        },
        Assertion::Ping {
            from,
            target,
            count,
            min_rtt,
            max_rtt,
            expect,
        } => match prober.ping(&from.value, &target.value, *count) {
            Err(err) => (
                *expect == PingExpect::Unreachable && err.contains("unreachable"),
                err,
            ),
            Ok(seen) => {
                let received = seen.rtts.len() as u32;
                let worst = seen.rtts.iter().max().copied();
                let best = seen.rtts.iter().min().copied();
                let mut observed = format!(
                    "{} replies of {} from {}",
                    received, seen.sent, seen.address
                );
                if let (Some(best), Some(_)) = (best, min_rtt) {
                    observed.push_str(&format!(", min rtt {}", millis(best)));
                }
                if let Some(worst) = worst {
                    observed.push_str(&format!(", max rtt {}", millis(worst)));
                }
                let passed = match expect {
                    PingExpect::Unreachable => received == 0,
                    PingExpect::Reachable => {
                        received > 0
                            && max_rtt
                                .as_ref()
                                .is_none_or(|max| worst.is_some_and(|w| w <= max.value.as_std()))
                            && min_rtt
                                .as_ref()
                                .is_none_or(|min| best.is_some_and(|b| b >= min.value.as_std()))
                    }
                };
                (passed, observed)
            }
        },
        Assertion::Tcp {
            from,
            address,
            expect,
            timeout,
        } => match prober.tcp(&from.value, &address.value, timeout.as_std()) {
            Err(err) => (false, err),
            Ok(seen) => {
                let name = match seen {
                    TcpSeen::Open => "open",
                    TcpSeen::Refused => "refused",
                    TcpSeen::Timeout => "timeout",
                };
                (name == tcp_name(*expect), name.to_string())
            }
        },
        Assertion::Exec {
            container,
            command,
            stdout,
            exit,
        } => {
            let argv: Vec<String> = command.iter().map(|a| a.value.clone()).collect();
            match prober.exec(&container.value, &argv) {
                Err(err) => (false, err),
                Ok(seen) => {
                    let code_ok = seen.code == *exit;
                    let out_ok = stdout.as_ref().is_none_or(|s| s.value == seen.stdout);
                    let mut observed = format!("exit {}", seen.code);
                    if !out_ok || stdout.is_some() {
                        observed.push_str(&format!(", stdout \"{}\"", excerpt(&seen.stdout)));
                    }
                    (code_ok && out_ok, observed)
                }
            }
        }
    }
}

/// A JUnit XML report (one testsuite per project, one testcase per assertion).
pub fn junit(project: &str, verdicts: &[Verdict], location: impl Fn(&Verdict) -> String) -> String {
    let failures = verdicts.iter().filter(|v| !v.passed).count();
    let seconds: f64 = verdicts.iter().map(|v| v.elapsed_ms).sum::<f64>() / 1000.0;
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n",
        verdicts.len()
    ));
    xml.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" time=\"{seconds:.3}\">\n",
        escape(project),
        verdicts.len()
    ));
    for v in verdicts {
        xml.push_str(&format!(
            "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
            escape(&v.test),
            escape(&v.assertion),
            v.elapsed_ms / 1000.0
        ));
        if v.passed {
            xml.push_str("/>\n");
        } else {
            xml.push_str(&format!(
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>\n",
                escape(&v.observed),
                escape(&location(v))
            ));
        }
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters, even escaped.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
