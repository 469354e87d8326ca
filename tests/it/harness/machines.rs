//! Two stand-ins for real machines, for `kiln up --host`: network namespaces the test
//! makes, each holding one declared underlay address, joined by a veth pair — never the
//! machine's own namespace.
//!
//! ```text
//!   "m1" namespace                          "m2" namespace
//!   eth0 192.0.2.1/24  ═══════ veth ═══════  eth0 192.0.2.2/24
//! ```
//!
//! Kiln runs *inside* a machine's namespace (`Kiln::netns`, what `nsenter --net=PIN kiln …`
//! does), so for it that namespace is the machine, and the veth its network.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Machines {
    _dir: tempfile::TempDir,
    pins: [PathBuf; 2],
}

impl Machines {
    /// Two machines with these addresses (`192.0.2.1/24`), wired to each other (needs
    /// root, `ip` and `nsenter`).
    pub fn new(addresses: [&str; 2]) -> Machines {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let pins = [dir.path().join("m1.netns"), dir.path().join("m2.netns")];
        for pin in &pins {
            kiln::net::NetNs::create_pinned(pin).expect("a machine's namespace");
        }
        let made = Machines { _dir: dir, pins };
        made.ip(
            0,
            &format!(
                "link add eth0 type veth peer name eth0 netns {}",
                made.pins[1].display()
            ),
        );
        for (index, address) in addresses.iter().enumerate() {
            made.ip(index, "link set lo up");
            made.ip(index, &format!("address add {address} dev eth0"));
            made.ip(index, "link set eth0 up");
        }
        made
    }

    /// The pin of machine `index` (0 or 1), for `Kiln::netns` and `nsenter --net=`.
    pub fn pin(&self, index: usize) -> &Path {
        &self.pins[index]
    }

    /// A command run inside machine `index`'s namespace.
    pub fn command(&self, index: usize, argv: &[&str]) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.pins[index].display()))
            .args(argv);
        command
    }

    fn ip(&self, index: usize, args: &str) {
        let status = self
            .command(index, &["ip"])
            .args(args.split_whitespace())
            .status()
            .expect("nsenter runs");
        assert!(status.success(), "ip {args} failed");
    }

    /// What machine `index`'s `eth0` (its end of the veth) counts: (packets sent,
    /// packets received).
    pub fn wire_packets(&self, index: usize) -> (u64, u64) {
        let out = self
            .command(index, &["ip", "-s", "-j", "link", "show", "eth0"])
            .output()
            .expect("ip runs");
        let json: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("ip -j prints JSON");
        let stats = &json[0]["stats64"];
        (
            stats["tx"]["packets"].as_u64().expect("tx packets"),
            stats["rx"]["packets"].as_u64().expect("rx packets"),
        )
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        for pin in &self.pins {
            let _ = kiln::net::NetNs::remove_pinned(pin);
        }
    }
}
