//! Anti-spoofing on kiln's networks: a container may send frames only from its own MAC
//! address and its own IP address. Everything else it sends is dropped at its bridge port
//! (the host end of its veth, in kiln's namespace), before the bridge learns from it or
//! forwards it, and counted.
//!
//! The rules are an nf_tables chain per port on the port's `ingress` hook (family
//! `netdev`, table `kiln`), named after the port: made with the attachment
//! ([`protect`]), removed with it ([`unprotect`]), read back for `kiln network inspect`
//! ([`dropped`]). For a port whose address is IPv4:
//!
//! - the Ethernet source must be the port's MAC (no stealing a neighbour's MAC, which would
//!   make the bridge send it the neighbour's traffic);
//! - only IPv4 and ARP frames pass (as libvirt's `clean-traffic` filter does: no other
//!   protocol, no VLAN tag to hide behind);
//! - ARP must be Ethernet/IPv4 with the port's MAC and address as sender (no answering for
//!   the gateway or a neighbour: ARP poisoning);
//! - IPv4 packets must come from the port's address (no forged sources).
//!
//! A port with an IPv6 address gets the same for IPv6: its source is its address, its
//! link-local address or `::` (duplicate address detection), router advertisements and
//! redirects are dropped (a rogue router, CVE-2020-13401 on Docker), and neighbour
//! advertisements may only be for its own addresses. IPv6 on an IPv4 network, and IPv4 on
//! an IPv6 network, do not pass at all: kiln gives the interface no such address.
//!
//! Links (point-to-point veths between containers' named interfaces) are not filtered:
//! they are wires between routers, which forward others' packets by design.
//!
//! Kernel-facing: it takes addresses and interface names, never the language's types.

use std::io;
use std::net::{IpAddr, Ipv6Addr};

use super::NetError;
use super::nft::{Base, CmpOp, Counted, Expr, Family, MetaKey, Nft, Op, Rule};

/// The table, in kiln's namespace, that holds every port's chain.
pub const TABLE: &str = "kiln";
/// Before anything else on the hook (nft's `filter` priority is 0).
const PRIORITY: i32 = -500;

const ETH_IPV4: [u8; 2] = 0x0800u16.to_be_bytes();
const ETH_ARP: [u8; 2] = 0x0806u16.to_be_bytes();
const ETH_IPV6: [u8; 2] = 0x86ddu16.to_be_bytes();
/// ARP header of Ethernet/IPv4: hardware type 1, protocol 0x0800, lengths 6 and 4.
const ARP_ETHER_IPV4: [u8; 6] = [0, 1, 8, 0, 6, 4];
const IPPROTO_ICMPV6: u8 = 58;
const ND_ROUTER_ADVERT: u8 = 134;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_REDIRECT: u8 = 137;

/// What one bridge port may send: its container's MAC and address on that network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port<'a> {
    /// The host end of the container's veth (the bridge port).
    pub host_name: &'a str,
    pub mac: [u8; 6],
    pub address: IpAddr,
}

/// Why frames were dropped at a port, and how many.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Dropped {
    /// The rule's reason: `source MAC`, `ARP sender`, `IPv4 source`…
    pub reason: String,
    pub packets: u64,
    pub bytes: u64,
}

/// Comments start with this; what follows is the reason shown by `inspect`.
const COMMENT: &str = "kiln: ";

fn ether_type() -> Expr {
    Expr::Payload {
        base: Base::Link,
        offset: 12,
        len: 2,
    }
}

fn load(base: Base, offset: u32, len: u32) -> Expr {
    Expr::Payload { base, offset, len }
}

fn cmp(op: CmpOp, data: &[u8]) -> Expr {
    Expr::Cmp {
        op,
        data: data.to_vec(),
    }
}

fn drop_rule(reason: &str, mut exprs: Vec<Expr>) -> Rule {
    exprs.push(Expr::Counter);
    exprs.push(Expr::Drop);
    Rule {
        comment: format!("{COMMENT}{reason}"),
        exprs,
    }
}

/// The link-local address the kernel gives an interface with this MAC (EUI-64, the
/// default `addr_gen_mode`): fe80::, the MAC with its universal/local bit flipped and
/// ff:fe in the middle.
pub fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8] = mac[0] ^ 0x02;
    octets[9] = mac[1];
    octets[10] = mac[2];
    octets[11] = 0xff;
    octets[12] = 0xfe;
    octets[13] = mac[3];
    octets[14] = mac[4];
    octets[15] = mac[5];
    Ipv6Addr::from(octets)
}

