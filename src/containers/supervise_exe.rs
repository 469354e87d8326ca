//! Which executable a supervisor is, and with which arguments: `kiln-supervise` (a small
//! program of its own, `src/bin/kiln-supervise.rs`) when it lies beside the running kiln,
//! else kiln itself as `kiln __supervise` (the same work, with all of kiln mapped). Both run
//! [`super::supervise_entry`].
//!
//! `kiln-supervise` is told the build it must be ([`BUILD_STAMP`], a hash of the sources
//! both executables are built from) and the kiln that started it: one left over from other
//! sources (`cargo run` builds `kiln` alone) hands over to that kiln's `__supervise` instead
//! of reading records a different kiln wrote. A supervisor runs with allocator settings
//! for a long life after a burst of start-up work ([`SUPERVISOR_TUNABLES`]). It does not
//! spawn anything: `detach` does.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The file name of the small supervisor executable.
pub const SUPERVISOR_EXE: &str = "kiln-supervise";

/// A hash of the sources this kiln is built from (see `build.rs`).
pub const BUILD_STAMP: &str = env!("KILN_BUILD_STAMP");

/// The program and arguments (argv, the first its name) that supervise container `id` of
/// the state root `root` (absolute), for the kiln executable `kiln`: `kiln-supervise
/// --root ROOT __supervise ID --build STAMP --kiln KILN` when an executable file of that name
/// lies beside `kiln`, else `kiln --root ROOT __supervise ID`.
pub fn supervisor_command(kiln: &Path, root: &Path, id: &str) -> (PathBuf, Vec<OsString>) {
    use std::os::unix::fs::PermissionsExt;
    let small = kiln.with_file_name(SUPERVISOR_EXE);
    let runnable =
        std::fs::metadata(&small).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    let exe = if runnable { small } else { kiln.to_path_buf() };
    let mut argv: Vec<OsString> = vec![
        exe.clone().into(),
        "--root".into(),
        root.into(),
        "__supervise".into(),
        id.into(),
    ];
    if runnable {
        argv.extend([
            "--build".into(),
            BUILD_STAMP.into(),
            "--kiln".into(),
            kiln.into(),
        ]);
    }
    (exe, argv)
}

/// The glibc allocator settings a supervisor runs with (`GLIBC_TUNABLES`; they can only be
/// set before the process starts): no per-thread cache of freed blocks (it holds them
/// apart, so the heap cannot be trimmed under them), one arena, blocks of 8 KiB and more
/// in mappings of their own. Measured: a supervisor's heap 184 kB without, 80 kB with.
pub const SUPERVISOR_TUNABLES: &str =
    "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=8192";

/// The environment (`KEY=VALUE`) a supervisor is started with: `vars` (kiln's own), with
/// [`SUPERVISOR_TUNABLES`] put before any `GLIBC_TUNABLES` of kiln's (whose settings then
/// win: a later tunable overrides an earlier one). The container's processes never see it:
/// they get the environment of their spec.
pub fn supervisor_environment(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<OsString> {
    let mut tunables = OsString::from(SUPERVISOR_TUNABLES);
    let mut env: Vec<OsString> = Vec::new();
    for (key, value) in vars {
        if key == "GLIBC_TUNABLES" {
            tunables.push(":");
            tunables.push(value);
            continue;
        }
        let mut pair = key;
        pair.push("=");
        pair.push(value);
        env.push(pair);
    }
    let mut pair = OsString::from("GLIBC_TUNABLES=");
    pair.push(tunables);
    env.push(pair);
    env
}

/// What `kiln-supervise` is asked to do (its arguments after the program name).
#[derive(Debug, PartialEq, Eq)]
pub enum Invocation {
    /// Supervise `id`: this executable is of the build kiln expects.
    Supervise { root: PathBuf, id: String },
    /// Another build than the kiln's that started it: that kiln's `__supervise` does it.
    HandOver { kiln: PathBuf, argv: Vec<OsString> },
}

/// Reads `kiln-supervise`'s arguments (after the program name), as [`supervisor_command`]
/// writes them, for an executable of build `stamp`; `None` for anything else.
pub fn invocation(args: &[OsString], stamp: &str) -> Option<Invocation> {
    let [flag, root, command, id, build_flag, build, kiln_flag, kiln] = args else {
        return None;
    };
    let expected = flag == "--root"
        && command == "__supervise"
        && build_flag == "--build"
        && kiln_flag == "--kiln";
    if !expected {
        return None;
    }
    Some(if build == OsStr::new(stamp) {
        Invocation::Supervise {
            root: root.into(),
            id: id.to_str()?.to_string(),
        }
    } else {
        Invocation::HandOver {
            kiln: kiln.into(),
            argv: vec![
                kiln.clone(),
                flag.clone(),
                root.clone(),
                command.clone(),
                id.clone(),
            ],
        }
    })
}

/// The whole of `kiln-supervise`: supervises as asked, or hands over to kiln (an `exec`,
/// keeping the report pipe). Returns the process's exit code when it does not exec.
pub fn supervise_main(args: &[OsString]) -> u8 {
    match invocation(args, BUILD_STAMP) {
        Some(Invocation::Supervise { root, id }) => super::supervise_entry(&root, &id),
        Some(Invocation::HandOver { kiln, argv }) => {
            let err = exec(&kiln, &argv);
            report_failure(&format!(
                "kiln-supervise is from another build than {} and could not run it: {err}; \
                 build both (cargo build)",
                kiln.display()
            ));
            125
        }
        None => {
            eprintln!(
                "kiln-supervise: started by kiln only, as `kiln-supervise --root ROOT \
                 __supervise ID --build STAMP --kiln KILN`"
            );
            2
        }
    }
}

/// Replaces this process with `program` run with `argv`; returns only on failure.
fn exec(program: &Path, argv: &[OsString]) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(program);
    command.arg0(&argv[0]).args(&argv[1..]);
    command.exec()
}

/// Tells the kiln waiting on the report pipe why no supervisor runs (the line
/// `detach` reads: `failed CODE MESSAGE`).
fn report_failure(message: &str) {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    // SAFETY: fcntl only queries the descriptor's flags; an invalid one gives an error.
    if unsafe { nix::libc::fcntl(super::REPORT_FD, nix::libc::F_GETFD) } < 0 {
        eprintln!("kiln-supervise: {message}");
        return;
    }
    // SAFETY: the starting kiln put the report pipe on this descriptor for this process
    // alone, and nothing else in it owns the descriptor (the process ends right after).
    let mut file = unsafe { std::fs::File::from_raw_fd(super::REPORT_FD) };
    let _ = writeln!(file, "failed 125 {}", message.replace('\n', " "));
}
