//! Impaired paths of a simulated underlay: the WAN between two sites, or two hosts.
//!
//! The wire (`underlay`) joins every simulated machine unimpaired. For each *impaired pair*
//! of hosts, this module adds a second, private path between the two machines and routes
//! the pair's traffic — and only theirs — over it: in host `i`'s namespace an interface
//! `kw<j>` (host `j`'s declaration index) carries host `i`'s underlay address, and the
//! route to host `j`'s address goes through it instead of `eth0` (`ip route replace`). Every
//! other pair stays on the wire. The VXLAN sockets of both hosts send by these routes, so
//! all overlay traffic between the two hosts crosses the impairment, in both directions.
//!
//! Who carries the path is `impair::choose`'s answer, as for links: kiln's engine (the
//! default on a kernel without netem) — `kw<j>`'s peer is a port `kwp<i>-<j>` in the
//! namespace of the WAN's own network root (a directory with a state root's `net/` layout,
//! its engine daemon and supervisor), and the engine moves frames between the pair's two
//! ports; or the kernel — `kw<j>` and `kw<i>` are one veth pair with netem on both ends.
//!
//! [`Wan::ensure`] makes the machines match the declared pairs (an interface of a pair no
//! longer declared is deleted and its route goes back to the wire); [`Wan::remove`] stops
//! the engine and unpins its namespace, which takes every port, and with them the
//! interfaces in the machines. It takes plain values (names, addresses, [`Netem`]) and
//! knows nothing of kiln.kdl; which pairs are impaired is the project's to say.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use super::underlay::{HOST_INTERFACE, SimHost, Underlay};
use crate::net::impair::{self, Carrier, Engine};
use crate::net::{HostNamespace, NetError, NetNs, Netem, Netlink};

/// The prefix of the machines' WAN interfaces (`kw<j>`).
const PREFIX: &str = "kw";

/// One impaired pair of hosts (by name) and what impairs each direction.
#[derive(Debug, Clone, PartialEq)]
pub struct WanPath {
    pub a: String,
    pub b: String,
    pub netem: Netem,
    pub engine: Engine,
}

impl WanPath {
    /// The engine's id of the path.
    pub fn id(&self) -> String {
        format!("wan {} {}", self.a, self.b)
    }
}

/// What [`Wan::ensure`] made of one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Carried {
    pub a: String,
    pub b: String,
    pub carrier: Carrier,
    /// The two interfaces: host `a`'s toward `b`, host `b`'s toward `a`.
    pub interfaces: [String; 2],
}

/// The impaired paths between the machines of one underlay.
#[derive(Debug, Clone)]
pub struct Wan {
    underlay: Underlay,
    root: PathBuf,
}

/// Host `host`'s interface toward the host of index `peer`.
pub fn interface(peer: usize) -> String {
    format!("{PREFIX}{peer}")
}

/// The engine's port whose peer is host `host`'s interface toward host `peer`.
fn port(host: usize, peer: usize) -> String {
    format!("{PREFIX}p{host}-{peer}")
}

/// `address` as a one-address network (/32 or /128).
fn single(address: IpAddr) -> IpNetwork {
    let prefix = if address.is_ipv4() { 32 } else { 128 };
    IpNetwork::new(address, prefix).expect("a full prefix is valid")
}

fn delete(netlink: &Netlink, name: &str) -> Result<(), NetError> {
    match netlink.delete_link(name) {
        Ok(()) | Err(NetError::NoSuchInterface { .. }) => Ok(()),
        Err(err) => Err(err),
    }
}

impl Wan {
    /// The impaired paths of `underlay`, their engine's network root at `root`.
    pub fn new(underlay: &Underlay, root: &Path) -> Wan {
        Wan {
            underlay: underlay.clone(),
            root: root.to_path_buf(),
        }
    }

