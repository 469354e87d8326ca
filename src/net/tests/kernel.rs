//! Real namespaces, bridges, veths and qdiscs. They need root; without it they say so and
//! pass vacuously (CI runs them as root). Every test works in namespaces it created, sends
//! traffic only to addresses inside them, and checks at the end that its pins, mounts,
//! namespaces and threads are gone and that the machine's own namespace gained no link.

use std::collections::BTreeSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;

use crate::net::{HostNamespace, NetError, NetNs, Netem, Netlink, command_in, exec_in, run_in};

macro_rules! require_root {
    () => {
        if !crate::test_support::is_root() {
            return;
        }
    };
}

fn net(text: &str) -> IpNetwork {
    text.parse().unwrap()
}

/// Interface names of the machine's own namespace (this test thread never leaves it).
pub(super) fn machine_links() -> BTreeSet<String> {
    let output = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .expect("run ip");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap().to_string())
        .collect()
}

/// Whether this process still references namespace `inode`: through a descriptor, a thread
/// inside it, or a mount (a pin).
fn references(inode: u64) -> Vec<String> {
    let needle = format!("net:[{inode}]");
    let mut found = Vec::new();
    for dir in ["/proc/self/fd", "/proc/self/task"] {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let link = if dir.ends_with("task") {
                entry.path().join("ns/net")
            } else {
                entry.path()
            };
            if std::fs::read_link(&link).is_ok_and(|target| target.to_string_lossy() == needle) {
                found.push(link.display().to_string());
            }
        }
    }
    // Sockets hold the namespace they were created in (a Netlink handle, a listener).
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_socket = std::fs::read_link(entry.path())
            .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"));
        let Ok(fd) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if is_socket && socket_namespace(fd) == Some(inode) {
            found.push(format!("socket fd {fd}"));
        }
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mountinfo
            .lines()
            .filter(|line| line.contains(&needle))
            .map(str::to_string),
    );
    found
}

/// Fails unless nothing in this process refers to namespace `inode` any more. A helper
/// thread may still be exiting after join returned, so the kernel gets a moment.
pub(super) fn assert_released(inode: u64) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = references(inode);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "namespace {inode} still held: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The inode of the namespace a socket belongs to (SIOCGSKNS), if `fd` is still one.
fn socket_namespace(fd: i32) -> Option<u64> {
    const SIOCGSKNS: libc::c_ulong = 0x894C;
    // SAFETY: SIOCGSKNS takes no argument and returns a new descriptor (or -1); a stale
    // `fd` number just makes it fail.
    let ns = unsafe { libc::ioctl(fd, SIOCGSKNS as _) };
    if ns < 0 {
        return None;
    }
    // SAFETY: the ioctl returned a fresh descriptor that nothing else owns.
    let ns = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(ns) };
    nix::sys::stat::fstat(&ns).ok().map(|stat| stat.st_ino)
}

/// A test's world: a state root with its kiln host namespace, plus the machine's links to
/// compare against at the end.
struct World {
    root: tempfile::TempDir,
    host: Option<NetNs>,
    machine_before: BTreeSet<String>,
    namespaces: Vec<u64>,
}

impl World {
    fn new() -> World {
        let machine_before = machine_links();
        let root = tempfile::tempdir().unwrap();
        let host = HostNamespace::ensure(root.path()).unwrap();
        let namespaces = vec![host.inode()];
        World {
            root,
            host: Some(host),
            machine_before,
            namespaces,
        }
    }

    fn host(&self) -> &NetNs {
        self.host.as_ref().unwrap()
    }

    fn netlink(&self) -> Netlink {
        Netlink::open_in(self.host()).unwrap()
    }

    fn container(&mut self) -> NetNs {
        let ns = NetNs::create_unpinned().unwrap();
        self.namespaces.push(ns.inode());
        ns
    }

    /// Removes the pin and checks nothing is left. Every other handle must be dropped first.
    fn finish(mut self) {
        let pin = HostNamespace::path(self.root.path());
        drop(self.host.take());
        HostNamespace::remove(self.root.path()).unwrap();
        HostNamespace::remove(self.root.path()).unwrap(); // idempotent
        assert!(!pin.exists(), "the pin {} is still there", pin.display());
        for inode in &self.namespaces {
            assert_released(*inode);
        }
        assert_eq!(
            machine_links(),
            self.machine_before,
            "the machine's own namespace changed"
        );
    }
}

