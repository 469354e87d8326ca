//! `kiln up --dry-run`: where each container of the project would run, what each host
//! holds, and the networks — printed, nothing built or started.

use std::collections::BTreeMap;

use super::output::{line, table};
use crate::project::ProjectPlan;
use crate::spec::units::Size;

/// `1.5 cpus, 256MiB`; `-` when nothing is declared.
fn resources(cpus: Option<f64>, memory: Option<u64>) -> String {
    let mut parts = Vec::new();
    if let Some(cpus) = cpus {
        parts.push(if cpus == 1.0 {
            "1 cpu".to_string()
        } else {
            format!("{cpus} cpus")
        });
    }
    if let Some(memory) = memory {
        parts.push(Size(memory).to_string());
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join(", ")
    }
}

pub(super) fn print(plan: &ProjectPlan) -> Result<(), crate::Error> {
    if plan.hosts.is_empty() {
        line(format!(
            "{}: no hosts declared: every container runs on this machine",
            plan.project
        ))?;
    } else {
        let names: Vec<&str> = plan.hosts.iter().map(|h| h.name.as_str()).collect();
        line(format!(
            "{}: {} hosts ({}): each container's host, placed by the declared cpus and memory",
            plan.project,
            plan.hosts.len(),
            names.join(", ")
        ))?;
    }
    line(String::new())?;
    let mut rows = vec![
        ["CONTAINER", "HOST", "HOW", "CPUS, MEMORY"]
            .map(String::from)
            .to_vec(),
    ];
    for instance in &plan.instances {
        rows.push(vec![
            instance.name.clone(),
            instance
                .host
                .clone()
                .unwrap_or_else(|| "this machine".into()),
            if instance.host.is_none() {
                "-".into()
            } else if instance.pinned {
                "pinned".into()
            } else {
                "placed".into()
            },
            resources(instance.options.cpus, instance.options.memory),
        ]);
    }
    table(&rows)?;
    if !plan.hosts.is_empty() {
        line(String::new())?;
        let mut used: BTreeMap<&str, (f64, u64, usize)> = BTreeMap::new();
        for instance in &plan.instances {
            if let Some(host) = &instance.host {
                let entry = used.entry(host.as_str()).or_default();
                entry.0 += instance.options.cpus.unwrap_or(0.0);
                entry.1 += instance.options.memory.unwrap_or(0);
                entry.2 += 1;
            }
        }
        let mut rows = vec![
            ["HOST", "ADDRESS", "CAPACITY", "PLACED", "CONTAINERS"]
                .map(String::from)
                .to_vec(),
        ];
        for host in &plan.hosts {
            let (cpus, memory, count) = used.get(host.name.as_str()).copied().unwrap_or_default();
            let capacity = match (host.cpus, host.memory) {
                (None, None) => "any".to_string(),
                (cpus, memory) => resources(cpus, memory),
            };
            rows.push(vec![
                host.name.clone(),
                host.address.to_string(),
                capacity,
                resources(Some(cpus), Some(memory)),
                count.to_string(),
            ]);
        }
        table(&rows)?;
    }
    if !plan.underlay.is_empty() {
        line(String::new())?;
        let mut rows = vec![
            ["UNDERLAY", "IMPAIRMENT", "ENGINE"]
                .map(String::from)
                .to_vec(),
        ];
        for path in &plan.underlay {
            rows.push(vec![
                format!("{} — {}", path.a, path.b),
                super::links::describe_netem(&path.netem),
                match path.engine {
                    crate::net::impair::Engine::Auto => "auto",
                    crate::net::impair::Engine::Kernel => "kernel",
                    crate::net::impair::Engine::Userspace => "userspace",
                }
                .to_string(),
            ]);
        }
        table(&rows)?;
    }
    if !plan.networks.is_empty() {
        line(String::new())?;
        let mut rows = vec![["NETWORK", "SUBNET", "DRIVER"].map(String::from).to_vec()];
        for network in &plan.networks {
            rows.push(vec![
                network.name.clone(),
                network
                    .subnet
                    .map_or_else(|| "allocated".to_string(), |s| s.to_string()),
                match network.vni {
                    Some(vni) => format!("overlay, VNI {vni}"),
                    None => "bridge".to_string(),
                },
            ]);
        }
        table(&rows)?;
    }
    overlay_addresses(plan)
}

/// Each overlay's addresses, as every machine computes them: the containers' and each
/// host's range for containers started by hand.
fn overlay_addresses(plan: &ProjectPlan) -> Result<(), crate::Error> {
    let addresses = crate::project::overlay::addresses(plan);
    let mut rows = vec![["OVERLAY", "ADDRESS", "OF"].map(String::from).to_vec()];
    for network in plan.networks.iter().filter(|n| n.vni.is_some()) {
        let Some(subnet) = network.subnet else {
            continue;
        };
        for instance in &plan.instances {
            if let Some(address) = addresses
                .get(&network.name)
                .and_then(|a| a.get(&instance.name))
            {
                rows.push(vec![
                    network.name.clone(),
                    address.to_string(),
                    instance.name.clone(),
                ]);
            }
        }
        for (n, host) in plan.hosts.iter().enumerate() {
            if let Some((first, last)) =
                crate::project::overlay::dynamic_range(subnet, plan.hosts.len(), n)
            {
                rows.push(vec![
                    network.name.clone(),
                    format!("{first}-{last}"),
                    format!("started by hand on {}", host.name),
                ]);
            }
        }
    }
    if rows.len() > 1 {
        line(String::new())?;
        table(&rows)?;
    }
    Ok(())
}
