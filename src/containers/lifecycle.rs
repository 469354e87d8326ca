//! What every stage of a container's life shares — `prepare`, the foreground `run`, the
//! detached path (`detach`, `supervisor`) and `control` (stop, kill, rm): the request, the
//! on-disk launch description (`launch.json`), the container's cgroup (its name, its
//! creation, the cleanup of its parents), the stop marker, the log file, and the removal of
//! its files. Those five files depend on this one and never on each other in a circle:
//! `run` and `detach` use `prepare`; `detach` uses `control`; everything uses this.
//!
//! It does not start, signal or wait for anything.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::health::HealthCheck;
use super::network::Held;
use super::{ContainerError, io_err};
use crate::runtime::RootfsLayout;
use crate::runtime::cgroup::{Cgroup, CgroupEvent, Hierarchy, Limits};
use crate::runtime::spec::RunOptions;
use crate::runtime::supervise::{LogLimits, RestartPolicy};
use crate::state::{ContainerId, Record, Records, Status};

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
    /// `-P`: also every port the image exposes, on a free port of 127.0.0.1.
    pub publish_all: bool,
    /// Named (and anonymous) volumes, made on first use and filled from the image; binds
    /// and tmpfs mounts are in `options`.
    pub volumes: Vec<super::NamedVolume>,
    /// `--label K=V`, kept in the record.
    pub labels: std::collections::BTreeMap<String, String>,
    /// `--log-opt max-size=… max-file=…`: the supervisor's cap on its log.
    pub log: LogLimits,
    /// The root of the networks in `networks` when it is not the state root: a simulated
    /// host's (`kiln up` of a project with hosts).
    pub net_root: Option<PathBuf>,
}

/// What a supervisor needs to start the container again, besides `config.json`:
/// `containers/<id>/launch.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// The image's unpacked layers, lowest first.
    pub lower_dirs: Vec<PathBuf>,
    pub memory: Option<u64>,
    pub cpus: Option<f64>,
    pub pids: Option<u64>,
    /// `--rm`: the supervisor removes the container once it is done.
    #[serde(default)]
    pub remove: bool,
    /// The health check the supervisor runs, if any.
    #[serde(default)]
    pub health: Option<HealthCheck>,
    /// Interfaces on kiln networks, made at every start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<crate::net::attach::Interface>,
    /// Published ports, proxied while the container runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub publish: Vec<super::Published>,
    /// How large its log may grow (`--log-opt`, `log` in kiln.kdl).
    #[serde(default)]
    pub log: LogLimits,
    /// Where its networks live when not in the state root: a simulated host's network root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_root: Option<PathBuf>,
}

impl Launch {
    pub fn limits(&self) -> Limits {
        Limits {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids,
        }
    }

    /// The root whose networks the container is on: [`Launch::net_root`] or `state_root`.
    pub fn net_root<'a>(&'a self, state_root: &'a Path) -> &'a Path {
        self.net_root.as_deref().unwrap_or(state_root)
    }

    pub fn load(dir: &Path) -> Result<Launch, ContainerError> {
        let path = dir.join("launch.json");
        let bytes = std::fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|e| ContainerError::Io {
            path,
            source: std::io::Error::other(e),
        })
    }
}

/// The rootfs layout of the container in `dir`.
pub(crate) fn layout(dir: &Path, launch: &Launch) -> RootfsLayout {
    RootfsLayout {
        lower_dirs: launch.lower_dirs.clone(),
        upper_dir: dir.join("upper"),
        scratch_dir: dir.join("scratch"),
    }
}

/// The cgroup of a container: under `kiln/<state root hash>/`, so two roots never meet.
pub fn cgroup_name(state_root: &Path, id: &ContainerId) -> String {
    format!("{}/{}", root_cgroup(state_root), id.short())
}

/// `kiln/<state root hash>`: the parent of a state root's container cgroups.
fn root_cgroup(state_root: &Path) -> String {
    crate::runtime::cgroup::state_root_group(state_root)
}

