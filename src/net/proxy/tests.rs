use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::*;
use crate::net::tests_netns::TempNetns;

/// Guards a broken proxy from hanging the suite; no test measures time.
const PATIENCE: Duration = Duration::from_secs(10);

/// Serves `count` connections: reads each to its end, then answers `echo:` and what it
/// read, and closes. Reading to the end needs the client's half-close to come through.
fn tcp_echo(listener: TcpListener, count: usize) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let handlers: Vec<_> = (0..count)
            .map(|_| {
                let (mut stream, _) = listener.accept().unwrap();
                std::thread::spawn(move || {
                    let mut received = Vec::new();
                    stream.read_to_end(&mut received).unwrap();
                    stream.write_all(b"echo:").unwrap();
                    stream.write_all(&received).unwrap();
                })
            })
            .collect();
        for handler in handlers {
            handler.join().unwrap();
        }
    })
}

/// Sends `message`, half-closes, and reads the answer to its end.
fn tcp_round_trip(proxy: SocketAddr, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(proxy).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn tcp_from_loopback_to_loopback_with_half_close() {
    let server = TcpListener::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let echo = tcp_echo(server, 2);
    let proxy = PortProxy::start(loopback(), target, None, Protocol::Tcp).unwrap();
    assert_ne!(proxy.local_addr().port(), 0);
    assert_eq!(proxy.protocol(), Protocol::Tcp);
    assert_eq!(tcp_round_trip(proxy.local_addr(), b"hello"), b"echo:hello");
    // A large message: copies are streamed, not one read.
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let answer = tcp_round_trip(proxy.local_addr(), &big);
    assert_eq!(&answer[..5], b"echo:");
    assert!(answer[5..] == big[..]);
    echo.join().unwrap();
    let addr = proxy.local_addr();
    proxy.stop();
    TcpListener::bind(addr).expect("the listener is closed after stop");
}

#[test]
fn a_port_in_use_is_refused_before_anything_starts() {
    let taken = TcpListener::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = PortProxy::start(addr, addr, None, Protocol::Tcp).unwrap_err();
    assert!(matches!(err, ProxyError::PortInUse { port, .. } if port == addr.port()));
    assert_eq!(
        err.to_string(),
        format!("port {} is already in use", addr.port())
    );

    let taken = UdpSocket::bind(loopback()).unwrap();
    let addr = taken.local_addr().unwrap();
    let err = PortProxy::start(addr, addr, None, Protocol::Udp).unwrap_err();
    assert!(matches!(err, ProxyError::PortInUse { .. }));
}

#[test]
fn a_missing_target_closes_the_client() {
    // A port nobody listens on: bind, note, close.
    let target = TcpListener::bind(loopback()).unwrap().local_addr().unwrap();
    let proxy = PortProxy::start(loopback(), target, None, Protocol::Tcp).unwrap();
    let mut stream = TcpStream::connect(proxy.local_addr()).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut answer = Vec::new();
    // Closed by the proxy: end of stream (or a reset), not a timeout.
    match stream.read_to_end(&mut answer) {
        Ok(_) => assert!(answer.is_empty()),
        Err(err) => assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset),
    }
    proxy.stop();
}

#[test]
fn stop_closes_open_connections() {
    let server = TcpListener::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let proxy = PortProxy::start(loopback(), target, None, Protocol::Tcp).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    // The target accepts and then says nothing: the connection stays open.
    let (mut held, _) = server.accept().unwrap();
    held.set_read_timeout(Some(PATIENCE)).unwrap();
    proxy.stop();
    let mut rest = Vec::new();
    let read = client
        .read_to_end(&mut rest)
        .expect("end of stream, not a timeout");
    assert_eq!(read, 0, "the client sees EOF");
    assert_eq!(
        held.read(&mut [0u8; 16]).unwrap(),
        0,
        "the target side sees EOF"
    );
}