/// Connects a container namespace to `bridge` as `eth0` with `address` and a default route
/// through `gateway`, the long way: both ends in the host namespace, move, rename.
fn attach_by_move(
    host: &Netlink,
    bridge: &str,
    container: &NetNs,
    host_end: &str,
    address: &str,
    gateway: &str,
) {
    let peer = format!("{host_end}p");
    host.create_veth(host_end, &peer).unwrap();
    host.set_master(host_end, bridge).unwrap();
    host.set_up(host_end).unwrap();
    host.move_to_netns(&peer, container, Some("eth0")).unwrap();
    assert!(
        host.link(&peer).unwrap().is_none(),
        "the peer left the host namespace"
    );
    configure_container(container, address, gateway);
}

/// The same with the peer created directly inside the container.
fn attach_direct(
    host: &Netlink,
    bridge: &str,
    container: &NetNs,
    host_end: &str,
    address: &str,
    gateway: &str,
) {
    host.create_veth_into(host_end, "eth0", container).unwrap();
    host.set_master(host_end, bridge).unwrap();
    host.set_up(host_end).unwrap();
    configure_container(container, address, gateway);
}

fn configure_container(container: &NetNs, address: &str, gateway: &str) {
    let inside = Netlink::open_in(container).unwrap();
    inside.set_up("lo").unwrap();
    inside.add_address("eth0", net(address)).unwrap();
    inside.set_up("eth0").unwrap();
    inside.add_default_route(gateway.parse().unwrap()).unwrap();
}

/// A listener bound inside `ns` (sockets stay in the namespace they were created in),
/// answering `hi` to one connection on a plain thread.
pub(super) fn listen_in(ns: &NetNs, address: &str) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let listener = run_in(ns, || TcpListener::bind(address)).unwrap().unwrap();
    let local = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream.write_all(b"hi").unwrap();
                    return;
                }
                Err(err) if err.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(err) => panic!("accept: {err}"),
            }
        }
    });
    (local, thread)
}

/// Connects from inside `ns`; the stream is created there.
pub(super) fn connect_from(
    ns: &NetNs,
    to: SocketAddr,
    timeout: Duration,
) -> std::io::Result<TcpStream> {
    run_in(ns, || TcpStream::connect_timeout(&to, timeout)).unwrap()
}

pub(super) fn read_greeting(mut stream: TcpStream) -> String {
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    text
}

#[test]
fn host_namespace_is_pinned_configured_and_reopened() {
    require_root!();
    let world = World::new();
    let pin = HostNamespace::path(world.root.path());
    assert!(NetNs::is_pinned(&pin));
    assert_ne!(
        world.host().inode(),
        NetNs::of_pid(std::process::id() as i32).unwrap().inode(),
        "the kiln host namespace is not the machine's"
    );
    // ensure again: the same namespace.
    let again = HostNamespace::ensure(world.root.path()).unwrap();
    assert_eq!(again.inode(), world.host().inode());
    drop(again);
    let forward = run_in(world.host(), || {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
    })
    .unwrap()
    .unwrap();
    assert_eq!(forward.trim(), "0");
    let lo = world.netlink().link("lo").unwrap().expect("lo");
    assert!(lo.up);
    // The namespace has nothing but lo.
    let names: Vec<String> = world
        .netlink()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(names, vec!["lo"]);
    // `kiln network exec -- ip link` runs inside it.
    let status = exec_in(world.root.path(), &["ip", "link", "show", "lo"]).unwrap();
    assert!(status.success());
    let status = exec_in(world.root.path(), &["ip", "link", "show", "eth0"]).unwrap();
    assert!(
        !status.success(),
        "the machine's eth0 is not in the kiln host namespace"
    );
    world.finish();
}

#[test]
fn concurrent_ensures_share_one_namespace() {
    require_root!();
    let root = tempfile::tempdir().unwrap();
    let inodes: Vec<u64> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| HostNamespace::ensure(root.path()).unwrap().inode()))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(inodes.iter().all(|i| *i == inodes[0]), "{inodes:?}");
    HostNamespace::remove(root.path()).unwrap();
    assert_released(inodes[0]);
}

#[test]
fn a_leftover_pin_file_is_replaced() {
    require_root!();
    let root = tempfile::tempdir().unwrap();
    let pin = HostNamespace::path(root.path());
    std::fs::create_dir_all(pin.parent().unwrap()).unwrap();
    std::fs::write(&pin, "").unwrap();
    assert!(matches!(NetNs::open(&pin), Err(NetError::NotPinned { .. })));
    let ns = HostNamespace::ensure(root.path()).unwrap();
    let inode = ns.inode();
    drop(ns);
    assert!(NetNs::is_pinned(&pin));
    HostNamespace::remove(root.path()).unwrap();
    assert!(!pin.exists());
    assert_released(inode);
}

