//! Rolling updates and rollback of a project's instances.
//!
//! `kiln up` replaces a changed instance through [`replace`]: the running container is
//! stopped, taken off its networks (its memberships saved next to it, in `rollout.json`)
//! and set aside under a hidden name (`web-1~retiring`); the new one starts at the same
//! addresses and must become healthy (or, without a health check, be running). Then the
//! old one is kept as `web-1~previous` (one per instance). If it does not, it is removed
//! and the old container comes back under its name, on its networks, with its own image
//! and definition: a rollback. [`rollback`] does the same by
//! hand for every replica of a service, swapping the current and the previous version.
//!
//! It decides the order and waits; starting, stopping and removing are `containers`'
//! business, memberships `net::records`'. It never builds a new container itself: the
//! caller passes how (`start`).

#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{ProjectError, UpEvent};
use crate::containers::{self, ContainerError, HealthCheck, Launch};
use crate::net::records::{Member, MemberRequest, NetRecordError, NetworkRecords};
use crate::state::{Record, Records, Status, hidden_name, split_hidden};

/// The tag of the one previous version kept per instance.
pub const PREVIOUS: &str = "previous";
/// The tag of the current version while it is replaced (by a rollout or a rollback).
const RETIRING: &str = "retiring";
/// What a container gets to stop before SIGKILL when it is replaced.
/// Added to a health check's own limit: the supervisor's first round, process start-up.
const HEALTH_SLACK: Duration = Duration::from_secs(2);
/// How much of the last probe output goes into a message.
const OUTPUT_CHARS: usize = 200;

/// The memberships a kept container had, to be given back when it returns:
/// `containers/<id>/rollout.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Kept {
    members: Vec<KeptMember>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct KeptMember {
    network: String,
    member: Member,
}

/// How long a new instance may take to become healthy: every round its check allows
/// before it may call it unhealthy (`start_period + (interval + timeout) × (retries + 1)`),
/// plus some slack.
pub fn health_deadline(check: &HealthCheck) -> Duration {
    let round = check.interval + check.timeout;
    check.start_period + round * check.retries.saturating_add(1) + HEALTH_SLACK
}

/// The last probe output as one short line.
fn short_output(output: Option<&str>) -> String {
    let joined = output
        .unwrap_or("")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if joined.is_empty() {
        return "no probe output".to_string();
    }
    if joined.chars().count() > OUTPUT_CHARS {
        return joined.chars().take(OUTPUT_CHARS - 1).collect::<String>() + "…";
    }
    joined
}

/// `sha256:` and the first 12 hex digits.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", &hex[..hex.len().min(12)]),
        None => digest.to_string(),
    }
}

fn net_error(err: NetRecordError) -> ProjectError {
    ProjectError::Container(ContainerError::from(
        crate::net::network::NetworkError::from(err),
    ))
}

fn kept_path(records: &Records, record: &Record) -> std::path::PathBuf {
    records.dir(&record.id).join("rollout.json")
}

/// Stops `current`, takes it off its networks (saving the memberships) and renames it to
/// its hidden name with `tag`; returns it as renamed.
fn retire(
    records: &Records,
    state_root: &Path,
    current: &Record,
    tag: &str,
) -> Result<Record, ProjectError> {
    containers::stop(records, current, None)?;
    let launch = Launch::load(&records.dir(&current.id)).ok();
    // A container on a simulated host has its networks in that host's network root.
    let net_root = launch
        .as_ref()
        .map_or(state_root, |l| l.net_root(state_root));
    let networks = NetworkRecords::open(net_root).map_err(net_error)?;
    let interfaces = launch
        .as_ref()
        .map(|l| l.interfaces.clone())
        .unwrap_or_default();
    let mut kept = Kept {
        members: Vec::new(),
    };
    for interface in &interfaces {
        if let Some(member) = networks
            .remove_member(&interface.network, current.id.as_str())
            .map_err(net_error)?
        {
            kept.members.push(KeptMember {
                network: interface.network.clone(),
                member,
            });
        }
    }
    let path = kept_path(records, current);
    let bytes = serde_json::to_vec_pretty(&kept).expect("memberships serialize");
    crate::atomic_file::replace(&path, &bytes)
        .map_err(|source| ContainerError::Io { path, source })?;
    let base = split_hidden(&current.name).map_or(current.name.as_str(), |(base, _)| base);
    Ok(records.rename(current, &hidden_name(base, tag))?)
}

