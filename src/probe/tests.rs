use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use super::*;

#[test]
fn status_lines_parse_and_junk_does_not() {
    assert_eq!(
        parse_status_line("HTTP/1.1 200 OK\r\n"),
        Some((200, "OK".into()))
    );
    assert_eq!(
        parse_status_line("HTTP/1.0 503 Service Unavailable"),
        Some((503, "Service Unavailable".into()))
    );
    assert_eq!(parse_status_line("HTTP/2 204"), Some((204, String::new())));
    for junk in [
        "",
        "HTTP/1.1",
        "HTTP/1.1 2000 OK",
        "HTTP/x 200 OK",
        "SSH-2.0-OpenSSH",
        "HTTP/1.1 099 Low",
        "http/1.1 200 OK",
    ] {
        assert_eq!(parse_status_line(junk), None, "{junk:?}");
    }
}

#[test]
fn urls_give_address_host_header_and_path() {
    let url = parse_url("http://localhost:8080/health?full=1").unwrap();
    assert_eq!(url.address, "localhost:8080");
    assert_eq!(url.host, "localhost:8080");
    assert_eq!(url.path, "/health?full=1");
    let url = parse_url("http://127.0.0.1").unwrap();
    assert_eq!(
        (url.address.as_str(), url.path.as_str()),
        ("127.0.0.1:80", "/")
    );
    assert_eq!(parse_url("http://h?q").unwrap().path, "/?q");
    assert_eq!(parse_url("http://[::1]/x").unwrap().address, "[::1]:80");
    assert!(parse_url("https://example.com/").is_err());
    assert!(parse_url("http:///path").is_err());
}

#[test]
fn addresses_need_a_host_and_a_numeric_port() {
    assert!(tcp::resolve("localhost:80").is_ok());
    assert!(tcp::resolve("127.0.0.1:9").is_ok());
    assert!(tcp::resolve("127.0.0.1").is_err());
    assert!(tcp::resolve(":80").is_err());
    assert!(tcp::resolve("localhost:http").is_err());
}

/// Serves one connection with `reply`, returning the request it read.
fn serve_once(reply: &'static [u8]) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..n]);
        }
        stream.write_all(reply).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (address, handle)
}

#[test]
fn a_get_reads_the_status_and_keeps_the_start_of_the_body() {
    let (address, server) =
        serve_once(b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 5\r\n\r\nshort");
    let result = http_get(&format!("http://{address}/pot"), Duration::from_secs(5)).unwrap();
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /pot HTTP/1.1\r\n"), "{request}");
    assert!(
        request.contains(&format!("Host: {address}\r\n")),
        "{request}"
    );
    assert_eq!(
        result.outcome,
        HttpOutcome::Response(HttpResponse {
            status: 418,
            reason: "I'm a teapot".into(),
            body_excerpt: "short".into(),
        })
    );
    assert!(!result.passed(None));
    assert!(result.passed(Some(418)));
    assert!(result.to_string().contains("418 I'm a teapot"), "{result}");
}

#[test]
fn a_reply_that_is_not_http_fails_the_probe() {
    let (address, server) = serve_once(b"SSH-2.0-OpenSSH\r\n\r\n");
    let result = http_get(&format!("http://{address}/"), Duration::from_secs(5)).unwrap();
    server.join().unwrap();
    assert!(
        matches!(result.outcome, HttpOutcome::Error(ref e) if e.contains("not an HTTP response")),
        "{result:?}"
    );
    assert!(!result.passed(None));
}

#[test]
fn a_closed_port_is_refused_and_an_open_one_open() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().to_string();
    let result = tcp_connect(&open, Duration::from_secs(5)).unwrap();
    assert_eq!(result.outcome, TcpOutcome::Open);
    assert!(result.passed());
    drop(listener);
    let closed = tcp_connect(&open, Duration::from_secs(5)).unwrap();
    assert_eq!(closed.outcome, TcpOutcome::Refused);
    assert!(!closed.passed());
    let http = http_get(&format!("http://{open}/"), Duration::from_secs(5)).unwrap();
    assert_eq!(http.outcome, HttpOutcome::Refused);
}

#[test]
fn the_checksum_is_rfc_1071s_and_verifies_to_zero() {
    // RFC 1071's worked example: the one's-complement sum is 0xddf2.
    let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    assert_eq!(ping::checksum(&bytes), !0xddf2);
    // An odd length pads with a zero byte.
    assert_eq!(ping::checksum(&[0x12]), !0x1200);
    assert_eq!(ping::checksum(&[]), 0xffff);
    // Long runs of 0xff fold without overflow.
    assert_eq!(ping::checksum(&[0xff; 70_001]), 0x00ff);
}

