//! The command line: clap definitions, dispatch and output formats.
//!
//! Owns argument parsing (the one definition `--help` and the book's CLI page come from),
//! choosing text or JSON, and the exit code. It must not hold domain logic: each command
//! calls into the library and renders what comes back.

mod args;
mod check;

use std::ffi::OsString;
use std::io::IsTerminal;

use clap::Parser;

pub use args::{Cli, Command, OutputFormat};

/// Runs kiln with the given arguments (the first is the program name) and returns the exit
/// code. `Err` is for failures that stop a command; problems in kiln.kdl are reported by the
/// command itself and give exit code 1.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<u8, crate::Error> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with exit 0, usage errors to stderr with 2.
            err.print().ok();
            return Ok(if err.use_stderr() { 2 } else { 0 });
        }
    };
    match &cli.command {
        Command::Check(args) => check::run(&cli, args),
    }
}

/// Whether diagnostics on stderr get colours.
pub(crate) fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Terminal width for rendering, 100 when not a terminal (stable output in files and CI).
pub(crate) fn render_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}