/// Brings a kept container back as `name`: renamed, on its networks at its addresses
/// again, started under a new supervisor.
fn reinstate(
    records: &Records,
    state_root: &Path,
    kept: &Record,
    name: &str,
) -> Result<Record, ProjectError> {
    let record = records.rename(kept, name)?;
    let path = kept_path(records, &record);
    let saved: Kept = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ContainerError::Io {
            path: path.clone(),
            source: std::io::Error::other(e),
        })?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Kept {
            members: Vec::new(),
        },
        Err(source) => return Err(ContainerError::Io { path, source }.into()),
    };
    let launch = Launch::load(&records.dir(&record.id)).ok();
    let net_root = launch
        .as_ref()
        .map_or(state_root, |l| l.net_root(state_root));
    let networks = NetworkRecords::open(net_root).map_err(net_error)?;
    for kept in saved.members {
        networks
            .add_member(
                &kept.network,
                MemberRequest {
                    container_id: record.id.to_string(),
                    container_name: name.to_string(),
                    aliases: kept.member.aliases,
                    interface: kept.member.interface,
                    address: Some(kept.member.address),
                    reserved: Default::default(),
                    mac: kept.member.mac,
                },
            )
            .map_err(net_error)?;
    }
    let _ = std::fs::remove_file(&path);
    containers::restart(records, &record, state_root, None)?;
    Ok(records.load(&record.id)?)
}

/// Stops and removes a container if it exists (errors ignored: it is on its way out).
fn discard(
    records: &Records,
    state_root: &Path,
    project: Option<&str>,
    name: &str,
    unless: Option<&Record>,
) {
    if let Ok(Some(record)) = records.find_member(project, name)
        && unless.is_none_or(|u| u.id != record.id)
    {
        let _ = containers::stop(records, &record, None);
        let _ = containers::remove(records, &record, state_root, true);
    }
}

