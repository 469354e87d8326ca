//! Managed networks: `kiln network create` / `rm` and what `kiln up` / `down` do with the
//! networks a project declares. A network is a record (`records`) and a bridge with the
//! gateway address in the kiln host namespace (`host`); its DNS server is the root's
//! daemon's (`daemon`, kept running by `supervise`). Record and bridge are made and removed together: a failure
//! half-way undoes the first half.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use super::records::{NetRecordError, NetworkRecord, NetworkRecords};
use super::{HostNamespace, NetError, Netlink};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NetworkError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Kernel(#[from] NetError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Record(#[from] NetRecordError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Ipam(#[from] super::ipam::IpamError),
    #[error("network {name} exists with subnet {existing}, not {wanted}")]
    #[diagnostic(help("remove it first (`kiln network rm {name}`) or use its subnet"))]
    SubnetMismatch {
        name: String,
        existing: IpNetwork,
        wanted: IpNetwork,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Service(#[from] super::supervise::ServiceError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Egress(#[from] super::egress::EgressError),
    #[error("network {name} exists {existing}")]
    #[diagnostic(help("remove it first (`kiln network rm {name}`), or declare it as it is"))]
    EgressMismatch {
        name: String,
        existing: &'static str,
    },
    #[error("no free /24 left in 10.89.0.0/16 for network {name}")]
    #[diagnostic(help("give the network a subnet: `network \"{name}\" subnet=\"10.90.0.0/24\"`"))]
    NoFreeSubnet { name: String },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The bridge's address: the gateway with the subnet's prefix.
pub fn gateway_network(record: &NetworkRecord) -> IpNetwork {
    IpNetwork::new(record.gateway, record.subnet.prefix()).expect("the gateway is in the subnet")
}

/// Creates the network `name` of `project` (none: of no project; its record is known as
/// `project/name`, see [`crate::scope`]): its record, then its bridge (up, with the gateway
/// address) in the kiln host namespace, then makes sure the DNS daemon serves it.
pub fn create(
    state_root: &Path,
    name: &str,
    subnet: IpNetwork,
    internal: bool,
    egress: bool,
    project: Option<&str>,
) -> Result<NetworkRecord, NetworkError> {
    let records = NetworkRecords::open(state_root)?;
    // The user's name is judged as a network name, not as the bridge made from it.
    super::records::validate_name(name)?;
    if let Some(project) = project {
        super::records::validate_name(project)?;
    }
    let reference = crate::scope::qualify(project, name);
    let bridge = super::names::bridge_name(&reference)?;
    let mut record = NetworkRecord::new(
        &reference,
        subnet,
        internal,
        bridge,
        project.map(str::to_string),
    )?;
    record.egress = egress;
    records.create(&record)?;
    if let Err(err) = make_bridge(state_root, &record) {
        let _ = records.remove(&reference);
        return Err(err);
    }
    if egress && let Err(err) = super::egress::up(state_root, &record) {
        let _ = remove(state_root, &reference);
        return Err(err.into());
    }
    super::supervise::ensure(state_root)?;
    Ok(record)
}

fn make_bridge(state_root: &Path, record: &NetworkRecord) -> Result<(), NetworkError> {
    let host = HostNamespace::ensure(state_root)?;
    let netlink = Netlink::open_in(&host)?;
    let made = netlink
        .create_bridge(&record.bridge)
        .and_then(|()| netlink.add_address(&record.bridge, gateway_network(record)))
        .and_then(|()| netlink.set_up(&record.bridge));
    if let Err(err) = made {
        let _ = netlink.delete_link(&record.bridge);
        return Err(err.into());
    }
    Ok(())
}

/// The network `name` a project declares: created when missing; an existing one must have
/// the same subnet. Without a subnet, the first /24 of 10.89.0.0/16 free of every other
/// network is taken.
pub fn ensure(
    state_root: &Path,
    name: &str,
    subnet: Option<IpNetwork>,
    internal: bool,
    egress: bool,
    project: Option<&str>,
) -> Result<NetworkRecord, NetworkError> {
    let records = NetworkRecords::open(state_root)?;
    if let Some(existing) = records.find(&crate::scope::qualify(project, name))? {
        if let Some(wanted) = subnet
            && wanted != existing.subnet
        {
            return Err(NetworkError::SubnetMismatch {
                name: existing.name.clone(),
                existing: existing.subnet,
                wanted,
            });
        }
        if existing.egress != egress {
            return Err(NetworkError::EgressMismatch {
                name: existing.name.clone(),
                existing: if existing.egress {
                    "with egress"
                } else {
                    "without egress"
                },
            });
        }
        // The record may have outlived its bridge (the kiln host namespace was removed by
        // hand, or the machine rebooted): make it again.
        let host = HostNamespace::ensure(state_root)?;
        if Netlink::open_in(&host)?.link(&existing.bridge)?.is_none() {
            make_bridge(state_root, &existing)?;
        }
        if existing.egress {
            super::egress::up(state_root, &existing)?;
        }
        super::supervise::ensure(state_root)?;
        return Ok(existing);
    }
    let subnet = match subnet {
        Some(subnet) => subnet,
        None => free_subnet(&records.list()?, name)?,
    };
    create(state_root, name, subnet, internal, egress, project)
}

fn free_subnet(existing: &[NetworkRecord], name: &str) -> Result<IpNetwork, NetworkError> {
    (0..=255u8)
        .map(|third| IpNetwork::new(IpAddr::from([10, 89, third, 0]), 24).expect("a /24 is valid"))
        .find(|candidate| {
            existing
                .iter()
                .all(|n| !super::ipam::overlaps(n.subnet, *candidate))
        })
        .ok_or_else(|| NetworkError::NoFreeSubnet {
            name: name.to_string(),
        })
}

/// `kiln network create`: a new network (an existing name is an error); without a subnet,
/// the first free /24 of 10.89.0.0/16.
pub fn ensure_new(
    state_root: &Path,
    name: &str,
    subnet: Option<IpNetwork>,
    internal: bool,
    egress: bool,
) -> Result<NetworkRecord, NetworkError> {
    let subnet = match subnet {
        Some(subnet) => subnet,
        None => free_subnet(&NetworkRecords::open(state_root)?.list()?, name)?,
    };
    create(state_root, name, subnet, internal, egress, None)
}

/// Removes a network (by reference: `front`, `shop/front`): refused while containers are
/// attached (members whose container no longer exists are dropped first). The last network
/// takes the DNS daemon with it, and the kiln host namespace unless kiln's impairment engine
/// still carries links there.
pub fn remove(state_root: &Path, name: &str) -> Result<NetworkRecord, NetworkError> {
    let records = NetworkRecords::open(state_root)?;
    prune_members(state_root, &records, name)?;
    if let Some(record) = records.find(name)?
        && record.egress
    {
        super::egress::down(state_root, &record)?;
    }
    let record = records.remove(name)?;
    if let Ok(host) = super::NetNs::open(&HostNamespace::path(state_root)) {
        match Netlink::open_in(&host)?.delete_link(&record.bridge) {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(err) => return Err(err.into()),
        }
    }
    if records.list()?.is_empty() {
        super::supervise::stop(state_root);
        HostNamespace::release_if_unused(state_root)?;
    }
    Ok(record)
}

/// Drops the memberships of containers that no longer exist (a crash between attaching and
/// recording, or records removed by hand).
fn prune_members(
    state_root: &Path,
    records: &NetworkRecords,
    name: &str,
) -> Result<(), NetworkError> {
    let containers = crate::state::Records::open(&super::host::containers_root(state_root))
        .and_then(|r| r.list())
        .map(|list| {
            list.into_iter()
                .map(|r| r.id.to_string())
                .collect::<std::collections::BTreeSet<_>>()
        })
        .unwrap_or_default();
    let Some(record) = records.find(name)? else {
        return Ok(());
    };
    for member in &record.members {
        if !containers.contains(&member.container_id) {
            records.remove_member(name, &member.container_id)?;
        }
    }
    Ok(())
}
