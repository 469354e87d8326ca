//! A new process in a running container (`kiln exec`, and the supervisor's exec health
//! probes): join the container's namespaces, its cgroup, and run a command with the
//! container's identity, capabilities, rlimits and no_new_privs.
//!
//! How it works, in order:
//! 1. The container's `/proc/PID/ns/*` are opened ([`ContainerNamespaces`]) — those kiln
//!    shares with it are skipped — and [`plan_exec`] turns them and the process into an
//!    [`ExecPlan`]: setns steps, a fork, then the process's steps as the container planner
//!    makes them for a container's own command.
//! 2. A child is cloned (no new namespaces) and waits while the caller puts it in the
//!    container's cgroup ([`ExecHooks::before_continue`]); its children inherit that.
//! 3. The child joins each namespace with setns(2). It must be a separate, single-threaded
//!    process: setns(CLONE_NEWNS) refuses a multithreaded caller. A joined pid namespace
//!    only applies to the children made afterwards, so the child then forks with
//!    CLONE_PARENT — the new process is in the container's pid namespace, and kiln's own
//!    child, which kiln waits for — reports its pid and exits.
//! 4. The forked process runs the process steps (session, terminal, rlimits, user,
//!    capabilities, no_new_privs, chdir) and execs the command; failures come back as the
//!    same [`SandboxError`]s as `kiln run`'s (127 not found, 126 not executable).
//!
//! It does not find containers or read their records: that is `containers::exec`.

mod join;
mod plan;
#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use oci_spec::runtime::{Process, Spec};

use join::ExecReport;
pub use join::{JoinSys, Joined, join};
pub use plan::{ContainerNamespaces, ExecPlan, JOINED, JoinStep, plan_exec};

use super::container::{StdioEnds, dev_null};
use super::foreground::{Attached, ForwardedSignals, attach};
use super::sandbox::{Child, above_stdio, io_errno, os, setup_error};
use super::sys::Failure;
use super::{SandboxError, SandboxStatus, Stdio};

/// The joining child's stack until it forks; its work needs a few KiB.
const CHILD_STACK: usize = 256 * 1024;

/// Where the exec'd process's stdin, stdout and stderr go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStdio {
    /// As a container's: kiln's own, a new pty, or pipes.
    Attached(Stdio),
    /// /dev/null for all three (`kiln exec -d`): the process outlives kiln.
    Detached,
}

/// What `--trace` shows of an exec.
#[derive(Debug, Clone, Copy)]
pub enum ExecEvent<'a> {
    /// The joining child exists (`pid` on the host).
    Cloned {
        pid: i32,
    },
    Join(&'a JoinStep),
    /// The forked process, `pid` on the host.
    Forked {
        pid: i32,
    },
    Step(&'a super::SetupStep),
    Exited(SandboxStatus),
}

impl std::fmt::Display for ExecEvent<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExecEvent::Cloned { pid } => write!(
                f,
                "clone: a child to join the container (pid {pid} on the host)"
            ),
            ExecEvent::Join(step) => step.fmt(f),
            ExecEvent::Forked { pid } => write!(f, "forked: pid {pid} on the host"),
            ExecEvent::Step(step) => step.fmt(f),
            ExecEvent::Exited(status) => write!(f, "{status}"),
        }
    }
}

