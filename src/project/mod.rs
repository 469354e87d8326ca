//! Whole projects: `kiln up`, `down`, `test` work on every container of a kiln.kdl at once.
//!
//! Owns the translation from the spec model to what must run: [`plan`] expands replicas,
//! resolves volumes and limits into `docker run`-style options and orders the instances in
//! start waves by `depends-on`. It is pure data; starting and stopping is done by
//! `containers` (and the network by `net`), never here by hand.

pub mod assert;
mod plan;
pub mod probe;
mod rollout;
#[cfg(test)]
mod tests;
mod up;

pub use plan::{Instance, LinkPlan, NetworkPlan, ProjectPlan, VolumePlan, plan};
pub use probe::LiveProber;
pub use rollout::{PREVIOUS, health_deadline, rollback};
pub use up::{DEFAULT_WAIT, ProjectError, UpEvent, down, project_records, up};
