//! Cross-reference checks over a whole project, after imports are merged.
//!
//! Owns every check that needs more than one node: duplicate names, references to images,
//! networks, containers and hosts, cycles, subnets and addresses, published ports, link
//! interfaces and paths on disk. It reads the model and reports; it never changes the model
//! and never stops at the first problem.

mod addresses;
mod graph;
mod paths;
mod references;

use std::collections::BTreeSet;

use super::FileSystem;
use super::diag::Diagnostics;
use super::model::Project;
use super::source::Sources;

/// What validation knows beyond the project file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Images that exist outside the project (in the store), by name: `from` and `image=`
    /// may name them.
    pub external_images: BTreeSet<String>,
    /// Check that `copy` sources, volume sources and archives exist on disk.
    pub check_paths: bool,
}

/// `incomplete`: an import could not be loaded, so references to undeclared names may be
/// declared there and are not reported.
pub(crate) fn validate(
    project: &Project,
    sources: &Sources,
    fs: &dyn FileSystem,
    options: &Options,
    incomplete: bool,
    diags: &mut Diagnostics,
) {
    references::check(project, options, incomplete, diags);
    graph::check(project, diags);
    addresses::check(project, diags);
    paths::check(project, sources, options.check_paths.then_some(fs), diags);
}
