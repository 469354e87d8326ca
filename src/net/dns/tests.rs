use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use proptest::prelude::*;

use super::message::*;
use super::*;
use crate::net::tests_netns::TempNetns;

fn v4(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn web_and_clients(name: &str) -> Lookup {
    match name {
        "web" => Lookup::Addresses(vec![v4("10.89.0.10")]),
        "client" => Lookup::Addresses(vec![v4("10.89.0.11"), v4("10.89.0.12"), v4("10.89.0.13")]),
        "secret" => Lookup::Refused,
        _ => Lookup::NxDomain,
    }
}

fn ask(name: &str, qtype: u16, rotation: usize) -> Response {
    let reply = respond(&build_query(0x1234, name, qtype), web_and_clients, rotation).unwrap();
    parse_response(&reply).unwrap()
}

#[test]
fn a_query_is_parsed_case_insensitively_without_the_trailing_dot() {
    let query = parse_query(&build_query(7, "WeB.Hello-Web.", TYPE_A)).unwrap();
    assert_eq!(query.id, 7);
    assert_eq!(query.name, "web.hello-web");
    assert_eq!(query.qtype, TYPE_A);
    assert_eq!(query.qclass, CLASS_IN);
}

#[test]
fn the_answer_echoes_the_question_as_asked() {
    let query = build_query(9, "WeB", TYPE_A);
    let reply = respond(&query, web_and_clients, 0).unwrap();
    // Header (12) + question: same bytes, case kept (some resolvers check 0x20 case).
    assert_eq!(&reply[12..query.len()], &query[12..]);
    let response = parse_response(&reply).unwrap();
    assert_eq!(response.id, 9);
    assert_eq!(response.rcode, Rcode::NoError as u8);
    assert!(response.authoritative);
    assert_eq!(response.addresses, [v4("10.89.0.10")]);
}

#[test]
fn several_addresses_rotate() {
    let first = ask("client", TYPE_A, 0).addresses;
    let second = ask("client", TYPE_A, 1).addresses;
    assert_eq!(
        first,
        [v4("10.89.0.11"), v4("10.89.0.12"), v4("10.89.0.13")]
    );
    assert_eq!(
        second,
        [v4("10.89.0.12"), v4("10.89.0.13"), v4("10.89.0.11")]
    );
    assert_eq!(ask("client", TYPE_A, 3).addresses, first);
}

#[test]
fn aaaa_of_a_known_name_is_nodata_and_unknown_names_are_nxdomain() {
    let aaaa = ask("web", TYPE_AAAA, 0);
    assert_eq!(aaaa.rcode, Rcode::NoError as u8);
    assert_eq!(aaaa.answer_count, 0);
    let unknown = ask("nope", TYPE_A, 0);
    assert_eq!(unknown.rcode, Rcode::NxDomain as u8);
    assert_eq!(unknown.answer_count, 0);
    assert_eq!(ask("secret", TYPE_A, 0).rcode, Rcode::Refused as u8);
    assert_eq!(ask("web", TYPE_ANY, 0).addresses, [v4("10.89.0.10")]);
}

#[test]
fn garbage_gets_formerr_and_non_queries_get_nothing() {
    let mut two_questions = build_query(5, "web", TYPE_A);
    two_questions[5] = 2;
    let reply = parse_response(&respond(&two_questions, web_and_clients, 0).unwrap()).unwrap();
    assert_eq!((reply.id, reply.rcode), (5, Rcode::FormErr as u8));

    let truncated = &build_query(6, "web", TYPE_A)[..16];
    let reply = parse_response(&respond(truncated, web_and_clients, 0).unwrap()).unwrap();
    assert_eq!(reply.rcode, Rcode::FormErr as u8);

    let mut status = build_query(8, "web", TYPE_A);
    status[2] |= 0x10; // opcode 2 (STATUS)
    let reply = parse_response(&respond(&status, web_and_clients, 0).unwrap()).unwrap();
    assert_eq!(reply.rcode, Rcode::NotImp as u8);

    let mut response = build_query(8, "web", TYPE_A);
    response[2] |= 0x80; // QR: a response, never answered (no loops between servers)
    assert_eq!(respond(&response, web_and_clients, 0), None);
    assert_eq!(respond(&[0; 11], web_and_clients, 0), None);
}

#[test]
fn compression_pointers_are_followed_backwards_only() {
    // Header, then a question whose name is a pointer to itself: a loop.
    let mut looping = build_query(1, "", TYPE_A);
    looping.truncate(12);
    looping.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let reply = parse_response(&respond(&looping, web_and_clients, 0).unwrap()).unwrap();
    assert_eq!(reply.rcode, Rcode::FormErr as u8);

    // A label, then a forward pointer: refused as well.
    let mut forward = build_query(1, "", TYPE_A);
    forward.truncate(12);
    forward.extend_from_slice(&[3, b'w', b'e', b'b', 0xc0, 30, 0, 1, 0, 1]);
    assert!(matches!(
        parse_query(&forward),
        Err(BadQuery::Malformed { .. })
    ));

    // A pointer into the header is backwards, and harmless: it decodes what is there.
    let mut into_header = build_query(1, "", TYPE_A);
    into_header.truncate(12);
    into_header[10..12].copy_from_slice(&[0, 0]);
    into_header.extend_from_slice(&[0xc0, 11, 0, 1, 0, 1]);
    let query = parse_query(&into_header).unwrap();
    assert_eq!(query.name, "");
}

#[test]
fn odd_bytes_in_names_are_escaped_so_they_match_nothing() {
    let mut query = build_query(1, "we.b", TYPE_A);
    // Merge the labels into one label "we.b" (length 4), which is not the name "we.b".
    query.splice(12..17, [4, b'w', b'e', b'.', b'b']);
    let parsed = parse_query(&query).unwrap();
    assert_eq!(parsed.name, "we\\046b");
}

#[test]
fn overlong_names_are_malformed() {
    let label = "a".repeat(63);
    let name = [label.as_str(); 5].join(".");
    assert!(matches!(
        parse_query(&build_query(1, &name, TYPE_A)),
        Err(BadQuery::Malformed { .. })
    ));
    let fits = [label.as_str(); 3].join(".");
    assert!(parse_query(&build_query(1, &fits, TYPE_A)).is_ok());
}

#[test]
fn many_addresses_are_cut_to_fit_a_classic_udp_answer() {
    let many: Vec<Ipv4Addr> = (0..100u8).map(|i| Ipv4Addr::new(10, 0, 0, i)).collect();
    let reply = respond(
        &build_query(1, "many", TYPE_A),
        |_| Lookup::Addresses(many.clone()),
        0,
    )
    .unwrap();
    assert!(reply.len() <= MAX_UDP_RESPONSE);
    let response = parse_response(&reply).unwrap();
    assert_eq!(response.addresses, many[..response.addresses.len()]);
    assert!(response.addresses.len() >= 25);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let reply = respond(&bytes, web_and_clients, 0);
        if let Some(reply) = reply {
            prop_assert!(reply.len() >= 12);
            prop_assert!(parse_response(&reply).is_some());
        }
        let _ = parse_response(&bytes);
    }

    #[test]
    fn damaged_queries_never_panic(
        name in "[a-z]{1,10}(\\.[a-z]{1,10}){0,3}",
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let mut query = build_query(1, &name, TYPE_A);
        for (at, byte) in flips {
            let at = at % query.len();
            query[at] = byte;
        }
        query.truncate(cut % (query.len() + 1));
        let _ = respond(&query, web_and_clients, 3);
    }
}

