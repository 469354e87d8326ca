//! A container's interfaces: reserved before it starts (an address per network, recorded
//! as a member of the network, so /etc/hosts and DNS know it), made once its process exists
//! (a veth pair from the network's bridge into the container's namespace, named `eth0`,
//! `eth1`… in declaration order, its anti-spoofing rules, its address, the default route,
//! impairments), and released when the container is removed. The veths die with the
//! container's namespace by themselves: a restart makes them again with the same names and
//! addresses.
//!
//! An impaired attachment is carried by netem on both ends of its veth, or by kiln's engine:
//! then the container's interface has its peer — port `kec…` — in the kiln host namespace,
//! a second pair joins port `keb…` to the usual `kv…` port on the bridge (whose
//! anti-spoofing rules stay where they are), and the engine moves frames between `kec…` and
//! `keb…`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use super::antispoof::{self, Port};
use super::impair::{Carrier, Engine};
use super::network::NetworkError;
use super::nft::Nft;
use super::records::{MemberRequest, NetworkRecords};
use super::{HostNamespace, NetError, NetNs, Netem, Netlink};

/// `--network NAME [--ip] [--network-alias]`, or a `network` node of a container.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttachRequest {
    pub network: String,
    pub ip: Option<IpAddr>,
    pub aliases: Vec<String>,
    pub impair: Option<Netem>,
    /// Which engine carries `impair`.
    pub engine: Engine,
    /// Addresses other containers of the project ask for with `ip=` on this network.
    pub reserved: std::collections::BTreeSet<IpAddr>,
}

/// One interface of a container, as `launch.json` keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Interface {
    pub network: String,
    pub bridge: String,
    /// Inside the container: `eth0`…
    pub name: String,
    /// The bridge side, in the kiln host namespace.
    pub host_name: String,
    /// The container's address with the subnet's prefix.
    pub address: IpNetwork,
    /// The default route goes through it (the first non-internal network's gateway).
    pub default_gateway: Option<IpAddr>,
    /// The network's gateway: the container's DNS server.
    pub gateway: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impair: Option<Netem>,
    #[serde(default)]
    pub engine: Engine,
    /// The network's MTU (an overlay's leaves room for VXLAN); `None`: the kernel's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
}

impl Interface {
    /// The engine's id of this attachment's path.
    pub fn path_id(&self) -> String {
        format!("attach {}", self.host_name)
    }

    fn index(&self) -> u16 {
        self.name
            .strip_prefix("eth")
            .and_then(|i| i.parse().ok())
            .unwrap_or(0)
    }

    /// The engine's two ports: (container side, bridge side).
    pub fn ports(&self) -> Result<(String, String), NetError> {
        super::names::attach_port_names(&self.host_name, self.index())
    }
}

/// Reserves an address on every network asked for, in order (`eth0` for the first); on a
/// failure the reservations already made are released.
pub fn reserve(
    state_root: &Path,
    container_id: &str,
    container_name: &str,
    requests: &[AttachRequest],
) -> Result<Vec<Interface>, NetworkError> {
    let records = NetworkRecords::open(state_root)?;
    // The DNS its resolv.conf names must be there: a killed supervisor is replaced (a
    // pid-file read when it runs, no wait when it does not).
    super::supervise::revive(state_root);
    let mut interfaces = Vec::new();
    let mut default_taken = false;
    for (index, request) in requests.iter().enumerate() {
        let reserved = (|| {
            let network = records.load(&request.network)?;
            let name = format!("eth{index}");
            let member = records.add_member(
                &request.network,
                MemberRequest {
                    container_id: container_id.to_string(),
                    container_name: container_name.to_string(),
                    aliases: request.aliases.clone(),
                    interface: name.clone(),
                    address: request.ip,
                    reserved: request.reserved.clone(),
                    mac: None,
                },
            )?;
            let way_out = if network.egress {
                super::egress::GATEWAY
            } else {
                network.gateway
            };
            let default_gateway = (!network.internal && !default_taken).then_some(way_out);
            default_taken |= default_gateway.is_some();
            let index = u16::try_from(index).unwrap_or(u16::MAX);
            Ok::<_, NetworkError>(Interface {
                network: network.name.clone(),
                bridge: network.bridge.clone(),
                name,
                host_name: super::names::host_veth_name(container_id, index)?,
                address: IpNetwork::new(member.address, network.subnet.prefix())
                    .expect("ipam allocates inside the subnet"),
                default_gateway,
                gateway: network.gateway,
                impair: request.impair.clone(),
                engine: request.engine,
                mtu: network.overlay.map(|o| o.mtu),
            })
        })();
        match reserved {
            Ok(interface) => interfaces.push(interface),
            Err(err) => {
                release(state_root, container_id, &interfaces);
                return Err(err);
            }
        }
    }
    Ok(interfaces)
}

