//! `kiln create` and `kiln start`: a container made ready and recorded as `created` (the
//! path `kiln run` takes, stopped before the start), and the start of a created or exited
//! container — under a new supervisor, as `kiln run -d` does, or in the foreground with
//! `-a`, as `kiln run` does.
//!
//! Starts of one container are serialised by its record's lock, so two `kiln start` at once
//! never make two supervisors. It does not prepare containers itself (`prepare`'s) nor
//! decide what a flag means (the CLI's).

use std::path::Path;

use super::ContainerError;
use super::health::HealthCheck;
use super::lifecycle::{Launch, RunRequest, cgroup, cgroup_name, remove_files};
use super::prepare::{Prepared, prepare_with};
use super::run::{Foreground, RunResult, run_recorded};
use crate::runtime::cgroup::Hierarchy;
use crate::runtime::supervise::RestartPolicy;
use crate::state::{Record, Records, Status};
use crate::store::Store;

/// `kiln create`: the container made ready (image unpacked, spec, addresses, record), not
/// started. Its supervisor will run `health`.
pub fn create(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
    health: Option<HealthCheck>,
) -> Result<Record, ContainerError> {
    Ok(prepare_with(store, state_root, request, health)?.record)
}

/// Whether the container runs now, or is on its way (a supervisor holds it).
fn active(record: &Record) -> bool {
    let current = record.reconciled();
    matches!(current.state.status, Status::Running | Status::Restarting)
        || current.state.supervisor_alive()
}

/// The container's spec (its `config.json`).
fn load_spec(
    records: &Records,
    record: &Record,
) -> Result<oci_spec::runtime::Spec, ContainerError> {
    let config = records.dir(&record.id).join("config.json");
    oci_spec::runtime::Spec::load(&config).map_err(|e| ContainerError::Io {
        path: config,
        source: std::io::Error::other(e),
    })
}

fn wants_terminal(spec: &oci_spec::runtime::Spec) -> bool {
    spec.process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// `kiln start`: starts the container under a new supervisor; `Ok(false)` when it already
/// runs (nothing is done, as Docker does).
pub fn start(
    records: &Records,
    record: &Record,
    state_root: &Path,
) -> Result<bool, ContainerError> {
    let _lock = records.lock(&record.id)?;
    let current = records.load(&record.id)?;
    if active(&current) {
        return Ok(false);
    }
    let spec = load_spec(records, &current)?;
    if wants_terminal(&spec) {
        return Err(ContainerError::NeedsAttach {
            name: current.reference(),
        });
    }
    let current = super::lifecycle::reset(records, &current)?;
    let launch = Launch::load(&records.dir(&current.id))?;
    // The cgroup is made here so that a machine without one fails before a supervisor.
    let made = cgroup(state_root, &current.id, &launch.limits(), &spec, false)
        .and_then(|_| super::detach::spawn_supervisor(state_root, &current.id));
    if let Err(err) = made {
        // A supervisor that failed cleaned its own cgroup; one never started did not.
        if let Ok(hierarchy) = Hierarchy::detect()
            && let Ok(Some(group)) = hierarchy.open(&cgroup_name(state_root, &current.id))
        {
            let _ = group.remove();
            super::lifecycle::remove_parent_cgroups(state_root);
        }
        return Err(err);
    }
    Ok(true)
}

/// `kiln start -a`: runs the container in the foreground until it exits, as `kiln run`
/// does (a terminal if it was created with `-t`, kiln's input with `stdin`).
pub fn start_attached(
    records: &Records,
    record: &Record,
    state_root: &Path,
    stdin: bool,
) -> Result<RunResult, ContainerError> {
    let lock = records.lock(&record.id)?;
    let current = records.load(&record.id)?;
    if active(&current) {
        return Err(ContainerError::AlreadyRunning {
            name: current.reference(),
        });
    }
    let dir = records.dir(&current.id);
    let launch = Launch::load(&dir)?;
    let refuse = |what: &str| ContainerError::AttachUnsupervised {
        name: current.reference(),
        what: what.to_string(),
    };
    if launch.health.is_some() {
        return Err(refuse("a health check"));
    }
    if RestartPolicy::parse(&current.restart).unwrap_or(RestartPolicy::No) != RestartPolicy::No {
        return Err(refuse(&format!("the restart policy `{}`", current.restart)));
    }
    let spec = load_spec(records, &current)?;
    let how = Foreground {
        tty: wants_terminal(&spec),
        stdin,
        trace: false,
    };
    let current = super::lifecycle::reset(records, &current)?;
    let mut prepared = Prepared {
        records: records.clone(),
        record: current,
        dir,
        spec,
        launch,
    };
    let result = run_recorded(&mut prepared, state_root, how);
    drop(lock);
    if prepared.launch.remove {
        remove_files(&prepared.records, &prepared.record)?;
    }
    result
}
