//! Whole projects: `kiln up`, `down`, `test` work on every container of a kiln.kdl at once.
//!
//! Owns the translation from the spec model to what must run: [`plan`] expands replicas,
//! resolves volumes and limits into `docker run`-style options and orders the instances in
//! start waves by `depends-on`. It is pure data; starting and stopping is done by
//! `containers` (and the network by `net`), never here by hand.
//!
//! [`up`] makes the running containers match the plan, [`down`] removes them all; the rolling update of a
//! changed instance and `kiln rollback` are `rollout`'s. Both report through the types
//! here, [`UpEvent`] and [`ProjectError`], so that neither file needs the other's.

pub mod assert;
mod down;
pub mod hosts;
mod ordered;
pub mod overlay;
pub mod placement;
mod plan;
pub mod probe;
mod rollout;
#[cfg(test)]
mod tests;
pub mod underlay;
mod up;

pub use down::down;
pub use plan::{HostPlan, Instance, LinkPlan, NetworkPlan, ProjectPlan, VolumePlan, plan};
pub use probe::LiveProber;
pub use rollout::{PREVIOUS, health_deadline, rollback};
pub use up::{DEFAULT_WAIT, project_records, up};

use std::path::PathBuf;
use std::time::Duration;

use crate::containers::ContainerError;

/// What happened to each instance, as it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpEvent {
    /// Already running as declared: left alone.
    Kept(String),
    /// Removed: changed (replaced next) or no longer declared.
    Removed(String),
    Started(String),
    /// Waiting for a service to be started, healthy or completed.
    Waiting {
        name: String,
        on: String,
    },
    Healthy(String),
    /// A changed instance was stopped and kept under another name (for a rollback), to be
    /// replaced next.
    Retired {
        name: String,
        kept_as: String,
    },
    /// The previous version of an instance runs again (image digest, shortened).
    RolledBack {
        name: String,
        digest: String,
    },
    /// A job ended with this code.
    Completed {
        name: String,
        code: i32,
    },
    /// A link was made; `impaired_by`: who carries its impairments (`kernel`, the netem
    /// qdisc; `userspace`, kiln's engine), `None` when it has none.
    Linked {
        link: String,
        impaired_by: Option<&'static str>,
    },
    /// A link's declared impairment changed and was applied.
    Reimpaired {
        link: String,
        impaired_by: Option<&'static str>,
    },
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ProjectError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Record(#[from] crate::state::RecordError),
    #[error("container name `{name}` is taken by a container outside project {project}")]
    #[diagnostic(help("remove it (`kiln rm -f {name}`) or rename the node in kiln.kdl"))]
    NameTaken { name: String, project: String },
    #[error("{name} did not become {condition} within {}s", waited.as_secs())]
    #[diagnostic(help("`kiln logs {name}` shows what it printed; `kiln ps -a` its state"))]
    NotReady {
        name: String,
        condition: &'static str,
        waited: Duration,
    },
    #[error("{name} exited with code {code} before it was {condition}")]
    #[diagnostic(help("`kiln logs {name}` shows what it printed"))]
    Exited {
        name: String,
        code: i32,
        condition: &'static str,
    },
    #[error("{name}: {reason}")]
    #[diagnostic(help("`kiln logs {name}` shows what it printed"))]
    NotServing { name: String, reason: String },
    #[error("{name}: {reason}; rolled back {name} to {digest}; rollout of {service} stopped")]
    #[diagnostic(help(
        "the instances not replaced yet still run the previous version; fix kiln.kdl and run `kiln up` again"
    ))]
    RolloutStopped {
        name: String,
        service: String,
        reason: String,
        digest: String,
    },
    #[error("{name}: {reason}, and its previous version did not come back")]
    #[diagnostic(help(
        "`kiln logs {name}~retiring` shows what the previous version printed; `kiln up` tries again"
    ))]
    RollbackFailed {
        name: String,
        reason: String,
        #[source]
        source: Box<ProjectError>,
    },
    #[error("no previous version of {service} is kept")]
    #[diagnostic(help(
        "kiln keeps the previous version of an instance when `kiln up` replaces it with a changed one"
    ))]
    NothingToRollBack { service: String },
    #[error("cannot make a link of {name}: it is not running")]
    LinkEndDown { name: String },
    #[error("cannot link {a} and {b}")]
    #[diagnostic(help(
        "`kiln network exec -- ip link` and `kiln exec C ip link` show what exists"
    ))]
    Link {
        a: String,
        b: String,
        #[source]
        source: crate::net::NetError,
    },
    #[error("cannot record the links of {project}")]
    #[diagnostic(help("`kiln network links` shows what is recorded; `kiln down` tries again"))]
    Links {
        project: String,
        #[source]
        source: crate::net::NetError,
    },
    #[error("simulated host {host}: cannot make its network")]
    #[diagnostic(help(
        "`kiln down` removes what was made; `kiln network exec -- ip link` shows kiln's namespace"
    ))]
    Host {
        host: String,
        #[source]
        source: crate::net::NetError,
    },
    #[error("project {project} declares no host `{host}`")]
    #[diagnostic(help(
        "`--host` names the declared host this machine is; {project} declares: {declared}"
    ))]
    UnknownHost {
        host: String,
        project: String,
        declared: String,
    },
    #[error("this machine has no address {address}, the address kiln.kdl declares for host {host}")]
    #[diagnostic(help(
        "run `kiln up --host {host}` on the machine that holds {address} (`ip -br addr` shows this one's), or correct the host's `address=`"
    ))]
    NotThisMachine {
        host: String,
        address: std::net::IpAddr,
    },
    #[error("host {host}: cannot make its overlay endpoints in this machine's network")]
    #[diagnostic(help(
        "`kiln down --host {host}` removes what was made; `kiln network inspect NETWORK` shows each VTEP"
    ))]
    Machine {
        host: String,
        #[source]
        source: crate::net::NetError,
    },
    #[error("cannot remove {}", path.display())]
    HostState {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
