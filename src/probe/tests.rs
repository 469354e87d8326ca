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
