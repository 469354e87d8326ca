//! Point-to-point links between two containers' named interfaces (`link "a:eth1" "b:eth1"`):
//! one veth pair whose ends are created right in the two containers' namespaces, with the
//! first two addresses of the link's subnet and netem on both ends.

use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{NetError, NetNs, Netem, Netlink};

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
    /// The link asked for netem and this kernel has none: it carries no impairment.
    pub netem_missing: bool,
}

/// Makes the link unless end `a`'s interface already exists: `kiln up` runs this for every
/// link, every time. A kernel without netem gets the link without its impairments (the
/// caller says so) rather than no link at all.
pub fn connect(a: &LinkEnd, b: &LinkEnd, netem: Option<&Netem>) -> Result<Connected, NetError> {
    let ns_a = NetNs::of_pid(a.pid)?;
    let ns_b = NetNs::of_pid(b.pid)?;
    let side_a = Netlink::open_in(&ns_a)?;
    if side_a.link(&a.interface)?.is_some() {
        return Ok(Connected {
            made: false,
            netem_missing: false,
        });
    }
    let side_b = Netlink::open_in(&ns_b)?;
    // A half left by a restart of the other side's peer would clash with the new pair.
    match side_b.delete_link(&b.interface) {
        Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
        Err(err) => return Err(err),
    }
    side_a.create_veth_into(&a.interface, &b.interface, &ns_b)?;
    let mut netem_missing = false;
    for (netlink, end) in [(&side_a, a), (&side_b, b)] {
        if let Some(address) = end.address {
            netlink.add_address(&end.interface, address)?;
        }
        netlink.set_up(&end.interface)?;
        if let Some(netem) = netem {
            netem_missing |= impair(netlink, &end.interface, netem)?;
        }
    }
    Ok(Connected {
        made: true,
        netem_missing,
    })
}

/// Applies netem; `true` when the kernel has none (nothing applied).
pub(crate) fn impair(netlink: &Netlink, interface: &str, netem: &Netem) -> Result<bool, NetError> {
    match netlink.replace_netem(interface, netem) {
        Ok(()) => Ok(false),
        Err(NetError::NetemUnavailable { .. }) => Ok(true),
        Err(err) => Err(err),
    }
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
}

impl LinkRecord {
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

/// Sets (or with `None` clears) the impairment on one end, in the container `pid`.
pub fn set_impairment(pid: i32, interface: &str, netem: Option<&Netem>) -> Result<(), NetError> {
    let netlink = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    match netem {
        Some(netem) => netlink.replace_netem(interface, netem),
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
