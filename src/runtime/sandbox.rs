//! Running a plan: prepare the scratch directory, clone the child into its namespaces, let
//! it execute the steps and exec the command, relay its reports and output, reap it, clean
//! up. The only place that creates processes.
//!
//! Child → parent protocol: a close-on-exec pipe of fixed 16-byte records (atomic writes,
//! far below PIPE_BUF). "Beginning step i" before each step, "failed: …" on failure. End
//! of file without a failure means execve succeeded (close-on-exec closed the pipe).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

use super::output::OutputTail;
use super::plan::{ScratchLayout, plan};
use super::sandbox_cgroup::{SandboxCgroup, interrupted};
use super::step::{Purpose, SetupPlan, SetupStep, namespace_names};
use super::sys::{ExecFailure, Failure, RealSys, execute};
use super::{
    InRootFailure, OUTPUT_TAIL_BYTES, SandboxError, SandboxOutcome, SandboxSpec, SandboxStatus,
};
use crate::inroot::{Create, How};

/// The child's stack until it execs. Its setup needs a few KiB; untouched pages cost
/// nothing.
const CHILD_STACK: usize = 256 * 1024;

/// Exit code of a child whose setup failed (it has reported why over the pipe).
const SETUP_FAILED: libc::c_int = 125;

/// What the sandbox tells the caller while it runs. Both methods default to doing nothing.
pub trait SandboxObserver {
    /// Each kernel-level step as it happens (for `--trace`).
    fn trace(&mut self, _event: &TraceEvent<'_>) {}
    /// Each line of the command's combined stdout and stderr, without its newline.
    fn output_line(&mut self, _line: &[u8]) {}
}

/// Observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl SandboxObserver for NoObserver {}

#[derive(Debug, Clone, Copy)]
pub enum TraceEvent<'a> {
    /// clone(2) created the child in these new namespaces.
    Namespaces {
        flags: CloneFlags,
        pid: i32,
    },
    /// The child is about to run this step.
    Step(&'a SetupStep),
    Exited(SandboxStatus),
}

impl std::fmt::Display for TraceEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TraceEvent::Namespaces { flags, pid } => {
                let names = namespace_names(*flags);
                write!(
                    f,
                    "clone: new {} namespaces (pid {pid} on the host)",
                    names.join(", ")
                )
            }
            TraceEvent::Step(step) => step.fmt(f),
            TraceEvent::Exited(status) => write!(f, "{status}"),
        }
    }
}

/// Runs `spec`'s command in a fresh sandbox and waits for it. `Ok` whenever the command
/// ran, whatever its exit status; `Err` when the sandbox could not be set up or the
/// command could not be executed (see [`SandboxError::exit_code`]).
pub fn run(
    spec: &SandboxSpec,
    observer: &mut dyn SandboxObserver,
) -> Result<SandboxOutcome, SandboxError> {
    let plan = plan(spec)?;
    let layout = ScratchLayout::new(&spec.scratch_dir);
    prepare_scratch(&layout)?;
    let result = match spec.cgroup.as_deref().map(SandboxCgroup::create) {
        None => run_plan(&plan, None, observer),
        Some(Err(err)) => Err(err),
        Some(Ok(cgroup)) => {
            let mut result = run_plan(&plan, Some(&cgroup), observer);
            if interrupted() {
                result = Err(SandboxError::Interrupted);
            }
            let removed = cgroup.remove();
            result.and_then(|outcome| removed.map(|()| outcome))
        }
    };
    let cleaned = clean_scratch(&layout);
    let outcome = result?;
    cleaned?;
    Ok(outcome)
}

