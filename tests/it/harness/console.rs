//! The book's console sessions, run and compared with what the book shows. The convention
//! (also in `book/README.md`, for writers):
//!
//! - Every ```` ```console ```` block is run, unless an HTML comment right above it says
//!   `<!-- unchecked: WHY -->` (the reason is required).
//! - A line starting with `$ ` (any user) or `# ` (root) is a command; it goes on over the
//!   next lines while it ends with `\` or has an open quote. The lines up to the next
//!   command are what it prints, stdout and stderr together, as a terminal shows them.
//! - Matching: runs of spaces count as one; a line that is only `…` stands for any number
//!   of lines; `…` inside a line for any text. What differs from run to run or machine to
//!   machine matches by shape: hex strings of 8 digits or more (digests, ids, keys, big
//!   numbers), fractional durations (`0.06s`, `2.6 ms`, `0m0.037s`) and percentages, sizes
//!   with a unit (`19.6 MB`, `256KiB`) and JSON `"size"`s, RFC 3339 times and `ls -l` dates.
//!   A hex string the book shows stands for the one printed in its place from then on, so a
//!   later command that names it (`cd containers/013db4…`) uses the real one.
//! - `<!-- unordered -->` above a block: each command's lines may come in any order (the
//!   progress of a parallel build).
//! - `<!-- eventually -->` above a block: each command runs again (for up to 30 s) until
//!   it prints what the book shows — for what takes its time (a health check turning
//!   healthy, a log line). Only for blocks whose commands may run twice.
//! - `<!-- file: PATH -->` above any block: the block is the file PATH, written before the
//!   next command runs (an absolute `/tmp/…` path, or one relative to the checkout).
//! - `<!-- port: 18085 -->` anywhere in a page: the host port 18085 the book shows stands
//!   for a free port the runner picks (rewritten in commands and `file:` blocks, mapped back
//!   in output), so
//!   that two runs at once, or another program on the machine, never fight over it.
//! - `<!-- continues: inside/namespaces.md -->` anywhere in a page: its sessions go on where
//!   that page's ended (same shell, same files), and run with it.
//! - A page's sessions run in one `bash`, in a sandbox: the working directory is a copy of
//!   the checkout's `examples/` (as `examples/`), `/tmp` and `/var/lib/kiln` are the
//!   sandbox's own (rewritten in commands, mapped back in output), `KILN_ROOT` defaults to
//!   the sandbox's `/var/lib/kiln`, and `kiln` is the binary under test. Afterwards every
//!   state root the session made is emptied with `kiln rm -f` and `kiln network rm` and
//!   must then be clean (see [`Root`]).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use regex::{Captures, Regex};

use super::files::repo;
use super::markdown::{self, Block};
use super::root::Root;

/// How long one command may take.
const COMMAND_PATIENCE: Duration = Duration::from_secs(300);

/// How long a command of an `eventually` block is run again until it prints the book's.
const EVENTUALLY: Duration = Duration::from_secs(30);

/// What the shell prints after each command: this byte, the exit status, a newline.
const DONE: u8 = 0x1e;

/// A page of the book, as its sessions see it.
pub struct Page {
    /// Relative to `book/src`, as `continues:` names it.
    pub name: String,
    /// The page this one continues, if any.
    pub continues: Option<String>,
    pub steps: Vec<Step>,
    /// Console blocks that are not run, with why: `(place, reason)`.
    pub unchecked: Vec<(String, String)>,
    /// Host ports the book shows that stand for free ports the runner picks.
    pub ports: Vec<u16>,
}

/// One thing a page does, in its order.
pub enum Step {
    /// A block that is the file `path`.
    File { path: String, text: String },
    /// A console block that runs.
    Console {
        commands: Vec<Typed>,
        unordered: bool,
        eventually: bool,
    },
}

/// A command as the book types it, and what the book shows it print.
pub struct Typed {
    /// `book/src/PAGE.md:LINE` of the command.
    pub place: String,
    pub command: String,
    /// Typed at a `#` prompt.
    pub root: bool,
    pub expected: Vec<String>,
}

