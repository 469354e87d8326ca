//! Containers from images: `kiln run` (foreground and `-d`), the supervisor of detached
//! containers with its health checks, `kiln create`, `start`, `wait`, `port`, `top`, `cp`, `inspect`, `exec`, `ps`,
//! `logs`, `stop`, `kill`, `restart`, `rm`, `bundle`, `stats`, `commit` and `system df|prune`.
//!
//! Owns the path from an image in the store to a running container: each layer unpacked
//! once into a shared read-only directory, a per-container upper directory, the OCI runtime
//! spec (written to the container's `config.json`), its cgroup, its record, and the cleanup
//! after it. The kernel work is `runtime`'s; this module must not mount or clone itself.

mod bundle;
mod commit;
mod control;
mod cp;
mod detach;
mod etc_files;
mod exec;
mod filter;
mod health;
mod inspect;
mod lifecycle;
mod logs;
mod mounts;
mod network;
mod pause;
mod port;
mod prepare;
mod probing;
mod run;
mod start;
mod stats;
mod supervise_exe;
mod supervisor;
mod system;
#[cfg(test)]
mod tests;
mod top;
mod wait;

use std::path::{Path, PathBuf};

pub use bundle::write_bundle;
pub use commit::{Change, CommitRequest, Committed, apply_changes, commit, parse_change};
pub use control::{
    Stopping, begin_stop, finish_stop, kill_container, mark_stopped, parse_signal, remove,
    remove_holding, signal_container, stop, stop_signal, wait_supervisor,
};
pub use cp::{Copied, CopyError, CopyOptions, Side, copy};
pub use detach::{REPORT_FD, restart, run_detached, spawn_supervisor};
pub use exec::{ExecRequest, Target, exec};
pub use filter::{ContainerFilter, Facts};
pub use health::{Health, HealthCheck, HealthFlags, HealthProbe, HealthTracker, parse_health};
pub use inspect::{Details, details};
pub use lifecycle::{
    Launch, RunRequest, cgroup_name, log_path, remove_anonymous_volumes, stop_marker,
};
pub use logs::{LogQuery, parse_log_opts, parse_since, read_logs};
pub use mounts::{Mount, NamedVolume, parse_mount, parse_volume};
pub use network::{Held, Published, release_all};
pub use pause::{is_paused, pause, thaw_if_paused, unpause};
pub use port::{PortQuery, port_lines};
pub use probing::{RoundResult, probe_once};
pub use run::{RunResult, run};
pub use start::{create, start, start_attached};
pub use stats::{
    ContainerStats, NetIo, Sampler, cpu_percent, parse_mem_total, parse_net_dev, snapshot,
};
pub use supervise_exe::{
    BUILD_STAMP, Invocation, SUPERVISOR_EXE, SUPERVISOR_TUNABLES, invocation, supervise_main,
    supervisor_command, supervisor_environment,
};
pub use supervisor::{supervise, supervise_entry};
pub use system::{
    ContainerUsage, DiskUsage, ImageUsage, PruneOptions, Pruned, UsageSummary, VolumeUsage,
    disk_usage, images_in_use, prune,
};
pub use top::{columns as top_columns, top};
pub use wait::{Waited, wait};

