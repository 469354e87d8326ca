//! The names one network's DNS server answers: its members' container names and aliases
//! (replicas share an alias, so `client` answers every `client-N`), also as
//! `NAME.PROJECT`. Only members ask; everyone else is refused.
//!
//! Pure data: it does not know sockets, and it never forwards a name it does not know.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

use super::message::Lookup;
use crate::net::records::NetworkRecord;

/// Names and clients of one network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NameTable {
    project: Option<String>,
    clients: BTreeSet<IpAddr>,
    names: BTreeMap<String, Vec<Ipv4Addr>>,
}

impl NameTable {
    /// An empty table; names also answer with `.project` appended.
    pub fn new(project: Option<&str>) -> NameTable {
        NameTable {
            project: project.map(str::to_ascii_lowercase),
            ..NameTable::default()
        }
    }

    /// The table of a network record: every member's name and aliases. The gateway may ask
    /// too (kiln's own probes come from there).
    pub fn from_record(record: &NetworkRecord) -> NameTable {
        let mut table = NameTable::new(record.project.as_deref());
        table.allow_client(record.gateway);
        for member in &record.members {
            table.allow_client(member.address);
            if let IpAddr::V4(address) = member.address {
                for name in std::iter::once(&member.container_name).chain(&member.aliases) {
                    table.add_name(name, address);
                }
            }
        }
        table
    }

    /// Lets `client` ask.
    pub fn allow_client(&mut self, client: IpAddr) {
        self.clients.insert(client);
    }

    /// `name` answers `address` too (names are case-insensitive; an address is listed once).
    pub fn add_name(&mut self, name: &str, address: Ipv4Addr) {
        let addresses = self.names.entry(name.to_ascii_lowercase()).or_default();
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }

    /// What the server answers `client` about `qname` (lowercase, no trailing dot, as
    /// [`super::message::Query::name`] gives it).
    pub fn lookup(&self, qname: &str, client: IpAddr) -> Lookup {
        if !self.clients.contains(&client) {
            return Lookup::Refused;
        }
        let qname = qname.trim_end_matches('.').to_ascii_lowercase();
        let bare = self
            .project
            .as_deref()
            .and_then(|project| qname.strip_suffix(project)?.strip_suffix('.'))
            .unwrap_or(&qname);
        match self.names.get(bare).or_else(|| self.names.get(&qname)) {
            Some(addresses) => Lookup::Addresses(addresses.clone()),
            None => Lookup::NxDomain,
        }
    }
}
