//! The sandbox: runs one command in a fresh root filesystem — new mount, pid, ipc, uts and
//! (unless asked otherwise) network namespaces, an overlayfs of read-only layer directories
//! with a writable upper directory, pivot_root, /proc, a minimal /dev, read-only /sys.
//! `kiln build` runs its `run` steps here; `kiln run` containers will grow out of the same
//! code (one implementation of namespaces and rootfs setup, not two).
//!
//! How it works, in order:
//! 1. [`plan`] turns a [`SandboxSpec`] into a [`SetupPlan`]: the namespaces to create and the
//!    exact list of [`SetupStep`]s (each mount with its flags and options, pivot_root, …).
//!    Pure: unit tests check the plan, and `--trace` prints the very same steps.
//! 2. [`run`] clones a child into the new namespaces; the child executes the steps through
//!    the [`Sys`] trait ([`RealSys`] for the kernel, a recording fake in tests), reporting
//!    each step to the parent over a pipe, then execs the command. The parent collects the
//!    output, waits, and reaps. When the command (pid 1 of its pid namespace) exits, the
//!    kernel kills whatever it left behind, and the mounts vanish with the mount namespace:
//!    nothing is ever mounted in the machine's own namespace.
//!
//! Mountpoints (/proc, /dev, /sys) must exist in the merged root, but a directory created
//! there would land in the upper directory and thus in the layer. So the sandbox puts a
//! skeleton directory holding just `proc`, `dev` and `sys` *below* the caller's layers
//! (on a tmpfs private to the sandbox): the mountpoints always exist, and the upper
//! directory only ever receives what the command itself changes. /dev is a tmpfs, so the
//! device files created there never reach the layer either.
//!
//! Containers (`kiln run`) use the very same machinery: [`spec`] builds an OCI runtime spec
//! from an image and `docker run`-style options, [`plan_container`] turns any spec into
//! steps (adding the cgroup namespace, /dev/pts, /dev/mqueue, masked and read-only paths,
//! volumes, rlimits, capabilities, no_new_privs, the seccomp filter), and [`start`] clones the child, lets the
//! caller put it in a cgroup while it waits ([`StartHooks`]), then lets it run;
//! [`run_foreground`] adds signal forwarding and the pty of `-t`. [`exec`] starts another
//! process in a running container (`kiln exec`): setns into its namespaces, then the same
//! process steps.
//!
//! It knows nothing of kiln.kdl, tar archives or the store: it gets directories and a command.

pub mod cgroup;
mod cgroupfs;
mod container;
pub mod ebpf;
pub mod exec;
mod foreground;
mod hook;
pub mod init;
mod linux_names;
mod mount_options;
mod output;
mod plan;
mod sandbox;
mod sandbox_cgroup;
pub mod seccomp;
pub mod spec;
mod step;
pub mod supervise;
mod sys;
mod terminal;
mod view;

use std::io;
use std::path::PathBuf;

use nix::errno::Errno;

pub use cgroupfs::{Hierarchy, HostCgroups};
pub use container::{NoHooks, StartHooks, Started, Stdio, start};
pub use exec::{ExecEvent, ExecHooks, ExecProcess, ExecStdio, run_exec, start_exec};
pub use foreground::{FORWARDED, ForwardedSignals, run_foreground};
pub use hook::HookError;
pub use output::OutputTail;
pub use plan::{RootfsLayout, default_path, plan, plan_container, sandbox_oci_spec};
pub use sandbox::{NoObserver, SandboxObserver, TraceEvent, run};
pub use sandbox_cgroup::{interrupt, interrupted, remove_leftovers};
pub use seccomp::{
    BpfInstruction, PROFILE_ANNOTATION, Profile, SeccompChoice, SeccompError, SeccompFilter,
    UNCONFINED, default_seccomp,
};
pub use step::{CStringArray, Purpose, SetupPlan, SetupStep, Target};
pub use sys::{ExecFailure, Failure, RealSys, Sys, execute};
pub use view::{RootView, mount_view};

/// How much of the command's combined stdout and stderr [`SandboxOutcome`] keeps.
pub const OUTPUT_TAIL_BYTES: usize = 8 * 1024;

