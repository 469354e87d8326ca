//! Starting a container from an OCI spec: the same plan, clone and child as the build
//! sandbox, plus what a container needs from its caller. The child waits on a pipe after
//! clone until [`StartHooks::before_continue`] has run (put it in a cgroup, give it network
//! interfaces), and its stdio is kiln's, a new pty, or pipes.
//!
//! It does not wait in the foreground, forward signals or copy a terminal: see
//! [`super::run_foreground`].

use std::fs::File;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::{Signal, kill};
use oci_spec::runtime::Spec;

use super::cgroupfs::HostCgroups;
use super::plan::{PlanOptions, RootfsLayout, ScratchLayout, plan_with};
use super::sandbox::{
    Child, ChildIo, TraceEvent, above_stdio, clean_scratch, follow_reports, os, prepare_scratch,
    spawn,
};
use super::{HookError, SandboxError, SandboxStatus};

/// Where the container's stdin, stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdio {
    /// kiln's stdout and stderr; kiln's stdin with `stdin` (`-i`), else /dev/null.
    Inherit { stdin: bool },
    /// A new pseudo-terminal (`-t`): its slave is the container's stdin, stdout, stderr and
    /// controlling terminal; [`Started::pty`] is the master. Sized like kiln's terminal.
    Pty,
    /// Pipes whose parent ends are [`Started::stdout`], [`Started::stderr`] and, with
    /// `stdin`, [`Started::stdin`] (else /dev/null): for a supervisor that keeps logs.
    Pipe { stdin: bool },
}

