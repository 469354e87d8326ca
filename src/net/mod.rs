//! Networks: addresses, records, DNS and published ports. (This file declares only the
//! address/DNS/port half; the kernel half — namespaces, netlink, netem — joins it on merge.)
//!
//! Everything here happens in kiln's own network namespace or the containers'; nothing
//! touches the machine's own network configuration.

pub mod dns;
pub mod ipam;
pub mod proxy;
pub mod records;
#[cfg(test)]
mod tests_netns;
mod threads;
