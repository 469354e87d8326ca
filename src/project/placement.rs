//! Placement: which declared host runs each container instance of a project.
//!
//! Deterministic bin packing on the CPUs and memory the containers declare, against the
//! capacities the hosts declare (a host without one takes anything), so that every machine
//! reading the same file computes the same placement and none has to ask another:
//!
//! 1. Instances joined by links go together (a veth cannot cross machines): each connected
//!    group is one *unit*, its demand the sum of its members'.
//! 2. Pinned units (`host=`) go to their host first, in declaration order.
//! 3. The others, largest demand first (CPUs, then memory, then declaration order), each
//!    go to the host that fits them with, in order of preference: the fewest instances of
//!    the same services already there (replicas spread), the fullest result (bin packing:
//!    the highest share of a capacity in use afterwards), the fewest instances (hosts
//!    without capacities share the work), the earliest declaration.
//!
//! CPUs are counted in thousandths, so sums are exact. [`place`] is pure and knows nothing
//! of kiln.kdl; [`of_project`] and [`check`] adapt the spec model to it.

use std::collections::{BTreeMap, BTreeSet};

use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{Container, Project};
use crate::spec::units::Size;

#[cfg(test)]
mod tests;

/// What one host can take: `None` in a dimension means any amount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub name: String,
    pub millicpus: Option<u64>,
    pub memory: Option<u64>,
}

/// One instance to place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Demand {
    pub instance: String,
    /// Replicas of one service are spread across hosts.
    pub service: String,
    pub millicpus: u64,
    pub memory: u64,
    /// Index into the hosts of the host it is pinned to.
    pub pinned: Option<usize>,
}

/// What a host has left, for diagnostics: `None` where it has no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Free {
    pub millicpus: Option<u64>,
    pub memory: Option<u64>,
}

/// Why instances could not be placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// No host has room for the unit (indices into the demands); `free` is what each host
    /// had left when it was tried.
    NoFit { unit: Vec<usize>, free: Vec<Free> },
    /// The unit is pinned to a host without room for it (it is placed there anyway).
    PinnedOver {
        unit: Vec<usize>,
        host: usize,
        free: Free,
    },
    /// Linked instances are pinned to two hosts: `first` to `first_host`, `other` to
    /// `other_host`. The unit is not placed.
    PinnedApart {
        first: usize,
        first_host: usize,
        other: usize,
        other_host: usize,
    },
}

/// The result: each demand's host (an index into the hosts), and what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    pub host_of: Vec<Option<usize>>,
    pub problems: Vec<Problem>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Used {
    millicpus: u64,
    memory: u64,
}

impl Capacity {
    fn free(&self, used: Used) -> Free {
        Free {
            millicpus: self.millicpus.map(|c| c.saturating_sub(used.millicpus)),
            memory: self.memory.map(|m| m.saturating_sub(used.memory)),
        }
    }

    fn fits(&self, used: Used, millicpus: u64, memory: u64) -> bool {
        self.millicpus
            .is_none_or(|cap| used.millicpus.saturating_add(millicpus) <= cap)
            && self
                .memory
                .is_none_or(|cap| used.memory.saturating_add(memory) <= cap)
    }

    /// The larger share of a limited capacity in use with `used`, in millionths (0 for a
    /// host without limits).
    fn fullness(&self, used: Used) -> u128 {
        let share = |used: u64, cap: Option<u64>| match cap {
            Some(cap) if cap > 0 => u128::from(used) * 1_000_000 / u128::from(cap),
            Some(_) => 1_000_000,
            None => 0,
        };
        share(used.millicpus, self.millicpus).max(share(used.memory, self.memory))
    }
}

/// Groups of demands that must share a host: the connected parts of `together` (pairs of
/// demand indices), each sorted, in order of their first member.
fn units(count: usize, together: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut parent: Vec<usize> = (0..count).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    for &(a, b) in together {
        if a >= count || b >= count {
            continue;
        }
        let (ra, rb) = (root(&mut parent, a), root(&mut parent, b));
        // The smaller index becomes the root: groups are found in declaration order.
        let (low, high) = (ra.min(rb), ra.max(rb));
        parent[high] = low;
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..count {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(i);
    }
    groups.into_values().collect()
}

/// The hosts' load while units are placed.
struct Load<'a> {
    used: Vec<Used>,
    /// Per host: how many instances of each service it has.
    services: Vec<BTreeMap<&'a str, usize>>,
}

