//! kiln's own impairment engine: netem's model in user space, for kernels without the
//! netem qdisc (and for links that ask for it with `engine="userspace"`).
//!
//! An impaired link (or a container's impaired attachment to a network) is split in two:
//! each end's veth has its peer in the kiln host namespace — a *port* — and a long-lived
//! process of the state root (`kiln __linkd`, [`daemon`]) moves frames between the two
//! ports of each *path*, one thread per direction, scheduling every frame by its departure
//! time as netem would ([`model`]).
//!
//! - [`rng`], [`model`] and [`frame`] are pure and tested with a seeded generator and a
//!   virtual clock ([`model`] draws delays from netem's distribution tables,
//!   [`crate::net::netem::dist`]);
//! - [`port`] is the kernel side (AF_PACKET sockets with virtio-net headers);
//! - [`pump`] is the I/O loop of one direction;
//! - [`paths`] is the desired state (`$ROOT/net/linkd.json`), [`control`] the daemon's
//!   socket (reload, live counters) and [`daemon`] the process, a service of the root's
//!   network supervisor (`net::supervise`).
//!
//! It knows nothing of kiln.kdl: it takes [`crate::net::Netem`] settings and port names.

pub mod control;
pub mod daemon;
pub mod frame;
pub mod model;
pub mod paths;
pub mod port;
pub mod pump;
pub mod rng;

#[cfg(test)]
mod tests;
