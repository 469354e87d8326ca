//! The underlay's impairments, from the file to the machines: every `link` of `underlay`
//! between two sites becomes one impaired path per pair of hosts across them (a host's site
//! is its `site=`, else itself), handed to `net::overlay::wan` as plain values.
//!
//! It decides nothing about placement or addresses, and makes nothing itself: `hosts`
//! calls [`ensure`] once the machines exist and [`remove`] before they go.

use std::path::{Path, PathBuf};

use super::{ProjectError, ProjectPlan};
use crate::net::overlay::underlay::{SimHost, Underlay};
use crate::net::overlay::wan::{Carried, Wan, WanPath};
use crate::spec::model::Project;

/// One impaired pair of hosts, as planned (the `a` host declared first).
pub type UnderlayPath = WanPath;

/// The impaired pairs of hosts the project's `underlay` declares, in the order of the
/// hosts' declaration. A validated project names only sites that exist, each pair once.
pub(super) fn plan(project: &Project) -> Vec<UnderlayPath> {
    let mut paths = Vec::new();
    for link in &project.underlay {
        let Some(impair) = &link.impair else {
            continue;
        };
        let netem = super::plan::netem(impair);
        let engine = super::plan::engine(impair);
        for (i, a) in project.hosts.iter().enumerate() {
            for b in &project.hosts[i + 1..] {
                let (sa, sb) = (a.site(), b.site());
                let joins = (sa == link.a.value && sb == link.b.value)
                    || (sa == link.b.value && sb == link.a.value);
                if joins && sa != sb {
                    paths.push(WanPath {
                        a: a.name.value.clone(),
                        b: b.name.value.clone(),
                        netem: netem.clone(),
                        engine,
                    });
                }
            }
        }
    }
    paths
}

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

/// The network root of the engine of `project`'s impaired paths, when it has one.
pub fn engine_root(state_root: &Path, project: &str) -> Option<PathBuf> {
    let root = wan_root(&super::hosts::underlay_dir(state_root, project));
    root.exists().then_some(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Options, RealFs, load_source};

    fn project_of(text: &str) -> Project {
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        loaded.project
    }

    #[test]
    fn a_site_link_impairs_every_pair_of_hosts_across_it_and_no_other() {
        let project = project_of(
            r#"
            host "e1" address="192.0.2.1" site="east"
            host "e2" address="192.0.2.2" site="east"
            host "w1" address="192.0.2.3" site="west"
            host "solo" address="192.0.2.4"
            underlay {
                link "west" "east" { impair delay="40ms" loss="1%"; }
                link "solo" "west" { impair delay="5ms"; }
            }
            "#,
        );
        let paths = plan(&project);
        let pairs: Vec<(&str, &str, u128)> = paths
            .iter()
            .map(|p| (p.a.as_str(), p.b.as_str(), p.netem.delay.as_millis()))
            .collect();
        assert_eq!(
            pairs,
            [("e1", "w1", 40), ("e2", "w1", 40), ("w1", "solo", 5)]
        );
        assert_eq!(paths[0].netem.loss_percent, 1.0);
    }
}