/// The rules of one port, in order. Each drops and counts what it names.
pub(crate) fn rules(port: &Port<'_>) -> Vec<Rule> {
    let mut rules = vec![drop_rule(
        "source MAC",
        vec![load(Base::Link, 6, 6), cmp(CmpOp::Neq, &port.mac)],
    )];
    match port.address {
        IpAddr::V4(address) => {
            let address = address.octets();
            rules.push(drop_rule(
                "not IPv4 or ARP",
                vec![
                    ether_type(),
                    cmp(CmpOp::Neq, &ETH_IPV4),
                    cmp(CmpOp::Neq, &ETH_ARP),
                ],
            ));
            rules.push(drop_rule(
                "ARP not Ethernet/IPv4",
                vec![
                    ether_type(),
                    cmp(CmpOp::Eq, &ETH_ARP),
                    load(Base::Network, 0, 6),
                    cmp(CmpOp::Neq, &ARP_ETHER_IPV4),
                ],
            ));
            rules.push(drop_rule(
                "ARP sender MAC",
                vec![
                    ether_type(),
                    cmp(CmpOp::Eq, &ETH_ARP),
                    load(Base::Network, 8, 6),
                    cmp(CmpOp::Neq, &port.mac),
                ],
            ));
            rules.push(drop_rule(
                "ARP sender address",
                vec![
                    ether_type(),
                    cmp(CmpOp::Eq, &ETH_ARP),
                    load(Base::Network, 14, 4),
                    cmp(CmpOp::Neq, &address),
                ],
            ));
            rules.push(drop_rule(
                "IPv4 source",
                vec![
                    ether_type(),
                    cmp(CmpOp::Eq, &ETH_IPV4),
                    load(Base::Network, 12, 4),
                    cmp(CmpOp::Neq, &address),
                ],
            ));
        }
        IpAddr::V6(address) => {
            let own = address.octets();
            let local = link_local(port.mac).octets();
            rules.push(drop_rule(
                "not IPv6",
                vec![ether_type(), cmp(CmpOp::Neq, &ETH_IPV6)],
            ));
            rules.push(drop_rule(
                "IPv6 source",
                vec![
                    load(Base::Network, 8, 16),
                    cmp(CmpOp::Neq, &own),
                    cmp(CmpOp::Neq, &local),
                    cmp(CmpOp::Neq, &Ipv6Addr::UNSPECIFIED.octets()),
                ],
            ));
            for (reason, kind) in [
                ("router advertisement", ND_ROUTER_ADVERT),
                ("redirect", ND_REDIRECT),
            ] {
                rules.push(drop_rule(
                    reason,
                    vec![
                        Expr::Meta {
                            key: MetaKey::L4Proto,
                        },
                        cmp(CmpOp::Eq, &[IPPROTO_ICMPV6]),
                        load(Base::Transport, 0, 1),
                        cmp(CmpOp::Eq, &[kind]),
                    ],
                ));
            }
            rules.push(drop_rule(
                "neighbour advertisement target",
                vec![
                    Expr::Meta {
                        key: MetaKey::L4Proto,
                    },
                    cmp(CmpOp::Eq, &[IPPROTO_ICMPV6]),
                    load(Base::Transport, 0, 1),
                    cmp(CmpOp::Eq, &[ND_NEIGHBOR_ADVERT]),
                    load(Base::Transport, 8, 16),
                    cmp(CmpOp::Neq, &own),
                    cmp(CmpOp::Neq, &local),
                ],
            ));
        }
    }
    rules
}

fn kernel_error(op: &'static str, name: &str, cause: io::Error) -> NetError {
    NetError::Netlink {
        op,
        name: name.to_string(),
        cause,
    }
}

/// Puts the port's rules in place, replacing any chain of that name (a restarted
/// container's port has the same name; the kernel keeps a chain whose device is gone).
/// Call it after the port exists and before it is up: no frame passes unfiltered.
pub(crate) fn protect(nft: &mut Nft, port: &Port<'_>) -> Result<(), NetError> {
    let rules = rules(port);
    let mut ops = vec![
        Op::AddTable {
            family: Family::Netdev,
            table: TABLE,
        },
        Op::AddIngressChain {
            family: Family::Netdev,
            table: TABLE,
            chain: port.host_name,
            device: port.host_name,
            priority: PRIORITY,
        },
    ];
    ops.extend(rules.iter().map(|rule| Op::AddRule {
        family: Family::Netdev,
        table: TABLE,
        chain: port.host_name,
        rule,
    }));
    let op = "add anti-spoofing rules to";
    match nft.apply(&ops) {
        Err(err) if err.raw_os_error() == Some(libc::EEXIST) => {
            unprotect(nft, port.host_name)?;
            nft.apply(&ops)
                .map_err(|cause| kernel_error(op, port.host_name, cause))
        }
        other => other.map_err(|cause| kernel_error(op, port.host_name, cause)),
    }
}

/// Removes the port's chain; a chain (or table) that is not there is fine.
pub(crate) fn unprotect(nft: &mut Nft, host_name: &str) -> Result<(), NetError> {
    match nft.apply(&[Op::DelChain {
        family: Family::Netdev,
        table: TABLE,
        chain: host_name,
    }]) {
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(()),
        other => {
            other.map_err(|cause| kernel_error("remove anti-spoofing rules of", host_name, cause))
        }
    }
}

