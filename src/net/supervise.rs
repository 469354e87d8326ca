//! Supervision of a state root's network services: the long-lived daemons that serve every
//! network of a root from kiln's network namespace (the DNS daemon `kiln __netd`, kiln's
//! impairment engine `kiln __linkd`; any other per-root daemon joins by adding a [`Service`]
//! to `net::SERVICES`).
//!
//! One small process per root, `kiln __netsup`, starts every service that is wanted (its
//! [`Service::wanted`] reads the records), watches it through a pidfd and starts it again
//! at once when it dies, backing off when it keeps dying, and exits when nothing is wanted
//! any more. The services watch the supervisor in turn ([`revive`], called from their main
//! loop): one SIGKILL, of either, never leaves a root without its services for longer than
//! a restart. [`ensure`] — what `network create` and `kiln up` call — starts the
//! supervisor when it is missing and then waits until every wanted service *answers* its
//! [`Service::ready`] probe (a pid file proves nothing), or fails loudly with the log.
//!
//! Files, all in `$ROOT/net/`: `netsup.pid`, `netsup.log`, `netsup.lock` (held while a
//! supervisor is started or stopped), and per service `NAME.pid` (pid and start time, so a
//! recycled pid is never mistaken for it) and `NAME.log` (its stderr). Whoever starts a
//! process writes its pid file.
//!
//! A new per-root daemon joins in three steps: a [`Service`] in [`super::SERVICES`] (its name,
//! its hidden subcommand and arguments, whether its process lives in the kiln host
//! namespace, a cheap `wanted` and a `ready` that asks it a real question); a call to
//! [`revive`] from its main loop; and [`ensure`] where a command needs it, [`stop`] where
//! the last user goes. The service then neither forks, nor writes pid files, nor restarts
//! itself: it serves, and exits 0 when it is no longer wanted.
//!
//! It knows nothing of what a service does; the supervisor's own threads never enter a
//! namespace (a service's child enters it between fork and exec).

use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::process::{Pidfd, process_start_time};

/// A daemon of a state root that the supervisor keeps running while it is wanted.
#[derive(Debug)]
pub struct Service {
    /// Short name: its files are `$ROOT/net/NAME.pid` and `NAME.log`.
    pub name: &'static str,
    /// The hidden subcommand that runs it, with its arguments: `kiln --root ROOT ARGS…`.
    /// It serves until SIGTERM, or until it is no longer wanted (then it exits by itself,
    /// status 0).
    pub args: &'static [&'static str],
    /// Started inside the kiln host namespace (a service whose whole process lives there);
    /// otherwise in the supervisor's own, the machine's (a service that enters the
    /// namespace thread by thread, as the DNS daemon does).
    pub in_host_namespace: bool,
    /// What messages call it: "the DNS daemon".
    pub what: &'static str,
    /// Whether it should run now. Called by the supervisor every [`RESCAN`]: make it cheap
    /// (a directory listing, not a parse of every record).
    pub wanted: fn(&Path) -> bool,
    /// Whether it serves: `Ok` once it answers a real request. Called by [`ensure`] only.
    pub ready: fn(&Path) -> io::Result<()>,
}

