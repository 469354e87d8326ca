//! The exec as data: which of the container's namespaces to join ([`JoinStep`]s, then the
//! fork into its pid namespace), and the steps of the new process — the very steps a
//! container's own process ends with (session, rlimits, identity, capabilities,
//! no_new_privs, working directory, exec), planned by the container planner itself.

use std::ffi::CString;
use std::fmt;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, LinuxNamespaceBuilder, LinuxNamespaceType, Process, Root, Spec};

use crate::runtime::SandboxError;
use crate::runtime::cgroupfs::HostCgroups;
use crate::runtime::plan::{PlanOptions, RootfsLayout, plan_with};
use crate::runtime::step::{SetupPlan, SetupStep};

/// The namespaces `kiln exec` joins, in nsenter's order: the mount namespace last, so the
/// others are joined while /proc is still the host's (they are open already anyway).
pub const JOINED: [(CloneFlags, &str); 6] = [
    (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    (CloneFlags::CLONE_NEWIPC, "ipc"),
    (CloneFlags::CLONE_NEWUTS, "uts"),
    (CloneFlags::CLONE_NEWNET, "net"),
    (CloneFlags::CLONE_NEWPID, "pid"),
    (CloneFlags::CLONE_NEWNS, "mnt"),
];

/// One step of the process that joins the container, before its child runs the
/// process's own steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinStep {
    /// setns(2) into the namespace open at `fd` (`path` is where it was opened).
    SetNs {
        fd: RawFd,
        kind: CloneFlags,
        path: CString,
    },
    /// clone(CLONE_PARENT): a joined pid namespace only applies to children, so the
    /// command runs in a child — made kiln's own child, so kiln waits for it directly.
    Fork,
}

impl fmt::Display for JoinStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinStep::SetNs { kind, path, .. } => {
                let name = JOINED
                    .iter()
                    .find(|(flag, _)| flag == kind)
                    .map_or("?", |(_, name)| name);
                // nsenter's option names: --mount for mnt, the rest as /proc names them.
                let option = if name == "mnt" { "mount" } else { name };
                write!(f, "nsenter --{option}={}", path.to_string_lossy())
            }
            JoinStep::Fork => f.write_str("fork  # into the joined pid namespace (CLONE_PARENT)"),
        }
    }
}

/// Everything the joining child needs, built before the clone (it may not allocate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecPlan {
    /// setns steps, then [`JoinStep::Fork`].
    pub joins: Vec<JoinStep>,
    /// What the forked child runs, ending with its exec step.
    pub process: SetupPlan,
}

impl ExecPlan {
    /// Steps in all, joins first: the index space of the child's reports.
    pub fn len(&self) -> usize {
        self.joins.len() + self.process.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Step `index` of the whole plan, rendered for `--trace` and error messages.
    pub fn describe(&self, index: usize) -> String {
        match self.joins.get(index) {
            Some(join) => join.to_string(),
            None => self
                .process
                .steps
                .get(index - self.joins.len())
                .map_or_else(|| format!("step {index}"), ToString::to_string),
        }
    }
}

/// The container's namespaces, open (which pins them while kiln joins), minus those
/// kiln already shares with it (a container on the host's network, say).
#[derive(Debug)]
pub struct ContainerNamespaces {
    /// `(kind, /proc/PID/ns/NAME, descriptor)` in [`JOINED`] order.
    pub open: Vec<(CloneFlags, PathBuf, OwnedFd)>,
}

impl ContainerNamespaces {
    /// Opens `/proc/PID/ns/*` of the container's pid 1 (`pid` as kiln sees it).
    pub fn open(pid: i32) -> Result<ContainerNamespaces, SandboxError> {
        let mut open = Vec::new();
        for (kind, name) in JOINED {
            let path = PathBuf::from(format!("/proc/{pid}/ns/{name}"));
            let theirs = File::open(&path).map_err(|source| SandboxError::Io {
                path: path.clone(),
                source,
            })?;
            let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
            let their_meta = theirs.metadata().map_err(|source| SandboxError::Io {
                path: path.clone(),
                source,
            })?;
            let shared =
                ours.is_ok_and(|m| m.ino() == their_meta.ino() && m.dev() == their_meta.dev());
            if !shared {
                open.push((kind, path, OwnedFd::from(theirs)));
            }
        }
        Ok(ContainerNamespaces { open })
    }

