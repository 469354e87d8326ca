//! The cost of attaching one container network namespace to a bridge in the kiln host
//! namespace: veth pair, peer into the container as eth0, bridge port, address, default
//! route, links up — the network part of a container start. Goal: under 5 ms.
//!
//! Two ways are measured: the long way (both ends created in the host namespace, then the
//! peer moved and renamed) and the direct one (peer created inside the container under its
//! final name). Each iteration uses a fresh, unpinned container namespace, created outside
//! the timed part.
//!
//! Also measured: `HostNamespace::ensure` on an existing pin (open, sysctls, `lo` up).
//!
//! Run as root with `cargo bench --bench netlink`; without root it says so and measures
//! nothing. Everything lives in a temporary kiln host namespace that is removed at the end;
//! the machine's own namespace is never touched.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnetwork::IpNetwork;

use kiln::net::{HostNamespace, NetNs, Netlink};

const BRIDGE: &str = "kb-bench";

fn attach(host: &Netlink, container: &NetNs, n: u32, direct: bool) {
    let host_end = format!("kvb{n}");
    if direct {
        host.create_veth_into(&host_end, "eth0", container)
            .expect("veth");
    } else {
        let peer = format!("kpb{n}");
        host.create_veth(&host_end, &peer).expect("veth");
        host.move_to_netns(&peer, container, Some("eth0"))
            .expect("move");
    }
    host.set_master(&host_end, BRIDGE).expect("master");
    host.set_up(&host_end).expect("up");
    let inside = Netlink::open_in(container).expect("netlink in the container");
    let address: IpNetwork = format!("10.66.{}.{}/16", n / 250, n % 250 + 2)
        .parse()
        .unwrap();
    inside.add_address("eth0", address).expect("address");
    inside.set_up("eth0").expect("up");
    inside.set_up("lo").expect("lo up");
    inside
        .add_default_route("10.66.255.254".parse().unwrap())
        .expect("route");
}

fn bench_attach(c: &mut Criterion) {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: the netlink bench needs root");
        return;
    }
    let root = tempfile::tempdir().expect("temp dir");
    let host_ns = HostNamespace::ensure(root.path()).expect("kiln host namespace");
    let host = Netlink::open_in(&host_ns).expect("netlink");
    host.create_bridge(BRIDGE).expect("bridge");
    host.add_address(BRIDGE, "10.66.255.254/16".parse().unwrap())
        .expect("bridge address");
    host.set_up(BRIDGE).expect("bridge up");

    let mut group = c.benchmark_group("attach container to bridge");
    let mut n = 0u32;
    for (label, direct) in [
        ("create, move, rename", false),
        ("peer created inside", true),
    ] {
        group.bench_function(label, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    n += 1;
                    let container = NetNs::create_unpinned().expect("container namespace");
                    let started = Instant::now();
                    attach(&host, &container, n, direct);
                    total += started.elapsed();
                    // Removing the host end removes the pair; the namespace goes with its fd.
                    host.delete_link(&format!("kvb{n}")).expect("delete");
                }
                total
            })
        });
    }
    group.finish();

    // What every kiln command that touches networks pays first.
    c.bench_function("HostNamespace::ensure (already pinned)", |b| {
        b.iter(|| HostNamespace::ensure(root.path()).expect("ensure"))
    });

    let left: Vec<String> = host
        .links()
        .expect("links")
        .into_iter()
        .map(|l| l.name)
        .filter(|name| name != "lo" && name != BRIDGE)
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    drop(host);
    drop(host_ns);
    HostNamespace::remove(root.path()).expect("remove the kiln host namespace");
}

criterion_group!(benches, bench_attach);
criterion_main!(benches);
