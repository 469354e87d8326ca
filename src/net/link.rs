//! Point-to-point links between two containers' named interfaces (`link "a:eth1" "b:eth1"`),
//! with the first two addresses of the link's subnet.
//!
//! An unimpaired link, or one the kernel impairs (netem on both ends), is one veth pair
//! whose ends are created right in the two containers' namespaces. A link kiln's engine
//! impairs is two veth pairs: each container's interface has its peer — a port named
//! `kel…-a` / `kel…-b` — in the kiln host namespace, and the engine moves frames between
//! the two ports.

use std::net::IpAddr;
use std::path::Path;

use ipnetwork::IpNetwork;

use super::impair::{Carrier, Engine};
use super::{HostNamespace, NetError, NetNs, Netem, Netlink};

/// One end of a link: the container's pid 1 and the interface's name there.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkEnd {
    pub pid: i32,
    pub interface: String,
    pub address: Option<IpNetwork>,
}

/// The two addresses of a link on `subnet`: its first two host addresses (both addresses
/// of a /31).
pub fn link_addresses(subnet: IpNetwork) -> Option<(IpNetwork, IpNetwork)> {
    let prefix = subnet.prefix();
    let hosts: Vec<IpAddr> = match subnet {
        IpNetwork::V4(v4) if prefix >= 31 => v4.iter().map(IpAddr::V4).take(2).collect(),
        IpNetwork::V4(v4) => v4.iter().skip(1).take(2).map(IpAddr::V4).collect(),
        IpNetwork::V6(v6) => v6.iter().skip(1).take(2).map(IpAddr::V6).collect(),
    };
    match hosts.as_slice() {
        [a, b] => Some((
            IpNetwork::new(*a, prefix).ok()?,
            IpNetwork::new(*b, prefix).ok()?,
        )),
        _ => None,
    }
}

/// What [`connect`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connected {
    /// False: end `a`'s interface existed already and was left as it is.
    pub made: bool,
    /// Who carries the impairment (`None`: the link has none).
    pub carrier: Option<Carrier>,
}

/// The engine's name for a link: the id of its path and the seed of its port names.
pub fn link_id(project: &str, a: &str, b: &str) -> String {
    format!("link {project} {a} {b}")
}

/// The two ports of a link the engine carries.
pub fn ports(id: &str) -> Result<[String; 2], NetError> {
    Ok([
        super::names::link_port_name(id, 'a')?,
        super::names::link_port_name(id, 'b')?,
    ])
}

