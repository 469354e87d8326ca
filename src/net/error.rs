//! The one error type of the kernel-facing network layer: namespaces, netlink, netem and
//! interface names. Messages name the interface (or path) and the operation; the kernel's
//! cause stays a `#[source]`.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum NetError {
    /// The kernel said EEXIST for an interface kiln tried to create or rename to.
    #[error("cannot {op}: interface {name} already exists")]
    #[diagnostic(help(
        "a previous run may have left it behind: `kiln network exec -- ip link del {name}`"
    ))]
    Exists {
        op: &'static str,
        name: String,
        #[source]
        cause: io::Error,
    },

    /// No interface with this name in the namespace the handle is bound to.
    #[error("cannot {op}: no interface named {name}")]
    NoSuchInterface { op: &'static str, name: String },

    /// Any other refusal from the kernel (its errno is the source).
    #[error("cannot {op} {name}")]
    Netlink {
        op: &'static str,
        name: String,
        #[source]
        cause: io::Error,
    },

    /// The netlink socket or the runtime driving it could not be set up.
    #[error("cannot open a netlink socket")]
    Socket(#[source] io::Error),

    /// A namespace operation (unshare, setns, bind-mount, open) failed on a path.
    #[error("cannot {op} network namespace {}", path.display())]
    Namespace {
        op: &'static str,
        path: PathBuf,
        #[source]
        cause: io::Error,
    },

    /// `path` exists but is not a pinned network namespace.
    #[error("{} is not a pinned network namespace", path.display())]
    #[diagnostic(help("remove the file; kiln pins it again"))]
    NotPinned { path: PathBuf },

    /// A thread could not enter a namespace (setns failed).
    #[error("cannot enter network namespace")]
    Enter(#[source] io::Error),

    /// A file under a namespace's /proc/sys or the state root could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        cause: io::Error,
    },

    /// A command run inside the kiln host namespace could not start.
    #[error("cannot run `{program}` in the kiln host namespace")]
    Exec {
        program: String,
        #[source]
        cause: io::Error,
    },

    /// The kernel has no netem qdisc (built without CONFIG_NET_SCH_NETEM, module not loaded).
    #[error("cannot impair {name}: this kernel has no netem qdisc")]
    #[diagnostic(help(
        "load it with `modprobe sch_netem`, or use a kernel built with CONFIG_NET_SCH_NETEM"
    ))]
    NetemUnavailable {
        name: String,
        #[source]
        cause: io::Error,
    },

    /// Netem parameters the kernel would refuse or misread.
    #[error("invalid impairment: {reason}")]
    InvalidNetem { reason: String },

    /// kiln's impairment engine (`kiln __linkd`) did not start or did not answer.
    #[error("kiln's impairment engine does not answer")]
    #[diagnostic(help("its log is {}", log.display()))]
    Engine {
        log: PathBuf,
        #[source]
        cause: io::Error,
    },

    /// A name the kernel would refuse as an interface name.
    #[error("invalid interface name `{name}`: {reason}")]
    InvalidName { name: String, reason: String },
}

impl NetError {
    /// The kernel's errno behind this error, when there is one (ENODEV, EEXIST, ...).
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetError::Exists { .. } => Some(libc::EEXIST),
            NetError::NoSuchInterface { .. } => Some(libc::ENODEV),
            NetError::Netlink { cause, .. }
            | NetError::Socket(cause)
            | NetError::Namespace { cause, .. }
            | NetError::Enter(cause)
            | NetError::Io { cause, .. }
            | NetError::Exec { cause, .. }
            | NetError::NetemUnavailable { cause, .. }
            | NetError::Engine { cause, .. } => cause.raw_os_error(),
            NetError::NotPinned { .. }
            | NetError::InvalidNetem { .. }
            | NetError::InvalidName { .. } => None,
        }
    }
}