/// What to run and on which layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Read-only layer directories, top-most first (overlayfs lowerdir order). May be empty.
    pub lower_dirs: Vec<PathBuf>,
    /// Receives every change the command makes (deletions as overlayfs whiteouts): the layer.
    pub upper_dir: PathBuf,
    /// A directory the sandbox owns, on the same filesystem as `upper_dir` and apart from
    /// every layer. It holds overlayfs's workdir and an empty mountpoint; both are left
    /// (empty) for the next run to reuse — directory removal is slow on some disks, and
    /// the caller removes the whole scratch directory when done. One sandbox at a time.
    pub scratch_dir: PathBuf,
    /// The command; `argv[0]` is looked up in the `PATH` of `env` (or [`default_path`])
    /// inside the root filesystem unless it contains a `/`.
    pub argv: Vec<String>,
    /// The command's whole environment, `KEY=VALUE` each; nothing is inherited.
    pub env: Vec<String>,
    /// Absolute working directory inside the root filesystem; it must exist there.
    pub cwd: String,
    /// Run as this user instead of root. Resolving names is the caller's job.
    pub user: Option<UserIds>,
    pub hostname: String,
    /// `false`: a new network namespace with only `lo`, brought up. `true`: the host's.
    pub network: bool,
    /// The cgroup the command runs in (a name like `kiln/<root-hash>/build-<id>`, see
    /// [`cgroup`]): made with the container device rules (v1 `devices` and the
    /// `BPF_CGROUP_DEVICE` program) before the command runs, everything in it killed and
    /// removed — with its parents once they are empty — when the command ends, whether it
    /// succeeded or not. `None`: no cgroup (runtime tests only; a build step always has one).
    pub cgroup: Option<String>,
}

impl SandboxSpec {
    /// The directories of its root filesystem.
    pub fn rootfs(&self) -> RootfsLayout {
        RootfsLayout {
            lower_dirs: self.lower_dirs.clone(),
            upper_dir: self.upper_dir.clone(),
            scratch_dir: self.scratch_dir.clone(),
        }
    }
}

/// Numeric identity of the command's process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIds {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (empty: none).
    pub groups: Vec<u32>,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxStatus {
    Exited(i32),
    Signaled(i32),
}

impl SandboxStatus {
    pub fn success(self) -> bool {
        self == SandboxStatus::Exited(0)
    }

    /// The shell's convention: the exit code, or 128 + the signal number.
    pub fn code(self) -> i32 {
        match self {
            SandboxStatus::Exited(code) => code,
            SandboxStatus::Signaled(signal) => 128 + signal,
        }
    }
}

impl std::fmt::Display for SandboxStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SandboxStatus::Exited(code) => write!(f, "exit {code}"),
            SandboxStatus::Signaled(signal) => {
                let name = nix::sys::signal::Signal::try_from(*signal)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by {name}")
            }
        }
    }
}

