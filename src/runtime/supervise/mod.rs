//! What a detached container's supervisor decides and records, kept apart from the process
//! plumbing so each rule is tested on its own: the restart policy with its backoff
//! ([`policy`]) and the log file with timestamps ([`logs`]), capped and rotated ([`rotate`]);
//! and what a supervisor gives back to the kernel once its container runs ([`shed`]).

pub mod logs;
pub mod policy;
pub mod rotate;
pub mod shed;
#[cfg(test)]
mod tests;

pub use logs::{LogLine, LogReader, LogWriter, Stream};
pub use policy::{Backoff, ExitReason, RestartPolicy};
pub use rotate::LogLimits;
