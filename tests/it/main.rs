//! kiln's integration tests: one binary, one module per capability.
//!
//! `harness` is the one tool box (the real `kiln` binary run fluently, temporary state roots
//! that check nothing is left, projects, images, waiting, what a test needs to run); the
//! other modules test what a user sees and hold no helper of their own. Golden files are
//! rewritten with `KILN_BLESS=1 cargo test --test it`.

#![allow(unreachable_pub)]

mod antispoof;
mod archive;
mod attach_ipv6;
mod book;
mod book_console;
mod build;
mod build_sandbox;
mod check;
mod commit;
mod commit_race;
mod completions;
mod container_cp;
mod container_options;
mod copy;
mod detach;
mod devices;
mod diagnostics;
mod egress;
mod examples;
mod exe_of_kiln;
mod exec;
mod fuzz;
mod fuzz_archives;
mod graph;
mod harness;
mod health;
mod hostile_archives;
mod impair;
mod info;
mod init;
mod inroot;
mod lifecycle;
mod listing;
mod logs;
mod namespaces;
mod network;
mod placement;
mod project;
mod proxy;
mod real_hosts;
mod registry;
mod rollout;
mod run;
mod run_options;
mod seccomp;
mod services;
mod stats;
mod system;
mod tarball;
mod test_cmd;
mod unprivileged;
mod volumes;
