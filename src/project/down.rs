//! `kiln down`: every container of a project removed, then its networks, its simulated
//! hosts, its links (and with `--volumes` its named volumes).
//!
//! At scale the work is done per phase, not per container: every container is sent its
//! stop signal before any is waited for (their supervisors then end side by side), all are
//! waited for, their files removed, and what they held on the networks is released at
//! once (each network's record written once, the anti-spoofing chains removed in a few
//! batches, the veths left to the kernel, which removes them with the containers'
//! namespaces). Stopping and removing one container is `containers`' business; this
//! module only orders the phases.

use std::path::Path;
use std::time::Duration;

use super::ProjectError;
use super::ordered::run_in_order;
use super::up::{project_records, workers};
use crate::containers::{self, ContainerError, Held};
use crate::state::{Record, Records};

/// How long the kernel may take to remove the veths of the removed containers with their
/// namespaces before `down` deletes those left itself.
const VETH_LINGER: Duration = Duration::from_secs(2);

/// Removes every container of the project (stopping it first); with `volumes`, its named
/// volumes too. With `host` (`kiln down --host`), only the containers of that declared host
/// and its networks; what the whole project shares (links, volumes, the wire of simulated
/// hosts) goes with the last host. Returns the names removed.
pub fn down(
    state_root: &Path,
    project: &str,
    host: Option<&str>,
    volumes: bool,
    timeout: Option<Duration>,
) -> Result<Vec<String>, ProjectError> {
    let records = Records::open(state_root)?;
    let mut members = project_records(&records, project)?;
    let others = match host {
        None => 0,
        Some(host) => {
            let all = members.len();
            members.retain(|r| r.member.as_ref().and_then(|m| m.host.as_deref()) == Some(host));
            all - members.len()
        }
    };
    let removed = remove_all(&records, state_root, &members, timeout)?;
    if let Some(host) = host {
        super::hosts::remove_host(state_root, project, host)?;
        if others > 0 {
            return Ok(removed);
        }
    }
    let networks = crate::net::records::NetworkRecords::open(state_root)
        .and_then(|r| r.list())
        .map_err(|e| ContainerError::from(crate::net::network::NetworkError::from(e)))?;
    for network in networks
        .iter()
        .filter(|n| n.project.as_deref() == Some(project))
    {
        crate::net::network::remove(state_root, &network.name).map_err(ContainerError::from)?;
    }
    super::hosts::remove(state_root, project)?;
    crate::net::link::forget_project(state_root, project).map_err(|source| {
        ProjectError::Links {
            project: project.to_string(),
            source,
        }
    })?;
    if volumes {
        crate::state::volumes::VolumeStore::open(state_root)
            .remove_project(project)
            .map_err(ContainerError::from)?;
    }
    Ok(removed)
}

/// Stops and removes `members`, phase by phase, each phase on a few threads: the stop
/// signals, the waits, the removals, the release of their networks. A container that
/// fails a phase is left out of the next ones; the first error is returned once the
/// others are done.
fn remove_all(
    records: &Records,
    state_root: &Path,
    members: &[Record],
    timeout: Option<Duration>,
) -> Result<Vec<String>, ProjectError> {
    let mut first_error: Option<ContainerError> = None;
    let mut stopping = Vec::with_capacity(members.len());
    run_in_order(
        members,
        |_| None::<()>,
        workers(),
        |record| containers::begin_stop(records, record, timeout),
        |index, result| stopping.extend(keep(&mut first_error, result).map(|s| (index, s))),
    );
    let mut ended = Vec::with_capacity(stopping.len());
    run_in_order(
        &stopping,
        |_| None::<()>,
        workers(),
        |(index, stopping)| {
            if let Some(stopping) = stopping {
                containers::finish_stop(records, stopping);
            }
            *index
        },
        |_, index| ended.push(&members[index]),
    );
    let mut held: Vec<(String, Held)> = Vec::with_capacity(ended.len());
    run_in_order(
        &ended,
        |_| None::<()>,
        workers(),
        |record| {
            containers::remove_holding(records, record, state_root, true)
                .map(|held| (record.name.clone(), held))
        },
        |_, result| held.extend(keep(&mut first_error, result)),
    );
    let (removed, held): (Vec<String>, Vec<Held>) = held.into_iter().unzip();
    containers::release_all(&held, VETH_LINGER);
    match first_error {
        Some(err) => Err(err.into()),
        None => Ok(removed),
    }
}

/// The value of a phase's result; an error is kept in `first` (unless one is already).
fn keep<T>(first: &mut Option<ContainerError>, result: Result<T, ContainerError>) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            first.get_or_insert(err);
            None
        }
    }
}
