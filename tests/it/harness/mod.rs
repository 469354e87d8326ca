//! The one harness of kiln's integration tests. Everything a test needs beyond its own
//! assertions lives here, so that no test file carries a copy of a helper:
//!
//! - [`Kiln`] runs the real binary, fluently, and [`Ran`] asserts on what it did
//!   (`Kiln::new().args(["check"]).run().success().stdout_contains("1 image")`);
//! - [`Root`] is a temporary state root that checks, when it goes, that kiln left nothing
//!   behind: processes, mounts, namespace pins, cgroups, container records, links;
//! - [`Project`] is a `kiln.kdl` (and its files) in a temporary directory, and [`Lab`] a
//!   project built in its own root, where tests that run containers start;
//! - [`images`] holds the images tests build from the host's programs;
//! - [`wait_for`] and [`eventually`] poll with a generous deadline (never a timed assertion);
//! - [`host`] reads the machine: live processes, mounts, cgroups, links; [`tools`] runs the
//!   programs that read what kiln writes (skopeo, umoci, Python);
//! - [`is_root`], [`which`] and [`has_python`] say whether a test can run here: without CI
//!   they print a note and the test skips; under CI (`CI` set) they fail it instead;
//! - [`world`] makes namespaces that play the machine and the world outside it, for egress;
//!   [`machines`] makes two that play real machines joined by a veth, for `--host`;
//! - [`markdown`] reads fenced blocks from the book, [`console`] runs its console sessions;
//! - [`tree`] lists file trees (a directory, an image's layers) to compare them;
//! - [`repo`], [`example`], [`examples`] and [`assert_golden`] find the repository's files.
//!
//! This module tests nothing of kiln itself: it is the tests' tool box (its own matcher has
//! unit tests, in `console`).

pub mod console;
mod files;
pub mod host;
pub mod images;
mod kiln;
pub mod machines;
pub mod markdown;
mod needs;
mod project;
mod root;
pub mod tools;
pub mod tree;
mod wait;
pub mod world;

pub use files::{assert_golden, example, examples, repo};
pub use kiln::{Kiln, LOOPBACK_ONLY, Ran};
pub use needs::{has_python, is_root, which};
pub use project::{Lab, Project};
pub use root::Root;
pub use wait::{eventually, wait_for};