/// Makes the interfaces of the container whose pid 1 is `pid` (from kiln's namespace, while
/// it waits to be let go): one veth pair each, the container end created right in its
/// namespace, then addresses, routes and impairments.
pub fn attach(state_root: &Path, pid: i32, interfaces: &[Interface]) -> Result<(), NetError> {
    if interfaces.is_empty() {
        return Ok(());
    }
    // The network exists, so its namespace does: opening it costs no thread (ensure would
    // reconfigure it, two threads more on every container start).
    let host = match NetNs::open(&HostNamespace::path(state_root)) {
        Ok(host) => host,
        Err(_) => HostNamespace::ensure(state_root)?,
    };
    let container = NetNs::of_pid(pid)?;
    let outside = Netlink::open_in(&host)?;
    let mut nft = Nft::open_in(&host)?;
    let mut kernel_impaired = Vec::new();
    // An interface on an IPv4 network gets no IPv6 address from kiln, and its port drops
    // IPv6: switched off, the container does not send its link-local chatter (router
    // solicitations, MLD reports) into the drop counters. It is born switched off: the
    // namespace's `default` is set before the interface is made there, which needs no
    // RTNL lock (the per-interface file does, and spins — `restart_syscall` — while
    // another namespace's teardown holds it), and restored afterwards.
    let mut ipv6_default = Ipv6Default::new(&container);
    for interface in interfaces {
        ipv6_default.set(!interface.address.is_ipv4())?;
        // A previous run's pair may still be on its way out with its namespace.
        match outside.delete_link(&interface.host_name) {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(err) => return Err(err),
        }
        let mac = mac_for(interface.address.ip());
        let carrier = match &interface.impair {
            Some(_) => Some(super::impair::choose(interface.engine)?),
            None => None,
        };
        let engine_ports = match (carrier, &interface.impair) {
            (Some(Carrier::Userspace), Some(netem)) => {
                // The container's interface pairs with the engine's port; the bridge's
                // port `kv…` pairs with the engine's other one.
                let (inner, outer) = interface.ports()?;
                match outside.delete_link(&inner) {
                    Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
                    Err(err) => return Err(err),
                }
                outside.create_veth_into_with_mac(
                    &inner,
                    &interface.name,
                    &container,
                    Some(mac),
                )?;
                outside.create_veth(&outer, &interface.host_name)?;
                Some((inner, outer, netem))
            }
            _ => {
                outside.create_veth_into_with_mac(
                    &interface.host_name,
                    &interface.name,
                    &container,
                    Some(mac),
                )?;
                None
            }
        };
        if let Some(mtu) = interface.mtu {
            outside.set_mtu(&interface.host_name, mtu)?;
        }
        outside.set_master(&interface.host_name, &interface.bridge)?;
        // Filtered before the port is up: not one frame passes unchecked.
        antispoof::protect(
            &mut nft,
            &Port {
                host_name: &interface.host_name,
                mac,
                address: interface.address.ip(),
            },
        )?;
        outside.set_up(&interface.host_name)?;
        match engine_ports {
            Some((inner, outer, netem)) => {
                super::impair::prepare_port(&host, &outside, &inner)?;
                super::impair::prepare_port(&host, &outside, &outer)?;
                super::impair::carry(state_root, &interface.path_id(), [inner, outer], netem)?;
            }
            None => {
                if let Some(netem) = &interface.impair {
                    outside.replace_netem(&interface.host_name, netem)?;
                    kernel_impaired.push((interface.name.as_str(), netem));
                }
            }
        }
    }
    // Restored to on, in the thread that opens the namespace's netlink socket.
    let (restored, inside) = Netlink::open_in_after(&container, || ipv6_default.restore_here())?;
    restored?;
    for interface in interfaces {
        if let Some(mtu) = interface.mtu {
            inside.set_mtu(&interface.name, mtu)?;
        }
        inside.add_address(&interface.name, interface.address)?;
        inside.set_up(&interface.name)?;
    }
    for (name, netem) in kernel_impaired {
        inside.replace_netem(name, netem)?;
    }
    if let Some(interface) = interfaces.iter().find(|i| i.default_gateway.is_some()) {
        let gateway = interface.default_gateway.expect("found by it");
        if interface.address.contains(gateway) {
            inside.add_default_route(gateway)?;
        } else {
            // An egress network's way out, outside its subnet (see `egress`).
            inside.add_default_route_onlink(gateway, &interface.name)?;
        }
    }
    Ok(())
}

