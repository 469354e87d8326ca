//! One host's end of an overlay network: its VXLAN tunnel endpoint (VTEP).
//!
//! Owns, for one overlay network on one host: the VXLAN device (its VNI, UDP port 4789,
//! sending from the host's underlay address) attached to the overlay's bridge in kiln's
//! network namespace for that host; one all-zero forwarding entry per peer host, so that
//! broadcast (ARP for a container nobody declared) is copied to every peer; and, for every
//! container the file places on another host, a forwarding entry in the device (its MAC →
//! that host), one in the bridge (its MAC → the device) and a neighbour entry on the bridge
//! (its address → its MAC). The device's bridge port suppresses neighbour discovery
//! (`neigh_suppress`): the bridge answers ARP for a declared container itself, so that
//! never floods, and copies to the peers only the ARP it cannot answer — for a container
//! started by hand (`kiln run --network`) on another host, which answers from there.
//! Learning stays on, so such a container is found after its first frame. (The VXLAN
//! device's own ARP proxy is off: it drops the ARP it cannot answer instead of flooding it.)
//!
//! The device is created in the *underlay* namespace (the machine's, or a simulated
//! machine's) and then moved into kiln's namespace: a VXLAN device's UDP socket stays in the
//! namespace the device was created in, so encapsulated packets leave through the machine's
//! network while the device, the bridge and the containers stay in kiln's. Nothing else is
//! added to the underlay namespace. (Docker's overlay driver does the same.)
//!
//! It must not decide which containers are where (placement and addresses are `project`'s)
//! and knows nothing of kiln.kdl: it is handed plain addresses.

use std::net::IpAddr;

pub mod underlay;
pub mod wan;

use super::attach::mac_for;
use super::netlink::{LinkStats, Netlink, Vxlan};
use super::{NetError, NetNs};

/// IANA's VXLAN port (Linux's default, 8472, predates it).
pub const VXLAN_PORT: u16 = 4789;

/// What VXLAN adds to every frame on an IPv4 underlay: outer IPv4 (20), UDP (8), VXLAN (8)
/// and the inner Ethernet header (14). Overlay interfaces get the underlay's MTU less this.
pub const OVERHEAD: u32 = 50;

/// A container on another host, as this host's VTEP must know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// Its address on the overlay (its MAC follows from it: [`mac_for`]).
    pub address: IpAddr,
    /// The underlay address of the host it runs on.
    pub host: IpAddr,
}

/// One overlay network's endpoint on one host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vtep {
    pub vni: u32,
    /// The overlay's bridge in kiln's namespace (it must exist).
    pub bridge: String,
    /// This host's underlay address.
    pub local: IpAddr,
    /// The other hosts' underlay addresses.
    pub peers: Vec<IpAddr>,
    /// The declared containers on the other hosts.
    pub remotes: Vec<Remote>,
    /// The underlay's MTU; the device gets [`OVERHEAD`] less.
    pub underlay_mtu: u32,
}

impl Vtep {
    /// The VXLAN device's name: `kx` and the VNI in hex (at most 8 characters).
    pub fn device(&self) -> String {
        device_name(self.vni)
    }

    /// The MTU of every interface on the overlay.
    pub fn mtu(&self) -> u32 {
        self.underlay_mtu.saturating_sub(OVERHEAD)
    }
}

/// The name of the VXLAN device of VNI `vni`.
pub fn device_name(vni: u32) -> String {
    format!("kx{vni:06x}")
}

/// What `kiln network inspect` shows of a VTEP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VtepState {
    pub device: String,
    pub mtu: u32,
    pub up: bool,
    /// The hosts broadcast is copied to.
    pub peers: Vec<IpAddr>,
    /// Forwarding entries to containers on other hosts: (MAC, host), declared and learned.
    pub remotes: Vec<([u8; 6], IpAddr)>,
    pub stats: LinkStats,
}

