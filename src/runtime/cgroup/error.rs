//! The cgroup layer's error type, and the explanations of what the kernel's terse errno
//! values mean for each cgroup file.

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CgroupError {
    #[error("no cgroup filesystem is mounted")]
    #[diagnostic(help(
        "mount one: `mount -t cgroup2 none /sys/fs/cgroup` (or boot with systemd, which does)"
    ))]
    NotMounted,

    #[error("cannot read {}", path.display())]
    Detect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("invalid cgroup name `{name}`: {reason}")]
    BadName { name: String, reason: &'static str },

    #[error("invalid {what} limit `{value}`: {reason}")]
    BadLimit {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error("the {controller} controller is not available on this machine's cgroup {version}")]
    #[diagnostic(help("{help}"))]
    ControllerMissing {
        controller: &'static str,
        version: &'static str,
        help: &'static str,
    },

    #[error("cgroup {} already exists", path.display())]
    #[diagnostic(help(
        "a container with this id was not cleaned up: remove it (`kiln rm -f`) or rmdir the cgroup"
    ))]
    Exists { path: PathBuf },

    #[error("cannot {action} {}", path.display())]
    Io {
        action: String,
        path: PathBuf,
        #[source]
        source: io::Error,
        #[help]
        help: Option<String>,
    },

    #[error("cannot parse {}: unexpected `{content}`", path.display())]
    Parse { path: PathBuf, content: String },

    #[error("the device rules cannot become a device program")]
    BadDeviceRules(#[source] super::DeviceProgramError),

    #[error("cannot set the device rules of {}: {source}", path.display())]
    DeviceProgram {
        path: PathBuf,
        #[source]
        source: crate::runtime::ebpf::BpfError,
        #[help]
        help: Option<String>,
    },
}

impl CgroupError {
    /// An I/O error on `path` while doing `action` ("write `max` to", "create", "remove", …),
    /// with an explanation of the errno for this particular file.
    pub(crate) fn io(action: impl Into<String>, path: &Path, source: io::Error) -> CgroupError {
        let help = explain_file(path, &source).map(str::to_owned);
        CgroupError::Io {
            action: action.into(),
            path: path.to_owned(),
            source,
            help,
        }
    }

    /// An I/O error creating, listing or removing the cgroup directory `path`.
    /// A directory could not be made because its parent is gone (ENOENT): a shared
    /// parent removed by a concurrent cleanup.
    pub(crate) fn is_missing_parent(&self) -> bool {
        matches!(self, CgroupError::Io { action, source, .. }
            if action == "create" && source.raw_os_error() == Some(libc::ENOENT))
    }

    pub(crate) fn dir(action: impl Into<String>, path: &Path, source: io::Error) -> CgroupError {
        let help = explain_dir(&source).map(str::to_owned);
        CgroupError::Io {
            action: action.into(),
            path: path.to_owned(),
            source,
            help,
        }
    }

    /// A device program that could not be loaded or attached to the cgroup `path`.
    pub(crate) fn device_program(
        path: &Path,
        source: crate::runtime::ebpf::BpfError,
    ) -> CgroupError {
        let help = explain_bpf(&source).map(str::to_owned);
        CgroupError::DeviceProgram {
            path: path.to_owned(),
            source,
            help,
        }
    }

    /// The errno of an [`CgroupError::Io`], if that is what this is.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CgroupError::Io { source, .. } | CgroupError::Detect { source, .. } => {
                source.raw_os_error()
            }
            CgroupError::DeviceProgram { source, .. } => source.source.raw_os_error(),
            _ => None,
        }
    }
}

fn explain_bpf(error: &crate::runtime::ebpf::BpfError) -> Option<&'static str> {
    if error.op == "load" && error.log.is_some() {
        return Some(
            "the kernel's verifier refused the program (its log is above): this is a bug in kiln, please report it",
        );
    }
    Some(match (error.op, error.source.raw_os_error()?) {
        (_, libc::EPERM | libc::EACCES) => {
            "loading and attaching eBPF programs needs root (CAP_BPF and CAP_SYS_ADMIN); in a user namespace the kernel refuses them"
        }
        ("load", libc::EINVAL) => {
            "this kernel has no cgroup device programs (CONFIG_CGROUP_BPF, Linux 4.15 or later)"
        }
        ("attach", libc::EINVAL | libc::EBADF) => {
            "the directory is not a cgroup of a cgroup2 hierarchy, or this kernel cannot attach device programs there"
        }
        ("attach", libc::ENOSPC | libc::E2BIG) => {
            "the cgroup already has the most programs the kernel takes (64)"
        }
        ("load", libc::ENOMEM | libc::EAGAIN) => {
            "the kernel is short of memory for eBPF programs (on Linux before 5.11, raise RLIMIT_MEMLOCK)"
        }
        _ => return None,
    })
}

