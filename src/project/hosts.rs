//! The declared hosts of a project as this machine runs them — every one simulated here
//! (`kiln up` of a file with `host` nodes), or the one this machine is (`kiln up --host
//! NAME`): where each host's networks live, and making and removing them.
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
//! On a real machine (`--host`) there is no wire to make: the host's VTEPs are created in
//! the namespace kiln runs in — the machine's — and moved into the host's kiln namespace,
//! so their UDP sockets use the machine's own network and nothing else is added to it.
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

/// Makes the declared hosts this machine runs, with their networks and VTEPs (what exists
/// is kept; VTEPs are made again, from the file as it is now): every host, simulated, or —
/// when the plan is one host's share (`plan.here`, `kiln up --host`) — that host alone, its
/// VTEPs' sockets in the machine's own namespace (the one kiln runs in), which must hold
/// the host's declared address. Either way its network root is [`net_root`].
pub fn simulate(state_root: &Path, plan: &ProjectPlan) -> Result<Simulated, ProjectError> {
    let project = &plan.project;
    let wire = underlay(state_root, project);
    // The namespace each host's VTEPs send from, and the MTU of the wire there.
    let real = match &plan.here {
        None => {
            let hosts: Vec<SimHost> = plan
                .hosts
                .iter()
                .map(|h| SimHost {
                    name: h.name.clone(),
                    address: h.address,
                })
                .collect();
            wire.ensure(&hosts).map_err(kernel("the underlay"))?;
            super::underlay::ensure(&wire, &underlay_dir(state_root, project), &hosts, plan)?;
            None
        }
        Some(here) => Some(machine(plan, here)?),
    };
    let owner = std::fs::canonicalize(state_root).unwrap_or_else(|_| state_root.to_path_buf());
    let remotes = remote_names(plan);
    let mut net_roots = BTreeMap::new();
    let mut subnets = BTreeMap::new();
    for host in plan
        .hosts
        .iter()
        .filter(|h| plan.here.as_ref().is_none_or(|here| *here == h.name))
    {
        let fail = |source| match &real {
            None => ProjectError::Host {
                host: host.name.clone(),
                source,
            },
            Some(_) => ProjectError::Machine {
                host: host.name.clone(),
                source,
            },
        };
        let underlay_mtu = real.as_ref().map_or(UNDERLAY_MTU, |(_, mtu)| *mtu);
        let root = net_root(state_root, project, &host.name);
        crate::net::host::set_owner(&root, &owner).map_err(fail)?;
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
                let index = plan.hosts.iter().position(|h| h.name == host.name);
                let overlay = Overlay {
                    vni: network.vni.unwrap_or_default(),
                    local: host.address,
                    mtu: underlay_mtu.saturating_sub(crate::net::overlay::OVERHEAD),
                    range: index.and_then(|index| {
                        super::overlay::dynamic_range(record.subnet, plan.hosts.len(), index)
                    }),
                };
                records
                    .set_overlay(&record.name, overlay, theirs)
                    .map_err(network_error)?;
            }
            subnets.insert(network.name.clone(), record.subnet);
            bridges.insert(network.name.clone(), record.bridge);
        }
        let outside = match &real {
            None => wire.host(&host.name).map_err(fail)?,
            Some((ns, _)) => ns.try_clone().map_err(fail)?,
        };
        let kiln = HostNamespace::ensure(&root).map_err(fail)?;
        for (_, vtep) in super::overlay::vteps(plan, &host.name, underlay_mtu, |n| {
            bridges.get(n).cloned().unwrap_or_default()
        }) {
            crate::net::overlay::ensure(&outside, &kiln, &vtep).map_err(fail)?;
        }
        net_roots.insert(host.name.clone(), root);
    }
    Ok(Simulated { net_roots, subnets })
}

