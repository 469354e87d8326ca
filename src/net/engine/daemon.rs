//! The engine's process: `kiln __linkd`, one per state root, living in the kiln host
//! namespace. It is two processes: a small supervisor, recorded in `$ROOT/net/linkd.pid`
//! (pid and start time, so a recycled pid is never mistaken for it), and the worker it
//! starts (`kiln __linkd --worker`) that carries the paths. A worker that dies is started
//! again (after 0.1 s, backing off to 2 s); a worker whose supervisor dies gets SIGTERM
//! (`PR_SET_PDEATHSIG`) and the next kiln command that needs the engine starts a new pair.
//! Both leave the session of the command that started them, so they outlive it.
//!
//! The worker applies `linkd.json` ([`super::paths`]) when asked through the control
//! socket and every 200 ms on its own (a port that came back — its container restarted —
//! is picked up then), and exits when no path is left, the supervisor with it.
//!
//! A replaceable piece: a common supervisor of kiln's network daemons can take over
//! [`ensure`]/[`stop`] and run `kiln __linkd --worker` itself.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::control::{self, PathStatus, Request, Status};
use super::paths::{self, PathSpec};
use super::port::{self, Port};
use super::pump::{Pump, Settings};
use crate::net::{HostNamespace, NetError};
use crate::state::process_start_time;

/// How often the worker looks at `linkd.json` and its ports by itself.
const TICK: Duration = Duration::from_millis(200);
/// A path whose ports stay missing this long is dropped from `linkd.json`: its containers
/// are gone (removed without `kiln down`, or a test that failed half-way). Whoever makes
/// the ports again registers the path again (`kiln up`, a container's restart).
const ORPHANED: Duration = Duration::from_secs(10);
/// How long [`ensure`] waits for the engine to apply a change.
const APPLY_WAIT: Duration = Duration::from_secs(5);

fn pid_path(state_root: &Path) -> PathBuf {
    state_root.join("net").join("linkd.pid")
}

pub fn log_path(state_root: &Path) -> PathBuf {
    state_root.join("net").join("linkd.log")
}

/// The supervisor's pid if it runs.
pub fn running(state_root: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_path(state_root)).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    (process_start_time(pid) == Some(start)).then_some(pid)
}

fn engine_error(state_root: &Path, cause: std::io::Error) -> NetError {
    NetError::Engine {
        log: log_path(state_root),
        cause,
    }
}

/// Makes the engine carry what `linkd.json` says: starts it when paths exist and it does
/// not run, asks it to apply the file, and waits until it has. With no path left, stops it.
pub fn ensure(state_root: &Path) -> Result<(), NetError> {
    let wanted = paths::load(state_root)?;
    if wanted.paths.is_empty() {
        stop(state_root);
        return Ok(());
    }
    if running(state_root).is_none() {
        spawn(state_root).map_err(|e| engine_error(state_root, e))?;
    }
    let deadline = Instant::now() + APPLY_WAIT;
    loop {
        match control::request(state_root, Request::Reload, Duration::from_secs(2)) {
            Ok(status) if status.generation >= wanted.generation => return Ok(()),
            Ok(_) | Err(_) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(status) => {
                return Err(engine_error(
                    state_root,
                    std::io::Error::other(format!(
                        "the engine applied generation {} of linkd.json, not {}",
                        status.generation, wanted.generation
                    )),
                ));
            }
            Err(err) => return Err(engine_error(state_root, err)),
        }
    }
}

/// The live state of every path, when the engine runs.
pub fn status(state_root: &Path) -> Option<Status> {
    running(state_root)?;
    control::request(state_root, Request::Status, Duration::from_secs(2)).ok()
}

fn spawn(state_root: &Path) -> std::io::Result<()> {
    let exe = std::env::current_exe()?;
    let root = std::fs::canonicalize(state_root)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(&root))?;
    let ns = HostNamespace::ensure(&root).map_err(std::io::Error::other)?;
    let mut command = crate::net::command_in(&ns, exe);
    command
        .arg("--root")
        .arg(&root)
        .arg("__linkd")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe; the engine leaves the session of the command
    // that started it, so a Ctrl-C of that command does not reach it.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    // Reaped by a thread so it never lingers as a zombie of a long-lived caller.
    std::thread::spawn(move || child.wait());
    // Until the supervisor has written its pid file, another command would start a second
    // one: wait for it (the worker's lock would stop a second worker anyway).
    let deadline = Instant::now() + Duration::from_secs(2);
    while running(&root).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(())
}