/// Makes the link `id` unless both ends' interfaces already exist: `kiln up` runs this for
/// every link, every time (an engine link is registered with the engine again then, in
/// case it lost it; a link one of whose containers was started again is made anew).
pub fn connect(
    state_root: &Path,
    id: &str,
    a: &LinkEnd,
    b: &LinkEnd,
    impair: Option<(&Netem, Engine)>,
) -> Result<Connected, NetError> {
    let carrier = impair
        .map(|(_, engine)| super::impair::choose(engine))
        .transpose()?;
    let ns_a = NetNs::of_pid(a.pid)?;
    let ns_b = NetNs::of_pid(b.pid)?;
    let side_a = Netlink::open_in(&ns_a)?;
    let side_b = Netlink::open_in(&ns_b)?;
    if side_a.link(&a.interface)?.is_some() && side_b.link(&b.interface)?.is_some() {
        // The engine may have lost the path (its file was removed): give it back the
        // declared one; one it has (perhaps changed by `kiln network impair`) stays.
        if let (Some(Carrier::Userspace), Some((netem, _))) = (carrier, impair) {
            let known = super::engine::paths::load(state_root)?
                .paths
                .iter()
                .any(|p| p.id == id);
            if known {
                super::engine::daemon::ensure(state_root)?;
            } else {
                super::impair::carry(state_root, id, ports(id)?, netem)?;
            }
        }
        return Ok(Connected {
            made: false,
            carrier,
        });
    }
    // A half left by a restart of one side (its peer, or its engine port, still there)
    // would clash with the new pair.
    for (side, end) in [(&side_a, a), (&side_b, b)] {
        match side.delete_link(&end.interface) {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    match (carrier, impair) {
        (Some(Carrier::Userspace), Some((netem, _))) => {
            let host = HostNamespace::ensure(state_root)?;
            let outside = Netlink::open_in(&host)?;
            let ports = ports(id)?;
            for (port, end, ns) in [(&ports[0], a, &ns_a), (&ports[1], b, &ns_b)] {
                match outside.delete_link(port) {
                    Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
                    Err(err) => return Err(err),
                }
                outside.create_veth_into(port, &end.interface, ns)?;
                super::impair::prepare_port(&host, &outside, port)?;
            }
            address_and_up(&side_a, a)?;
            address_and_up(&side_b, b)?;
            super::impair::carry(state_root, id, ports, netem)?;
        }
        _ => {
            side_a.create_veth_into(&a.interface, &b.interface, &ns_b)?;
            for (netlink, end) in [(&side_a, a), (&side_b, b)] {
                address_and_up(netlink, end)?;
                if let Some((netem, _)) = impair {
                    netlink.replace_netem(&end.interface, netem)?;
                }
            }
        }
    }
    Ok(Connected {
        made: true,
        carrier,
    })
}

fn address_and_up(netlink: &Netlink, end: &LinkEnd) -> Result<(), NetError> {
    if let Some(address) = end.address {
        netlink.add_address(&end.interface, address)?;
    }
    netlink.set_up(&end.interface)
}

/// A link of a project as `kiln up` made it: `$ROOT/net/links.json` lists them, so
/// `kiln network links` and `kiln network impair` find both ends from either one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LinkRecord {
    pub project: String,
    /// `container:interface` of each end.
    pub a: String,
    pub b: String,
    pub subnet: Option<IpNetwork>,
    /// The impairment in force (declared, or set by `kiln network impair`).
    pub impair: Option<Netem>,
    /// Who carries it (`None` for an unimpaired link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carrier: Option<Carrier>,
    /// What kiln.kdl declared when `kiln up` last made or changed the link: a new
    /// declaration replaces the impairment in force, an unchanged one keeps it (it may have
    /// been changed by `kiln network impair`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<Netem>,
    #[serde(default)]
    pub declared_engine: Engine,
}

impl LinkRecord {
    /// The engine's id of this link.
    pub fn id(&self) -> String {
        link_id(&self.project, &self.a, &self.b)
    }

    /// The (container, interface) pairs of both ends.
    pub fn ends(&self) -> [(&str, &str); 2] {
        [split_end(&self.a), split_end(&self.b)]
    }
}

fn split_end(end: &str) -> (&str, &str) {
    end.split_once(':').unwrap_or((end, ""))
}

fn links_path(state_root: &std::path::Path) -> std::path::PathBuf {
    state_root.join("net").join("links.json")
}

/// Every link recorded under the state root.
pub fn load_links(state_root: &std::path::Path) -> Result<Vec<LinkRecord>, NetError> {
    let path = links_path(state_root);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| NetError::Io {
            path,
            cause: std::io::Error::other(e),
        }),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(cause) => Err(NetError::Io { path, cause }),
    }
}

/// Replaces the links of `project` with `links` (none: forgets them).
pub fn save_project_links(
    state_root: &std::path::Path,
    project: &str,
    links: Vec<LinkRecord>,
) -> Result<(), NetError> {
    let mut all: Vec<LinkRecord> = load_links(state_root)?
        .into_iter()
        .filter(|l| l.project != project)
        .collect();
    all.extend(links);
    let path = links_path(state_root);
    if all.is_empty() {
        return match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(cause) => Err(NetError::Io { path, cause }),
        };
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|cause| NetError::Io {
            path: dir.to_path_buf(),
            cause,
        })?;
    }
    let bytes = serde_json::to_vec_pretty(&all).expect("links serialize");
    crate::atomic_file::replace(&path, &bytes).map_err(|cause| NetError::Io { path, cause })
}