/// The namespace of the machine kiln runs on, which is declared host `host`, and the MTU
/// of its interface holding the host's address (which it must hold).
fn machine(plan: &ProjectPlan, host: &str) -> Result<(crate::net::NetNs, u32), ProjectError> {
    let address = plan
        .hosts
        .iter()
        .find(|h| h.name == host)
        .map(|h| h.address)
        .ok_or_else(|| ProjectError::UnknownHost {
            host: host.to_string(),
            project: plan.project.clone(),
            declared: String::new(),
        })?;
    let fail = |source| ProjectError::Machine {
        host: host.to_string(),
        source,
    };
    let ns = crate::net::NetNs::of_pid(std::process::id() as i32).map_err(fail)?;
    match crate::net::overlay::underlay_interface(&ns, address).map_err(fail)? {
        Some((_, mtu)) => Ok((ns, mtu)),
        None => Err(ProjectError::NotThisMachine {
            host: host.to_string(),
            address,
        }),
    }
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

/// Removes every host of `project` made on this machine (simulated, or the one this
/// machine is): the networks of each host's network root (their bridges, VTEPs and DNS
/// daemon go with its kiln namespace), then the machines and the wire, then the
/// directories. Absent is fine; the containers must be gone already.
pub fn remove(state_root: &Path, project: &str) -> Result<(), ProjectError> {
    remove_hosts(state_root, project, None)
}

/// [`remove`] for host `host` alone (`kiln down --host`); the wire of simulated hosts goes
/// with the last host.
pub fn remove_host(state_root: &Path, project: &str, host: &str) -> Result<(), ProjectError> {
    remove_hosts(state_root, project, Some(host))
}

fn remove_hosts(state_root: &Path, project: &str, only: Option<&str>) -> Result<(), ProjectError> {
    let dir = project_dir(state_root, project);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut left = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == "underlay" {
            continue;
        }
        if only.is_some_and(|host| host != name) {
            left += 1;
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
    if left > 0 {
        return Ok(());
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

    const SHARES: &str = r#"
        project "p"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1"
        host "m2" address="192.0.2.2"
        network "mesh" subnet="10.77.0.0/16" driver="overlay"
        container "a" image="base" host="m1" { network "mesh"; }
        container "web" image="base" host="m2" replicas=2 { network "mesh"; }
        test "t" {
            dns from="a" "web"
            dns from="web" "a"
            exec "web-1" "true"
        }
        test "faulty" {
            fault at="0s" { stop "web-2"; }
            dns from="a" "web"
        }
    "#;

    #[test]
    fn a_plan_on_one_host_runs_its_share_and_knows_where_the_rest_is() {
        let plan = plan_of(SHARES);
        assert!(plan.instances.iter().all(|i| plan.runs_here(i)));
        assert_eq!(plan.elsewhere("web"), None, "every host runs here");
        let on_m1 = plan.clone().on_host("m1").unwrap();
        let here: Vec<&str> = on_m1
            .instances
            .iter()
            .filter(|i| on_m1.runs_here(i))
            .map(|i| i.name.as_str())
            .collect();
        assert_eq!(here, ["a"]);
        assert_eq!(on_m1.elsewhere("a"), None);
        assert_eq!(on_m1.elsewhere("web"), Some("m2"));
        assert_eq!(on_m1.elsewhere("web-2"), Some("m2"));
        assert_eq!(on_m1.elsewhere("nobody"), None);
        let err = plan.on_host("m9").unwrap_err().to_string();
        assert_eq!(err, "project p declares no host `m9`");
    }

    #[test]
    fn a_test_on_one_host_keeps_the_assertions_from_its_containers() {
        let options = Options {
            check_placement: Some(super::super::placement::check),
            ..Options::default()
        };
        let loaded = load_source("kiln.kdl", None, SHARES, &RealFs, &options);
        let plan = plan_of(SHARES).on_host("m1").unwrap();
        let mut tests = loaded.project.tests.clone();
        let left_out = super::super::assert::share(&mut tests, &[], |name| plan.elsewhere(name));
        // From web and web-1 (on m2), and the whole test whose fault stops web-2.
        assert_eq!(left_out, 3);
        assert_eq!(tests[0].assertions.len(), 1);
        assert!(tests[1].assertions.is_empty() && tests[1].faults.is_empty());
        let mut tests = loaded.project.tests.clone();
        let named = super::super::assert::share(&mut tests, &["t".to_string()], |name| {
            plan.elsewhere(name)
        });
        assert_eq!(named, 2);
        assert_eq!(
            tests[1].assertions.len(),
            1,
            "a test not named is left as it is"
        );
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
