//! `kiln run` in the foreground: prepare (image → rootfs → spec → record → cgroup), run,
//! record how it ended, clean up; and `remove` for `kiln rm`.

use std::path::Path;

use super::ContainerError;
use super::prepare::{Prepared, prepare};
use crate::runtime::cgroup::{Cgroup, Hierarchy};
use crate::runtime::spec::RunOptions;
use crate::runtime::supervise::RestartPolicy;
use crate::runtime::{SandboxStatus, StartHooks, Stdio, TraceEvent, run_foreground};
use crate::state::{ContainerId, Record, Records, Status};
use crate::store::Store;

/// What `kiln run` was asked.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub image: String,
    pub name: Option<String>,
    pub options: RunOptions,
    /// Remove the container (record, upper directory, cgroup) when it exits.
    pub remove: bool,
    /// Print every kernel-level step on stderr.
    pub trace: bool,
    /// Recorded; applied by the supervisor of a detached container.
    pub restart: RestartPolicy,
    /// The project and service the container is an instance of (`kiln up`).
    pub member: Option<crate::state::Membership>,
    /// kiln networks to attach to, in order (`eth0` for the first).
    pub networks: Vec<crate::net::attach::AttachRequest>,
    /// `-p`: host ports proxied to the container's first address.
    pub publish: Vec<super::Published>,
}

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

/// The cgroup of a container: under `kiln/<state root hash>/`, so two roots never meet.
pub fn cgroup_name(state_root: &Path, id: &ContainerId) -> String {
    format!("{}/{}", root_cgroup(state_root), id.short())
}

/// `kiln/<state root hash>`: the parent of a state root's container cgroups.
fn root_cgroup(state_root: &Path) -> String {
    let canonical = std::fs::canonicalize(state_root).unwrap_or_else(|_| state_root.into());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    format!("kiln/{}", &hash[..12])
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
    fn before_continue(&mut self, pid: i32) -> Result<(), String> {
        if let Some(cgroup) = self.cgroup {
            cgroup.attach(pid).map_err(|e| e.to_string())?;
        }
        let began = std::time::Instant::now();
        super::network::attach(self.state_root, pid, self.interfaces)?;
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
        self.records.save(self.record).map_err(|e| e.to_string())
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
    let cgroup = super::prepare::cgroup(state_root, &prepared.record.id, &limits, request.trace)?;
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
    let proxies = super::network::start_proxies(state_root, &launch.interfaces, &launch.publish)?;
    let mut hooks = Hooks {
        cgroup: cgroup.as_ref(),
        trace: request.trace,
        records,
        record,
        state_root,
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

/// Removes a container: its cgroup if one is left, files and record. A running one (and
/// its supervisor) only with `force`, killed first.
pub fn remove(
    records: &Records,
    record: &Record,
    state_root: &Path,
    force: bool,
) -> Result<(), ContainerError> {
    let current = record.reconciled();
    let active = matches!(current.state.status, Status::Running | Status::Restarting)
        || current.state.supervisor_alive();
    if active {
        if !force {
            return Err(ContainerError::Running {
                name: record.name.clone(),
            });
        }
        // The supervisor must not start it again, and must be gone before its files are.
        super::control::mark_stopped(records, record)?;
        super::control::wait_supervisor(records, record, true);
    }
    if let Ok(hierarchy) = Hierarchy::detect()
        && let Some(cgroup) = hierarchy.open(&cgroup_name(state_root, &record.id))?
    {
        cgroup.kill_all()?;
        cgroup.remove()?;
        remove_parent_cgroups(state_root);
    }
    remove_files(records, record)
}

/// `kiln/<root hash>` and `kiln` once no container uses them (another kiln process may be
/// creating one at the same moment: then the directory is busy and stays, which is right).
pub(crate) fn remove_parent_cgroups(state_root: &Path) {
    if let Ok(hierarchy) = Hierarchy::detect() {
        let _ = hierarchy.remove_if_empty(&root_cgroup(state_root));
        let _ = hierarchy.remove_if_empty("kiln");
    }
}

/// The record and the container's directory (upper layer, scratch, config.json), and what
/// it held on kiln's networks.
pub(crate) fn remove_files(records: &Records, record: &Record) -> Result<(), ContainerError> {
    super::network::release(
        records.state_root(),
        &records.dir(&record.id),
        record.id.as_str(),
    );
    records.remove(record)?;
    Ok(())
}
