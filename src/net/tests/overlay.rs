//! Real VTEPs between two namespaces that play two machines: each "machine" namespace holds
//! its underlay address (a veth pair joins them), each has a kiln namespace of its own with
//! the overlay's bridge, and containers hang off the bridges. Root only, like `kernel`.

use std::io::ErrorKind;
use std::net::IpAddr;
use std::time::Duration;

use ipnetwork::IpNetwork;

use super::kernel::{assert_released, connect_from, listen_in, machine_links, read_greeting};
use crate::net::attach::mac_for;
use crate::net::overlay::{self, Remote, Vtep};
use crate::net::{NetNs, Netlink};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn net(text: &str) -> IpNetwork {
    text.parse().unwrap()
}

/// `container` on `bridge` of `kiln` as `eth0`, with `address`/16, its MAC from its address
/// and the overlay's MTU.
fn attach(
    kiln: &Netlink,
    bridge: &str,
    container: &NetNs,
    host_end: &str,
    address: &str,
    mtu: u32,
) {
    let mac = mac_for(ip(address));
    kiln.create_veth_into_with_mac(host_end, "eth0", container, Some(mac))
        .unwrap();
    kiln.set_mtu(host_end, mtu).unwrap();
    kiln.set_master(host_end, bridge).unwrap();
    kiln.set_up(host_end).unwrap();
    let inside = Netlink::open_in(container).unwrap();
    inside.set_up("lo").unwrap();
    inside.set_mtu("eth0", mtu).unwrap();
    inside
        .add_address("eth0", net(&format!("{address}/16")))
        .unwrap();
    inside.set_up("eth0").unwrap();
}

#[test]
fn containers_on_two_machines_talk_over_vxlan_and_vnis_are_isolated() {
    if !crate::test_support::is_root() {
        return;
    }
    let machine_before = machine_links();
    let new = || NetNs::create_unpinned().unwrap();
    let (m1, m2, k1, k2, c1, c2, c3) = (new(), new(), new(), new(), new(), new(), new());
    let inodes: Vec<u64> = [&m1, &m2, &k1, &k2, &c1, &c2, &c3]
        .iter()
        .map(|n| n.inode())
        .collect();

    // The underlay: two machines on one segment.
    let (u1, u2) = (
        Netlink::open_in(&m1).unwrap(),
        Netlink::open_in(&m2).unwrap(),
    );
    u1.create_veth_into("ul0", "ul0", &m2).unwrap();
    for (u, address) in [(&u1, "192.0.2.1/24"), (&u2, "192.0.2.2/24")] {
        u.set_up("lo").unwrap();
        u.add_address("ul0", net(address)).unwrap();
        u.set_up("ul0").unwrap();
    }
    let underlay_mtu = u1.link("ul0").unwrap().unwrap().mtu;

    // Overlay "mesh" (VNI 77) on both hosts; "other" (VNI 78) on m2 only.
    let (n1, n2) = (
        Netlink::open_in(&k1).unwrap(),
        Netlink::open_in(&k2).unwrap(),
    );
    for (n, bridge) in [(&n1, "ko-mesh"), (&n2, "ko-mesh"), (&n2, "ko-other")] {
        n.create_bridge(bridge).unwrap();
        n.set_up(bridge).unwrap();
    }
    let mesh1 = Vtep {
        vni: 77,
        bridge: "ko-mesh".into(),
        local: ip("192.0.2.1"),
        peers: vec![ip("192.0.2.2")],
        remotes: vec![Remote {
            address: ip("10.77.1.2"),
            host: ip("192.0.2.2"),
        }],
        underlay_mtu,
    };
    let mesh2 = Vtep {
        local: ip("192.0.2.2"),
        peers: vec![ip("192.0.2.1")],
        remotes: vec![Remote {
            address: ip("10.77.0.2"),
            host: ip("192.0.2.1"),
        }],
        ..mesh1.clone()
    };
    let other2 = Vtep {
        vni: 78,
        bridge: "ko-other".into(),
        remotes: Vec::new(),
        ..mesh2.clone()
    };
    overlay::bring_up(&m1, &k1, &mesh1).unwrap();
    overlay::bring_up(&m2, &k2, &mesh2).unwrap();
    overlay::bring_up(&m2, &k2, &other2).unwrap();
    let mtu = mesh1.mtu();
    assert_eq!(mtu, underlay_mtu - 50);
    attach(&n1, "ko-mesh", &c1, "kv1", "10.77.0.2", mtu);
    attach(&n2, "ko-mesh", &c2, "kv2", "10.77.1.2", mtu);
    // Same subnet, other VNI: only the VNI keeps it apart.
    attach(&n2, "ko-other", &c3, "kv3", "10.77.1.3", mtu);

    // Nothing but the underlay link in the machines' namespaces: the devices moved to kiln's.
    let names = |n: &Netlink| {
        let mut names: Vec<String> = n.links().unwrap().into_iter().map(|l| l.name).collect();
        names.sort();
        names
    };
    assert_eq!(names(&u1), ["lo", "ul0"]);
    assert_eq!(names(&u2), ["lo", "ul0"]);
    let state = overlay::inspect(&k1, 77).unwrap().expect("a VTEP");
    assert_eq!(state.device, "kx00004d");
    assert_eq!(state.mtu, mtu);
    assert!(state.up);
    assert_eq!(state.peers, [ip("192.0.2.2")]);
    assert!(
        state
            .remotes
            .contains(&(mac_for(ip("10.77.1.2")), ip("192.0.2.2"))),
        "{:?}",
        state.remotes
    );

    // c1 on m1 reaches c2 on m2 through the VTEPs: their counters move, and so do the
    // underlay's (the packets crossed it encapsulated).
    let underlay_before = u1.link("ul0").unwrap().unwrap().stats;
    let (to_c2, listener) = listen_in(&c2, "10.77.1.2:0");
    let stream = connect_from(&c1, to_c2, Duration::from_secs(5)).expect("c1 reaches c2");
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();
    let after = overlay::inspect(&k1, 77).unwrap().unwrap().stats;
    assert!(
        after.tx_packets > state.stats.tx_packets && after.rx_packets > state.stats.rx_packets,
        "{after:?}"
    );
    let underlay_after = u1.link("ul0").unwrap().unwrap().stats;
    assert!(underlay_after.tx_packets > underlay_before.tx_packets);
    // ARP for c2 was answered from the neighbour entry: c1 has c2's MAC from its address.
    let neighbours = crate::net::command_in(&c1, "ip")
        .args(["neigh", "show", "10.77.1.2"])
        .output()
        .unwrap();
    let neighbours = String::from_utf8_lossy(&neighbours.stdout).to_string();
    assert!(neighbours.contains("02:42:0a:4d:01:02"), "{neighbours}");

    // c3, on VNI 78, is not reachable from VNI 77 though it shares the subnet.
    let (to_c3, listener) = listen_in(&c3, "10.77.1.3:0");
    let err = connect_from(&c1, to_c3, Duration::from_millis(500)).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::TimedOut | ErrorKind::HostUnreachable),
        "{err}"
    );
    // (c3 itself connects, so the listener's thread ends and lets go of c3.)
    let stream = connect_from(&c3, to_c3, Duration::from_secs(5)).expect("c3 reaches itself");
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();

    overlay::remove(&k1, 77).unwrap();
    overlay::remove(&k1, 77).unwrap(); // idempotent
    assert!(overlay::inspect(&k1, 77).unwrap().is_none());

    drop((u1, u2, n1, n2));
    drop((m1, m2, k1, k2, c1, c2, c3));
    for inode in inodes {
        assert_released(inode);
    }
    assert_eq!(
        machine_links(),
        machine_before,
        "the machine's own namespace changed"
    );
}