impl Page {
    /// Whether any command runs at a root prompt.
    pub fn needs_root(&self) -> bool {
        self.steps.iter().any(|s| match s {
            Step::Console { commands, .. } => commands.iter().any(|c| c.root),
            Step::File { .. } => false,
        })
    }

    /// Whether the page runs anything.
    pub fn runs(&self) -> bool {
        self.steps.iter().any(|s| matches!(s, Step::Console { .. }))
    }
}

/// The page `book/src/NAME`; panics on a malformed directive.
pub fn page(name: &str) -> Page {
    let path = repo().join("book/src").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let continues = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("<!-- continues:")
            .and_then(|c| c.strip_suffix("-->"))
            .map(|c| c.trim().to_string())
    });
    let ports = text
        .lines()
        .filter_map(|l| {
            let port = l.trim().strip_prefix("<!-- port:")?.strip_suffix("-->")?;
            Some(
                port.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: `port:` names a port number")),
            )
        })
        .collect();
    let mut page = Page {
        name: name.to_string(),
        continues,
        steps: Vec::new(),
        unchecked: Vec::new(),
        ports,
    };
    for block in markdown::blocks(&path) {
        page.read_block(block);
    }
    page
}

/// Every page of the book (its name relative to `book/src`).
pub fn page_names() -> Vec<String> {
    let src = repo().join("book/src");
    markdown::book_pages()
        .iter()
        .map(|p| {
            p.strip_prefix(&src)
                .expect("a page of book/src")
                .display()
                .to_string()
        })
        .collect()
}

impl Page {
    fn read_block(&mut self, block: Block) {
        let place = block.place();
        let mut unordered = false;
        let mut eventually = false;
        let mut unchecked = None;
        for directive in &block.directives {
            if let Some(path) = directive.strip_prefix("file:") {
                self.steps.push(Step::File {
                    path: path.trim().to_string(),
                    text: block.text.clone(),
                });
            } else if let Some(reason) = directive.strip_prefix("unchecked:") {
                assert!(
                    !reason.trim().is_empty(),
                    "{place}: `unchecked:` says why the block is not run"
                );
                unchecked = Some(reason.trim().to_string());
            } else if directive == "unordered" {
                unordered = true;
            } else if directive == "eventually" {
                eventually = true;
            } else if !directive.starts_with("continues:") && !directive.starts_with("port:") {
                panic!(
                    "{place}: unknown directive `{directive}` (see tests/it/harness/console.rs)"
                );
            }
        }
        if block.language() != "console" {
            assert!(
                unchecked.is_none() && !unordered && !eventually,
                "{place}: `unchecked`, `unordered` and `eventually` are for console blocks"
            );
            return;
        }
        if let Some(reason) = unchecked {
            self.unchecked.push((place, reason));
            return;
        }
        let commands = commands(&block);
        assert!(
            !commands.is_empty(),
            "{place}: a console block without a command"
        );
        self.steps.push(Step::Console {
            commands,
            unordered,
            eventually,
        });
    }
}

/// The commands of a console block, each with the lines it prints.
fn commands(block: &Block) -> Vec<Typed> {
    let mut out: Vec<Typed> = Vec::new();
    let mut lines = block.text.lines().enumerate().peekable();
    while let Some((i, line)) = lines.next() {
        let prompt = ["$ ", "# "].into_iter().find(|p| line.starts_with(p));
        match prompt {
            Some(prompt) => {
                let mut command = line[prompt.len()..].to_string();
                while continues(&command) {
                    let Some((_, next)) = lines.next() else {
                        panic!("{}: the command never ends", block.place());
                    };
                    command.push('\n');
                    command.push_str(next);
                }
                out.push(Typed {
                    place: format!(
                        "{}:{}",
                        block
                            .file
                            .strip_prefix(repo())
                            .unwrap_or(&block.file)
                            .display(),
                        block.line + 1 + i
                    ),
                    command,
                    root: prompt == "# ",
                    expected: Vec::new(),
                });
            }
            None => match out.last_mut() {
                Some(typed) => typed.expected.push(line.to_string()),
                None => panic!(
                    "{}: output before the first command: {line:?}",
                    block.place()
                ),
            },
        }
    }
    for typed in &mut out {
        while typed.expected.last().is_some_and(|l| l.trim().is_empty()) {
            typed.expected.pop();
        }
    }
    out
}

