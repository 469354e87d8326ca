use std::collections::BTreeSet;
use std::net::IpAddr;

use super::*;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn network(name: &str, subnet: &str) -> NetworkRecord {
    NetworkRecord::new(
        name,
        subnet.parse().unwrap(),
        false,
        format!("kb-{name}"),
        crate::scope::split(name).0.map(str::to_string),
    )
    .unwrap()
}

fn request(id: &str, name: &str) -> MemberRequest {
    MemberRequest {
        container_id: id.to_string(),
        container_name: name.to_string(),
        interface: "eth0".to_string(),
        ..MemberRequest::default()
    }
}

fn open() -> (tempfile::TempDir, NetworkRecords) {
    let dir = tempfile::tempdir().unwrap();
    let records = NetworkRecords::open(dir.path()).unwrap();
    (dir, records)
}

#[test]
fn create_list_load_remove() {
    let (dir, records) = open();
    let front = network("front", "10.89.0.0/24");
    records.create(&front).unwrap();
    records.create(&network("back", "10.89.1.0/24")).unwrap();
    assert!(dir.path().join("net/networks/front.json").is_file());
    assert!(dir.path().join("net/lock").is_file());

    let names: Vec<String> = records
        .list()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["back", "front"]);
    let loaded = records.load("front").unwrap();
    assert_eq!(loaded, front);
    assert_eq!(loaded.gateway, ip("10.89.0.1"));
    assert_eq!(loaded.bridge, "kb-front");

    assert_eq!(records.remove("front").unwrap(), front);
    assert!(records.find("front").unwrap().is_none());
    assert!(matches!(
        records.load("front"),
        Err(NetRecordError::NotFound { .. })
    ));
    assert!(matches!(
        records.remove("front"),
        Err(NetRecordError::NotFound { .. })
    ));
}

#[test]
fn stray_temporary_files_are_not_networks() {
    let (dir, records) = open();
    records.create(&network("front", "10.89.0.0/24")).unwrap();
    std::fs::write(dir.path().join("net/networks/.replace-1-2.tmp"), b"{").unwrap();
    assert_eq!(records.list().unwrap().len(), 1);
}

#[test]
fn duplicate_names_and_overlapping_subnets_are_refused() {
    let (_dir, records) = open();
    records.create(&network("front", "10.89.0.0/24")).unwrap();
    assert!(matches!(
        records.create(&network("front", "10.90.0.0/24")),
        Err(NetRecordError::Exists { .. })
    ));
    let err = records
        .create(&network("wide", "10.89.0.0/16"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "subnet 10.89.0.0/16 of network `wide` overlaps 10.89.0.0/24 of network `front`"
    );
    assert!(records.find("wide").unwrap().is_none());
}

#[test]
fn invalid_names_never_become_paths() {
    for bad in ["", "../x", "a/b", ".hidden", "with space"] {
        assert!(matches!(
            NetworkRecord::new(bad, "10.1.0.0/24".parse().unwrap(), false, "b".into(), None),
            Err(NetRecordError::InvalidName { .. })
        ));
    }
    let (_dir, records) = open();
    assert!(records.find("../../etc/passwd").unwrap().is_none());
}

#[test]
fn members_get_deterministic_addresses_and_leave() {
    let (_dir, records) = open();
    records.create(&network("front", "10.89.0.0/24")).unwrap();
    let web = records
        .add_member("front", request("id-web", "web"))
        .unwrap();
    let record = records.load("front").unwrap();
    let expected = ipam::allocate(
        record.subnet,
        record.gateway,
        &BTreeSet::new(),
        &BTreeSet::new(),
        "/web/front",
    )
    .unwrap();
    assert_eq!(web.address, expected);
    assert_eq!(record.members, vec![web.clone()]);

    // Adding again is idempotent.
    assert_eq!(
        records
            .add_member("front", request("id-web", "web"))
            .unwrap(),
        web
    );
    let client = records
        .add_member("front", request("id-c1", "client-1"))
        .unwrap();
    assert_ne!(client.address, web.address);
    let names: Vec<String> = records
        .load("front")
        .unwrap()
        .members
        .into_iter()
        .map(|m| m.container_name)
        .collect();
    assert_eq!(names, ["client-1", "web"]);

    // A network with members cannot go.
    let err = records.remove("front").unwrap_err();
    assert!(matches!(err, NetRecordError::InUse { .. }));
    assert!(err.to_string().contains("client-1, web"));

    assert_eq!(
        records.remove_member("front", "id-web").unwrap(),
        Some(web.clone())
    );
    assert_eq!(records.remove_member("front", "id-web").unwrap(), None);
    // Leaving and coming back gives the same address.
    assert_eq!(
        records
            .add_member("front", request("id-web2", "web"))
            .unwrap()
            .address,
        web.address
    );
}

#[test]
fn fixed_and_reserved_addresses() {
    let (_dir, records) = open();
    records.create(&network("front", "10.89.0.0/24")).unwrap();
    let fixed = MemberRequest {
        address: Some(ip("10.89.0.10")),
        ..request("id-web", "web")
    };
    assert_eq!(
        records.add_member("front", fixed).unwrap().address,
        ip("10.89.0.10")
    );
    let again = MemberRequest {
        address: Some(ip("10.89.0.10")),
        ..request("id-other", "other")
    };
    assert_eq!(
        records.add_member("front", again).unwrap_err().to_string(),
        "10.89.0.10 on network `front` is already used by `web`"
    );
    let gateway = MemberRequest {
        address: Some(ip("10.89.0.1")),
        ..request("id-other", "other")
    };
    assert!(matches!(
        records.add_member("front", gateway),
        Err(NetRecordError::Ipam(IpamError::Reserved { .. }))
    ));

    // The address `client` would get, reserved by someone else's ip=, is skipped.
    let natural = records
        .add_member("front", request("id-c", "client"))
        .unwrap()
        .address;
    records.remove_member("front", "id-c").unwrap();
    let reserving = MemberRequest {
        reserved: BTreeSet::from([natural]),
        ..request("id-c", "client")
    };
    let moved = records.add_member("front", reserving).unwrap().address;
    assert_ne!(moved, natural);
}

#[test]
fn a_full_network_says_so() {
    let (_dir, records) = open();
    records.create(&network("tiny", "10.99.0.0/30")).unwrap();
    records.add_member("tiny", request("a", "a")).unwrap();
    let err = records.add_member("tiny", request("b", "b")).unwrap_err();
    assert!(matches!(
        err,
        NetRecordError::Ipam(IpamError::Exhausted { .. })
    ));
    assert_eq!(err.to_string(), "no free address left in 10.99.0.0/30");
}

#[test]
fn concurrent_members_never_share_an_address() {
    let (dir, records) = open();
    records.create(&network("front", "10.89.0.0/28")).unwrap();
    let root = dir.path().to_path_buf();
    // Each thread opens its own records (its own lock file descriptor), like separate
    // kiln processes would.
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let root = root.clone();
            std::thread::spawn(move || {
                NetworkRecords::open(&root)
                    .unwrap()
                    .add_member("front", request(&format!("id-{i}"), &format!("c-{i}")))
                    .unwrap()
                    .address
            })
        })
        .collect();
    let addresses: BTreeSet<IpAddr> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(addresses.len(), 8);
    assert_eq!(records.load("front").unwrap().members.len(), 8);
}
