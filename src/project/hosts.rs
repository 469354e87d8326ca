//! The declared hosts of a project, simulated on this machine (`kiln up` of a file with
//! `host` nodes): where each host's networks live, and making and removing them.
//!
//! Every host gets a *network root* under `$ROOT/hosts/<project>/<host>/`: a directory with
//! the layout of a state root's `net/` (records, pinned kiln namespace, DNS daemon) whose
//! containers are the state root's own (`net::host::set_owner`), so `kiln ps`, `logs`,
//! `exec`, `stats` and `test` find every container where they always do. The machines
//! themselves — a namespace each on a shared wire — are `net::overlay::underlay`'s, under
//! `$ROOT/hosts/<project>/underlay/`. On each host, every network of the project gets its
//! bridge; an overlay network also gets its MTU, the names of its containers on the other
//! hosts (for DNS) and its VTEP (`net::overlay`), from `project::overlay`'s plan.
//!
//! It decides no placement and no address (`placement`, `overlay`) and starts nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use super::{ProjectError, ProjectPlan};
use crate::containers::ContainerError;
use crate::net::network::NetworkError;
use crate::net::overlay::underlay::{SimHost, Underlay};
use crate::net::records::{NetworkRecords, Overlay, RemoteName};
use crate::net::{HostNamespace, NetError};

/// The MTU of the simulated wire (an Ethernet's).
pub const UNDERLAY_MTU: u32 = 1500;

/// `$ROOT/hosts/<project>`.
fn project_dir(state_root: &Path, project: &str) -> PathBuf {
    state_root.join("hosts").join(project)
}

/// The network root of simulated host `host` of `project`.
pub fn net_root(state_root: &Path, project: &str, host: &str) -> PathBuf {
    project_dir(state_root, project).join(host)
}

/// `$ROOT/hosts/<project>/underlay`: the machines, the wire, the impaired paths.
pub fn underlay_dir(state_root: &Path, project: &str) -> PathBuf {
    project_dir(state_root, project).join("underlay")
}

/// The simulated machines of `project` and the wire between them.
pub fn underlay(state_root: &Path, project: &str) -> Underlay {
    Underlay::new(&underlay_dir(state_root, project))
}

/// What [`simulate`] made: each host's network root, each network's subnet.
pub struct Simulated {
    pub net_roots: BTreeMap<String, PathBuf>,
    pub subnets: BTreeMap<String, IpNetwork>,
}

fn kernel(host: &str) -> impl FnOnce(NetError) -> ProjectError + '_ {
    move |source| ProjectError::Host {
        host: host.to_string(),
        source,
    }
}

fn network_error(err: impl Into<NetworkError>) -> ProjectError {
    ContainerError::from(err.into()).into()
}

/// Makes every declared host of the plan on this machine, with its networks and VTEPs
/// (what exists is kept; VTEPs are made again, from the file as it is now).
pub fn simulate(state_root: &Path, plan: &ProjectPlan) -> Result<Simulated, ProjectError> {
    let project = &plan.project;
    let hosts: Vec<SimHost> = plan
        .hosts
        .iter()
        .map(|h| SimHost {
            name: h.name.clone(),
            address: h.address,
        })
        .collect();
    let wire = underlay(state_root, project);
    wire.ensure(&hosts).map_err(kernel("the underlay"))?;
    super::underlay::ensure(&wire, &underlay_dir(state_root, project), &hosts, plan)?;
    let owner = std::fs::canonicalize(state_root).unwrap_or_else(|_| state_root.to_path_buf());
    let remotes = remote_names(plan);
    let mut net_roots = BTreeMap::new();
    let mut subnets = BTreeMap::new();
    for host in &plan.hosts {
        let root = net_root(state_root, project, &host.name);
        crate::net::host::set_owner(&root, &owner).map_err(kernel(&host.name))?;
        let records = NetworkRecords::open(&root).map_err(network_error)?;
        let mut bridges = BTreeMap::new();
        for network in &plan.networks {
            let record = crate::net::network::ensure(
                &root,
                &network.name,
                network.subnet,
                network.internal,
                network.egress,
                Some(project),
            )
            .map_err(network_error)?;
            if network.vni.is_some() {
                let theirs = remotes
                    .get(&(network.name.clone(), host.name.clone()))
                    .cloned()
                    .unwrap_or_default();
                let overlay = Overlay {
                    vni: network.vni.unwrap_or_default(),
                    local: host.address,
                    mtu: UNDERLAY_MTU - crate::net::overlay::OVERHEAD,
                };
                records
                    .set_overlay(&record.name, overlay, theirs)
                    .map_err(network_error)?;
            }
            subnets.insert(network.name.clone(), record.subnet);
            bridges.insert(network.name.clone(), record.bridge);
        }
        let machine = wire.host(&host.name).map_err(kernel(&host.name))?;
        let kiln = HostNamespace::ensure(&root).map_err(kernel(&host.name))?;
        for (_, vtep) in super::overlay::vteps(plan, &host.name, UNDERLAY_MTU, |n| {
            bridges.get(n).cloned().unwrap_or_default()
        }) {
            crate::net::overlay::ensure(&machine, &kiln, &vtep).map_err(kernel(&host.name))?;
        }
        net_roots.insert(host.name.clone(), root);
    }
    Ok(Simulated { net_roots, subnets })
}