#[test]
fn create_pinned_refuses_an_existing_path_and_remove_is_idempotent() {
    require_root!();
    let dir = tempfile::tempdir().unwrap();
    let pin: PathBuf = dir.path().join("x.netns");
    let ns = NetNs::create_pinned(&pin).unwrap();
    let err = NetNs::create_pinned(&pin).unwrap_err();
    assert_eq!(err.errno(), Some(libc::EEXIST), "{err}");
    let inode = ns.inode();
    drop(ns);
    NetNs::remove_pinned(&pin).unwrap();
    NetNs::remove_pinned(&pin).unwrap();
    NetNs::remove_pinned(Path::new("/nonexistent/kiln/pin")).unwrap();
    assert_released(inode);
}

#[test]
fn containers_on_one_bridge_talk_and_other_bridges_time_out() {
    require_root!();
    let mut world = World::new();
    let host = world.netlink();
    for (bridge, gateway) in [("kb-a", "10.88.1.1/24"), ("kb-b", "10.88.2.1/24")] {
        host.create_bridge(bridge).unwrap();
        host.add_address(bridge, net(gateway)).unwrap();
        host.set_up(bridge).unwrap();
    }
    let c1 = world.container();
    let c2 = world.container();
    let c3 = world.container();
    attach_by_move(&host, "kb-a", &c1, "kv1", "10.88.1.2/24", "10.88.1.1");
    attach_direct(&host, "kb-a", &c2, "kv2", "10.88.1.3/24", "10.88.1.1");
    attach_direct(&host, "kb-b", &c3, "kv3", "10.88.2.2/24", "10.88.2.1");

    // What the host side looks like.
    let links = host.links().unwrap();
    let bridge_a = links.iter().find(|l| l.name == "kb-a").unwrap();
    assert_eq!(bridge_a.kind.as_deref(), Some("bridge"));
    assert!(bridge_a.up);
    let kv1 = links.iter().find(|l| l.name == "kv1").unwrap();
    assert_eq!(kv1.kind.as_deref(), Some("veth"));
    assert_eq!(kv1.master, Some(bridge_a.index));
    assert!(kv1.mac.as_ref().is_some_and(|m| m.len() == 17));
    let v4: Vec<IpNetwork> = host
        .addresses("kb-a")
        .unwrap()
        .into_iter()
        .filter(IpNetwork::is_ipv4)
        .collect();
    assert_eq!(v4, vec![net("10.88.1.1/24")]);
    let eth0 = Netlink::open_in(&c1)
        .unwrap()
        .link("eth0")
        .unwrap()
        .unwrap();
    assert!(eth0.up);
    assert_eq!(eth0.kind.as_deref(), Some("veth"));

    // Same bridge: connected.
    let (to_c2, listener) = listen_in(&c2, "10.88.1.3:0");
    let stream = connect_from(&c1, to_c2, Duration::from_secs(5)).expect("c1 reaches c2");
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();
    let kv1 = host.link("kv1").unwrap().unwrap();
    assert!(
        kv1.stats.rx_packets > 0 && kv1.stats.tx_packets > 0,
        "{:?}",
        kv1.stats
    );

    // Other bridge: dropped silently (ip_forward = 0), so a timeout, not a refusal.
    let (to_c3, listener) = listen_in(&c3, "10.88.2.2:0");
    let err = connect_from(&c1, to_c3, Duration::from_millis(500)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err}");

    // Control: with forwarding on in the kiln host namespace, the same connect works, so
    // the timeout above came from isolation and not from a broken set-up.
    run_in(world.host(), || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
    })
    .unwrap()
    .unwrap();
    let stream = connect_from(&c1, to_c3, Duration::from_secs(5)).expect("forwarded");
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();

    // Deleting one end deletes the pair; c1 loses eth0.
    host.delete_link("kv1").unwrap();
    assert!(
        Netlink::open_in(&c1)
            .unwrap()
            .link("eth0")
            .unwrap()
            .is_none()
    );
    let err = host.delete_link("kv1").unwrap_err();
    assert!(matches!(err, NetError::NoSuchInterface { .. }), "{err}");

    drop((host, c1, c2, c3));
    world.finish();
}

