//! A container's place on kiln's networks: the addresses reserved before it starts (with
//! the /etc/resolv.conf and /etc/hosts that name them), the interfaces made while its
//! process waits to be let go, the published ports' proxies while it runs, and the
//! release of all of it when the container is removed. The network work is `net`'s.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::ContainerError;
use crate::net::attach::{self, AttachRequest, Interface};
use crate::net::proxy::{PortProxy, Protocol, ProxyOptions};
use crate::net::{HostNamespace, NetNs};
use crate::runtime::spec::Volume;

/// `-p HOST:PORT[/udp]`, or a `publish` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub host_port: u16,
    pub port: u16,
    pub protocol: Protocol,
    /// The most connections (UDP: sessions) at once; the proxy's default when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// Idle connections (sessions) are closed after this many milliseconds; the proxy's
    /// default for the protocol when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_ms: Option<u64>,
}

impl Published {
    /// `HOST:PORT[/tcp|/udp]`.
    pub fn parse(text: &str) -> Result<Published, ContainerError> {
        let bad = |reason: &str| ContainerError::BadPublish {
            spec: text.to_string(),
            reason: reason.to_string(),
        };
        let (ports, protocol) = match text.rsplit_once('/') {
            Some((ports, "tcp")) => (ports, Protocol::Tcp),
            Some((ports, "udp")) => (ports, Protocol::Udp),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
            None => (text, Protocol::Tcp),
        };
        let (host, port) = ports
            .split_once(':')
            .ok_or_else(|| bad("give the host port and the container port"))?;
        let number = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("ports are numbers from 1 to 65535"))
        };
        Ok(Published {
            host_port: number(host)?,
            port: number(port)?,
            protocol,
            max_connections: None,
            idle_timeout_ms: None,
        })
    }

    /// The proxy's limits for this port.
    pub fn proxy_options(&self) -> ProxyOptions {
        let defaults = ProxyOptions::default();
        ProxyOptions {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            idle_timeout: self.idle_timeout_ms.map(std::time::Duration::from_millis),
            ..defaults
        }
    }
}

/// Checks that every host port is free now, before anything is created (the proxy binds
/// it for real once the container runs).
pub(crate) fn check_ports(publish: &[Published]) -> Result<(), ContainerError> {
    for p in publish {
        let address = SocketAddr::from(([127, 0, 0, 1], p.host_port));
        let free = match p.protocol {
            Protocol::Tcp => std::net::TcpListener::bind(address).map(drop),
            Protocol::Udp => std::net::UdpSocket::bind(address).map(drop),
        };
        if let Err(source) = free {
            return Err(ContainerError::PortInUse {
                port: p.host_port,
                source,
            });
        }
    }
    Ok(())
}

/// Reserves the container's addresses and writes its /etc files; returns its interfaces
/// and the volumes that put the files in place. Nothing to do without networks.
pub(crate) fn reserve(
    state_root: &Path,
    container_id: &str,
    names: &[String],
    search: Option<&str>,
    requests: &[AttachRequest],
) -> Result<(Vec<Interface>, Vec<Volume>), ContainerError> {
    if requests.is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let interfaces = attach::reserve(state_root, container_id, &names[0], requests)?;
    let files = attach::write_etc(state_root, container_id, &interfaces, names, search).map_err(
        |source| {
            attach::release(state_root, container_id, &interfaces);
            ContainerError::Io {
                path: attach::etc_dir(state_root, container_id),
                source,
            }
        },
    )?;
    let volumes = files
        .into_iter()
        .map(|(source, destination)| Volume {
            source,
            destination: destination.to_string(),
            read_only: false,
            ..Default::default()
        })
        .collect();
    Ok((interfaces, volumes))
}

/// The proxies of the published ports: 127.0.0.1:HOST on the machine to the container's
/// first address, reached through the kiln host namespace.
pub(crate) fn start_proxies(
    state_root: &Path,
    interfaces: &[Interface],
    publish: &[Published],
) -> Result<Vec<PortProxy>, ContainerError> {
    let Some(first) = interfaces.first() else {
        return Ok(Vec::new());
    };
    let target_ip: IpAddr = first.address.ip();
    let mut proxies = Vec::new();
    for p in publish {
        let host = NetNs::open(&HostNamespace::path(state_root))
            .map_err(crate::net::network::NetworkError::from)?;
        let proxy = PortProxy::start_with(
            SocketAddr::from(([127, 0, 0, 1], p.host_port)),
            SocketAddr::new(target_ip, p.port),
            Some(host.into()),
            p.protocol,
            p.proxy_options(),
        )
        .map_err(|e| ContainerError::Proxy(Box::new(e)))?;
        proxies.push(proxy);
    }
    Ok(proxies)
}

/// What a removed container held on kiln's networks: its interfaces (from its
/// `launch.json`; `None` when they are unknown) on the networks of `net_root`.
#[derive(Debug)]
pub struct Held {
    net_root: PathBuf,
    container_id: String,
    interfaces: Option<Vec<Interface>>,
}

impl Held {
    pub(crate) fn new(
        net_root: PathBuf,
        container_id: &str,
        interfaces: Option<Vec<Interface>>,
    ) -> Held {
        Held {
            net_root,
            container_id: container_id.to_string(),
            interfaces,
        }
    }

    /// Its `/etc` files, which the container alone uses.
    pub(crate) fn remove_etc(&self) {
        let _ = std::fs::remove_dir_all(attach::etc_dir(&self.net_root, &self.container_id));
    }
}

/// Releases what a removed container held on the networks: its interfaces, or, when they
/// are unknown, at least its `/etc` files.
pub(crate) fn release(held: &Held) {
    match &held.interfaces {
        Some(interfaces) => attach::release(&held.net_root, &held.container_id, interfaces),
        None => held.remove_etc(),
    }
}

/// Releases what many removed containers held, whose processes are gone and whose `/etc`
/// files were removed ([`Held::remove_etc`]): per network root, at once (see
/// [`attach::release_all`]; `linger` is how long the kernel may take to remove their
/// veths with their namespaces).
pub fn release_all(held: &[Held], linger: std::time::Duration) {
    let mut by_root: BTreeMap<&Path, Vec<(&str, &[Interface])>> = BTreeMap::new();
    for one in held {
        if let Some(interfaces) = &one.interfaces {
            by_root
                .entry(one.net_root.as_path())
                .or_default()
                .push((one.container_id.as_str(), interfaces.as_slice()));
        }
    }
    for (root, containers) in by_root {
        attach::release_all(root, &containers, linger);
    }
}