/// What the caller does while the container is being created.
pub trait StartHooks {
    /// The child exists (`pid`, as the host sees it) in its new namespaces and waits:
    /// attach it to its cgroup, move network interfaces into its namespace. An error kills
    /// it, and [`start`] fails with [`SandboxError::Hook`], which keeps the error whole.
    fn before_continue(&mut self, _pid: i32) -> Result<(), HookError> {
        Ok(())
    }
    /// Each kernel-level step as it happens (for `--trace`).
    fn trace(&mut self, _event: &TraceEvent<'_>) {}
}

/// No hooks.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHooks;

impl StartHooks for NoHooks {}

/// A container whose command runs. Killed (SIGKILL) and reaped on drop unless waited for;
/// the thread that started it must also wait for it (the child dies with that thread,
/// PR_SET_PDEATHSIG).
#[derive(Debug)]
pub struct Started {
    child: Child,
    layout: ScratchLayout,
    /// The pty's master side ([`Stdio::Pty`]).
    pub pty: Option<OwnedFd>,
    /// The parent ends of [`Stdio::Pipe`].
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Started {
    /// The container's pid 1, as the host sees it.
    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    /// Sends `signal` to the container's pid 1. Note that pid 1 of a pid namespace only
    /// receives signals it handles (SIGKILL and SIGSTOP always).
    pub fn signal(&self, signal: Signal) -> Result<(), SandboxError> {
        if self.child.reaped {
            return Ok(());
        }
        kill(self.child.pid, signal).map_err(os("signal the container"))
    }

    /// Waits for pid 1 to exit (the kernel then kills the rest of its pid namespace and
    /// drops its mounts) and empties the scratch directory.
    pub fn wait(&mut self) -> Result<SandboxStatus, SandboxError> {
        let status = self.child.wait()?;
        clean_scratch(&self.layout)?;
        Ok(status)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if !self.child.reaped {
            let _ = kill(self.child.pid, Signal::SIGKILL);
            let _ = self.child.wait();
            let _ = clean_scratch(&self.layout);
        }
    }
}

/// Creates the container `spec` describes on `rootfs` and starts its command; returns once
/// the command runs (execve succeeded). `Err` when it could not: [`SandboxError::exit_code`]
/// gives Docker's 125, 126 or 127. `spec.root` is ignored (the root is `rootfs`), except
/// `readonly`; `stdio` decides whether there is a controlling terminal.
pub fn start(
    spec: &Spec,
    rootfs: &RootfsLayout,
    stdio: Stdio,
    hooks: &mut dyn StartHooks,
) -> Result<Started, SandboxError> {
    // `--init`: kept open until the child has its own copy of the descriptor.
    let init = match wants_init(spec) {
        true => {
            Some(above_stdio(super::init::sealed_copy()?).map_err(os("duplicate a descriptor"))?)
        }
        false => None,
    };
    let plan = plan_with(
        spec,
        rootfs,
        PlanOptions {
            create_cwd: true,
            controlling_terminal: stdio == Stdio::Pty,
            init: init.as_ref().map(AsRawFd::as_raw_fd),
        },
        HostCgroups::detect(),
    )?;
    let layout = ScratchLayout::new(&rootfs.scratch_dir);
    prepare_scratch(&layout)?;
    let result = start_plan(&plan, &layout, stdio, hooks);
    if result.is_err() {
        let _ = clean_scratch(&layout);
    }
    result
}

/// Whether `spec` asks for kiln's init as pid 1 (`--init`).
fn wants_init(spec: &Spec) -> bool {
    spec.annotations()
        .as_ref()
        .and_then(|a| a.get(super::spec::INIT_ANNOTATION))
        .is_some_and(|v| v == "true")
}

fn start_plan(
    plan: &super::SetupPlan,
    layout: &ScratchLayout,
    stdio: Stdio,
    hooks: &mut dyn StartHooks,
) -> Result<Started, SandboxError> {
    let ends = StdioEnds::open(stdio)?;
    let (sync_read, sync_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
    let sync_read = above_stdio(sync_read).map_err(os("duplicate a descriptor"))?;
    let (child, reports) = spawn(plan, &ends.child_io(), Some(sync_read.as_raw_fd()))?;
    let mut started = Started {
        child,
        layout: layout.clone(),
        pty: ends.pty,
        stdin: ends.parent_stdin,
        stdout: ends.parent_stdout,
        stderr: ends.parent_stderr,
    };
    // The child has its copies; ours would keep the pty or pipes open after it exits.
    drop((
        ends.child_stdin,
        ends.child_stdout,
        ends.child_stderr,
        sync_read,
    ));
    hooks.trace(&TraceEvent::Namespaces {
        flags: plan.namespaces,
        pid: started.pid(),
    });
    hooks
        .before_continue(started.pid())
        .map_err(SandboxError::hook)?;
    let mut sync = File::from(sync_write);
    sync.write_all(&[1])
        .map_err(|e| os("start the container")(super::sandbox::io_errno(&e)))?;
    drop(sync);
    follow_reports(plan, &mut started.child, reports, &mut |event| {
        hooks.trace(event)
    })?;
    Ok(started)
}

/// The descriptors of one container's stdio: the child's (moved to 0, 1, 2) and ours.
/// `kiln exec` opens them the same way.
pub(super) struct StdioEnds {
    pub(super) child_stdin: OwnedFd,
    pub(super) child_stdout: OwnedFd,
    pub(super) child_stderr: OwnedFd,
    pub(super) pty: Option<OwnedFd>,
    pub(super) parent_stdin: Option<OwnedFd>,
    pub(super) parent_stdout: Option<OwnedFd>,
    pub(super) parent_stderr: Option<OwnedFd>,
}

impl StdioEnds {
    pub(super) fn open(stdio: Stdio) -> Result<StdioEnds, SandboxError> {
        let dup = |fd| dup_above_stdio(fd).map_err(os("duplicate a descriptor"));
        let pipe = || -> Result<(OwnedFd, OwnedFd), SandboxError> {
            let (read, write) =
                nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
            let above = |fd| above_stdio(fd).map_err(os("duplicate a descriptor"));
            Ok((above(read)?, above(write)?))
        };
        let none = |child_stdin, child_stdout, child_stderr| StdioEnds {
            child_stdin,
            child_stdout,
            child_stderr,
            pty: None,
            parent_stdin: None,
            parent_stdout: None,
            parent_stderr: None,
        };
        match stdio {
            Stdio::Inherit { stdin } => {
                let child_stdin = if stdin { dup(0)? } else { dev_null()? };
                Ok(none(child_stdin, dup(1)?, dup(2)?))
            }
            Stdio::Pipe { stdin } => {
                let (stdout_read, stdout_write) = pipe()?;
                let (stderr_read, stderr_write) = pipe()?;
                let (child_stdin, parent_stdin) = if stdin {
                    let (read, write) = pipe()?;
                    (read, Some(write))
                } else {
                    (dev_null()?, None)
                };
                let mut ends = none(child_stdin, stdout_write, stderr_write);
                ends.parent_stdin = parent_stdin;
                ends.parent_stdout = Some(stdout_read);
                ends.parent_stderr = Some(stderr_read);
                Ok(ends)
            }
            Stdio::Pty => {
                let size = super::terminal::terminal_size();
                let pty =
                    nix::pty::openpty(size.as_ref(), None).map_err(os("open a pseudo-terminal"))?;
                let master = dup(pty.master.as_raw_fd())?;
                let slave = dup(pty.slave.as_raw_fd())?;
                let mut ends = none(dup(slave.as_raw_fd())?, dup(slave.as_raw_fd())?, slave);
                ends.pty = Some(master);
                Ok(ends)
            }
        }
    }

    pub(super) fn child_io(&self) -> ChildIo {
        ChildIo {
            stdin: self.child_stdin.as_raw_fd(),
            stdout: self.child_stdout.as_raw_fd(),
            stderr: self.child_stderr.as_raw_fd(),
        }
    }
}

pub(super) fn dev_null() -> Result<OwnedFd, SandboxError> {
    let file = File::open("/dev/null").map_err(|source| SandboxError::Io {
        path: "/dev/null".into(),
        source,
    })?;
    above_stdio(file.into()).map_err(os("duplicate a descriptor"))
}

/// A close-on-exec duplicate of `fd`, numbered 3 or above.
fn dup_above_stdio(fd: std::os::fd::RawFd) -> Result<OwnedFd, nix::errno::Errno> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor number; an invalid one gives EBADF.
    let new = nix::errno::Errno::result(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    // SAFETY: `new` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}
