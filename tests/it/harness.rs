//! A fluent harness around the `kiln` binary.
//!
//! ```ignore
//! Kiln::new().args(["check", "-f", path]).run().success().stdout_contains("1 image");
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where Cargo.toml is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether golden files should be rewritten instead of compared.
pub fn bless() -> bool {
    std::env::var_os("KILN_BLESS").is_some()
}

/// Compares `actual` with the golden file at `path` (or rewrites it when blessing).
pub fn assert_golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KILN_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output (run with KILN_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

pub struct Kiln {
    command: Command,
    stdin: Option<Vec<u8>>,
    shown: Vec<String>,
    /// `-f FILE`, given right after the subcommand when it reads a project.
    project_file: Option<std::ffi::OsString>,
}

/// The subcommands that take `-f FILE`.
const PROJECT_COMMANDS: [&str; 7] = ["check", "build", "explain", "graph", "up", "down", "test"];

impl Kiln {
    pub fn new() -> Kiln {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kiln"));
        command
            .env_remove("KILN_ROOT")
            .env("NO_COLOR", "1")
            .env("COLUMNS", "100");
        Kiln {
            command,
            stdin: None,
            shown: vec!["kiln".into()],
            project_file: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Kiln
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for a in args {
            let text = a.as_ref().to_string_lossy().into_owned();
            self.shown.push(text.clone());
            self.command.arg(a);
            if PROJECT_COMMANDS.contains(&text.as_str())
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

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Kiln {
        self.command.env(key, value);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Kiln {
        self.command.current_dir(dir);
        self
    }

    /// Feeds `bytes` to kiln's standard input.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Kiln {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> Ran {
        let output = match self.stdin.take() {
            None => self.command.output().expect("kiln runs"),
            Some(bytes) => {
                use std::io::Write;
                use std::process::Stdio;
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
                    .expect("piped")
                    .write_all(&bytes)
                    .expect("writing kiln's stdin");
                child.wait_with_output().expect("kiln runs")
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
}

/// A project in a temporary directory: kiln.kdl plus whatever files a test writes.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new(kdl: &str) -> Project {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("kiln.kdl"), kdl).expect("writing kiln.kdl");
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(self, relative: &str, content: &str) -> Project {
        self.write(relative, content);
        self
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("writing a project file");
    }

    /// `kiln -f <project>/kiln.kdl` with `root` as the state root.
    pub fn kiln(&self, root: &Path) -> Kiln {
        let mut kiln = Kiln::new().root(root);
        kiln.project_file = Some(self.dir.path().join("kiln.kdl").into_os_string());
        kiln
    }
}

/// Whether the tests run as root (the build sandbox needs it; CI runs as root).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Whether an interop tool is installed; under CI (which installs them) it must be.
pub fn which(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    assert!(
        found || std::env::var_os("CI").is_none(),
        "{program} is missing: .ci/run installs it"
    );
    if !found {
        eprintln!("note: {program} is not installed; its check is skipped");
    }
    found
}

/// Runs a command that must succeed; its stdout. On failure, panics with both outputs.
pub fn checked(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