/// Whether a shell command typed so far goes on on the next line: a trailing `\`, or an
/// open quote.
fn continues(command: &str) -> bool {
    if command.ends_with('\\') {
        return true;
    }
    let mut quote = None;
    let mut chars = command.chars().peekable();
    let mut previous = ' ';
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '#') if previous.is_whitespace() => {
                // A comment: to the end of its line.
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (None, '\'' | '"') => quote = Some(c),
            (None | Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        previous = c;
    }
    quote.is_some()
}

/// A hex string that stands for itself only on the machine that printed it.
fn hex() -> &'static Regex {
    static HEX: OnceLock<Regex> = OnceLock::new();
    HEX.get_or_init(|| Regex::new("[0-9a-f]{8,}").expect("a regex"))
}

/// What differs from run to run, replaced by its kind on both sides of a comparison.
fn redactions() -> &'static [(Regex, &'static str)] {
    static REDACTIONS: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    REDACTIONS.get_or_init(|| {
        [
            (
                r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
                "[TIME]",
            ),
            (
                r"\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]?\d \d\d:\d\d\b",
                "[DATE]",
            ),
            (r"\b\d+m\d+\.\d+s\b", "[DURATION]"),
            (r"\b\d+\.\d+ ?(ns|µs|us|ms|s)\b", "[DURATION]"),
            (r"\b\d+\.\d+%", "[PERCENT]"),
            (r"\b\d+(\.\d+)? ?(B|kB|MB|GB|KiB|MiB|GiB|KB)\b", "[SIZE]"),
            (r#""size": \d+"#, r#""size": [SIZE]"#),
        ]
        .into_iter()
        .map(|(pattern, kind)| (Regex::new(pattern).expect("a regex"), kind))
        .collect()
    })
}

/// A line as compared: trailing space gone, runs of spaces one, varying values redacted.
fn normalize(line: &str) -> String {
    let mut line = line.split_whitespace().collect::<Vec<_>>().join(" ");
    for (pattern, kind) in redactions() {
        line = pattern.replace_all(&line, *kind).into_owned();
    }
    line
}

/// What the book's hex strings stand for on this machine.
#[derive(Clone, Default)]
struct Bindings(HashMap<String, String>);

impl Bindings {
    /// Whether `book` may stand for `actual`: the same length, and consistent with what is
    /// bound (a string the book shows again stands for the same one; a prefix of a bound
    /// one for its prefix; two different ones never for the same).
    fn allows(&self, book: &str, actual: &str) -> bool {
        if book.len() != actual.len() {
            return false;
        }
        if let Some(bound) = self.0.get(book) {
            return bound == actual;
        }
        for (known, bound) in &self.0 {
            // Two strings of the book never stand for the same one.
            if bound == actual {
                return false;
            }
            if known.starts_with(book) && !bound.starts_with(actual) {
                return false;
            }
            if book.starts_with(known.as_str()) && !actual.starts_with(bound.as_str()) {
                return false;
            }
        }
        true
    }

    /// The real form of `book` as far as it is known (a bound string, or the prefix of a
    /// bound longer one), or `book` itself.
    fn real(&self, book: &str) -> String {
        if let Some(bound) = self.0.get(book) {
            return bound.clone();
        }
        for (known, bound) in &self.0 {
            if known.starts_with(book) {
                return bound[..book.len()].to_string();
            }
        }
        book.to_string()
    }
}

/// Whether the book's line `expected` matches the printed `actual` (both normalized); binds
/// the hex strings on success.
fn line_matches(expected: &str, actual: &str, bindings: &mut Bindings) -> bool {
    // The expected line as a regex: literal text, `…` any text, hex strings captured.
    let mut pattern = String::from("^");
    let mut books = Vec::new();
    for (i, piece) in expected.split('…').enumerate() {
        if i > 0 {
            pattern.push_str(".*?");
        }
        let mut last = 0;
        for found in hex().find_iter(piece) {
            pattern.push_str(&regex::escape(&piece[last..found.start()]));
            pattern.push_str(&format!("([0-9a-f]{{{}}})", found.len()));
            books.push(found.as_str().to_string());
            last = found.end();
        }
        pattern.push_str(&regex::escape(&piece[last..]));
    }
    pattern.push('$');
    let regex = Regex::new(&pattern).expect("an escaped pattern");
    let Some(captures) = regex.captures(actual) else {
        return false;
    };
    bind(&books, &captures, bindings)
}

fn bind(books: &[String], captures: &Captures<'_>, bindings: &mut Bindings) -> bool {
    let mut trial = bindings.clone();
    for (i, book) in books.iter().enumerate() {
        let actual = &captures[i + 1];
        if !trial.allows(book, actual) {
            return false;
        }
        trial.0.insert(book.clone(), actual.to_string());
    }
    *bindings = trial;
    true
}

/// Whether the printed lines match the book's, in order (`…` lines stand for any lines).
fn ordered(expected: &[String], actual: &[String], bindings: &mut Bindings) -> bool {
    let Some((first, rest)) = expected.split_first() else {
        return actual.is_empty();
    };
    if first == "…" {
        for skip in 0..=actual.len() {
            let mut trial = bindings.clone();
            if ordered(rest, &actual[skip..], &mut trial) {
                *bindings = trial;
                return true;
            }
        }
        return false;
    }
    let Some((line, others)) = actual.split_first() else {
        return false;
    };
    let mut trial = bindings.clone();
    if line_matches(first, line, &mut trial) && ordered(rest, others, &mut trial) {
        *bindings = trial;
        return true;
    }
    false
}

/// Whether the printed lines match the book's in any order (a `…` line allows more).
fn unordered(expected: &[String], actual: &[String], bindings: &mut Bindings) -> bool {
    let extra_allowed = expected.iter().any(|l| l == "…");
    let mut left: Vec<&String> = actual.iter().collect();
    let mut trial = bindings.clone();
    for line in expected.iter().filter(|l| *l != "…") {
        let Some(at) = left.iter().position(|a| line_matches(line, a, &mut trial)) else {
            return false;
        };
        left.remove(at);
    }
    if !left.is_empty() && !extra_allowed {
        return false;
    }
    *bindings = trial;
    true
}

/// The book's lines against the printed ones, as a line diff (` ` both, `-` the book's
/// only, `+` printed only); lines compare as the matcher compares them.
fn diff(book: &[String], printed: &[&str], bindings: &Bindings) -> String {
    let same = |b: &String, p: &str| {
        b.trim() == "…" || line_matches(&normalize(b), &normalize(p), &mut bindings.clone())
    };
    // Longest common subsequence, then walk it.
    let (n, m) = (book.len(), printed.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if same(&book[i], printed[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < n || j < m {
        if i < n && j < m && same(&book[i], printed[j]) {
            out.push(format!("  {}", printed[j]));
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", printed[j]));
            j += 1;
        } else {
            out.push(format!("- {}", book[i]));
            i += 1;
        }
    }
    out.join("\n")
}

/// `text` with the number `from` (a whole word) written as `to`.
fn replace_number(text: &str, from: u16, to: u16) -> String {
    let word = Regex::new(&format!(r"\b{from}\b")).expect("a regex");
    word.replace_all(text, to.to_string().as_str()).into_owned()
}

/// A shell in a sandbox, running a chain of pages' sessions.
pub struct Session {
    sandbox: tempfile::TempDir,
    shell: Child,
    input: ChildStdin,
    output: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    bindings: Bindings,
    /// The book's host ports and the free ones that stand for them: `(book, real)`.
    ports: Vec<(u16, u16)>,
    /// Whether [`Session::finish`] emptied the state roots (else dropping does).
    finished: bool,
}

impl Session {
    pub fn new() -> Session {
        let sandbox = tempfile::tempdir().expect("a sandbox");
        let s = sandbox.path();
        for dir in ["checkout", "tmp", "var/lib/kiln", "home"] {
            std::fs::create_dir_all(s.join(dir)).expect("sandbox directories");
        }
        let copied = Command::new("cp")
            .arg("-a")
            .arg(repo().join("examples"))
            .arg(s.join("checkout"))
            .status()
            .expect("cp runs");
        assert!(copied.success(), "copying examples/ into the sandbox");
        let kiln = PathBuf::from(env!("CARGO_BIN_EXE_kiln"));
        let path = std::env::join_paths(
            std::iter::once(kiln.parent().expect("a directory").to_path_buf()).chain(
                std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
            ),
        )
        .expect("a PATH");
        let mut shell = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(s.join("checkout"))
            .env_clear()
            .env("PATH", path)
            .env("HOME", s.join("home"))
            .env("TMPDIR", s.join("tmp"))
            .env("KILN_ROOT", s.join("var/lib/kiln"))
            .env(super::kiln::LOOPBACK_ONLY, "1")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100")
            .env("LANG", "C.UTF-8")
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("bash runs");
        let mut stdout = shell.stdout.take().expect("stdout");
        let (sender, output) = channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 8192];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 || sender.send(buffer[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let mut input = shell.stdin.take().expect("stdin");
        input
            .write_all(b"exec 2>&1\nshopt -s expand_aliases\n__kiln_restore() { return $1; }\n")
            .expect("bash reads");
        Session {
            sandbox,
            shell,
            input,
            output,
            pending: Vec::new(),
            bindings: Bindings::default(),
            ports: Vec::new(),
            finished: false,
        }
    }

    /// The sandbox's path, as text.
    fn sandbox(&self) -> String {
        self.sandbox.path().display().to_string()
    }

    /// A path or command of the book, as it runs in the sandbox.
    fn inward(&self, text: &str) -> String {
        static OUTSIDE: OnceLock<Regex> = OnceLock::new();
        let outside =
            OUTSIDE.get_or_init(|| Regex::new(r"(/tmp|/var/lib/kiln)\b").expect("a regex"));
        let sandbox = self.sandbox();
        let text = hex()
            .replace_all(text, |c: &Captures<'_>| self.bindings.real(&c[0]))
            .into_owned();
        let text = outside
            .replace_all(&text, |c: &Captures<'_>| format!("{sandbox}{}", &c[1]))
            .into_owned();
        self.ports.iter().fold(text, |text, (book, real)| {
            replace_number(&text, *book, *real)
        })
    }

    /// What the sandbox printed, as the book would show it.
    fn outward(&self, text: &str) -> String {
        let sandbox = self.sandbox();
        let text = text
            .replace(&format!("{sandbox}/checkout/"), "")
            .replace(&sandbox, "");
        self.ports.iter().fold(text, |text, (book, real)| {
            replace_number(&text, *real, *book)
        })
    }

    /// Runs `command` in the shell; what it printed (stdout and stderr) and its status.
    fn run(&mut self, command: &str) -> Result<(String, String), String> {
        // The status is printed after the marker, then restored, so that the book's next
        // command can look at `$?`.
        let script = format!(
            "{{ {command}\n}} </dev/null\n__kiln_status=$?\nprintf '\\036%s\\n' \"$__kiln_status\"\n__kiln_restore $__kiln_status\n"
        );
        self.input
            .write_all(script.as_bytes())
            .map_err(|e| format!("the shell is gone: {e}"))?;
        let deadline = Instant::now() + COMMAND_PATIENCE;
        loop {
            if let Some(at) = self.pending.iter().position(|b| *b == DONE)
                && let Some(end) = self.pending[at..].iter().position(|b| *b == b'\n')
            {
                let printed = String::from_utf8_lossy(&self.pending[..at]).into_owned();
                let status = String::from_utf8_lossy(&self.pending[at + 1..at + end]).into_owned();
                self.pending.drain(..at + end + 1);
                return Ok((printed, status));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(bytes) => self.pending.extend(bytes),
                Err(RecvTimeoutError::Timeout) => {
                    return Err(format!(
                        "still running after {COMMAND_PATIENCE:?}; printed so far:\n{}",
                        String::from_utf8_lossy(&self.pending)
                    ));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err("the shell exited".to_string());
                }
            }
        }
    }

    /// Writes the file a `file:` block is.
    fn write(&self, path: &str, text: &str) {
        let path = if path.starts_with('/') {
            PathBuf::from(self.inward(path))
        } else {
            self.sandbox.path().join("checkout").join(path)
        };
        let text = self
            .ports
            .iter()
            .fold(text.to_string(), |text, (book, real)| {
                replace_number(&text, *book, *real)
            });
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }

    /// Runs the page's steps; a description of each command whose output differs from
    /// the book's.
    pub fn run_page(&mut self, page: &Page) -> Vec<String> {
        for port in &page.ports {
            if !self.ports.iter().any(|(book, _)| book == port) {
                self.ports.push((*port, super::host::free_port()));
            }
        }
        let mut problems = Vec::new();
        for step in &page.steps {
            match step {
                Step::File { path, text, .. } => self.write(path, text),
                Step::Console {
                    commands,
                    unordered: any_order,
                    eventually,
                } => {
                    for typed in commands {
                        let deadline = Instant::now() + EVENTUALLY;
                        let problem = loop {
                            let problem = self.check(typed, *any_order);
                            if problem.is_none() || !eventually || Instant::now() > deadline {
                                break problem;
                            }
                            std::thread::sleep(Duration::from_millis(500));
                        };
                        problems.extend(problem);
                    }
                }
            }
        }
        problems
    }

    /// Runs one command and compares; a description when it differs.
    fn check(&mut self, typed: &Typed, any_order: bool) -> Option<String> {
        let command = self.inward(&typed.command);
        let (printed, status) = match self.run(&command) {
            Ok(done) => done,
            Err(why) => return Some(format!("{}: `{}`: {why}", typed.place, typed.command)),
        };
        let printed = self.outward(&printed);
        let mut actual: Vec<String> = printed.lines().map(normalize).collect();
        while actual.last().is_some_and(|l| l.is_empty()) {
            actual.pop();
        }
        let expected: Vec<String> = typed.expected.iter().map(|l| normalize(l)).collect();
        let mut bindings = self.bindings.clone();
        let same = if any_order {
            unordered(&expected, &actual, &mut bindings)
        } else {
            ordered(&expected, &actual, &mut bindings)
        };
        if same {
            self.bindings = bindings;
            return None;
        }
        let printed: Vec<&str> = printed.trim_end().lines().collect();
        Some(format!(
            "{}: `{}` (exit {status}) printed something else (- the book, + kiln):\n{}",
            typed.place,
            typed.command,
            diff(&typed.expected, &printed, &self.bindings)
        ))
    }

    /// The state roots the sessions made: directories of the sandbox with a store or
    /// container records.
    fn roots(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
            if dir.join("store/oci-layout").is_file()
                || (dir.join("containers").is_dir() && dir.join("layers").is_dir())
            {
                out.push(dir.to_path_buf());
            }
            if depth == 0 {
                return;
            }
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&entry.path(), depth - 1, out);
                }
            }
        }
        let mut roots = Vec::new();
        walk(&self.sandbox.path().join("tmp"), 2, &mut roots);
        walk(&self.sandbox.path().join("var/lib/kiln"), 0, &mut roots);
        roots
    }

    /// Empties every state root the sessions made; what is left of them after that.
    pub fn finish(&mut self) -> Vec<String> {
        self.finished = true;
        let mut left = Vec::new();
        for path in self.roots() {
            let root = Root::adopt(&path);
            root.clean_up();
            let path = self.outward(&path.display().to_string());
            left.extend(
                root.settled_leftovers()
                    .into_iter()
                    .map(|l| format!("{path}: {l}")),
            );
        }
        left
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A test that failed half-way still leaves no container running.
        if !self.finished {
            for path in self.roots() {
                Root::adopt(&path).clean_up();
            }
        }
        // The shell and whatever it left in the background: its own process group.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(self.shell.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = self.shell.wait();
    }
}

/// The pages of a chain: `first` and every page that continues it (transitively), in the
/// order they continue each other.
pub fn chain(first: &str) -> Vec<Page> {
    let pages: Vec<Page> = page_names().iter().map(|n| page(n)).collect();
    let mut chain = Vec::new();
    let mut next = Some(first.to_string());
    while let Some(name) = next.take() {
        let position = pages.iter().position(|p| p.name == name);
        let Some(position) = position else {
            panic!("no page {name}");
        };
        next = pages
            .iter()
            .find(|p| p.continues.as_deref() == Some(name.as_str()))
            .map(|p| p.name.clone());
        chain.push(position);
    }
    let mut pages: Vec<Option<Page>> = pages.into_iter().map(Some).collect();
    chain
        .into_iter()
        .map(|i| pages[i].take().expect("each page once"))
        .collect()
}

/// Runs the chain of pages that starts at `first` in one session; fails the test with every
/// difference. Pages with a root prompt need root (see [`is_root`](super::is_root)).
pub fn check_chain(first: &str) {
    let chain = chain(first);
    assert!(
        chain[0].continues.is_none(),
        "{first} continues another page"
    );
    if chain.iter().any(Page::needs_root) && !super::is_root() {
        return;
    }
    let mut session = Session::new();
    let mut problems = Vec::new();
    for page in &chain {
        problems.extend(session.run_page(page));
    }
    let left = session.finish();
    assert!(
        problems.is_empty(),
        "{} console example(s) differ from what kiln prints:\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
    assert!(
        left.is_empty(),
        "kiln left behind, after `kiln rm -f` and `kiln network rm` of everything:\n{}",
        left.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(normalize).collect()
    }

    #[test]
    fn matching_redacts_binds_and_skips() {
        let mut b = Bindings::default();
        assert!(ordered(
            &lines("built 4 images in 0.61s\nweb  sha256:550128d627a4dddf\n…\nend"),
            &lines("built 4 images in 1.20s\nweb sha256:0123456789abcdef\na\nb\nend"),
            &mut b
        ));
        assert_eq!(b.real("550128d627a4dddf"), "0123456789abcdef");
        assert_eq!(b.real("550128d627a4"), "0123456789ab");
        // Bound: the same book string must stand for the same real one.
        assert!(!ordered(
            &lines("web sha256:550128d627a4dddf"),
            &lines("web sha256:fedcba9876543210"),
            &mut b
        ));
        assert!(ordered(
            &lines("pid … on the host"),
            &lines("pid 1234 on the host"),
            &mut b
        ));
        assert!(!ordered(&lines("a\nb"), &lines("a"), &mut b));
        assert!(!ordered(&lines("a"), &lines("a\nseccomp"), &mut b));
        assert!(unordered(&lines("b\na"), &lines("a\nb"), &mut b));
        assert!(!unordered(&lines("b\na"), &lines("a\nb\nc"), &mut b));
    }

    #[test]
    fn commands_go_on_while_a_quote_is_open() {
        assert!(continues("kiln exec client python3 -c '"));
        assert!(continues("run \\"));
        assert!(!continues("echo 'a' \"b\" # it's a comment"));
        assert!(!continues("echo \"it's\""));
    }
}
