//! `kiln run -d` and `kiln restart`: prepare the container as the foreground path does (or
//! stop it), then hand it to a supervisor — kiln itself re-executed as `kiln __supervise
//! ID`, in its own session with stdio on /dev/null — and return once the supervisor says the
//! container started.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::libc;

use super::ContainerError;
use super::health::HealthCheck;
use super::lifecycle::{RunRequest, STARTED, cgroup, remove_parent_cgroups, stop_marker};
use super::prepare::prepare_with;
use crate::state::{ContainerId, Record, Records, Status};
use crate::store::Store;

/// The descriptor on which a supervisor reports the first start.
pub const REPORT_FD: i32 = 3;

/// How long `kiln run -d` waits for the supervisor's report.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates the container and starts it under a supervisor, which also runs `health` (if
/// any); returns its record.
pub fn run_detached(
    store: &Store,
    state_root: &Path,
    request: &RunRequest,
    health: Option<HealthCheck>,
) -> Result<Record, ContainerError> {
    let prepared = prepare_with(store, state_root, request, health)?;
    let id = prepared.record.id.clone();
    // The cgroup is made here so that a machine without one fails before a supervisor.
    let made = cgroup(
        state_root,
        &id,
        &prepared.launch.limits(),
        &prepared.spec,
        false,
    )
    .and_then(|_| spawn_supervisor(state_root, &id));
    if let Err(err) = made {
        let records = &prepared.records;
        if let Ok(record) = records.load(&id) {
            let _ = super::control::remove(records, &record, state_root, true);
        }
        remove_parent_cgroups(state_root);
        return Err(err);
    }
    Ok(prepared.records.load(&id)?)
}

/// Starts `kiln __supervise ID` detached from this process and waits for its report.
pub fn spawn_supervisor(state_root: &Path, id: &ContainerId) -> Result<(), ContainerError> {
    let exe = std::env::current_exe().map_err(super::io_err(Path::new("/proc/self/exe")))?;
    let root = std::fs::canonicalize(state_root).map_err(super::io_err(state_root))?;
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Io {
            path: exe.clone(),
            source: e.into(),
        })?;
    let write_raw = write_end.as_raw_fd();
    let mut command = Command::new(&exe);
    command
        .arg("--root")
        .arg(&root)
        .args(["__supervise", id.as_str()])
        // Not to keep the caller's directory busy for as long as the container runs.
        .current_dir("/")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: between fork and exec only async-signal-safe calls (setsid, dup2) are made.
    unsafe {
        command.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            // dup2 leaves the new descriptor without FD_CLOEXEC, so it survives exec; when
            // the pipe already is REPORT_FD, dup2 does nothing and the flag is cleared here.
            let result = if write_raw == REPORT_FD {
                libc::fcntl(REPORT_FD, libc::F_SETFD, 0)
            } else {
                libc::dup2(write_raw, REPORT_FD)
            };
            if result < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = command.spawn().map_err(super::io_err(&exe))?;
    drop(write_end);
    let report = read_report(read_end);
    // The supervisor outlives kiln (then init reaps it): not waited for.
    drop(child);
    match report {
        Some(line) if line == STARTED => Ok(()),
        Some(line) => {
            let rest = line.strip_prefix("failed ").unwrap_or(&line);
            let (code, message) = rest.split_once(' ').unwrap_or(("125", rest));
            Err(ContainerError::SupervisorFailed {
                message: message.to_string(),
                code: code.parse().unwrap_or(125),
            })
        }
        None => Err(ContainerError::SupervisorFailed {
            message: "the supervisor ended without reporting".into(),
            code: 125,
        }),
    }
}

/// The supervisor's first line, `None` if it closed the pipe first or did not answer in time.
fn read_report(read_end: OwnedFd) -> Option<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let mut file = std::fs::File::from(read_end);
    let mut text = Vec::new();
    let mut buffer = [0u8; 512];
    while !text.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut fds = [libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: `fds` is a valid array of one pollfd.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), 1, left.as_millis() as libc::c_int) };
        if ready <= 0 {
            continue;
        }
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => text.extend_from_slice(&buffer[..n]),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&text);
    text.lines().next().map(str::to_string)
}

/// `kiln restart`: stops the container, then starts it again under a new supervisor.
pub fn restart(
    records: &Records,
    record: &Record,
    state_root: &Path,
    timeout: Option<Duration>,
) -> Result<(), ContainerError> {
    super::control::stop(records, record, timeout)?;
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
    spawn_supervisor(state_root, &record.id)
}
