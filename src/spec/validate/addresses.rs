//! Subnets, fixed addresses, published ports and interface names.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::{Index, NameMap};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{Attachment, Container, Project, Protocol};
use crate::spec::source::{Span, Spanned};

/// The address a network's bridge takes: the first host address.
pub(crate) fn gateway(subnet: &IpNetwork) -> Option<IpAddr> {
    subnet.iter().nth(1)
}

/// How many addresses a subnet can hand to members. Networks lose the network address, the
/// broadcast address and the gateway; point-to-point link subnets have no gateway, and /31
/// (RFC 3021) uses both addresses.
fn capacity(subnet: &IpNetwork, has_gateway: bool) -> u128 {
    let bits = match subnet {
        IpNetwork::V4(_) => 32,
        IpNetwork::V6(_) => 128,
    };
    let host_bits = bits - u32::from(subnet.prefix());
    let size: u128 = if host_bits >= 127 {
        u128::MAX
    } else {
        1u128 << host_bits
    };
    let usable = match host_bits {
        0 => 1,
        1 => 2,
        _ => size - 2,
    };
    usable.saturating_sub(u128::from(has_gateway))
}

pub(super) fn check(project: &Project, index: &Index<'_>, diags: &mut Diagnostics) {
    // Overlaps between every network and link subnet.
    let mut subnets: Vec<(String, &Spanned<IpNetwork>)> = Vec::new();
    for n in &project.networks {
        if let Some(s) = &n.subnet {
            subnets.push((format!("network `{}`", n.name.value), s));
        }
    }
    for l in &project.links {
        if let Some(s) = &l.subnet {
            subnets.push((
                format!("link `{}:{}`", l.a.container.value, l.a.interface.value),
                s,
            ));
        }
    }
    for (i, (name, subnet)) in subnets.iter().enumerate() {
        for (other_name, other) in &subnets[..i] {
            if overlaps(&subnet.value, &other.value) {
                diags
                    .error(
                        Code::OverlappingSubnets,
                        subnet.span,
                        format!("subnet {} overlaps {other_name}", subnet.value),
                    )
                    .label(format!("{name} uses it"))
                    .related(other.span, format!("{other_name} has {}", other.value))
                    .help("give each network and link a subnet of its own");
            }
        }
    }

    // Each network's attachments, in declaration order.
    let mut attached: NameMap<&str, Vec<(&Container, &Attachment)>> = NameMap::default();
    for c in &project.containers {
        for a in &c.networks {
            attached.entry(&a.network.value).or_default().push((c, a));
        }
    }
    for network in &project.networks {
        check_ports_per_bridge(
            network,
            attached
                .get(network.name.value.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default(),
            diags,
        );
        let Some(subnet) = &network.subnet else {
            continue;
        };
        let gw = gateway(&subnet.value);
        let mut used: BTreeMap<IpAddr, Span> = BTreeMap::new();
        let mut members: u128 = 0;
        let attachments = attached.get(network.name.value.as_str());
        for &(c, a) in attachments.map(Vec::as_slice).unwrap_or_default() {
            members += u128::from(c.replicas.value);
            let Some(ip) = &a.ip else { continue };
            if !subnet.value.contains(ip.value)
                || ip.value == subnet.value.network()
                || Some(ip.value) == broadcast(&subnet.value)
            {
                let why = if subnet.value.contains(ip.value) {
                    "it is the network's own or broadcast address"
                } else {
                    "outside the subnet"
                };
                diags
                    .error(
                        Code::AddressOutsideSubnet,
                        ip.span,
                        format!(
                            "address {} is not usable on network `{}`",
                            ip.value, network.name.value
                        ),
                    )
                    .label(why)
                    .related(
                        subnet.span,
                        format!("`{}` has subnet {}", network.name.value, subnet.value),
                    )
                    .help(format!(
                        "pick a host address in {}, or leave `ip` out to have one allocated",
                        subnet.value
                    ));
                continue;
            }
            if Some(ip.value) == gw {
                diags
                    .error(
                        Code::DuplicateAddress,
                        ip.span,
                        format!(
                            "address {} is the gateway of network `{}`",
                            ip.value, network.name.value
                        ),
                    )
                    .label("the bridge has this address")
                    .related(
                        subnet.span,
                        "the first address of the subnet goes to the bridge",
                    )
                    .help("pick another address, or leave `ip` out to have one allocated");
                continue;
            }
            if c.replicas.value > 1 {
                diags
                    .error(
                        Code::DuplicateAddress,
                        ip.span,
                        format!(
                            "{} replicas of `{}` cannot share address {}",
                            c.replicas.value, c.name.value, ip.value
                        ),
                    )
                    .label("every replica would get this address")
                    .related(c.replicas.span, "replicas set here")
                    .help("leave `ip` out: each replica gets an address of its own");
            }
            if let Some(first) = used.insert(ip.value, ip.span) {
                diags
                    .error(
                        Code::DuplicateAddress,
                        ip.span,
                        format!(
                            "address {} is assigned twice on network `{}`",
                            ip.value, network.name.value
                        ),
                    )
                    .label("assigned again here")
                    .related(first, "first assigned here")
                    .help("give each container its own address");
            }
        }
        let overlay = network.driver == crate::spec::model::Driver::Overlay;
        let cap = if overlay {
            // The lower half, less network and gateway; the upper half is cut into one range
            // per host for containers started by hand (`project::overlay`).
            ((capacity(&subnet.value, true) + 3) / 2).saturating_sub(2)
        } else {
            capacity(&subnet.value, true)
        };
        if members > cap {
            let label = if overlay {
                format!(
                    "an overlay's declared containers take the lower half of its {} addresses, less network and gateway",
                    subnet.value.size()
                )
            } else {
                format!(
                    "{} addresses, less network, broadcast and gateway",
                    subnet.value.size()
                )
            };
            diags
                .error(
                    Code::SubnetTooSmall,
                    subnet.span,
                    format!(
                        "network `{}` has {members} members but room for {cap}",
                        network.name.value
                    ),
                )
                .label(label)
                .help("use a larger subnet (a smaller prefix length)");
        }
    }

    for link in &project.links {
        if let Some(subnet) = &link.subnet
            && capacity(&subnet.value, false) < 2
        {
            diags
                .error(
                    Code::SubnetTooSmall,
                    subnet.span,
                    format!(
                        "link subnet {} has room for fewer than 2 addresses",
                        subnet.value
                    ),
                )
                .help("use a /30 or a /31 for a point-to-point link");
        }
    }

    check_ports(project, diags);
    check_interfaces(project, index, diags);

    let mut host_addresses: BTreeMap<IpAddr, Span> = BTreeMap::new();
    for host in &project.hosts {
        if let Some(address) = &host.address
            && let Some(first) = host_addresses.insert(address.value, address.span)
        {
            diags
                .error(
                    Code::DuplicateAddress,
                    address.span,
                    format!("address {} is given to two hosts", address.value),
                )
                .label("given again here")
                .related(first, "first given here")
                .help("each host has its own underlay address");
        }
    }
}

/// How many ports a Linux bridge takes (`BR_MAX_PORTS` is 1,024 and port number 0 is never
/// given out): every container on a network is one port of its bridge.
pub(crate) const BRIDGE_PORTS: u128 = 1023;

/// A network with more members than its bridge has ports cannot come up: the kernel refuses
/// the port after the last (`EXFULL`, "Exchange full") half-way through `kiln up`. An
/// overlay's VXLAN device takes one port too.
fn check_ports_per_bridge(
    network: &crate::spec::model::Network,
    attachments: &[(&Container, &Attachment)],
    diags: &mut Diagnostics,
) {
    let overlay = network.driver == crate::spec::model::Driver::Overlay;
    let room = BRIDGE_PORTS - u128::from(overlay);
    let mut members: u128 = 0;
    let mut overflow = None;
    for &(c, a) in attachments {
        members += u128::from(c.replicas.value);
        if members > room && overflow.is_none() {
            overflow = Some(a.network.span);
        }
    }
    let Some(first) = overflow else {
        return;
    };
    let label = if overlay {
        format!(
            "{room} containers at most: its bridge takes {BRIDGE_PORTS} ports, one of them the VXLAN device's"
        )
    } else {
        format!("{room} containers at most: a Linux bridge takes {BRIDGE_PORTS} ports")
    };
    diags
        .error(
            Code::TooManyMembers,
            network.name.span,
            format!(
                "network `{}` has {members} members but its bridge has room for {room}",
                network.name.value
            ),
        )
        .label(label)
        .related(first, "the bridge is full before this attachment")
        .help("spread the containers over several networks");
}

/// Two subnets of one family overlap when either holds the other's network address.
fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    a.contains(b.network()) || b.contains(a.network())
}

