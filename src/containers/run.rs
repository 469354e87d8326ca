//! `kiln run` in the foreground: prepare (image → rootfs → spec → record → cgroup), run,
//! record how it ended, clean up.

use std::path::Path;

use super::ContainerError;
use super::lifecycle::{RunRequest, remove_files, remove_parent_cgroups};
use super::prepare::{Prepared, prepare};
use crate::runtime::cgroup::Cgroup;
use crate::runtime::{HookError, SandboxStatus, StartHooks, Stdio, TraceEvent, run_foreground};
use crate::state::{ContainerId, Record, Records, Status};
use crate::store::Store;

/// How the container ended.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub id: ContainerId,
    pub name: String,
    pub status: SandboxStatus,
    /// Killed by the kernel's OOM killer, with the limit it hit.
    pub oom_limit: Option<u64>,
}

impl RunResult {
    /// The exit code `kiln run` returns: the container's own, or 128 + signal.
    pub fn exit_code(&self) -> u8 {
        u8::try_from(self.status.code()).unwrap_or(255)
    }
}

struct Hooks<'a> {
    cgroup: Option<&'a Cgroup>,
    trace: bool,
    records: &'a Records,
    record: &'a mut Record,
    state_root: &'a Path,
    interfaces: &'a [crate::net::attach::Interface],
}

impl StartHooks for Hooks<'_> {
    fn before_continue(&mut self, pid: i32) -> Result<(), HookError> {
        if let Some(cgroup) = self.cgroup {
            cgroup.attach(pid).map_err(HookError::new)?;
        }
        let began = std::time::Instant::now();
        crate::net::attach::attach(self.state_root, pid, self.interfaces)
            .map_err(HookError::new)?;
        if self.trace {
            for i in self.interfaces {
                super::trace_line(format_args!(
                    "network: veth {} (bridge {} of {}) ↔ {} {} in the container{}",
                    i.host_name,
                    i.bridge,
                    i.network,
                    i.name,
                    i.address,
                    i.default_gateway
                        .map(|g| format!(", default route via {g}"))
                        .unwrap_or_default()
                ));
            }
            if !self.interfaces.is_empty() {
                super::trace_line(format_args!(
                    "network: attached in {:.2} ms",
                    began.elapsed().as_secs_f64() * 1000.0
                ));
            }
        }
        let state = &mut self.record.state;
        state.status = Status::Running;
        state.pid = Some(pid);
        state.pid_start_time = crate::state::process_start_time(pid);
        state.started_at = Some(crate::timestamp::now());
        self.records.save(self.record).map_err(HookError::new)
    }

    fn trace(&mut self, event: &TraceEvent<'_>) {
        if self.trace {
            super::trace_line(format_args!("{event}"));
        }
    }
}

/// Runs a container in the foreground until it exits.
pub fn run(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
) -> Result<RunResult, ContainerError> {
    let mut prepared = prepare(store, state_root, request)?;
    let result = run_recorded(&mut prepared, state_root, request);
    if request.remove {
        remove_files(&prepared.records, &prepared.record)?;
    }
    result
}

fn run_recorded(
    prepared: &mut Prepared,
    state_root: &Path,
    request: &RunRequest,
) -> Result<RunResult, ContainerError> {
    let limits = prepared.launch.limits();
    let cgroup = super::lifecycle::cgroup(state_root, &prepared.record.id, &limits, request.trace)?;
    let layout = prepared.layout();
    let stdio = if request.options.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit {
            stdin: request.options.interactive,
        }
    };
    let Prepared {
        records,
        record,
        spec,
        launch,
        ..
    } = prepared;
    // The host ports are bound before the container starts: a port taken meanwhile fails
    // the run here, not after.
    let net_root = launch.net_root(state_root);
    let proxies = super::network::start_proxies(net_root, &launch.interfaces, &launch.publish)?;
    let mut hooks = Hooks {
        cgroup: cgroup.as_ref(),
        trace: request.trace,
        records,
        record,
        state_root: net_root,
        interfaces: &launch.interfaces,
    };
    let outcome = run_foreground(spec, &layout, stdio, &mut hooks);
    drop(proxies);
    let oom_limit = match (&outcome, &cgroup) {
        (Ok(SandboxStatus::Signaled(9)), Some(cgroup)) if cgroup.oom_killed().unwrap_or(false) => {
            Some(limits.memory.unwrap_or(0))
        }
        _ => None,
    };
    if let Some(cgroup) = &cgroup {
        cgroup.kill_all()?;
        cgroup.remove()?;
        remove_parent_cgroups(state_root);
    }
    let state = &mut record.state;
    state.pid = None;
    state.pid_start_time = None;
    state.finished_at = Some(crate::timestamp::now());
    state.status = Status::Exited;
    state.oom_killed = oom_limit.is_some();
    state.exit_code = Some(match &outcome {
        Ok(status) => status.code(),
        Err(err) => err.exit_code(),
    });
    records.save(record)?;
    let status = outcome?;
    Ok(RunResult {
        id: record.id.clone(),
        name: record.name.clone(),
        status,
        oom_limit,
    })
}
