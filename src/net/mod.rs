//! Networks: the kiln host namespace, netlink operations, netem impairments and interface
//! names — the kernel-facing foundation that the desired-state planner (IPAM, DNS, proxy)
//! builds on. See DESIGN.md §6: nothing here touches the machine's own network namespace;
//! every interface lives in a namespace kiln created.

mod error;
pub mod host;
pub mod names;
pub mod netem;
pub mod netlink;
pub mod netns;

pub use error::NetError;
pub use host::{HostNamespace, command_in, exec_in};
pub use netem::{Netem, Psched};
pub use netlink::{Link, LinkStats, Netlink, Qdisc};
pub use netns::{NetNs, run_in};

#[cfg(test)]
mod tests;
