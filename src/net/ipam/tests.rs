use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use proptest::prelude::*;

use super::*;

fn net(text: &str) -> IpNetwork {
    text.parse().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn none() -> BTreeSet<IpAddr> {
    BTreeSet::new()
}

#[test]
fn gateway_is_the_first_host_address() {
    assert_eq!(gateway(net("10.89.0.0/24")).unwrap(), ip("10.89.0.1"));
    // Host bits in the subnet do not move the gateway.
    assert_eq!(gateway(net("10.89.0.77/24")).unwrap(), ip("10.89.0.1"));
    assert_eq!(gateway(net("10.99.0.0/30")).unwrap(), ip("10.99.0.1"));
    assert_eq!(gateway(net("10.99.0.0/31")).unwrap(), ip("10.99.0.0"));
    assert_eq!(gateway(net("fd00:1::/64")).unwrap(), ip("fd00:1::1"));
    assert_eq!(gateway(net("fd00:1::/127")).unwrap(), ip("fd00:1::"));
    for tiny in ["10.0.0.1/32", "fd00::1/128"] {
        assert!(matches!(
            gateway(net(tiny)),
            Err(IpamError::SubnetTooSmall { .. })
        ));
    }
}

#[test]
fn a_slash_30_has_exactly_one_container_address() {
    let subnet = net("10.99.0.0/30");
    let gw = gateway(subnet).unwrap();
    let only = allocate(subnet, gw, &none(), &none(), "p/r1/link").unwrap();
    assert_eq!(only, ip("10.99.0.2"));
    let taken = BTreeSet::from([only]);
    assert_eq!(
        allocate(subnet, gw, &taken, &none(), "p/r2/link"),
        Err(IpamError::Exhausted { subnet })
    );
}

#[test]
fn a_slash_31_uses_both_addresses() {
    let subnet = net("10.99.0.4/31");
    let gw = gateway(subnet).unwrap();
    assert_eq!(gw, ip("10.99.0.4"));
    let other = allocate(subnet, gw, &none(), &none(), "k").unwrap();
    assert_eq!(other, ip("10.99.0.5"));
    assert!(check_fixed(subnet, gw, ip("10.99.0.5")).is_ok());
}

#[test]
fn ipv6_allocates_inside_the_subnet_and_skips_the_anycast_address() {
    let subnet = net("fd00:89::/64");
    let gw = gateway(subnet).unwrap();
    let address = allocate(subnet, gw, &none(), &none(), "p/web-1/front").unwrap();
    assert!(subnet.contains(address));
    assert_ne!(address, gw);
    assert_ne!(address, ip("fd00:89::"));
    assert_eq!(
        check_fixed(subnet, gw, ip("fd00:89::")),
        Err(IpamError::Reserved {
            address: ip("fd00:89::"),
            subnet,
            role: AddressRole::Network
        })
    );
    // The last address is an ordinary host in IPv6.
    assert!(check_fixed(subnet, gw, ip("fd00:89::ffff:ffff:ffff:ffff")).is_ok());
}

#[test]
fn the_same_key_gets_the_same_address_every_time() {
    let subnet = net("10.89.0.0/24");
    let gw = gateway(subnet).unwrap();
    let a = allocate(subnet, gw, &none(), &none(), "hello/web-1/front").unwrap();
    let b = allocate(subnet, gw, &none(), &none(), "hello/web-1/front").unwrap();
    let c = allocate(subnet, gw, &none(), &none(), "hello/web-2/front").unwrap();
    assert_eq!(a, b);
    // Different keys start at different places (true for these two; a fixed fact).
    assert_ne!(a, c);
}

#[test]
fn a_taken_start_probes_to_the_next_free_address_and_wraps() {
    let subnet = net("10.89.0.0/29"); // hosts .1 (gateway) .. .6
    let gw = gateway(subnet).unwrap();
    let first = allocate(subnet, gw, &none(), &none(), "k").unwrap();
    let taken = BTreeSet::from([first]);
    let second = allocate(subnet, gw, &taken, &none(), "k").unwrap();
    let expected = if first == ip("10.89.0.6") {
        ip("10.89.0.2") // wraps past the gateway
    } else {
        let IpAddr::V4(v4) = first else {
            unreachable!()
        };
        IpAddr::V4((u32::from(v4) + 1).into())
    };
    assert_eq!(second, expected);
}

#[test]
fn fixed_addresses_are_checked() {
    let subnet = net("10.89.0.0/24");
    let gw = gateway(subnet).unwrap();
    let role = |text: &str| match check_fixed(subnet, gw, ip(text)) {
        Err(IpamError::Reserved { role, .. }) => Some(role),
        _ => None,
    };
    assert_eq!(role("10.89.0.0"), Some(AddressRole::Network));
    assert_eq!(role("10.89.0.255"), Some(AddressRole::Broadcast));
    assert_eq!(role("10.89.0.1"), Some(AddressRole::Gateway));
    assert!(check_fixed(subnet, gw, ip("10.89.0.10")).is_ok());
    for outside in ["10.89.1.10", "fd00::10"] {
        assert!(matches!(
            check_fixed(subnet, gw, ip(outside)),
            Err(IpamError::OutsideSubnet { .. })
        ));
    }
}

#[test]
fn overlapping_subnets() {
    assert!(overlaps(net("10.89.0.0/24"), net("10.89.0.128/25")));
    assert!(overlaps(net("10.0.0.0/8"), net("10.89.1.0/24")));
    assert!(!overlaps(net("10.89.0.0/24"), net("10.89.1.0/24")));
    assert!(!overlaps(net("10.89.0.0/24"), net("fd00::/8")));
    assert!(overlaps(net("fd00::/8"), net("fd00:1::/64")));
}

fn attachment(key: &str, network: &str, fixed: Option<&str>) -> Attachment {
    Attachment {
        key: key.to_string(),
        network: network.to_string(),
        fixed: fixed.map(ip),
    }
}

fn two_networks() -> BTreeMap<String, IpNetwork> {
    BTreeMap::from([
        ("front".to_string(), net("10.89.0.0/24")),
        ("back".to_string(), net("10.89.1.0/24")),
    ])
}

#[test]
fn plan_honours_fixed_addresses_before_allocating() {
    let networks = two_networks();
    // Find the address "p/a/front" would get, then pin it on someone sorting after "p/a".
    let wanted = allocate(
        networks["front"],
        ip("10.89.0.1"),
        &none(),
        &none(),
        "p/a/front",
    )
    .unwrap();
    let attachments = vec![
        attachment("p/a/front", "front", None),
        attachment("p/z/front", "front", Some(&wanted.to_string())),
        attachment("p/z/back", "back", Some("10.89.1.10")),
    ];
    let plan = plan_addresses(&networks, &attachments).unwrap();
    assert_eq!(plan["p/z/front"], wanted);
    assert_ne!(plan["p/a/front"], wanted);
    assert_eq!(plan["p/z/back"], ip("10.89.1.10"));
    assert!(networks["front"].contains(plan["p/a/front"]));
}

#[test]
fn plan_rejects_bad_fixed_addresses() {
    let networks = two_networks();
    let plan = |attachments: &[Attachment]| plan_addresses(&networks, attachments);
    assert_eq!(
        plan(&[
            attachment("p/a/front", "front", Some("10.89.0.10")),
            attachment("p/b/front", "front", Some("10.89.0.10")),
        ]),
        Err(IpamError::Duplicate {
            address: ip("10.89.0.10"),
            first: "p/a/front".to_string(),
            second: "p/b/front".to_string(),
        })
    );
    // The same address on two different networks is two different addresses.
    assert!(
        plan(&[
            attachment("p/a/front", "front", Some("10.89.0.10")),
            attachment("p/b/back", "back", Some("10.89.1.10")),
        ])
        .is_ok()
    );
    assert!(matches!(
        plan(&[attachment("p/a/front", "front", Some("10.89.1.10"))]),
        Err(IpamError::OutsideSubnet { .. })
    ));
    assert!(matches!(
        plan(&[attachment("p/a/front", "front", Some("10.89.0.1"))]),
        Err(IpamError::Reserved {
            role: AddressRole::Gateway,
            ..
        })
    ));
    assert_eq!(
        plan(&[attachment("p/a/side", "side", None)]),
        Err(IpamError::UnknownNetwork {
            key: "p/a/side".to_string(),
            network: "side".to_string()
        })
    );
    assert_eq!(
        plan(&[
            attachment("p/a/front", "front", None),
            attachment("p/a/front", "front", None)
        ]),
        Err(IpamError::DuplicateKey {
            key: "p/a/front".to_string()
        })
    );
}

#[test]
fn plan_of_a_full_slash_29_then_one_more_is_exhausted() {
    let networks = BTreeMap::from([("n".to_string(), net("10.1.0.0/29"))]);
    let mut attachments: Vec<Attachment> = (0..5)
        .map(|i| attachment(&format!("p/c{i}/n"), "n", None))
        .collect();
    let plan = plan_addresses(&networks, &attachments).unwrap();
    let addresses: BTreeSet<IpAddr> = plan.values().copied().collect();
    assert_eq!(addresses.len(), 5);
    attachments.push(attachment("p/c5/n", "n", None));
    assert!(matches!(
        plan_addresses(&networks, &attachments),
        Err(IpamError::Exhausted { .. })
    ));
}

/// A subnet from 10.0.0.0/8 with a prefix between /24 and /31.
fn small_subnet() -> impl Strategy<Value = IpNetwork> {
    (0u32..1 << 16, 24u8..=31).prop_map(|(base, prefix)| {
        let address = std::net::Ipv4Addr::from(0x0a00_0000 | (base << 8));
        IpNetwork::new(IpAddr::V4(address), prefix).unwrap()
    })
}

fn hosts_of(subnet: IpNetwork) -> Vec<IpAddr> {
    let hosts = Hosts::of(subnet).unwrap();
    (hosts.first..=hosts.last).map(|v| hosts.addr(v)).collect()
}

proptest! {
    #[test]
    fn plan_does_not_depend_on_arrival_order(
        subnet in small_subnet(),
        names in proptest::collection::btree_set("[a-z]{1,6}", 1..8),
        fixed_picks in proptest::collection::vec(any::<bool>(), 8),
        seed in any::<u64>(),
    ) {
        let networks = BTreeMap::from([("n".to_string(), subnet)]);
        let free_hosts: Vec<IpAddr> = hosts_of(subnet).into_iter().skip(1).collect();
        let mut attachments: Vec<Attachment> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Attachment {
                key: format!("p/{name}/n"),
                network: "n".to_string(),
                // Fixed addresses from the far end of the range, distinct by construction.
                fixed: (fixed_picks[i] && i < free_hosts.len())
                    .then(|| free_hosts[free_hosts.len() - 1 - i]),
            })
            .collect();
        let forward = plan_addresses(&networks, &attachments);
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..attachments.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            attachments.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let shuffled = plan_addresses(&networks, &attachments);
        prop_assert_eq!(&forward, &shuffled);
        if let Ok(plan) = forward {
            let distinct: BTreeSet<&IpAddr> = plan.values().collect();
            prop_assert_eq!(distinct.len(), plan.len());
        }
    }

    #[test]
    fn allocation_avoids_everything_reserved_and_is_exhausted_exactly_when_full(
        subnet in small_subnet(),
        taken_mask in any::<u64>(),
        fixed_mask in any::<u64>(),
        key in "[a-z0-9/-]{1,20}",
    ) {
        let gw = match gateway(subnet) {
            Ok(gw) => gw,
            Err(_) => return Ok(()),
        };
        let hosts = hosts_of(subnet);
        let pick = |mask: u64| -> BTreeSet<IpAddr> {
            hosts.iter().enumerate().filter(|(i, _)| mask >> (i % 64) & 1 == 1)
                .map(|(_, a)| *a).collect()
        };
        let taken = pick(taken_mask);
        let fixed = pick(fixed_mask & !taken_mask);
        let free = hosts.iter().filter(|a| **a != gw && !taken.contains(a) && !fixed.contains(a)).count();
        match allocate(subnet, gw, &taken, &fixed, &key) {
            Ok(address) => {
                prop_assert!(free > 0);
                prop_assert!(subnet.contains(address));
                prop_assert!(hosts.contains(&address));
                prop_assert!(address != gw);
                prop_assert!(!taken.contains(&address));
                prop_assert!(!fixed.contains(&address));
                prop_assert!(check_fixed(subnet, gw, address).is_ok());
            }
            Err(err) => {
                prop_assert_eq!(free, 0);
                prop_assert_eq!(err, IpamError::Exhausted { subnet });
            }
        }
    }

    #[test]
    fn a_free_address_stays_with_its_key_whatever_else_is_taken(
        subnet in small_subnet(),
        taken_mask in any::<u64>(),
        key in "[a-z0-9/-]{1,20}",
    ) {
        let Ok(gw) = gateway(subnet) else { return Ok(()) };
        let own = allocate(subnet, gw, &BTreeSet::new(), &BTreeSet::new(), &key).unwrap();
        let taken: BTreeSet<IpAddr> = hosts_of(subnet).into_iter().enumerate()
            .filter(|(i, a)| taken_mask >> (i % 64) & 1 == 1 && *a != own)
            .map(|(_, a)| a).collect();
        prop_assert_eq!(allocate(subnet, gw, &taken, &BTreeSet::new(), &key), Ok(own));
    }
}

/// The addresses book/src/inside/dns-ports.md shows for its example; keep them in step.
#[test]
fn the_books_example_plan() {
    let networks = two_networks();
    let attachments = [
        attachment("hello-web/web/front", "front", Some("10.89.0.10")),
        attachment("hello-web/web/back", "back", None),
        attachment("hello-web/client-1/front", "front", None),
        attachment("hello-web/client-2/front", "front", None),
    ];
    let plan = plan_addresses(&networks, &attachments).unwrap();
    let shown = [
        ("hello-web/client-1/front", "10.89.0.139"),
        ("hello-web/client-2/front", "10.89.0.11"),
        ("hello-web/web/back", "10.89.1.36"),
        ("hello-web/web/front", "10.89.0.10"),
    ];
    let expected: BTreeMap<String, IpAddr> =
        shown.iter().map(|(k, a)| (k.to_string(), ip(a))).collect();
    assert_eq!(plan, expected);
}