/// Runs the plan; with `cgroup`, the child waits until it has been moved there.
fn run_plan(
    plan: &SetupPlan,
    cgroup: Option<&SandboxCgroup>,
    observer: &mut dyn SandboxObserver,
) -> Result<SandboxOutcome, SandboxError> {
    let (output_read, output_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
    let stdin = File::open("/dev/null").map_err(|source| SandboxError::Io {
        path: "/dev/null".into(),
        source,
    })?;
    let output_write = above_stdio(output_write).map_err(os("duplicate a descriptor"))?;
    let stdin = above_stdio(stdin.into()).map_err(os("duplicate a descriptor"))?;
    let io = ChildIo {
        stdin: stdin.as_raw_fd(),
        stdout: output_write.as_raw_fd(),
        stderr: output_write.as_raw_fd(),
    };
    let (sync_read, sync_write) = match cgroup {
        Some(_) => {
            let (read, write) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
            let read = above_stdio(read).map_err(os("duplicate a descriptor"))?;
            (Some(read), Some(write))
        }
        None => (None, None),
    };
    let (mut child, reports) = spawn(plan, &io, sync_read.as_ref().map(|fd| fd.as_raw_fd()))?;
    // Only the child may hold the write end, or end of file would never come.
    drop((output_write, stdin, sync_read));
    observer.trace(&TraceEvent::Namespaces {
        flags: plan.namespaces,
        pid: child.pid.as_raw(),
    });
    if let (Some(cgroup), Some(sync)) = (cgroup, sync_write) {
        // On an error the child is killed (dropped) before it ran any step.
        cgroup.attach(child.pid.as_raw())?;
        File::from(sync)
            .write_all(&[1])
            .map_err(|e| os("start the sandbox")(io_errno(&e)))?;
    }
    follow_reports(plan, &mut child, reports, &mut |event| {
        observer.trace(event)
    })?;

    let mut output = File::from(output_read);
    let mut tail = OutputTail::new(OUTPUT_TAIL_BYTES);
    let mut on_line = |line: &[u8]| observer.output_line(line);
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        match output.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => tail.push(&buffer[..n], &mut on_line),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(SandboxError::Os {
                    what: "read the command's output",
                    source: io_errno(&e),
                });
            }
        }
    }
    let output_tail = tail.finish(&mut on_line);
    let status = child.wait()?;
    observer.trace(&TraceEvent::Exited(status));
    Ok(SandboxOutcome {
        status,
        output_tail,
    })
}

pub(crate) fn os(what: &'static str) -> impl Fn(Errno) -> SandboxError {
    move |source| SandboxError::Os { what, source }
}

/// In a child between clone and exec: blocks until the parent writes its go-ahead byte on
/// `sync`; exits with 125 if the parent went away instead.
///
/// # Safety
/// Async-signal-safe only; `sync` must be an open descriptor.
pub(crate) unsafe fn await_go_ahead(sync: RawFd) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a local; the caller vouches for `sync`.
        let n = unsafe { libc::read(sync, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            return;
        }
        // SAFETY: errno is thread-local and always readable.
        if n < 0 && unsafe { *libc::__errno_location() } == libc::EINTR {
            continue;
        }
        // SAFETY: _exit is async-signal-safe and ends only this child.
        unsafe { libc::_exit(SETUP_FAILED) };
    }
}

/// In a child between clone and exec: `io` becomes stdin, stdout and stderr, and every other
/// descriptor is marked close-on-exec, so nothing of kiln's reaches the command.
///
/// # Safety
/// Async-signal-safe only; the `io` descriptors must be open.
pub(crate) unsafe fn take_stdio(io: &ChildIo) {
    // SAFETY: dup2 and close_range on descriptors the caller vouches for.
    unsafe {
        libc::dup2(io.stdin, 0);
        libc::dup2(io.stdout, 1);
        libc::dup2(io.stderr, 2);
        libc::close_range(
            3,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC as libc::c_int,
        );
    }
}

/// The descriptors the child moves to 0, 1 and 2; each must be 3 or above.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChildIo {
    pub(crate) stdin: RawFd,
    pub(crate) stdout: RawFd,
    pub(crate) stderr: RawFd,
}