/// What the caller does while the process is being made: put the joining child in the
/// container's cgroup, and trace.
pub trait ExecHooks {
    fn before_continue(&mut self, _pid: i32) -> Result<(), super::HookError> {
        Ok(())
    }
    fn trace(&mut self, _event: &ExecEvent<'_>) {}
}

impl ExecHooks for super::NoHooks {}

/// A process started in a container. Killed (SIGKILL) and reaped on drop unless waited
/// for or [`ExecProcess::detach`]ed.
#[derive(Debug)]
pub struct ExecProcess {
    child: Child,
    /// The pty's master side (`-t`).
    pub pty: Option<OwnedFd>,
    /// The parent ends of [`Stdio::Pipe`].
    pub stdin: Option<OwnedFd>,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl ExecProcess {
    /// Its pid, as kiln sees it.
    pub fn pid(&self) -> i32 {
        self.child.pid.as_raw()
    }

    pub fn signal(&self, signal: Signal) -> Result<(), SandboxError> {
        if self.child.reaped {
            return Ok(());
        }
        kill(self.child.pid, signal).map_err(os("signal the process"))
    }

    /// Waits for it to exit.
    pub fn wait(&mut self) -> Result<SandboxStatus, SandboxError> {
        self.child.wait()
    }

    /// Waits at most `timeout`; `None` if it still runs then.
    pub fn wait_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<SandboxStatus>, SandboxError> {
        let pidfd = crate::process::Pidfd::open_any(self.pid())
            .map_err(|e| os("watch the process")(io_errno(&e)))?;
        if pidfd.wait(timeout) {
            self.wait().map(Some)
        } else {
            Ok(None)
        }
    }

    /// Leaves it running when dropped (`kiln exec -d`); init reaps it once kiln is gone.
    pub fn detach(mut self) {
        self.child.reaped = true;
    }
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        if !self.child.reaped {
            let _ = kill(self.child.pid, Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

impl Attached for ExecProcess {
    fn pid(&self) -> i32 {
        ExecProcess::pid(self)
    }

    fn pty(&self) -> Option<RawFd> {
        self.pty.as_ref().map(AsRawFd::as_raw_fd)
    }

    fn signal(&self, signal: Signal) {
        let _ = ExecProcess::signal(self, signal);
    }

    fn wait(&mut self) -> Result<SandboxStatus, SandboxError> {
        ExecProcess::wait(self)
    }
}

/// Starts `process` in the container whose pid 1 is `container_pid` (as kiln sees it);
/// returns once its command runs. `process.terminal` must match a [`Stdio::Pty`].
pub fn start_exec(
    container_pid: i32,
    process: &Process,
    container: &Spec,
    stdio: ExecStdio,
    hooks: &mut dyn ExecHooks,
) -> Result<ExecProcess, SandboxError> {
    let namespaces = ContainerNamespaces::open(container_pid)?;
    let mut process = process.clone();
    process.set_terminal(Some(stdio == ExecStdio::Attached(Stdio::Pty)));
    let plan = plan_exec(&namespaces.joins(), &process, container)?;
    let ends = match stdio {
        ExecStdio::Attached(stdio) => StdioEnds::open(stdio)?,
        ExecStdio::Detached => StdioEnds {
            child_stdin: dev_null()?,
            child_stdout: dev_null()?,
            child_stderr: dev_null()?,
            pty: None,
            parent_stdin: None,
            parent_stdout: None,
            parent_stderr: None,
        },
    };
    let die_with_parent = stdio != ExecStdio::Detached;
    let pid = spawn_and_follow(&plan, &ends, die_with_parent, hooks)?;
    drop(namespaces);
    Ok(ExecProcess {
        child: Child {
            pid: Pid::from_raw(pid),
            reaped: false,
        },
        pty: ends.pty,
        stdin: ends.parent_stdin,
        stdout: ends.parent_stdout,
        stderr: ends.parent_stderr,
    })
}

/// Runs `process` in the container in the foreground: signals kiln receives are
/// forwarded, the pty copied with `-t`. Returns how it ended ([`SandboxStatus::code`] is
/// `kiln exec`'s exit status; on `Err`, [`SandboxError::exit_code`]).
pub fn run_exec(
    container_pid: i32,
    process: &Process,
    container: &Spec,
    stdio: Stdio,
    hooks: &mut dyn ExecHooks,
) -> Result<SandboxStatus, SandboxError> {
    let signals = ForwardedSignals::install()?;
    let mut started = start_exec(
        container_pid,
        process,
        container,
        ExecStdio::Attached(stdio),
        hooks,
    )?;
    let status = attach(&mut started, &signals)?;
    hooks.trace(&ExecEvent::Exited(status));
    Ok(status)
}

/// Clones the joining child, lets the caller set it up, then follows its reports until
/// the forked process has exec'd. Returns that process's pid.
fn spawn_and_follow(
    plan: &ExecPlan,
    ends: &StdioEnds,
    die_with_parent: bool,
    hooks: &mut dyn ExecHooks,
) -> Result<i32, SandboxError> {
    let (sync_read, sync_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
    let sync_read = above_stdio(sync_read).map_err(os("duplicate a descriptor"))?;
    let (report_read, report_write) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(os("create a pipe"))?;
    let report_write = above_stdio(report_write).map_err(os("duplicate a descriptor"))?;
    let context = join::JoinContext {
        plan,
        report: report_write.as_raw_fd(),
        io: ends.child_io(),
        sync: sync_read.as_raw_fd(),
        die_with_parent,
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: without CLONE_VM the child runs on its own copy of `stack` and of everything
    // `context` borrows. It only calls `child_main`, which neither allocates nor takes
    // locks, and always leaves by execve or _exit.
    let joiner = unsafe {
        nix::sched::clone(
            Box::new(|| join::child_main(&context)),
            &mut stack,
            CloneFlags::empty(),
            Some(libc::SIGCHLD),
        )
    }
    .map_err(SandboxError::Spawn)?;
    let mut joiner = Child {
        pid: joiner,
        reaped: false,
    };
    drop((report_write, sync_read, stack));
    hooks.trace(&ExecEvent::Cloned {
        pid: joiner.pid.as_raw(),
    });
    hooks
        .before_continue(joiner.pid.as_raw())
        .map_err(SandboxError::hook)?;
    let mut sync = File::from(sync_write);
    sync.write_all(&[1])
        .map_err(|e| os("start the process")(io_errno(&e)))?;
    drop(sync);
    let followed = follow(plan, File::from(report_read), hooks);
    // The joining child exits once it has forked (or failed).
    let joiner_status = joiner.wait()?;
    let Followed {
        forked,
        last_begun,
        failure,
    } = followed?;
    let mut forked = forked.map(|pid| Child {
        pid: Pid::from_raw(pid),
        reaped: false,
    });
    let exec_index = plan.len() - 1;
    if failure.is_none() && last_begun == Some(exec_index) {
        if let Some(forked) = forked.as_mut() {
            forked.reaped = true; // handed over to the ExecProcess
            return Ok(forked.pid.as_raw());
        }
    }
    // The forked process (if any) is reaped by its Child's drop.
    let status = match forked.as_mut() {
        Some(child) => child.wait()?,
        None => joiner_status,
    };
    Err(match failure {
        Some(failure) => exec_error(plan, failure),
        None => SandboxError::SetupDied {
            status: status.to_string(),
        },
    })
}

/// What the joining child and the forked process reported.
#[derive(Debug, Default)]
struct Followed {
    forked: Option<i32>,
    last_begun: Option<usize>,
    failure: Option<Failure>,
}

/// The reports, read until end of file (every writer gone: the joining child exited, the
/// forked one exec'd or exited).
fn follow(
    plan: &ExecPlan,
    mut reports: File,
    hooks: &mut dyn ExecHooks,
) -> Result<Followed, SandboxError> {
    let mut followed = Followed::default();
    let mut record = [0u8; join::RECORD];
    loop {
        match reports.read_exact(&mut record) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(os("read the exec's reports")(io_errno(&e))),
        }
        match ExecReport::decode(&record) {
            Some(ExecReport::Forked(pid)) => {
                followed.forked = Some(pid);
                hooks.trace(&ExecEvent::Forked { pid });
            }
            Some(ExecReport::Sandbox(super::sandbox::Report::Begin(index))) => {
                followed.last_begun = Some(index);
                match plan.joins.get(index) {
                    Some(step) => hooks.trace(&ExecEvent::Join(step)),
                    None => {
                        if let Some(step) = plan.process.steps.get(index - plan.joins.len()) {
                            hooks.trace(&ExecEvent::Step(step));
                        }
                    }
                }
            }
            Some(ExecReport::Sandbox(super::sandbox::Report::Failed(reported))) => {
                followed.failure = Some(reported)
            }
            None => break,
        }
    }
    Ok(followed)
}

/// The error a failure of the whole plan's step means.
fn exec_error(plan: &ExecPlan, failure: Failure) -> SandboxError {
    let joins = plan.joins.len();
    match failure {
        Failure::Step { index, errno } if index < joins => SandboxError::Setup {
            step: plan.describe(index),
            source: errno,
        },
        Failure::Step { index, errno } => setup_error(
            &plan.process,
            Failure::Step {
                index: index - joins,
                errno,
            },
        ),
        exec => setup_error(&plan.process, exec),
    }
}
