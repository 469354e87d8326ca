//! Cross-reference checks over a whole project, after imports are merged.
//!
//! Owns every check that needs more than one node: duplicate names, references to images,
//! networks, containers and hosts, cycles, subnets and addresses, published ports, link
//! interfaces and paths on disk. It reads the model and reports; it never changes the model
//! and never stops at the first problem.

mod addresses;
mod graph;
mod hosts;
mod paths;
mod references;
mod remote;
mod underlay;

use std::collections::{BTreeSet, HashMap};
use std::hash::{BuildHasherDefault, Hasher};

use super::FileSystem;
use super::diag::Diagnostics;
use super::model::{Container, Project};
use super::source::Sources;

/// What validation knows beyond the project file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Images that exist outside the project (in the store), by name: `from` and `image=`
    /// may name them.
    pub external_images: BTreeSet<String>,
    /// Check that `copy` sources, volume sources and archives exist on disk.
    pub check_paths: bool,
    /// Checks the text of a container's seccomp profile file (with `check_paths`). The
    /// format is the runtime's business; the front end only reports what it says.
    pub check_seccomp_profile: Option<ProfileCheck>,
    /// Places the containers on the declared hosts and reports what does not fit. Where
    /// containers run is the orchestrator's business (`project`), so the front end is handed
    /// the check rather than knowing the algorithm.
    pub check_placement: Option<PlacementCheck>,
}

/// Reports, into the diagnostics, every container the project's hosts cannot take.
pub type PlacementCheck = fn(&Project, &mut Diagnostics);

/// Checks a seccomp profile's text: `Err` says what is wrong (with its JSON path) and how
/// to fix it.
pub type ProfileCheck = fn(&str) -> Result<(), ProfileProblem>;

/// What is wrong with a seccomp profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileProblem {
    pub message: String,
    pub help: String,
}

/// `incomplete`: an import could not be loaded, so references to undeclared names may be
/// declared there and are not reported.
pub(crate) fn validate(
    project: &Project,
    sources: &Sources,
    fs: &dyn FileSystem,
    options: &Options,
    incomplete: bool,
    lock: &super::lock::Lock,
    diags: &mut Diagnostics,
) {
    let index = Index::new(project);
    references::check(project, &index, options, incomplete, diags);
    remote::check(project, lock, options, diags);
    graph::check(project, diags);
    addresses::check(project, &index, diags);
    hosts::check(project, diags);
    underlay::check(project, diags);
    paths::check(
        project,
        sources,
        options.check_paths.then_some(fs),
        options.check_seccomp_profile,
        diags,
    );
    if let Some(check) = options.check_placement {
        check(project, diags);
    }
}

/// A multiply-rotate hasher (as in rustc's FxHash) for name maps: SipHash's flood
/// resistance buys nothing here and costs a visible share of a large project's check.
#[derive(Default)]
pub(super) struct NameHasher(u64);

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &byte in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(byte)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// A hash map keyed by names.
pub(super) type NameMap<K, V> = HashMap<K, V, BuildHasherDefault<NameHasher>>;

/// Name lookups built once per validation: the model's finders are linear, and checks that
/// call them per reference are quadratic on large projects.
pub(super) struct Index<'a> {
    /// Container name → its first declaration.
    containers: NameMap<&'a str, &'a Container>,
    /// Instance name (`web`, or `web-1`… for replicas) → the first container that makes it.
    instances: NameMap<String, &'a Container>,
}

impl<'a> Index<'a> {
    fn new(project: &'a Project) -> Self {
        let mut containers = NameMap::default();
        let mut instances = NameMap::default();
        for c in &project.containers {
            containers.entry(c.name.value.as_str()).or_insert(c);
            for name in c.instance_names() {
                instances.entry(name).or_insert(c);
            }
        }
        Index {
            containers,
            instances,
        }
    }

    /// The container declared under `name` (the first, if it is declared twice).
    pub(super) fn container(&self, name: &str) -> Option<&'a Container> {
        self.containers.get(name).copied()
    }

    /// The container that makes the instance `name`.
    pub(super) fn instance(&self, name: &str) -> Option<&'a Container> {
        self.instances.get(name).copied()
    }
}
