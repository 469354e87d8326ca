//! `--add-host`, `--dns`, `--dns-search` and `--dns-option` (`add-host`, `dns`,
//! `dns-search`, `dns-option` in kiln.kdl): what they add to the container's `/etc/hosts`
//! and `/etc/resolv.conf`, with Docker's meaning. On a kiln network kiln writes both files
//! (its DNS server, the container's own names): the added hosts and the search domains and
//! options go into them, and `host-gateway` is the network's gateway. As on Docker's
//! user-defined networks, `--dns` there sets the upstream servers of kiln's DNS server for
//! this container (the names it does not know go to them instead of the machine's): on a
//! network with egress only; one without egress asks no other server, so `--dns` is
//! refused there, never ignored. Without a kiln network the files are written only when
//! asked for: `--dns` servers (else the machine's), search domains and options.
//!
//! The text is built by pure functions; [`write`] puts the files in the container's
//! `/etc` directory of the state root (the caller binds them in).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::ContainerError;
use crate::net::attach::{Interface, etc_dir};
use crate::runtime::spec::{EtcOptions, HostAddress, Volume};

/// Refuses what cannot take effect, before anything is made: `--dns` when the container's
/// first kiln network (the one whose DNS server its resolv.conf names) has no egress,
/// `host-gateway` without a network. `first_network`: that network's name and egress.
pub(crate) fn check(
    etc: &EtcOptions,
    on_kiln_network: bool,
    first_network: Option<(&str, bool)>,
) -> Result<(), ContainerError> {
    if let Some((network, false)) = first_network
        && !etc.dns.is_empty()
    {
        return Err(ContainerError::DnsWithoutEgress {
            network: network.to_string(),
        });
    }
    if !on_kiln_network
        && let Some(host) = etc
            .add_hosts
            .iter()
            .find(|h| h.address == HostAddress::Gateway)
    {
        return Err(ContainerError::HostGatewayWithoutNetwork {
            name: host.name.clone(),
        });
    }
    Ok(())
}

/// The added host lines, `host-gateway` being `gateway`.
fn host_lines(etc: &EtcOptions, gateway: Option<IpAddr>) -> String {
    let mut text = String::new();
    for host in &etc.add_hosts {
        let address = match host.address {
            HostAddress::Ip(ip) => Some(ip),
            HostAddress::Gateway => gateway,
        };
        if let Some(address) = address {
            text.push_str(&format!("{address}\t{}\n", host.name));
        }
    }
    text
}