/// Waits until the container `name` of `project` is ready: healthy when it has a health check
/// (within [`health_deadline`]), else running. `Err` says why not, about `what` ("new
/// version").
pub(super) fn wait_ready(
    records: &Records,
    project: Option<&str>,
    name: &str,
    what: &str,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let failed = |reason: String| ProjectError::NotServing {
        name: name.to_string(),
        reason,
    };
    let record = records.find_member(project, name)?.ok_or_else(|| {
        ProjectError::Record(crate::state::RecordError::NotFound {
            query: name.to_string(),
        })
    })?;
    let check = Launch::load(&records.dir(&record.id))
        .ok()
        .and_then(|l| l.health);
    let restarts = record.state.restarts;
    let exited = |record: &Record| {
        let state = &record.state;
        let ended = state.status == Status::Exited
            && (state.exit_code.is_some() || !state.supervisor_alive());
        (ended || state.restarts > restarts).then(|| state.exit_code.unwrap_or(-1))
    };
    let Some(check) = check else {
        let record = records.load(&record.id)?.reconciled();
        return match exited(&record) {
            Some(code) => Err(failed(format!("{what} exited with code {code}"))),
            None => Ok(()),
        };
    };
    let limit = health_deadline(&check);
    let deadline = Instant::now() + limit;
    events(UpEvent::Waiting {
        name: name.to_string(),
        on: "healthy".to_string(),
    });
    // Woken by each change of the record (the supervisor records every health round).
    let watch = records.watch(&record.id).ok();
    loop {
        let record = records.load(&record.id)?.reconciled();
        let state = &record.state;
        let output = || short_output(state.health_output.as_deref());
        match state.health.as_deref() {
            Some("healthy") => {
                events(UpEvent::Healthy(name.to_string()));
                return Ok(());
            }
            Some("unhealthy") => return Err(failed(format!("{what} unhealthy ({})", output()))),
            _ => {}
        }
        if let Some(code) = exited(&record) {
            return Err(failed(format!("{what} exited with code {code}")));
        }
        if Instant::now() >= deadline {
            return Err(failed(format!(
                "{what} not healthy within {}s ({})",
                limit.as_secs(),
                output()
            )));
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(RECHECK);
        match &watch {
            Some(watch) => {
                watch.wait(left);
            }
            None => std::thread::sleep(left.min(Duration::from_millis(25))),
        }
    }
}

/// How long a wait for a record change may last before the record is read again anyway.
const RECHECK: Duration = Duration::from_millis(500);

/// Replaces the running (or ended) instance `existing` with a new one made by `start`.
/// `existing` is stopped and set aside; once the new one is ready it becomes the kept
/// `NAME~previous` (dropping an older one). If the new one does not start or is not ready
/// (see [`wait_ready`]), it is removed and `existing` comes back — the version kept
/// before stays kept — and the error says what happened.
pub(super) fn replace(
    records: &Records,
    state_root: &Path,
    existing: &Record,
    start: &dyn Fn() -> Result<(), ProjectError>,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let name = existing.name.clone();
    let project = existing.project();
    let service = existing
        .member
        .as_ref()
        .map_or_else(|| name.clone(), |m| m.service.clone());
    let kept_as = hidden_name(&name, PREVIOUS);
    // Left by a rollout that was interrupted.
    discard(
        records,
        state_root,
        project,
        &hidden_name(&name, RETIRING),
        None,
    );
    let retired = retire(records, state_root, existing, RETIRING)?;
    events(UpEvent::Retired {
        name: name.clone(),
        kept_as: kept_as.clone(),
    });
    let outcome = start().and_then(|()| wait_ready(records, project, &name, "new version", events));
    let reason = match outcome {
        Ok(()) => {
            discard(records, state_root, project, &kept_as, None);
            records.rename(&retired, &kept_as)?;
            return Ok(());
        }
        Err(ProjectError::NotServing { reason, .. }) => reason,
        Err(err) => format!(
            "new version did not start: {}",
            crate::causes::one_line(&err)
        ),
    };
    discard(records, state_root, project, &name, Some(&retired));
    let digest = short_digest(&retired.image_digest);
    if let Err(err) = reinstate(records, state_root, &retired, &name) {
        return Err(ProjectError::RollbackFailed {
            name,
            reason,
            source: Box::new(err),
        });
    }
    events(UpEvent::RolledBack {
        name: name.clone(),
        digest: digest.clone(),
    });
    if let Err(err) = wait_ready(records, project, &name, "previous version", events) {
        return Err(ProjectError::RollbackFailed {
            name,
            reason,
            source: Box::new(err),
        });
    }
    Err(ProjectError::RolloutStopped {
        name,
        service,
        reason,
        digest,
    })
}

/// `kiln rollback SERVICE`: every instance of `service` in `project` that has a previous
/// version kept gets it back, one at a time, each ready before the next; the version it
/// ran becomes the kept one (so a second rollback undoes the first). Returns the
/// instances rolled back.
pub fn rollback(
    state_root: &Path,
    project: &str,
    service: &str,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<Vec<String>, ProjectError> {
    let records = Records::open(state_root)?;
    let mut kept: Vec<(String, Record)> = super::project_records(&records, project)?
        .into_iter()
        .filter(|r| r.member.as_ref().is_some_and(|m| m.service == service))
        .filter_map(|r| match split_hidden(&r.name) {
            Some((base, PREVIOUS)) => Some((base.to_string(), r.clone())),
            _ => None,
        })
        .collect();
    if kept.is_empty() {
        return Err(ProjectError::NothingToRollBack {
            service: service.to_string(),
        });
    }
    // web-2 before web-10.
    kept.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    let mut done = Vec::new();
    for (name, previous) in kept {
        let current = records.find_member(Some(project), &name).ok().flatten();
        let retiring = match &current {
            Some(current) => {
                let retired = retire(&records, state_root, current, RETIRING)?;
                events(UpEvent::Retired {
                    name: name.clone(),
                    kept_as: hidden_name(&name, PREVIOUS),
                });
                Some(retired)
            }
            None => None,
        };
        let digest = short_digest(&previous.image_digest);
        if let Err(err) = reinstate(&records, state_root, &previous, &name) {
            if let Some(retiring) = retiring {
                // Put the current version back rather than leave the instance down.
                discard(&records, state_root, Some(project), &name, Some(&retiring));
                let _ = reinstate(&records, state_root, &retiring, &name);
            }
            return Err(err);
        }
        if let Some(retiring) = retiring {
            records.rename(&retiring, &hidden_name(&name, PREVIOUS))?;
        }
        events(UpEvent::RolledBack {
            name: name.clone(),
            digest,
        });
        wait_ready(&records, Some(project), &name, "previous version", events)?;
        done.push(name);
    }
    Ok(done)
}