/// A bridge keeps the MAC it was made with while ports come and go: left to itself, the
/// kernel gives it the lowest MAC of its ports, and its members' ARP entries for the gateway
/// would then name an address nobody has (DNS on the gateway went unanswered for up to a
/// minute after a container with a low MAC was replaced).
#[test]
fn a_bridge_keeps_its_mac_while_ports_come_and_go() {
    require_root!();
    let world = World::new();
    let host = world.netlink();
    host.create_bridge("kb-mac").unwrap();
    let made = host.link("kb-mac").unwrap().unwrap().mac.unwrap();
    let first = u8::from_str_radix(&made[..2], 16).unwrap();
    assert_eq!(first & 0b11, 0b10, "locally administered unicast: {made}");
    // A port whose MAC is lower than any the bridge could have been given.
    host.create_veth_into_with_mac("kv-mac", "kp-mac", world.host(), Some([0, 0, 0, 0, 0, 1]))
        .unwrap();
    host.set_master("kp-mac", "kb-mac").unwrap();
    host.set_up("kb-mac").unwrap();
    assert_eq!(host.link("kb-mac").unwrap().unwrap().mac.unwrap(), made);
    host.delete_link("kv-mac").unwrap();
    assert_eq!(host.link("kb-mac").unwrap().unwrap().mac.unwrap(), made);
    host.create_bridge("kb-mac2").unwrap();
    assert_ne!(
        host.link("kb-mac2").unwrap().unwrap().mac.unwrap(),
        made,
        "every bridge its own"
    );
    host.delete_link("kb-mac").unwrap();
    host.delete_link("kb-mac2").unwrap();
    drop(host);
    world.finish();
}

#[test]
fn netlink_errors_name_the_interface() {
    require_root!();
    let world = World::new();
    let host = world.netlink();
    host.create_bridge("kb-x").unwrap();
    let err = host.create_bridge("kb-x").unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot create bridge: interface kb-x already exists"
    );
    assert_eq!(err.errno(), Some(libc::EEXIST));
    let err = host.set_up("nope0").unwrap_err();
    assert_eq!(err.to_string(), "cannot set up: no interface named nope0");
    let err = host.create_bridge("much-too-long-name").unwrap_err();
    assert!(matches!(err, NetError::InvalidName { .. }), "{err}");
    host.create_veth("ve0", "ve1").unwrap();
    host.rename("ve1", "renamed").unwrap();
    host.set_mtu("renamed", 1400).unwrap();
    let renamed = host.link("renamed").unwrap().unwrap();
    assert_eq!(renamed.mtu, 1400);
    let err = host.rename("ve0", "renamed").unwrap_err();
    assert!(
        err.to_string().contains("interface renamed already exists"),
        "{err}"
    );
    host.add_address("kb-x", net("10.99.0.1/24")).unwrap();
    host.delete_address("kb-x", net("10.99.0.1/24")).unwrap();
    assert!(host.addresses("kb-x").unwrap().is_empty());
    host.set_master("ve0", "kb-x").unwrap();
    assert!(host.link("ve0").unwrap().unwrap().master.is_some());
    host.unset_master("ve0").unwrap();
    assert!(host.link("ve0").unwrap().unwrap().master.is_none());
    host.delete_link("kb-x").unwrap();
    host.delete_link("ve0").unwrap();
    assert!(
        host.link("renamed").unwrap().is_none(),
        "the veth pair went together"
    );
    drop(host);
    world.finish();
}

/// True (and says so) when the kernel has no netem: the test then passes vacuously, as
/// on kernels built without CONFIG_NET_SCH_NETEM. Any other error fails the test.
fn netem_missing(result: Result<(), NetError>) -> bool {
    match result {
        Ok(()) => false,
        Err(err @ NetError::NetemUnavailable { .. }) => {
            eprintln!("skipped: {err}");
            true
        }
        Err(err) => panic!("{err}"),
    }
}

