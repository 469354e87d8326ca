//! `kiln pause` and `kiln unpause` (Docker's meaning): every process of a running container
//! stopped by the cgroup freezer (`freezer.state` on cgroup v1, `cgroup.freeze` on v2), and
//! let go again. A paused container keeps its memory, sockets and addresses; packets to it
//! queue and time out, as to a machine that hangs — which is what a test's `pause` fault
//! wants. It does not stop or signal anything (`control` does, and thaws a paused container
//! first: a frozen process cannot act on its signals).

use std::path::Path;

use super::{ContainerError, cgroup_name};
use crate::runtime::cgroup::{Cgroup, Hierarchy};
use crate::state::{Record, Status};

/// The container's cgroup, if it runs and has one.
fn cgroup_of(state_root: &Path, record: &Record) -> Result<Cgroup, ContainerError> {
    let current = record.reconciled();
    let not_running = || ContainerError::NotRunning {
        name: record.name.clone(),
    };
    if !matches!(current.state.status, Status::Running | Status::Restarting) {
        return Err(not_running());
    }
    let hierarchy = Hierarchy::detect()?;
    hierarchy
        .open(&cgroup_name(state_root, &record.id))?
        .ok_or_else(not_running)
}

/// Freezes a running container; pausing a paused one is an error, as in Docker.
pub fn pause(state_root: &Path, record: &Record) -> Result<(), ContainerError> {
    let cgroup = cgroup_of(state_root, record)?;
    if !cgroup.has_freezer() {
        return Err(ContainerError::NoFreezer {
            name: record.name.clone(),
        });
    }
    if cgroup.is_frozen()? {
        return Err(ContainerError::AlreadyPaused {
            name: record.name.clone(),
        });
    }
    cgroup.freeze()?;
    Ok(())
}

/// Thaws a paused container; unpausing one that is not paused is an error, as in Docker.
pub fn unpause(state_root: &Path, record: &Record) -> Result<(), ContainerError> {
    let cgroup = cgroup_of(state_root, record)?;
    if !cgroup.is_frozen()? {
        return Err(ContainerError::NotPaused {
            name: record.name.clone(),
        });
    }
    cgroup.thaw()?;
    Ok(())
}

/// Whether the container is paused (`false` when it does not run or cannot be frozen).
pub fn is_paused(state_root: &Path, record: &Record) -> bool {
    cgroup_of(state_root, record).is_ok_and(|c| c.is_frozen().unwrap_or(false))
}

/// Thaws the container if it is paused, so that it can act on a signal (stop, kill, rm);
/// anything in the way is ignored: the caller goes on with its signals.
pub fn thaw_if_paused(state_root: &Path, record: &Record) {
    if let Ok(cgroup) = cgroup_of(state_root, record)
        && cgroup.is_frozen().unwrap_or(false)
    {
        let _ = cgroup.thaw();
    }
}