/// The supervisor's own name (its files: `netsup.pid`, `netsup.log`).
const SUPERVISOR: &str = "netsup";
/// How often the supervisor rereads what is wanted when no service dies meanwhile.
pub const RESCAN: Duration = Duration::from_millis(250);
/// A service that ran this long before dying is restarted at once again.
const STABLE: Duration = Duration::from_secs(10);
/// The longest wait between two restarts of a service that keeps dying.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long [`ensure`] waits for a service to answer.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a stopped service has after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ServiceError {
    #[error("cannot start {what}")]
    Spawn {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("{what} does not answer after {}s", READY_TIMEOUT.as_secs())]
    #[diagnostic(help("why is in its log, {}", log.display()))]
    NotAnswering {
        what: &'static str,
        log: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn net_dir(state_root: &Path) -> PathBuf {
    state_root.join("net")
}

fn pid_path(state_root: &Path, name: &str) -> PathBuf {
    net_dir(state_root).join(format!("{name}.pid"))
}

/// Where the service or supervisor `name` writes its stderr.
pub fn log_path(state_root: &Path, name: &str) -> PathBuf {
    net_dir(state_root).join(format!("{name}.log"))
}

/// The pid of `name` (a service, or the supervisor) if it runs.
pub fn running(state_root: &Path, name: &str) -> Option<i32> {
    let text = std::fs::read_to_string(pid_path(state_root, name)).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    (process_start_time(pid) == Some(start)).then_some(pid)
}

fn write_pid(state_root: &Path, name: &str, pid: i32) -> io::Result<()> {
    let start = process_start_time(pid).unwrap_or(0);
    // No fsync: a pid file means nothing after a power cut anyway.
    crate::atomic_file::replace(
        &pid_path(state_root, name),
        format!("{pid} {start}\n").as_bytes(),
    )
}

/// Removes `name`'s pid file if it still names `pid`.
fn forget_pid(state_root: &Path, name: &str, pid: i32) {
    let path = pid_path(state_root, name);
    if std::fs::read_to_string(&path).is_ok_and(|t| t.starts_with(&format!("{pid} "))) {
        let _ = std::fs::remove_file(path);
    }
}

/// `kiln --root ROOT ARGS…` in a session of its own (a Ctrl-C of the command that started
/// it must not reach it), stdio closed, stderr appended to `$ROOT/net/NAME.log`; in the kiln
/// host namespace when `in_host_namespace` (the child enters it between fork and exec).
fn spawn(
    state_root: &Path,
    name: &str,
    args: &[&str],
    in_host_namespace: bool,
) -> io::Result<std::process::Child> {
    let exe = std::env::current_exe()?;
    let root = std::fs::canonicalize(state_root)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&root, name))?;
    let mut command = if in_host_namespace {
        let ns =
            super::NetNs::open(&super::HostNamespace::path(&root)).map_err(io::Error::other)?;
        super::command_in(&ns, exe)
    } else {
        std::process::Command::new(exe)
    };
    command
        .arg("--root")
        .arg(&root)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        });
    }
    command.spawn()
}

/// An exclusive lock on `$ROOT/net/netsup.lock`; `None` when `wait` is false and another
/// process holds it.
fn lock(
    state_root: &Path,
    wait: bool,
) -> Result<Option<nix::fcntl::Flock<std::fs::File>>, ServiceError> {
    let path = net_dir(state_root).join("netsup.lock");
    let io_error = |source| ServiceError::Io {
        path: path.clone(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_error)?;
    let arg = if wait {
        nix::fcntl::FlockArg::LockExclusive
    } else {
        nix::fcntl::FlockArg::LockExclusiveNonblock
    };
    match nix::fcntl::Flock::lock(file, arg) {
        Ok(lock) => Ok(Some(lock)),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) if !wait => Ok(None),
        Err((_, errno)) => Err(io_error(errno.into())),
    }
}

/// Starts the supervisor (the caller holds the lock) and records its pid. A thread reaps
/// it, so it never lingers as a zombie of a long-lived caller (a service that revived it).
fn start_supervisor(state_root: &Path) -> Result<(), ServiceError> {
    let spawn_error = |source| ServiceError::Spawn {
        what: "the network service supervisor".into(),
        source,
    };
    let mut child = spawn(state_root, SUPERVISOR, &["__netsup"], false).map_err(spawn_error)?;
    let pid = child.id() as i32;
    write_pid(state_root, SUPERVISOR, pid).map_err(|source| ServiceError::Io {
        path: pid_path(state_root, SUPERVISOR),
        source,
    })?;
    std::thread::spawn(move || child.wait());
    Ok(())
}

/// Makes sure the supervisor runs and every wanted service answers; fails, naming the
/// service and its log, if one does not within [`READY_TIMEOUT`].
pub fn ensure(state_root: &Path) -> Result<(), ServiceError> {
    {
        let _lock = lock(state_root, true)?;
        if running(state_root, SUPERVISOR).is_none() {
            start_supervisor(state_root)?;
        }
    }
    for service in super::SERVICES.iter().filter(|s| (s.wanted)(state_root)) {
        wait_ready(state_root, service)?;
    }
    Ok(())
}

