//! The underlay's impairments on the machines: the plan's impaired pairs of hosts (`plan`
//! expands every `link` of `underlay` between two sites into one pair per two hosts across
//! them) handed to `net::overlay::wan` as plain values, and taken away again.
//!
//! It decides nothing about placement or addresses: `hosts` calls [`ensure`] once the
//! machines exist and [`remove`] before they go.

use std::path::{Path, PathBuf};

use super::{ProjectError, ProjectPlan};
use crate::net::overlay::underlay::{SimHost, Underlay};
use crate::net::overlay::wan::{Carried, Wan};

/// Where the engine of a project's underlay keeps its state: inside the underlay's
/// directory, so that it is never taken for a host.
fn wan_root(underlay_dir: &Path) -> PathBuf {
    underlay_dir.join("wan")
}

fn wan(underlay: &Underlay, underlay_dir: &Path) -> Wan {
    Wan::new(underlay, &wan_root(underlay_dir))
}

fn kernel(source: crate::net::NetError) -> ProjectError {
    ProjectError::Host {
        host: "the underlay's impaired paths".to_string(),
        source,
    }
}

/// Makes the plan's impaired paths between the machines (and undoes the ones it no longer
/// declares).
pub(super) fn ensure(
    underlay: &Underlay,
    underlay_dir: &Path,
    hosts: &[SimHost],
    plan: &ProjectPlan,
) -> Result<Vec<Carried>, ProjectError> {
    wan(underlay, underlay_dir)
        .ensure(hosts, &plan.underlay)
        .map_err(kernel)
}

/// Removes the impaired paths, their engine and its namespace. Absent is fine.
pub(super) fn remove(underlay: &Underlay, underlay_dir: &Path) -> Result<(), ProjectError> {
    wan(underlay, underlay_dir).remove().map_err(kernel)
}

/// The network root of the engine of the impaired paths of the underlay in
/// `underlay_dir` (`hosts::underlay_dir`), when it has one.
pub fn engine_root(underlay_dir: &Path) -> Option<PathBuf> {
    let root = wan_root(underlay_dir);
    root.exists().then_some(root)
}
