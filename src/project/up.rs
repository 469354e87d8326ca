//! `kiln up`: make the running containers of a project match its plan.
//!
//! Up walks the plan's start waves. Before an instance starts, the services it depends on
//! must meet their condition (started, healthy, completed); instances of one wave start in
//! parallel. An instance whose fingerprint and image are unchanged and that still runs is
//! kept; a changed one is rolled out (`rollout`: the instances of a service one at a
//! time, each ready before the next, rolled back if it is not); containers of the project
//! the plan no longer declares are removed (`kiln down` is `down`'s). The containers
//! themselves are `containers`' business: this module only decides and waits.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::plan::{Instance, ProjectPlan, VolumePlan};
use super::{ProjectError, UpEvent};
use crate::containers::{self, ContainerError, RunRequest};
use crate::image::StoredImage;
use crate::net::attach::AttachRequest;
use crate::net::link::LinkEnd;
use crate::runtime::spec::Volume;
use crate::spec::model::{Condition, ContainerKind};
use crate::state::{Membership, Record, Records, Status, split_hidden};
use crate::store::Store;

/// How long a dependency may take to meet its condition, and a job to finish.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Brings the project's containers to the plan. `only` limits it to these services and
/// what they depend on (nothing is removed then).
pub fn up(
    store: &Store,
    state_root: &Path,
    plan: &ProjectPlan,
    only: &[String],
    wait: Duration,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let records = Records::open(state_root)?;
    let selected = selected_services(plan, only);
    // A project with hosts runs each on a simulated machine, its networks there; with
    // `--host`, this machine is one of them and runs only its share (`plan.runs_here`).
    let (subnets, net_roots) = if plan.hosts.is_empty() {
        (make_networks(state_root, plan)?, BTreeMap::new())
    } else {
        let simulated = super::hosts::simulate(state_root, plan)?;
        (simulated.subnets, simulated.net_roots)
    };
    let mut addresses = plan_addresses(plan, &subnets)?;
    // An overlay's addresses are the file's (every host computes the same ones).
    for (network, planned) in super::overlay::addresses(plan) {
        for (instance, address) in planned {
            addresses.insert(address_key(&plan.project, &instance, &network), address);
        }
    }
    if only.is_empty() {
        for record in project_records(&records, &plan.project)? {
            // A kept previous version goes with its instance.
            let (instance, hidden) = match split_hidden(&record.name) {
                Some((base, _)) => (base, true),
                None => (record.name.as_str(), false),
            };
            if !plan
                .instances
                .iter()
                .any(|i| i.name == instance && plan.runs_here(i))
            {
                containers::remove(&records, &record, state_root, true)?;
                if !hidden {
                    events(UpEvent::Removed(record.name.clone()));
                }
            }
        }
    }
    for wave in &plan.waves {
        let instances: Vec<&Instance> = wave
            .iter()
            .map(|&i| &plan.instances[i])
            .filter(|i| selected.contains_key(i.service.as_str()) && plan.runs_here(i))
            .collect();
        for instance in &instances {
            for (service, condition) in &instance.depends_on {
                wait_for(&records, plan, service, *condition, wait, events)?;
            }
        }
        // New, kept and recreated instances start in parallel (on a bounded set of threads,
        // see `workers`); the changed instances of a service are rolled out one at a time,
        // in order, as one task.
        let mut tasks: Vec<Task> = Vec::new();
        let mut rollouts: BTreeMap<&str, Vec<(&Instance, Record)>> = BTreeMap::new();
        for instance in &instances {
            match assess(store, &records, plan, instance)? {
                Action::Rollout(existing) => rollouts
                    .entry(instance.service.as_str())
                    .or_default()
                    .push((instance, existing)),
                action => tasks.push(Task::One(instance, Box::new(action))),
            }
        }
        tasks.extend(rollouts.into_values().map(Task::Rollout));
        let start = |instance: &Instance| {
            let net_root = instance.host.as_ref().and_then(|h| net_roots.get(h));
            start_instance(
                store, state_root, plan, instance, &addresses, net_root, events,
            )
        };
        let mut results: Vec<Result<(), ProjectError>> = Vec::with_capacity(tasks.len());
        super::ordered::run_in_order(
            &tasks,
            |_| None::<()>,
            workers(),
            |task| match task {
                Task::One(instance, action) => carry_out(
                    &records,
                    state_root,
                    instance,
                    (**action).clone(),
                    &start,
                    events,
                ),
                Task::Rollout(changed) => {
                    for (instance, existing) in changed {
                        super::rollout::replace(
                            &records,
                            state_root,
                            existing,
                            &|| start(instance),
                            events,
                        )?;
                    }
                    Ok(())
                }
            },
            |_, result| results.push(result),
        );
        results.into_iter().collect::<Result<(), _>>()?;
    }
    make_links(&records, plan, events)?;
    // Jobs report their exit codes; services with a health check must be healthy.
    for instance in plan
        .instances
        .iter()
        .filter(|i| selected.contains_key(i.service.as_str()) && plan.runs_here(i))
    {
        let condition = match instance.kind {
            ContainerKind::Job => Condition::Completed,
            ContainerKind::Service if instance.health.is_some() => Condition::Healthy,
            ContainerKind::Service => continue,
        };
        wait_instance(
            &records,
            &plan.project,
            &instance.name,
            condition,
            wait,
            events,
        )?;
    }
    Ok(())
}

