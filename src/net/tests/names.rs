use crate::net::names::{
    IFNAME_MAX, attach_port_names, bridge_name, host_veth_name, link_port_name, peer_veth_name,
    validate_ifname,
};

#[test]
fn short_network_names_keep_their_name() {
    assert_eq!(bridge_name("web").unwrap(), "kb-web");
    assert_eq!(bridge_name("abcdefghijkl").unwrap(), "kb-abcdefghijkl");
}

#[test]
fn long_network_names_are_shortened_deterministically() {
    let long = "backend-internal";
    let name = bridge_name(long).unwrap();
    assert_eq!(name.len(), IFNAME_MAX);
    assert!(name.starts_with("kb.backe."), "{name}");
    assert_eq!(bridge_name(long).unwrap(), name);
    // Same prefix, different names: different bridges.
    assert_ne!(bridge_name("backend-public").unwrap(), name);
}

#[test]
fn each_project_network_gets_a_bridge_of_its_own() {
    let shop = bridge_name("shop/front").unwrap();
    let blog = bridge_name("blog/front").unwrap();
    assert!(shop.starts_with("kb.front."), "{shop}");
    assert!(shop.len() <= IFNAME_MAX);
    validate_ifname(&shop).unwrap();
    assert_ne!(shop, blog);
    assert_ne!(shop, bridge_name("front").unwrap());
    assert_eq!(shop, bridge_name("shop/front").unwrap());
}

#[test]
fn a_shortened_name_never_equals_a_plain_one() {
    // 12 bytes fit as `kb-...`; the shortened form has a `.` third.
    let plain = bridge_name("abcde.123456").unwrap();
    let shortened = bridge_name("abcde.1234567").unwrap();
    assert_eq!(&plain[..3], "kb-");
    assert_eq!(&shortened[..3], "kb.");
    assert_ne!(plain, shortened);
}

#[test]
fn veth_names_fit_and_differ_per_container_and_interface() {
    let id = "a".repeat(64);
    let host0 = host_veth_name(&id, 0).unwrap();
    let host999 = host_veth_name(&id, 999).unwrap();
    assert!(host0.starts_with("kv") && host0.ends_with("-0"), "{host0}");
    assert_eq!(host999.len(), IFNAME_MAX);
    assert_ne!(host0, host_veth_name(&"b".repeat(64), 0).unwrap());
    assert_ne!(host0, peer_veth_name(&id, 0).unwrap());
    assert_eq!(host0, host_veth_name(&id, 0).unwrap());
    assert!(host_veth_name(&id, 1000).is_err());
}

#[test]
fn the_kernel_rules_for_names_are_checked() {
    for good in ["eth0", "kb-web", "a", "x.100", "fifteen-chars-x"] {
        validate_ifname(good).unwrap();
    }
    for bad in [
        "",
        ".",
        "..",
        "a/b",
        "a:b",
        "a b",
        "sixteen-chars-xx",
        "tab\t",
    ] {
        let err = validate_ifname(bad).unwrap_err();
        assert!(err.to_string().contains("invalid interface name"), "{err}");
    }
}

#[test]
fn engine_ports_are_named_ke_and_fit() {
    let a = link_port_name("link p r1:eth1 r2:eth1", 'a').unwrap();
    let b = link_port_name("link p r1:eth1 r2:eth1", 'b').unwrap();
    assert!(a.starts_with("kel") && a.ends_with("-a"), "{a}");
    assert_eq!(a[..a.len() - 1], b[..b.len() - 1]);
    assert_ne!(a, link_port_name("link q r1:eth1 r2:eth1", 'a').unwrap());
    let (container, bridge) = attach_port_names(&"f".repeat(64), 999).unwrap();
    assert!(container.starts_with("kec") && bridge.starts_with("keb"));
    assert_eq!(container.len(), IFNAME_MAX);
    assert!(attach_port_names("x", 1000).is_err());
}
