//! The `kiln` binary, run fluently, and what it did.
//!
//! ```ignore
//! Kiln::new().args(["check", "-f", path]).run().success().stdout_contains("1 image");
//! ```

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub struct Kiln {
    command: Command,
    shown: Vec<String>,
    /// `-f FILE`, given right after the subcommand when it reads a project.
    project_file: Option<OsString>,
    /// The subcommand has been given: later arguments are its own (`kiln exec web test
    /// -e /dev/null` runs `test`, it is not the subcommand `kiln test`).
    subcommand_given: bool,
    stdin: Option<Vec<u8>>,
}

/// Whether subcommand `name` reads a project file (`-f/--file`), as clap defines it.
fn reads_a_project(name: &str) -> bool {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES
        .get_or_init(|| {
            use clap::CommandFactory;
            kiln::cli::Cli::command()
                .get_subcommands()
                .filter(|c| c.get_arguments().any(|a| a.get_long() == Some("file")))
                .map(|c| c.get_name().to_string())
                .collect()
        })
        .iter()
        .any(|n| n == name)
}

/// The variable that confines kiln's registry traffic to loopback (`src/registry/tls.rs`):
/// every kiln a test starts has it, so no test can reach a registry outside the machine.
pub const LOOPBACK_ONLY: &str = "KILN_REGISTRY_LOOPBACK_ONLY";

impl Kiln {
    /// `kiln`, without colour, 100 columns wide, without `KILN_ROOT` from outside, and
    /// with registries on loopback only ([`LOOPBACK_ONLY`]): a bare name kiln would pull
    /// (`kiln run nope` is `docker.io/library/nope`) fails before any lookup instead of
    /// reaching Docker Hub.
    pub fn new() -> Kiln {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .env_remove("KILN_ROOT")
            .env(LOOPBACK_ONLY, "1")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        Kiln {
            command,
            shown: vec!["kiln".into()],
            project_file: None,
            subcommand_given: false,
            stdin: None,
        }
    }

    /// Runs the kiln executable at `path` (a copy of kiln elsewhere) instead of the one
    /// cargo built, with what was given so far.
    pub fn program(mut self, path: impl AsRef<Path>) -> Kiln {
        let mut command = Command::new(path.as_ref());
        command.args(self.command.get_args());
        for (key, value) in self.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        if let Some(dir) = self.command.get_current_dir() {
            command.current_dir(dir);
        }
        self.command = command;
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Kiln
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            let text = a.as_ref().to_string_lossy().into_owned();
            let value_of_root = self.shown.last().is_some_and(|l| l == "--root");
            self.shown.push(text.clone());
            self.command.arg(a);
            if self.subcommand_given || text.starts_with('-') || value_of_root {
                continue;
            }
            self.subcommand_given = true;
            if reads_a_project(&text)
                && let Some(file) = self.project_file.take()
            {
                self.shown.push("-f".into());
                self.shown.push(file.to_string_lossy().into_owned());
                self.command.arg("-f").arg(file);
            }
        }
        self
    }

    /// Uses `dir` as the state root (`KILN_ROOT`).
    pub fn root(mut self, dir: impl AsRef<Path>) -> Kiln {
        self.command.env("KILN_ROOT", dir.as_ref());
        self
    }

    /// Gives `-f FILE` to the next subcommand that reads a project.
    pub fn project(mut self, file: impl Into<OsString>) -> Kiln {
        self.project_file = Some(file.into());
        self
    }

    pub fn env(mut self, key: &str, value: impl AsRef<OsStr>) -> Kiln {
        self.command.env(key, value);
        self
    }

    /// Runs kiln as another user (`uid`, `gid`, no supplementary groups: the standard
    /// library drops them when root changes the uid), for what works without root.
    pub fn user(mut self, uid: u32, gid: u32) -> Kiln {
        use std::os::unix::process::CommandExt;
        self.command.uid(uid).gid(gid);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Kiln {
        self.command.current_dir(dir);
        self
    }

    /// Runs kiln inside the network namespace pinned at `pin` (it enters it between fork
    /// and exec): for tests where a namespace of theirs plays the machine (see `World`).
    pub fn netns(mut self, pin: &Path) -> Kiln {
        use std::os::unix::process::CommandExt;
        let ns = std::fs::File::open(pin).expect("a pinned network namespace");
        // SAFETY: the closure runs between fork and exec and only calls setns(2), which is
        // async-signal-safe; it allocates nothing.
        unsafe {
            self.command.pre_exec(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)
            });
        }
        self
    }

    /// Feeds `input` to kiln's stdin (otherwise stdin is empty).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Kiln {
        self.stdin = Some(input.into());
        self
    }

    /// The command as configured, for a test that streams its output or signals it.
    pub fn command(self) -> Command {
        self.command
    }

    pub fn run(mut self) -> Ran {
        let output = match self.stdin.take() {
            None => self
                .command
                .stdin(Stdio::null())
                .output()
                .expect("kiln runs"),
            Some(input) => {
                let mut child = self
                    .command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("kiln runs");
                child
                    .stdin
                    .take()
                    .expect("stdin")
                    .write_all(&input)
                    .expect("writing kiln's stdin");
                child.wait_with_output().expect("kiln finishes")
            }
        };
        Ran {
            output,
            shown: self.shown.join(" "),
        }
    }
}