fn wait_ready(state_root: &Path, service: &Service) -> Result<(), ServiceError> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        // Both: it answers, and it is the process the pid file names (the file is written
        // just after the start, and the service may be quicker than its supervisor).
        let ready = (service.ready)(state_root).and_then(|()| {
            running(state_root, service.name)
                .map(drop)
                .ok_or_else(|| io::Error::other("it answers but its pid file is not written"))
        });
        match ready {
            Ok(()) => return Ok(()),
            Err(source) if Instant::now() >= deadline => {
                return Err(ServiceError::NotAnswering {
                    what: service.what,
                    log: log_path(state_root, service.name),
                    source,
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Starts a supervisor if none runs while a service is wanted; never waits. Cheap when the
/// supervisor runs (two small reads): services call it from their main loop, and the
/// container start path calls it, so a root whose supervisor was killed gets one back.
pub fn revive(state_root: &Path) {
    if running(state_root, SUPERVISOR).is_some()
        || !super::SERVICES.iter().any(|s| (s.wanted)(state_root))
    {
        return;
    }
    // Someone else holding the lock is starting (or stopping) it: leave it to them.
    if let Ok(Some(_lock)) = lock(state_root, false)
        && running(state_root, SUPERVISOR).is_none()
        && super::SERVICES.iter().any(|s| (s.wanted)(state_root))
        && let Err(err) = start_supervisor(state_root)
    {
        eprintln!("kiln: {err}");
    }
}

/// Stops every service that is no longer wanted (the DNS daemon once the root's last
/// network is gone), and the supervisor with them once nothing is wanted. A service still
/// wanted keeps running, and so does its supervisor.
pub fn stop(state_root: &Path) {
    let _lock = lock(state_root, true).ok().flatten();
    if !super::SERVICES.iter().any(|s| (s.wanted)(state_root)) {
        if let Some(pid) = running(state_root, SUPERVISOR) {
            // It stops the services itself, then exits.
            terminate(pid, STOP_GRACE + Duration::from_secs(1));
        }
        let _ = std::fs::remove_file(pid_path(state_root, SUPERVISOR));
    }
    // Services whose supervisor was dead or still runs, or did not get to them.
    for service in super::SERVICES.iter().filter(|s| !(s.wanted)(state_root)) {
        if let Some(pid) = running(state_root, service.name) {
            terminate(pid, STOP_GRACE);
        }
        let _ = std::fs::remove_file(pid_path(state_root, service.name));
    }
}

/// SIGTERM, then SIGKILL after `grace`; returns once the process is gone.
fn terminate(pid: i32, grace: Duration) {
    let Some(process) = Pidfd::open(pid, None) else {
        return;
    };
    let _ = process.signal(Signal::SIGTERM);
    if process.wait(grace) {
        return;
    }
    let _ = process.signal(Signal::SIGKILL);
    while !process.wait(Duration::from_secs(1)) {}
}

/// The supervisor's view of one service.
struct Slot {
    service: &'static Service,
    /// The pid watched, with its pidfd.
    watched: Option<(i32, Option<Pidfd>)>,
    started: Option<Instant>,
    /// Deaths in a row, each within [`STABLE`] of its start.
    failures: u32,
    next_start: Instant,
}

/// The wait before the `failures`-th quick restart in a row: none for the first, then
/// 100 ms doubling up to [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    match failures {
        0 | 1 => Duration::ZERO,
        n => Duration::from_millis(100u64 << (n - 2).min(16)).min(MAX_BACKOFF),
    }
}

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATE.store(true, Ordering::Relaxed);
}

/// Makes SIGTERM and SIGINT set the returned flag instead of killing the process: a
/// service's main loop (and the supervisor's) serves until it is set. The handler is
/// installed without `SA_RESTART`, so a blocking call returns `EINTR` and the loop sees the
/// flag. One flag per process.
pub fn on_terminate_signals() -> io::Result<&'static AtomicBool> {
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_terminate),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    for signal in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { nix::sys::signal::sigaction(signal, &action) }?;
    }
    Ok(&TERMINATE)
}