#[test]
fn the_table_answers_members_only_with_names_aliases_and_project() {
    let mut table = NameTable::new(Some("Hello-Web"));
    let web: IpAddr = "10.89.0.10".parse().unwrap();
    let stranger: IpAddr = "10.89.1.99".parse().unwrap();
    table.allow_client(web);
    table.add_name("web", v4("10.89.0.10"));
    table.add_name("client-1", v4("10.89.0.11"));
    table.add_name("client", v4("10.89.0.11"));
    table.add_name("Client", v4("10.89.0.12"));
    table.add_name("client", v4("10.89.0.12")); // listed once

    assert_eq!(
        table.lookup("web", web),
        Lookup::Addresses(vec![v4("10.89.0.10")])
    );
    assert_eq!(
        table.lookup("web.hello-web", web),
        Lookup::Addresses(vec![v4("10.89.0.10")])
    );
    assert_eq!(
        table.lookup("CLIENT.", web),
        Lookup::Addresses(vec![v4("10.89.0.11"), v4("10.89.0.12")])
    );
    assert_eq!(table.lookup("example.com", web), Lookup::NxDomain);
    assert_eq!(table.lookup("web.other-project", web), Lookup::NxDomain);
    assert_eq!(table.lookup("web", stranger), Lookup::Refused);
}