/// Makes the project's networks that are missing (as `project/name`, see [`crate::scope`]);
/// returns each one's subnet by its name in the project. All or nothing: when one cannot be
/// made, the ones made here are removed again, so a failed `up` leaves no half-made
/// topology behind.
fn make_networks(
    state_root: &Path,
    plan: &ProjectPlan,
) -> Result<BTreeMap<String, IpNetwork>, ProjectError> {
    let records = crate::net::records::NetworkRecords::open(state_root)
        .map_err(|e| ContainerError::from(crate::net::network::NetworkError::from(e)))?;
    let mut made: Vec<String> = Vec::new();
    let mut subnets = BTreeMap::new();
    for network in &plan.networks {
        let reference = crate::scope::qualify(Some(&plan.project), &network.name);
        let existed = matches!(records.find(&reference), Ok(Some(_)));
        match crate::net::network::ensure(
            state_root,
            &network.name,
            network.subnet,
            network.internal,
            network.egress,
            Some(&plan.project),
        ) {
            Ok(record) => {
                if !existed {
                    made.push(record.name);
                }
                subnets.insert(network.name.clone(), record.subnet);
            }
            Err(err) => {
                for name in made.iter().rev() {
                    let _ = crate::net::network::remove(state_root, name);
                }
                return Err(ContainerError::from(err).into());
            }
        }
    }
    Ok(subnets)
}

/// The key of an instance's address on a network (as `net::records` makes it).
fn address_key(project: &str, instance: &str, network: &str) -> String {
    format!("{project}/{instance}/{network}")
}

/// Every instance's address on every project network, planned at once: fixed ones first,
/// then the others in key order, so the same project gives the same addresses whatever
/// order its containers start in.
fn plan_addresses(
    plan: &ProjectPlan,
    subnets: &BTreeMap<String, IpNetwork>,
) -> Result<BTreeMap<String, IpAddr>, ProjectError> {
    let attachments: Vec<crate::net::ipam::Attachment> = plan
        .instances
        .iter()
        .flat_map(|instance| {
            instance
                .networks
                .iter()
                .filter(|a| subnets.contains_key(&a.network.value))
                .map(|a| crate::net::ipam::Attachment {
                    key: address_key(&plan.project, &instance.name, &a.network.value),
                    network: a.network.value.clone(),
                    fixed: a.ip.as_ref().map(|ip| ip.value),
                })
        })
        .collect();
    crate::net::ipam::plan_addresses(subnets, &attachments).map_err(|e| {
        ProjectError::Container(ContainerError::Network(
            crate::net::network::NetworkError::Ipam(e),
        ))
    })
}

