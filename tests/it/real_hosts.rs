//! `kiln up --host`: each real machine brings up its own share of a multi-host project,
//! and the overlay reaches the other machines through the machine's own network. Two
//! namespaces the test makes play the machines m1 and m2 (joined by a veth, holding the
//! addresses kiln.kdl declares); a kiln with a state root of its own runs inside each
//! (`nsenter --net=…`), as it would on two machines.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

use crate::harness::machines::Machines;
use crate::harness::world::World;
use crate::harness::{Kiln, Root, example, has_python, is_root, which};

/// (tx, rx) packets of the VTEP of `network` on the one host a root runs.
fn vtep_packets(kiln: Kiln, network: &str) -> (u64, u64) {
    let inspected = kiln
        .args(["network", "inspect", network, "--format", "json"])
        .run()
        .success()
        .json();
    let hosts = inspected["hosts"].as_array().expect("hosts");
    assert_eq!(hosts.len(), 1, "one host per machine: {inspected}");
    let vtep = &hosts[0]["vtep"];
    assert_eq!(vtep["up"], true, "{inspected}");
    (
        vtep["tx_packets"].as_u64().unwrap(),
        vtep["rx_packets"].as_u64().unwrap(),
    )
}

/// The names of the containers a root runs, sorted.
fn names(root: &Root) -> Vec<String> {
    root.kiln()
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .names()
}

