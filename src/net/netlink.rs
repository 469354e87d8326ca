//! A blocking netlink (rtnetlink) handle bound to one network namespace: links, bridges,
//! veths, VXLAN devices and their forwarding entries, addresses, routes and netem qdiscs.
//!
//! The socket is created by a thread inside the namespace (a netlink socket talks to the
//! namespace it was created in for its whole life), so one process can hold handles for many
//! namespaces without ever switching its own threads. tokio is an internal detail: each
//! handle owns a current-thread runtime that only runs while a method blocks on it.
//!
//! This module performs single kernel operations; deciding which ones (diffing desired state
//! against what exists) belongs to its callers.

use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};

use futures_util::{StreamExt, TryStreamExt};
use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage, NetlinkPayload,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::packet_route::link::{
    InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use rtnetlink::{
    AddressMessageBuilder, Handle, LinkBridge, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use super::NetError;
use super::netem::{Netem, Psched};

mod vxlan;
use super::netns::{NetNs, run_in};
pub use vxlan::Vxlan;

const TCA_OPTIONS: u16 = 2;

/// One network interface as `ip -s link` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// `bridge`, `veth`, ...; `None` for `lo` and other kind-less devices.
    pub kind: Option<String>,
    /// `aa:bb:cc:dd:ee:ff`, when the device has an Ethernet address.
    pub mac: Option<String>,
    /// Administratively up (IFF_UP).
    pub up: bool,
    pub mtu: u32,
    /// Index of the bridge this interface is attached to.
    pub master: Option<u32>,
    pub stats: LinkStats,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// One queueing discipline as `tc qdisc show` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Qdisc {
    pub ifindex: u32,
    pub kind: String,
    pub handle: u32,
    pub parent: u32,
    /// Attached at the root of its device (not under a class).
    pub root: bool,
    /// The decoded options, for `netem` qdiscs.
    pub netem: Option<Netem>,
}

/// A netlink socket in one namespace, with blocking methods.
pub struct Netlink {
    handle: Handle,
    psched: Psched,
    // Declared last: dropped after the handle, taking the connection task and socket with it.
    runtime: tokio::runtime::Runtime,
}

impl Netlink {
    /// Opens a handle on `ns`: a thread inside the namespace creates the socket.
    pub fn open_in(ns: &NetNs) -> Result<Netlink, NetError> {
        let socket = run_in(ns, route_socket)??;
        Netlink::from_socket(socket)
    }

    /// [`Netlink::open_in`], running `first` in `ns` on the same thread before the socket
    /// is made: one thread for both (a sysctl of the namespace, say).
    pub fn open_in_after<T: Send>(
        ns: &NetNs,
        first: impl FnOnce() -> T + Send,
    ) -> Result<(T, Netlink), NetError> {
        let (value, socket) = run_in(ns, || (first(), route_socket()))?;
        Ok((value, Netlink::from_socket(socket?)?))
    }

    fn from_socket(socket: OwnedFd) -> Result<Netlink, NetError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(NetError::Socket)?;
        let connection = {
            let _entered = runtime.enter();
            // SAFETY: `socket` is an open NETLINK_ROUTE socket that we own; its ownership
            // moves into the TokioSocket (registered with the runtime entered above).
            let socket = unsafe { rtnetlink::sys::TokioSocket::from_raw_fd(socket.into_raw_fd()) };
            let (connection, handle, _unsolicited) = rtnetlink::from_socket(socket);
            (connection, handle)
        };
        let (connection, handle) = connection;
        runtime.spawn(connection);
        Ok(Netlink {
            handle,
            psched: Psched::read()?,
            runtime,
        })
    }

    fn block<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// `ip link add NAME type bridge` (created down; see [`Netlink::set_up`]).
    pub fn create_bridge(&self, name: &str) -> Result<(), NetError> {
        super::names::validate_ifname(name)?;
        let message = LinkBridge::new(name).down().build();
        self.block(self.handle.link().add(message).execute())
            .map_err(link_error("create bridge", name))
    }

    /// `ip link add NAME type veth peer name PEER`: both ends in this handle's namespace.
    pub fn create_veth(&self, name: &str, peer: &str) -> Result<(), NetError> {
        super::names::validate_ifname(name)?;
        super::names::validate_ifname(peer)?;
        let message = LinkVeth::new(name, peer).build();
        self.block(self.handle.link().add(message).execute())
            .map_err(veth_error(name, peer))
    }

    /// A veth pair whose `peer` end is created directly in `peer_ns` under its final name
    /// (`eth0`): one kernel call instead of create, move and rename.
    pub fn create_veth_into(
        &self,
        name: &str,
        peer: &str,
        peer_ns: &NetNs,
    ) -> Result<(), NetError> {
        self.create_veth_into_with_mac(name, peer, peer_ns, None)
    }

    /// [`Netlink::create_veth_into`] with the peer's MAC address given: a container that
    /// comes back with the same address then has the same MAC too, so its neighbours'
    /// ARP caches stay right (a new random MAC would leave them sending to the old one).
    pub fn create_veth_into_with_mac(
        &self,
        name: &str,
        peer: &str,
        peer_ns: &NetNs,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<(), NetError> {
        super::names::validate_ifname(name)?;
        super::names::validate_ifname(peer)?;
        let mut peer_message = LinkUnspec::new_with_name(peer).setns_by_fd(peer_ns.as_raw_fd());
        if let Some(mac) = peer_mac {
            peer_message = peer_message.address(mac.to_vec());
        }
        let peer_message = peer_message.build();
        let message = LinkVeth::new(name, peer)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_message)))
            .build();
        self.block(self.handle.link().add(message).execute())
            .map_err(veth_error(name, peer))
    }

    /// Moves an interface into another namespace, optionally renaming it on the way
    /// (`ip link set NAME netns NS name NEW`). Its addresses and routes do not move.
    pub fn move_to_netns(
        &self,
        name: &str,
        ns: &NetNs,
        rename_to: Option<&str>,
    ) -> Result<(), NetError> {
        let mut message = match rename_to {
            Some(new_name) => {
                super::names::validate_ifname(new_name)?;
                // Found by index, so the name attribute is the name in the new namespace.
                let index = self.index_of("move", name)?;
                LinkUnspec::new_with_index(index).name(new_name)
            }
            None => LinkUnspec::new_with_name(name),
        };
        message = message.setns_by_fd(ns.as_raw_fd());
        self.block(self.handle.link().set(message.build()).execute())
            .map_err(link_error("move", rename_to.unwrap_or(name)))
    }

    /// `ip link set NAME name NEW` (the interface must be down).
    pub fn rename(&self, name: &str, new_name: &str) -> Result<(), NetError> {
        super::names::validate_ifname(new_name)?;
        let index = self.index_of("rename", name)?;
        let message = LinkUnspec::new_with_index(index).name(new_name).build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("rename", new_name))
    }

    /// `ip link set NAME up`.
    pub fn set_up(&self, name: &str) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).up().build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("set up", name))
    }

    /// `ip link set NAME down`.
    pub fn set_down(&self, name: &str) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).down().build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("set down", name))
    }

    /// `ip link set NAME arp on|off`: an interface without ARP never answers for the
    /// namespace's addresses.
    pub fn set_arp(&self, name: &str, on: bool) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).arp(on).build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("set arp on", name))
    }

    /// `ip link set NAME master BRIDGE`.
    pub fn set_master(&self, name: &str, bridge: &str) -> Result<(), NetError> {
        let bridge_index = self.index_of("attach to bridge", bridge)?;
        let message = LinkUnspec::new_with_name(name)
            .controller(bridge_index)
            .build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("attach to bridge", name))
    }

    /// `ip link set NAME nomaster`.
    pub fn unset_master(&self, name: &str) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).nocontroller().build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("detach from bridge", name))
    }

    /// `ip link set NAME mtu MTU`.
    pub fn set_mtu(&self, name: &str, mtu: u32) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).mtu(mtu).build();
        self.block(self.handle.link().set(message).execute())
            .map_err(link_error("set the mtu of", name))
    }

    /// `ip link del NAME`; deleting one end of a veth deletes both.
    pub fn delete_link(&self, name: &str) -> Result<(), NetError> {
        let message = LinkUnspec::new_with_name(name).build();
        self.block(self.handle.link().del_with_message(message).execute())
            .map_err(link_error("delete", name))
    }

    /// `ip addr add ADDRESS/PREFIX dev NAME`.
    pub fn add_address(&self, name: &str, address: IpNetwork) -> Result<(), NetError> {
        let index = self.index_of("add an address to", name)?;
        let request = self
            .handle
            .address()
            .add(index, address.ip(), address.prefix());
        self.block(request.execute())
            .map_err(other_error("add address", &format!("{address} to {name}")))
    }

    /// `ip addr del ADDRESS/PREFIX dev NAME`.
    pub fn delete_address(&self, name: &str, address: IpNetwork) -> Result<(), NetError> {
        let index = self.index_of("delete an address of", name)?;
        let message = match address {
            IpNetwork::V4(net) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(index)
                .address(net.ip(), net.prefix())
                .build(),
            IpNetwork::V6(net) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(index)
                .address(net.ip(), net.prefix())
                .build(),
        };
        self.block(self.handle.address().del(message).execute())
            .map_err(other_error(
                "delete address",
                &format!("{address} of {name}"),
            ))
    }

    /// The addresses on an interface.
    pub fn addresses(&self, name: &str) -> Result<Vec<IpNetwork>, NetError> {
        use rtnetlink::packet_route::address::AddressAttribute;
        let index = self.index_of("list the addresses of", name)?;
        let messages: Vec<_> = self
            .block(
                self.handle
                    .address()
                    .get()
                    .set_link_index_filter(index)
                    .execute()
                    .try_collect(),
            )
            .map_err(other_error("list addresses of", name))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let prefix = m.header.prefix_len;
                m.attributes.into_iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => IpNetwork::new(ip, prefix).ok(),
                    _ => None,
                })
            })
            .collect())
    }

    /// `ip route add default via GATEWAY`.
    pub fn add_default_route(&self, gateway: IpAddr) -> Result<(), NetError> {
        let any = match gateway {
            IpAddr::V4(_) => IpNetwork::V4(ipnetwork::Ipv4Network::new(0.into(), 0).expect("/0")),
            IpAddr::V6(_) => IpNetwork::V6(
                ipnetwork::Ipv6Network::new(std::net::Ipv6Addr::UNSPECIFIED, 0).expect("/0"),
            ),
        };
        self.add_route(any, Some(gateway), None)
    }

    /// `ip route add default via GATEWAY dev DEVICE onlink`: a gateway outside the device's
    /// subnet, reached by asking for it on the device's link (an egress network's gateway,
    /// `169.254.1.1`, is answered by its egress namespace on the bridge: see `egress`).
    pub fn add_default_route_onlink(&self, gateway: IpAddr, device: &str) -> Result<(), NetError> {
        let target = format!("default route via {gateway} onlink");
        let builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(IpAddr::from([0u8, 0, 0, 0]), 0)
            .map_err(invalid_route(&target))?
            .gateway(gateway)
            .map_err(invalid_route(&target))?
            .output_interface(self.index_of("add a route through", device)?);
        let mut message = builder.build();
        message.header.flags |= rtnetlink::packet_route::route::RouteFlags::Onlink;
        self.block(self.handle.route().add(message).execute())
            .map_err(other_error("add", &target))
    }

    /// `ip route add DESTINATION [via GATEWAY] [dev NAME]`.
    pub fn add_route(
        &self,
        destination: IpNetwork,
        gateway: Option<IpAddr>,
        device: Option<&str>,
    ) -> Result<(), NetError> {
        let target = format!("route to {destination}");
        let mut builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(destination.ip(), destination.prefix())
            .map_err(invalid_route(&target))?;
        if let Some(gateway) = gateway {
            builder = builder.gateway(gateway).map_err(invalid_route(&target))?;
        }
        if let Some(device) = device {
            builder = builder.output_interface(self.index_of("add a route through", device)?);
        }
        self.block(self.handle.route().add(builder.build()).execute())
            .map_err(other_error("add", &target))
    }

    /// `ip route replace DESTINATION dev NAME`: the route to `destination` goes through
    /// `device` from now on, whichever it went through before.
    pub fn replace_route(&self, destination: IpNetwork, device: &str) -> Result<(), NetError> {
        let target = format!("route to {destination}");
        let builder = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(destination.ip(), destination.prefix())
            .map_err(invalid_route(&target))?
            .output_interface(self.index_of("route through", device)?);
        self.block(self.handle.route().add(builder.build()).replace().execute())
            .map_err(other_error("replace", &target))
    }

    /// Every interface of the namespace.
    pub fn links(&self) -> Result<Vec<Link>, NetError> {
        let messages: Vec<LinkMessage> = self
            .block(self.handle.link().get().execute().try_collect())
            .map_err(other_error("list", "interfaces"))?;
        Ok(messages.into_iter().map(link_from_message).collect())
    }

    /// The interface called `name`, if there is one.
    pub fn link(&self, name: &str) -> Result<Option<Link>, NetError> {
        let found = self.block(async {
            let mut stream = self
                .handle
                .link()
                .get()
                .match_name(name.to_string())
                .execute();
            stream.next().await.transpose()
        });
        match found {
            Ok(message) => Ok(message.map(link_from_message)),
            Err(err) if netlink_errno(&err) == Some(libc::ENODEV) => Ok(None),
            Err(err) => Err(other_error("look up", name)(err)),
        }
    }

    fn index_of(&self, op: &'static str, name: &str) -> Result<u32, NetError> {
        match self.link(name)? {
            Some(link) => Ok(link.index),
            None => Err(NetError::NoSuchInterface {
                op,
                name: name.to_string(),
            }),
        }
    }

    /// `tc qdisc replace dev NAME root netem ...`.
    pub fn replace_netem(&self, name: &str, netem: &Netem) -> Result<(), NetError> {
        let options = netem.encode(&self.psched)?;
        let index = self.index_of("impair", name)?;
        let mut message = TcMessage::with_index(index as i32);
        message.header.parent = TcHandle::ROOT;
        message
            .attributes
            .push(TcAttribute::Kind("netem".to_string()));
        // netem's options are a struct followed by attributes, not a nested attribute list,
        // so they go out as one opaque TCA_OPTIONS attribute.
        message
            .attributes
            .push(TcAttribute::Other(rtnetlink::packet_core::DefaultNla::new(
                TCA_OPTIONS,
                options,
            )));
        let mut request = NetlinkMessage::from(RouteNetlinkMessage::NewQueueDiscipline(message));
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE;
        match self.acknowledged(request) {
            Ok(()) => Ok(()),
            // ENOENT for a qdisc kind: the kernel found no `netem` (nor a module to load).
            Err(err) if netlink_errno(&err) == Some(libc::ENOENT) => {
                Err(NetError::NetemUnavailable {
                    name: name.to_string(),
                    cause: io_cause(err),
                })
            }
            Err(err) => Err(link_error("set netem on", name)(err)),
        }
    }

    /// `tc qdisc del dev NAME root`; no root qdisc to delete is fine.
    pub fn delete_root_qdisc(&self, name: &str) -> Result<(), NetError> {
        let index = self.index_of("remove the impairment of", name)?;
        let mut request = self.handle.qdisc().del(index as i32);
        request.message_mut().header.parent = TcHandle::ROOT;
        match self.block(request.execute()) {
            Ok(()) => Ok(()),
            // ENOENT: only the default qdisc is there (the kernel refuses to delete it).
            Err(err) if netlink_errno(&err) == Some(libc::ENOENT) => Ok(()),
            Err(err) => Err(link_error("remove the impairment of", name)(err)),
        }
    }

    /// The qdiscs of one interface (`tc qdisc show dev NAME`).
    pub fn qdiscs(&self, name: &str) -> Result<Vec<Qdisc>, NetError> {
        let index = self.index_of("list the qdiscs of", name)?;
        let messages: Vec<TcMessage> = self
            .block(
                self.handle
                    .qdisc()
                    .get()
                    .index(index as i32)
                    .execute()
                    .try_collect(),
            )
            .map_err(other_error("list qdiscs of", name))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index as i32)
            .map(|m| self.qdisc_from_message(m))
            .collect())
    }

    fn qdisc_from_message(&self, message: TcMessage) -> Qdisc {
        let mut qdisc = Qdisc {
            ifindex: message.header.index as u32,
            kind: String::new(),
            handle: message.header.handle.into(),
            parent: message.header.parent.into(),
            root: message.header.parent == TcHandle::ROOT,
            netem: None,
        };
        let mut options = None;
        for attribute in message.attributes {
            match attribute {
                TcAttribute::Kind(kind) => qdisc.kind = kind,
                TcAttribute::Options(list) => options = Some(list),
                _ => {}
            }
        }
        if qdisc.kind == "netem" {
            // Unknown kinds come back as one opaque attribute holding the raw payload.
            if let Some([TcOption::Other(raw)]) = options.as_deref() {
                use rtnetlink::packet_core::Nla;
                let mut bytes = vec![0u8; raw.value_len()];
                raw.emit_value(&mut bytes);
                qdisc.netem = Netem::decode(&bytes, &self.psched);
            }
        }
        qdisc
    }

    /// Sends a request and waits for the kernel's acknowledgement.
    fn acknowledged(
        &self,
        request: NetlinkMessage<RouteNetlinkMessage>,
    ) -> Result<(), rtnetlink::Error> {
        let mut handle = self.handle.clone();
        self.block(async move {
            let mut responses = handle.request(request)?;
            while let Some(message) = responses.next().await {
                if let NetlinkPayload::Error(err) = message.payload {
                    return Err(rtnetlink::Error::NetlinkError(err));
                }
            }
            Ok(())
        })
    }
}