/// The networks an instance attaches to, in declaration order, at their planned addresses;
/// replicas also answer to their service's name.
fn attach_requests(
    plan: &ProjectPlan,
    instance: &Instance,
    addresses: &BTreeMap<String, IpAddr>,
) -> Vec<AttachRequest> {
    instance
        .networks
        .iter()
        .map(|attachment| {
            let network = &attachment.network.value;
            let mut aliases: Vec<String> =
                attachment.aliases.iter().map(|a| a.value.clone()).collect();
            if instance.name != instance.service {
                aliases.push(instance.service.clone());
            }
            let reserved = plan
                .instances
                .iter()
                .filter(|other| other.name != instance.name)
                .flat_map(|other| &other.networks)
                .filter(|a| &a.network.value == network)
                .filter_map(|a| a.ip.as_ref().map(|ip| ip.value))
                .collect();
            let planned = addresses
                .get(&address_key(&plan.project, &instance.name, network))
                .copied();
            AttachRequest {
                network: crate::scope::qualify(Some(&plan.project), network),
                ip: attachment.ip.as_ref().map(|ip| ip.value).or(planned),
                aliases,
                impair: attachment.impair.as_ref().map(super::plan::netem),
                engine: attachment
                    .impair
                    .as_ref()
                    .map_or_else(Default::default, super::plan::engine),
                reserved,
            }
        })
        .collect()
}

/// Makes the project's links between running instances (those that exist are kept).
fn make_links(
    records: &Records,
    plan: &ProjectPlan,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let mut made = Vec::new();
    let before = crate::net::link::load_links(records.state_root()).unwrap_or_default();
    // A link joins two instances of one host (`kiln check` sees to it).
    let here = |name: &str| plan.elsewhere(name).is_none();
    for link in plan.links.iter().filter(|l| here(&l.a.0) && here(&l.b.0)) {
        let pid = |name: &str| -> Result<i32, ProjectError> {
            let record = named(records, &plan.project, name)?.reconciled();
            record
                .state
                .pid
                .filter(|_| record.state.status == Status::Running)
                .ok_or_else(|| ProjectError::LinkEndDown {
                    name: name.to_string(),
                })
        };
        let addresses = link.subnet.and_then(crate::net::link::link_addresses);
        let a = LinkEnd {
            pid: pid(&link.a.0)?,
            interface: link.a.1.clone(),
            address: addresses.map(|(a, _)| a),
        };
        let b = LinkEnd {
            pid: pid(&link.b.0)?,
            interface: link.b.1.clone(),
            address: addresses.map(|(_, b)| b),
        };
        let name = format!("{}:{} {}:{}", link.a.0, link.a.1, link.b.0, link.b.1);
        let (end_a, end_b) = (
            format!("{}:{}", link.a.0, link.a.1),
            format!("{}:{}", link.b.0, link.b.1),
        );
        let id = crate::net::link::link_id(&plan.project, &end_a, &end_b);
        let impair = link.impair.as_ref().map(|netem| (netem, link.engine));
        let connected = crate::net::link::connect(records.state_root(), &id, &a, &b, impair)
            .map_err(|source| ProjectError::Link {
                a: end_a.clone(),
                b: end_b.clone(),
                source,
            })?;
        if connected.made {
            events(UpEvent::Linked {
                link: name.clone(),
                impaired_by: connected.carrier.map(|c| c.name()),
            });
        }
        let mut record = crate::net::link::LinkRecord {
            project: plan.project.clone(),
            a: end_a,
            b: end_b,
            subnet: link.subnet,
            impair: link.impair.clone(),
            carrier: connected.carrier,
            declared: link.impair.clone(),
            declared_engine: link.engine,
        };
        // A link kept as it was keeps the impairment in force (`kiln network impair` may
        // have changed it) while kiln.kdl declares the same; a new declaration replaces it.
        if !connected.made
            && let Some(previous) = before.iter().find(|l| l.a == record.a && l.b == record.b)
        {
            if previous.declared == record.declared && previous.declared_engine == link.engine {
                record.impair = previous.impair.clone();
                record.carrier = previous.carrier;
            } else {
                let mut changed = previous.clone();
                changed.declared = record.declared.clone();
                record.carrier = crate::net::link::reimpair(
                    records.state_root(),
                    &changed,
                    [a.pid, b.pid],
                    link.impair.as_ref(),
                    link.impair.as_ref().map(|_| link.engine),
                )
                .map_err(|source| ProjectError::Link {
                    a: record.a.clone(),
                    b: record.b.clone(),
                    source,
                })?;
                events(UpEvent::Reimpaired {
                    link: name,
                    impaired_by: record.carrier.map(|c| c.name()),
                });
            }
        }
        made.push(record);
    }
    crate::net::link::save_project_links(records.state_root(), &plan.project, made).map_err(
        |source| ProjectError::Links {
            project: plan.project.clone(),
            source,
        },
    )
}