/// Changes the impairment of a running link whose containers' pid 1 are `pids`: in place
/// when who carries it stays the same, or by making the link again when it moves to
/// another engine (`engine` asks for one; a link without impairment gets `auto`'s). `None`
/// clears the impairment and keeps the link as it is. Returns who carries it now.
pub fn reimpair(
    state_root: &Path,
    link: &LinkRecord,
    pids: [i32; 2],
    netem: Option<&Netem>,
    engine: Option<Engine>,
) -> Result<Option<Carrier>, NetError> {
    let target = match (netem, engine, link.carrier) {
        (None, None, current) => current,
        (_, Some(engine), _) => Some(super::impair::choose(engine)?),
        (Some(_), None, Some(current)) => Some(current),
        (Some(_), None, None) => Some(super::impair::choose(Engine::Auto)?),
    };
    let ends = link.ends();
    let id = link.id();
    let default = Netem::default();
    if target == link.carrier || target.is_none() {
        match link.carrier {
            Some(Carrier::Userspace) => {
                super::impair::carry(state_root, &id, ports(&id)?, netem.unwrap_or(&default))?;
            }
            _ => {
                for ((_, interface), pid) in ends.iter().zip(pids) {
                    set_impairment(pid, interface, netem)?;
                }
            }
        }
        return Ok(link.carrier);
    }
    let addresses = link.subnet.and_then(link_addresses);
    let end = |i: usize| LinkEnd {
        pid: pids[i],
        interface: ends[i].1.to_string(),
        address: addresses.map(|(a, b)| if i == 0 { a } else { b }),
    };
    disconnect(state_root, &id, &end(0), &end(1))?;
    let engine = match target {
        Some(Carrier::Kernel) => Engine::Kernel,
        _ => Engine::Userspace,
    };
    let connected = connect(
        state_root,
        &id,
        &end(0),
        &end(1),
        Some((netem.unwrap_or(&default), engine)),
    )?;
    Ok(connected.carrier)
}

/// Takes a link apart (both containers' interfaces, the engine's ports and path), so that
/// [`connect`] can make it again another way.
pub fn disconnect(state_root: &Path, id: &str, a: &LinkEnd, b: &LinkEnd) -> Result<(), NetError> {
    for end in [a, b] {
        match Netlink::open_in(&NetNs::of_pid(end.pid)?)?.delete_link(&end.interface) {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    if let Ok(host) = NetNs::open(&HostNamespace::path(state_root)) {
        let netlink = Netlink::open_in(&host)?;
        for port in ports(id)? {
            match netlink.delete_link(&port) {
                Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
                Err(err) => return Err(err),
            }
        }
    }
    super::engine::daemon::forget(state_root, |path| path == id)
}

/// Forgets the links of `project` (their interfaces went with its containers): the record,
/// the engine's paths, and the kiln host namespace if nothing else needs it.
pub fn forget_project(state_root: &Path, project: &str) -> Result<(), NetError> {
    save_project_links(state_root, project, Vec::new())?;
    let prefix = format!("link {project} ");
    super::engine::daemon::forget(state_root, |id| id.starts_with(&prefix))?;
    HostNamespace::release_if_unused(state_root)
}

/// Forgets the engine's paths of `project`'s links with an end at `container`, which is
/// being removed (its interfaces, and with them the engine's ports, go with it): nothing is
/// left for kiln's engine to carry, so the last such path takes the engine process with
/// it. The links stay recorded: `kiln up` makes them, and their paths, again.
pub fn forget_container(state_root: &Path, project: &str, container: &str) -> Result<(), NetError> {
    let ids: Vec<String> = load_links(state_root)?
        .iter()
        .filter(|l| l.project == project && l.ends().iter().any(|(c, _)| *c == container))
        .map(LinkRecord::id)
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    super::engine::daemon::forget(state_root, |id| ids.iter().any(|i| i == id))?;
    HostNamespace::release_if_unused(state_root)
}

/// Sets (or with `None` clears) the kernel's netem on one end, in the container `pid`.
pub fn set_impairment(pid: i32, interface: &str, netem: Option<&Netem>) -> Result<(), NetError> {
    let netlink = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    set_netem(&netlink, interface, netem)
}

/// Replaces (or removes) the netem qdisc of `interface`. A replace keeps the delay
/// distribution the qdisc had (the kernel forgets a table only with its qdisc): jitter
/// that must be uniform again gets a new qdisc.
pub(crate) fn set_netem(
    netlink: &Netlink,
    interface: &str,
    netem: Option<&Netem>,
) -> Result<(), NetError> {
    match netem {
        Some(netem) => {
            if netem.distribution == super::netem::Distribution::Uniform && !netem.jitter.is_zero()
            {
                netlink.delete_root_qdisc(interface)?;
            }
            netlink.replace_netem(interface, netem)
        }
        None => netlink.delete_root_qdisc(interface),
    }
}

/// What the kernel says about one end: its counters and the netem in force.
pub fn end_state(
    pid: i32,
    interface: &str,
) -> Result<(Option<super::Link>, Option<Netem>), NetError> {
    let netlink = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    let link = netlink.link(interface)?;
    let netem = match link {
        Some(_) => netlink.qdiscs(interface)?.into_iter().find_map(|q| q.netem),
        None => None,
    };
    Ok((link, netem))
}
