//! The published-port proxy is bounded: 200 idle clients cost the
//! proxy's process two descriptors each and no thread, and everything returns to the
//! baseline when they leave; over the connection limit a client is reset at once; an idle
//! connection is closed after the idle timeout; half-closes and UDP still work.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::harness::host::free_port;
use crate::harness::{Lab, Project, has_python, images, wait_for};

/// TCP on 7000: answers `ping` lines with `pong`, and on the client's half-close sends
/// `echo:` and everything else it got. UDP on 7001: echoes each datagram.
const SERVER_PY: &str = r#"import socket, socketserver, threading
class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data = b""
        while True:
            chunk = self.request.recv(65536)
            if not chunk: break
            data += chunk
            while data.startswith(b"ping\n"):
                self.request.sendall(b"pong\n"); data = data[5:]
        self.request.sendall(b"echo:" + data)
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 512
def udp():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", 7001))
    while True:
        data, peer = s.recvfrom(2048); s.sendto(b"echo:" + data, peer)
threading.Thread(target=udp, daemon=True).start()
Server(("0.0.0.0", 7000), Handler).serve_forever()
"#;

const PATIENCE: Duration = Duration::from_secs(20);

fn lab() -> Option<Lab> {
    if !has_python() {
        return None;
    }
    let images = images::python("echo", r#"copy "server.py" "/server.py""#);
    Lab::build(Project::new(&images).file("server.py", SERVER_PY))
}

/// (descriptors, threads, resident KiB) of a process.
fn usage(pid: i64) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    let threads = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    (fds, threads, rss)
}

/// Waits until the server answers a ping through the proxy on `port` (the container is
/// up and its proxy listening).
fn wait_until_it_answers(port: u16) {
    wait_for("the server answers", || {
        TcpStream::connect(("127.0.0.1", port))
            .and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"ping\n")?;
                let mut line = String::new();
                BufReader::new(&s).read_line(&mut line)?;
                Ok(line == "pong\n")
            })
            .unwrap_or(false)
    });
}

/// A connection through the proxy on `port` that has been relayed to the server (a
/// ping answered).
fn connected(port: u16) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"ping\n").unwrap();
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line).unwrap();
    assert_eq!(line, "pong\n");
    stream
}

/// What a read on a stream the proxy closed sees: `closed` (EOF or reset) or the data.
fn read_outcome(stream: &mut TcpStream) -> String {
    let mut buffer = [0u8; 64];
    match stream.read(&mut buffer) {
        Ok(0) => "closed".into(),
        Ok(n) => String::from_utf8_lossy(&buffer[..n]).into_owned(),
        Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => "closed".into(),
        Err(err) => format!("error {err}"),
    }
}