/// The container named exactly `name` in `project` (an id prefix never matches).
fn named(records: &Records, project: &str, name: &str) -> Result<Record, ProjectError> {
    records.find_member(Some(project), name)?.ok_or_else(|| {
        ProjectError::Record(crate::state::RecordError::NotFound {
            query: name.to_string(),
        })
    })
}

/// The records of a project's containers.
pub fn project_records(records: &Records, project: &str) -> Result<Vec<Record>, ProjectError> {
    Ok(records
        .list()?
        .into_iter()
        .filter(|r| r.member.as_ref().is_some_and(|m| m.project == project))
        .collect())
}

/// The services to bring up: `only` and everything they depend on (all when empty).
fn selected_services<'a>(plan: &'a ProjectPlan, only: &[String]) -> BTreeMap<&'a str, ()> {
    let mut selected = BTreeMap::new();
    let mut todo: Vec<&str> = if only.is_empty() {
        plan.instances.iter().map(|i| i.service.as_str()).collect()
    } else {
        plan.instances
            .iter()
            .map(|i| i.service.as_str())
            .filter(|s| only.iter().any(|o| o == s))
            .collect()
    };
    while let Some(service) = todo.pop() {
        if selected.insert(service, ()).is_none() {
            for instance in plan.instances.iter().filter(|i| i.service == service) {
                todo.extend(instance.depends_on.iter().map(|(d, _)| d.as_str()));
            }
        }
    }
    selected
}

/// How many containers `up` starts (and `down` removes) at once: enough to keep the
/// machine busy while each waits for its supervisor, few enough that a thousand-container
/// project does not run a thousand threads (each a stack to fault in, all contending for
/// the network records' lock).
pub(super) fn workers() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * 8).clamp(8, 64)
}

/// What to do with one instance.
#[derive(Clone)]
enum Action {
    /// It runs as declared.
    Keep,
    /// There is none.
    Start,
    /// The same definition, ended (or a job to run again): removed and started anew.
    Recreate(Record),
    /// Changed: replaced through a rollout.
    Rollout(Record),
}