/// How many chains one batch of [`unprotect_all`] deletes: the kernel queues an ack per
/// change before kiln reads any, and they must fit the socket's receive buffer.
const DELETE_BATCH: usize = 64;

/// Removes the chains of many ports at once: one dump to see which exist, then batches of
/// deletions (one commit each, where [`unprotect`] costs a commit per port; a commit that
/// removes a hook waits for the readers of the old ruleset, which under load is most of
/// the time a removal takes). Ports without a chain are fine.
pub(crate) fn unprotect_all(nft: &mut Nft, host_names: &[&str]) -> Result<(), NetError> {
    if host_names.is_empty() {
        return Ok(());
    }
    let op = "remove anti-spoofing rules of";
    let existing = nft
        .chains(Family::Netdev, TABLE)
        .map_err(|cause| kernel_error(op, host_names[0], cause))?;
    let existing: std::collections::HashSet<&str> = existing.iter().map(String::as_str).collect();
    let present: Vec<&str> = host_names
        .iter()
        .copied()
        .filter(|name| existing.contains(name))
        .collect();
    for batch in present.chunks(DELETE_BATCH) {
        let ops: Vec<Op<'_>> = batch
            .iter()
            .map(|chain| Op::DelChain {
                family: Family::Netdev,
                table: TABLE,
                chain,
            })
            .collect();
        if nft.apply(&ops).is_err() {
            // One went meanwhile (another kiln removing the same port): one at a time.
            for name in batch {
                unprotect(nft, name)?;
            }
        }
    }
    Ok(())
}

/// What the port's rules dropped, rule by rule; `None` when the port has no rules.
pub(crate) fn dropped(nft: &mut Nft, host_name: &str) -> Result<Option<Vec<Dropped>>, NetError> {
    match nft.counters(Family::Netdev, TABLE, host_name) {
        Ok(counted) => Ok(Some(
            counted
                .into_iter()
                .filter_map(
                    |Counted {
                         comment,
                         packets,
                         bytes,
                     }| {
                        Some(Dropped {
                            reason: comment.strip_prefix(COMMENT)?.to_string(),
                            packets,
                            bytes,
                        })
                    },
                )
                .collect(),
        )),
        Err(err) if err.raw_os_error() == Some(libc::ENOENT) => Ok(None),
        Err(cause) => Err(kernel_error(
            "read anti-spoofing counters of",
            host_name,
            cause,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x02, 0x42, 10, 89, 0, 10];

    fn reasons(rules: &[Rule]) -> Vec<&str> {
        rules
            .iter()
            .map(|r| r.comment.strip_prefix(COMMENT).unwrap())
            .collect()
    }

    #[test]
    fn an_ipv4_port_may_send_only_its_mac_its_address_and_ipv4_or_arp() {
        let port = Port {
            host_name: "kv0",
            mac: MAC,
            address: "10.89.0.10".parse().unwrap(),
        };
        let rules = rules(&port);
        assert_eq!(
            reasons(&rules),
            [
                "source MAC",
                "not IPv4 or ARP",
                "ARP not Ethernet/IPv4",
                "ARP sender MAC",
                "ARP sender address",
                "IPv4 source"
            ]
        );
        // Every rule counts, then drops.
        for rule in &rules {
            assert_eq!(
                rule.exprs[rule.exprs.len() - 2..],
                [Expr::Counter, Expr::Drop]
            );
        }
        assert_eq!(
            rules[0].exprs[..2],
            [load(Base::Link, 6, 6), cmp(CmpOp::Neq, &MAC)]
        );
        assert_eq!(
            rules[4].exprs[2..4],
            [
                load(Base::Network, 14, 4),
                cmp(CmpOp::Neq, &[10, 89, 0, 10])
            ]
        );
        assert_eq!(
            rules[5].exprs[2..4],
            [
                load(Base::Network, 12, 4),
                cmp(CmpOp::Neq, &[10, 89, 0, 10])
            ]
        );
    }

    #[test]
    fn an_ipv6_port_drops_rogue_routers_and_others_neighbour_advertisements() {
        let port = Port {
            host_name: "kv0",
            mac: MAC,
            address: "fd00:89::10".parse().unwrap(),
        };
        let rules = rules(&port);
        assert_eq!(
            reasons(&rules),
            [
                "source MAC",
                "not IPv6",
                "IPv6 source",
                "router advertisement",
                "redirect",
                "neighbour advertisement target"
            ]
        );
        let local: Ipv6Addr = "fe80::42:aff:fe59:a".parse().unwrap();
        assert_eq!(link_local(MAC), local);
        assert!(rules[2].exprs.contains(&cmp(CmpOp::Neq, &local.octets())));
    }
}
