//! Address allocation: which address each container gets on a network.
//!
//! Deterministic by design: a container's starting point is a hash of its key (e.g.
//! `project/web-1/front`), so the same project gives every container the same address every
//! time, whatever order the containers start in, as long as that address is free. Collisions
//! probe linearly to the next free address. [`plan_addresses`] allocates a whole project at
//! once: fixed `ip=` addresses first, then everyone else in sorted key order, so the result
//! depends only on the set of attachments.
//!
//! Pure: no I/O, no kernel. It does not remember anything; callers pass what is taken.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

#[cfg(test)]
mod tests;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, miette::Diagnostic)]
pub enum IpamError {
    #[error("no free address left in {subnet}")]
    #[diagnostic(help("use a larger subnet, or detach containers from the network"))]
    Exhausted { subnet: IpNetwork },
    #[error("subnet {subnet} has no room for a gateway and a container")]
    #[diagnostic(help("use a /30 or larger (a /126 or larger for IPv6)"))]
    SubnetTooSmall { subnet: IpNetwork },
    #[error("{address} is not inside {subnet}")]
    #[diagnostic(help("choose an address inside the subnet, or leave ip= out to get one"))]
    OutsideSubnet { address: IpAddr, subnet: IpNetwork },
    #[error("{address} is the {role} address of {subnet}")]
    #[diagnostic(help(
        "the network, broadcast and gateway addresses cannot be given to a container"
    ))]
    Reserved {
        address: IpAddr,
        subnet: IpNetwork,
        role: AddressRole,
    },
    #[error("{address} is asked for by both `{first}` and `{second}`")]
    #[diagnostic(help("give each container its own address, or leave ip= out on one"))]
    Duplicate {
        address: IpAddr,
        first: String,
        second: String,
    },
    #[error("`{key}` is attached to an unknown network `{network}`")]
    UnknownNetwork { key: String, network: String },
    #[error("`{key}` is planned twice")]
    DuplicateKey { key: String },
}

/// Why an address of a subnet cannot go to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRole {
    Network,
    Broadcast,
    Gateway,
}

impl fmt::Display for AddressRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AddressRole::Network => "network",
            AddressRole::Broadcast => "broadcast",
            AddressRole::Gateway => "gateway",
        })
    }
}

/// The host addresses of a subnet as integers, inclusive at both ends. IPv4 addresses sit in
/// the low 32 bits; the family is kept so they can be turned back.
#[derive(Debug, Clone, Copy)]
struct Hosts {
    v4: bool,
    first: u128,
    last: u128,
}

impl Hosts {
    /// A /31 (and IPv6 /127) has no network or broadcast address (RFC 3021); IPv6 has no
    /// broadcast at all, only the subnet-router anycast address at the start.
    fn of(subnet: IpNetwork) -> Result<Hosts, IpamError> {
        let network = to_int(subnet.network());
        let last = to_int(subnet.broadcast());
        let (v4, max_prefix) = if subnet.is_ipv4() {
            (true, 32)
        } else {
            (false, 128)
        };
        let point_to_point = subnet.prefix() + 1 == max_prefix;
        let (first, last) = match (subnet.prefix() == max_prefix, point_to_point, v4) {
            (true, _, _) => return Err(IpamError::SubnetTooSmall { subnet }),
            (false, true, _) => (network, last),
            (false, false, true) => (network + 1, last - 1),
            (false, false, false) => (network + 1, last),
        };
        Ok(Hosts { v4, first, last })
    }

    fn contains(&self, value: u128) -> bool {
        (self.first..=self.last).contains(&value)
    }

    /// How many host addresses; saturates only for an IPv6 /0, which nobody uses.
    fn count(&self) -> u128 {
        (self.last - self.first).saturating_add(1)
    }