/// `kiln __netsup`: the supervisor's loop, until nothing is wanted or SIGTERM.
pub fn supervise(state_root: &Path) -> io::Result<()> {
    on_terminate_signals()?;
    let now = Instant::now();
    let mut slots: Vec<Slot> = super::SERVICES
        .iter()
        .map(|service| Slot {
            service,
            watched: None,
            started: None,
            failures: 0,
            next_start: now,
        })
        .collect();
    let me = std::process::id() as i32;
    while !TERMINATE.load(Ordering::Relaxed) {
        reap_children();
        let now = Instant::now();
        let mut active = false;
        let mut timeout = RESCAN;
        for slot in &mut slots {
            let name = slot.service.name;
            let pid = running(state_root, name);
            if let Some((old, _)) = slot.watched
                && pid != Some(old)
            {
                // It died (or was replaced by someone else's start).
                slot.watched = None;
                forget_pid(state_root, name, old);
                let lived = slot.started.map_or(Duration::ZERO, |s| now - s);
                slot.failures = if lived >= STABLE {
                    1
                } else {
                    slot.failures + 1
                };
                slot.next_start = now + backoff(slot.failures);
                if (slot.service.wanted)(state_root) {
                    eprintln!(
                        "kiln netsup: {name} (pid {old}) is gone after {:.1}s; starting it again{}",
                        lived.as_secs_f64(),
                        match backoff(slot.failures) {
                            d if d.is_zero() => String::new(),
                            d => format!(" in {} ms", d.as_millis()),
                        }
                    );
                }
            }
            match pid {
                Some(pid) => {
                    active = true;
                    if slot.watched.is_none() {
                        // A service started by an earlier supervisor is adopted as it is.
                        slot.watched = Some((pid, Pidfd::open_any(pid).ok()));
                        slot.started.get_or_insert(now);
                    }
                }
                None if (slot.service.wanted)(state_root) => {
                    active = true;
                    if now < slot.next_start {
                        timeout = timeout.min(slot.next_start - now);
                        continue;
                    }
                    match spawn(
                        state_root,
                        name,
                        slot.service.args,
                        slot.service.in_host_namespace,
                    ) {
                        Ok(child) => {
                            let pid = child.id() as i32;
                            // Reaped by `reap_children`; the handle is not needed.
                            drop(child);
                            if let Err(err) = write_pid(state_root, name, pid) {
                                eprintln!("kiln netsup: cannot record {name}'s pid: {err}");
                            }
                            slot.watched = Some((pid, Pidfd::open_any(pid).ok()));
                            slot.started = Some(now);
                        }
                        Err(err) => {
                            eprintln!("kiln netsup: cannot start {name}: {err}");
                            slot.failures += 1;
                            slot.next_start = now + backoff(slot.failures).max(RESCAN);
                        }
                    }
                }
                None => {}
            }
        }
        if !active {
            break;
        }
        wait_for_death(&slots, timeout);
    }
    if TERMINATE.load(Ordering::Relaxed) {
        for slot in &slots {
            if let Some((pid, _)) = slot.watched {
                terminate(pid, STOP_GRACE);
                forget_pid(state_root, slot.service.name, pid);
            }
        }
    }
    reap_children();
    forget_pid(state_root, SUPERVISOR, me);
    Ok(())
}

/// Waits until a watched service exits, a signal arrives, or `timeout`.
fn wait_for_death(slots: &[Slot], timeout: Duration) {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds: Vec<PollFd<'_>> = slots
        .iter()
        .filter_map(|s| s.watched.as_ref()?.1.as_ref())
        .map(|fd| PollFd::new(fd.as_fd(), PollFlags::POLLIN))
        .collect();
    let timeout = PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX);
    // EINTR (a signal) and errors end the wait alike: the loop looks again.
    let _ = poll(&mut fds, timeout);
}

/// Collects the exit status of every child that has ended (services it started).
fn reap_children() {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(WaitStatus::Exited(pid, code)) if code != 0 => {
                eprintln!("kiln netsup: pid {pid} exited with status {code}");
            }
            Ok(WaitStatus::Signaled(pid, signal, _)) => {
                eprintln!("kiln netsup: pid {pid} was killed by {signal}");
            }
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_immediate_first_then_doubles_to_a_cap() {
        assert_eq!(backoff(0), Duration::ZERO);
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(200));
        assert_eq!(backoff(7), Duration::from_millis(3200));
        assert_eq!(backoff(8), MAX_BACKOFF);
        assert_eq!(backoff(1000), MAX_BACKOFF);
    }

    #[test]
    fn a_pid_file_names_a_process_only_with_its_start_time() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("net")).unwrap();
        let me = std::process::id() as i32;
        assert_eq!(running(root.path(), "x"), None);
        write_pid(root.path(), "x", me).unwrap();
        assert_eq!(running(root.path(), "x"), Some(me));
        // The same pid with another start time: a recycled pid, not ours.
        std::fs::write(pid_path(root.path(), "x"), format!("{me} 1\n")).unwrap();
        assert_eq!(running(root.path(), "x"), None);
        forget_pid(root.path(), "x", me + 1);
        assert!(
            pid_path(root.path(), "x").exists(),
            "another pid's file stays"
        );
        forget_pid(root.path(), "x", me);
        assert!(!pid_path(root.path(), "x").exists());
    }
}