/// Runs on a thread inside the target namespace: the socket belongs to that namespace.
fn route_socket() -> Result<OwnedFd, NetError> {
    // SAFETY: plain socket(2) call; the returned descriptor is checked and owned below.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(NetError::Socket(io::Error::last_os_error()));
    }
    // SAFETY: `fd` was just returned by socket(2) and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn link_from_message(message: LinkMessage) -> Link {
    let mut link = Link {
        index: message.header.index,
        name: String::new(),
        kind: None,
        mac: None,
        up: message.header.flags.contains(LinkFlags::Up),
        mtu: 0,
        master: None,
        stats: LinkStats::default(),
    };
    for attribute in message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => link.name = name,
            LinkAttribute::Address(bytes) if bytes.len() == 6 => {
                link.mac = Some(
                    bytes
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
            LinkAttribute::Mtu(mtu) => link.mtu = mtu,
            LinkAttribute::Controller(index) => link.master = Some(index),
            LinkAttribute::Stats64(stats) => {
                link.stats = LinkStats {
                    rx_bytes: stats.rx_bytes,
                    tx_bytes: stats.tx_bytes,
                    rx_packets: stats.rx_packets,
                    tx_packets: stats.tx_packets,
                    rx_dropped: stats.rx_dropped,
                    tx_dropped: stats.tx_dropped,
                }
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Kind(kind) = info {
                        link.kind = Some(kind.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    link
}

/// The errno of a kernel refusal (positive), if that is what `err` is.
fn netlink_errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(message) if message.raw_code() != 0 => {
            Some(-message.raw_code())
        }
        _ => None,
    }
}

fn io_cause(err: rtnetlink::Error) -> io::Error {
    match netlink_errno(&err) {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::other(err),
    }
}

/// For operations on interfaces: EEXIST and ENODEV get their own, clearer errors.
fn link_error(op: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> NetError + use<> {
    let name = name.to_string();
    move |err| match netlink_errno(&err) {
        Some(libc::EEXIST) => NetError::Exists {
            op,
            name,
            cause: io_cause(err),
        },
        Some(libc::ENODEV) => NetError::NoSuchInterface { op, name },
        _ => NetError::Netlink {
            op,
            name,
            cause: io_cause(err),
        },
    }
}

/// A veth creation names the end that already exists only in the kernel's mind: report both.
fn veth_error(name: &str, peer: &str) -> impl FnOnce(rtnetlink::Error) -> NetError + use<> {
    link_error("create veth pair", &format!("{name} or {peer}"))
}

fn other_error(op: &'static str, name: &str) -> impl FnOnce(rtnetlink::Error) -> NetError + use<> {
    let name = name.to_string();
    move |err| NetError::Netlink {
        op,
        name,
        cause: io_cause(err),
    }
}

/// A route whose parts mix address families (rtnetlink's builder refuses it).
fn invalid_route<E: std::fmt::Display>(target: &str) -> impl FnOnce(E) -> NetError + use<E> {
    let name = target.to_string();
    move |err| NetError::Netlink {
        op: "add",
        name,
        cause: io::Error::new(io::ErrorKind::InvalidInput, err.to_string()),
    }
}
