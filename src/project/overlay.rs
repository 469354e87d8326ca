//! The overlay networks of a multi-host project, computed from the plan alone so that
//! every machine that reads the file computes the same thing and none has to ask another
//! (no key-value store): each instance's address on each overlay, each host's range for
//! containers started by hand, and each host's VTEPs (peers, and the containers on the
//! other hosts with their addresses).
//!
//! Addresses: the gateway takes the subnet's first address; fixed addresses (`ip=`) are kept;
//! the others, in declaration order, take the lowest free address of the subnet's lower
//! half. The upper half is cut into one equal range per host, in host declaration order, so
//! containers started by hand on two hosts never get one address.
//!
//! It decides nothing about the kernel: [`vteps`] hands `net::overlay` plain addresses.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use super::ProjectPlan;
use crate::net::overlay::{Remote, Vtep};

/// The `index`th address of `subnet` (0: the network address), if it has one.
fn nth(subnet: IpNetwork, index: u128) -> Option<IpAddr> {
    if index >= size(subnet) {
        return None;
    }
    Some(match subnet {
        IpNetwork::V4(v4) => IpAddr::V4(std::net::Ipv4Addr::from(
            (u128::from(u32::from(v4.network())) + index) as u32,
        )),
        IpNetwork::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(u128::from(v6.network()) + index)),
    })
}

/// How many addresses `subnet` spans.
fn size(subnet: IpNetwork) -> u128 {
    let bits = if subnet.is_ipv4() { 32 } else { 128 };
    let free = bits - u32::from(subnet.prefix());
    if free >= 128 {
        u128::MAX
    } else {
        1u128 << free
    }
}

/// The range (first, last, inclusive) of addresses that host number `host` of `hosts` hands
/// to containers the file does not declare; `None` when the subnet is too small to share.
pub fn dynamic_range(subnet: IpNetwork, hosts: usize, host: usize) -> Option<(IpAddr, IpAddr)> {
    let n = size(subnet);
    // The last address is IPv4's broadcast; kept out on both families for simplicity.
    let start = n / 2;
    let usable = (n - 1).checked_sub(start)?;
    let each = usable / u128::try_from(hosts.max(1)).ok()?;
    if each == 0 || host >= hosts {
        return None;
    }
    let first = start + each * host as u128;
    Some((nth(subnet, first)?, nth(subnet, first + each - 1)?))
}

/// Each instance's address on each overlay network: network name → instance → address.
pub fn addresses(plan: &ProjectPlan) -> BTreeMap<String, BTreeMap<String, IpAddr>> {
    let mut all = BTreeMap::new();
    for network in plan.networks.iter().filter(|n| n.vni.is_some()) {
        let Some(subnet) = network.subnet else {
            continue;
        };
        let mut taken: BTreeSet<IpAddr> = nth(subnet, 1).into_iter().collect();
        let mut assigned = BTreeMap::new();
        let attached = |i: &super::Instance| {
            i.networks
                .iter()
                .find(|a| a.network.value == network.name)
                .map(|a| a.ip.as_ref().map(|ip| ip.value))
        };
        for instance in &plan.instances {
            if let Some(Some(ip)) = attached(instance) {
                taken.insert(ip);
                assigned.insert(instance.name.clone(), ip);
            }
        }
        let mut next = 2u128;
        for instance in &plan.instances {
            if attached(instance) != Some(None) {
                continue;
            }
            while let Some(candidate) = nth(subnet, next) {
                next += 1;
                if next > size(subnet) / 2 {
                    break;
                }
                if taken.insert(candidate) {
                    assigned.insert(instance.name.clone(), candidate);
                    break;
                }
            }
        }
        all.insert(network.name.clone(), assigned);
    }
    all
}