/// Clones the child into `plan`'s namespaces. It runs the steps at once, or, given `sync`
/// (a pipe's read end), after the parent writes one byte to that pipe (end of file without
/// it: the child exits). Returns the child and the read end of its report pipe.
pub(crate) fn spawn(
    plan: &SetupPlan,
    io: &ChildIo,
    sync: Option<RawFd>,
) -> Result<(Child, File), SandboxError> {
    let (report_read, report_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
    // The child moves descriptors to 0, 1 and 2; the report pipe must not be one of them.
    let report_write = above_stdio(report_write).map_err(os("duplicate a descriptor"))?;
    let context = ChildContext {
        steps: &plan.steps,
        report: report_write.as_raw_fd(),
        io: *io,
        sync: sync.unwrap_or(-1),
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: without CLONE_VM the child runs on its own copy of `stack` and of everything
    // `context` borrows, so nothing it touches can change under it. It only calls
    // `child_main`, which neither allocates nor takes locks (see there), and it always
    // leaves by execve or _exit. The stack is far larger than that code needs.
    let pid = unsafe {
        nix::sched::clone(
            Box::new(|| child_main(&context)),
            &mut stack,
            plan.namespaces,
            Some(libc::SIGCHLD),
        )
    }
    .map_err(SandboxError::Spawn)?;
    drop((report_write, stack));
    Ok((Child { pid, reaped: false }, File::from(report_read)))
}

/// Relays the child's reports (each step as a trace event) until it execs. On a failure,
/// reaps the child and returns the error the failure means.
pub(crate) fn follow_reports(
    plan: &SetupPlan,
    child: &mut Child,
    mut reports: File,
    trace: &mut dyn FnMut(&TraceEvent<'_>),
) -> Result<(), SandboxError> {
    let mut last_begun = None;
    let mut failure = None;
    while let Some(report) = read_report(&mut reports).map_err(|e| SandboxError::Os {
        what: "read the sandbox's reports",
        source: io_errno(&e),
    })? {
        match report {
            Report::Begin(index) => {
                if let Some(step) = plan.steps.get(index) {
                    last_begun = Some(index);
                    trace(&TraceEvent::Step(step));
                }
            }
            Report::Failed(reported) => failure = Some(reported),
        }
    }
    let exec_index = plan.steps.len() - 1;
    if failure.is_some() || last_begun != Some(exec_index) {
        let status = child.wait()?;
        return Err(match failure {
            Some(failure) => setup_error(plan, failure),
            None => SandboxError::SetupDied {
                status: status.to_string(),
            },
        });
    }
    Ok(())
}

/// Everything the child needs, prepared before clone.
struct ChildContext<'a> {
    steps: &'a [SetupStep],
    report: RawFd,
    io: ChildIo,
    /// Read end of the parent's go-ahead pipe, or -1.
    sync: RawFd,
}

/// The child, between clone and exec. Async-signal-safe only: no allocation, no locks, no
/// panics, no std I/O — the heap's lock may have been held by another thread when we were
/// cloned.
fn child_main(context: &ChildContext<'_>) -> isize {
    // SAFETY: plain syscalls on integers and on a local, initialised sigset; the fds are
    // open (the parent keeps them open until clone returned, and we have our own copies).
    unsafe {
        // If kiln dies, so does the sandbox (and with pid 1, its whole pid namespace).
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Until execve (which resets it) this process is the kiln binary inside the
        // container: not dumpable, so that no process there may open its /proc/PID/exe
        // (CVE-2019-5736) or ptrace it, whatever capabilities it has dropped to.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        // The command starts with every signal at its default and none blocked. An
        // ignored signal stays ignored across execve (Rust ignores SIGPIPE, and kiln's own
        // parent may ignore others), and the layer must not depend on that. The raw
        // syscall, because glibc refuses to touch its internal real-time signals; an
        // all-zero kernel sigaction is SIG_DFL with an empty mask on every layout.
        let default_action = [0u64; 4];
        for signal in 1..=64 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                );
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if context.sync >= 0 {
            // Wait for the parent's go-ahead (it may be putting us in a cgroup).
            await_go_ahead(context.sync);
        }
        take_stdio(&context.io);
    }
    let mut sys = RealSys;
    let report = context.report;
    let failure = execute(context.steps, &mut sys, &mut |index| {
        write_report(report, Report::Begin(index))
    });
    write_report(report, Report::Failed(failure));
    // SAFETY: _exit ends the process without running any of the parent's exit handlers.
    unsafe { libc::_exit(SETUP_FAILED) }
}

/// One record of the child → parent protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Report {
    Begin(usize),
    Failed(Failure),
}

const RECORD: usize = 16;

impl Report {
    /// `[tag, index, errno, 0]` as native-endian u32s.
    pub(crate) fn encode(self) -> [u8; RECORD] {
        let (tag, index, errno) = match self {
            Report::Begin(index) => (1, index, 0),
            Report::Failed(Failure::Step { index, errno }) => (2, index, errno as i32),
            Report::Failed(Failure::Exec(ExecFailure::NotFound)) => (3, 0, 0),
            Report::Failed(Failure::Exec(ExecFailure::NotExecutable { candidate })) => {
                (4, candidate, 0)
            }
            Report::Failed(Failure::Exec(ExecFailure::MissingInterpreter { candidate })) => {
                (5, candidate, 0)
            }
            Report::Failed(Failure::Exec(ExecFailure::Other { candidate, errno })) => {
                (6, candidate, errno as i32)
            }
        };
        let mut record = [0u8; RECORD];
        record[0..4].copy_from_slice(&(tag as u32).to_ne_bytes());
        record[4..8].copy_from_slice(&(index as u32).to_ne_bytes());
        record[8..12].copy_from_slice(&errno.to_ne_bytes());
        record
    }