    /// `(kind, path, fd)` for [`plan_exec`].
    pub fn joins(&self) -> Vec<(CloneFlags, PathBuf, RawFd)> {
        self.open
            .iter()
            .map(|(kind, path, fd)| (*kind, path.clone(), fd.as_raw_fd()))
            .collect()
    }
}

/// Plans an exec of `process` (its args, env, cwd, user, capabilities, rlimits,
/// no_new_privs, terminal) after joining `namespaces`, under the seccomp filter of
/// `container` (its spec). The working directory must exist.
pub fn plan_exec(
    namespaces: &[(CloneFlags, PathBuf, RawFd)],
    process: &Process,
    container: &Spec,
) -> Result<ExecPlan, SandboxError> {
    let mut joins = Vec::with_capacity(namespaces.len() + 1);
    for (kind, path, fd) in namespaces {
        joins.push(JoinStep::SetNs {
            fd: *fd,
            kind: *kind,
            path: CString::new(path.as_os_str().as_encoded_bytes()).map_err(|_| {
                SandboxError::Nul {
                    what: "namespace path",
                }
            })?,
        });
    }
    joins.push(JoinStep::Fork);
    Ok(ExecPlan {
        joins,
        process: process_plan(process, container)?,
    })
}

/// The steps of a container's process from its new session on: the container planner's
/// own, on a spec with nothing but `process` and the container's seccomp profile (its
/// rootfs steps are dropped, the container has its root already).
fn process_plan(process: &Process, container: &Spec) -> Result<SetupPlan, SandboxError> {
    let mut spec = Spec::default();
    spec.set_process(Some(process.clone()));
    spec.set_mounts(Some(Vec::new()));
    spec.set_hostname(None);
    spec.set_annotations(container.annotations().clone());
    let mut root = Root::default();
    root.set_readonly(Some(false));
    spec.set_root(Some(root));
    let mut linux = Linux::default();
    let mount_ns = LinuxNamespaceBuilder::default()
        .typ(LinuxNamespaceType::Mount)
        .build()
        .map_err(|e| SandboxError::Prepare {
            message: e.to_string(),
        })?;
    linux.set_namespaces(Some(vec![mount_ns]));
    linux.set_devices(None);
    linux.set_resources(None);
    linux.set_masked_paths(None);
    linux.set_readonly_paths(None);
    // A process exec'd into the container gets its filter, or exec would be a way around
    // it.
    linux.set_seccomp(container.linux().as_ref().and_then(|l| l.seccomp().clone()));
    spec.set_linux(Some(linux));
    // Never mounted: only the steps after the root's setup are kept.
    let unused = RootfsLayout {
        lower_dirs: Vec::new(),
        upper_dir: PathBuf::from("/exec/joins/an/existing/root/upper"),
        scratch_dir: PathBuf::from("/exec/joins/an/existing/root/scratch"),
    };
    let options = PlanOptions {
        create_cwd: false,
        controlling_terminal: process.terminal().unwrap_or(false),
        init: None,
    };
    let mut plan = plan_with(&spec, &unused, options, &HostCgroups::Absent)?;
    let session = plan
        .steps
        .iter()
        .position(|s| *s == SetupStep::NewSession)
        .ok_or_else(|| SandboxError::Prepare {
            message: "the container plan has no new session step".into(),
        })?;
    plan.steps.drain(..session);
    plan.namespaces = CloneFlags::empty();
    Ok(plan)
}