/// The VTEPs of host `host`: one per overlay network, with the other hosts as peers and
/// the containers placed on them as remotes. The bridge is named by `bridge` (the network's
/// bridge name in kiln's namespace; that naming is `net`'s).
pub fn vteps(
    plan: &ProjectPlan,
    host: &str,
    underlay_mtu: u32,
    bridge: impl Fn(&str) -> String,
) -> Vec<(String, Vtep)> {
    let Some(local) = plan.hosts.iter().find(|h| h.name == host) else {
        return Vec::new();
    };
    let address_of: BTreeMap<&str, IpAddr> = plan
        .hosts
        .iter()
        .map(|h| (h.name.as_str(), h.address))
        .collect();
    let host_of: BTreeMap<&str, &str> = plan
        .instances
        .iter()
        .filter_map(|i| Some((i.name.as_str(), i.host.as_deref()?)))
        .collect();
    let addresses = addresses(plan);
    let mut vteps = Vec::new();
    for network in &plan.networks {
        let Some(vni) = network.vni else { continue };
        let remotes = addresses
            .get(&network.name)
            .into_iter()
            .flatten()
            .filter_map(|(instance, address)| {
                let on = *host_of.get(instance.as_str())?;
                (on != host).then(|| Remote {
                    address: *address,
                    host: address_of[on],
                })
            })
            .collect();
        vteps.push((
            network.name.clone(),
            Vtep {
                vni,
                bridge: bridge(&network.name),
                local: local.address,
                peers: plan
                    .hosts
                    .iter()
                    .filter(|h| h.name != host)
                    .map(|h| h.address)
                    .collect(),
                remotes,
                underlay_mtu,
            },
        ));
    }
    vteps
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Options, RealFs, load_source};

    fn plan_of(text: &str) -> ProjectPlan {
        let options = Options {
            check_placement: Some(super::super::placement::check),
            ..Options::default()
        };
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &options);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        super::super::plan(&loaded.project, std::path::Path::new("/")).unwrap()
    }

    const TWO: &str = r#"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1"
        host "m2" address="192.0.2.2"
        network "mesh" subnet="10.77.0.0/16" driver="overlay" vni=77
        container "a" image="base" host="m1" { network "mesh"; }
        container "b" image="base" host="m2" { network "mesh" ip="10.77.0.2"; }
        container "c" image="base" host="m2" { network "mesh"; }
    "#;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn fixed_addresses_are_kept_and_the_others_take_the_lowest_free() {
        let plan = plan_of(TWO);
        let mesh = &addresses(&plan)["mesh"];
        assert_eq!(mesh["b"], ip("10.77.0.2"));
        assert_eq!(mesh["a"], ip("10.77.0.3"));
        assert_eq!(mesh["c"], ip("10.77.0.4"));
        assert_eq!(addresses(&plan), addresses(&plan_of(TWO)));
    }

    #[test]
    fn each_host_has_a_vtep_with_the_others_containers() {
        let plan = plan_of(TWO);
        let bridge = |n: &str| format!("kb-{n}");
        let m1 = vteps(&plan, "m1", 1500, bridge);
        assert_eq!(m1.len(), 1);
        let (network, vtep) = &m1[0];
        assert_eq!(network, "mesh");
        assert_eq!(vtep.vni, 77);
        assert_eq!(vtep.bridge, "kb-mesh");
        assert_eq!(vtep.local, ip("192.0.2.1"));
        assert_eq!(vtep.peers, [ip("192.0.2.2")]);
        assert_eq!(vtep.mtu(), 1450);
        let remotes: Vec<(IpAddr, IpAddr)> =
            vtep.remotes.iter().map(|r| (r.address, r.host)).collect();
        assert_eq!(
            remotes,
            [
                (ip("10.77.0.2"), ip("192.0.2.2")),
                (ip("10.77.0.4"), ip("192.0.2.2"))
            ]
        );
        let m2 = vteps(&plan, "m2", 1500, bridge);
        assert_eq!(m2[0].1.remotes.len(), 1);
        assert!(vteps(&plan, "m3", 1500, bridge).is_empty());
    }

    #[test]
    fn dynamic_ranges_are_disjoint_halves_of_the_upper_half() {
        let subnet: IpNetwork = "10.77.0.0/16".parse().unwrap();
        assert_eq!(
            dynamic_range(subnet, 2, 0),
            Some((ip("10.77.128.0"), ip("10.77.191.254")))
        );
        assert_eq!(
            dynamic_range(subnet, 2, 1),
            Some((ip("10.77.191.255"), ip("10.77.255.253")))
        );
        assert_eq!(dynamic_range(subnet, 2, 2), None);
        let tiny: IpNetwork = "10.0.0.0/31".parse().unwrap();
        assert_eq!(dynamic_range(tiny, 3, 0), None);
    }
}
