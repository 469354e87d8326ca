//! The typed model of a kiln project: what kiln.kdl means, with a span on every value.
//!
//! Owns the data types only. `parse` fills them from KDL, `validate` checks them, and the
//! stages that meet the language read them: `plan` (images), `project` (containers,
//! networks, links, tests) and `graph`. The kernel-facing modules (`runtime`, `net`) never
//! see them: `project` converts. Defaults are already filled in here, so nothing downstream
//! re-decides them.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::Serialize;

use super::source::{Span, Spanned};
use super::units::{Duration, Percent, Rate, Signal, Size};

pub type Name = Spanned<String>;

/// A whole project: the root file with its imports applied.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Project {
    /// From `project "NAME"`, else the name of the directory that holds kiln.kdl.
    pub name: String,
    pub images: Vec<Image>,
    pub networks: Vec<Network>,
    /// Containers and jobs, in declaration order.
    pub containers: Vec<Container>,
    pub links: Vec<Link>,
    pub tests: Vec<Test>,
    pub hosts: Vec<Host>,
    /// `underlay { link … }`: impaired paths between sites (or hosts) of the underlay.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub underlay: Vec<UnderlayLink>,
}

impl Project {
    pub fn image(&self, name: &str) -> Option<&Image> {
        self.images.iter().find(|i| i.name.value == name)
    }

    pub fn network(&self, name: &str) -> Option<&Network> {
        self.networks.iter().find(|n| n.name.value == name)
    }

    pub fn container(&self, name: &str) -> Option<&Container> {
        self.containers.iter().find(|c| c.name.value == name)
    }

    pub fn jobs(&self) -> impl Iterator<Item = &Container> {
        self.containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Job)
    }

    pub fn services(&self) -> impl Iterator<Item = &Container> {
        self.containers
            .iter()
            .filter(|c| c.kind == ContainerKind::Service)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Image {
    pub name: Name,
    /// The base: always present after validation (`missing-from` otherwise).
    pub from: Option<Spanned<FromRef>>,
    /// Every step after `from`, in order.
    pub steps: Vec<Spanned<Step>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "kind", content = "ref", rename_all = "kebab-case")]
pub enum FromRef {
    Scratch,
    /// Another image of the project, an imported one, or one in the store by name.
    Image(String),
    OciArchive(String),
    DockerArchive(String),
}