use crate::runtime::spec::SpecError;
use crate::state::RecordError;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ContainerError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Sandbox(#[from] crate::runtime::SandboxError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Cgroup(#[from] crate::runtime::cgroup::CgroupError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Layers(#[from] Box<crate::build::BuildError>),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Seccomp(Box<crate::runtime::SeccompError>),
    #[error("unsupported --security-opt `{opt}`: {reason}")]
    #[diagnostic(help(
        "kiln takes seccomp=unconfined, seccomp=PROFILE.json (Docker's format) and no-new-privileges"
    ))]
    BadSecurityOpt { opt: String, reason: String },
    #[error("--dns cannot take effect on network `{network}`: it has no egress")]
    #[diagnostic(help(
        "kiln's DNS server on a network without egress answers its container names and asks no other server, so these would never be asked; create the network with --egress (egress=#true in kiln.kdl) to send the names it does not know to them, or leave --dns out (--dns-search and --dns-option work)"
    ))]
    DnsWithoutEgress { network: String },
    #[error("--add-host {name}:host-gateway needs a kiln network")]
    #[diagnostic(help(
        "host-gateway is the gateway of the container's first kiln network (--network NAME); give an address instead"
    ))]
    HostGatewayWithoutNetwork { name: String },
    #[error("cannot read env file {}", path.display())]
    EnvFileRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("env file {} is not in Docker's format", path.display())]
    #[diagnostic(help(
        "one KEY=VALUE a line; a bare KEY takes kiln's own value; # starts a comment"
    ))]
    EnvFileLine {
        path: PathBuf,
        #[source]
        source: crate::env_file::EnvFileError,
    },
    #[error("bad mount `{spec}`: {reason}")]
    BadVolume {
        spec: String,
        reason: String,
        #[help]
        help: String,
    },
    #[error("bad mount `{spec}`: bind source `{}` does not exist", path.display())]
    #[diagnostic(help(
        "create it first (`mkdir -p {}`), or correct the path; a relative source is taken from the current directory (-v creates a missing one)",
        path.display()
    ))]
    VolumeSourceNotFound { spec: String, path: PathBuf },
    #[error("bad mount `{spec}`: cannot use source `{}`", path.display())]
    #[diagnostic(help("the source must be a host path kiln can resolve and read"))]
    VolumeSource {
        spec: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Volume(#[from] crate::state::volumes::VolumeError),
    #[error("cannot fill volume {volume} with the image's {destination}")]
    CopyUp {
        volume: String,
        destination: String,
        #[source]
        source: Box<ContainerError>,
    },
    #[error("invalid {what} `{value}`: {reason}")]
    BadLimit {
        what: &'static str,
        value: String,
        reason: String,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Network(#[from] crate::net::network::NetworkError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Proxy(Box<crate::net::proxy::ProxyError>),
    #[error("bad port `{spec}`: {reason}")]
    #[diagnostic(help(
        "use [IP:]HOST:PORT[/udp] or IP::PORT, e.g. -p 18080:8080, -p 127.0.0.2:18080:8080, -p 127.0.0.1::8080"
    ))]
    BadPublish { spec: String, reason: String },
    #[error("host port {} is already in use on {}", .address.port(), .address.ip())]
    #[diagnostic(help("choose another host port, or stop what listens on {address}"))]
    PortInUse {
        address: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot publish on {address}: it is not an address of this machine")]
    #[diagnostic(help(
        "publish on one of the machine's addresses (`ip -br address`), e.g. 127.0.0.1"
    ))]
    HostAddress {
        address: std::net::IpAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("publishing a port needs a network")]
    #[diagnostic(help(
        "attach the container to one: `--network NAME` (see `kiln network create`)"
    ))]
    PublishWithoutNetwork,
    #[error("no declared host {host} is up on this machine")]
    #[diagnostic(help(
        "--host names a host of a project brought up here (`kiln up`, or `kiln up --host {host}`); up here: {up}"
    ))]
    NoSuchHost { host: String, up: String },
    #[error("--network {network} cannot take an address, an alias or another network")]
    #[diagnostic(help("give --network the name of a kiln network (`kiln network ls`)"))]
    NetworkModeConflict { network: String },
    #[error("container {name} is running")]
    #[diagnostic(help("stop it first, or remove it with `kiln rm -f {name}`"))]
    Running { name: String },
    #[error("container {name} is not running")]
    NotRunning { name: String },
    #[error("container {name} is already running")]
    #[diagnostic(help(
        "`kiln logs -f {name}` follows its output; `kiln stop {name}` first to start it again in the foreground"
    ))]
    AlreadyRunning { name: String },
    #[error("container {name} was created with a terminal (-t)")]
    #[diagnostic(help(
        "a terminal needs someone at it: `kiln start -a {name}` (-ai to type into it)"
    ))]
    NeedsAttach { name: String },
    #[error("container {name} has {what}, which its supervisor applies")]
    #[diagnostic(help(
        "start it detached (`kiln start {name}`) and follow it with `kiln logs -f {name}` and `kiln wait {name}`"
    ))]
    AttachUnsupervised { name: String, what: String },
    #[error("container {name} ended, and nothing recorded its exit code")]
    #[diagnostic(help("the process that ran it was killed before it could write the record"))]
    ExitUnknown { name: String },
    #[error("container {name} was removed before its exit code could be read")]
    RemovedWhileWaiting { name: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Copy(Box<cp::CopyError>),
    #[error("kiln cp copies between a container and the machine, not between containers")]
    #[diagnostic(help("copy out to a directory of the machine, then into the other container"))]
    CopyBetweenContainers,
    #[error("kiln cp needs a container on one side: CONTAINER:PATH")]
    #[diagnostic(help(
        "e.g. `kiln cp web:/etc/hosts .` or `kiln cp ./site web:/srv`; a local path with a `:` is written ./a:b"
    ))]
    CopyWithoutContainer,
    #[error("`{option}`: {reason}")]
    #[diagnostic(help(
        "kiln top takes -o LIST of pid, ppid, user, uid, comm, args, cmd, stat, time, etime, rss, vsz, tty, c, stime (default: ps -ef's columns)"
    ))]
    BadTopOption { option: String, reason: String },
    #[error("no public port `{port}` published for {name}")]
    #[diagnostic(help("`kiln port {name}` lists the ports it publishes"))]
    NoSuchPort { name: String, port: String },
    #[error("container {name} is already paused")]
    #[diagnostic(help("`kiln unpause {name}` lets it run again"))]
    AlreadyPaused { name: String },
    #[error("container {name} is not paused")]
    NotPaused { name: String },
    #[error("cannot pause container {name}: this machine has no cgroup freezer")]
    #[diagnostic(help(
        "pausing needs the freezer controller of cgroup v1 or cgroup.freeze of cgroup v2 (Linux 5.2)"
    ))]
    NoFreezer { name: String },
    #[error("the container did not start: {message}")]
    SupervisorFailed { message: String, code: u8 },
    #[error("unknown signal `{signal}`")]
    #[diagnostic(help("use a name (TERM, SIGKILL) or a number (15)"))]
    BadSignal { signal: String },
    #[error("cannot turn the changes of container {name} into a layer")]
    Commit {
        name: String,
        #[source]
        #[diagnostic_source]
        source: crate::layer::LayerError,
    },
    #[error("bad --change `{change}`: {reason}")]
    #[diagnostic(help(
        "use CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR or STOPSIGNAL, e.g. --change 'CMD [\"sh\"]'"
    ))]
    BadChange { change: String, reason: String },
    #[error("invalid time `{since}`")]
    #[diagnostic(help("use a duration (10m, 1h30m) or an RFC 3339 time (2026-11-30T10:00:00Z)"))]
    BadSince { since: String },
    #[error("invalid filter `{filter}`: {reason}")]
    #[diagnostic(help(
        "use KEY=VALUE with a key among id, name, label, status, project, ancestor, network (e.g. --filter status=exited)"
    ))]
    BadFilter { filter: String, reason: String },
    #[error("invalid --log-opt `{opt}`: {reason}")]
    #[diagnostic(help(
        "use max-size=SIZE (10m, -1 for no cap) and max-file=N, e.g. --log-opt max-size=10m --log-opt max-file=3"
    ))]
    BadLogOpt { opt: String, reason: String },
    #[error("container I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::runtime::SeccompError> for ContainerError {
    fn from(error: crate::runtime::SeccompError) -> ContainerError {
        ContainerError::Seccomp(Box::new(error))
    }
}