#[test]
fn two_machines_each_run_their_share_and_talk_over_vxlan_through_their_own_network() {
    if !is_root() || !which("nsenter") || !which("tcpdump") || !has_python() {
        return;
    }
    let machines = Machines::new(["192.0.2.1/24", "192.0.2.2/24"]);
    let roots = [Root::new(), Root::new()];
    let file = example("two-hosts");
    let on = |index: usize, args: &[&str]| {
        roots[index]
            .kiln()
            .netns(machines.pin(index))
            .args(args.iter().copied())
    };
    let network = |index: usize| World::network_of(Some(machines.pin(index)));
    let before = [network(0), network(1)];

    // A host the file does not declare, and a machine that is not the host it claims.
    on(0, &["up", "-d", "--host", "m9", "-f", &file])
        .run()
        .failure()
        .says("declares no host `m9`")
        .says("`m1`, `m2`");
    on(0, &["up", "-d", "--host", "m2", "-f", &file])
        .run()
        .failure()
        .says("this machine has no address 192.0.2.2");
    roots[0].assert_clean();

    on(1, &["up", "-d", "--host", "m2", "-f", &file])
        .run()
        .success()
        .stderr_contains("b: healthy")
        .stderr_contains("c: started");
    on(0, &["up", "-d", "--host", "m1", "-f", &file])
        .run()
        .success()
        .stderr_contains("a: started");
    // Each machine runs its share only.
    assert_eq!(names(&roots[0]), ["a"]);
    assert_eq!(names(&roots[1]), ["b", "c"]);
    // Nothing was added to either machine's network: the VTEPs live in kiln's namespace,
    // and only their UDP sockets stay in the machine's.
    assert_eq!(network(0), before[0]);
    assert_eq!(network(1), before[1]);
    for index in 0..2 {
        let sockets = machines
            .command(index, &["ss", "-Hnlu", "sport", "=", ":4789"])
            .output()
            .expect("ss runs");
        assert!(
            String::from_utf8_lossy(&sockets.stdout).contains(":4789"),
            "no VXLAN socket in machine {index}'s namespace"
        );
    }

    // Capture on m2's end of the wire while m1 tests: what crosses is VXLAN, from m1's
    // declared address to m2's port 4789. (Only what m1 sends: m2's own answers to m1 go to
    // port 4789 too, and the first packet seen could be one of them.)
    let mut capture = machines
        .command(
            1,
            &[
                "tcpdump",
                "-i",
                "eth0",
                "-n",
                "-l",
                "-c",
                "1",
                "udp",
                "dst",
                "port",
                "4789",
                "and",
                "src",
                "host",
                "192.0.2.1",
            ],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tcpdump starts");
    let said = BufReader::new(capture.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .find(|line| line.contains("listening on"));
    assert!(
        said.is_some_and(|l| l.contains("eth0")),
        "tcpdump does not listen"
    );
    let wire = machines.wire_packets(0);
    let vtep = [
        vtep_packets(on(0, &[]), "two-hosts/mesh"),
        vtep_packets(on(1, &[]), "two-hosts/mesh"),
    ];
    // m1 checks what it can: the assertions from its own container, a (HTTP and DNS by
    // name to b on m2, ping, isolation); those from b and c are m2's to check.
    let tested = on(0, &["test", "--no-up", "--host", "m1", "-f", &file])
        .run()
        .success()
        .stderr_contains("3 from containers on other hosts left out");
    assert!(
        tested.stdout().ends_with("4 passed, 0 failed\n"),
        "{}",
        tested.stdout()
    );
    let captured = capture.wait_with_output().expect("tcpdump ends");
    let line = String::from_utf8_lossy(&captured.stdout);
    assert!(line.contains("192.0.2.1."), "{line}");
    assert!(line.contains("> 192.0.2.2.4789: VXLAN"), "{line}");
    let (sent, received) = machines.wire_packets(0);
    assert!(
        sent > wire.0 && received > wire.1,
        "{wire:?} {sent} {received}"
    );
    let (m1_tx, _) = vtep_packets(on(0, &[]), "two-hosts/mesh");
    let (_, m2_rx) = vtep_packets(on(1, &[]), "two-hosts/mesh");
    assert!(
        m1_tx > vtep[0].0 && m2_rx > vtep[1].1,
        "{vtep:?} {m1_tx} {m2_rx}"
    );
    // And m2 checks its own: b resolves a (on m1) by name from the file.
    let tested = on(1, &["test", "--no-up", "--host", "m2", "-f", &file])
        .run()
        .success();
    assert!(
        tested.stdout().ends_with("3 passed, 0 failed\n"),
        "{}",
        tested.stdout()
    );

    for (index, host) in [(0, "m1"), (1, "m2")] {
        on(index, &["down", "--host", host, "-f", &file])
            .run()
            .success()
            .stderr_contains(&format!("two-hosts: down on {host}"));
        roots[index].assert_clean();
        assert_eq!(network(index), before[index]);
    }
}

#[test]
fn test_with_host_runs_the_share_of_that_host_and_says_what_it_left_out() {
    if !is_root() || !which("nsenter") || !has_python() {
        return;
    }
    // `kiln test --host` brings the share up itself, like `kiln test` does.
    let machines = Machines::new(["192.0.2.1/24", "192.0.2.2/24"]);
    let root = Root::new();
    let file = example("two-hosts");
    let on = |args: &[&str]| {
        root.kiln()
            .netns(machines.pin(1))
            .args(args.iter().copied())
    };
    let tested = on(&["test", "--host", "m2", "-f", &file, "overlays are isolated"])
        .run()
        .success()
        .stderr_contains("1 from containers on other hosts left out");
    assert!(
        tested.stdout().ends_with("2 passed, 0 failed\n"),
        "{}",
        tested.stdout()
    );
    on(&["down", "--host", "m3", "-f", &file])
        .run()
        .failure()
        .says("declares no host `m3`");
    on(&["down", "--host", "m2", "-f", &file]).run().success();
    root.assert_clean();
}

#[test]
fn a_container_started_by_hand_on_a_simulated_host_is_reached_from_another_host() {
    if !is_root() || !has_python() {
        return;
    }
    let root = Root::new();
    let file = example("two-hosts");
    let kiln = |args: &[&str]| root.kiln().args(args.iter().copied());
    kiln(&["up", "-d", "-f", &file]).run().success();
    kiln(&[
        "run",
        "-d",
        "--host",
        "m9",
        "--network",
        "two-hosts/mesh",
        "two-hosts/web",
    ])
    .run()
    .code(125)
    .says("no declared host m9 is up on this machine")
    .says("`m1` of two-hosts");
    // A web server started by hand on m1, on the overlay.
    kiln(&[
        "run",
        "-d",
        "--name",
        "hand",
        "--host",
        "m1",
        "--network",
        "two-hosts/mesh",
        "two-hosts/web",
    ])
    .run()
    .success();
    let inspected = kiln(&["network", "inspect", "two-hosts/mesh", "--format", "json"])
        .run()
        .success()
        .json();
    let address = inspected["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["host"] == "m1")
        .flat_map(|h| h["members"].as_array().unwrap())
        .find(|m| m["name"] == "hand")
        .and_then(|m| m["address"].as_str())
        .unwrap_or_else(|| panic!("hand is on m1's side of mesh: {inspected}"))
        .to_string();
    // From m1's range for containers started by hand (the upper half, m1's quarter).
    let octets: Vec<u8> = address.split('.').map(|o| o.parse().unwrap()).collect();
    assert!(
        octets[..2] == [10, 77] && (128..192).contains(&octets[2]),
        "{address}"
    );
    // b, on m2, was never told of it: its ARP for the address crosses to m1 and `hand`
    // answers from there.
    let fetch = format!(
        "import urllib.request\nprint(urllib.request.urlopen('http://{address}:8080/', timeout=5).read().decode())"
    );
    crate::harness::eventually("b reaches hand across the hosts", || {
        let ran = kiln(&["exec", "b", "python3", "-c", &fetch]).run();
        if ran.ok() { Ok(()) } else { Err(ran.stderr()) }
    });
    kiln(&["exec", "b", "python3", "-c", &fetch])
        .run()
        .success()
        .stdout_contains("hello from the other host");
    kiln(&["rm", "-f", "hand"]).run().success();
    kiln(&["down", "-f", &file]).run().success();
    root.assert_clean();
}
