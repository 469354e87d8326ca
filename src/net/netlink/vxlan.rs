//! VXLAN devices and their forwarding and neighbour entries: `ip link add … type vxlan`,
//! `bridge fdb append`, `bridge fdb replace … master static`, `ip link set … type
//! bridge_slave neigh_suppress on`, `ip neigh replace … nud permanent`. Single kernel
//! operations, like the rest of [`Netlink`]; which entries a host needs is
//! `net::overlay`'s business.

use std::net::IpAddr;

use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::RouteType;
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{LinkBridgePort, LinkVxlan};

use super::{Netlink, link_error, other_error};
use crate::net::NetError;

/// A VXLAN device as [`Netlink::create_vxlan`] makes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vxlan {
    /// The VXLAN network identifier (24 bits).
    pub vni: u32,
    /// The underlay address its UDP socket sends from.
    pub local: IpAddr,
    /// The UDP port, sent to and listened on (IANA's 4789, not Linux's legacy 8472).
    pub port: u16,
    /// Learns the source MAC of what arrives, so a container no file declares is found.
    pub learning: bool,
    /// Answers ARP and neighbour solicitation from its neighbour entries, without flooding.
    pub proxy: bool,
}

fn neighbour_address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(v4) => NeighbourAddress::Inet(v4),
        IpAddr::V6(v6) => NeighbourAddress::Inet6(v6),
    }
}

impl Netlink {
    /// `ip link add NAME type vxlan id VNI local LOCAL dstport PORT [nolearning] [proxy]`,
    /// created down, in this handle's namespace: its UDP socket will live here even after the
    /// device moves to another namespace.
    pub fn create_vxlan(&self, name: &str, vxlan: &Vxlan) -> Result<(), NetError> {
        crate::net::names::validate_ifname(name)?;
        let builder = LinkVxlan::new(name, vxlan.vni)
            .port(vxlan.port)
            .learning(vxlan.learning)
            .proxy(vxlan.proxy)
            .down();
        let builder = match vxlan.local {
            IpAddr::V4(v4) => builder.local(v4),
            IpAddr::V6(v6) => builder.local6(v6),
        };
        self.block(self.handle.link().add(builder.build()).execute())
            .map_err(link_error("create vxlan", name))
    }

    /// `bridge fdb append MAC dev NAME dst PEER`: frames to `mac` (all zeros: every
    /// broadcast, multicast and unknown frame, one copy per such entry) go to `peer`.
    pub fn append_fdb(&self, name: &str, mac: [u8; 6], peer: IpAddr) -> Result<(), NetError> {
        let index = self.index_of("add a forwarding entry to", name)?;
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        message.header.state = NeighbourState::Permanent;
        message.header.flags = NeighbourFlags::Own;
        message.header.kind = RouteType::Unspec;
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        message
            .attributes
            .push(NeighbourAttribute::Destination(neighbour_address(peer)));
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        self.acknowledged(request)
            .map_err(other_error("add a forwarding entry to", name))
    }

    /// `bridge fdb replace MAC dev PORT master static`: the bridge PORT is attached to
    /// sends frames for `mac` out of PORT (and knows `mac` is there before any frame came).
    pub fn replace_bridge_fdb(&self, port: &str, mac: [u8; 6]) -> Result<(), NetError> {
        let index = self.index_of("add a bridge forwarding entry to", port)?;
        let mut message = NeighbourMessage::default();
        message.header.family = AddressFamily::Bridge;
        message.header.ifindex = index;
        // `static` in bridge(8): kept, never aged out, not a local address of the bridge.
        message.header.state = NeighbourState::Noarp;
        message.header.flags = NeighbourFlags::Controller;
        message.header.kind = RouteType::Unspec;
        message
            .attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewNeighbour(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        self.acknowledged(request)
            .map_err(other_error("add a bridge forwarding entry to", port))
    }

    /// `ip link set NAME type bridge_slave neigh_suppress on|off`: the bridge answers ARP
    /// and neighbour solicitations for addresses behind this port from its own neighbour
    /// entries (on the bridge device), and floods to the port only what it cannot answer.
    pub fn set_neigh_suppress(&self, name: &str, on: bool) -> Result<(), NetError> {
        let index = self.index_of("set neigh_suppress on", name)?;
        let message = LinkBridgePort::new(index).neigh_suppress(on).build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("set neigh_suppress on", name))
    }

    /// `ip neigh replace IP lladdr MAC dev NAME nud permanent`.
    pub fn replace_neighbour(&self, name: &str, ip: IpAddr, mac: [u8; 6]) -> Result<(), NetError> {
        let index = self.index_of("add a neighbour entry to", name)?;
        let request = self
            .handle
            .neighbours()
            .add(index, ip)
            .link_layer_address(&mac)
            .state(NeighbourState::Permanent)
            .replace();
        self.block(request.execute())
            .map_err(other_error("add a neighbour entry to", name))
    }

    /// The forwarding entries of one device that point at a remote (`dst`): (MAC, peer).
    pub fn remote_fdb(&self, name: &str) -> Result<Vec<([u8; 6], IpAddr)>, NetError> {
        use futures_util::TryStreamExt;
        let index = self.index_of("list the forwarding entries of", name)?;
        let mut request = self.handle.neighbours().get();
        request.message_mut().header.family = AddressFamily::Bridge;
        let messages: Vec<NeighbourMessage> = self
            .block(request.execute().try_collect())
            .map_err(other_error("list the forwarding entries of", name))?;
        let mut entries = Vec::new();
        for message in messages.iter().filter(|m| m.header.ifindex == index) {
            let mut mac = None;
            let mut peer = None;
            for attribute in &message.attributes {
                match attribute {
                    NeighbourAttribute::LinkLayerAddress(bytes) if bytes.len() == 6 => {
                        mac = <[u8; 6]>::try_from(bytes.as_slice()).ok();
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => {
                        peer = Some(IpAddr::V4(*v4));
                    }
                    NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => {
                        peer = Some(IpAddr::V6(*v6));
                    }
                    // In a bridge-family message the kernel's NDA_DST is parsed as bytes.
                    NeighbourAttribute::Destination(NeighbourAddress::Other(bytes)) => {
                        peer = match bytes.len() {
                            4 => <[u8; 4]>::try_from(bytes.as_slice()).ok().map(IpAddr::from),
                            16 => <[u8; 16]>::try_from(bytes.as_slice())
                                .ok()
                                .map(IpAddr::from),
                            _ => None,
                        };
                    }
                    _ => {}
                }
            }
            if let (Some(mac), Some(peer)) = (mac, peer) {
                entries.push((mac, peer));
            }
        }
        Ok(entries)
    }
}