/// `icmp` behind a minimal IPv4 header from `source`, as a raw socket hands it over.
fn ipv4_packet(source: [u8; 4], icmp: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
    packet.extend_from_slice(&source);
    packet.extend_from_slice(&[127, 0, 0, 1]);
    packet.extend_from_slice(icmp);
    packet
}

#[test]
fn echo_requests_carry_id_sequence_payload_and_a_valid_checksum() {
    let request = ping::echo_request(0x1234, 7, b"abc");
    assert_eq!(&request[..2], &[8, 0], "type 8 code 0");
    assert_eq!(&request[4..8], &[0x12, 0x34, 0, 7]);
    assert_eq!(&request[8..], b"abc");
    assert_eq!(ping::checksum(&request), 0, "{request:?}");
}

#[test]
fn only_our_echo_replies_from_the_target_are_counted() {
    let target = std::net::Ipv4Addr::new(10, 0, 0, 2);
    let reply_of = |id: u16, seq: u16| {
        let mut icmp = ping::echo_request(id, seq, b"kiln");
        icmp[0] = 0;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let sum = ping::checksum(&icmp);
        icmp[2..4].copy_from_slice(&sum.to_be_bytes());
        icmp
    };
    let reply = reply_of(0x1234, 5);
    assert_eq!(
        ping::echo_reply(&ipv4_packet([10, 0, 0, 2], &reply), 0x1234, target),
        Some(5)
    );
    // Another process's id, another source, our own request, a cut or corrupt packet.
    assert_eq!(
        ping::echo_reply(
            &ipv4_packet([10, 0, 0, 2], &reply_of(0x4321, 5)),
            0x1234,
            target
        ),
        None
    );
    assert_eq!(
        ping::echo_reply(&ipv4_packet([10, 0, 0, 3], &reply), 0x1234, target),
        None
    );
    let request = ping::echo_request(0x1234, 5, b"kiln");
    assert_eq!(
        ping::echo_reply(&ipv4_packet([10, 0, 0, 2], &request), 0x1234, target),
        None
    );
    let whole = ipv4_packet([10, 0, 0, 2], &reply);
    assert_eq!(
        ping::echo_reply(&whole[..whole.len() - 6], 0x1234, target),
        None
    );
    let mut corrupt = whole.clone();
    *corrupt.last_mut().unwrap() ^= 0xff;
    assert_eq!(ping::echo_reply(&corrupt, 0x1234, target), None);
    assert_eq!(ping::echo_reply(&[], 0x1234, target), None);
    assert_eq!(ping::echo_reply(&[0x41; 40], 0x1234, target), None);
}

#[test]
fn literal_targets_are_ipv4_only() {
    assert_eq!(
        ping::literal_ipv4("10.1.2.3"),
        Some(std::net::Ipv4Addr::new(10, 1, 2, 3))
    );
    assert_eq!(ping::literal_ipv4("::1"), None);
    assert_eq!(ping::literal_ipv4("web"), None);
}

/// Runs `f` inside a fresh network namespace (gone when it returns), `lo` up if asked.
fn in_fresh_netns<T: Send>(lo_up: bool, f: impl FnOnce() -> T + Send) -> T {
    let ns = crate::net::NetNs::create_unpinned().expect("a new network namespace");
    if lo_up {
        crate::net::Netlink::open_in(&ns)
            .and_then(|link| link.set_up("lo"))
            .expect("lo up");
    }
    crate::net::run_in(&ns, f).expect("entering the namespace")
}

#[test]
fn ping_gets_replies_from_loopback_in_a_fresh_namespace() {
    if !crate::test_support::is_root() {
        return;
    }
    let interval = Duration::from_millis(50);
    let result = in_fresh_netns(true, || {
        ping::ping(
            std::net::Ipv4Addr::LOCALHOST,
            2,
            interval,
            Duration::from_secs(1),
        )
    })
    .expect("ping on lo");
    assert_eq!(result.sent, 2);
    assert_eq!(result.rtts.len(), 2, "{result:?}");
    assert!(result.rtts.iter().all(|rtt| *rtt < Duration::from_secs(1)));
}

#[test]
fn ping_without_a_route_is_network_unreachable() {
    if !crate::test_support::is_root() {
        return;
    }
    // lo is down in a new namespace: no route, not even to 127.0.0.1.
    let result = in_fresh_netns(false, || {
        ping::ping(
            std::net::Ipv4Addr::LOCALHOST,
            1,
            Duration::from_millis(50),
            Duration::from_millis(200),
        )
    });
    let err = result.expect_err("nothing can be sent");
    assert_eq!(err.kind(), std::io::ErrorKind::NetworkUnreachable, "{err}");
}
