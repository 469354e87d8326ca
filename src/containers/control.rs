//! `kiln stop`, `kiln kill` and `kiln rm`: signals to a container's pid 1, the stop marker
//! that keeps its supervisor from restarting it, waiting for the supervisor to record the
//! end, and removing a container (its cgroup, then its files through `lifecycle`). It does
//! not start containers (`kiln restart` is `detach`'s).

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::ContainerError;
use super::lifecycle::{
    cgroup_name, remove_files, remove_files_holding, remove_parent_cgroups, stop_marker,
};
use super::network::Held;
use crate::runtime::cgroup::Hierarchy;
use crate::runtime::spec::{STOP_SIGNAL_ANNOTATION, STOP_TIMEOUT_ANNOTATION};
use crate::state::{Record, Records, Status};

/// How long to wait for a supervisor to notice its container ended and record it.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(10);

/// `SIGTERM`, `TERM`, `term` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal {
        signal: text.to_string(),
    };
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().map_err(|_| bad())
}

/// How long `kiln stop` waits after the stop signal unless the container or the caller
/// says otherwise (Docker's default).
pub(crate) const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The annotations of the container's `config.json`, read without the rest of the spec
/// (`kiln down` reads them for every container of a project).
fn annotations(records: &Records, record: &Record) -> HashMap<String, String> {
    #[derive(serde::Deserialize)]
    struct Annotated {
        #[serde(default)]
        annotations: Option<HashMap<String, String>>,
    }
    let config = records.dir(&record.id).join("config.json");
    std::fs::read(config)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Annotated>(&bytes).ok())
        .and_then(|a| a.annotations)
        .unwrap_or_default()
}

/// The stop signal of a container with these annotations, else SIGTERM.
fn signal_of(annotations: &HashMap<String, String>) -> Signal {
    annotations
        .get(STOP_SIGNAL_ANNOTATION)
        .and_then(|text| parse_signal(text).ok())
        .unwrap_or(Signal::SIGTERM)
}

/// The stop timeout of a container with these annotations (`--stop-timeout`, `stop-timeout`
/// in kiln.kdl), else [`DEFAULT_STOP_TIMEOUT`].
fn timeout_of(annotations: &HashMap<String, String>) -> Duration {
    annotations
        .get(STOP_TIMEOUT_ANNOTATION)
        .and_then(|text| text.parse().ok())
        .map_or(DEFAULT_STOP_TIMEOUT, Duration::from_secs)
}

/// The container's stop signal (`--stop-signal`, else the image's StopSignal, recorded in
/// its `config.json`), else SIGTERM.
pub fn stop_signal(records: &Records, record: &Record) -> Signal {
    signal_of(&annotations(records, record))
}

/// Keeps the supervisor from starting the container again.
pub fn mark_stopped(records: &Records, record: &Record) -> Result<(), ContainerError> {
    let marker = stop_marker(records, &record.id);
    std::fs::write(&marker, b"").map_err(super::io_err(&marker))
}

/// Sends `signal` to the container's pid 1 if it runs (the recorded process, not a recycled
/// pid). `Ok(false)` when it does not run.
pub fn signal_container(record: &Record, signal: Signal) -> Result<bool, ContainerError> {
    let Some(process) = record.state.process() else {
        return Ok(false);
    };
    process.signal(signal).map_err(|source| ContainerError::Io {
        path: format!("/proc/{}", process.pid()).into(),
        source,
    })
}

/// Whether process `pid` takes `signal`: it has a handler for it (`SigCgt` of
/// /proc/PID/status), or blocks it (`SigBlk`: the kernel queues a blocked signal even
/// for a namespace's init, which then waits for it, as `--init`'s does).
fn catches(pid: i32, signal: Signal) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    caught_in(&status, signal)
}

pub(crate) fn caught_in(status: &str, signal: Signal) -> Option<bool> {
    let mask = |key: &str| {
        let text = status.lines().find_map(|l| l.strip_prefix(key))?.trim();
        u64::from_str_radix(text, 16).ok()
    };
    let taken = mask("SigCgt:")? | mask("SigBlk:").unwrap_or(0);
    Some(taken & (1 << (signal as i32 - 1)) != 0)
}

/// `kiln kill`: marks the container stopped (no restart) and signals it.
pub fn kill_container(
    records: &Records,
    record: &Record,
    signal: Signal,
) -> Result<(), ContainerError> {
    let current = records.load(&record.id)?.reconciled();
    if !matches!(current.state.status, Status::Running | Status::Restarting) {
        return Err(ContainerError::NotRunning {
            name: record.name.clone(),
        });
    }
    mark_stopped(records, record)?;
    signal_container(&current, signal)?;
    Ok(())
}

/// `kiln stop`: the stop signal, SIGKILL after `timeout` (`None`: the container's own
/// stop timeout, see [`timeout_of`]), then waits for the supervisor to record the exit.
/// Stopping a container that does not run does nothing.
pub fn stop(
    records: &Records,
    record: &Record,
    timeout: Option<Duration>,
) -> Result<(), ContainerError> {
    if let Some(stopping) = begin_stop(records, record, timeout)? {
        finish_stop(records, &stopping);
    }
    Ok(())
}