impl<'a> Load<'a> {
    fn assign(
        &mut self,
        demands: &'a [Demand],
        unit: &[usize],
        host: usize,
        placement: &mut Placement,
    ) {
        for &i in unit {
            let d = &demands[i];
            self.used[host].millicpus = self.used[host].millicpus.saturating_add(d.millicpus);
            self.used[host].memory = self.used[host].memory.saturating_add(d.memory);
            *self.services[host].entry(d.service.as_str()).or_default() += 1;
            placement.host_of[i] = Some(host);
        }
    }
}

/// The summed CPUs and memory of a unit.
fn total(demands: &[Demand], unit: &[usize]) -> (u64, u64) {
    unit.iter().fold((0u64, 0u64), |(c, m), &i| {
        (
            c.saturating_add(demands[i].millicpus),
            m.saturating_add(demands[i].memory),
        )
    })
}

/// Places `demands` on `hosts`. `together` lists pairs of demands (indices) that must share
/// a host. The same input always gives the same output.
pub fn place(hosts: &[Capacity], demands: &[Demand], together: &[(usize, usize)]) -> Placement {
    let mut placement = Placement {
        host_of: vec![None; demands.len()],
        problems: Vec::new(),
    };
    if hosts.is_empty() {
        return placement;
    }
    let mut load = Load {
        used: vec![Used::default(); hosts.len()],
        services: vec![BTreeMap::new(); hosts.len()],
    };
    let mut pinned_units = Vec::new();
    let mut free_units = Vec::new();
    for unit in units(demands.len(), together) {
        let pins: BTreeSet<(usize, usize)> = unit
            .iter()
            .filter_map(|&i| {
                demands[i]
                    .pinned
                    .filter(|&h| h < hosts.len())
                    .map(|h| (h, i))
            })
            .collect();
        let mut distinct = pins
            .iter()
            .map(|&(h, _)| h)
            .collect::<BTreeSet<_>>()
            .into_iter();
        match (distinct.next(), distinct.next()) {
            (None, _) => free_units.push(unit),
            (Some(host), None) => pinned_units.push((unit, host)),
            (Some(first_host), Some(other_host)) => {
                let member = |host: usize| {
                    pins.iter()
                        .filter(|&&(h, _)| h == host)
                        .map(|&(_, i)| i)
                        .min()
                        .unwrap_or(unit[0])
                };
                placement.problems.push(Problem::PinnedApart {
                    first: member(first_host),
                    first_host,
                    other: member(other_host),
                    other_host,
                });
            }
        }
    }
    for (unit, host) in &pinned_units {
        let (cpus, memory) = total(demands, unit);
        if !hosts[*host].fits(load.used[*host], cpus, memory) {
            placement.problems.push(Problem::PinnedOver {
                unit: unit.clone(),
                host: *host,
                free: hosts[*host].free(load.used[*host]),
            });
        }
        load.assign(demands, unit, *host, &mut placement);
    }
    // Largest first; ties in declaration order (units are listed in it).
    free_units.sort_by_key(|unit| {
        let (cpus, memory) = total(demands, unit);
        (std::cmp::Reverse(cpus), std::cmp::Reverse(memory), unit[0])
    });
    for unit in &free_units {
        let (cpus, memory) = total(demands, unit);
        let unit_services: BTreeSet<&str> =
            unit.iter().map(|&i| demands[i].service.as_str()).collect();
        let best = (0..hosts.len())
            .filter(|&h| hosts[h].fits(load.used[h], cpus, memory))
            .min_by_key(|&h| {
                let same: usize = unit_services
                    .iter()
                    .map(|s| load.services[h].get(s).copied().unwrap_or(0))
                    .sum();
                let after = Used {
                    millicpus: load.used[h].millicpus.saturating_add(cpus),
                    memory: load.used[h].memory.saturating_add(memory),
                };
                let count: usize = load.services[h].values().sum();
                (same, std::cmp::Reverse(hosts[h].fullness(after)), count, h)
            });
        match best {
            Some(host) => load.assign(demands, unit, host, &mut placement),
            None => placement.problems.push(Problem::NoFit {
                unit: unit.clone(),
                free: hosts
                    .iter()
                    .zip(&load.used)
                    .map(|(h, u)| h.free(*u))
                    .collect(),
            }),
        }
    }
    placement
}