/// `net.ipv6.conf.default.disable_ipv6` of a container's namespace: what an interface
/// made there next is born with. Written only when it changes (one thread each time); a
/// kernel without IPv6 has no such file: nothing to do.
struct Ipv6Default<'a> {
    ns: &'a NetNs,
    /// Whether IPv6 is on by default now; `None` until kiln first wrote it (a new
    /// namespace starts with it on).
    enabled: Option<bool>,
}

impl<'a> Ipv6Default<'a> {
    fn new(ns: &'a NetNs) -> Ipv6Default<'a> {
        Ipv6Default { ns, enabled: None }
    }

    /// Interfaces made from now on get IPv6 (`true`) or not; `true` when the namespace's
    /// default was never changed is nothing to do.
    fn set(&mut self, enabled: bool) -> Result<(), NetError> {
        if self.enabled.unwrap_or(true) == enabled {
            return Ok(());
        }
        super::run_in(self.ns, || write_ipv6_default(enabled))??;
        self.enabled = Some(enabled);
        Ok(())
    }

    /// Back to on if kiln turned it off, on a thread already in the namespace.
    fn restore_here(&self) -> Result<(), NetError> {
        match self.enabled {
            Some(false) => write_ipv6_default(true),
            _ => Ok(()),
        }
    }
}

/// Writes `net.ipv6.conf.default.disable_ipv6` of the calling thread's namespace. No RTNL
/// lock is taken for `default` (only for an existing interface's file).
fn write_ipv6_default(enabled: bool) -> Result<(), NetError> {
    let path = "/proc/sys/net/ipv6/conf/default/disable_ipv6";
    match std::fs::write(path, if enabled { "0" } else { "1" }) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(cause) => Err(NetError::Io {
            path: path.into(),
            cause,
        }),
    }
}

/// Sets (or with `None` clears) the kernel's netem on both ends of an attachment the kernel
/// impairs: the bridge side in the kiln host namespace, the container side in `pid`'s.
pub fn set_impairment(
    state_root: &Path,
    pid: i32,
    interface: &Interface,
    netem: Option<&Netem>,
) -> Result<(), NetError> {
    let outside = Netlink::open_in(&NetNs::open(&HostNamespace::path(state_root))?)?;
    let inside = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    for (netlink, name) in [(&outside, &interface.host_name), (&inside, &interface.name)] {
        super::link::set_netem(netlink, name, netem)?;
    }
    Ok(())
}

/// Where a container's /etc/resolv.conf and /etc/hosts are kept (bind-mounted into it).
pub fn etc_dir(state_root: &Path, container_id: &str) -> std::path::PathBuf {
    state_root.join("net").join("etc").join(container_id)
}

/// Writes the container's resolv.conf and hosts; returns (host file, path in container).
pub fn write_etc(
    state_root: &Path,
    container_id: &str,
    interfaces: &[Interface],
    names: &[String],
    search: Option<&str>,
) -> std::io::Result<Vec<(std::path::PathBuf, &'static str)>> {
    let dir = etc_dir(state_root, container_id);
    std::fs::create_dir_all(&dir)?;
    let mut files = Vec::new();
    if let Some(text) = resolv_conf(interfaces, search) {
        let path = dir.join("resolv.conf");
        crate::atomic_file::replace(&path, text.as_bytes())?;
        files.push((path, "/etc/resolv.conf"));
    }
    let path = dir.join("hosts");
    crate::atomic_file::replace(&path, hosts(interfaces, names).as_bytes())?;
    files.push((path, "/etc/hosts"));
    Ok(files)
}

/// The MAC address of a container interface, from its IP address as Docker makes it
/// (`02:42:` + the IPv4 address; locally administered, unicast): the same address always
/// has the same MAC, so a replaced container is reachable at once by neighbours that
/// cached the old one's.
pub fn mac_for(address: IpAddr) -> [u8; 6] {
    let tail = match address {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x02, 0x42, tail[0], tail[1], tail[2], tail[3]]
}

/// Gives the addresses back and removes what is left of the veths (after a crash, the
/// host end of a pair whose container still runs) and the container's /etc files. Errors
/// are ignored: this runs on the way out and must get as far as it can.
pub fn release(state_root: &Path, container_id: &str, interfaces: &[Interface]) {
    let _ = std::fs::remove_dir_all(etc_dir(state_root, container_id));
    release_all(state_root, &[(container_id, interfaces)], Duration::ZERO);
}

