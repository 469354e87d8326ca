//! kiln: a declarative container tool. One KDL file describes images, networks,
//! containers, links and tests; kiln checks it, builds it, runs it and tests it.
//!
//! The modules form a pipeline and depend only downwards (the book's "How kiln is built",
//! `book/src/inside/architecture.md`, has the map, the rule and the invariants;
//! `src/architecture.rs` tests the rule):
//!
//! - [`cli`] parses the command line and renders results; [`error`] gathers every module's
//!   error for the report.
//! - [`project`]: whole projects — `up`, `down`, rollouts, `kiln test`.
//! - [`containers`]: `kiln run`, the supervisor, exec, logs, stop, rm, stats, commit.
//! - [`build`] executes a [`plan`] (the build graph made from [`spec`]'s model), running
//!   `run` steps in the [`runtime`]'s sandbox.
//! - [`probe`]: http, tcp and ping from inside a network namespace; [`net`]: networks,
//!   DNS, published ports, links (the kernel side and the service side).
//! - [`runtime`]: one process tree from an OCI runtime spec — namespaces, rootfs, cgroups,
//!   seccomp, exec.
//! - [`registry`] and [`image`]: OCI images from registries and archives, their config and
//!   manifest; [`store`]: the content-addressed OCI layout; [`layer`]: reproducible tar
//!   layers and safe extraction; [`state`]: container records.
//! - [`spec`]: kiln.kdl → a validated, typed model with diagnostics (pure); [`graph`]
//!   draws it.
//! - Leaves any of them may use: [`digest`], [`reference`](mod@reference), [`atomic_file`], [`timestamp`],
//!   [`beneath`], [`inroot`], [`causes`], [`kernel_names`], [`env_file`].

pub mod atomic_file;
pub mod beneath;
pub mod build;
pub mod causes;
pub mod cli;
pub mod containers;
pub mod digest;
pub mod env_file;
pub mod error;
pub mod graph;
pub mod image;
pub mod inroot;
pub mod kernel_names;
pub mod layer;
pub mod net;
pub mod plan;
pub mod probe;
pub mod process;
pub mod project;
pub mod reference;
pub mod registry;
pub mod runtime;
pub mod scope;
pub mod spec;
pub mod state;
pub mod store;
pub mod timestamp;

#[cfg(test)]
mod architecture;
#[cfg(test)]
mod test_support;

pub use error::Error;