/// Answers every datagram with `echo:` and the datagram, until told `quit`.
fn udp_echo(socket: UdpSocket) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        loop {
            let (len, from) = socket.recv_from(&mut buffer).unwrap();
            if &buffer[..len] == b"quit" {
                return;
            }
            let mut reply = b"echo:".to_vec();
            reply.extend_from_slice(&buffer[..len]);
            socket.send_to(&reply, from).unwrap();
        }
    })
}

fn udp_round_trip(client: &UdpSocket, proxy: SocketAddr, message: &[u8]) -> Vec<u8> {
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.send_to(message, proxy).unwrap();
    let mut buffer = [0u8; 2048];
    let (len, from) = client.recv_from(&mut buffer).unwrap();
    assert_eq!(from, proxy, "replies come from the published address");
    buffer[..len].to_vec()
}

/// Waits (bounded by [`PATIENCE`]) until `done` holds.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn udp_from_loopback_to_loopback_with_sessions_that_expire() {
    let server = UdpSocket::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let echo = udp_echo(server);
    let options = ProxyOptions {
        idle_timeout: Some(Duration::from_millis(50)),
        ..ProxyOptions::default()
    };
    let proxy = PortProxy::start_with(loopback(), target, None, Protocol::Udp, options).unwrap();
    let (a, b) = (
        UdpSocket::bind(loopback()).unwrap(),
        UdpSocket::bind(loopback()).unwrap(),
    );
    assert_eq!(udp_round_trip(&a, proxy.local_addr(), b"one"), b"echo:one");
    assert_eq!(udp_round_trip(&b, proxy.local_addr(), b"two"), b"echo:two");
    assert_eq!(
        udp_round_trip(&a, proxy.local_addr(), b"three"),
        b"echo:three"
    );
    assert!(
        eventually(|| proxy.udp_sessions() == 0),
        "idle sessions end"
    );
    // A new datagram opens a new session.
    assert_eq!(
        udp_round_trip(&a, proxy.local_addr(), b"four"),
        b"echo:four"
    );
    UdpSocket::bind(loopback())
        .unwrap()
        .send_to(b"quit", target)
        .unwrap();
    echo.join().unwrap();
    let addr = proxy.local_addr();
    proxy.stop();
    UdpSocket::bind(addr).expect("the listener is closed after stop");
}

fn owned(netns: &TempNetns) -> Option<OwnedFd> {
    Some(netns.fd().try_clone_to_owned().unwrap())
}

#[test]
fn tcp_into_a_network_namespace() {
    let Some(netns) = TempNetns::new("10.250.1.1/24") else {
        return;
    };
    let target: SocketAddr = "10.250.1.1:7000".parse().unwrap();
    let server = netns.run(|| TcpListener::bind(target)).unwrap();
    // The target address exists only inside the namespace.
    assert!(TcpListener::bind(target).is_err());
    let echo = tcp_echo(server, 3);
    let proxy = PortProxy::start(loopback(), target, owned(&netns), Protocol::Tcp).unwrap();
    let addr = proxy.local_addr();
    let clients: Vec<_> = (0..3)
        .map(|i| std::thread::spawn(move || tcp_round_trip(addr, format!("c{i}").as_bytes())))
        .collect();
    let mut answers: Vec<Vec<u8>> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    answers.sort();
    assert_eq!(answers, [b"echo:c0", b"echo:c1", b"echo:c2"]);
    echo.join().unwrap();
    proxy.stop();
    TcpListener::bind(addr).expect("the listener is closed after stop");
    netns.close_and_check();
}

#[test]
fn udp_into_a_network_namespace() {
    let Some(netns) = TempNetns::new("10.250.2.1/24") else {
        return;
    };
    let target: SocketAddr = "10.250.2.1:7001".parse().unwrap();
    let server = netns.run(|| UdpSocket::bind(target)).unwrap();
    let echo = udp_echo(server);
    let proxy = PortProxy::start(loopback(), target, owned(&netns), Protocol::Udp).unwrap();
    let client = UdpSocket::bind(loopback()).unwrap();
    assert_eq!(
        udp_round_trip(&client, proxy.local_addr(), b"ping"),
        b"echo:ping"
    );
    assert_eq!(proxy.udp_sessions(), 1);
    netns
        .run(|| UdpSocket::bind("10.250.2.1:0").and_then(|s| s.send_to(b"quit", target)))
        .unwrap();
    echo.join().unwrap();
    proxy.stop();
    netns.close_and_check();
}

