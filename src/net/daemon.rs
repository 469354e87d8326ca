//! The DNS daemon of a state root: `kiln __netd`, one process that serves DNS on the
//! gateway address (port 53) of every network of the root, inside the kiln host namespace.
//!
//! It answers a member with the names of every container on the networks that member is
//! on (so a container on two networks finds both sides with its first nameserver), and
//! only containers that run and, if they have a health check, are healthy: replicas share
//! a name and DNS hands out the healthy ones, rotated. Anyone else is refused; other names
//! are NXDOMAIN (nothing is forwarded out of the topology).
//!
//! Started by the first `network create`, it picks up new networks by rescanning the
//! records, and exits when the last network is gone. Its pid file, `$ROOT/net/netd.pid`,
//! holds the pid and start time, so a recycled pid is never mistaken for it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dns::{DnsServer, Lookup, NameTable};
use super::records::{NetworkRecord, NetworkRecords};
use super::{HostNamespace, NetNs};
use crate::state::{Records, Status, process_start_time};

/// How often the daemon looks for new and removed networks.
const RESCAN: Duration = Duration::from_millis(100);
/// How long an answer may be built from records read earlier.
const FRESH: Duration = Duration::from_millis(50);

fn pid_path(state_root: &Path) -> PathBuf {
    state_root.join("net").join("netd.pid")
}

/// The daemon's pid if it runs.
pub fn running(state_root: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_path(state_root)).ok()?;
    let (pid, start) = text.trim().split_once(' ')?;
    let pid: i32 = pid.parse().ok()?;
    let start: u64 = start.parse().ok()?;
    (process_start_time(pid) == Some(start)).then_some(pid)
}

/// Starts the daemon unless it runs, and waits until it has bound every network's server.
pub fn ensure(state_root: &Path) -> std::io::Result<()> {
    if running(state_root).is_none() {
        let exe = std::env::current_exe()?;
        let root = std::fs::canonicalize(state_root)?;
        let log = root.join("net").join("netd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut command = std::process::Command::new(exe);
        command
            .arg("--root")
            .arg(&root)
            .arg("__netd")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log);
        // SAFETY: setsid is async-signal-safe; the daemon leaves kiln's session so that a
        // Ctrl-C of the command that started it does not reach it.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let mut child = command.spawn()?;
        // Reaped by a thread so it never lingers as a zombie of a long-lived caller.
        std::thread::spawn(move || child.wait());
    }
    wait_served(state_root)
}

