//! The engine's process: `kiln __linkd`, one per state root, living in the kiln host
//! namespace: a supervised service ([`SERVICE`]) of the root's network supervisor
//! (`net::supervise`), which starts it while `linkd.json` lists a path, starts it again at
//! once when it dies, and stops it when the last path goes.
//!
//! It applies `linkd.json` ([`super::paths`]) when asked through the control socket and every
//! 200 ms on its own (a port that came back — its container restarted — is picked up then;
//! a path whose ports stay gone is dropped), and exits when no path is left.

use std::collections::BTreeMap;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::control::{self, PathStatus, Request, Status};
use super::paths::{self, PathSpec};
use super::port::{self, Port};
use super::pump::{Pump, Settings};
use crate::net::NetError;
use crate::net::supervise::{self, Service};

/// How often the worker looks at `linkd.json` and its ports by itself.
const TICK: Duration = Duration::from_millis(200);
/// A path whose ports stay missing this long is dropped from `linkd.json`: its containers
/// are gone (removed without `kiln down`, or a test that failed half-way). Whoever makes
/// the ports again registers the path again (`kiln up`, a container's restart).
const ORPHANED: Duration = Duration::from_secs(10);
/// How long [`ensure`] waits for the engine to apply a change.
const APPLY_WAIT: Duration = Duration::from_secs(5);

/// The engine as the supervisor sees it.
pub const SERVICE: Service = Service {
    name: "linkd",
    args: &["__linkd"],
    in_host_namespace: true,
    what: "kiln's impairment engine",
    wanted,
    ready,
};

/// Wanted while `linkd.json` lists a path.
fn wanted(state_root: &Path) -> bool {
    paths::load(state_root).is_ok_and(|p| !p.paths.is_empty())
}

/// Ready once it answers on its control socket.
fn ready(state_root: &Path) -> std::io::Result<()> {
    control::request(state_root, Request::Status, Duration::from_secs(1)).map(drop)
}

/// The engine's pid if it runs.
pub fn running(state_root: &Path) -> Option<i32> {
    supervise::running(state_root, SERVICE.name)
}

fn engine_error(state_root: &Path, cause: std::io::Error) -> NetError {
    NetError::Engine {
        log: supervise::log_path(state_root, SERVICE.name),
        cause,
    }
}

/// Makes the engine carry what `linkd.json` says: has the supervisor start it when paths
/// exist, asks it to apply the file, and waits until it has. With no path left, stops it.
pub fn ensure(state_root: &Path) -> Result<(), NetError> {
    let wanted = paths::load(state_root)?;
    if wanted.paths.is_empty() {
        supervise::stop(state_root);
        return Ok(());
    }
    supervise::ensure(state_root)
        .map_err(|err| engine_error(state_root, std::io::Error::other(err)))?;
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

/// Removes the paths `gone` picks and makes the engine drop them; the engine stops when
/// nothing is left (`kiln down` and removals must leave no process behind).
pub fn forget(state_root: &Path, gone: impl Fn(&str) -> bool) -> Result<(), NetError> {
    if !paths::file(state_root).exists() {
        return Ok(());
    }
    paths::remove_where(state_root, gone)?;
    if paths::load(state_root)?.paths.is_empty() {
        supervise::stop(state_root);
    } else if running(state_root).is_some() {
        ensure(state_root)?;
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

/// `kiln __linkd`: carries the paths until none is left or SIGTERM.
pub fn work(state_root: &Path) -> std::io::Result<()> {
    let term = supervise::on_terminate_signals()?;
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
            // Its supervisor may have been killed: a new one adopts this process.
            supervise::revive(state_root);
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