/// `tc qdisc show dev NAME` run inside `ns`.
fn tc_show(ns: &NetNs, device: &str) -> String {
    let output = command_in(ns, "tc")
        .args(["qdisc", "show", "dev", device])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn netem_options_read_back_through_tc() {
    require_root!();
    let world = World::new();
    let host = world.netlink();
    host.create_veth("imp0", "imp1").unwrap();
    let netem = Netem {
        delay: Duration::from_millis(20),
        jitter: Duration::from_millis(5),
        loss_percent: 1.5,
        rate_bytes_per_sec: Some(125_000),
        corrupt_percent: 0.5,
        duplicate_percent: 2.0,
        reorder_percent: 25.0,
        limit: 500,
        ..Netem::default()
    };
    if netem_missing(host.replace_netem("imp0", &netem)) {
        host.delete_link("imp0").unwrap();
        drop(host);
        world.finish();
        return;
    }
    let shown = tc_show(world.host(), "imp0");
    for expected in [
        "qdisc netem",
        "root",
        "limit 500",
        "delay 20ms  5ms",
        "loss 1.5%",
        "duplicate 2%",
        "reorder 25%",
        "gap 1",
        "corrupt 0.5%",
        "rate 1Mbit",
    ] {
        assert!(shown.contains(expected), "`{expected}` not in {shown:?}");
    }
    let qdiscs = host.qdiscs("imp0").unwrap();
    let root = qdiscs.iter().find(|q| q.root).expect("a root qdisc");
    assert_eq!(root.kind, "netem");
    let read = root.netem.as_ref().expect("decoded netem options");
    assert_eq!(read.delay, netem.delay);
    assert_eq!(read.jitter, netem.jitter);
    assert_eq!(read.rate_bytes_per_sec, Some(125_000));
    assert_eq!(read.limit, 500);
    assert!((read.loss_percent - 1.5).abs() < 1e-6);

    // Replacing with less clears what is left out.
    let delay_only = Netem {
        delay: Duration::from_millis(7),
        ..Netem::default()
    };
    host.replace_netem("imp0", &delay_only).unwrap();
    let shown = tc_show(world.host(), "imp0");
    assert!(shown.contains("delay 7ms"), "{shown}");
    for gone in ["loss", "duplicate", "reorder", "corrupt", "rate"] {
        assert!(!shown.contains(gone), "`{gone}` still in {shown:?}");
    }

    host.delete_root_qdisc("imp0").unwrap();
    assert!(!tc_show(world.host(), "imp0").contains("netem"));
    host.delete_root_qdisc("imp0").unwrap(); // nothing left to delete: fine
    host.delete_link("imp0").unwrap();
    drop(host);
    world.finish();
}

#[test]
fn root_qdiscs_are_listed_and_deleted() {
    require_root!();
    let world = World::new();
    let host = world.netlink();
    host.create_veth("q0", "q1").unwrap();
    // Nothing but the default: nothing to delete, and that is fine.
    host.delete_root_qdisc("q0").unwrap();
    assert!(host.qdiscs("q0").unwrap().iter().all(|q| !q.root));
    // tbf stands in for netem here: it is built into more kernels.
    let status = command_in(world.host(), "tc")
        .args(["qdisc", "replace", "dev", "q0", "root", "tbf"])
        .args(["rate", "1mbit", "burst", "32kbit", "latency", "400ms"])
        .status()
        .unwrap();
    assert!(status.success());
    let qdiscs = host.qdiscs("q0").unwrap();
    let root = qdiscs.iter().find(|q| q.root).expect("a root qdisc");
    assert_eq!(root.kind, "tbf");
    assert_eq!(root.netem, None);
    assert!(
        qdiscs
            .iter()
            .all(|q| q.ifindex == host.link("q0").unwrap().unwrap().index)
    );
    host.delete_root_qdisc("q0").unwrap();
    assert!(host.qdiscs("q0").unwrap().iter().all(|q| !q.root));
    assert!(!tc_show(world.host(), "q0").contains("tbf"));
    host.delete_link("q0").unwrap();
    drop(host);
    world.finish();
}

#[test]
fn netem_delay_on_both_ends_shows_in_connect_time() {
    require_root!();
    let mut world = World::new();
    let host = world.netlink();
    host.create_bridge("kb-d").unwrap();
    host.add_address("kb-d", net("10.77.0.1/24")).unwrap();
    host.set_up("kb-d").unwrap();
    let c1 = world.container();
    let c2 = world.container();
    attach_direct(&host, "kb-d", &c1, "kvd1", "10.77.0.2/24", "10.77.0.1");
    attach_direct(&host, "kb-d", &c2, "kvd2", "10.77.0.3/24", "10.77.0.1");
    let delay = Netem {
        delay: Duration::from_millis(20),
        ..Netem::default()
    };
    let missing = [&c1, &c2]
        .into_iter()
        .any(|ns| netem_missing(Netlink::open_in(ns).unwrap().replace_netem("eth0", &delay)));
    if missing {
        drop((host, c1, c2));
        world.finish();
        return;
    }
    let (to_c2, listener) = listen_in(&c2, "10.77.0.3:0");
    let started = Instant::now();
    let stream = connect_from(&c1, to_c2, Duration::from_secs(5)).expect("connect");
    let rtt = started.elapsed();
    assert_eq!(read_greeting(stream), "hi");
    listener.join().unwrap();
    // SYN waits 20 ms leaving c1, SYN-ACK 20 ms leaving c2.
    assert!(rtt >= Duration::from_millis(40), "connect took {rtt:?}");
    assert!(rtt < Duration::from_secs(2), "connect took {rtt:?}");
    drop((host, c1, c2));
    world.finish();
}