fn broadcast(subnet: &IpNetwork) -> Option<IpAddr> {
    match subnet {
        IpNetwork::V4(n) if n.prefix() < 31 => Some(IpAddr::V4(n.broadcast())),
        _ => None,
    }
}

fn check_ports(project: &Project, diags: &mut Diagnostics) {
    let mut published: BTreeMap<(Option<std::net::IpAddr>, u16, Protocol), Span> = BTreeMap::new();
    for c in &project.containers {
        // The port's proxy forwards to the container's address on a network: none, no port.
        if c.publish_all && c.publish.is_empty() && c.networks.is_empty() {
            diags
                .error(
                    Code::PublishWithoutNetwork,
                    c.name.span,
                    format!("`{}` publishes its image's ports but is on no network", c.name.value),
                )
                .label("`publish-all` is set in this container")
                .help("attach it to one: `network \"NAME\"` in the container, with `network \"NAME\"` declared at the top");
        }
        if let Some(first) = c.publish.first()
            && c.networks.is_empty()
        {
            diags
                .error(
                    Code::PublishWithoutNetwork,
                    first.port.span,
                    format!("`{}` publishes a port but is on no network", c.name.value),
                )
                .label("published here")
                .related(c.name.span, "this container has no `network`")
                .help("attach it to one: `network \"NAME\"` in the container, with `network \"NAME\"` declared at the top");
        }
        for p in &c.publish {
            if c.replicas.value > 1 {
                diags
                    .error(Code::DuplicateHostPort, p.host.span, format!("host port {} is published by {} replicas of `{}`", p.host.value, c.replicas.value, c.name.value))
                    .label("every replica would listen on it")
                    .related(c.replicas.span, "replicas set here")
                    .help("only one process can listen on a host port: publish from a single container");
            }
            if let Some(first) = published.insert(
                (
                    p.address.as_ref().map(|a| a.value),
                    p.host.value,
                    p.protocol,
                ),
                p.host.span,
            ) {
                diags
                    .error(
                        Code::DuplicateHostPort,
                        p.host.span,
                        format!("host port {} is published twice", p.host.value),
                    )
                    .label("published again here")
                    .related(first, "first published here")
                    .help("pick another host port");
            }
        }
    }
}

