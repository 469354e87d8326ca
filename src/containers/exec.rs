//! `kiln exec`: find a running container, make the new process from its `config.json`
//! (its env plus `-e`, its user unless `-u`, its working directory unless `-w`, its
//! capabilities, rlimits and no_new_privs), and run it in the container's namespaces and
//! cgroup. The kernel work is `runtime::exec`'s.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::libc;
use nix::sys::signal::Signal;
use oci_spec::runtime::{Process, Spec, User};

use super::ContainerError;
use crate::runtime::cgroup::{Cgroup, Hierarchy};
use crate::runtime::spec::{SpecError, resolve_user};
use crate::runtime::{
    ExecEvent, ExecHooks, ExecProcess, ExecStdio, HookError, SandboxStatus, Stdio, run_exec,
    start_exec,
};
use crate::state::{Record, Records, Status};

/// What `kiln exec` was asked.
#[derive(Debug, Clone, Default)]
pub struct ExecRequest {
    /// The command and its arguments.
    pub command: Vec<String>,
    /// `-e KEY=VALUE`, over the container's environment.
    pub env: Vec<(String, String)>,
    /// `-u USER[:GROUP]`, resolved in the container's /etc/passwd and /etc/group.
    pub user: Option<String>,
    /// `-w DIR` (it must exist in the container).
    pub workdir: Option<String>,
    pub interactive: bool,
    pub tty: bool,
    /// `-d`: start it and return.
    pub detach: bool,
    pub trace: bool,
}

/// A running container, ready to receive processes.
#[derive(Debug)]
pub struct Target {
    pub record: Record,
    /// Its pid 1, as kiln sees it.
    pub pid: i32,
    /// Its `config.json`.
    pub spec: Spec,
    /// Its cgroup, when the machine has cgroups.
    pub cgroup: Option<Cgroup>,
}

impl Target {
    /// The container `query` names, if it runs.
    pub fn find(state_root: &Path, query: &str) -> Result<Target, ContainerError> {
        let records = Records::open(state_root)?;
        let record = records.find(query)?;
        Target::of(state_root, &records, record)
    }

    /// `record`'s container, if it runs.
    pub fn of(
        state_root: &Path,
        records: &Records,
        record: Record,
    ) -> Result<Target, ContainerError> {
        let current = record.reconciled();
        let not_running = || ContainerError::NotRunning {
            name: record.name.clone(),
        };
        let pid = match (current.state.status, current.state.pid) {
            (Status::Running, Some(pid)) if current.state.process_alive() => pid,
            _ => return Err(not_running()),
        };
        let config = records.dir(&record.id).join("config.json");
        let spec = Spec::load(&config).map_err(|e| ContainerError::Io {
            path: config.clone(),
            source: std::io::Error::other(e),
        })?;
        let cgroup = match Hierarchy::detect() {
            Ok(hierarchy) => {
                hierarchy.open(&super::lifecycle::cgroup_name(state_root, &record.id))?
            }
            Err(_) => None,
        };
        Ok(Target {
            record: current,
            pid,
            spec,
            cgroup,
        })
    }

    /// The container's root as kiln sees it, while it runs.
    fn root(&self) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid))
    }

    /// The process to run: the container's own with `request`'s command, env, user and
    /// working directory.
    pub fn process(&self, request: &ExecRequest) -> Result<Process, ContainerError> {
        let mut process = self.spec.process().clone().unwrap_or_default();
        let mut env = process.env().clone().unwrap_or_default();
        let mut set = |key: &str, value: &str| {
            let prefix = format!("{key}=");
            match env.iter_mut().find(|e| e.starts_with(&prefix)) {
                Some(slot) => *slot = format!("{key}={value}"),
                None => env.push(format!("{key}={value}")),
            }
        };
        for (key, value) in &request.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(SpecError::BadEnvName { key: key.clone() }.into());
            }
            set(key, value);
        }
        if let Some(name) = &request.user {
            let root = self.root();
            let resolved = resolve_user(name, &[root.as_path()])?;
            let mut user = User::default();
            user.set_uid(resolved.ids.uid);
            user.set_gid(resolved.ids.gid);
            user.set_umask(process.user().umask());
            if !resolved.ids.groups.is_empty() {
                user.set_additional_gids(Some(resolved.ids.groups.clone()));
            }
            process.set_user(user);
            let home = resolved
                .home
                .unwrap_or_else(|| if resolved.ids.uid == 0 { "/root" } else { "/" }.to_string());
            set("HOME", &home);
        }
        if request.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
            env.push("TERM=xterm".into());
        }
        if let Some(dir) = &request.workdir {
            if !dir.starts_with('/') {
                return Err(SpecError::RelativePath {
                    what: "working directory",
                    path: dir.clone(),
                }
                .into());
            }
            process.set_cwd(dir.into());
        }
        process.set_env(Some(env));
        process.set_args(Some(request.command.clone()));
        process.set_terminal(Some(request.tty));
        Ok(process)
    }

    /// Runs `command` in the container as `kiln exec` would (no stdin, no tty), keeping
    /// the first `limit` bytes of its stdout and of its stderr. `Ok(None)` when it still
    /// ran at `timeout`: it is killed then.
    pub fn run_captured(
        &self,
        command: &[String],
        timeout: Duration,
        limit: usize,
    ) -> Result<Option<Captured>, ContainerError> {
        if command.is_empty() {
            return Err(crate::runtime::SandboxError::EmptyCommand.into());
        }
        let request = ExecRequest {
            command: command.to_vec(),
            ..ExecRequest::default()
        };
        let process = self.process(&request)?;
        let mut started = self.start(
            &process,
            ExecStdio::Attached(Stdio::Pipe { stdin: false }),
            false,
        )?;
        let deadline = Instant::now() + timeout;
        let [stdout, stderr] = read_until(
            [started.stdout.take(), started.stderr.take()],
            deadline,
            limit,
        );
        let left = deadline.saturating_duration_since(Instant::now());
        match started.wait_timeout(left)? {
            Some(status) => Ok(Some(Captured {
                status,
                stdout,
                stderr,
            })),
            None => {
                let _ = started.signal(Signal::SIGKILL);
                let _ = started.wait();
                Ok(None)
            }
        }
    }

    /// Starts `process` in the container.
    pub fn start(
        &self,
        process: &Process,
        stdio: ExecStdio,
        trace: bool,
    ) -> Result<ExecProcess, ContainerError> {
        let mut hooks = Hooks {
            cgroup: self.cgroup.as_ref(),
            trace,
        };
        Ok(start_exec(
            self.pid, process, &self.spec, stdio, &mut hooks,
        )?)
    }
}