/// Thousandths of a CPU, rounded to the nearest.
fn millicpus(cpus: f64) -> u64 {
    if cpus.is_finite() && cpus > 0.0 {
        (cpus * 1000.0).round() as u64
    } else {
        0
    }
}

/// Hosts, instances with their containers, and linked pairs (see [`inputs`]).
type Inputs<'a> = (
    Vec<Capacity>,
    Vec<(Demand, &'a Container)>,
    Vec<(usize, usize)>,
);

/// The inputs of [`place`] for a project: its hosts, its instances (in declaration order,
/// replicas `1…N`) with the container that makes each, and the pairs its links join.
fn inputs(project: &Project) -> Inputs<'_> {
    let hosts: Vec<Capacity> = project
        .hosts
        .iter()
        .map(|h| Capacity {
            name: h.name.value.clone(),
            millicpus: h.cpus.as_ref().map(|c| millicpus(c.value)),
            memory: h.memory.as_ref().map(|m| m.value.0),
        })
        .collect();
    let mut demands = Vec::new();
    for container in &project.containers {
        let pinned = container
            .host
            .as_ref()
            .and_then(|h| hosts.iter().position(|c| c.name == h.value));
        for instance in container.instance_names() {
            demands.push((
                Demand {
                    instance,
                    service: container.name.value.clone(),
                    millicpus: container.cpus.as_ref().map_or(0, |c| millicpus(c.value)),
                    memory: container.memory.as_ref().map_or(0, |m| m.value.0),
                    pinned,
                },
                container,
            ));
        }
    }
    let index: BTreeMap<&str, usize> = demands
        .iter()
        .enumerate()
        .map(|(i, (d, _))| (d.instance.as_str(), i))
        .collect();
    let together = project
        .links
        .iter()
        .filter_map(|l| {
            Some((
                *index.get(l.a.container.value.as_str())?,
                *index.get(l.b.container.value.as_str())?,
            ))
        })
        .collect();
    (hosts, demands, together)
}

/// Every instance's host (by name), for a project that declares hosts; empty otherwise.
/// Instances that could not be placed (a file `kiln check` rejects) are left out.
pub fn of_project(project: &Project) -> BTreeMap<String, String> {
    let (hosts, demands, together) = inputs(project);
    let plain: Vec<Demand> = demands.iter().map(|(d, _)| d.clone()).collect();
    let placement = place(&hosts, &plain, &together);
    placement
        .host_of
        .iter()
        .zip(&plain)
        .filter_map(|(host, d)| Some((d.instance.clone(), hosts[(*host)?].name.clone())))
        .collect()
}

fn cpus_text(millicpus: u64) -> String {
    let whole = millicpus / 1000;
    let rest = millicpus % 1000;
    let number = if rest == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{rest:03}")
            .trim_end_matches('0')
            .to_string()
    };
    if millicpus == 1000 {
        "1 cpu".to_string()
    } else {
        format!("{number} cpus")
    }
}

/// `2 cpus and 512MiB`, `any cpus and 1GiB`, `nothing`.
fn free_text(free: Free) -> String {
    if free.millicpus == Some(0) && free.memory == Some(0) {
        return "nothing".to_string();
    }
    let cpus = free
        .millicpus
        .map_or_else(|| "any cpus".to_string(), cpus_text);
    let memory = free.memory.map_or_else(
        || "any memory".to_string(),
        |m| match m {
            0 => "no memory".to_string(),
            m => Size(m).to_string(),
        },
    );
    format!("{cpus} and {memory}")
}

fn need_text(millicpus: u64, memory: u64) -> String {
    match (millicpus, memory) {
        (0, 0) => "declares no cpus or memory".to_string(),
        (c, 0) => format!("needs {}", cpus_text(c)),
        (0, m) => format!("needs {}", Size(m)),
        (c, m) => format!("needs {} and {}", cpus_text(c), Size(m)),
    }
}