/// `resolv` (kiln's own, or empty) with the search domains merged into its `search` line
/// and the options added.
pub(crate) fn resolv_with(resolv: &str, etc: &EtcOptions) -> String {
    let mut lines: Vec<String> = resolv.lines().map(str::to_string).collect();
    if !etc.dns_search.is_empty() {
        let extra = etc.dns_search.join(" ");
        match lines.iter_mut().find(|l| l.starts_with("search ")) {
            Some(line) => {
                line.push(' ');
                line.push_str(&extra);
            }
            None => lines.push(format!("search {extra}")),
        }
    }
    if !etc.dns_options.is_empty() {
        lines.push(format!("options {}", etc.dns_options.join(" ")));
    }
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// `resolv.conf` without a kiln network: `--dns` servers, else the machine's (from
/// `machine`, its resolv.conf text), then the search domains and options.
pub(crate) fn resolv_alone(etc: &EtcOptions, machine: &str) -> String {
    let mut text = String::from("# written by kiln: --dns, --dns-search, --dns-option\n");
    let servers: Vec<String> = if etc.dns.is_empty() {
        machine
            .lines()
            .filter_map(|l| l.strip_prefix("nameserver"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else {
        etc.dns.iter().map(IpAddr::to_string).collect()
    };
    for server in servers {
        text.push_str(&format!("nameserver {server}\n"));
    }
    resolv_with(&text, etc)
}

/// Applies `etc` to the container's files: those kiln wrote for its networks (`written`:
/// host file and container path), or new ones without a network. Returns the volumes that
/// bind the files in (unchanged when there is nothing to do).
pub(crate) fn write(
    state_root: &Path,
    container_id: &str,
    etc: &EtcOptions,
    interfaces: &[Interface],
    hostname: &str,
    written: Vec<Volume>,
) -> Result<Vec<Volume>, ContainerError> {
    if etc.is_empty() {
        return Ok(written);
    }
    let dir = etc_dir(state_root, container_id);
    let io = |path: &PathBuf| {
        let path = path.clone();
        move |source| ContainerError::Io { path, source }
    };
    std::fs::create_dir_all(&dir).map_err(io(&dir))?;
    let gateway = interfaces.first().map(|i| i.gateway);
    let mut volumes = written;
    let hosts = dir.join("hosts");
    if !etc.add_hosts.is_empty() {
        let base = if volumes.iter().any(|v| v.destination == "/etc/hosts") {
            std::fs::read_to_string(&hosts).map_err(io(&hosts))?
        } else {
            volumes.push(etc_volume(&hosts, "/etc/hosts"));
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname}\n"
            )
        };
        let text = base + &host_lines(etc, gateway);
        crate::atomic_file::replace(&hosts, text.as_bytes()).map_err(io(&hosts))?;
    }
    let on_network = !interfaces.is_empty();
    if on_network && !etc.dns.is_empty() {
        // The DNS daemon's upstreams for this container (see `check`: egress only).
        crate::net::attach::write_dns_servers(state_root, container_id, &etc.dns)
            .map_err(io(&dir))?;
    }
    let resolv = dir.join("resolv.conf");
    let resolv_changes = !etc.dns_search.is_empty() || !etc.dns_options.is_empty();
    if resolv_changes || (!on_network && !etc.dns.is_empty()) {
        let text = if volumes.iter().any(|v| v.destination == "/etc/resolv.conf") {
            resolv_with(&std::fs::read_to_string(&resolv).map_err(io(&resolv))?, etc)
        } else {
            volumes.push(etc_volume(&resolv, "/etc/resolv.conf"));
            resolv_alone(
                etc,
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            )
        };
        crate::atomic_file::replace(&resolv, text.as_bytes()).map_err(io(&resolv))?;
    }
    Ok(volumes)
}

fn etc_volume(source: &Path, destination: &str) -> Volume {
    Volume {
        source: source.to_path_buf(),
        destination: destination.to_string(),
        read_only: false,
        ..Volume::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::spec::AddHost;

    fn etc() -> EtcOptions {
        EtcOptions {
            add_hosts: vec![
                "db:10.0.0.5".parse().unwrap(),
                "host.kiln.internal:host-gateway".parse().unwrap(),
            ],
            dns: Vec::new(),
            dns_search: vec!["corp.example".into()],
            dns_options: vec!["ndots:2".into(), "timeout:1".into()],
        }
    }

    #[test]
    fn added_hosts_and_the_gateway() {
        assert_eq!(
            host_lines(&etc(), Some("10.89.0.1".parse().unwrap())),
            "10.0.0.5\tdb\n10.89.0.1\thost.kiln.internal\n"
        );
        let six: AddHost = "v6:[2001:db8::1]".parse().unwrap();
        assert_eq!(six.address, HostAddress::Ip("2001:db8::1".parse().unwrap()));
        let plain: AddHost = "v6=2001:db8::2".parse().unwrap();
        assert_eq!(
            plain.address,
            HostAddress::Ip("2001:db8::2".parse().unwrap())
        );
        assert!("nohost".parse::<AddHost>().is_err());
        assert!("a:not-an-ip".parse::<AddHost>().is_err());
    }

    #[test]
    fn search_domains_join_kilns_and_options_follow() {
        let kiln = "# written by kiln\nnameserver 10.89.0.1\nsearch shop\n";
        assert_eq!(
            resolv_with(kiln, &etc()),
            "# written by kiln\nnameserver 10.89.0.1\nsearch shop corp.example\noptions ndots:2 timeout:1\n"
        );
        let machine = "nameserver 192.0.2.53\nsearch lan\n";
        let mut alone = etc();
        assert_eq!(
            resolv_alone(&alone, machine),
            "# written by kiln: --dns, --dns-search, --dns-option\nnameserver 192.0.2.53\nsearch corp.example\noptions ndots:2 timeout:1\n"
        );
        alone.dns = vec!["192.0.2.1".parse().unwrap()];
        assert!(resolv_alone(&alone, machine).contains("nameserver 192.0.2.1\nsearch"));
        assert!(check(&alone, true, Some(("front", false))).is_err());
        assert!(check(&alone, true, Some(("out", true))).is_ok());
        let servers_only = EtcOptions {
            dns: alone.dns.clone(),
            ..EtcOptions::default()
        };
        assert!(check(&servers_only, false, None).is_ok());
        assert!(check(&etc(), false, None).is_err());
        assert!(check(&etc(), true, Some(("front", false))).is_ok());
    }
}
