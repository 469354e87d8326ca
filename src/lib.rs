//! kiln: a declarative container tool. One KDL file describes images, networks,
//! containers, links and tests; kiln checks it, builds it, runs it and tests it.
//!
//! The modules form a pipeline and depend only downwards: `cli` → `spec` (the language
//! front end, pure). Later stages (`plan`, `build`, `layer`, `store`, `image`, `runtime`,
//! `net`, `orchestrate`) join as they get content; see DESIGN.md §3.

pub mod atomic_file;
pub mod beneath;
pub mod build;
pub mod causes;
pub mod cli;
pub mod containers;
pub mod digest;
pub mod error;
pub mod graph;
pub mod image;
pub mod layer;
pub mod net;
pub mod plan;
pub mod probe;
pub mod project;
pub mod reference;
pub mod registry;
pub mod runtime;
pub mod spec;
pub mod state;
pub mod store;
pub mod timestamp;

#[cfg(test)]
mod test_support;

pub use error::Error;
