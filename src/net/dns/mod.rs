//! The embedded DNS server each network runs for its members: container names, aliases
//! (replicas, round-robin) and `NAME.PROJECT`, answered from kiln's records. Names it does
//! not know get NXDOMAIN — or, on a network with egress, the machine's resolvers' answer
//! (`forward`); clients that are not members get REFUSED.
//!
//! `message` parses and builds packets, `table` holds a network's names, `server` runs a
//! socket on a thread. Creating the namespace, the address and resolv.conf is the caller's.

pub mod files;
pub mod forward;
pub mod message;
pub mod server;
pub mod table;
#[cfg(test)]
mod tests;

pub use forward::Forwarder;
pub use message::Lookup;
pub use server::{DnsError, DnsServer};
pub use table::NameTable;