#[test]
fn the_table_of_a_record() {
    let dir = tempfile::tempdir().unwrap();
    let records = crate::net::records::NetworkRecords::open(dir.path()).unwrap();
    let record = crate::net::records::NetworkRecord::new(
        "p/front",
        "10.89.0.0/24".parse().unwrap(),
        false,
        "kb-front".into(),
        Some("p".into()),
    )
    .unwrap();
    records.create(&record).unwrap();
    let member = records
        .add_member(
            "p/front",
            crate::net::records::MemberRequest {
                container_id: "id1".into(),
                container_name: "client-1".into(),
                aliases: vec!["client".into()],
                interface: "eth0".into(),
                ..Default::default()
            },
        )
        .unwrap();
    let table = NameTable::from_record(&records.load("p/front").unwrap());
    let IpAddr::V4(address) = member.address else {
        panic!("an IPv4 network gives IPv4 addresses")
    };
    let found = Lookup::Addresses(vec![address]);
    assert_eq!(table.lookup("client", member.address), found);
    assert_eq!(table.lookup("client-1.p", member.address), found);
    // The gateway (kiln's probes) may ask; an address not on the network may not.
    assert_eq!(table.lookup("client", "10.89.0.1".parse().unwrap()), found);
    assert_eq!(
        table.lookup("client", "10.89.0.200".parse().unwrap()),
        Lookup::Refused
    );
}

/// Sends a query and waits for its answer (a read timeout guards a broken server; the test
/// does not measure time).
fn query_server(client: &UdpSocket, server: SocketAddr, id: u16, name: &str) -> Response {
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .send_to(&build_query(id, name, TYPE_A), server)
        .unwrap();
    let mut buffer = [0u8; 512];
    let (len, from) = client.recv_from(&mut buffer).unwrap();
    assert_eq!(from, server);
    let response = parse_response(&buffer[..len]).unwrap();
    assert_eq!(response.id, id);
    response
}

#[test]
fn the_server_answers_on_loopback_and_shuts_down() {
    let server = DnsServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        |name: &str, client: IpAddr| {
            assert_eq!(client, IpAddr::from([127, 0, 0, 1]));
            web_and_clients(name)
        },
    )
    .unwrap();
    let addr = server.local_addr();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(
        query_server(&client, addr, 1, "web").addresses,
        [v4("10.89.0.10")]
    );
    assert_eq!(
        query_server(&client, addr, 2, "nope").rcode,
        Rcode::NxDomain as u8
    );
    let first = query_server(&client, addr, 3, "client").addresses;
    let second = query_server(&client, addr, 4, "client").addresses;
    assert_ne!(first[0], second[0], "successive answers rotate");
    // Garbage does not stop it.
    client.send_to(&[1, 2, 3], addr).unwrap();
    assert_eq!(
        query_server(&client, addr, 5, "web").addresses,
        [v4("10.89.0.10")]
    );

    server.shutdown();
    // The socket is closed: its port can be bound again.
    UdpSocket::bind(addr).expect("the server's port is free after shutdown");
}