    pub(crate) fn decode(record: &[u8; RECORD]) -> Option<Report> {
        let word = |i: usize| [record[i], record[i + 1], record[i + 2], record[i + 3]];
        let tag = u32::from_ne_bytes(word(0));
        let index = u32::from_ne_bytes(word(4)) as usize;
        let errno = Errno::from_raw(i32::from_ne_bytes(word(8)));
        Some(match tag {
            1 => Report::Begin(index),
            2 => Report::Failed(Failure::Step { index, errno }),
            3 => Report::Failed(Failure::Exec(ExecFailure::NotFound)),
            4 => Report::Failed(Failure::Exec(ExecFailure::NotExecutable {
                candidate: index,
            })),
            5 => Report::Failed(Failure::Exec(ExecFailure::MissingInterpreter {
                candidate: index,
            })),
            6 => Report::Failed(Failure::Exec(ExecFailure::Other {
                candidate: index,
                errno,
            })),
            _ => return None,
        })
    }
}

/// Child side: one write(2) of one record. Nothing to do if it fails: the parent then
/// sees the child die during setup.
fn write_report(fd: RawFd, report: Report) {
    let record = report.encode();
    // SAFETY: writes RECORD bytes from a local array to a descriptor the child owns.
    unsafe { libc::write(fd, record.as_ptr().cast(), RECORD) };
}

/// Parent side: the next record, or None at end of file.
fn read_report(reports: &mut File) -> io::Result<Option<Report>> {
    let mut record = [0u8; RECORD];
    match reports.read_exact(&mut record) {
        Ok(()) => Ok(Report::decode(&record)),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

pub(crate) fn setup_error(plan: &SetupPlan, failure: Failure) -> SandboxError {
    let command = plan.command.clone();
    let candidate = |index: usize| match plan.steps.last() {
        Some(SetupStep::Exec { candidates, .. }) => candidates
            .get(index)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_default(),
        Some(SetupStep::ExecInit { .. }) => "kiln-init (kiln's sealed copy)".to_string(),
        _ => String::new(),
    };
    match failure {
        Failure::Step { index, errno } => match plan.steps.get(index) {
            Some(SetupStep::ChdirInRoot { .. }) if errno == Errno::ENOENT => {
                SandboxError::CwdNotFound {
                    cwd: plan.cwd.clone(),
                }
            }
            Some(SetupStep::ChdirInRoot { .. }) => in_root_error(
                "use the working directory",
                &plan.cwd,
                &Purpose::Workdir,
                How::EXISTING,
                errno,
            ),
            Some(SetupStep::Resolve { path, how, purpose }) => {
                let path = path.to_string_lossy();
                let action = match purpose {
                    Purpose::Mountpoint { fstype } => format!("mount {fstype} on"),
                    Purpose::Bind { source } if how.create == Create::File => {
                        format!("bind the file `{source}` onto")
                    }
                    Purpose::Bind { source } => format!("bind the directory `{source}` onto"),
                    Purpose::Device => "bind the host's device onto".into(),
                    Purpose::Remount => "change the mount at".into(),
                    Purpose::Links => "create links in".into(),
                    Purpose::Workdir => "create the working directory".into(),
                };
                in_root_error(&action, &path, purpose, *how, errno)
            }
            _ => SandboxError::Setup {
                step: plan
                    .steps
                    .get(index)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| format!("step {index}")),
                source: errno,
            },
        },
        Failure::Exec(ExecFailure::NotFound) => SandboxError::CommandNotFound {
            command,
            path: plan.path.clone(),
        },
        Failure::Exec(ExecFailure::NotExecutable { candidate: index }) => {
            SandboxError::NotExecutable {
                command,
                path: candidate(index),
            }
        }
        Failure::Exec(ExecFailure::MissingInterpreter { candidate: index }) => {
            SandboxError::MissingInterpreter {
                command,
                path: candidate(index),
            }
        }
        Failure::Exec(ExecFailure::Other {
            candidate: index,
            errno,
        }) => SandboxError::Exec {
            command,
            path: candidate(index),
            source: errno,
        },
    }
}

/// A path of the container that could not be resolved (or created) inside its root, in
/// words: what kiln was doing, why the image's tree did not allow it, what to do.
fn in_root_error(
    action: &str,
    path: &str,
    purpose: &Purpose,
    how: How,
    errno: Errno,
) -> SandboxError {
    let (reason, help): (String, String) = match (errno, purpose) {
        (Errno::ELOOP, Purpose::Mountpoint { fstype }) if !how.symlinks => (
            "it is a symbolic link in the image".into(),
            format!(
                "{fstype} is only ever mounted on a real directory (as runc does): an image must not replace `{path}` with a link"
            ),
        ),
        (Errno::ELOOP, _) => (
            "too many symbolic links on the way, or a /proc magic link".into(),
            "kiln follows an image's links only inside the image, never through /proc/*/fd, /proc/*/root or /proc/*/cwd".into(),
        ),
        (Errno::EISDIR, Purpose::Bind { .. }) => (
            "it is a directory in the image".into(),
            "a file can only be bound onto a file: pick a destination that is not a directory".into(),
        ),
        (Errno::ENOTDIR, Purpose::Bind { .. }) if how.create == Create::Dir => (
            "it, or a directory on its way, is not a directory in the image".into(),
            "a directory can only be bound onto a directory: pick another destination".into(),
        ),
        (Errno::ENOTDIR, _) => (
            "it, or a directory on its way, is not a directory in the image".into(),
            "the image has a file where a directory is needed".into(),
        ),
        (Errno::EACCES | Errno::EPERM, Purpose::Workdir) => (
            "permission denied".into(),
            "the command's user must be allowed to enter every directory on the way".into(),
        ),
        (errno, _) => (
            errno.desc().to_string(),
            "paths in the container are resolved inside its root: the image's links stay inside it".into(),
        ),
    };
    SandboxError::InRoot(Box::new(InRootFailure {
        action: action.to_string(),
        path: path.to_string(),
        reason,
        help,
        source: errno,
    }))
}

/// The cloned child; killed and reaped on drop unless waited for, so an early return never
/// leaves a sandbox behind.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: Pid,
    pub(crate) reaped: bool,
}