/// Waits (up to 5 s) until the daemon's `served` file lists every network of the root.
fn wait_served(state_root: &Path) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let records = NetworkRecords::open(state_root).map_err(std::io::Error::other)?;
    loop {
        let wanted: BTreeSet<String> = records
            .list()
            .map_err(std::io::Error::other)?
            .into_iter()
            .map(|n| n.name)
            .collect();
        let served: BTreeSet<String> =
            std::fs::read_to_string(state_root.join("net").join("netd.served"))
                .unwrap_or_default()
                .lines()
                .map(str::to_string)
                .collect();
        if wanted.is_subset(&served) && running(state_root).is_some() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(std::io::Error::other(format!(
                "the DNS daemon did not start serving within 5 s (see {})",
                state_root.join("net/netd.log").display()
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Stops the daemon if it runs (it also stops by itself once no network is left).
pub fn stop(state_root: &Path) {
    if let Some(pid) = running(state_root) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(2);
        while process_start_time(pid).is_some() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let _ = std::fs::remove_file(pid_path(state_root));
    let _ = std::fs::remove_file(state_root.join("net").join("netd.served"));
}

/// What the daemon answers from: every network and which containers may be named.
#[derive(Default)]
struct Directory {
    networks: BTreeMap<String, NetworkRecord>,
    /// Containers that run and are healthy (or have no health check).
    answerable: BTreeSet<String>,
    read_at: Option<Instant>,
}

impl Directory {
    fn refresh(&mut self, state_root: &Path) {
        if self.read_at.is_some_and(|at| at.elapsed() < FRESH) {
            return;
        }
        if let Ok(records) = NetworkRecords::open(state_root)
            && let Ok(list) = records.list()
        {
            self.networks = list.into_iter().map(|n| (n.name.clone(), n)).collect();
        }
        self.answerable = Records::open(state_root)
            .and_then(|r| r.list())
            .map(|list| {
                list.into_iter()
                    .map(|r| r.reconciled())
                    .filter(|r| r.state.status == Status::Running)
                    .filter(|r| r.state.health.as_deref().is_none_or(|h| h == "healthy"))
                    .map(|r| r.id.to_string())
                    .collect()
            })
            .unwrap_or_default();
        self.read_at = Some(Instant::now());
    }

    /// The answer to `client` asking the server of `network` about `qname`.
    fn lookup(&self, network: &str, qname: &str, client: IpAddr) -> Lookup {
        let Some(asked) = self.networks.get(network) else {
            return Lookup::Refused;
        };
        // The networks whose names the client may see: all those its container is on.
        let client_networks: Vec<&NetworkRecord> = if client == asked.gateway {
            vec![asked]
        } else {
            match asked.members.iter().find(|m| m.address == client) {
                None => return Lookup::Refused,
                Some(member) => self
                    .networks
                    .values()
                    .filter(|n| n.member(&member.container_id).is_some())
                    .collect(),
            }
        };
        // The names of running (and healthy) members of those networks, looked up the way
        // every network's table answers (case, trailing dot, `NAME.PROJECT`).
        let mut table = NameTable::new(asked.project.as_deref());
        table.allow_client(client);
        for network in client_networks {
            for member in &network.members {
                if let IpAddr::V4(address) = member.address
                    && self.answerable.contains(&member.container_id)
                {
                    for name in std::iter::once(&member.container_name).chain(&member.aliases) {
                        table.add_name(name, address);
                    }
                }
            }
        }
        table.lookup(qname, client)
    }
}

/// `kiln __netd`: serves until no network is left or SIGTERM.
pub fn serve(state_root: &Path) -> std::io::Result<()> {
    let pid = std::process::id() as i32;
    let start = process_start_time(pid).unwrap_or(0);
    let pid_file = pid_path(state_root);
    crate::atomic_file::write_durably(&pid_file, format!("{pid} {start}\n").as_bytes())?;
    let term = Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGINT,
    ] {
        signal_hook_flag(signal, &term)?;
    }
    let directory = Arc::new(Mutex::new(Directory::default()));
    let mut servers: BTreeMap<String, (IpAddr, DnsServer)> = BTreeMap::new();
    let host_path = HostNamespace::path(state_root);
    let root = state_root.to_path_buf();
    while !term.load(std::sync::atomic::Ordering::Relaxed) {
        let networks = NetworkRecords::open(state_root)
            .and_then(|r| r.list())
            .unwrap_or_default();
        if networks.is_empty() {
            break;
        }
        let Ok(host) = NetNs::open(&host_path) else {
            break;
        };
        servers.retain(|name, (gateway, _)| {
            networks
                .iter()
                .any(|n| &n.name == name && n.gateway == *gateway)
        });
        for network in &networks {
            if servers.contains_key(&network.name) {
                continue;
            }
            let name = network.name.clone();
            let directory = Arc::clone(&directory);
            let root = root.clone();
            let lookup = move |qname: &str, client: IpAddr| {
                let mut directory = directory.lock().unwrap_or_else(|e| e.into_inner());
                directory.refresh(&root);
                directory.lookup(&name, qname, client)
            };
            match DnsServer::bind_in(host.as_fd(), SocketAddr::new(network.gateway, 53), lookup) {
                Ok(server) => {
                    servers.insert(network.name.clone(), (network.gateway, server));
                }
                Err(err) => eprintln!("kiln netd: network {}: {err}", network.name),
            }
        }
        let served: String = servers.keys().map(|n| format!("{n}\n")).collect();
        let _ = crate::atomic_file::write_durably(
            &root.join("net").join("netd.served"),
            served.as_bytes(),
        );
        std::thread::sleep(RESCAN);
    }
    drop(servers);
    // Only remove the pid file if it is still ours (a new daemon may have replaced it).
    if std::fs::read_to_string(&pid_file).is_ok_and(|t| t.starts_with(&format!("{pid} "))) {
        let _ = std::fs::remove_file(&pid_file);
        let _ = std::fs::remove_file(root.join("net").join("netd.served"));
    }
    Ok(())
}

/// Sets `flag` when `signal` arrives.
pub(crate) fn signal_hook_flag(
    signal: nix::sys::signal::Signal,
    flag: &Arc<std::sync::atomic::AtomicBool>,
) -> std::io::Result<()> {
    static FLAG: std::sync::OnceLock<Arc<std::sync::atomic::AtomicBool>> =
        std::sync::OnceLock::new();
    let _ = FLAG.set(Arc::clone(flag));
    extern "C" fn on_signal(_: nix::libc::c_int) {
        if let Some(flag) = FLAG.get() {
            flag.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(on_signal),
        nix::sys::signal::SaFlags::empty(),
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler only performs an atomic store, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(signal, &action) }.map_err(std::io::Error::from)?;
    Ok(())
}
