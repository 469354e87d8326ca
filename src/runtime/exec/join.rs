//! The joining child, between clone and exec: setns into each namespace, fork into the
//! joined pid namespace, then the process's steps through the runtime's [`execute`].
//!
//! Like the sandbox's child, it runs in the clone of a multithreaded process: no
//! allocation, no locks, no panics, only syscalls on data the plan prepared. Reports go to
//! the parent over the sandbox's 16-byte record protocol, plus one record of its own: the
//! pid of the forked child.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::libc;
use nix::sched::CloneFlags;

use super::plan::{ExecPlan, JoinStep};
use crate::runtime::sandbox::{ChildIo, Report};
use crate::runtime::sys::{Failure, RealSys, execute};

/// The two syscalls of joining, apart from the runtime's [`crate::runtime::Sys`] so that
/// tests can record them.
pub trait JoinSys {
    fn setns(&mut self, fd: RawFd, kind: CloneFlags) -> Result<(), Errno>;
    /// clone(CLONE_PARENT): `Ok(0)` in the child, its pid in the caller.
    fn fork_sibling(&mut self) -> Result<i32, Errno>;
}

/// Where [`join`] left this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    /// Every namespace joined, and this is the forked child: run the process's steps.
    Child,
    /// This is the joining process; the child is `pid`.
    Parent { pid: i32 },
    /// Join step `index` failed.
    Failed { index: usize, errno: Errno },
}

/// Runs the join steps, calling `on_step` before each.
pub fn join(steps: &[JoinStep], sys: &mut dyn JoinSys, on_step: &mut dyn FnMut(usize)) -> Joined {
    for (index, step) in steps.iter().enumerate() {
        on_step(index);
        match step {
            JoinStep::SetNs { fd, kind, .. } => {
                if let Err(errno) = sys.setns(*fd, *kind) {
                    return Joined::Failed { index, errno };
                }
            }
            JoinStep::Fork => match sys.fork_sibling() {
                Ok(0) => {}
                Ok(pid) => return Joined::Parent { pid },
                Err(errno) => return Joined::Failed { index, errno },
            },
        }
    }
    Joined::Child
}

impl JoinSys for RealSys {
    fn setns(&mut self, fd: RawFd, kind: CloneFlags) -> Result<(), Errno> {
        // SAFETY: setns on a descriptor number and a flag; the kernel checks both.
        Errno::result(unsafe { libc::setns(fd, kind.bits()) }).map(drop)
    }

    fn fork_sibling(&mut self) -> Result<i32, Errno> {
        // SAFETY: the raw clone syscall without CLONE_VM and without a new stack behaves
        // like fork(2): the child gets a copy of this (single-threaded) process and
        // returns here with 0. glibc's fork is avoided: it runs atfork handlers and takes
        // locks this clone of a multithreaded process must not touch.
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (libc::CLONE_PARENT | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        Errno::result(pid).map(|pid| pid as i32)
    }
}

/// The record tag of "forked: pid" (the sandbox's own tags are 1 to 6).
pub(super) const FORKED_TAG: u32 = 100;

/// A report of the joining child: one of the sandbox's, or the forked child's pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ExecReport {
    Sandbox(Report),
    Forked(i32),
}

pub(super) const RECORD: usize = 16;

impl ExecReport {
    pub(super) fn encode(self) -> [u8; RECORD] {
        match self {
            ExecReport::Sandbox(report) => report.encode(),
            ExecReport::Forked(pid) => {
                let mut record = [0u8; RECORD];
                record[0..4].copy_from_slice(&FORKED_TAG.to_ne_bytes());
                record[4..8].copy_from_slice(&pid.to_ne_bytes());
                record
            }
        }
    }

    pub(super) fn decode(record: &[u8; RECORD]) -> Option<ExecReport> {
        let tag = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]);
        if tag == FORKED_TAG {
            let pid = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
            return Some(ExecReport::Forked(pid));
        }
        Report::decode(record).map(ExecReport::Sandbox)
    }
}