/// Stops the engine if it runs (it also stops by itself once no path is left).
pub fn stop(state_root: &Path) {
    if let Some(pid) = running(state_root) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        while process_start_time(pid).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = std::fs::remove_file(pid_path(state_root));
}

/// Removes the paths `gone` picks and makes the engine drop them (it stops when nothing is
/// left): for `kiln down` and removals, which must leave no process behind.
pub fn forget(state_root: &Path, gone: impl Fn(&str) -> bool) -> Result<(), NetError> {
    if !paths::file(state_root).exists() {
        return Ok(());
    }
    paths::remove_where(state_root, gone)?;
    if paths::load(state_root)?.paths.is_empty() {
        // Nothing left to carry: the engine goes now, not a moment later.
        stop(state_root);
    } else if running(state_root).is_some() {
        ensure(state_root)?;
    }
    Ok(())
}

fn term_flag() -> std::io::Result<Arc<AtomicBool>> {
    let term = Arc::new(AtomicBool::new(false));
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        crate::net::daemon::signal_hook_flag(signal, &term)?;
    }
    Ok(term)
}

/// `kiln __linkd`: starts the worker and starts it again when it dies, until no path is
/// left or SIGTERM.
pub fn supervise(state_root: &Path) -> std::io::Result<()> {
    // One supervisor per state root: a second one (two commands started the engine at
    // once) leaves at once; the first one's pid file is what they wait for.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(state_root.join("net").join("linkd.sup"))?;
    let Ok(_lock) = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock)
    else {
        return Ok(());
    };
    let pid = std::process::id() as i32;
    let start = process_start_time(pid).unwrap_or(0);
    let pid_file = pid_path(state_root);
    crate::atomic_file::write_durably(&pid_file, format!("{pid} {start}\n").as_bytes())?;
    let term = term_flag()?;
    let exe = std::env::current_exe()?;
    let mut backoff = Duration::from_millis(100);
    while !term.load(Ordering::SeqCst) {
        if paths::load(state_root).map_or(true, |p| p.paths.is_empty()) {
            break;
        }
        let mut command = std::process::Command::new(&exe);
        command
            .arg("--root")
            .arg(state_root)
            .arg("__linkd")
            .arg("--worker");
        // SAFETY: prctl is async-signal-safe; the worker ends when its supervisor does.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
                Ok(())
            });
        }
        let started = Instant::now();
        let mut child = command.spawn()?;
        let status = loop {
            if term.load(Ordering::SeqCst) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGTERM,
                );
                break child.wait()?;
            }
            if let Some(status) = child.try_wait()? {
                break status;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if status.success() || term.load(Ordering::SeqCst) {
            break;
        }
        eprintln!("kiln linkd: the worker ended ({status}); starting it again");
        if started.elapsed() > Duration::from_secs(10) {
            backoff = Duration::from_millis(100);
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    // Only remove the pid file if it is still ours.
    if std::fs::read_to_string(&pid_file).is_ok_and(|t| t.starts_with(&format!("{pid} "))) {
        let _ = std::fs::remove_file(&pid_file);
    }
    Ok(())
}

/// A path the worker carries.
struct Carried {
    spec: PathSpec,
    ports: [Arc<Port>; 2],
    pumps: [Pump; 2],
}

/// What the worker carries, and why some paths are not carried.
#[derive(Default)]
struct Carrier {
    generation: u64,
    carried: BTreeMap<String, Carried>,
    /// Paths that cannot run, why, and since when.
    failed: BTreeMap<String, (PathSpec, String, Instant)>,
}

impl Carrier {
    /// Brings the carried paths to `wanted`.
    fn apply(&mut self, wanted: &paths::Paths) {
        self.generation = wanted.generation;
        let ids: std::collections::BTreeSet<&str> =
            wanted.paths.iter().map(|p| p.id.as_str()).collect();
        self.carried.retain(|id, _| ids.contains(id.as_str()));
        self.failed.retain(|id, _| ids.contains(id.as_str()));
        for spec in &wanted.paths {
            if let Some(carried) = self.carried.get_mut(&spec.id) {
                let same_ports = carried.ports[0].name == spec.ports[0]
                    && carried.ports[1].name == spec.ports[1];
                // A port whose interface was made again (a container restarted) has a new
                // index: open it again.
                let current = carried
                    .ports
                    .iter()
                    .all(|p| port::ifindex(&p.name).ok() == Some(p.ifindex));
                let finished = carried.pumps.iter().any(Pump::finished);
                if same_ports && current && !finished {
                    if carried.spec != *spec {
                        for (salt, pump) in carried.pumps.iter().enumerate() {
                            pump.set(Settings {
                                netem: spec.netem.clone(),
                                up: spec.up,
                                salt: salt as u64,
                            });
                        }
                        carried.spec = spec.clone();
                    }
                    continue;
                }
                self.carried.remove(&spec.id);
            }
            match start(spec) {
                Ok(carried) => {
                    self.failed.remove(&spec.id);
                    self.carried.insert(spec.id.clone(), carried);
                }
                Err(err) => {
                    let since = self
                        .failed
                        .get(&spec.id)
                        .map_or_else(Instant::now, |(_, _, since)| *since);
                    self.failed
                        .insert(spec.id.clone(), (spec.clone(), err.to_string(), since));
                }
            }
        }
    }

    fn status(&self) -> Status {
        let mut paths: Vec<PathStatus> = self
            .carried
            .values()
            .map(|c| PathStatus {
                id: c.spec.id.clone(),
                ports: c.spec.ports.clone(),
                up: c.spec.up,
                directions: c.pumps.iter().map(Pump::status).collect(),
                error: None,
            })
            .collect();
        paths.extend(self.failed.values().map(|(spec, error, _)| PathStatus {
            id: spec.id.clone(),
            ports: spec.ports.clone(),
            up: spec.up,
            directions: Vec::new(),
            error: Some(error.clone()),
        }));
        paths.sort_by(|a, b| a.id.cmp(&b.id));
        Status {
            generation: self.generation,
            pid: std::process::id(),
            paths,
        }
    }
}

fn start(spec: &PathSpec) -> std::io::Result<Carried> {
    let open = |name: &str| {
        Port::open(name)
            .map(Arc::new)
            .map_err(|err| std::io::Error::new(err.kind(), format!("port {name}: {err}")))
    };
    let ports = [open(&spec.ports[0])?, open(&spec.ports[1])?];
    let settings = |salt| Settings {
        netem: spec.netem.clone(),
        up: spec.up,
        salt,
    };
    let forward = Pump::start(Arc::clone(&ports[0]), Arc::clone(&ports[1]), settings(0))?;
    let back = Pump::start(Arc::clone(&ports[1]), Arc::clone(&ports[0]), settings(1))?;
    Ok(Carried {
        spec: spec.clone(),
        ports,
        pumps: [forward, back],
    })
}

/// `kiln __linkd --worker`: carries the paths until none is left or SIGTERM.
pub fn work(state_root: &Path) -> std::io::Result<()> {
    let term = term_flag()?;
    // One worker per state root, whatever happened to supervisors.
    let lock_path = state_root.join("net").join("linkd.run");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)?;
    let deadline = Instant::now() + Duration::from_secs(3);
    let _lock = loop {
        match nix::fcntl::Flock::lock(
            lock.try_clone()?,
            nix::fcntl::FlockArg::LockExclusiveNonblock,
        ) {
            Ok(lock) => break lock,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err((_, errno)) => return Err(errno.into()),
        }
    };
    let listener = control::listen(state_root)?;
    let mut carrier = Carrier::default();
    let mut last_look = Instant::now() - TICK;
    let result = loop {
        if term.load(Ordering::SeqCst) {
            break Ok(());
        }
        if last_look.elapsed() >= TICK {
            last_look = Instant::now();
            let wanted = paths::load(state_root).unwrap_or_default();
            if wanted.paths.is_empty() {
                break Ok(());
            }
            carrier.apply(&wanted);
            let orphans: Vec<String> = carrier
                .failed
                .iter()
                .filter(|(_, (_, _, since))| since.elapsed() >= ORPHANED)
                .map(|(id, _)| id.clone())
                .collect();
            if !orphans.is_empty() {
                eprintln!("kiln linkd: dropping paths whose ports are gone: {orphans:?}");
                let _ = paths::remove_where(state_root, |id| orphans.iter().any(|o| o == id));
            }
        }
        let mut fds = [libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, TICK.as_millis() as libc::c_int) };
        if n <= 0 {
            continue;
        }
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(err) => break Err(err),
        };
        let _ = control::serve_one(stream, |request| {
            if request == Request::Reload {
                let wanted = paths::load(state_root).unwrap_or_default();
                carrier.apply(&wanted);
                last_look = Instant::now();
            }
            carrier.status()
        });
        if carrier.carried.is_empty() && carrier.failed.is_empty() {
            break Ok(());
        }
    };
    drop(carrier);
    let _ = std::fs::remove_file(control::socket_path(state_root));
    result
}
