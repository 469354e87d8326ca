//! The DNS daemon of a state root: `kiln __netd`, one process that serves DNS on the
//! gateway address (port 53) of every network of the root, inside the kiln host namespace.
//!
//! It answers a member with the names of every container on the networks that member is
//! on (so a container on two networks finds both sides with its first nameserver), and
//! only containers that run and, if they have a health check, are healthy: replicas share
//! a name and DNS hands out the healthy ones, rotated. Anyone else is refused; other names
//! are NXDOMAIN — except on networks with egress, whose members' other questions go to the
//! machine's resolvers (`dns::forward`, from this process, which runs in the machine's
//! namespace).
//!
//! It is a supervised service ([`SERVICE`], see `supervise`): started by the first
//! `network create`, started again within moments when it dies, ready once every network's
//! server answers a query ([`ready`]). It picks up new networks by rescanning the records,
//! and exits when the last network is gone.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::dns::message::{build_query, parse_response};
use super::dns::{DnsServer, Forwarder, Lookup, NameTable};
use super::records::{NetworkRecord, NetworkRecords};
use super::supervise::Service;
use super::threads::in_netns;
use super::{HostNamespace, NetNs};
use crate::state::{Records, Status};

/// How often the daemon looks for new and removed networks.
const RESCAN: Duration = Duration::from_millis(100);
/// How long an answer may be built from records read earlier.
const FRESH: Duration = Duration::from_millis(50);

/// The daemon as the supervisor sees it.
pub const SERVICE: Service = Service {
    name: "netd",
    args: &["__netd"],
    in_host_namespace: false,
    what: "the DNS daemon",
    wanted,
    ready,
};

/// Wanted while the root has a network (a listing of the records' directory, no parse).
fn wanted(state_root: &Path) -> bool {
    std::fs::read_dir(state_root.join("net").join("networks")).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".json"))
    })
}

/// The daemon's pid if it runs.
pub fn running(state_root: &Path) -> Option<i32> {
    super::supervise::running(state_root, SERVICE.name)
}

/// Ready once the server of every network answers a query: one query each, sent from
/// kiln's namespace to the gateway's port 53 (any answer counts, NXDOMAIN included).
pub fn ready(state_root: &Path) -> std::io::Result<()> {
    let networks = NetworkRecords::open(state_root)
        .and_then(|r| r.list())
        .map_err(std::io::Error::other)?;
    if networks.is_empty() {
        return Ok(());
    }
    let host = NetNs::open(&HostNamespace::path(state_root)).map_err(std::io::Error::other)?;
    let gateways: Vec<IpAddr> = networks.iter().map(|n| n.gateway).collect();
    let sockets = in_netns(host.as_fd(), || {
        gateways
            .iter()
            .map(|gateway| {
                let any: SocketAddr = match gateway {
                    IpAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
                    IpAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
                };
                UdpSocket::bind(any)
            })
            .collect::<std::io::Result<Vec<UdpSocket>>>()
    })??;
    let query = build_query(0x6b6c, READY_NAME, 1);
    for (socket, gateway) in sockets.iter().zip(&gateways) {
        socket.connect(SocketAddr::new(*gateway, 53))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        socket.send(&query)?;
    }
    let mut buffer = [0u8; 512];
    for ((socket, gateway), network) in sockets.iter().zip(&gateways).zip(&networks) {
        let answered = match socket.recv(&mut buffer) {
            Ok(len) => parse_response(&buffer[..len]).is_some_and(|r| r.id == 0x6b6c),
            Err(_) => false,
        };
        if !answered {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no DNS answer from {gateway}:53 (network {})", network.name),
            ));
        }
    }
    Ok(())
}

/// The name [`ready`] asks for: under `.invalid` (RFC 6761), so never a container's.
const READY_NAME: &str = "kiln-ready.invalid";

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
        self.answerable = Records::open(&super::host::containers_root(state_root))
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
            // An overlay's containers on other hosts, as the file declares them.
            for remote in &network.remotes {
                if let IpAddr::V4(address) = remote.address {
                    for name in std::iter::once(&remote.name).chain(&remote.aliases) {
                        table.add_name(name, address);
                    }
                }
            }
        }
        match table.lookup(qname, client) {
            // kiln's own readiness probe (from the gateway) is never forwarded.
            Lookup::NxDomain if asked.egress && client != asked.gateway => Lookup::Forward,
            answer => answer,
        }
    }
}

/// `kiln __netd`: serves until no network is left or SIGTERM.
pub fn serve(state_root: &Path) -> std::io::Result<()> {
    let term = super::supervise::on_terminate_signals()?;
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
            let forwarder = network.egress.then(|| {
                // A member's own upstreams (`--dns`), found by its address on this network.
                let directory = Arc::clone(&directory);
                let root = root.clone();
                let name = network.name.clone();
                Forwarder::from_env().with_client_upstreams(move |client| {
                    let id = {
                        let directory = directory.lock().unwrap_or_else(|e| e.into_inner());
                        directory.networks.get(&name).and_then(|n| {
                            n.members
                                .iter()
                                .find(|m| m.address == client)
                                .map(|m| m.container_id.clone())
                        })
                    };
                    id.map(|id| super::attach::dns_servers(&root, &id))
                        .unwrap_or_default()
                })
            });
            let name = network.name.clone();
            let directory = Arc::clone(&directory);
            let root = root.clone();
            let lookup = move |qname: &str, client: IpAddr| {
                let mut directory = directory.lock().unwrap_or_else(|e| e.into_inner());
                directory.refresh(&root);
                directory.lookup(&name, qname, client)
            };
            let addr = SocketAddr::new(network.gateway, 53);
            let bound = in_netns(host.as_fd(), || UdpSocket::bind(addr))
                .and_then(|bound| bound)
                .map_err(|source| super::dns::DnsError::Bind { addr, source })
                .and_then(|socket| DnsServer::serve_forwarding(socket, lookup, forwarder));
            match bound {
                Ok(server) => {
                    servers.insert(network.name.clone(), (network.gateway, server));
                }
                Err(err) => eprintln!("kiln netd: network {}: {err}", network.name),
            }
        }
        // Its supervisor may have been killed: a new one adopts this daemon.
        super::supervise::revive(state_root);
        std::thread::sleep(RESCAN);
    }
    Ok(())
}