/// Everything the joining child needs, prepared before clone.
pub(super) struct JoinContext<'a> {
    pub(super) plan: &'a ExecPlan,
    pub(super) report: RawFd,
    pub(super) io: ChildIo,
    /// Read end of the parent's go-ahead pipe (it puts us in the container's cgroup).
    pub(super) sync: RawFd,
    /// Whether the command dies with kiln (a foreground exec) or outlives it (`-d`).
    pub(super) die_with_parent: bool,
}

/// Exit code of a child whose setup failed (it has reported why).
const SETUP_FAILED: libc::c_int = 125;

/// The joining child. Async-signal-safe only (see the module doc).
pub(super) fn child_main(context: &JoinContext<'_>) -> isize {
    // SAFETY: plain syscalls on integers and a local sigset; the descriptors are open
    // (the parent keeps them until clone returned, and we have our own copies).
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        // Not dumpable until execve (which resets it): the process the container sees
        // join it is the kiln binary, and its /proc/PID/exe must not open for the
        // container's root (CVE-2019-5736) once it has dropped to the container's
        // capabilities. fork keeps it, so the child that enters the pid namespace has it.
        libc::prctl(libc::PR_SET_DUMPABLE, 0);
        reset_signals();
        crate::runtime::sandbox::await_go_ahead(context.sync);
        // No other descriptor of kiln's may reach the command (the namespaces' included).
        crate::runtime::sandbox::take_stdio(&context.io);
    }
    let report = context.report;
    let joins = &context.plan.joins;
    let mut sys = RealSys;
    match join(joins, &mut sys, &mut |index| {
        write_report(report, ExecReport::Sandbox(Report::Begin(index)))
    }) {
        Joined::Child => {}
        Joined::Parent { pid } => {
            write_report(report, ExecReport::Forked(pid));
            // SAFETY: _exit ends the process without running the parent's exit handlers.
            unsafe { libc::_exit(0) }
        }
        Joined::Failed { index, errno } => {
            write_report(
                report,
                ExecReport::Sandbox(Report::Failed(Failure::Step { index, errno })),
            );
            // SAFETY: as above.
            unsafe { libc::_exit(SETUP_FAILED) }
        }
    }
    // The forked child: fork cleared the death signal, and its parent is now kiln.
    if context.die_with_parent {
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
    }
    let offset = joins.len();
    let failure = execute(&context.plan.process.steps, &mut sys, &mut |index| {
        write_report(report, ExecReport::Sandbox(Report::Begin(offset + index)))
    });
    let failure = match failure {
        Failure::Step { index, errno } => Failure::Step {
            index: offset + index,
            errno,
        },
        exec => exec,
    };
    write_report(report, ExecReport::Sandbox(Report::Failed(failure)));
    // SAFETY: as above.
    unsafe { libc::_exit(SETUP_FAILED) }
}

/// Every signal at its default and none blocked, as the sandbox's child does: an ignored
/// signal stays ignored across execve, and the command must not inherit kiln's.
///
/// # Safety
/// Only to be called in the child, before exec.
unsafe fn reset_signals() {
    // The raw syscall, because glibc refuses to touch its internal real-time signals; an
    // all-zero kernel sigaction is SIG_DFL with an empty mask on every layout.
    let default_action = [0u64; 4];
    for signal in 1..=64 {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            // SAFETY: rt_sigaction with a valid, initialised action and no old action.
            unsafe {
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    signal,
                    default_action.as_ptr(),
                    std::ptr::null_mut::<u64>(),
                    8usize,
                )
            };
        }
    }
    // SAFETY: a zeroed sigset_t is a valid argument to sigemptyset, which initialises it.
    unsafe {
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}

/// One write(2) of one record; nothing to do if it fails (the parent sees the child die).
fn write_report(fd: RawFd, report: ExecReport) {
    let record = report.encode();
    // SAFETY: writes RECORD bytes from a local array to a descriptor the child owns.
    unsafe { libc::write(fd, record.as_ptr().cast(), RECORD) };
}