/// [`release`] of many containers of one root at once, without their /etc files (the
/// caller removes those): `kiln down` of a project. Each network's record is written once,
/// the ports' anti-spoofing chains go in a few batches, and the veths of containers whose
/// processes are gone are left to the kernel, which removes them with the containers'
/// namespaces, many in one go, for up to `linger`; those still there then are deleted
/// here. (Deleting a veth waits for the readers of the namespace's devices, one deletion
/// after another under one lock: at a thousand containers, most of a `down`.) With
/// `linger` zero every veth is deleted at once, as [`release`] does.
pub fn release_all(state_root: &Path, held: &[(&str, &[Interface])], linger: Duration) {
    // Most containers have no network: no records to open, no netlink socket to make.
    if held.iter().all(|(_, interfaces)| interfaces.is_empty()) {
        return;
    }
    if let Ok(records) = NetworkRecords::open(state_root) {
        let mut by_network: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (id, interfaces) in held {
            for interface in *interfaces {
                by_network
                    .entry(interface.network.as_str())
                    .or_default()
                    .insert(id);
            }
        }
        for (network, ids) in by_network {
            let _ = records.remove_members(network, &ids);
        }
    }
    let interfaces = || held.iter().flat_map(|(_, interfaces)| interfaces.iter());
    if let Ok(host) = NetNs::open(&HostNamespace::path(state_root)) {
        // The kernel keeps a port's chain after its device is gone: removed here.
        if let Ok(mut nft) = Nft::open_in(&host) {
            let ports: Vec<&str> = interfaces().map(|i| i.host_name.as_str()).collect();
            let _ = antispoof::unprotect_all(&mut nft, &ports);
        }
        if let Ok(netlink) = Netlink::open_in(&host) {
            // An impaired port may pair with the engine's port in this namespace: that
            // pair does not go with the container's namespace.
            let (awaited, mut now): (Vec<&Interface>, Vec<&Interface>) =
                interfaces().partition(|i| i.impair.is_none() && !linger.is_zero());
            let mut doomed: Vec<&str> = now.drain(..).map(|i| i.host_name.as_str()).collect();
            doomed.extend(left_after(
                &netlink,
                awaited.iter().map(|i| i.host_name.as_str()).collect(),
                linger,
            ));
            // The engine's port on the container's side goes with the container's
            // namespace, or here if that lingers.
            let inner: Vec<String> = interfaces()
                .filter(|i| i.impair.is_some())
                .filter_map(|i| i.ports().ok().map(|(inner, _)| inner))
                .collect();
            doomed.extend(inner.iter().map(String::as_str));
            for name in doomed {
                let _ = netlink.delete_link(name);
            }
        }
    }
    let impaired: BTreeSet<String> = interfaces()
        .filter(|i| i.impair.is_some())
        .map(Interface::path_id)
        .collect();
    if !impaired.is_empty() {
        let _ = super::engine::daemon::forget(state_root, |path| impaired.contains(path));
    }
}

/// Which of `names` are still interfaces of the namespace after waiting up to `linger` for
/// them to go (a listing of its interfaces every few milliseconds).
fn left_after<'a>(netlink: &Netlink, mut names: Vec<&'a str>, linger: Duration) -> Vec<&'a str> {
    let deadline = Instant::now() + linger;
    while !names.is_empty() {
        let Ok(links) = netlink.links() else {
            return names;
        };
        let present: BTreeSet<&str> = links.iter().map(|l| l.name.as_str()).collect();
        names.retain(|name| present.contains(name));
        if names.is_empty() || Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(LINGER_POLL);
    }
    names
}

/// How often [`left_after`] looks again.
const LINGER_POLL: Duration = Duration::from_millis(20);

/// /etc/resolv.conf of a container on these interfaces: the first network's DNS server.
pub fn resolv_conf(interfaces: &[Interface], project: Option<&str>) -> Option<String> {
    let first = interfaces.first()?;
    Some(super::dns::files::resolv_conf(&[first.gateway], project))
}

/// /etc/hosts of a container: localhost, and its own names on each of its addresses.
pub fn hosts(interfaces: &[Interface], names: &[String]) -> String {
    let own: Vec<(IpAddr, Vec<String>)> = interfaces
        .iter()
        .map(|i| (i.address.ip(), names.to_vec()))
        .collect();
    super::dns::files::hosts_file(&own)
}
