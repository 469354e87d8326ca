//! Executes the build graph: scheduler, cache and step executors (DESIGN.md §4).
pub mod inputs;
