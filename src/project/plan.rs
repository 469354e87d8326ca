//! The project plan: every container instance a project declares, replicas expanded, with
//! the options it runs with, in start waves that honour `depends-on`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;

use crate::containers::ContainerError;
use crate::net::Netem;
use crate::runtime::SeccompChoice;
use crate::runtime::spec::{NetworkMode, RunOptions, Tmpfs, Ulimit};
use crate::runtime::supervise::RestartPolicy;

use crate::spec::model::{
    Attachment, Condition, Container, ContainerKind, Driver, Health, Impairment, Project, Publish,
    RestartPolicy as SpecRestart, Seccomp, VolumeSource,
};

/// What `kiln up` must have running for one project.
#[derive(Debug, Clone)]
pub struct ProjectPlan {
    pub project: String,
    /// Every instance, in declaration order (replicas in order `1…N`).
    pub instances: Vec<Instance>,
    /// Start waves: indices into `instances`. Every instance of a wave depends only on
    /// services of earlier waves, so a wave starts once the conditions before it hold.
    pub waves: Vec<Vec<usize>>,
    pub networks: Vec<NetworkPlan>,
    pub links: Vec<LinkPlan>,
    /// The declared hosts, in declaration order (none: everything runs on this machine).
    pub hosts: Vec<HostPlan>,
    /// `--host NAME`: this machine *is* declared host NAME and runs only its share (the
    /// instances placed there), its VTEPs sending through the machine's own network.
    /// `None`: every declared host is simulated on this machine.
    pub here: Option<String>,
    /// The impaired pairs of hosts of the simulated underlay (`underlay { link … }`).
    pub underlay: Vec<crate::net::overlay::wan::WanPath>,
}

impl ProjectPlan {
    /// The plan as run by the machine that is declared host `host` (`kiln up --host`).
    pub fn on_host(mut self, host: &str) -> Result<ProjectPlan, super::ProjectError> {
        if !self.hosts.iter().any(|h| h.name == host) {
            return Err(super::ProjectError::UnknownHost {
                host: host.to_string(),
                project: self.project.clone(),
                declared: declared_hosts(&self.hosts),
            });
        }
        self.here = Some(host.to_string());
        Ok(self)
    }

    /// Whether `instance` runs on this machine: always, unless the plan is one host's share.
    pub fn runs_here(&self, instance: &Instance) -> bool {
        match &self.here {
            None => true,
            Some(host) => instance.host.as_deref() == Some(host.as_str()),
        }
    }

    /// The declared host `name` (a service's or an instance's) runs on, when this machine
    /// runs one host's share and it is another: the name then lives elsewhere. `None` for a
    /// name that runs here, or that the plan does not know.
    pub fn elsewhere(&self, name: &str) -> Option<&str> {
        self.here.as_ref()?;
        let mut hosts = self
            .instances
            .iter()
            .filter(|i| i.name == name || i.service == name);
        if hosts.clone().any(|i| self.runs_here(i)) {
            return None;
        }
        hosts.next()?.host.as_deref()
    }
}