/// Work for one thread of a wave.
enum Task<'a> {
    One(&'a Instance, Box<Action>),
    /// The changed instances of one service, in order.
    Rollout(Vec<(&'a Instance, Record)>),
}

/// Compares an instance with the container of its name, if any: reads the record, the
/// kernel's view of it and the image's digest, then lets [`decide`] choose.
fn assess(
    store: &Store,
    records: &Records,
    plan: &ProjectPlan,
    instance: &Instance,
) -> Result<Action, ProjectError> {
    // By exact name: a project name is never taken for some container's id prefix.
    let Some(existing) = records.find_member(Some(&plan.project), &instance.name)? else {
        return Ok(Action::Start);
    };
    let image = StoredImage::load(store, &instance.image).map_err(ContainerError::from)?;
    let digest = image.descriptor.digest.to_string();
    let existing = existing.reconciled();
    Ok(match decide(&plan.project, instance, &existing, &digest)? {
        Decision::Keep => Action::Keep,
        Decision::Recreate => Action::Recreate(existing),
        Decision::Rollout => Action::Rollout(existing),
    })
}

/// What becomes of an instance whose container exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decision {
    /// It runs as declared (or is a job that completed): left alone.
    Keep,
    /// The same definition, but ended — or a job, changed or not: removed and started anew.
    Recreate,
    /// A changed service instance: replaced through a rollout (kept for a rollback).
    Rollout,
}

/// The keep / recreate / rollout decision for `instance` of `project`, given the container
/// of its name as the kernel sees it now (`existing`, reconciled) and the digest its image
/// resolves to in the store. Pure: [`assess`] does the reading.
///
/// Unchanged means the same fingerprint (the node's meaning), the same image digest and
/// the same host (placement may move an instance when hosts or other containers change). A
/// container of that name that is not this project's is never touched.
pub(super) fn decide(
    project: &str,
    instance: &Instance,
    existing: &Record,
    image_digest: &str,
) -> Result<Decision, ProjectError> {
    let Some(member) = existing.member.as_ref().filter(|m| m.project == project) else {
        return Err(ProjectError::NameTaken {
            name: instance.name.clone(),
            project: project.to_string(),
        });
    };
    let same = member.fingerprint == instance.fingerprint
        && existing.image_digest == image_digest
        && member.host == instance.host;
    let alive = matches!(existing.state.status, Status::Running | Status::Restarting);
    let job_done = instance.kind == ContainerKind::Job
        && existing.state.status == Status::Exited
        && existing.state.exit_code == Some(0);
    Ok(if same && (alive || job_done) {
        Decision::Keep
    } else if same || instance.kind == ContainerKind::Job {
        Decision::Recreate
    } else {
        Decision::Rollout
    })
}

/// Keeps, recreates or starts one instance (never a rollout).
fn carry_out(
    records: &Records,
    state_root: &Path,
    instance: &Instance,
    action: Action,
    start: &dyn Fn(&Instance) -> Result<(), ProjectError>,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    match action {
        Action::Keep => {
            events(UpEvent::Kept(instance.name.clone()));
            Ok(())
        }
        Action::Start => start(instance),
        Action::Recreate(existing) | Action::Rollout(existing) => {
            containers::stop(records, &existing, None)?;
            containers::remove(records, &existing, state_root, true)?;
            events(UpEvent::Removed(instance.name.clone()));
            start(instance)
        }
    }
}

/// Creates and starts the instance's container.
fn start_instance(
    store: &Store,
    state_root: &Path,
    plan: &ProjectPlan,
    instance: &Instance,
    addresses: &BTreeMap<String, IpAddr>,
    net_root: Option<&PathBuf>,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let mut options = instance.options.clone();
    let (binds, named) = volumes(&plan.project, &instance.volumes);
    options.volumes = binds;
    let request = RunRequest {
        image: instance.image.clone(),
        name: Some(instance.name.clone()),
        options,
        remove: false,
        trace: false,
        restart: instance.restart,
        member: Some(Membership {
            project: plan.project.clone(),
            service: instance.service.clone(),
            fingerprint: instance.fingerprint.clone(),
            host: net_root.and(instance.host.clone()),
        }),
        networks: attach_requests(plan, instance, addresses),
        net_root: net_root.cloned(),
        publish: instance
            .publish
            .iter()
            .map(|p| containers::Published {
                host_ip: p
                    .address
                    .as_ref()
                    .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |a| a.value),
                host_port: p.host.value,
                port: p.port.value,
                protocol: match p.protocol {
                    crate::spec::model::Protocol::Tcp => crate::net::proxy::Protocol::Tcp,
                    crate::spec::model::Protocol::Udp => crate::net::proxy::Protocol::Udp,
                },
                max_connections: p.max_connections.as_ref().map(|m| m.value as usize),
                idle_timeout_ms: p
                    .idle_timeout
                    .as_ref()
                    .map(|d| d.value.as_std().as_millis() as u64),
            })
            .collect(),
        publish_all: instance.publish_all,
        volumes: named,
        labels: instance.labels.clone(),
        log: instance.log,
    };
    let health = instance.health.as_ref().map(health_check);
    containers::run_detached(store, state_root, &request, health)?;
    events(UpEvent::Started(instance.name.clone()));
    Ok(())
}

/// A container's `health` block, as the container keeps it (`launch.json`).
pub(super) fn health_check(health: &crate::spec::model::Health) -> containers::HealthCheck {
    use crate::spec::model::Probe;
    let probes = health
        .probes
        .iter()
        .map(|probe| match &probe.value {
            Probe::Http { url, status } => containers::HealthProbe::Http {
                url: url.value.clone(),
                status: Some(*status),
            },
            Probe::Tcp { address } => containers::HealthProbe::Tcp {
                address: address.value.clone(),
            },
            Probe::Exec { command } => containers::HealthProbe::Exec {
                command: command.iter().map(|c| c.value.clone()).collect(),
            },
        })
        .collect();
    containers::HealthCheck {
        probes,
        interval: health.interval.as_std(),
        timeout: health.timeout.as_std(),
        retries: health.retries,
        start_period: health.start_period.as_std(),
    }
}

