//! kiln networks: containers find each other by name on a network and nowhere else, a
//! published port reaches a container, internal networks have no way out, bad input is
//! refused before anything exists, and nothing is left in the machine's namespace.

use nix::sys::signal::Signal;

use crate::harness::{Lab, Project, has_python, host, images, wait_for};

/// Connects to HOST:PORT from inside a container; prints `open`, `refused` or `timeout`.
const CONNECT: &str = r#"import socket, sys
s = socket.socket(); s.settimeout(1.5)
try:
    s.connect((sys.argv[1], int(sys.argv[2]))); print("open")
except ConnectionRefusedError: print("refused")
except (socket.timeout, TimeoutError): print("timeout")
except OSError as e: print("error", e.errno)
"#;

fn lab() -> Option<Lab> {
    if !has_python() {
        return None;
    }
    let images = images::python("py", r#"host-binary "/bin/ip""#);
    Lab::build(Project::new(&images).file("connect.py", CONNECT))
}

/// `kiln run --rm --network NET py python3 -c CONNECT HOST PORT` → what it printed.
fn connect(lab: &Lab, network: &str, host: &str, port: &str) -> String {
    let script = lab.project.path().join("connect.py");
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--network",
            network,
            "-v",
            &format!("{}:/connect.py:ro", script.display()),
            "py",
            "python3",
            "/connect.py",
            host,
            port,
        ])
        .run()
        .success()
        .word()
}

#[test]
fn names_ports_isolation_and_cleanup() {
    let Some(lab) = lab() else {
        return;
    };
    let links_before = host::machine_links();
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();

    kiln(&["network", "create", "front", "--subnet", "10.89.0.0/24"]).success();
    kiln(&[
        "network",
        "create",
        "back",
        "--subnet",
        "10.89.1.0/24",
        "--internal",
    ])
    .success();
    kiln(&["network", "create", "a/b", "--subnet", "10.89.9.0/24"])
        .failure()
        .stderr_contains("invalid network name `a/b`");
    kiln(&["network", "create", "other", "--subnet", "10.89.0.128/25"])
        .failure()
        .stderr_contains("overlaps");
    // A port of the test's choosing: never a fixed one another run may hold.
    let port = host::free_port();
    let publish = format!("{port}:8000");
    kiln(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--ip",
        "10.89.0.10",
        "--network-alias",
        "www",
        "-p",
        &publish,
        "py",
        "python3",
        "-m",
        "http.server",
        "8000",
    ])
    .success();
    kiln(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "py",
        "python3",
        "-m",
        "http.server",
        "5432",
    ])
    .success();

    // Its MAC comes from its address, so a replacement keeps neighbours' ARP caches right.
    kiln(&["exec", "web", "cat", "/sys/class/net/eth0/address"])
        .success()
        .stdout_is("02:42:0a:59:00:0a\n");
    // By name and alias, from another container on the same network.
    let on_front = |script: &str| {
        kiln(&[
            "run",
            "--rm",
            "--network",
            "front",
            "py",
            "python3",
            "-c",
            script,
        ])
    };
    let lookup = "import socket; print(socket.gethostbyname('web'), socket.gethostbyname('www'))";
    on_front(lookup)
        .success()
        .stdout_is("10.89.0.10 10.89.0.10\n");
    wait_for("web to listen", || {
        connect(&lab, "front", "web", "8000") == "open"
    });
    // A name on another network does not resolve; its address is silently unreachable.
    let unknown = "import socket\ntry: socket.gethostbyname('db'); print('found')\nexcept OSError: print('unknown')";
    on_front(unknown).success().stdout_is("unknown\n");
    let db_ip = lab
        .kiln()
        .args(["network", "inspect", "back", "--format", "json"])
        .run()
        .success()
        .json()["members"][0]["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(connect(&lab, "front", &db_ip, "5432"), "timeout");
    assert_eq!(connect(&lab, "back", "web", "8000"), "error -2", "no name");
    assert_eq!(
        connect(&lab, "back", "10.89.0.10", "8000"),
        "error 101",
        "an internal network has no route out"
    );

    // The published port, from the machine.
    let body = std::process::Command::new("python3")
        .args([
            "-c",
            &format!(
                "import urllib.request as u; print(u.urlopen('http://127.0.0.1:{port}/').status)"
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&body.stdout), "200\n");
    // A host port in use is refused before the container exists.
    kiln(&[
        "run",
        "--rm",
        "--network",
        "front",
        "-p",
        &format!("{port}:80"),
        "py",
        "true",
    ])
    .code(125)
    .stderr_contains(&format!("host port {port} is already in use"));
    kiln(&["run", "--rm", "--network", "nowhere", "py", "true"])
        .code(125)
        .stderr_contains("nowhere");
    kiln(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--ip",
        "10.99.0.1",
        "py",
        "true",
    ])
    .code(125)
    .stderr_contains("10.99.0.1");
    kiln(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--ip",
        "10.89.0.10",
        "py",
        "true",
    ])
    .code(125)
    .stderr_contains("10.89.0.10");
    kiln(&["run", "--rm", "-p", "8080:80", "py", "true"])
        .code(125)
        .stderr_contains("publishing a port needs a network");

    let inspect = kiln(&["network", "inspect", "front", "--format", "json"])
        .success()
        .json();
    assert_eq!(inspect["gateway"], "10.89.0.1");
    let members = inspect["members"].as_array().unwrap();
    assert_eq!(
        members.len(),
        1,
        "--rm containers left the network: {members:?}"
    );
    assert_eq!(members[0]["name"], "web");
    assert!(members[0]["rx_bytes"].as_u64().unwrap() > 0);

    kiln(&["network", "rm", "front"])
        .failure()
        .stderr_contains("in use by web");
    assert!(
        kiln(&["network", "exec", "--", "ip", "-o", "link"])
            .success()
            .stdout()
            .contains("kb-front")
    );
    kiln(&["rm", "-f", "web", "db"]).success();
    kiln(&["network", "rm", "front", "back"]).success();
    assert!(
        !lab.path().join("net/host.netns").exists(),
        "the kiln host namespace is gone"
    );
    assert!(
        !lab.path().join("net/netd.pid").exists(),
        "the DNS daemon is gone"
    );
    assert_eq!(
        host::machine_links(),
        links_before,
        "the machine's own links are untouched"
    );
    lab.root.assert_clean();
}

/// The supervisor and its container killed with SIGKILL (as a crash would): `kiln rm -f`
/// gives the address back and removes the veth, and the network can go.
#[test]
fn a_crash_is_cleaned_up_by_rm() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();
    kiln(&["network", "create", "lab", "--subnet", "10.89.5.0/24"]).success();
    let id = kiln(&[
        "run",
        "-d",
        "--name",
        "victim",
        "--network",
        "lab",
        "py",
        "sleep",
        "1000",
    ])
    .success()
    .stdout()
    .trim()
    .to_string();
    let state = lab.root.record(&id);
    for key in ["supervisor_pid", "pid"] {
        host::signal(state["state"][key].as_i64().unwrap(), Signal::SIGKILL);
    }
    let members = || {
        lab.kiln()
            .args(["network", "inspect", "lab", "--format", "json"])
            .run()
            .success()
            .json()["members"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(members(), 1, "the crash left the membership");
    kiln(&["rm", "-f", "victim"]).success();
    assert_eq!(members(), 0);
    let links = kiln(&["network", "exec", "--", "ip", "-o", "link"])
        .success()
        .stdout();
    assert!(!links.contains("kv"), "a host veth is left: {links}");
    kiln(&["network", "rm", "lab"]).success();
    lab.root.assert_clean();
}
