//! A stand-in for the machine and the world outside it, for egress tests: two network
//! namespaces the test makes, never the machine's own namespace nor a real outside address.
//!
//! ```text
//!   "machine" namespace                         "world" namespace
//!   out0 10.250.0.1/30  ═════ veth ═════  in0 10.250.0.2/30
//!   default via 10.250.0.2                lo: 192.0.2.80 (HTTP :8080), 192.0.2.53 (DNS :53)
//! ```
//!
//! kiln runs *inside* the "machine" namespace ([`World::kiln`]), so whatever it starts
//! there (pasta, its DNS daemon) sees this machine, and the resolv.conf it forwards to
//! names the world's DNS server. The world's DNS answers `world.example` with
//! 192.0.2.80 (a documentation address, TEST-NET-1, that exists only in here) and
//! NXDOMAIN for anything else; its HTTP server says [`World::GREETING`].

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::Kiln;

/// What the world's DNS server runs (Python, one UDP socket).
const DNS_SERVER: &str = r#"
import socket, struct
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("192.0.2.53", 53))
while True:
    q, peer = s.recvfrom(4096)
    i, labels = 12, []
    while i < len(q) and q[i]:
        labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace").lower())
        i += q[i] + 1
    name, end = ".".join(labels), i + 5
    qtype = q[i + 1:i + 3]
    known = name == "world.example"
    answer = known and qtype == b"\x00\x01"
    flags = 0x8180 if known else 0x8183
    r = q[:2] + struct.pack(">HHHHH", flags, 1, 1 if answer else 0, 0, 0) + q[12:end]
    if answer:
        r += b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.80")
    s.sendto(r, peer)
"#;

pub struct World {
    dir: tempfile::TempDir,
    machine: PathBuf,
    world: PathBuf,
    servers: Vec<Child>,
}

impl World {
    /// What `http://192.0.2.80:8080/` (alias `http://world.example:8080/`) answers.
    pub const GREETING: &'static str = "hello from outside";

    /// Makes both namespaces, wires them and starts the servers (needs root, `ip`,
    /// `nsenter` and `python3`).
    pub fn new() -> World {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let machine = dir.path().join("machine.netns");
        let world = dir.path().join("world.netns");
        kiln::net::NetNs::create_pinned(&machine).expect("the machine's namespace");
        kiln::net::NetNs::create_pinned(&world).expect("the world's namespace");
        let mut made = World {
            dir,
            machine,
            world,
            servers: Vec::new(),
        };
        let machine = made.machine.clone();
        let world = made.world.clone();
        let ip = |ns: &Path, args: &str| {
            let status = Command::new("nsenter")
                .arg(format!("--net={}", ns.display()))
                .arg("ip")
                .args(args.split_whitespace())
                .status()
                .expect("nsenter runs");
            assert!(status.success(), "ip {args} failed");
        };
        ip(&machine, "link set lo up");
        ip(&world, "link set lo up");
        ip(&machine, "link add out0 type veth peer name in0");
        ip(&machine, &format!("link set in0 netns {}", world.display()));
        ip(&machine, "address add 10.250.0.1/30 dev out0");
        ip(&machine, "link set out0 up");
        ip(&machine, "route add default via 10.250.0.2");
        ip(&world, "address add 10.250.0.2/30 dev in0");
        ip(&world, "link set in0 up");
        ip(&world, "address add 192.0.2.80/32 dev lo");
        ip(&world, "address add 192.0.2.53/32 dev lo");
        let site = made.dir.path().join("site");
        std::fs::create_dir(&site).expect("the site's directory");
        std::fs::write(site.join("index.html"), World::GREETING).expect("the site's page");
        let http = made
            .in_world(&["python3", "-m", "http.server", "--bind", "192.0.2.80"])
            .args(["--directory"])
            .arg(&site)
            .arg("8080")
            .spawn()
            .expect("the world's HTTP server starts");
        made.servers.push(http);
        let dns = made
            .in_world(&["python3", "-c", DNS_SERVER])
            .spawn()
            .expect("the world's DNS server starts");
        made.servers.push(dns);
        std::fs::write(made.resolv_conf(), "nameserver 192.0.2.53\n").expect("resolv.conf");
        super::wait_for("the world's servers listen", || {
            made.in_world(&["python3", "-c", PROBE])
                .status()
                .is_ok_and(|s| s.success())
        });
        made
    }

    /// A command run inside the world's namespace (nsenter execs the program itself, so a
    /// spawned child's pid is the program's).
    fn in_world(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.world.display()))
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// The "machine" namespace's pin.
    pub fn machine(&self) -> &Path {
        &self.machine
    }

    /// The resolv.conf kiln is told to read the machine's resolvers from.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.path().join("resolv.conf")
    }

    /// `kiln` on this world's machine: in its namespace, with its resolv.conf.
    pub fn kiln(&self, kiln: Kiln) -> Kiln {
        kiln.netns(&self.machine)
            .env("KILN_RESOLV_CONF", self.resolv_conf())
    }

    /// `ip -o link`, `ip -o address`, `ip route` and `nft list ruleset` as seen in the
    /// namespace pinned at `pin` (`None`: the machine's own): what egress must not change.
    pub fn network_of(pin: Option<&Path>) -> String {
        let mut all = String::new();
        for argv in [
            &["ip", "-o", "link", "show"][..],
            &["ip", "-o", "address", "show"],
            &["ip", "route", "show", "table", "all"],
            &["nft", "list", "ruleset"],
        ] {
            let mut command = match pin {
                Some(pin) => {
                    let mut command = Command::new("nsenter");
                    command.arg(format!("--net={}", pin.display())).args(argv);
                    command
                }
                None => {
                    let mut command = Command::new(argv[0]);
                    command.args(&argv[1..]);
                    command
                }
            };
            let out = command.output().expect("ip and nft run");
            all.push_str(&format!("$ {}\n", argv.join(" ")));
            all.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        // Counters and link states move on their own: only the names and settings count.
        // An IPv6 link-local address is the kernel's own and finishes its duplicate address
        // detection when it likes (`tentative`, then a `local fe80::…` route), and adds the
        // IPv6 multicast route of an interface once IPv6 is up on it: left out.
        all.lines()
            .filter(|line| !line.contains("fe80:") && !line.contains("ff00::/8"))
            .map(|line| {
                line.split_whitespace()
                    .filter(|w| !w.starts_with("state") && !w.contains("UP") && !w.contains("DOWN"))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Exits 0 once both servers answer (used while they start).
const PROBE: &str = r#"
import socket, urllib.request
urllib.request.urlopen("http://192.0.2.80:8080/", timeout=1).read()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1)
s.sendto(b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x05world\x07example\x00\x00\x01\x00\x01", ("192.0.2.53", 53))
s.recv(512)
"#;

impl Drop for World {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = kiln::net::NetNs::remove_pinned(&self.machine);
        let _ = kiln::net::NetNs::remove_pinned(&self.world);
    }
}