/// The names of `hosts`, quoted, for a message: "`m1`, `m2`" (or "none").
fn declared_hosts(hosts: &[HostPlan]) -> String {
    if hosts.is_empty() {
        return "none".to_string();
    }
    hosts
        .iter()
        .map(|h| format!("`{}`", h.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A declared host: a machine of its own, or one simulated on this machine.
#[derive(Debug, Clone, PartialEq)]
pub struct HostPlan {
    pub name: String,
    /// Its underlay address (VXLAN's peers reach it there).
    pub address: std::net::IpAddr,
    pub cpus: Option<f64>,
    pub memory: Option<u64>,
}

/// A network the project declares.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkPlan {
    pub name: String,
    /// `None`: the first free /24 of 10.89.0.0/16.
    pub subnet: Option<IpNetwork>,
    pub internal: bool,
    /// `egress=#true`: a way out of the machine (see `net::egress`).
    pub egress: bool,
    /// The VNI of an overlay network (`driver="overlay"`); `None` for a bridge.
    pub vni: Option<u32>,
}

/// A link between two instances' named interfaces.
#[derive(Debug, Clone)]
pub struct LinkPlan {
    /// (instance, interface) of each end.
    pub a: (String, String),
    pub b: (String, String),
    pub subnet: Option<IpNetwork>,
    pub impair: Option<Netem>,
    /// Which engine carries `impair`.
    pub engine: crate::net::impair::Engine,
}

/// A volume the instance mounts, before its source is made to exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumePlan {
    /// A host path (made absolute against the project's directory).
    Bind {
        source: PathBuf,
        target: String,
        read_only: bool,
    },
    /// A named volume: a directory under the state root, created on first use.
    Named {
        name: String,
        target: String,
        read_only: bool,
    },
}

/// One container to run: a service replica or a job.
#[derive(Debug, Clone)]
pub struct Instance {
    /// The `container`/`job` node's name (the DNS name shared by replicas).
    pub service: String,
    /// The container's own name: `web`, or `web-1`… with replicas.
    pub name: String,
    pub kind: ContainerKind,
    /// The image, as the project names it.
    pub image: String,
    /// The declared host it runs on (pinned or placed); `None` in a project without hosts.
    pub host: Option<String>,
    /// Pinned with `host=` (else placed by kiln).
    pub pinned: bool,
    /// Options from the node; `volumes` is left empty — see `volumes`.
    pub options: RunOptions,
    pub volumes: Vec<VolumePlan>,
    pub restart: RestartPolicy,
    pub health: Option<Health>,
    pub stop_signal: Option<i32>,
    /// Services this one waits for, and for what.
    pub depends_on: Vec<(String, Condition)>,
    pub networks: Vec<Attachment>,
    pub publish: Vec<Publish>,
    /// `publish-all`: every port the image exposes, on a free port of 127.0.0.1.
    pub publish_all: bool,
    /// `label KEY="VALUE"`, the last of a key winning.
    pub labels: BTreeMap<String, String>,
    /// The cap on its log (`log`, else kiln's default).
    pub log: crate::runtime::supervise::LogLimits,
    /// A digest of the node's meaning (spans left out): equal fingerprints and equal image
    /// digests mean a running instance can be kept as it is.
    pub fingerprint: String,
}

/// The netem settings of the language's `impair` (of a link or of a network attachment),
/// for either engine. The spec's rates are bits per second (as `tc` writes them); netem
/// wants bytes. Here, where the project meets the network, so that `net` never knows
/// kiln.kdl.
pub fn netem(impair: &Impairment) -> Netem {
    use crate::net::netem::{Distribution, LossModel as NetLoss};
    use crate::spec::model::{DelayDistribution, LossModel};
    let time = |d: &Option<crate::spec::Spanned<crate::spec::units::Duration>>| {
        d.as_ref().map_or(std::time::Duration::ZERO, |d| {
            std::time::Duration::from_nanos(d.value.0)
        })
    };
    let percent = |p: &Option<crate::spec::Spanned<crate::spec::units::Percent>>| {
        p.as_ref().map_or(0.0, |p| p.value.0)
    };
    let defaults = Netem::default();
    Netem {
        delay: time(&impair.delay),
        jitter: time(&impair.jitter),
        delay_correlation: percent(&impair.delay_correlation),
        distribution: match impair.distribution.as_ref().map(|d| d.value) {
            None | Some(DelayDistribution::Uniform) => Distribution::Uniform,
            Some(DelayDistribution::Normal) => Distribution::Normal,
            Some(DelayDistribution::Pareto) => Distribution::Pareto,
            Some(DelayDistribution::Paretonormal) => Distribution::Paretonormal,
        },
        loss_percent: percent(&impair.loss),
        loss_correlation: percent(&impair.loss_correlation),
        loss_model: impair.loss_model.as_ref().map(|m| match &m.value {
            LossModel::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            } => NetLoss::GilbertElliott {
                p: p.0,
                r: r.0,
                bad_loss: bad_loss.0,
                good_loss: good_loss.0,
            },
            LossModel::FourState {
                p13,
                p31,
                p32,
                p23,
                p14,
            } => NetLoss::FourState {
                p13: p13.0,
                p31: p31.0,
                p32: p32.0,
                p23: p23.0,
                p14: p14.0,
            },
        }),
        rate_bytes_per_sec: impair.rate.as_ref().map(|r| r.value.0 / 8),
        packet_overhead: impair.packet_overhead.as_ref().map_or(0, |v| v.value),
        cell_size: impair.cell_size.as_ref().map_or(0, |v| v.value),
        cell_overhead: impair.cell_overhead.as_ref().map_or(0, |v| v.value),
        corrupt_percent: percent(&impair.corrupt),
        corrupt_correlation: percent(&impair.corrupt_correlation),
        duplicate_percent: percent(&impair.duplicate),
        duplicate_correlation: percent(&impair.duplicate_correlation),
        reorder_percent: percent(&impair.reorder),
        reorder_correlation: percent(&impair.reorder_correlation),
        gap: impair.gap.as_ref().map_or(0, |g| g.value),
        limit: impair.limit.as_ref().map_or(defaults.limit, |l| l.value),
        seed: impair.seed.as_ref().map(|s| s.value),
    }
}

