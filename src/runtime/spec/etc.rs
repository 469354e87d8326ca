//! `--add-host`, `--dns`, `--dns-search`, `--dns-option` as data. They are carried with
//! the run options but are not part of the OCI spec: the container's `/etc/hosts` and
//! `/etc/resolv.conf` are files kiln writes and binds in (`containers::etc_files`).

use std::net::IpAddr;

use super::SpecError;

/// What `/etc/hosts` and `/etc/resolv.conf` get beyond kiln's own lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcOptions {
    /// `--add-host NAME:IP`, in order.
    pub add_hosts: Vec<AddHost>,
    /// `--dns IP`: name servers (only without a kiln network).
    pub dns: Vec<IpAddr>,
    /// `--dns-search DOMAIN`.
    pub dns_search: Vec<String>,
    /// `--dns-option OPT` (`ndots:2`, `edns0`).
    pub dns_options: Vec<String>,
}

impl EtcOptions {
    pub fn is_empty(&self) -> bool {
        self.add_hosts.is_empty()
            && self.dns.is_empty()
            && self.dns_search.is_empty()
            && self.dns_options.is_empty()
    }
}

/// `--add-host NAME:IP` (or `NAME=IP`, Docker's newer form; `[…]` around an IPv6 address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddHost {
    pub name: String,
    pub address: HostAddress,
}

/// An added host's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostAddress {
    Ip(IpAddr),
    /// `host-gateway`: the gateway of the container's first kiln network.
    Gateway,
}

impl std::str::FromStr for AddHost {
    type Err = SpecError;

    fn from_str(text: &str) -> Result<AddHost, SpecError> {
        let bad = |help: &str| SpecError::BadAddHost {
            value: text.to_string(),
            help: help.to_string(),
        };
        let (name, address) = text
            .split_once('=')
            .or_else(|| text.split_once(':'))
            .ok_or_else(|| bad("write NAME:IP, e.g. `db:10.0.0.5` or `gw:host-gateway`"))?;
        let valid_name = !name.is_empty()
            && name.len() <= 253
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
        if !valid_name {
            return Err(bad("the name is letters, digits, `-`, `_` and `.`"));
        }
        let address = match address {
            "host-gateway" => HostAddress::Gateway,
            ip => HostAddress::Ip(
                ip.trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse()
                    .map_err(|_| bad("the address is an IPv4 or IPv6 address, or host-gateway"))?,
            ),
        };
        Ok(AddHost {
            name: name.to_string(),
            address,
        })
    }
}
