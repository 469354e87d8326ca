//! Anti-spoofing: a container answering ARP for the gateway's and a
//! neighbour's addresses, stealing the neighbour's MAC and sending IP with a forged source
//! gets none of their traffic; its forged frames are dropped at its bridge port and counted,
//! and the others' traffic goes on as before. The rules read back with `nft`, and go away
//! with the container.

use std::process::{Command, Stdio};

use crate::harness::{Lab, Project, has_python, images, which};

const GATEWAY: &str = "10.89.44.1";
const VICTIM: &str = "10.89.44.10";
const CLIENT: &str = "10.89.44.20";
const ATTACKER: &str = "10.89.44.30";
/// kiln's MAC for an address: 02:42 and the address.
const ATTACKER_MAC: &str = "02:42:0a:59:2c:1e";

/// Answers every datagram on port 5000 with `ack`.
const VICTIM_PY: &str = r#"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 5000))
while True:
    data, peer = s.recvfrom(2048)
    s.sendto(b"ack", peer)
"#;

/// `prime`: one datagram to the victim and one name lookup (ARP entries for the victim
/// and the gateway). `run SECONDS`: datagrams to the victim every 50 ms (counting the
/// acks), a lookup of `victim` each time, and a listener on port 6000 for forged packets.
const CLIENT_PY: &str = r#"import socket, sys, time
victim = sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.2)
if sys.argv[1] == "prime":
    s.sendto(b"hello", (victim, 5000)); s.recv(16)
    print(socket.gethostbyname("victim")); sys.exit()
forged = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); forged.bind(("0.0.0.0", 6000))
forged.setblocking(False)
sent = acked = resolved = got_forged = 0
end = time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    sent += 1
    s.sendto(b"hello", (victim, 5000))
    try:
        if s.recv(16) == b"ack": acked += 1
    except OSError: pass
    try:
        if socket.gethostbyname("victim") == victim: resolved += 1
    except OSError: pass
    try:
        while forged.recv(2048): got_forged += 1
    except OSError: pass
    time.sleep(0.05)
print(sent, acked, resolved, got_forged)
"#;

/// The attacker: for SECONDS, every 50 ms, ARP replies claiming the gateway and the victim
/// (to the client, and gratuitous), the same in a priority-tagged VLAN frame, the victim's
/// MAC as its own source, and a UDP packet from the victim's address to the client. Counts
/// the IPv4 packets it receives that were meant for another address.
const ATTACK_PY: &str = r#"import socket, struct, sys, time
gateway, victim, client, me, seconds = sys.argv[1:6]
def mac(text): return bytes.fromhex(text.replace(":", ""))
def kiln_mac(ip): return b"\x02\x42" + socket.inet_aton(ip)
my_mac = mac(open("/sys/class/net/eth0/address").read().strip())
bcast = b"\xff" * 6
def arp(eth_src, dst, op, sha, spa, tha, tpa):
    return (dst + eth_src + b"\x08\x06" + struct.pack("!HHBBH", 1, 0x0800, 6, 4, op)
            + sha + socket.inet_aton(spa) + tha + socket.inet_aton(tpa))
def checksum(data):
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16: total = (total & 0xffff) + (total >> 16)
    return ~total & 0xffff
def udp(src, dst, payload):
    udp = struct.pack("!HHHH", 4000, 6000, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     socket.inet_aton(src), socket.inet_aton(dst))
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return kiln_mac(dst) + my_mac + b"\x08\x00" + ip + udp
frames = []
for claimed in (gateway, victim):
    frames.append(arp(my_mac, kiln_mac(client), 2, my_mac, claimed, kiln_mac(client), client))
    frames.append(arp(my_mac, bcast, 2, my_mac, claimed, bcast, claimed))
tagged = arp(my_mac, kiln_mac(client), 2, my_mac, gateway, kiln_mac(client), client)
frames.append(tagged[:12] + b"\x81\x00\x00\x00" + tagged[12:])
frames.append(arp(kiln_mac(victim), bcast, 2, kiln_mac(victim), victim, bcast, victim))
frames.append(udp(victim, client, b"forged"))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(("eth0", 0)); s.settimeout(0.05)
sniffed = 0
end = time.monotonic() + float(seconds)
while time.monotonic() < end:
    for frame in frames: s.send(frame)
    try:
        while True:
            frame, info = s.recvfrom(65535)
            if info[2] == socket.PACKET_OUTGOING or frame[12:14] != b"\x08\x00": continue
            dst = frame[30:34]
            # Unicast IPv4 for another address, whatever its MAC (a veth hands a packet
            # socket every frame the bridge sends it, not only those for its own MAC).
            if dst != socket.inet_aton(me) and dst[3] != 255 and not 224 <= dst[0] <= 239:
                sniffed += 1
    except socket.timeout: pass
print("sniffed", sniffed)
"#;