/// The result of a command that could be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxOutcome {
    pub status: SandboxStatus,
    /// The last [`OUTPUT_TAIL_BYTES`] of stdout and stderr, interleaved as written.
    pub output_tail: Vec<u8>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SandboxError {
    #[error("the sandbox needs an absolute {what}, got `{}`", path.display())]
    RelativePath { what: &'static str, path: PathBuf },
    #[error("the {what} contains a NUL byte")]
    Nul { what: &'static str },
    #[error("the {what} `{}` overlaps the scratch directory", path.display())]
    #[diagnostic(help("give the sandbox a scratch directory of its own"))]
    InsideScratch { what: &'static str, path: PathBuf },
    #[error("the command is empty")]
    EmptyCommand,
    /// [`interrupt`] was called (Ctrl-C): the command was not run, or was killed.
    #[error("interrupted")]
    Interrupted,
    #[error("environment entry `{entry}` is not of the form KEY=VALUE")]
    BadEnv { entry: String },
    #[error("hostname `{hostname}` is longer than 64 bytes")]
    BadHostname { hostname: String },
    #[error("mount destination `{path}` must be an absolute path without `..`")]
    BadMountDestination { path: String },
    #[error("working directory `{path}` must be an absolute path without `..`")]
    #[diagnostic(help(
        "the image's `WorkingDir` or `-w` names it; `..` is refused, never resolved on the host"
    ))]
    BadWorkdir { path: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Seccomp(Box<SeccompError>),
    #[error("kiln's runtime does not support {what}")]
    Unsupported { what: String },
    /// `--init`: the sealed in-memory copy of kiln's init could not be made.
    #[error("cannot make the in-memory copy of kiln's init (`--init`)")]
    Init {
        #[source]
        source: io::Error,
    },
    #[error("sysctl `{name}` cannot be set in this container: {reason}")]
    #[diagnostic(help(
        "only namespaced sysctls can be set: net.* with a network namespace of its own, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname"
    ))]
    BadSysctl { name: String, reason: String },
    #[error("cannot prepare the container: {message}")]
    Prepare { message: String },
    /// The sandbox's cgroup could not be made, joined or removed.
    #[error("cannot give the sandbox its cgroup")]
    Cgroup {
        #[source]
        source: Box<cgroup::CgroupError>,
        #[help]
        help: Option<String>,
    },
    /// A caller's start hook refused (see [`HookError`]): its help is this error's.
    #[error("cannot prepare the container")]
    Hook {
        #[source]
        #[diagnostic_source]
        source: HookError,
        #[help]
        help: Option<String>,
    },
    #[error("the overlay mount options are {len} bytes, more than the kernel's 4095")]
    #[diagnostic(help(
        "too many layers or too long paths: a shorter state directory (KILN_ROOT) helps"
    ))]
    OverlayOptionsTooLong { len: usize },

    #[error("sandbox I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {what}")]
    Os {
        what: &'static str,
        #[source]
        source: Errno,
    },
    #[error("cannot create the sandbox's namespaces")]
    #[diagnostic(help("the sandbox needs root (CAP_SYS_ADMIN) to create namespaces and mount"))]
    Spawn(#[source] Errno),
    #[error("sandbox setup failed at `{step}`")]
    Setup {
        step: String,
        #[source]
        source: Errno,
    },
    #[error("the sandbox died during setup ({status})")]
    SetupDied { status: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    InRoot(Box<InRootFailure>),
    #[error("working directory `{cwd}` does not exist in the image")]
    #[diagnostic(help("create it in an earlier step, e.g. `run \"mkdir\" \"-p\" \"{cwd}\"`"))]
    CwdNotFound { cwd: String },
    #[error("command `{command}` not found in the image")]
    #[diagnostic(help("install it in an earlier step, or give its full path (PATH={path})"))]
    CommandNotFound { command: String, path: String },
    #[error("command `{command}` (`{path}`) is not executable")]
    #[diagnostic(help("check its mode bits (chmod +x) and that its filesystem allows exec"))]
    NotExecutable { command: String, path: String },
    #[error(
        "command `{command}` (`{path}`) exists but its interpreter or dynamic loader is missing in the image"
    )]
    #[diagnostic(help("a `#!` line or an ELF interpreter names a file the image lacks"))]
    MissingInterpreter { command: String, path: String },
    #[error("cannot execute command `{command}` (`{path}`)")]
    Exec {
        command: String,
        path: String,
        #[source]
        source: Errno,
    },
}

/// A path of the container that could not be resolved (or created) inside its root: what
/// kiln was doing, why the image's tree did not allow it, what to do.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot {action} `{path}` in the container: {reason}")]
#[diagnostic(help("{help}"))]
pub struct InRootFailure {
    pub action: String,
    pub path: String,
    pub reason: String,
    pub help: String,
    #[source]
    pub source: Errno,
}

impl From<SeccompError> for SandboxError {
    fn from(error: SeccompError) -> SandboxError {
        SandboxError::Seccomp(Box::new(error))
    }
}

impl SandboxError {
    /// A cgroup failure, its help brought up to this error.
    pub fn cgroup(source: cgroup::CgroupError) -> SandboxError {
        let help = crate::causes::help(&source);
        SandboxError::Cgroup {
            source: Box::new(source),
            help,
        }
    }

    /// A start hook's refusal, its help brought up to this error.
    pub fn hook(source: HookError) -> SandboxError {
        let help = crate::causes::help(&source);
        SandboxError::Hook { source, help }
    }

    /// The exit code a shell (and Docker) gives this failure: 127 when the command cannot be
    /// found, 126 when it cannot be executed, 125 when the sandbox itself failed.
    pub fn exit_code(&self) -> i32 {
        match self {
            SandboxError::CommandNotFound { .. } | SandboxError::MissingInterpreter { .. } => 127,
            SandboxError::NotExecutable { .. } | SandboxError::Exec { .. } => 126,
            _ => 125,
        }
    }
}

#[cfg(test)]
mod tests;
