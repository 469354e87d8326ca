use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use super::*;
use crate::net::dns::message::{Rcode, answer, parse_query};

#[test]
fn resolv_conf_gives_the_first_nameserver_and_the_last_search_line() {
    let conf =
        "# kiln\nsearch old\nnameserver 10.89.0.1\nnameserver 10.89.1.1\nsearch lab example\n";
    assert_eq!(first_nameserver(conf), Some("10.89.0.1".parse().unwrap()));
    assert_eq!(search_domains(conf), ["lab", "example"]);
    assert_eq!(
        first_nameserver("search lab\nnameserver\nnameserver junk\n"),
        None
    );
    assert_eq!(first_nameserver(""), None);
    assert!(search_domains("nameserver 1.1.1.1\n").is_empty());
    assert_eq!(
        first_nameserver("  nameserver   fd00::1  \n"),
        Some("fd00::1".parse().unwrap())
    );
}

#[test]
fn names_without_a_dot_also_try_the_search_domains() {
    let search = vec!["lab".to_string(), "corp".to_string()];
    assert_eq!(candidates("web", &search), ["web", "web.lab", "web.corp"]);
    assert_eq!(candidates("web.lab", &search), ["web.lab"]);
    assert_eq!(candidates("web.", &search), ["web"]);
    assert_eq!(candidates("web", &[]), ["web"]);
}

#[test]
fn addresses_split_into_host_and_port() {
    assert_eq!(split_host_port("web:8080").unwrap(), ("web".into(), 8080));
    assert_eq!(
        split_host_port("10.89.0.10:80").unwrap(),
        ("10.89.0.10".into(), 80)
    );
    assert_eq!(split_host_port("[::1]:9").unwrap(), ("::1".into(), 9));
    for bad in ["web", ":80", "web:http", "web:70000"] {
        assert!(split_host_port(bad).is_err(), "{bad}");
    }
    assert_eq!(literal_ip("[::1]"), Some("::1".parse().unwrap()));
    assert_eq!(literal_ip("web"), None);
}

#[test]
fn a_ping_that_cannot_leave_says_unreachable() {
    let err = std::io::Error::from(std::io::ErrorKind::NetworkUnreachable);
    let said = ping_failure(&err, "web", "client-1");
    assert!(said.contains("unreachable"), "{said}");
    assert!(said.contains("web") && said.contains("client-1"), "{said}");
    let other = ping_failure(&std::io::Error::other("boom"), "web", "c");
    assert!(!other.contains("unreachable"), "{other}");
}

/// A DNS server on 127.0.0.1 that answers `known` with `address`, NXDOMAIN to other
/// names and REFUSED to `refused`, for `queries` queries; it ignores the first query
/// when `drop_first`.
fn fake_dns(
    queries: usize,
    drop_first: bool,
) -> (SocketAddr, std::thread::JoinHandle<Vec<String>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let address = socket.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        let mut asked = Vec::new();
        let mut buffer = [0u8; 512];
        for i in 0..queries {
            let (n, from) = socket.recv_from(&mut buffer).unwrap();
            let query = parse_query(&buffer[..n]).unwrap();
            asked.push(query.name.clone());
            if drop_first && i == 0 {
                continue;
            }
            let reply = match query.name.as_str() {
                "web.lab" => answer(&query, Rcode::NoError, &[Ipv4Addr::new(10, 89, 0, 10)]),
                "refused" => answer(&query, Rcode::Refused, &[]),
                _ => answer(&query, Rcode::NxDomain, &[]),
            };
            socket.send_to(&reply, from).unwrap();
        }
        asked
    });
    (address, handle)
}

#[test]
fn a_query_gets_addresses_nxdomain_or_an_error() {
    let (server, asked) = fake_dns(3, false);
    let wait = Duration::from_secs(5);
    assert_eq!(
        query_a(server, "web.lab", wait, 1).unwrap(),
        Some(vec![Ipv4Addr::new(10, 89, 0, 10)])
    );
    assert_eq!(query_a(server, "nope", wait, 1).unwrap(), None);
    let refused = query_a(server, "refused", wait, 1).unwrap_err();
    assert!(refused.contains("refused"), "{refused}");
    assert_eq!(asked.join().unwrap(), ["web.lab", "nope", "refused"]);
}

#[test]
fn an_unanswered_query_is_sent_again() {
    let (server, asked) = fake_dns(2, true);
    let found = query_a(server, "web.lab", Duration::from_millis(300), 3).unwrap();
    assert_eq!(found, Some(vec![Ipv4Addr::new(10, 89, 0, 10)]));
    assert_eq!(asked.join().unwrap(), ["web.lab", "web.lab"]);
}

#[test]
fn nothing_listening_is_an_error_not_a_hang() {
    // Bound and dropped: the port is free, so the kernel answers port unreachable.
    let server = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = query_a(server, "web", Duration::from_millis(200), 2).unwrap_err();
    assert!(
        err.contains("nothing answers") || err.contains("no answer"),
        "{err}"
    );
}

#[test]
fn a_missing_container_is_a_failure_to_observe() {
    let root = tempfile::tempdir().unwrap();
    let prober = LiveProber::new(root.path(), "p");
    let err = prober
        .tcp("ghost", "127.0.0.1:80", Duration::from_secs(1))
        .unwrap_err();
    assert!(err.contains("ghost"), "{err}");
    let err = prober.exec("ghost", &["true".to_string()]).unwrap_err();
    assert!(err.contains("ghost"), "{err}");
}
