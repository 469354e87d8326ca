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

/// `-p [IP:][HOST]:PORT[/udp]`, `-P`, or a `publish` node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The machine's address the proxy listens on (127.0.0.1 unless given).
    #[serde(default = "loopback")]
    pub host_ip: IpAddr,
    /// 0 until create picks a free one (`-p IP::PORT`, `-P`); recorded in `launch.json`.
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

fn loopback() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

impl Published {
    /// `PORT` published on a free host port of 127.0.0.1 (`-P`).
    pub fn random(port: u16, protocol: Protocol) -> Published {
        Published {
            host_ip: loopback(),
            host_port: 0,
            port,
            protocol,
            max_connections: None,
            idle_timeout_ms: None,
        }
    }

    /// Where the proxy listens on the machine.
    pub fn host_address(&self) -> SocketAddr {
        SocketAddr::new(self.host_ip, self.host_port)
    }

    /// `[IP:]HOST:PORT[/tcp|/udp]`, `IP::PORT` (a free host port on IP) or `PORT` alone (a
    /// free host port on 127.0.0.1), as in Docker; an IPv6 address goes in brackets
    /// (`[::1]:8080:80`).
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
        let number = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| bad("ports are numbers from 1 to 65535"))
        };
        let (address, host, port) = match ports.rsplit_once(':') {
            None => return Ok(Published::random(number(ports)?, protocol)),
            Some((front, port)) => match front.rsplit_once(':') {
                // `[::1]:8080` ends in `:8080`; `::1` alone is no address in this place.
                Some((address, host)) if !address.is_empty() => (Some(address), host, port),
                Some(_) => {
                    return Err(bad("give the host address before `::`, e.g. 127.0.0.1::80"));
                }
                None => (None, front, port),
            },
        };
        let host_ip = match address {
            None => loopback(),
            Some(a) => {
                let a = a
                    .strip_prefix('[')
                    .and_then(|a| a.strip_suffix(']'))
                    .unwrap_or(a);
                a.parse::<IpAddr>().map_err(|_| {
                    bad(&format!(
                        "`{a}` is not an IP address (write 127.0.0.1, or [::1] for IPv6)"
                    ))
                })?
            }
        };
        let host_port = match (address, host) {
            (Some(_), "") => 0,
            _ => number(host)?,
        };
        Ok(Published {
            host_ip,
            host_port,
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

/// Checks that every host address is the machine's and its port free now, before anything
/// is created (the proxy binds it for real once the container runs), and picks a free port
/// for each host port 0 (`-p IP::PORT`, `-P`) by binding port 0 and recording what the
/// kernel chose, so `kiln port` shows it.
pub(crate) fn check_ports(publish: &mut [Published]) -> Result<(), ContainerError> {
    for p in publish.iter_mut() {
        let address = p.host_address();
        let bound = match p.protocol {
            Protocol::Tcp => std::net::TcpListener::bind(address).and_then(|l| l.local_addr()),
            Protocol::Udp => std::net::UdpSocket::bind(address).and_then(|s| s.local_addr()),
        };
        match bound {
            Ok(local) => p.host_port = local.port(),
            Err(source) if source.kind() == std::io::ErrorKind::AddrNotAvailable => {
                return Err(ContainerError::HostAddress {
                    address: p.host_ip,
                    source,
                });
            }
            Err(source) => {
                return Err(ContainerError::PortInUse { address, source });
            }
        }
    }
    Ok(())
}

/// `-P`: every port the image exposes (`80/tcp`, `53/udp`, `8080`) that `-p` does not
/// already publish, on a free port of 127.0.0.1. Ports that are no port are skipped, as
/// Docker does with a config it cannot read.
pub(crate) fn publish_exposed<'a>(
    exposed: impl IntoIterator<Item = &'a String>,
    publish: &mut Vec<Published>,
) {
    for spec in exposed {
        let (port, protocol) = match spec.split_once('/') {
            None => (spec.as_str(), Protocol::Tcp),
            Some((port, "tcp")) => (port, Protocol::Tcp),
            Some((port, "udp")) => (port, Protocol::Udp),
            Some(_) => continue,
        };
        let Some(port) = port.parse::<u16>().ok().filter(|p| *p > 0) else {
            continue;
        };
        if !publish
            .iter()
            .any(|p| p.port == port && p.protocol == protocol)
        {
            publish.push(Published::random(port, protocol));
        }
    }
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

/// The proxies of the published ports: IP:HOST on the machine to the container's
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
            p.host_address(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_takes_dockers_forms_with_an_address_and_a_free_port() {
        let p = Published::parse("8080:80").unwrap();
        assert_eq!(
            (p.host_address().to_string(), p.port),
            ("127.0.0.1:8080".into(), 80)
        );
        let p = Published::parse("127.0.0.2:8080:80/udp").unwrap();
        assert_eq!(p.host_address().to_string(), "127.0.0.2:8080");
        assert_eq!(p.protocol, Protocol::Udp);
        let p = Published::parse("127.0.0.1::80").unwrap();
        assert_eq!(
            (p.host_address().to_string(), p.port),
            ("127.0.0.1:0".into(), 80)
        );
        let p = Published::parse("[::1]:8080:80").unwrap();
        assert_eq!(p.host_address().to_string(), "[::1]:8080");
        // The container port alone: a free host port on 127.0.0.1, as `-P` gives.
        let p = Published::parse("53/udp").unwrap();
        assert_eq!(
            (p.host_address().to_string(), p.port, p.protocol),
            ("127.0.0.1:0".into(), 53, Protocol::Udp)
        );
        for bad in [
            "0",
            "http",
            "::80",
            "localhost:8080:80",
            "1.2.3:8080:80",
            "8080:0",
            ":80",
        ] {
            assert!(Published::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn publish_all_adds_the_exposed_ports_that_p_does_not_name() {
        let mut publish = vec![Published::parse("18080:8080").unwrap()];
        let exposed: Vec<String> = ["8080/tcp", "53/udp", "9090", "http/tcp", "80/sctp"]
            .map(String::from)
            .to_vec();
        publish_exposed(&exposed, &mut publish);
        let got: Vec<(u16, u16, Protocol)> = publish
            .iter()
            .map(|p| (p.port, p.host_port, p.protocol))
            .collect();
        assert_eq!(
            got,
            [
                (8080, 18080, Protocol::Tcp),
                (53, 0, Protocol::Udp),
                (9090, 0, Protocol::Tcp)
            ]
        );
    }

    #[test]
    fn a_free_port_is_picked_and_a_foreign_address_refused() {
        let mut publish = vec![Published::parse("127.0.0.1::80").unwrap()];
        check_ports(&mut publish).unwrap();
        assert_ne!(publish[0].host_port, 0);
        let mut foreign = vec![Published::parse("192.0.2.1::80").unwrap()];
        assert!(matches!(
            check_ports(&mut foreign),
            Err(ContainerError::HostAddress { .. })
        ));
    }
}