/// The container's cgroup with its limits and the device rules of its `spec`: the existing
/// one (a restart), else a new one. `None` without cgroups when no limit was asked for.
pub(crate) fn cgroup(
    state_root: &Path,
    id: &ContainerId,
    limits: &Limits,
    spec: &oci_spec::runtime::Spec,
    trace: bool,
) -> Result<Option<Cgroup>, ContainerError> {
    let rules = crate::runtime::spec::cgroup_rules(spec)?;
    let mut hierarchy = Hierarchy::detect();
    if trace && let Ok(h) = &hierarchy {
        let observer: crate::runtime::cgroup::Observer =
            Arc::new(|event: &CgroupEvent<'_>| super::trace_line(format_args!("{event}")));
        hierarchy = Ok(h.with_observer(observer));
    }
    match hierarchy {
        Ok(h) => {
            let name = cgroup_name(state_root, id);
            match h.open(&name)? {
                Some(existing) => Ok(Some(existing)),
                None => Ok(Some(h.create_with_devices(&name, limits, &rules)?)),
            }
        }
        Err(err) if limits.is_empty() => {
            if trace {
                super::trace_line(format_args!("no cgroups ({err}); running without limits"));
            }
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

/// `kiln/<root hash>` and `kiln` once no container uses them (another kiln process may be
/// creating one at the same moment: then the directory is busy and stays, which is right).
pub(crate) fn remove_parent_cgroups(state_root: &Path) {
    if let Ok(hierarchy) = Hierarchy::detect() {
        let _ = hierarchy.remove_if_empty(&root_cgroup(state_root));
        let _ = hierarchy.remove_if_empty("kiln");
    }
}

/// The file whose existence tells the supervisor not to start the container again.
pub fn stop_marker(records: &Records, id: &ContainerId) -> PathBuf {
    records.dir(id).join("stop")
}

/// The container's log file.
pub fn log_path(records: &Records, id: &ContainerId) -> PathBuf {
    records.dir(id).join("log.jsonl")
}

/// The first line a supervisor writes to the report pipe: `started`, or `failed CODE
/// MESSAGE` when the container could not be started the first time.
pub(crate) const STARTED: &str = "started";

/// `--rm` and `kiln rm -v`: the anonymous volumes the container made go with it, as in
/// Docker; named ones stay. One another container uses too is kept (as `kiln volume rm`
/// would). Call it once the container's record is gone.
pub fn remove_anonymous_volumes(records: &Records, record: &Record) {
    let store = crate::state::volumes::VolumeStore::open(records.state_root());
    let Ok(others) = records.list() else {
        return;
    };
    for reference in &record.volumes {
        let (project, name) = crate::scope::split(reference);
        if let Ok(Some(volume)) = store.get(project, name)
            && volume.anonymous
        {
            // Best effort, like the rest of `--rm`: `kiln volume prune` takes what is left.
            let _ = store.remove(&volume, &others);
        }
    }
}

/// The record and the container's directory (upper layer, scratch, config.json), and what
/// it held on kiln's networks.
pub(crate) fn remove_files(records: &Records, record: &Record) -> Result<(), ContainerError> {
    super::network::release(&held_by(records, record));
    records.remove(record)?;
    Ok(())
}

/// [`remove_files`] but for what the container held on kiln's networks (its `/etc` files
/// aside), which is returned, for the caller to release with others'
/// ([`super::network::release_all`]).
pub(crate) fn remove_files_holding(
    records: &Records,
    record: &Record,
) -> Result<Held, ContainerError> {
    let held = held_by(records, record);
    held.remove_etc();
    records.remove(record)?;
    Ok(held)
}

/// What the container holds on kiln's networks, from its `launch.json`.
fn held_by(records: &Records, record: &Record) -> Held {
    let launch = Launch::load(&records.dir(&record.id)).ok();
    let net_root = launch
        .as_ref()
        .and_then(|l| l.net_root.clone())
        .unwrap_or_else(|| records.state_root().to_path_buf());
    // Its links' engine paths: nothing to carry without it (`kiln up` makes them again).
    if let Some(project) = record.project() {
        let _ = crate::net::link::forget_container(&net_root, project, &record.name);
    }
    Held::new(net_root, record.id.as_str(), launch.map(|l| l.interfaces))
}

/// The record of a container that does not run, made ready for a new start: no stop
/// marker, status `created`, no process or supervisor.
pub(super) fn reset(records: &Records, record: &Record) -> Result<Record, ContainerError> {
    let marker = stop_marker(records, &record.id);
    match std::fs::remove_file(&marker) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(super::io_err(&marker)(err)),
    }
    let mut current = records.load(&record.id)?.reconciled();
    current.state.status = Status::Created;
    current.state.pid = None;
    current.state.pid_start_time = None;
    current.state.supervisor_pid = None;
    current.state.supervisor_start_time = None;
    records.save(&current)?;
    Ok(current)
}
