//! A container's state record and its reconciliation with the kernel.

use serde::{Deserialize, Serialize};

use super::ContainerId;
use crate::process::Pidfd;
pub use crate::process::process_start_time;

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Recorded, not started yet (or kiln died while starting it).
    Created,
    Running,
    /// Between two runs under a restart policy.
    Restarting,
    Exited,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Restarting => "restarting",
            Status::Exited => "exited",
        })
    }
}

/// The mutable part of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// pid 1 of the container, as seen from kiln's pid namespace.
    pub pid: Option<i32>,
    /// That process's start time (field 22 of /proc/PID/stat): tells a recycled pid apart.
    pub pid_start_time: Option<u64>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub restarts: u32,
    /// `healthy`, `unhealthy`, `starting`, or none without a health check.
    pub health: Option<String>,
    /// Failed health check rounds in a row.
    #[serde(default)]
    pub health_failing_streak: u32,
    /// What the last health check round said (one line per probe).
    #[serde(default)]
    pub health_output: Option<String>,
    /// The supervisor of a detached container.
    pub supervisor_pid: Option<i32>,
    /// The supervisor's start time, as `pid_start_time`.
    #[serde(default)]
    pub supervisor_start_time: Option<u64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

impl Default for ContainerState {
    fn default() -> Self {
        ContainerState {
            status: Status::Created,
            pid: None,
            pid_start_time: None,
            exit_code: None,
            oom_killed: false,
            restarts: 0,
            health: None,
            health_failing_streak: 0,
            health_output: None,
            supervisor_pid: None,
            supervisor_start_time: None,
            started_at: None,
            finished_at: None,
        }
    }
}

impl ContainerState {
    /// Whether the container's pid 1 is the recorded process and still runs.
    pub fn process_alive(&self) -> bool {
        match (self.pid, self.pid_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            (Some(pid), None) => process_start_time(pid).is_some(),
            _ => false,
        }
    }

    /// The container's pid 1, if it is the recorded process and still runs.
    pub fn process(&self) -> Option<Pidfd> {
        Pidfd::open(self.pid?, self.pid_start_time)
    }

    /// The supervisor, if it is the recorded process and still runs.
    pub fn supervisor(&self) -> Option<Pidfd> {
        Pidfd::open(self.supervisor_pid?, self.supervisor_start_time)
    }

    /// Whether the recorded supervisor still runs (the same process, not a recycled pid).
    pub fn supervisor_alive(&self) -> bool {
        match (self.supervisor_pid, self.supervisor_start_time) {
            (Some(pid), Some(start)) => process_start_time(pid) == Some(start),
            (Some(pid), None) => process_start_time(pid).is_some(),
            _ => false,
        }
    }
}

/// Everything kiln records about a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: ContainerId,
    pub name: String,
    /// The image as the user named it, and the manifest it resolved to.
    pub image: String,
    pub image_digest: String,
    pub created: String,
    /// The command line, for `kiln ps`.
    pub command: Vec<String>,
    /// `no`, `on-failure[:N]`, `always`, `unless-stopped`, `on-unhealthy`.
    pub restart: String,
    pub state: ContainerState,
    /// The project and service a container of `kiln up` belongs to; none for `kiln run`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member: Option<Membership>,
    /// Its labels: the image's, with the container's own (`--label`) over them, as Docker
    /// merges them (`kiln ps --filter label=…`).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub labels: std::collections::BTreeMap<String, String>,
    /// The named volumes it mounts, by reference (`shop/data`, `data`): they are in use
    /// while this record exists (see [`super::volumes`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

/// Which declared container a record is an instance of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub project: String,
    /// The `container`/`job` node (replicas share it).
    pub service: String,
    /// The node's fingerprint when this instance was made: `kiln up` replaces the
    /// instance when it changes.
    pub fingerprint: String,
    /// The declared host it runs on (a project with hosts); `None` otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

impl Record {
    /// The project the container belongs to (`kiln up`), none for `kiln run`'s.
    pub fn project(&self) -> Option<&str> {
        self.member.as_ref().map(|m| m.project.as_str())
    }

    /// How the command line names it: `shop/web`, or `web` outside a project.
    pub fn reference(&self) -> String {
        crate::scope::qualify(self.project(), &self.name)
    }

    /// The state as the kernel sees it: a record that says running (or restarting) whose
    /// process is gone — or is another process with a recycled pid — and whose supervisor
    /// is gone too has exited, with an unknown code. While the supervisor lives its record
    /// is the truth: pid 1 may be gone while it drains the last output, records the exit
    /// code or restarts the container (so `kiln ps` agrees with `kiln wait`).
    pub fn reconciled(&self) -> Record {
        let mut record = self.clone();
        let state = &mut record.state;
        if matches!(state.status, Status::Running | Status::Restarting) {
            let alive = state.process_alive();
            if !(alive || state.supervisor_alive()) {
                state.status = Status::Exited;
                state.pid = None;
                state.pid_start_time = None;
            }
        }
        record
    }
}