    fn addr(&self, value: u128) -> IpAddr {
        if self.v4 {
            // Values come from this subnet's IPv4 range, so they fit in 32 bits.
            IpAddr::V4(Ipv4Addr::from(value as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(value))
        }
    }

    /// The integer of `address` when it is of this family.
    fn int(&self, address: IpAddr) -> Option<u128> {
        (address.is_ipv4() == self.v4).then(|| to_int(address))
    }
}

fn to_int(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The gateway of a subnet (the bridge's address): its first host address.
pub fn gateway(subnet: IpNetwork) -> Result<IpAddr, IpamError> {
    let hosts = Hosts::of(subnet)?;
    if hosts.count() < 2 {
        // A gateway and nobody else: useless, and a /31's only container would have no route.
        return Err(IpamError::SubnetTooSmall { subnet });
    }
    Ok(hosts.addr(hosts.first))
}

/// Whether two subnets share any address.
pub fn overlaps(a: IpNetwork, b: IpNetwork) -> bool {
    a.is_ipv4() == b.is_ipv4()
        && to_int(a.network()) <= to_int(b.broadcast())
        && to_int(b.network()) <= to_int(a.broadcast())
}

/// Checks an address asked for with `ip=`: inside the subnet and not its network, broadcast
/// or gateway address.
pub fn check_fixed(subnet: IpNetwork, gateway: IpAddr, address: IpAddr) -> Result<(), IpamError> {
    if address.is_ipv4() != subnet.is_ipv4() || !subnet.contains(address) {
        return Err(IpamError::OutsideSubnet { address, subnet });
    }
    let hosts = Hosts::of(subnet)?;
    let reserved = |role| IpamError::Reserved {
        address,
        subnet,
        role,
    };
    if address == gateway {
        return Err(reserved(AddressRole::Gateway));
    }
    let value = to_int(address);
    if !hosts.contains(value) {
        let role = if value < hosts.first {
            AddressRole::Network
        } else {
            AddressRole::Broadcast
        };
        return Err(reserved(role));
    }
    Ok(())
}

/// Where `key` starts probing: a hash of the key, reduced to the host range. blake3 of the
/// key's bytes, first 16 bytes little-endian; changing this moves every container.
fn start_offset(key: &str, count: u128) -> u128 {
    let hash = blake3::hash(key.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash.as_bytes()[..16]);
    u128::from_le_bytes(bytes) % count
}

/// An address for `key` on `subnet`: not the network, broadcast or gateway address, not in
/// `taken` (addresses of current members) and not in `fixed` (addresses reserved by other
/// containers' `ip=`). The same key gets the same address as long as that address is free.
pub fn allocate(
    subnet: IpNetwork,
    gateway: IpAddr,
    taken: &BTreeSet<IpAddr>,
    fixed: &BTreeSet<IpAddr>,
    key: &str,
) -> Result<IpAddr, IpamError> {
    allocate_from(subnet, Hosts::of(subnet)?, gateway, taken, fixed, key)
}

/// [`allocate`] within `range` (first, last, inclusive) of `subnet`: an overlay host's
/// range for containers started by hand, so two hosts never hand out one address.
pub fn allocate_in(
    subnet: IpNetwork,
    range: (IpAddr, IpAddr),
    gateway: IpAddr,
    taken: &BTreeSet<IpAddr>,
    fixed: &BTreeSet<IpAddr>,
    key: &str,
) -> Result<IpAddr, IpamError> {
    let mut hosts = Hosts::of(subnet)?;
    match (hosts.int(range.0), hosts.int(range.1)) {
        (Some(first), Some(last)) if first <= last => {
            hosts.first = hosts.first.max(first);
            hosts.last = hosts.last.min(last);
        }
        _ => return Err(IpamError::Exhausted { subnet }),
    }
    if hosts.first > hosts.last {
        return Err(IpamError::Exhausted { subnet });
    }
    allocate_from(subnet, hosts, gateway, taken, fixed, key)
}

fn allocate_from(
    subnet: IpNetwork,
    hosts: Hosts,
    gateway: IpAddr,
    taken: &BTreeSet<IpAddr>,
    fixed: &BTreeSet<IpAddr>,
    key: &str,
) -> Result<IpAddr, IpamError> {
    let blocked: BTreeSet<u128> = taken
        .iter()
        .chain(fixed)
        .chain([&gateway])
        .filter_map(|&address| hosts.int(address))
        .filter(|&value| hosts.contains(value))
        .collect();
    let count = hosts.count();
    if blocked.len() as u128 >= count {
        return Err(IpamError::Exhausted { subnet });
    }
    // A free address exists, so the probe ends within `blocked.len() + 1` steps.
    let mut candidate = hosts.first + start_offset(key, count);
    while blocked.contains(&candidate) {
        candidate = if candidate == hosts.last {
            hosts.first
        } else {
            candidate + 1
        };
    }
    Ok(hosts.addr(candidate))
}

/// One container's attachment to one network, for [`plan_addresses`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Unique per attachment, e.g. `project/web-1/front`; the hash that places it.
    pub key: String,
    /// The network's name, a key of the `networks` map.
    pub network: String,
    /// The address asked for with `ip=`, if any.
    pub fixed: Option<IpAddr>,
}

/// Addresses for every attachment of a project, keyed by attachment key. Fixed addresses are
/// checked and honoured first; the others are allocated in sorted key order, so the result
/// does not depend on the order of `attachments`. Each network's gateway is [`gateway`].
pub fn plan_addresses(
    networks: &BTreeMap<String, IpNetwork>,
    attachments: &[Attachment],
) -> Result<BTreeMap<String, IpAddr>, IpamError> {
    let mut sorted: Vec<&Attachment> = attachments.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    for pair in sorted.windows(2) {
        if pair[0].key == pair[1].key {
            return Err(IpamError::DuplicateKey {
                key: pair[0].key.clone(),
            });
        }
    }

    let subnet_of = |attachment: &Attachment| {
        networks
            .get(&attachment.network)
            .copied()
            .ok_or_else(|| IpamError::UnknownNetwork {
                key: attachment.key.clone(),
                network: attachment.network.clone(),
            })
    };

    let mut plan = BTreeMap::new();
    // Per network: address → the key holding it.
    let mut used: BTreeMap<&str, BTreeMap<IpAddr, &str>> = BTreeMap::new();
    for attachment in &sorted {
        let subnet = subnet_of(attachment)?;
        let Some(address) = attachment.fixed else {
            continue;
        };
        check_fixed(subnet, gateway(subnet)?, address)?;
        let holders = used.entry(attachment.network.as_str()).or_default();
        if let Some(first) = holders.insert(address, &attachment.key) {
            return Err(IpamError::Duplicate {
                address,
                first: first.to_string(),
                second: attachment.key.clone(),
            });
        }
        plan.insert(attachment.key.clone(), address);
    }

    let fixed: BTreeMap<&str, BTreeSet<IpAddr>> = used
        .iter()
        .map(|(network, holders)| (*network, holders.keys().copied().collect()))
        .collect();
    let none = BTreeSet::new();
    let mut taken: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
    for attachment in sorted.iter().filter(|a| a.fixed.is_none()) {
        let subnet = subnet_of(attachment)?;
        let network = attachment.network.as_str();
        let taken = taken.entry(network).or_default();
        let fixed = fixed.get(network).unwrap_or(&none);
        let address = allocate(subnet, gateway(subnet)?, taken, fixed, &attachment.key)?;
        taken.insert(address);
        plan.insert(attachment.key.clone(), address);
    }
    Ok(plan)
}