impl Child {
    pub(crate) fn wait(&mut self) -> Result<SandboxStatus, SandboxError> {
        loop {
            match waitpid(self.pid, None) {
                Ok(WaitStatus::Exited(_, code)) => {
                    self.reaped = true;
                    return Ok(SandboxStatus::Exited(code));
                }
                Ok(WaitStatus::Signaled(_, signal, _)) => {
                    self.reaped = true;
                    return Ok(SandboxStatus::Signaled(signal as i32));
                }
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(source) => {
                    return Err(SandboxError::Os {
                        what: "wait for the sandbox",
                        source,
                    });
                }
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = kill(self.pid, Signal::SIGKILL);
            let _ = self.wait();
        }
    }
}

/// Pipes fail with an errno; keep it as one.
pub(crate) fn io_errno(error: &io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// Moves a descriptor to 3 or above (kiln may run with a closed stdin, say).
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on an open descriptor; the result is a new descriptor we own.
    let moved = Errno::result(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `moved` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SandboxError + '_ {
    move |source| SandboxError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates the scratch directories, or empties what a killed run left in them.
pub(crate) fn prepare_scratch(layout: &ScratchLayout) -> Result<(), SandboxError> {
    for path in [&layout.overlay_work, &layout.mountpoint] {
        fs::create_dir_all(path).map_err(io_err(path))?;
    }
    clean_scratch(layout)
}

/// Empties overlayfs's `work/` directory, where the kernel leaves entries behind: a
/// whiteout it created there, still hard-linked from the upper directory, and the
/// `incompat/volatile` marker of a volatile mount, which makes the next mount fail until it
/// is removed. The directories themselves stay for the next run.
pub(crate) fn clean_scratch(layout: &ScratchLayout) -> Result<(), SandboxError> {
    let work = layout.overlay_work.join("work");
    let entries = match fs::read_dir(&work) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(SandboxError::Io { path: work, source }),
    };
    for entry in entries {
        let entry = entry.map_err(io_err(&work))?;
        let path = entry.path();
        let is_dir = entry.file_type().map_err(io_err(&path))?.is_dir();
        let removed = if is_dir {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(io_err(&path))?;
    }
    Ok(())
}