/// The engine an `impair` asks for (`auto` when it says nothing).
pub(super) fn engine(impair: &Impairment) -> crate::net::impair::Engine {
    use crate::net::impair::Engine;
    use crate::spec::model::ImpairEngine;
    match impair.engine.as_ref().map(|e| e.value) {
        None | Some(ImpairEngine::Auto) => Engine::Auto,
        Some(ImpairEngine::Kernel) => Engine::Kernel,
        Some(ImpairEngine::Userspace) => Engine::Userspace,
    }
}

/// Plans a validated project whose file lives in `project_dir`. Reads its containers'
/// `env-file`s (relative to `project_dir`, bare `KEY`s from kiln's own environment): an
/// unreadable or malformed one is an error.
pub fn plan(project: &Project, project_dir: &Path) -> Result<ProjectPlan, ContainerError> {
    let placement = super::placement::of_project(project);
    let mut instances = Vec::new();
    for container in &project.containers {
        let file_env = env_files(container, project_dir)?;
        let fingerprint = fingerprint(container, &file_env);
        let names = container.instance_names();
        for name in names {
            let mut instance = instance(container, name, project_dir, &fingerprint);
            instance.options.env.splice(0..0, file_env.iter().cloned());
            instance.host = placement.get(&instance.name).cloned();
            // An image the project builds is tagged as the project's (`shop/web`).
            if project
                .images
                .iter()
                .any(|i| i.name.value == instance.image)
            {
                instance.image = crate::scope::qualify(Some(&project.name), &instance.image);
            }
            instances.push(instance);
        }
    }
    let waves = waves(project, &instances);
    let networks = project
        .networks
        .iter()
        .map(|n| NetworkPlan {
            name: n.name.value.clone(),
            subnet: n.subnet.as_ref().map(|s| s.value),
            internal: n.internal,
            egress: n.egress,
            vni: (n.driver == Driver::Overlay).then(|| n.vni(&project.name)),
        })
        .collect();
    let links = project
        .links
        .iter()
        .map(|l| LinkPlan {
            a: (l.a.container.value.clone(), l.a.interface.value.clone()),
            b: (l.b.container.value.clone(), l.b.interface.value.clone()),
            subnet: l.subnet.as_ref().map(|s| s.value),
            impair: l.impair.as_ref().map(netem),
            engine: l.impair.as_ref().map_or_else(Default::default, engine),
        })
        .collect();
    let hosts = project
        .hosts
        .iter()
        .filter_map(|h| {
            Some(HostPlan {
                name: h.name.value.clone(),
                address: h.address.as_ref()?.value,
                cpus: h.cpus.as_ref().map(|c| c.value),
                memory: h.memory.as_ref().map(|m| m.value.0),
            })
        })
        .collect();
    Ok(ProjectPlan {
        project: project.name.clone(),
        instances,
        waves,
        networks,
        links,
        hosts,
        here: None,
        underlay: underlay(project),
    })
}

