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