/// How a command run by [`Target::run_captured`] ended, and the start of what it printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub status: SandboxStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Reads the pipes until they all end or `deadline`; keeps the first `limit` bytes of each
/// (and drains the rest, so the writer never blocks on a full pipe).
fn read_until<const N: usize>(
    fds: [Option<OwnedFd>; N],
    deadline: Instant,
    limit: usize,
) -> [Vec<u8>; N] {
    let mut open: Vec<(usize, OwnedFd)> = fds
        .into_iter()
        .enumerate()
        .filter_map(|(i, fd)| fd.map(|fd| (i, fd)))
        .collect();
    let mut outputs: [Vec<u8>; N] = std::array::from_fn(|_| Vec::new());
    let mut buffer = [0u8; 4096];
    while !open.is_empty() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let mut polled: Vec<libc::pollfd> = open
            .iter()
            .map(|(_, fd)| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let millis = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: `polled` is a valid array of pollfd of the given length.
        let ready =
            unsafe { libc::poll(polled.as_mut_ptr(), polled.len() as libc::nfds_t, millis) };
        if ready <= 0 {
            continue;
        }
        let mut closed = Vec::new();
        for (slot, entry) in polled.iter().enumerate() {
            if entry.revents == 0 {
                continue;
            }
            // SAFETY: reads into a local buffer of the given length from an open pipe.
            let n = unsafe { libc::read(entry.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                closed.push(slot);
            } else {
                let output = &mut outputs[open[slot].0];
                let room = limit.saturating_sub(output.len());
                output.extend_from_slice(&buffer[..(n as usize).min(room)]);
            }
        }
        for slot in closed.into_iter().rev() {
            open.remove(slot);
        }
    }
    outputs
}

struct Hooks<'a> {
    cgroup: Option<&'a Cgroup>,
    trace: bool,
}

impl ExecHooks for Hooks<'_> {
    fn before_continue(&mut self, pid: i32) -> Result<(), HookError> {
        match self.cgroup {
            Some(cgroup) => cgroup.attach(pid).map_err(HookError::new),
            None => Ok(()),
        }
    }

    fn trace(&mut self, event: &ExecEvent<'_>) {
        if self.trace {
            super::trace_line(format_args!("{event}"));
        }
    }
}

/// Runs `request` in the container `query` names: in the foreground (its status), or
/// detached (`None` once it runs).
pub fn exec(
    state_root: &Path,
    query: &str,
    request: &ExecRequest,
) -> Result<Option<SandboxStatus>, ContainerError> {
    if request.command.is_empty() {
        return Err(crate::runtime::SandboxError::EmptyCommand.into());
    }
    let target = Target::find(state_root, query)?;
    let process = target.process(request)?;
    if request.detach {
        target
            .start(&process, ExecStdio::Detached, request.trace)?
            .detach();
        return Ok(None);
    }
    let stdio = if request.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit {
            stdin: request.interactive,
        }
    };
    let mut hooks = Hooks {
        cgroup: target.cgroup.as_ref(),
        trace: request.trace,
    };
    let status = run_exec(target.pid, &process, &target.spec, stdio, &mut hooks)?;
    Ok(Some(status))
}