#[test]
fn simulated_machines_on_one_wire_reach_each_other_across_sites_and_go_with_the_wire() {
    use crate::net::overlay::underlay::{HOST_INTERFACE, SimHost, Underlay};
    if !crate::test_support::is_root() {
        return;
    }
    let machine_before = machine_links();
    let dir = tempfile::tempdir().unwrap();
    let wire = Underlay::new(&dir.path().join("underlay"));
    // Three "sites": no two hosts share a subnet, the wire carries them all.
    let hosts: Vec<SimHost> = [
        ("m1", "192.0.2.1"),
        ("m2", "198.51.100.1"),
        ("m3", "203.0.113.1"),
    ]
    .into_iter()
    .map(|(name, address)| SimHost {
        name: name.into(),
        address: ip(address),
    })
    .collect();
    wire.ensure(&hosts).unwrap();
    wire.ensure(&hosts).unwrap(); // idempotent
    let (m1, m3) = (wire.host("m1").unwrap(), wire.host("m3").unwrap());
    let inodes = [m1.inode(), m3.inode(), wire.segment().unwrap().inode()];
    let inside = Netlink::open_in(&m1).unwrap();
    assert!(
        inside
            .addresses(HOST_INTERFACE)
            .unwrap()
            .contains(&net("192.0.2.1/32"))
    );
    let (to_m1, listener) = listen_in(&m1, "192.0.2.1:0");
    let stream = connect_from(&m3, to_m1, Duration::from_secs(5)).expect("m3 reaches m1");
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();

    drop(inside);
    drop((m1, m3));
    wire.remove().unwrap();
    wire.remove().unwrap(); // absent is fine
    assert!(!dir.path().join("underlay").exists());
    for inode in inodes {
        assert_released(inode);
    }
    assert_eq!(machine_links(), machine_before);
}