/// A container that was sent its stop signal ([`begin_stop`]) and is not yet waited for
/// ([`finish_stop`]): stopping many containers signals them all before waiting for any.
pub struct Stopping {
    record: Record,
    /// Its pid 1, when the signal was one it catches: waited for until `deadline`.
    process: Option<crate::process::Pidfd>,
    deadline: Instant,
}

/// The first half of [`stop`]: the stop marker and the stop signal. `None` when the
/// container does not run.
pub fn begin_stop(
    records: &Records,
    record: &Record,
    timeout: Option<Duration>,
) -> Result<Option<Stopping>, ContainerError> {
    let current = records.load(&record.id)?.reconciled();
    if !matches!(current.state.status, Status::Running | Status::Restarting)
        && !current.state.supervisor_alive()
    {
        return Ok(None);
    }
    let annotations = annotations(records, record);
    let timeout = timeout.unwrap_or_else(|| timeout_of(&annotations));
    mark_stopped(records, record)?;
    let signal = signal_of(&annotations);
    let process = current.state.process().filter(|process| {
        // pid 1 of a pid namespace only gets the signals it has a handler for: one it does
        // not catch is dropped by the kernel, and waiting `timeout` for it would be time lost.
        let caught = catches(process.pid(), signal).unwrap_or(true);
        process.signal(signal).unwrap_or(false) && caught
    });
    Ok(Some(Stopping {
        record: record.clone(),
        process,
        deadline: Instant::now() + timeout,
    }))
}

/// The second half of [`stop`]: waits for pid 1 until the stop timeout (returning the
/// moment it exits), kills it then, and waits for the supervisor to record the end.
pub fn finish_stop(records: &Records, stopping: &Stopping) {
    if let Some(process) = &stopping.process {
        process.wait(stopping.deadline.saturating_duration_since(Instant::now()));
    }
    wait_supervisor(records, &stopping.record, true);
}

/// How often [`wait_supervisor`] looks at the record again while it waits: only to kill a
/// run that began before the stop marker was seen. The wait itself ends the moment the
/// supervisor (or the container) exits.
const RECHECK: Duration = Duration::from_millis(250);

/// Waits until the supervisor is gone, SIGKILLing the container's pid 1 (whichever run is
/// current: a restart may have begun before the marker was seen) when `kill` is set. After
/// [`SUPERVISOR_GRACE`], kills the supervisor too. `true` if it ended by itself.
pub fn wait_supervisor(records: &Records, record: &Record, kill_container: bool) -> bool {
    let deadline = Instant::now() + SUPERVISOR_GRACE;
    loop {
        let Ok(current) = records.load(&record.id) else {
            return true;
        };
        let state = &current.state;
        let process = state.process();
        if kill_container && let Some(process) = &process {
            let _ = process.signal(Signal::SIGKILL);
        }
        // The supervisor's end, or without one (a foreground `kiln run`, or a supervisor
        // that died) the container's.
        let Some(waited) = state.supervisor().or(process) else {
            return true;
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if waited.wait(left.min(RECHECK)) {
            if state.supervisor_pid.is_some_and(|pid| pid == waited.pid()) {
                return true;
            }
            // The container ended and nobody supervised it: its record may still say so.
            continue;
        }
        if Instant::now() >= deadline {
            let _ = waited.signal(Signal::SIGKILL);
            let _ = signal_container(&current, Signal::SIGKILL);
            return false;
        }
    }
}

/// Removes a container: its cgroup if one is left, files and record. A running one (and
/// its supervisor) only with `force`, killed first.
pub fn remove(
    records: &Records,
    record: &Record,
    state_root: &Path,
    force: bool,
) -> Result<(), ContainerError> {
    end_and_clear(records, record, state_root, force)?;
    remove_files(records, record)
}

/// [`remove`], except for what the container held on kiln's networks (its `/etc` files
/// aside): returned, for the caller to release with other containers' at once
/// ([`super::release_all`]).
pub fn remove_holding(
    records: &Records,
    record: &Record,
    state_root: &Path,
    force: bool,
) -> Result<Held, ContainerError> {
    end_and_clear(records, record, state_root, force)?;
    remove_files_holding(records, record)
}

/// What removing starts with: the container ended (with `force`; else it must not run)
/// and its cgroup, if one is left, removed.
fn end_and_clear(
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
        mark_stopped(records, record)?;
        wait_supervisor(records, record, true);
    }
    if let Ok(hierarchy) = Hierarchy::detect()
        && let Some(cgroup) = hierarchy.open(&cgroup_name(state_root, &record.id))?
    {
        cgroup.kill_all()?;
        cgroup.remove()?;
        remove_parent_cgroups(state_root);
    }
    Ok(())
}
