//! `kiln run -d` and `kiln restart`: prepare the container as the foreground path does (or
//! stop it), then hand it to a supervisor — `kiln-supervise` beside kiln, else kiln itself
//! re-executed as `kiln __supervise ID` — in its own session with stdio on /dev/null, and
//! return once the supervisor says the container started.

use std::ffi::{CString, OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::libc;

use super::ContainerError;
use super::health::HealthCheck;
use super::lifecycle::{RunRequest, STARTED, cgroup, remove_parent_cgroups};
use super::prepare::prepare_with;
use super::supervise_exe::{supervisor_command, supervisor_environment};
use crate::state::{ContainerId, Record, Records};
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

/// Starts the supervisor of container `id` (`kiln-supervise` or `kiln __supervise`: see
/// [`supervisor_command`]) detached from this process and waits for its report.
///
/// The supervisor is started with `posix_spawn` (a `vfork`-like clone sharing this
/// process's memory until the exec), never `fork`: `kiln up` starts hundreds of supervisors
/// from one process with a thread each, and a fork copies the page tables of every one of
/// those threads' stacks — a cost that grew with the number of containers started so far.
pub fn spawn_supervisor(state_root: &Path, id: &ContainerId) -> Result<(), ContainerError> {
    let kiln = std::env::current_exe().map_err(super::io_err(Path::new("/proc/self/exe")))?;
    let root = std::fs::canonicalize(state_root).map_err(super::io_err(state_root))?;
    let (exe, argv) = supervisor_command(&kiln, &root, id.as_str());
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| ContainerError::Io {
            path: exe.clone(),
            source: e.into(),
        })?;
    let args: Vec<&OsStr> = argv.iter().map(OsString::as_os_str).collect();
    let spawned = spawn_detached(&exe, &args, &write_end);
    drop(write_end);
    // The supervisor outlives kiln (then init reaps it): not waited for.
    spawned.map_err(|errno| ContainerError::Io {
        path: exe.clone(),
        source: errno.into(),
    })?;
    match read_report(read_end) {
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

/// Runs `exe` with `args` (the first is its argv[0]) and this process's environment (with
/// the supervisor's allocator settings: `supervisor_environment`), in a
/// session of its own, its working directory `/`, stdio on /dev/null and `report` on
/// [`REPORT_FD`] (its only other descriptor: everything kiln opens is close-on-exec).
fn spawn_detached(exe: &Path, args: &[&OsStr], report: &OwnedFd) -> nix::Result<nix::unistd::Pid> {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawn};
    use std::os::unix::ffi::OsStrExt;
    let to_c = |s: &OsStr| CString::new(s.as_bytes()).map_err(|_| nix::errno::Errno::EINVAL);
    let argv = args
        .iter()
        .map(|a| to_c(a))
        .collect::<nix::Result<Vec<_>>>()?;
    let envp = supervisor_environment(std::env::vars_os())
        .iter()
        .map(|pair| to_c(pair))
        .collect::<nix::Result<Vec<_>>>()?;
    let mut attr = PosixSpawnAttr::init()?;
    // setsid in the child (glibc ≥ 2.26); nix names no constant for it.
    attr.set_flags(PosixSpawnFlags::from_bits_retain(
        nix::libc::POSIX_SPAWN_SETSID as _,
    ))?;
    let mut actions = PosixSpawnFileActions::init()?;
    for fd in 0..3 {
        let flags = if fd == 0 {
            OFlag::O_RDONLY
        } else {
            OFlag::O_WRONLY
        };
        actions.add_open(fd, c"/dev/null", flags, nix::sys::stat::Mode::empty())?;
    }
    // dup2 clears FD_CLOEXEC on the copy (and on the descriptor itself when it already is
    // REPORT_FD: POSIX asks it of posix_spawn's dup2, glibc ≥ 2.29 does it).
    actions.add_dup2(report.as_raw_fd(), REPORT_FD)?;
    // Not to keep the caller's directory busy for as long as the container runs: the
    // supervisor moves to `/` first thing (`supervise_entry`; nix has no posix_spawn
    // chdir action).
    posix_spawn(exe, &actions, &attr, &argv, &envp)
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
    super::lifecycle::reset(records, record)?;
    spawn_supervisor(state_root, &record.id)
}