    /// The network root of the engine (for `kiln network links`).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the impaired paths between the machines (`hosts` in declaration order, as
    /// the wire was made) exactly `paths`, and routes each pair over its own. Idempotent.
    pub fn ensure(&self, hosts: &[SimHost], paths: &[WanPath]) -> Result<Vec<Carried>, NetError> {
        let index: BTreeMap<&str, usize> = hosts
            .iter()
            .enumerate()
            .map(|(i, h)| (h.name.as_str(), i))
            .collect();
        let mut wanted: BTreeMap<(usize, usize), &WanPath> = BTreeMap::new();
        for path in paths {
            let (Some(&a), Some(&b)) = (index.get(path.a.as_str()), index.get(path.b.as_str()))
            else {
                return Err(NetError::Io {
                    path: self.root.clone(),
                    cause: std::io::Error::new(
                        std::io::ErrorKind::InvalidInput,
                        format!("the impaired path {} joins an unknown host", path.id()),
                    ),
                });
            };
            wanted.insert((a.min(b), a.max(b)), path);
        }
        let machines: Vec<(NetNs, Netlink)> = hosts
            .iter()
            .map(|h| {
                let ns = self.underlay.host(&h.name)?;
                let netlink = Netlink::open_in(&ns)?;
                Ok((ns, netlink))
            })
            .collect::<Result<_, NetError>>()?;
        // Interfaces of pairs no longer declared (their ports go with them).
        for (i, (_, netlink)) in machines.iter().enumerate() {
            for link in netlink.links()? {
                let Some(peer) = link
                    .name
                    .strip_prefix(PREFIX)
                    .and_then(|n| n.parse::<usize>().ok())
                else {
                    continue;
                };
                if !wanted.contains_key(&(i.min(peer), i.max(peer))) {
                    delete(netlink, &link.name)?;
                }
            }
        }
        let engine_paths = wanted
            .values()
            .map(|p| impair::choose(p.engine).map(|c| c == Carrier::Userspace))
            .collect::<Result<Vec<bool>, NetError>>()?;
        let engine = if engine_paths.iter().any(|&u| u) {
            let ns = HostNamespace::ensure(&self.root)?;
            let netlink = Netlink::open_in(&ns)?;
            Some((ns, netlink))
        } else {
            None
        };
        let mut carried = Vec::new();
        let mut ids = Vec::new();
        for (&(i, j), path) in &wanted {
            let carrier = impair::choose(path.engine)?;
            let (ns_i, side_i) = &machines[i];
            let (ns_j, side_j) = &machines[j];
            let (iface_i, iface_j) = (interface(j), interface(i));
            let present = side_i.link(&iface_i)?.is_some() && side_j.link(&iface_j)?.is_some();
            match (carrier, &engine) {
                (Carrier::Userspace, Some((wan_ns, wan))) => {
                    let ports = [port(i, j), port(j, i)];
                    let ports_present =
                        wan.link(&ports[0])?.is_some() && wan.link(&ports[1])?.is_some();
                    if !(present && ports_present) {
                        for (side, name) in [(side_i, &iface_i), (side_j, &iface_j)] {
                            delete(side, name)?;
                        }
                        for (port, end, ns) in
                            [(&ports[0], &iface_i, ns_i), (&ports[1], &iface_j, ns_j)]
                        {
                            delete(wan, port)?;
                            wan.create_veth_into(port, end, ns)?;
                            impair::prepare_port(wan_ns, wan, port)?;
                        }
                        self.address(side_i, &iface_i, hosts[i].address)?;
                        self.address(side_j, &iface_j, hosts[j].address)?;
                    }
                    impair::carry(&self.root, &path.id(), ports, &path.netem)?;
                    ids.push(path.id());
                }
                _ => {
                    // The kernel's netem, on one veth pair straight between the machines.
                    let through_engine = match &engine {
                        Some((_, wan)) => wan.link(&port(i, j))?.is_some(),
                        None => false,
                    };
                    if !present || through_engine {
                        for (side, name) in [(side_i, &iface_i), (side_j, &iface_j)] {
                            delete(side, name)?;
                        }
                        side_i.create_veth_into(&iface_i, &iface_j, ns_j)?;
                        self.address(side_i, &iface_i, hosts[i].address)?;
                        self.address(side_j, &iface_j, hosts[j].address)?;
                    }
                    side_i.replace_netem(&iface_i, &path.netem)?;
                    side_j.replace_netem(&iface_j, &path.netem)?;
                }
            }
            carried.push(Carried {
                a: hosts[i].name.clone(),
                b: hosts[j].name.clone(),
                carrier,
                interfaces: [iface_i, iface_j],
            });
        }
        // Each pair's route: over its own path when impaired, else over the wire.
        for (i, (_, netlink)) in machines.iter().enumerate() {
            for (j, peer) in hosts.iter().enumerate().filter(|(j, _)| *j != i) {
                let device = if wanted.contains_key(&(i.min(j), i.max(j))) {
                    interface(j)
                } else {
                    HOST_INTERFACE.to_string()
                };
                netlink.replace_route(single(peer.address), &device)?;
            }
        }
        if ids.is_empty() {
            self.remove()?;
        } else {
            crate::net::engine::daemon::forget(&self.root, |id| !ids.iter().any(|i| i == id))?;
        }
        Ok(carried)
    }

    /// Puts the host's underlay address on its end of a path and brings it up.
    fn address(&self, side: &Netlink, name: &str, address: IpAddr) -> Result<(), NetError> {
        side.add_address(name, single(address))?;
        side.set_up(name)
    }

    /// Stops the engine of the paths and unpins its namespace: every port goes, and with
    /// each its interface in a machine. Absent is fine.
    pub fn remove(&self) -> Result<(), NetError> {
        if !self.root.exists() {
            return Ok(());
        }
        crate::net::engine::daemon::forget(&self.root, |_| true)?;
        crate::net::supervise::stop(&self.root);
        HostNamespace::remove(&self.root)?;
        match std::fs::remove_dir_all(&self.root) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(cause) => Err(NetError::Io {
                path: self.root.clone(),
                cause,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_an_interface_name() {
        assert_eq!(interface(2), "kw2");
        assert_eq!(port(0, 2), "kwp0-2");
        assert!(port(999, 998).len() <= 15);
    }
}
