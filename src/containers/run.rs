//! `kiln run` in the foreground: image → rootfs → spec → cgroup → record → run → cleanup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{ContainerError, io_err};
use crate::image::StoredImage;
use crate::runtime::cgroup::{Cgroup, CgroupEvent, Hierarchy, Limits};
use crate::runtime::records::{
    ContainerId, ContainerState, Record, Records, Status, generate_name,
};
use crate::runtime::spec::{RunOptions, container_spec, to_json};
use crate::runtime::{RootfsLayout, SandboxStatus, StartHooks, Stdio, TraceEvent, run_foreground};
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
    let canonical = std::fs::canonicalize(state_root).unwrap_or_else(|_| state_root.into());
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex();
    format!("kiln/{}/{}", &hash[..12], id.short())
}

struct Hooks<'a> {
    cgroup: Option<&'a Cgroup>,
    trace: bool,
    records: &'a Records,
    record: &'a mut Record,
}

impl StartHooks for Hooks<'_> {
    fn before_continue(&mut self, pid: i32) -> Result<(), String> {
        if let Some(cgroup) = self.cgroup {
            cgroup.attach(pid).map_err(|e| e.to_string())?;
        }
        let state = &mut self.record.state;
        state.status = Status::Running;
        state.pid = Some(pid);
        state.pid_start_time = crate::runtime::records::process_start_time(pid);
        state.started_at = Some(now());
        self.records.save(self.record).map_err(|e| e.to_string())
    }

    fn trace(&mut self, event: &TraceEvent<'_>) {
        if self.trace {
            eprintln!("trace: {event}");
        }
    }
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    crate::image::rfc3339_utc(secs)
}

/// Runs a container in the foreground until it exits.
pub fn run(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
) -> Result<RunResult, ContainerError> {
    // Everything that can be refused is refused before anything is created.
    let image = StoredImage::load(store, &request.image)?;
    let limits = Limits {
        memory: request.options.memory,
        cpus: request.options.cpus,
        pids: request
            .options
            .pids_limit
            .and_then(|p| u64::try_from(p).ok()),
    };
    limits.validate()?;
    if let Some(name) = &request.name {
        crate::runtime::records::validate_name(name)?;
    }
    let records = Records::open(state_root)?;
    let mut stack = Vec::new();
    for (layer, diff_id) in image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
    {
        let diff_id = diff_id.parse().map_err(|_| ContainerError::Io {
            path: store.blob_path(&image.manifest.config.digest),
            source: std::io::Error::other(format!("bad diff_id `{diff_id}`")),
        })?;
        stack.push((layer.clone(), diff_id));
    }
    let lower_dirs = crate::build::unpack_stack(store, state_root, &stack)
        .map_err(|e| ContainerError::Layers(Box::new(e)))?;
    let id = ContainerId::generate().map_err(io_err(Path::new("/dev/urandom")))?;
    let mut options = request.options.clone();
    if options.hostname.is_none() {
        options.hostname = Some(id.short().to_string());
    }
    let roots: Vec<&Path> = lower_dirs.iter().map(PathBuf::as_path).collect();
    let spec = container_spec(&image.config.config, &options, &roots)?;
    let name = request.name.clone().unwrap_or_else(|| generate_name(&id));
    let mut record = Record {
        id: id.clone(),
        name: name.clone(),
        image: request.image.clone(),
        image_digest: image.descriptor.digest.to_string(),
        created: now(),
        command: spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default(),
        restart: "no".into(),
        state: ContainerState::default(),
    };
    records.create(&record)?;
    let dir = records.dir(&id);
    let result = run_recorded(
        &records,
        &mut record,
        &dir,
        state_root,
        &spec,
        lower_dirs,
        &limits,
        request,
    );
    if request.remove {
        remove_files(&records, &record)?;
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_recorded(
    records: &Records,
    record: &mut Record,
    dir: &Path,
    state_root: &Path,
    spec: &oci_spec::runtime::Spec,
    lower_dirs: Vec<PathBuf>,
    limits: &Limits,
    request: &RunRequest,
) -> Result<RunResult, ContainerError> {
    let config = dir.join("config.json");
    crate::store::write_atomically(&config, &to_json(spec)).map_err(io_err(&config))?;
    let upper_dir = dir.join("upper");
    let scratch_dir = dir.join("scratch");
    for d in [&upper_dir, &scratch_dir] {
        std::fs::create_dir_all(d).map_err(io_err(d))?;
    }
    let mut hierarchy = Hierarchy::detect();
    if request.trace
        && let Ok(h) = &hierarchy
    {
        let observer: crate::runtime::cgroup::Observer =
            Arc::new(|event: &CgroupEvent<'_>| eprintln!("trace: {event}"));
        hierarchy = Ok(h.with_observer(observer));
    }
    let cgroup = match hierarchy {
        Ok(h) => Some(h.create(&cgroup_name(state_root, &record.id), limits)?),
        // Without cgroups, run only when no limit was asked for.
        Err(err) if limits.is_empty() => {
            if request.trace {
                eprintln!("trace: no cgroups ({err}); running without limits");
            }
            None
        }
        Err(err) => return Err(err.into()),
    };
    let layout = RootfsLayout {
        lower_dirs,
        upper_dir,
        scratch_dir,
    };
    let stdio = if request.options.tty {
        Stdio::Pty
    } else {
        Stdio::Inherit {
            stdin: request.options.interactive,
        }
    };
    let mut hooks = Hooks {
        cgroup: cgroup.as_ref(),
        trace: request.trace,
        records,
        record,
    };
    let outcome = run_foreground(spec, &layout, stdio, &mut hooks);
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
    state.finished_at = Some(now());
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

/// Removes a container that is not running: its cgroup if one is left, files and record.
pub fn remove(
    records: &Records,
    record: &Record,
    state_root: &Path,
    force: bool,
) -> Result<(), ContainerError> {
    let current = record.reconciled();
    if current.state.status == Status::Running {
        if !force {
            return Err(ContainerError::Running {
                name: record.name.clone(),
            });
        }
        if let Some(pid) = current.state.pid {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
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
fn remove_parent_cgroups(state_root: &Path) {
    if let Ok(hierarchy) = Hierarchy::detect() {
        let id = ContainerId::parse(&"0".repeat(64)).expect("a valid id");
        let name = cgroup_name(state_root, &id);
        let parent = name.rsplit_once('/').map_or("kiln", |(p, _)| p);
        let _ = hierarchy.remove_if_empty(parent);
        let _ = hierarchy.remove_if_empty("kiln");
    }
}

/// The record and the container's directory (upper layer, scratch, config.json).
fn remove_files(records: &Records, record: &Record) -> Result<(), ContainerError> {
    records.remove(record)?;
    Ok(())
}
