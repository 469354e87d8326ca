//! Networks: the kiln host namespace, netlink operations, netem impairments and interface
//! names (the kernel side); addresses, network records, DNS and published ports (the
//! service side); the glue that gives containers their interfaces and links; and kiln's
//! own impairment engine (`engine`), which applies netem's model in user space where the
//! kernel has no netem (`impair` chooses).
//!
//! Nothing here touches the machine's own network namespace (an invariant of the book's
//! "How kiln is built"): every interface, address, route and qdisc lives in a namespace
//! kiln created. tokio is an internal detail of [`netlink`]: every API here blocks. It does
//! not know kiln.kdl: the project hands it plain data (addresses, a `Netem`).

pub mod antispoof;
pub mod attach;
pub mod carrier;
pub mod daemon;
pub mod dns;
pub mod egress;
pub mod engine;
mod error;
pub mod host;
pub mod impair;
pub mod ipam;
pub mod link;
pub mod names;
pub mod netem;
pub mod netlink;
pub mod netns;
pub mod network;
pub(crate) mod nft;
pub mod overlay;
pub mod proxy;
pub mod records;
pub mod supervise;
mod threads;

pub use error::NetError;
pub use host::{HostNamespace, command_in, exec_in};
pub use netem::{Netem, Psched};
pub use netlink::{Link, LinkStats, Netlink, Qdisc};
pub use netns::{NetNs, run_in};

/// Every network service of a state root, which `supervise` keeps running while it is
/// wanted: the DNS daemon and kiln's impairment engine. Here, where the module's parts meet,
/// rather than in `supervise`: each service uses the supervisor's primitives, so the
/// supervisor cannot name them. A new per-root daemon adds itself here (and calls
/// [`supervise::revive`] from its main loop); nothing else changes.
pub const SERVICES: &[supervise::Service] = &[daemon::SERVICE, engine::daemon::SERVICE];

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_netns;
