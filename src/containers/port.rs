//! `kiln port`: a running container's published ports in Docker's words —
//! `8080/tcp -> 127.0.0.1:18080` for each (the port create picked for `-p IP::PORT` and `-P`), or the host addresses of one. A container that
//! does not run publishes nothing (its proxies live while it runs), as in Docker. It reads
//! the container's `launch.json`; it never binds or connects.

use std::net::SocketAddr;

use super::ContainerError;
use super::lifecycle::Launch;
use super::network::Published;
use crate::net::proxy::Protocol;
use crate::state::{Record, Records, Status};

/// `PORT`, `PORT/tcp` or `PORT/udp` (`PORT` alone is tcp, as in Docker).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortQuery {
    pub port: u16,
    pub protocol: Protocol,
}

impl PortQuery {
    pub fn parse(text: &str) -> Result<PortQuery, ContainerError> {
        let bad = |reason: &str| ContainerError::BadPublish {
            spec: text.to_string(),
            reason: reason.to_string(),
        };
        let (port, protocol) = match text.split_once('/') {
            None => (text, Protocol::Tcp),
            Some((port, "tcp")) => (port, Protocol::Tcp),
            Some((port, "udp")) => (port, Protocol::Udp),
            Some(_) => return Err(bad("the protocol is tcp or udp")),
        };
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad("ports are numbers from 1 to 65535"))?;
        Ok(PortQuery { port, protocol })
    }
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// Where a published port listens on the machine.
fn host_address(published: &Published) -> SocketAddr {
    published.host_address()
}

/// The lines `kiln port` prints: every mapping (`8080/tcp -> 127.0.0.1:18080`, sorted by
/// container port), or with `query` the host addresses of that port. A port asked for and
/// not published is an error.
pub fn port_lines(
    records: &Records,
    record: &Record,
    query: Option<PortQuery>,
) -> Result<Vec<String>, ContainerError> {
    let current = records.load(&record.id)?.reconciled();
    let mut published = if current.state.status == Status::Running {
        Launch::load(&records.dir(&record.id))?.publish
    } else {
        Vec::new()
    };
    published.sort_by_key(|p| (p.port, protocol_name(p.protocol), p.host_port));
    let lines: Vec<String> = match query {
        None => published
            .iter()
            .map(|p| {
                format!(
                    "{}/{} -> {}",
                    p.port,
                    protocol_name(p.protocol),
                    host_address(p)
                )
            })
            .collect(),
        Some(query) => published
            .iter()
            .filter(|p| p.port == query.port && p.protocol == query.protocol)
            .map(|p| host_address(p).to_string())
            .collect(),
    };
    if let Some(query) = query
        && lines.is_empty()
    {
        return Err(ContainerError::NoSuchPort {
            name: record.reference(),
            port: format!("{}/{}", query.port, protocol_name(query.protocol)),
        });
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_is_tcp_as_in_docker() {
        assert_eq!(
            PortQuery::parse("80").unwrap(),
            PortQuery {
                port: 80,
                protocol: Protocol::Tcp
            }
        );
        assert_eq!(PortQuery::parse("53/udp").unwrap().protocol, Protocol::Udp);
        for bad in ["0", "http", "80/sctp", "70000", ""] {
            assert!(PortQuery::parse(bad).is_err(), "{bad}");
        }
    }
}