/// The outcome of one kiln run, with assertions that print everything on failure.
pub struct Ran {
    pub output: Output,
    shown: String,
}

impl Ran {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// Whether it exited 0 (for polling; assertions use [`Ran::success`]).
    pub fn ok(&self) -> bool {
        self.output.status.success()
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "`{}`: {what}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.shown,
            self.output.status.code(),
            self.stdout(),
            self.stderr()
        )
    }

    pub fn code(self, code: i32) -> Ran {
        if self.output.status.code() != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    pub fn success(self) -> Ran {
        self.code(0)
    }

    pub fn failure(self) -> Ran {
        self.code(1)
    }

    pub fn stdout_contains(self, text: &str) -> Ran {
        if !self.stdout().contains(text) {
            self.fail(&format!("stdout lacks {text:?}"));
        }
        self
    }

    pub fn stderr_contains(self, text: &str) -> Ran {
        if !self.stderr().contains(text) {
            self.fail(&format!("stderr lacks {text:?}"));
        }
        self
    }

    /// Stderr as one line: miette's wrapping and its `│` gutters undone, whitespace
    /// collapsed, so a long message can be checked whole.
    pub fn message(&self) -> String {
        self.stderr()
            .replace(['│', '╰', '─', '▶', '×'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Whether stderr, as one line (see [`Ran::message`]), says `text`.
    pub fn says(self, text: &str) -> Ran {
        if !self.message().contains(text) {
            self.fail(&format!("stderr does not say {text:?}"));
        }
        self
    }

    pub fn stdout_is(self, text: &str) -> Ran {
        if self.stdout() != text {
            self.fail(&format!("stdout is not {text:?}"));
        }
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout())
            .unwrap_or_else(|e| self.fail(&format!("stdout is not one JSON value: {e}")))
    }

    /// The `name` of every object of the JSON array on stdout (`ps --format json`,
    /// `volume ls --format json`), sorted.
    pub fn names(&self) -> Vec<String> {
        let listed = self.json();
        let Some(items) = listed.as_array() else {
            self.fail("stdout is not a JSON array")
        };
        let mut names: Vec<String> = items
            .iter()
            .map(|item| match item["name"].as_str() {
                Some(name) => name.to_string(),
                None => self.fail(&format!("an entry without a name: {item}")),
            })
            .collect();
        names.sort();
        names
    }

    /// Stdout, trimmed: what `run -d` and `commit` print is one word.
    pub fn word(&self) -> String {
        self.stdout().trim().to_string()
    }
}
