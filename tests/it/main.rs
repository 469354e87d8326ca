//! kiln's integration tests: one binary, one module per capability.
//!
//! `harness` runs the real `kiln` binary with a fluent API; the other modules test what a
//! user sees. Golden files are rewritten with `KILN_BLESS=1 cargo test --test it`.

#![allow(unreachable_pub)]

mod archive;
mod book;
mod build;
mod check;
mod commit;
mod detach;
mod diagnostics;
mod examples;
mod exec;
mod fuzz;
mod graph;
mod harness;
mod health;
mod impair;
mod network;
mod project;
mod rollout;
mod run;
mod stats;
mod test_cmd;