#[test]
fn binding_a_port_in_use_is_a_clear_error() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = DnsServer::bind(addr, |_: &str, _: IpAddr| Lookup::NxDomain).unwrap_err();
    assert!(matches!(err, DnsError::Bind { .. }));
    assert_eq!(err.to_string(), format!("cannot listen for DNS on {addr}"));
}

#[test]
fn the_server_answers_inside_a_network_namespace() {
    let Some(netns) = TempNetns::new("10.250.0.1/24") else {
        return;
    };
    let addr: SocketAddr = "10.250.0.1:53".parse().unwrap();
    let server = DnsServer::bind_in(netns.fd(), addr, |name: &str, client: IpAddr| {
        if client == IpAddr::from([10, 250, 0, 1]) {
            web_and_clients(name)
        } else {
            Lookup::Refused
        }
    })
    .unwrap();
    assert_eq!(server.local_addr(), addr);
    let response = netns.run(|| {
        let client = UdpSocket::bind("10.250.0.1:0").unwrap();
        query_server(&client, addr, 11, "web")
    });
    assert_eq!(response.addresses, [v4("10.89.0.10")]);
    // From loopback inside the namespace the client is 127.0.0.1: not a member.
    let refused = netns.run(|| {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        query_server(&client, addr, 12, "web")
    });
    assert_eq!(refused.rcode, Rcode::Refused as u8);
    // The machine's namespace has no such address: binding it here fails.
    assert!(UdpSocket::bind(addr).is_err());
    server.shutdown();
    netns.close_and_check();
}

#[test]
fn resolver_files() {
    let gateways: Vec<IpAddr> = vec!["10.89.0.1".parse().unwrap(), "10.89.1.1".parse().unwrap()];
    assert_eq!(
        files::resolv_conf(&gateways, Some("hello-web")),
        "# written by kiln: the DNS servers of this container's networks\n\
         nameserver 10.89.0.1\nnameserver 10.89.1.1\nsearch hello-web\n"
    );
    let hosts = files::hosts_file(&[
        (
            "10.89.0.10".parse().unwrap(),
            vec!["web".into(), "web.hello-web".into()],
        ),
        ("10.89.1.10".parse().unwrap(), vec![]),
    ]);
    assert_eq!(
        hosts,
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         10.89.0.10\tweb web.hello-web\n"
    );
}

#[test]
fn a_forwarded_name_gets_the_upstreams_answer_and_servfail_without_one() {
    // The upstream: answers everything with its own marker (an answer count of 7).
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((len, peer)) = upstream.recv_from(&mut buffer) {
            let mut reply = buffer[..len].to_vec();
            reply[2] |= 0x80;
            reply[7] = 7;
            let _ = upstream.send_to(&reply, peer);
        }
    });
    let lookup = |name: &str, _: IpAddr| match name {
        "web" => Lookup::Addresses(vec![v4("10.89.0.10")]),
        _ => Lookup::Forward,
    };
    let ask = |server: &DnsServer, name: &str| {
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        client
            .send_to(&build_query(9, name, TYPE_A), server.local_addr())
            .unwrap();
        let mut buffer = [0u8; 512];
        let len = client.recv(&mut buffer).unwrap();
        buffer[..len].to_vec()
    };
    let forwarding = DnsServer::serve_forwarding(
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        lookup,
        Some(Forwarder::fixed(vec![upstream_addr])),
    )
    .unwrap();
    assert_eq!(ask(&forwarding, "world.example")[7], 7);
    // kiln's own names are never forwarded.
    let web = parse_response(&ask(&forwarding, "web")).unwrap();
    assert_eq!(web.addresses, vec![v4("10.89.0.10")]);
    forwarding.shutdown();
    let closed = DnsServer::serve(UdpSocket::bind("127.0.0.1:0").unwrap(), lookup).unwrap();
    let reply = parse_response(&ask(&closed, "world.example")).unwrap();
    assert_eq!(reply.rcode, Rcode::ServFail as u8);
}