/// `kiln check`'s view of placement: a diagnostic for every instance no host can take, at
/// its container, with what each host has free. (The [`crate::spec::PlacementCheck`] the
/// front end is handed.)
pub fn check(project: &Project, diags: &mut Diagnostics) {
    let (hosts, demands, together) = inputs(project);
    if hosts.is_empty() {
        return;
    }
    let plain: Vec<Demand> = demands.iter().map(|(d, _)| d.clone()).collect();
    let placement = place(&hosts, &plain, &together);
    let described = |i: usize| {
        let (d, c) = &demands[i];
        if d.instance == c.name.value {
            format!("`{}`", d.instance)
        } else {
            format!("`{}` (a replica of `{}`)", d.instance, c.name.value)
        }
    };
    let unit_text = |unit: &[usize]| {
        let names: Vec<String> = unit.iter().map(|&i| described(i)).collect();
        match names.as_slice() {
            [one] => one.clone(),
            many => format!("{} (linked)", many.join(", ")),
        }
    };
    let need = |unit: &[usize]| {
        let (c, m) = unit.iter().fold((0u64, 0u64), |(c, m), &i| {
            (c + plain[i].millicpus, m + plain[i].memory)
        });
        need_text(c, m)
    };
    let mut reported: BTreeSet<&str> = BTreeSet::new();
    for problem in &placement.problems {
        match problem {
            Problem::NoFit { unit, free } => {
                let (_, container) = &demands[unit[0]];
                let what = unit_text(unit);
                let frees: Vec<String> = hosts
                    .iter()
                    .zip(free)
                    .map(|(h, f)| format!("`{}` has {} free", h.name, free_text(*f)))
                    .collect();
                let mut builder = diags
                    .error(
                        Code::NoHostFits,
                        container.name.span,
                        format!("{what} fits on no host"),
                    )
                    .label(need(unit))
                    .help(format!(
                        "{}; lower its `cpus` or `memory`, or give a host more",
                        frees.join(", ")
                    ));
                for (h, capacity) in project.hosts.iter().zip(&hosts) {
                    if capacity.millicpus.is_some() || capacity.memory.is_some() {
                        builder = builder
                            .related(h.name.span, format!("`{}` declared here", h.name.value));
                    }
                }
            }
            Problem::PinnedOver { unit, host, free } => {
                let (_, container) = &demands[unit[0]];
                // One diagnostic per pinned container, not per replica.
                if !reported.insert(container.name.value.as_str()) && unit.len() == 1 {
                    continue;
                }
                let span = container
                    .host
                    .as_ref()
                    .map_or(container.name.span, |h| h.span);
                let declared = &project.hosts[*host];
                diags
                    .error(
                        Code::NoHostFits,
                        span,
                        format!(
                            "{} does not fit on host `{}`",
                            unit_text(unit),
                            declared.name.value
                        ),
                    )
                    .label(need(unit))
                    .related(
                        declared.name.span,
                        format!("`{}` has {} free", declared.name.value, free_text(*free)),
                    )
                    .help(format!(
                        "pin it to another host, remove `host=` to let kiln place it, or give `{}` more",
                        declared.name.value
                    ));
            }
            Problem::PinnedApart {
                first,
                first_host,
                other,
                other_host,
            } => {
                let (first_d, first_c) = &demands[*first];
                let (other_d, other_c) = &demands[*other];
                let span = other_c.host.as_ref().map_or(other_c.name.span, |h| h.span);
                let mut builder = diags
                    .error(
                        Code::LinkAcrossHosts,
                        span,
                        format!(
                            "`{}` is pinned to `{}`, but a link joins it to `{}` on `{}`",
                            other_d.instance,
                            hosts[*other_host].name,
                            first_d.instance,
                            hosts[*first_host].name
                        ),
                    )
                    .label("a link is a veth pair: both ends on one machine");
                if let Some(pin) = &first_c.host {
                    builder =
                        builder.related(pin.span, format!("`{}` pinned here", first_d.instance));
                }
                builder.help("pin linked containers to one host, or join them by an overlay network instead of a link");
            }
        }
    }
}