impl ContainerError {
    /// Docker's convention: 125 when the container could not be started at all, 126/127
    /// when its command could not be executed or found.
    pub fn exit_code(&self) -> u8 {
        match self {
            ContainerError::Sandbox(err) => u8::try_from(err.exit_code()).unwrap_or(125),
            ContainerError::SupervisorFailed { code, .. } => *code,
            _ => 125,
        }
    }
}

/// One `--trace` line on stderr, in one write: stderr is unbuffered, and a line written in
/// pieces would be cut by the container's own output on the same terminal or pipe. A closed
/// stderr (`kiln run --trace … 2>&1 | head`) must not abort a container half-started, so
/// write errors are ignored.
fn trace_line(text: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let line = format!("trace: {text}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ContainerError + '_ {
    move |source| ContainerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// `--memory 64MiB` (or `64m`, bytes as a plain number).
pub fn parse_memory(text: &str) -> Result<u64, ContainerError> {
    let bad = |reason: String| ContainerError::BadLimit {
        what: "memory",
        value: text.to_string(),
        reason,
    };
    let bytes = match text.parse::<u64>() {
        Ok(bytes) => bytes,
        Err(_) => crate::spec::units::Size::parse(text).map_err(bad)?.0,
    };
    if bytes < 6 * 1024 * 1024 {
        return Err(bad("the minimum is 6MiB".into()));
    }
    Ok(bytes)
}