/// Networks take `eth0`, `eth1`… in declaration order; links must use other names, once each.
fn check_interfaces(project: &Project, index: &Index<'_>, diags: &mut Diagnostics) {
    let mut claimed: BTreeMap<(&str, &str), Span> = BTreeMap::new();
    for link in &project.links {
        for end in [&link.a, &link.b] {
            let container = end.container.value.as_str();
            let iface = end.interface.value.as_str();
            let base = index.instance(container);
            if let Some(c) = base
                && let Some(index) = (0..c.networks.len()).find(|i| format!("eth{i}") == iface)
            {
                diags
                    .error(
                        Code::InterfaceConflict,
                        end.interface.span,
                        format!(
                            "`{iface}` of `{container}` is taken by network `{}`",
                            c.networks[index].network.value
                        ),
                    )
                    .label("the link wants it too")
                    .related(
                        c.networks[index].network.span,
                        format!("this attachment is `{iface}`"),
                    )
                    .help(if c.networks.len() == 1 {
                        format!("a container's network takes `eth0`; use `{container}:eth1`")
                    } else {
                        format!(
                            "networks take `eth0`…`eth{}` in order; use `{container}:eth{}`",
                            c.networks.len() - 1,
                            c.networks.len()
                        )
                    });
                continue;
            }
            if let Some(first) = claimed.insert((container, iface), end.interface.span) {
                diags
                    .error(
                        Code::InterfaceConflict,
                        end.interface.span,
                        format!("interface `{container}:{iface}` is used by two links"),
                    )
                    .label("used again here")
                    .related(first, "first used here")
                    .help("give each link its own interface name");
            }
        }
    }
}