/// The impaired pairs of hosts the project's `underlay` declares, in the order of the
/// hosts' declaration. A validated project names only sites that exist, each pair once.
fn underlay(project: &Project) -> Vec<crate::net::overlay::wan::WanPath> {
    let mut paths = Vec::new();
    for link in &project.underlay {
        let Some(impair) = &link.impair else {
            continue;
        };
        let netem = netem(impair);
        let engine = engine(impair);
        for (i, a) in project.hosts.iter().enumerate() {
            for b in &project.hosts[i + 1..] {
                let (sa, sb) = (a.site(), b.site());
                let joins = (sa == link.a.value && sb == link.b.value)
                    || (sa == link.b.value && sb == link.a.value);
                if joins && sa != sb {
                    paths.push(crate::net::overlay::wan::WanPath {
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

/// The variables of a container's `env-file`s, in order.
fn env_files(
    container: &Container,
    project_dir: &Path,
) -> Result<Vec<(String, String)>, ContainerError> {
    let mut env = Vec::new();
    for file in &container.env_files {
        let path = absolute(project_dir, &file.value);
        let text =
            std::fs::read_to_string(&path).map_err(|source| ContainerError::EnvFileRead {
                path: path.clone(),
                source,
            })?;
        env.extend(
            crate::env_file::parse(&text, |key| std::env::var(key).ok())
                .map_err(|source| ContainerError::EnvFileLine { path, source })?,
        );
    }
    Ok(env)
}

fn instance(container: &Container, name: String, project_dir: &Path, fp: &str) -> Instance {
    let strings = |v: &Option<Vec<crate::spec::model::Name>>| {
        v.as_ref()
            .map(|args| args.iter().map(|a| a.value.clone()).collect::<Vec<_>>())
    };
    let options = RunOptions {
        args: strings(&container.cmd).unwrap_or_default(),
        entrypoint: strings(&container.entrypoint),
        env: container
            .env
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        hostname: Some(
            container
                .hostname
                .as_ref()
                .map_or_else(|| name.clone(), |h| h.value.clone()),
        ),
        workdir: container.workdir.as_ref().map(|w| w.value.clone()),
        user: container.user.as_ref().map(|u| u.value.clone()),
        volumes: Vec::new(),
        memory: container.memory.as_ref().map(|m| m.value.0),
        cpus: container.cpus.as_ref().map(|c| c.value),
        pids_limit: container.pids.as_ref().map(|p| i64::from(p.value)),
        tty: false,
        interactive: false,
        network: NetworkMode::None,
        seccomp: match container.seccomp.as_ref().map(|s| &s.value) {
            None => SeccompChoice::Default,
            Some(Seccomp::Unconfined) => SeccompChoice::Unconfined,
            Some(Seccomp::Profile { path }) => SeccompChoice::File(absolute(project_dir, path)),
        },
        read_only: container.read_only,
        tmpfs: container.tmpfs.iter().map(tmpfs).collect(),
        cap_add: container.cap_add.iter().map(|c| c.value.clone()).collect(),
        cap_drop: container.cap_drop.iter().map(|c| c.value.clone()).collect(),
        ulimits: container
            .ulimits
            .iter()
            .map(|u| Ulimit {
                name: u.name.value.clone(),
                soft: u.soft.value,
                hard: u.hard.value,
            })
            .collect(),
        sysctls: container
            .sysctls
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        stop_signal: container
            .stop_signal
            .as_ref()
            .map(|s| s.value.name.to_string()),
        stop_timeout: container.stop_timeout.as_ref().map(|s| s.value),
        privileged: container.privileged,
        init: container.init,
        devices: container
            .devices
            .iter()
            .map(|d| crate::runtime::spec::Device {
                host: d.host.value.clone().into(),
                container: d.container.as_ref().unwrap_or(&d.host).value.clone(),
                access: d
                    .permissions
                    .as_ref()
                    .map_or_else(|| "rwm".to_string(), |p| p.value.clone()),
            })
            .collect(),
        etc: crate::runtime::spec::EtcOptions {
            add_hosts: container
                .add_hosts
                .iter()
                .map(|h| crate::runtime::spec::AddHost {
                    name: h.name.value.clone(),
                    address: h
                        .address
                        .as_ref()
                        .map_or(crate::runtime::spec::HostAddress::Gateway, |a| {
                            crate::runtime::spec::HostAddress::Ip(a.value)
                        }),
                })
                .collect(),
            dns: container.dns.iter().map(|d| d.value).collect(),
            dns_search: container
                .dns_search
                .iter()
                .map(|d| d.value.clone())
                .collect(),
            dns_options: container
                .dns_options
                .iter()
                .map(|d| d.value.clone())
                .collect(),
        },
    };
    let volumes = container
        .volumes
        .iter()
        .map(|v| match &v.source {
            VolumeSource::Bind { path } => VolumePlan::Bind {
                source: absolute(project_dir, &path.value),
                target: v.target.value.clone(),
                read_only: v.read_only,
            },
            VolumeSource::Named { name } => VolumePlan::Named {
                name: name.value.clone(),
                target: v.target.value.clone(),
                read_only: v.read_only,
            },
        })
        .collect();
    let restart = match container.kind {
        // A job runs to completion once: its exit code is the result.
        ContainerKind::Job => RestartPolicy::No,
        ContainerKind::Service => match container.restart.value {
            SpecRestart::No => RestartPolicy::No,
            SpecRestart::OnFailure { max } => RestartPolicy::OnFailure { max },
            SpecRestart::Always => RestartPolicy::Always,
            SpecRestart::UnlessStopped => RestartPolicy::UnlessStopped,
            SpecRestart::OnUnhealthy => RestartPolicy::OnUnhealthy,
        },
    };
    Instance {
        service: container.name.value.clone(),
        name,
        kind: container.kind,
        image: container.image.value.clone(),
        host: None,
        pinned: container.host.is_some(),
        options,
        volumes,
        restart,
        health: container.health.clone(),
        stop_signal: container.stop_signal.as_ref().map(|s| s.value.number),
        depends_on: container
            .depends_on
            .iter()
            .map(|d| (d.name.value.clone(), d.condition))
            .collect(),
        networks: container.networks.clone(),
        publish: container.publish.clone(),
        publish_all: container.publish_all,
        labels: container
            .labels
            .iter()
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect(),
        log: log_limits(container.log.as_ref()),
        fingerprint: fp.to_string(),
    }
}

/// A container's `log` as `--log-opt` would give it.
fn log_limits(log: Option<&crate::spec::model::LogCap>) -> crate::runtime::supervise::LogLimits {
    let mut limits = crate::runtime::supervise::LogLimits::default();
    if let Some(log) = log {
        if let Some(size) = &log.max_size {
            limits.max_size = size.value.map(|s| s.0);
        }
        if let Some(files) = &log.max_file {
            limits.max_files = files.value;
        }
    }
    limits
}

/// A container's `tmpfs` as `--tmpfs` would give it.
fn tmpfs(tmpfs: &crate::spec::model::Tmpfs) -> Tmpfs {
    let mut options = Vec::new();
    if let Some(size) = &tmpfs.size {
        options.push(format!("size={}", size.value.0));
    }
    if let Some(mode) = &tmpfs.mode {
        options.push(format!("mode={:o}", mode.value));
    }
    if tmpfs.exec {
        options.push("exec".into());
    }
    Tmpfs {
        destination: tmpfs.target.value.clone(),
        options,
    }
}

/// `path` against the project's directory unless it is absolute (lexically: `./data` and
/// `data` are the same place).
fn absolute(project_dir: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    let mut out = project_dir.to_path_buf();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// blake3 over the node as the resolved model prints it (values only, no spans), so moving
/// a node in the file or reformatting it changes nothing, and over the variables its env
/// files give (a changed file is a changed container). The replica count is left out:
/// scaling adds or removes instances, it does not change the ones that stay.
fn fingerprint(container: &Container, file_env: &[(String, String)]) -> String {
    let mut container = container.clone();
    container.replicas.value = 1;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&serde_json::to_vec(&container).expect("the model serializes"));
    if !file_env.is_empty() {
        hasher.update(&serde_json::to_vec(file_env).expect("pairs serialize"));
    }
    hasher.finalize().to_hex()[..16].to_string()
}

/// Longest-path layering of the `depends-on` graph between services (validation has
/// rejected cycles; an edge into a cycle or an unknown name is ignored rather than looping).
fn waves(project: &Project, instances: &[Instance]) -> Vec<Vec<usize>> {
    let deps: BTreeMap<&str, BTreeSet<&str>> = project
        .containers
        .iter()
        .map(|c| {
            let set = c
                .depends_on
                .iter()
                .map(|d| d.name.value.as_str())
                .filter(|d| project.container(d).is_some())
                .collect();
            (c.name.value.as_str(), set)
        })
        .collect();
    let mut level: BTreeMap<&str, usize> = BTreeMap::new();
    // Relax at most |services| times: enough for any acyclic graph, finite for a bad one.
    for _ in 0..=deps.len() {
        let mut changed = false;
        for (service, needs) in &deps {
            let want = needs
                .iter()
                .map(|d| level.get(d).copied().unwrap_or(0) + 1)
                .max()
                .unwrap_or(0)
                .min(deps.len());
            if level.get(service) != Some(&want) {
                level.insert(service, want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let depth = level.values().copied().max().map_or(0, |d| d + 1);
    let mut waves = vec![Vec::new(); depth];
    for (index, instance) in instances.iter().enumerate() {
        let wave = level.get(instance.service.as_str()).copied().unwrap_or(0);
        waves[wave].push(index);
    }
    waves.retain(|w| !w.is_empty());
    waves
}