/// Bind sources as they are (into `options`); named volumes as the project's, made and
/// filled from the image when the container is prepared.
fn volumes(project: &str, planned: &[VolumePlan]) -> (Vec<Volume>, Vec<containers::NamedVolume>) {
    let mut binds = Vec::new();
    let mut named = Vec::new();
    for volume in planned {
        match volume {
            VolumePlan::Bind {
                source,
                target,
                read_only,
            } => binds.push(Volume {
                source: source.clone(),
                destination: target.clone(),
                read_only: *read_only,
                propagation: None,
            }),
            VolumePlan::Named {
                name,
                target,
                read_only,
            } => named.push(containers::NamedVolume {
                project: Some(project.to_string()),
                name: Some(name.clone()),
                destination: target.clone(),
                read_only: *read_only,
                ..Default::default()
            }),
        }
    }
    (binds, named)
}

/// Waits until every instance of `service` meets `condition`.
fn wait_for(
    records: &Records,
    plan: &ProjectPlan,
    service: &str,
    condition: Condition,
    wait: Duration,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    // Another machine's instances are its own to wait for: this one cannot see them.
    for instance in plan
        .instances
        .iter()
        .filter(|i| i.service == service && plan.runs_here(i))
    {
        wait_instance(
            records,
            &plan.project,
            &instance.name,
            condition,
            wait,
            events,
        )?;
    }
    Ok(())
}

fn condition_name(condition: Condition) -> &'static str {
    match condition {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::Completed => "completed",
    }
}

/// How long a wait for a record change may last before the record is read again anyway
/// (a supervisor killed without a last word changes no file).
const RECHECK: Duration = Duration::from_millis(500);

/// Reads the instance's record, again at each of its changes, until it meets `condition`,
/// fails, or `wait` passes.
fn wait_instance(
    records: &Records,
    project: &str,
    name: &str,
    condition: Condition,
    wait: Duration,
    events: &(dyn Fn(UpEvent) + Sync),
) -> Result<(), ProjectError> {
    let what = condition_name(condition);
    let deadline = Instant::now() + wait;
    let mut announced = false;
    let watch = records.watch(&named(records, project, name)?.id).ok();
    loop {
        let record = named(records, project, name)?.reconciled();
        let state = &record.state;
        // The process may be gone a moment before its supervisor records the exit code.
        let exited = state.status == Status::Exited
            && (state.exit_code.is_some() || !state.supervisor_alive());
        let code = state.exit_code.unwrap_or(-1);
        match condition {
            Condition::Started if state.status != Status::Created => return Ok(()),
            Condition::Healthy if state.health.as_deref() == Some("healthy") => {
                if announced {
                    events(UpEvent::Healthy(name.to_string()));
                }
                return Ok(());
            }
            Condition::Completed if exited => {
                events(UpEvent::Completed {
                    name: name.to_string(),
                    code,
                });
                if code == 0 {
                    return Ok(());
                }
                return Err(ProjectError::Exited {
                    name: name.to_string(),
                    code,
                    condition: what,
                });
            }
            Condition::Healthy if exited => {
                return Err(ProjectError::Exited {
                    name: name.to_string(),
                    code,
                    condition: what,
                });
            }
            _ => {}
        }
        if Instant::now() >= deadline {
            return Err(ProjectError::NotReady {
                name: name.to_string(),
                condition: what,
                waited: wait,
            });
        }
        if !announced {
            announced = true;
            events(UpEvent::Waiting {
                name: name.to_string(),
                on: what.to_string(),
            });
        }
        let left = deadline
            .saturating_duration_since(Instant::now())
            .min(RECHECK);
        match &watch {
            Some(watch) => {
                watch.wait(left);
            }
            None => std::thread::sleep(left.min(Duration::from_millis(25))),
        }
    }
}