fn explain_dir(error: &io::Error) -> Option<&'static str> {
    Some(match error.raw_os_error()? {
        libc::EACCES | libc::EPERM => {
            "changing cgroups needs root, or a cgroup delegated to this user"
        }
        libc::EROFS => {
            "the cgroup filesystem is mounted read-only (is kiln running inside a container?)"
        }
        libc::EBUSY => "the cgroup still has processes or child cgroups",
        libc::ENOTEMPTY => "the cgroup still has child cgroups",
        libc::ENOENT => "a parent cgroup does not exist (any more)",
        libc::ENOSPC | libc::EAGAIN => {
            "too many cgroups: see cgroup.max.descendants and cgroup.max.depth of the parents"
        }
        _ => return None,
    })
}

fn explain_file(path: &Path, error: &io::Error) -> Option<&'static str> {
    let file = path.file_name()?.to_str()?;
    let errno = error.raw_os_error()?;
    if errno == libc::ENOENT && path.parent().is_some_and(|dir| !dir.exists()) {
        return Some("the cgroup does not exist (any more)");
    }
    let controller = file.split('.').next().unwrap_or("");
    Some(match (errno, file) {
        (libc::EACCES | libc::EPERM, _) => {
            "changing cgroups needs root, or a cgroup delegated to this user"
        }
        (libc::EROFS, _) => {
            "the cgroup filesystem is mounted read-only (is kiln running inside a container?)"
        }
        (libc::ENOENT, "cgroup.subtree_control") => {
            "the controller is not listed in the parent's cgroup.controllers: it is disabled at boot or bound to a v1 hierarchy"
        }
        (libc::EBUSY, "cgroup.subtree_control") => {
            "cgroup v2 cannot enable controllers below a cgroup that has processes of its own (the \"no internal processes\" rule): move those processes into a leaf cgroup"
        }
        (libc::EBUSY, "cgroup.procs") => {
            "this cgroup has controllers enabled for children, so it cannot hold processes (v2's \"no internal processes\" rule)"
        }
        (libc::ESRCH, "cgroup.procs") => "the process has already exited",
        (libc::EOPNOTSUPP, "cgroup.procs") => {
            "the cgroup is in an invalid state for processes (a threaded subtree?)"
        }
        (libc::EBUSY, "memory.max" | "memory.limit_in_bytes" | "memory.memsw.limit_in_bytes") => {
            "the cgroup already uses more memory than the new limit and the kernel cannot reclaim it"
        }
        (libc::EINVAL, "memory.limit_in_bytes") => {
            "v1 requires memory.limit_in_bytes <= memory.memsw.limit_in_bytes"
        }
        (libc::EINVAL, "memory.memsw.limit_in_bytes") => {
            "v1 requires memory.memsw.limit_in_bytes >= memory.limit_in_bytes"
        }
        (libc::EINVAL, "cpu.max" | "cpu.cfs_quota_us" | "cpu.cfs_period_us") => {
            "the cpu quota must be at least 1ms per period, and within the parent cgroup's quota"
        }
        (libc::EINVAL, _) => "the kernel rejected the value for this file",
        (libc::ERANGE, _) => "the value is out of the range this file accepts",
        (libc::ENOENT, "cgroup.kill" | "cgroup.freeze") => {
            "this kernel is too old for this cgroup v2 feature"
        }
        (libc::ENOENT, _) if matches!(controller, "memory" | "cpu" | "cpuacct" | "pids") => {
            match controller {
                "memory" => "the memory controller is not enabled for this cgroup",
                "cpu" => "the cpu controller is not enabled for this cgroup",
                "cpuacct" => "the cpuacct controller is not mounted for this cgroup",
                _ => "the pids controller is not enabled for this cgroup",
            }
        }
        (libc::ENOENT, _) => "the cgroup does not exist (any more)",
        _ => return None,
    })
}