#[test]
fn two_hundred_idle_clients_cost_two_descriptors_each_and_are_given_back() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();
    kiln(&["network", "create", "pub", "--subnet", "10.89.45.0/24"]).success();
    let (tcp, udp) = (free_port(), free_port());
    let id = kiln(&[
        "run",
        "-d",
        "--name",
        "echo",
        "--network",
        "pub",
        "-p",
        &format!("{tcp}:7000"),
        "-p",
        &format!("{udp}:7001/udp"),
        "echo",
        "python3",
        "/server.py",
    ])
    .success()
    .stdout()
    .trim()
    .to_string();
    // The supervisor runs the container's proxies.
    let pid = lab.root.record(&id)["state"]["supervisor_pid"]
        .as_i64()
        .unwrap();
    wait_until_it_answers(tcp);
    // Half-close: the server answers once it sees the end of the request.
    let mut stream = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.write_all(b"request").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "echo:request");
    drop(stream);
    // UDP.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    client.send_to(b"datagram", ("127.0.0.1", udp)).unwrap();
    let mut buffer = [0u8; 64];
    let (len, _) = client.recv_from(&mut buffer).unwrap();
    assert_eq!(&buffer[..len], b"echo:datagram");

    std::thread::sleep(Duration::from_millis(300)); // the probes above are closed
    let baseline = usage(pid);
    let clients: Vec<TcpStream> = (0..200).map(|_| connected(tcp)).collect();
    let loaded = usage(pid);
    eprintln!(
        "proxy process: baseline {} fds, {} threads, {} KiB; with 200 idle clients {} fds, \
         {} threads, {} KiB",
        baseline.0, baseline.1, baseline.2, loaded.0, loaded.1, loaded.2
    );
    assert!(
        loaded.0 <= baseline.0 + 2 * 200 + 8,
        "descriptors: {} → {}",
        baseline.0,
        loaded.0
    );
    assert_eq!(loaded.1, baseline.1, "no thread per connection");
    drop(clients);
    wait_for("the descriptors are given back", || {
        usage(pid).0 <= baseline.0
    });
    let after = usage(pid);
    eprintln!(
        "after they left: {} fds, {} threads, {} KiB",
        after.0, after.1, after.2
    );
    assert_eq!(after.1, baseline.1);
    // Memory: what 200 connections took is given back (a little slack for the allocator).
    assert!(
        after.2 <= baseline.2 + 1024,
        "resident memory {} KiB → {} KiB",
        baseline.2,
        after.2
    );

    kiln(&["rm", "-f", "echo"]).success();
    kiln(&["network", "rm", "pub"]).success();
    lab.root.assert_clean();
}

#[test]
fn over_the_limit_clients_are_reset_and_idle_ones_closed() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();
    kiln(&["network", "create", "lim", "--subnet", "10.89.46.0/24"]).success();
    let port = free_port();
    for (flag, value) in [
        ("--publish-max-connections", "0"),
        ("--publish-idle-timeout", "0s"),
        ("--publish-idle-timeout", "soon"),
    ] {
        kiln(&[
            "run",
            "--rm",
            "--network",
            "lim",
            "-p",
            &format!("{port}:7000"),
            flag,
            value,
            "echo",
            "true",
        ])
        .code(125)
        .stderr_contains(flag);
    }
    kiln(&[
        "run",
        "-d",
        "--name",
        "limited",
        "--network",
        "lim",
        "-p",
        &format!("{port}:7000"),
        "--publish-max-connections",
        "5",
        "--publish-idle-timeout",
        "2s",
        "echo",
        "python3",
        "/server.py",
    ])
    .success();
    wait_until_it_answers(port);
    // The probe's connection is closed by now or soon; wait until all five slots are free.
    std::thread::sleep(Duration::from_millis(300));
    let mut five: Vec<TcpStream> = (0..5).map(|_| connected(port)).collect();
    // The sixth is accepted by the kernel, then reset by the proxy: not left hanging.
    let mut sixth = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sixth.set_read_timeout(Some(PATIENCE)).unwrap();
    let _ = sixth.write_all(b"ping\n");
    assert_eq!(read_outcome(&mut sixth), "closed");
    // The five still work, and keep working while they talk: a ping every 500 ms for 3 s,
    // longer than the idle timeout.
    let talker = five.pop().unwrap();
    let talking = std::thread::spawn(move || {
        let mut talker = talker;
        let mut reader = BufReader::new(talker.try_clone().unwrap());
        for _ in 0..6 {
            talker.write_all(b"ping\n").unwrap();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            assert_eq!(line, "pong\n");
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    // The silent ones are closed after the idle timeout.
    let started = Instant::now();
    for stream in &mut five {
        assert_eq!(read_outcome(stream), "closed");
    }
    let closed_after = started.elapsed();
    eprintln!("idle connections closed after {closed_after:?} (idle timeout 2s)");
    assert!(
        closed_after >= Duration::from_millis(1500),
        "closed too early"
    );
    talking.join().unwrap();
    // The slots are free again.
    drop(connected(port));

    kiln(&["rm", "-f", "limited"]).success();
    kiln(&["network", "rm", "lim"]).success();
    lab.root.assert_clean();
}
