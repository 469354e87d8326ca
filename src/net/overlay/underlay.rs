//! The underlay of simulated hosts: the "machines" a multi-host project runs on when it is
//! brought up on one machine.
//!
//! Owns, in one directory: a *segment* namespace holding a bridge (`ku`), the wire every
//! simulated machine is plugged into; and one namespace per host, the machine's own network
//! namespace, holding `eth0` with the host's underlay address (a /32, or /128, with a
//! route to every other host on the wire, so hosts on any addresses, in one subnet or
//! several "sites", reach each other) joined to the segment's bridge by a veth whose
//! segment end is `ku<N>`. A host's VXLAN devices are created in its namespace, so their
//! UDP sockets send from its address across the wire (see `overlay::bring_up`).
//!
//! Every namespace is pinned under the directory; nothing is added to the machine's own
//! namespace. [`Underlay::remove`] unpins them all, which takes every device with them.
//! It knows hosts by name and address only: which host runs what is the project's.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use super::super::{NetError, NetNs, Netlink};

/// The segment's bridge.
const WIRE: &str = "ku";
/// A host's interface on the wire, in its namespace.
pub const HOST_INTERFACE: &str = "eth0";

/// One simulated machine on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimHost {
    pub name: String,
    pub address: IpAddr,
}

/// The wire and the simulated machines of one project, pinned under a directory.
#[derive(Debug, Clone)]
pub struct Underlay {
    dir: PathBuf,
}

impl Underlay {
    pub fn new(dir: &Path) -> Underlay {
        Underlay {
            dir: dir.to_path_buf(),
        }
    }

    fn segment_path(&self) -> PathBuf {
        self.dir.join("segment.netns")
    }

    fn host_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("host-{name}.netns"))
    }

    /// The segment's port of host number `index` (`ku0`, `ku1`…).
    pub fn port(index: usize) -> String {
        format!("{WIRE}{index}")
    }

    /// The namespace of the wire itself (for `tcpdump -i ku` and the link engine).
    pub fn segment(&self) -> Result<NetNs, NetError> {
        NetNs::open(&self.segment_path())
    }

    /// The namespace of simulated machine `name`.
    pub fn host(&self, name: &str) -> Result<NetNs, NetError> {
        NetNs::open(&self.host_path(name))
    }

    /// Makes what is missing of the wire and of every host on it (`hosts` in declaration
    /// order: host `i` is plugged into port `ku<i>`). Idempotent.
    pub fn ensure(&self, hosts: &[SimHost]) -> Result<(), NetError> {
        std::fs::create_dir_all(&self.dir).map_err(|cause| NetError::Io {
            path: self.dir.clone(),
            cause,
        })?;
        let segment = open_or_create(&self.segment_path())?;
        let wire = Netlink::open_in(&segment)?;
        wire.set_up("lo")?;
        if wire.link(WIRE)?.is_none() {
            wire.create_bridge(WIRE)?;
        }
        wire.set_up(WIRE)?;
        for (index, host) in hosts.iter().enumerate() {
            let ns = open_or_create(&self.host_path(&host.name))?;
            let inside = Netlink::open_in(&ns)?;
            inside.set_up("lo")?;
            if inside.link(HOST_INTERFACE)?.is_some() {
                continue;
            }
            let port = Underlay::port(index);
            match wire.delete_link(&port) {
                Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
                Err(err) => return Err(err),
            }
            wire.create_veth_into(&port, HOST_INTERFACE, &ns)?;
            wire.set_master(&port, WIRE)?;
            wire.set_up(&port)?;
            inside.add_address(HOST_INTERFACE, single(host.address))?;
            inside.set_up(HOST_INTERFACE)?;
            for peer in hosts.iter().filter(|p| p.name != host.name) {
                inside.add_route(single(peer.address), None, Some(HOST_INTERFACE))?;
            }
        }
        Ok(())
    }

    /// Unpins every namespace under the directory and removes it; absent is fine.
    pub fn remove(&self) -> Result<(), NetError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(cause) => {
                return Err(NetError::Io {
                    path: self.dir.clone(),
                    cause,
                });
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "netns") {
                NetNs::remove_pinned(&path)?;
            }
        }
        match std::fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(cause) => Err(NetError::Io {
                path: self.dir.clone(),
                cause,
            }),
        }
    }
}

/// `address` as a one-address network (/32 or /128).
fn single(address: IpAddr) -> IpNetwork {
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(address, prefix).expect("a full prefix is valid")
}

fn open_or_create(path: &Path) -> Result<NetNs, NetError> {
    match NetNs::open(path) {
        Ok(ns) => Ok(ns),
        Err(NetError::NotPinned { .. }) => {
            NetNs::remove_pinned(path)?;
            NetNs::create_pinned(path)
        }
        Err(err) if err.errno() == Some(libc::ENOENT) => NetNs::create_pinned(path),
        Err(err) => Err(err),
    }
}