impl FromRef {
    pub fn parse(text: &str) -> FromRef {
        if text == "scratch" {
            FromRef::Scratch
        } else if let Some(path) = text.strip_prefix("oci-archive:") {
            FromRef::OciArchive(path.to_string())
        } else if let Some(path) = text.strip_prefix("docker-archive:") {
            FromRef::DockerArchive(path.to_string())
        } else {
            FromRef::Image(text.to_string())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `copy SRC… DST [from=IMAGE]`
    Copy {
        sources: Vec<Spanned<String>>,
        destination: Spanned<String>,
        from: Option<Name>,
    },
    HostBinary {
        paths: Vec<Spanned<String>>,
    },
    HostPath {
        paths: Vec<Spanned<String>>,
    },
    Run {
        command: RunCommand,
        network: bool,
    },
    Env {
        vars: Vec<(Name, Spanned<String>)>,
    },
    Workdir {
        path: Spanned<String>,
    },
    User {
        user: Spanned<String>,
    },
    Expose {
        ports: Vec<Spanned<PortSpec>>,
    },
    Label {
        labels: Vec<(Name, Spanned<String>)>,
    },
    Entrypoint {
        args: Vec<Spanned<String>>,
    },
    Cmd {
        args: Vec<Spanned<String>>,
    },
    Volume {
        paths: Vec<Spanned<String>>,
    },
    StopSignal {
        signal: Spanned<Signal>,
    },
}

impl Step {
    /// The node name that declares this step.
    pub fn keyword(&self) -> &'static str {
        match self {
            Step::Copy { .. } => "copy",
            Step::HostBinary { .. } => "host-binary",
            Step::HostPath { .. } => "host-path",
            Step::Run { .. } => "run",
            Step::Env { .. } => "env",
            Step::Workdir { .. } => "workdir",
            Step::User { .. } => "user",
            Step::Expose { .. } => "expose",
            Step::Label { .. } => "label",
            Step::Entrypoint { .. } => "entrypoint",
            Step::Cmd { .. } => "cmd",
            Step::Volume { .. } => "volume",
            Step::StopSignal { .. } => "stop-signal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "kebab-case")]
pub enum RunCommand {
    /// `run "sh" "-c" "…"`: argv as written.
    Exec(Vec<Spanned<String>>),
    /// `run "…"`: one string, run with `/bin/sh -c`.
    Shell(Spanned<String>),
}

impl RunCommand {
    /// The argv the sandbox executes.
    pub fn argv(&self) -> Vec<String> {
        match self {
            RunCommand::Exec(args) => args.iter().map(|a| a.value.clone()).collect(),
            RunCommand::Shell(script) => vec!["/bin/sh".into(), "-c".into(), script.value.clone()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct PortSpec {
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    Bridge,
    Overlay,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Network {
    pub name: Name,
    pub subnet: Option<Spanned<IpNetwork>>,
    pub internal: bool,
    /// `egress=#true`: its containers reach the world outside the machine (pasta).
    pub egress: bool,
    pub driver: Driver,
    /// `vni=` of an overlay network; [`Network::vni`] derives one when it is absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vni: Option<Spanned<u32>>,
}

impl Network {
    /// The VXLAN network identifier of an overlay: `vni=`, else derived from the project's
    /// and the network's names (blake3, 24 bits, never 0), so every machine that reads the
    /// file computes the same one.
    pub fn vni(&self, project: &str) -> u32 {
        self.vni
            .as_ref()
            .map_or_else(|| derived_vni(project, &self.name.value), |v| v.value)
    }
}

/// The largest VXLAN network identifier (24 bits).
pub const VNI_MAX: u32 = (1 << 24) - 1;

/// The VNI of overlay `network` of `project` when the file gives none: the first three
/// bytes of blake3(`project/network`), 0 (which some VTEPs treat as "no VNI") becoming 1.
pub fn derived_vni(project: &str, network: &str) -> u32 {
    let hash = blake3::hash(format!("{project}/{network}").as_bytes());
    let bytes = hash.as_bytes();
    let vni = u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]);
    vni.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum ContainerKind {
    Service,
    Job,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Container {
    pub name: Name,
    pub kind: ContainerKind,
    pub image: Name,
    pub replicas: Spanned<u32>,
    pub host: Option<Name>,
    pub networks: Vec<Attachment>,
    pub publish: Vec<Publish>,
    /// `publish-all`: Docker's `-P`, every port the image exposes on a free port of
    /// 127.0.0.1.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub publish_all: bool,
    pub env: Vec<(Name, Spanned<String>)>,
    pub volumes: Vec<Volume>,
    pub memory: Option<Spanned<Size>>,
    pub cpus: Option<Spanned<f64>>,
    pub pids: Option<Spanned<u32>>,
    pub restart: Spanned<RestartPolicy>,
    pub health: Option<Health>,
    pub depends_on: Vec<Dependency>,
    pub entrypoint: Option<Vec<Spanned<String>>>,
    pub cmd: Option<Vec<Spanned<String>>>,
    pub workdir: Option<Spanned<String>>,
    pub user: Option<Spanned<String>>,
    pub hostname: Option<Spanned<String>>,
    pub stop_signal: Option<Spanned<Signal>>,
    /// `seccomp "unconfined"` or `seccomp "PROFILE.json"` (none: kiln's default profile).
    pub seccomp: Option<Spanned<Seccomp>>,
    /// `read-only`: the root filesystem read-only (Docker's `--read-only`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
    /// `tmpfs "/PATH" [size=…] [mode=…] [exec=#true]`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<Tmpfs>,
    /// `cap-add "NET_ADMIN"…`: capability names without `CAP_`, upper case, or `ALL`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<Spanned<String>>,
    /// `cap-drop "CHOWN"…`, the same spelling.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<Spanned<String>>,
    /// `ulimit "nofile" SOFT [HARD]`, one per resource.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    /// `label KEY="VALUE"…`: the container's labels (Docker's `--label`), in order; a
    /// later one of the same key wins.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<(Spanned<String>, Spanned<String>)>,
    /// `sysctl NAME="VALUE"…`: namespaced sysctls (`kernel_names::sysctl`), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sysctls: Vec<(Spanned<String>, Spanned<String>)>,
    /// `stop-timeout "30s"`: whole seconds `kiln stop` waits before SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<Spanned<u64>>,
    /// `add-host "NAME" "IP"|"host-gateway"`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub add_hosts: Vec<AddHost>,
    /// `dns "IP"…`: name servers; only on a container without kiln networks.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<Spanned<std::net::IpAddr>>,
    /// `dns-search "DOMAIN"…`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<Spanned<String>>,
    /// `dns-option "OPT"…` (`ndots:2`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_options: Vec<Spanned<String>>,
    /// `env-file "app.env"…`: files of `KEY=VALUE` lines (Docker's format), relative to the
    /// project's directory, read when the project is planned; `env` wins over them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env_files: Vec<Spanned<String>>,
    /// `privileged`: Docker's `--privileged` (every capability and device, no filter).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// `init`: kiln's init as pid 1 (Docker's `--init`): reaps orphans, forwards signals.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub init: bool,
    /// `device "/dev/HOST" ["/dev/CONTAINER"] [permissions="rwm"]`, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<Device>,
    /// `log max-size="10m" max-file=3`: the cap on its log (none: kiln's default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogCap>,
}

/// `log` on a container: Docker's `--log-opt max-size` and `max-file`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct LogCap {
    /// Bytes per file before it rotates; `Some(None)` is `-1`, no cap; none: the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_size: Option<Spanned<Option<Size>>>,
    /// Files kept, the live one included; none: the default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_file: Option<Spanned<u32>>,
}

/// `add-host "NAME" "IP"|"host-gateway"`: a line of the container's /etc/hosts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct AddHost {
    pub name: Spanned<String>,
    /// An address, or `None` for `host-gateway` (the first network's gateway).
    pub address: Option<Spanned<std::net::IpAddr>>,
    /// The span of the address argument.
    #[serde(skip)]
    pub span: crate::spec::source::Span,
}

/// `device "/dev/HOST" ["/dev/CONTAINER"] [permissions="rwm"]`: a host device node.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Device {
    pub host: Spanned<String>,
    /// Where it appears in the container (default: the host path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Spanned<String>>,
    /// Letters of `rwm` (default all three).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Spanned<String>>,
}

/// `tmpfs "/PATH"` on a container: a fresh tmpfs, `noexec,nosuid,nodev` as in Docker.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Tmpfs {
    pub target: Spanned<String>,
    /// `size="64MiB"`: the most it holds (none: the kernel's default, half the RAM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<Spanned<Size>>,
    /// `mode="1777"`: the permissions of its top directory, octal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Spanned<u32>>,
    /// `exec=#true`: programs on it may run (Docker's default is `noexec`).
    pub exec: bool,
}

/// `ulimit "NAME" SOFT [HARD]`: a resource limit (`u64::MAX` is unlimited).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Ulimit {
    pub name: Spanned<String>,
    pub soft: Spanned<u64>,
    pub hard: Spanned<u64>,
}

/// A container's seccomp profile, when it is not kiln's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Seccomp {
    /// No filter (Docker's `--security-opt seccomp=unconfined`).
    Unconfined,
    /// A profile in Docker's JSON format, relative to the file that declares it.
    Profile { path: String },
}

impl Container {
    /// The names of the running instances: `web` for one replica, `web-1`…`web-N` otherwise.
    pub fn instance_names(&self) -> Vec<String> {
        if self.replicas.value <= 1 {
            vec![self.name.value.clone()]
        } else {
            (1..=self.replicas.value)
                .map(|i| format!("{}-{i}", self.name.value))
                .collect()
        }
    }
}

/// `network NAME [ip=…] [alias=…] { impair … }` inside a container.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Attachment {
    pub network: Name,
    pub ip: Option<Spanned<IpAddr>>,
    pub aliases: Vec<Name>,
    pub impair: Option<Impairment>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Publish {
    pub port: Spanned<u16>,
    pub host: Spanned<u16>,
    /// `address="IP"`: the machine's address the proxy listens on; 127.0.0.1 when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Spanned<std::net::IpAddr>>,
    pub protocol: Protocol,
    /// `max-connections=N`: the most connections (UDP: client sessions) the port's proxy
    /// holds at once; the proxy's default when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<Spanned<u32>>,
    /// `idle-timeout="1h"`: a connection (session) passing no byte this long is closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<Spanned<Duration>>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum VolumeSource {
    /// A host path, relative to the project file when not absolute.
    Bind { path: Spanned<String> },
    /// A named volume kept under the state root.
    Named { name: Spanned<String> },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Volume {
    pub source: VolumeSource,
    pub target: Spanned<String>,
    pub read_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum RestartPolicy {
    No,
    OnFailure { max: Option<u32> },
    Always,
    UnlessStopped,
    OnUnhealthy,
}

impl RestartPolicy {
    pub const NAMES: &'static [&'static str] = &[
        "no",
        "on-failure",
        "always",
        "unless-stopped",
        "on-unhealthy",
    ];
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Health {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u32,
    pub start_period: Duration,
    pub probes: Vec<Spanned<Probe>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "probe", rename_all = "lowercase")]
pub enum Probe {
    Http { url: Spanned<String>, status: u16 },
    Tcp { address: Spanned<String> },
    Exec { command: Vec<Spanned<String>> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    Started,
    Healthy,
    Completed,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dependency {
    pub name: Name,
    pub condition: Condition,
}

/// netem settings for a link or a network attachment.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Impairment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay: Option<Spanned<Duration>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Spanned<Duration>>,
    /// How much each random delay depends on the previous one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delay_correlation: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distribution: Option<Spanned<DelayDistribution>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_correlation: Option<Spanned<Percent>>,
    /// A `gilbert-elliott` or `four-state` child: losses in bursts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub loss_model: Option<Spanned<LossModel>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<Spanned<Rate>>,
    /// Bytes the rate limiter adds to each packet (negative: takes away).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packet_overhead: Option<Spanned<i32>>,
    /// Packets travel in cells of this many bytes (ATM: 48).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell_size: Option<Spanned<u32>>,
    /// Bytes added to each cell (ATM: 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cell_overhead: Option<Spanned<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt_correlation: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_correlation: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder: Option<Spanned<Percent>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reorder_correlation: Option<Spanned<Percent>>,
    /// One packet in `gap` may be reordered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gap: Option<Spanned<u32>>,
    /// Packets the queue holds at most.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Spanned<u32>>,
    /// The seed of the random numbers: the same seed, the same losses and delays.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<Spanned<u64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub engine: Option<Spanned<ImpairEngine>>,
}

/// How jitter spreads the delay (`distribution=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DelayDistribution {
    Uniform,
    Normal,
    Pareto,
    Paretonormal,
}

/// Who carries an impairment (`engine=`): the kernel's netem, kiln's own engine, or
/// whichever this kernel has (`auto`, the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImpairEngine {
    Auto,
    Kernel,
    Userspace,
}

/// A loss model with memory, defaults filled in as `tc` fills them.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum LossModel {
    /// `gilbert-elliott p="1%" [r="100%"] [bad-loss="100%"] [good-loss="0%"]`.
    GilbertElliott {
        p: Percent,
        r: Percent,
        bad_loss: Percent,
        good_loss: Percent,
    },
    /// `four-state p13="1%" [p31="99%"] [p32="0%"] [p23="100%"] [p14="0%"]`.
    FourState {
        p13: Percent,
        p31: Percent,
        p32: Percent,
        p23: Percent,
        p14: Percent,
    },
}

/// `"container:interface"`
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Endpoint {
    pub container: Name,
    pub interface: Name,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Link {
    pub a: Endpoint,
    pub b: Endpoint,
    pub subnet: Option<Spanned<IpNetwork>>,
    pub impair: Option<Impairment>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Test {
    pub name: Name,
    /// Checked in order, from the moment the test starts.
    pub assertions: Vec<Check>,
    /// What goes wrong while the assertions run, on a timeline from the test's start; each
    /// fault is undone when its time is up and, at the latest, when the test ends.
    pub faults: Vec<Spanned<Fault>>,
}

/// One assertion of a test, and how long it may take to come true.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Check {
    pub assertion: Spanned<Assertion>,
    /// Inside `eventually within="…"`: tried again until it passes or this long has passed
    /// since its first try.
    pub within: Option<Spanned<Duration>>,
}

/// `fault at="1s" for="2s" { link-down "r1:eth1" }`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Fault {
    /// When it begins, from the test's start.
    pub at: Duration,
    /// How long it lasts; `None`: until the test ends.
    #[serde(rename = "for")]
    pub lasts: Option<Duration>,
    pub action: Spanned<FaultAction>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "fault", rename_all = "kebab-case")]
pub enum FaultAction {
    /// The interface (`container:interface`) goes down in its container: carrier off.
    LinkDown { end: Spanned<String> },
    /// The container is stopped (its stop signal, then SIGKILL); brought back by `kiln up`'s
    /// reconciliation when the fault ends.
    Stop { container: Name },
    /// The container's processes get SIGKILL; brought back likewise.
    Kill { container: Name },
    /// The container's processes are frozen (cgroup freezer), thawed when the fault ends.
    Pause { container: Name },
    /// The end (`container:interface`, of a link or of an impaired attachment) gets this
    /// impairment instead of its own; its own comes back when the fault ends.
    Impair {
        end: Spanned<String>,
        impairment: Box<Impairment>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum TcpExpect {
    Open,
    Refused,
    Timeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(rename_all = "lowercase")]
pub enum PingExpect {
    Reachable,
    Unreachable,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all_fields = "kebab-case")]
#[serde(tag = "assert", rename_all = "lowercase")]
pub enum Assertion {
    Http {
        from: Name,
        url: Spanned<String>,
        status: u16,
        contains: Option<Spanned<String>>,
    },
    Dns {
        from: Name,
        name: Spanned<String>,
        /// `None`: the name must resolve to something; `Some([])`: it must not resolve.
        expect: Option<Vec<Spanned<IpAddr>>>,
    },
    Ping {
        from: Name,
        target: Spanned<String>,
        count: u32,
        /// Every reply must take at least this long (a delay is really there).
        min_rtt: Option<Spanned<Duration>>,
        max_rtt: Option<Spanned<Duration>>,
        expect: PingExpect,
    },
    Tcp {
        from: Name,
        address: Spanned<String>,
        expect: TcpExpect,
        timeout: Duration,
    },
    Exec {
        container: Name,
        command: Vec<Spanned<String>>,
        stdout: Option<Spanned<String>>,
        exit: i32,
    },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Host {
    pub name: Name,
    pub address: Option<Spanned<IpAddr>>,
    /// The CPUs kiln may place on it; without it, the host takes any number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Spanned<f64>>,
    /// The memory kiln may place on it; without it, the host takes any amount.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Spanned<Size>>,
    /// `site="east"`: the site (rack, data centre) it stands in; without it, a site of its
    /// own named after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<Name>,
}

impl Host {
    /// The site the host stands in: `site=`, else its own name.
    pub fn site(&self) -> &str {
        self.site.as_ref().unwrap_or(&self.name).value.as_str()
    }
}

/// `link "east" "west" { impair … }` inside `underlay`: every packet between a host of one
/// site and a host of the other crosses an impaired path (both directions).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct UnderlayLink {
    pub a: Name,
    pub b: Name,
    pub impair: Option<Impairment>,
    /// The `link` keyword.
    #[serde(skip)]
    pub span: Span,
}