/// Accepts connections and holds them open, silent, until the listener's thread is done.
fn silent_server(listener: TcpListener, count: usize) -> JoinHandle<Vec<TcpStream>> {
    std::thread::spawn(move || (0..count).map(|_| listener.accept().unwrap().0).collect())
}

/// What a read sees on a connection the proxy closed: EOF or a reset, not a timeout.
fn closed_by_proxy(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    match stream.read(&mut [0u8; 16]) {
        Ok(0) => true,
        Err(err) => err.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    }
}

#[test]
fn over_the_limit_a_client_is_reset_at_once_and_a_freed_slot_is_used_again() {
    let server = TcpListener::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let options = ProxyOptions {
        max_connections: 2,
        ..ProxyOptions::default()
    };
    let proxy = PortProxy::start_with(loopback(), target, None, Protocol::Tcp, options).unwrap();
    let first = TcpStream::connect(proxy.local_addr()).unwrap();
    let (first_server, _) = server.accept().unwrap();
    let _second = TcpStream::connect(proxy.local_addr()).unwrap();
    let _second_server = server.accept().unwrap();
    assert_eq!(proxy.stats().open, 2);
    let mut third = TcpStream::connect(proxy.local_addr()).unwrap();
    assert!(closed_by_proxy(&mut third), "the third client is closed");
    assert_eq!(proxy.stats().refused, 1);
    // Both ends of the first connection close: its slot is free.
    drop(first);
    drop(first_server);
    assert!(eventually(|| proxy.stats().open == 1), "the slot is freed");
    let _fourth = TcpStream::connect(proxy.local_addr()).unwrap();
    let _fourth_server = server.accept().unwrap();
    assert_eq!(proxy.stats().open, 2);
    assert_eq!(proxy.stats().accepted, 3);
    proxy.stop();
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout() {
    let server = TcpListener::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let held = silent_server(server, 1);
    let options = ProxyOptions {
        idle_timeout: Some(Duration::from_millis(200)),
        ..ProxyOptions::default()
    };
    let proxy = PortProxy::start_with(loopback(), target, None, Protocol::Tcp, options).unwrap();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    let mut server_side = held.join().unwrap().pop().unwrap();
    assert!(closed_by_proxy(&mut client), "the client side is closed");
    assert!(
        closed_by_proxy(&mut server_side),
        "the target side is closed"
    );
    assert!(eventually(|| proxy.stats().open == 0));
    assert_eq!(proxy.stats().timed_out, 1);
    assert_eq!(
        ProxyOptions::default().idle(Protocol::Tcp),
        DEFAULT_TCP_IDLE
    );
    assert_eq!(
        ProxyOptions::default().idle(Protocol::Udp),
        DEFAULT_UDP_IDLE
    );
    proxy.stop();
}

#[test]
fn bytes_keep_flowing_when_the_receiver_is_slower_than_the_sender() {
    // The target reads 4 MiB slowly; the proxy must hold what it cannot pass on yet and
    // deliver all of it, in order.
    let server = TcpListener::bind(loopback()).unwrap();
    let target = server.local_addr().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut stream, _) = server.accept().unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let n = stream.read(&mut buffer).unwrap();
            if n == 0 {
                return received;
            }
            received.extend_from_slice(&buffer[..n]);
            if received.len() % (256 * 1024) < 4096 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    });
    let proxy = PortProxy::start(loopback(), target, None, Protocol::Tcp).unwrap();
    let big: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    let mut client = TcpStream::connect(proxy.local_addr()).unwrap();
    client.write_all(&big).unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let received = reader.join().unwrap();
    assert!(
        received == big,
        "{} of {} bytes, in order",
        received.len(),
        big.len()
    );
    proxy.stop();
}