/// For each (overlay network, host): the declared containers on the other hosts, with the
/// names DNS answers for them (their own, their aliases, their service's for a replica).
fn remote_names(plan: &ProjectPlan) -> BTreeMap<(String, String), Vec<RemoteName>> {
    let addresses = super::overlay::addresses(plan);
    let mut all: BTreeMap<(String, String), Vec<RemoteName>> = BTreeMap::new();
    for network in plan.networks.iter().filter(|n| n.vni.is_some()) {
        let Some(planned) = addresses.get(&network.name) else {
            continue;
        };
        for host in &plan.hosts {
            let names = plan
                .instances
                .iter()
                .filter(|i| i.host.as_deref().is_some_and(|h| h != host.name))
                .filter_map(|i| {
                    let attachment = i
                        .networks
                        .iter()
                        .find(|a| a.network.value == network.name)?;
                    let address: IpAddr = *planned.get(&i.name)?;
                    let mut aliases: Vec<String> =
                        attachment.aliases.iter().map(|a| a.value.clone()).collect();
                    if i.name != i.service {
                        aliases.push(i.service.clone());
                    }
                    Some(RemoteName {
                        name: i.name.clone(),
                        aliases,
                        address,
                    })
                })
                .collect();
            all.insert((network.name.clone(), host.name.clone()), names);
        }
    }
    all
}

/// Every simulated host of every project of the state root: (project, host, network
/// root), sorted.
pub fn simulated(state_root: &Path) -> Vec<(String, String, PathBuf)> {
    let mut all = Vec::new();
    let list = |dir: &Path| -> Vec<(String, PathBuf)> {
        let mut entries: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
            .collect();
        entries.sort();
        entries
    };
    for (project, dir) in list(&state_root.join("hosts")) {
        for (host, root) in list(&dir) {
            if host != "underlay" {
                all.push((project.clone(), host, root));
            }
        }
    }
    all
}

/// Removes every simulated host of `project`: the networks of each host's network root
/// (their bridges, VTEPs and DNS daemon go with its kiln namespace), then the machines and
/// the wire, then the directories. Absent is fine; the containers must be gone already.
pub fn remove(state_root: &Path, project: &str) -> Result<(), ProjectError> {
    let dir = project_dir(state_root, project);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "underlay" {
            continue;
        }
        let root = entry.path();
        let networks = NetworkRecords::open(&root)
            .and_then(|r| r.list())
            .map_err(network_error)?;
        for network in &networks {
            crate::net::network::remove(&root, &network.name).map_err(network_error)?;
        }
        crate::net::supervise::stop(&root);
        HostNamespace::remove(&root).map_err(kernel(&name))?;
        std::fs::remove_dir_all(&root).map_err(|source| ProjectError::HostState {
            path: root.clone(),
            source,
        })?;
    }
    let wire = underlay(state_root, project);
    super::underlay::remove(&wire, &underlay_dir(state_root, project))?;
    wire.remove().map_err(kernel("the underlay"))?;
    let _ = std::fs::remove_dir(&dir);
    let _ = std::fs::remove_dir(state_root.join("hosts"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Options, RealFs, load_source};

    fn plan_of(text: &str) -> ProjectPlan {
        let options = Options {
            check_placement: Some(super::super::placement::check),
            ..Options::default()
        };
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &options);
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
        super::super::plan(&loaded.project, Path::new("/")).unwrap()
    }

    #[test]
    fn each_host_names_the_overlay_containers_of_the_others_with_their_aliases() {
        let plan = plan_of(
            r#"
            project "p"
            image "base" { from "scratch"; }
            host "m1" address="192.0.2.1"
            host "m2" address="192.0.2.2"
            network "mesh" subnet="10.77.0.0/16" driver="overlay"
            network "local" subnet="10.9.0.0/24"
            container "a" image="base" host="m1" { network "mesh"; network "local"; }
            container "web" image="base" host="m2" replicas=2 { network "mesh" alias="www"; }
            "#,
        );
        let names = remote_names(&plan);
        let on_m1 = &names[&("mesh".to_string(), "m1".to_string())];
        let seen: Vec<(&str, Vec<&str>, String)> = on_m1
            .iter()
            .map(|r| {
                (
                    r.name.as_str(),
                    r.aliases.iter().map(String::as_str).collect(),
                    r.address.to_string(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("web-1", vec!["www", "web"], "10.77.0.3".to_string()),
                ("web-2", vec!["www", "web"], "10.77.0.4".to_string()),
            ]
        );
        let on_m2 = &names[&("mesh".to_string(), "m2".to_string())];
        assert_eq!(on_m2.len(), 1);
        assert_eq!(on_m2[0].name, "a");
        // A bridge network is each host's own: nobody on another host is named there.
        assert!(!names.keys().any(|(network, _)| network == "local"));
    }

    #[test]
    fn net_roots_are_per_project_and_host() {
        let root = Path::new("/var/lib/kiln");
        assert_eq!(
            net_root(root, "p", "m1"),
            Path::new("/var/lib/kiln/hosts/p/m1")
        );
    }
}