/// Creates the VTEP: the device in `underlay` (where its socket stays), moved into `kiln`,
/// on its bridge, with its forwarding and neighbour entries, up. On failure the device is
/// removed again.
pub fn bring_up(underlay: &NetNs, kiln: &NetNs, vtep: &Vtep) -> Result<(), NetError> {
    let device = vtep.device();
    let outside = Netlink::open_in(underlay)?;
    outside.create_vxlan(
        &device,
        &Vxlan {
            vni: vtep.vni,
            local: vtep.local,
            port: VXLAN_PORT,
            learning: true,
            proxy: false,
        },
    )?;
    if let Err(err) = outside.move_to_netns(&device, kiln, None) {
        let _ = outside.delete_link(&device);
        return Err(err);
    }
    let inside = Netlink::open_in(kiln)?;
    let configured = configure(&inside, vtep, &device);
    if configured.is_err() {
        let _ = inside.delete_link(&device);
    }
    configured
}

fn configure(inside: &Netlink, vtep: &Vtep, device: &str) -> Result<(), NetError> {
    inside.set_mtu(device, vtep.mtu())?;
    inside.set_master(device, &vtep.bridge)?;
    inside.set_neigh_suppress(device, true)?;
    for peer in &vtep.peers {
        inside.append_fdb(device, [0; 6], *peer)?;
    }
    for remote in &vtep.remotes {
        let mac = mac_for(remote.address);
        inside.append_fdb(device, mac, remote.host)?;
        inside.replace_bridge_fdb(device, mac)?;
        inside.replace_neighbour(&vtep.bridge, remote.address, mac)?;
    }
    inside.set_up(device)
}

/// [`bring_up`], replacing a VTEP of the same VNI that exists (a second `kiln up`: the
/// file may have moved containers between hosts).
pub fn ensure(underlay: &NetNs, kiln: &NetNs, vtep: &Vtep) -> Result<(), NetError> {
    remove(kiln, vtep.vni)?;
    bring_up(underlay, kiln, vtep)
}

/// The interface of `machine` (a real machine's own namespace, for `kiln up --host`) that
/// holds `address`, with its MTU: where the VTEPs of that host send from. `None` when the
/// machine has no such address (the host declared is another machine). Reads only.
pub fn underlay_interface(
    machine: &NetNs,
    address: IpAddr,
) -> Result<Option<(String, u32)>, NetError> {
    let netlink = Netlink::open_in(machine)?;
    for link in netlink.links()? {
        let held = match netlink.addresses(&link.name) {
            Ok(addresses) => addresses,
            // Gone between the two calls.
            Err(NetError::NoSuchInterface { .. }) => continue,
            Err(err) => return Err(err),
        };
        if held.iter().any(|a| a.ip() == address) {
            return Ok(Some((link.name, link.mtu)));
        }
    }
    Ok(None)
}

/// Removes the VTEP of `vni` from `kiln` (its socket goes with it); absent is fine.
pub fn remove(kiln: &NetNs, vni: u32) -> Result<(), NetError> {
    match Netlink::open_in(kiln)?.delete_link(&device_name(vni)) {
        Err(NetError::NoSuchInterface { .. }) => Ok(()),
        other => other,
    }
}

/// The VTEP of `vni` in `kiln` as the kernel has it, `None` when there is none.
pub fn inspect(kiln: &NetNs, vni: u32) -> Result<Option<VtepState>, NetError> {
    let netlink = Netlink::open_in(kiln)?;
    let device = device_name(vni);
    let Some(link) = netlink.link(&device)? else {
        return Ok(None);
    };
    let mut peers = Vec::new();
    let mut remotes = Vec::new();
    for (mac, host) in netlink.remote_fdb(&device)? {
        if mac == [0; 6] {
            peers.push(host);
        } else {
            remotes.push((mac, host));
        }
    }
    Ok(Some(VtepState {
        device,
        mtu: link.mtu,
        up: link.up,
        peers,
        remotes,
        stats: link.stats,
    }))
}