fn lab() -> Option<Lab> {
    if !has_python() {
        return None;
    }
    let kdl = format!(
        r#"{}
image "spoof" {{
    from "py"
    copy "victim.py" "/victim.py"
    copy "client.py" "/client.py"
    copy "attack.py" "/attack.py"
}}
project "spoof"
network "lab" subnet="10.89.44.0/24"
container "victim" image="spoof" {{
    network "lab" ip="{VICTIM}"
    cmd "python3" "/victim.py"
}}
container "client" image="spoof" {{
    network "lab" ip="{CLIENT}"
    cmd "sleep" "1000"
}}
container "attacker" image="spoof" {{
    network "lab" ip="{ATTACKER}"
    cmd "sleep" "1000"
}}
"#,
        images::python("py", r#"host-binary "/bin/ip""#)
    );
    Lab::build(
        Project::new(&kdl)
            .file("victim.py", VICTIM_PY)
            .file("client.py", CLIENT_PY)
            .file("attack.py", ATTACK_PY),
    )
}

fn exec(lab: &Lab, args: &[&str]) -> String {
    lab.kiln()
        .args(["exec"])
        .args(args)
        .run()
        .success()
        .stdout()
}

/// The drops of a member, by reason (`network inspect --format json`).
fn drops(lab: &Lab, name: &str) -> serde_json::Value {
    let inspect = lab
        .kiln()
        .args(["network", "inspect", "lab", "--format", "json"])
        .run()
        .success()
        .json();
    let member = inspect["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .cloned()
        .unwrap();
    assert_eq!(member["anti_spoofing"], "on", "{member}");
    let mut by_reason = serde_json::Map::new();
    for d in member["spoofed_dropped"].as_array().unwrap() {
        by_reason.insert(d["reason"].as_str().unwrap().into(), d["packets"].clone());
    }
    serde_json::Value::Object(by_reason)
}

#[test]
fn a_spoofing_container_gets_none_of_its_neighbours_traffic() {
    let Some(lab) = lab() else {
        return;
    };
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();
    kiln(&["up", "-d"]).success();
    kiln(&["network", "inspect", "lab"])
        .success()
        .stdout_contains("anti-spoofing: on");

    assert_eq!(
        exec(&lab, &["client", "python3", "/client.py", "prime", VICTIM]),
        format!("{VICTIM}\n")
    );
    // The attack and the client's traffic, at the same time.
    let attacker = lab
        .kiln()
        .command()
        .args(["exec", "attacker", "python3", "/attack.py"])
        .args([GATEWAY, VICTIM, CLIENT, ATTACKER, "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let client = exec(
        &lab,
        &["client", "python3", "/client.py", "run", VICTIM, "3"],
    );
    let attacker = attacker.wait_with_output().unwrap();
    assert!(attacker.status.success());
    let attacker = String::from_utf8_lossy(&attacker.stdout).into_owned();
    eprintln!("client (sent acked resolved forged): {client}attacker: {attacker}");

    let counts: Vec<u32> = client
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    let [sent, acked, resolved, forged] = counts[..] else {
        panic!("client printed {client}");
    };
    assert_eq!(
        forged, 0,
        "a packet with a forged source reached the client"
    );
    assert_eq!(
        attacker.trim(),
        "sniffed 0",
        "the attacker received others' traffic"
    );
    // Normal traffic works throughout (UDP may lose one or two to a slow machine).
    assert!(acked + 2 >= sent, "the victim answered {acked} of {sent}");
    assert!(resolved + 2 >= sent, "DNS answered {resolved} of {sent}");
    // The client's neighbours are who they are.
    let neighbours = exec(&lab, &["client", "ip", "neigh", "show"]);
    let poisoned: Vec<&str> = neighbours
        .lines()
        .filter(|l| l.starts_with(&format!("{GATEWAY} ")) || l.starts_with(&format!("{VICTIM} ")))
        .filter(|l| l.contains(ATTACKER_MAC))
        .collect();
    assert!(poisoned.is_empty(), "poisoned ARP entries: {poisoned:?}");

    // Every kind of forgery was dropped at the attacker's port, and counted.
    let dropped = drops(&lab, "attacker");
    for reason in [
        "source MAC",
        "not IPv4 or ARP",
        "ARP sender address",
        "IPv4 source",
    ] {
        assert!(
            dropped[reason].as_u64().unwrap() > 0,
            "nothing dropped for {reason}: {dropped}"
        );
    }
    for innocent in ["victim", "client"] {
        let dropped = drops(&lab, innocent);
        assert!(
            dropped.as_object().unwrap().values().all(|p| p == 0),
            "{innocent} had frames dropped: {dropped}"
        );
    }

    // The rules as nft reads them back from kiln's namespace (never the machine's).
    let kiln_ruleset = || {
        kiln(&[
            "network", "exec", "--", "nft", "list", "table", "netdev", "kiln",
        ])
        .success()
        .stdout()
    };
    if which("nft") {
        let ruleset = kiln_ruleset();
        assert_eq!(
            ruleset.matches("type filter hook ingress device").count(),
            3
        );
        assert!(
            ruleset.contains("comment \"kiln: ARP sender address\""),
            "{ruleset}"
        );
    }
    let machine = Command::new("nft").args(["list", "tables"]).output();
    if let Ok(machine) = machine {
        assert!(
            !String::from_utf8_lossy(&machine.stdout).contains("netdev kiln"),
            "the machine's own ruleset was touched"
        );
    }

    // Removed with the attachment.
    kiln(&["rm", "-f", "attacker"]).success();
    if which("nft") {
        let ruleset = kiln_ruleset();
        assert_eq!(
            ruleset.matches("type filter hook ingress device").count(),
            2
        );
    }
    kiln(&["down"]).success();
    lab.root.assert_clean();
}
