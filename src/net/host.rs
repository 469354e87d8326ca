//! The kiln host namespace: one network namespace per state root, pinned at
//! `$ROOT/net/host.netns`, where kiln puts its bridges, host-side veths, DNS and proxies.
//!
//! It starts with `lo` up and IPv4/IPv6 forwarding off, so containers on different bridges
//! cannot reach each other (packets to another bridge's subnet are dropped without an ICMP
//! error: connections time out). Nothing here touches the machine's own namespace.

use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

use nix::sched::CloneFlags;

use super::NetError;
use super::netlink::Netlink;
use super::netns::{NetNs, run_in};

/// Sysctls written on every `ensure`, from inside the namespace. IPv4 settings of a new
/// namespace are copied from the machine's (`net.core.devconf_inherit_init_net` = 0), so a
/// machine with forwarding on (any Docker host) would hand it on: kiln writes it explicitly.
/// rp_filter is left as inherited: containers only ever send from their own subnet.
const SYSCTLS: &[(&str, &str, bool)] = &[
    ("/proc/sys/net/ipv4/ip_forward", "0", true),
    // Absent when IPv6 is disabled on the kernel command line.
    ("/proc/sys/net/ipv6/conf/all/forwarding", "0", false),
];

/// The kiln host namespace of a state root.
pub struct HostNamespace;

impl HostNamespace {
    /// Where the namespace of `state_root` is pinned.
    pub fn path(state_root: &Path) -> PathBuf {
        state_root.join("net").join("host.netns")
    }

    /// Opens the namespace of `state_root`, creating and configuring it when it is not
    /// pinned yet (or a crash left an unmounted pin file). Configuration is re-applied every
    /// time: it is idempotent and costs a thread and two writes.
    pub fn ensure(state_root: &Path) -> Result<NetNs, NetError> {
        let path = HostNamespace::path(state_root);
        let dir = state_root.join("net");
        std::fs::create_dir_all(&dir).map_err(|cause| NetError::Io {
            path: dir.clone(),
            cause,
        })?;
        let ns = match NetNs::open(&path) {
            Ok(ns) => ns,
            Err(_) => {
                // Two kiln commands may start at once: one creates, the other waits and opens.
                let _lock = lock(&dir.join("host.lock"))?;
                match NetNs::open(&path) {
                    Ok(ns) => ns,
                    Err(NetError::NotPinned { .. }) => {
                        NetNs::remove_pinned(&path)?;
                        NetNs::create_pinned(&path)?
                    }
                    Err(err) if err.errno() == Some(libc::ENOENT) => NetNs::create_pinned(&path)?,
                    Err(err) => return Err(err),
                }
            }
        };
        configure(&ns)?;
        Ok(ns)
    }

    /// Unpins the namespace. Interfaces in it go away with it once no process (a container's
    /// veth peer keeps only its own end) holds it.
    pub fn remove(state_root: &Path) -> Result<(), NetError> {
        NetNs::remove_pinned(&HostNamespace::path(state_root))
    }

    /// Unpins the namespace once nothing needs it: no network and no path of kiln's
    /// impairment engine (a project with links only has no network).
    pub fn release_if_unused(state_root: &Path) -> Result<(), NetError> {
        let networks = super::records::NetworkRecords::open(state_root)
            .and_then(|r| r.list())
            .map(|list| list.len())
            .unwrap_or(0);
        if networks == 0 && super::engine::paths::load(state_root)?.paths.is_empty() {
            super::supervise::stop(state_root);
            HostNamespace::remove(state_root)?;
        }
        Ok(())
    }
}

/// The file that names, for a network root that is not a state root of its own (a
/// simulated host's), the state root whose container records its networks serve.
const OWNER: &str = "owner";

/// The state root whose container records the networks of `state_root` serve: itself, or
/// the one its `net/owner` file names (a simulated host's network root).
pub fn containers_root(state_root: &Path) -> PathBuf {
    match std::fs::read(state_root.join("net").join(OWNER)) {
        Ok(bytes) if !bytes.is_empty() => PathBuf::from(std::ffi::OsString::from_vec(bytes)),
        _ => state_root.to_path_buf(),
    }
}

/// Makes `net_root` a network root serving the containers of `owner` (see
/// [`containers_root`]).
pub fn set_owner(net_root: &Path, owner: &Path) -> Result<(), NetError> {
    let dir = net_root.join("net");
    std::fs::create_dir_all(&dir).map_err(|cause| NetError::Io {
        path: dir.clone(),
        cause,
    })?;
    let path = dir.join(OWNER);
    std::fs::write(&path, owner.as_os_str().as_bytes())
        .map_err(|cause| NetError::Io { path, cause })
}

/// An exclusive lock on `path`, held until the returned value is dropped.
fn lock(path: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, NetError> {
    let io_error = |cause| NetError::Io {
        path: path.to_path_buf(),
        cause,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io_error)?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io_error(errno.into()))
}

fn configure(ns: &NetNs) -> Result<(), NetError> {
    run_in(ns, || -> Result<(), NetError> {
        for (path, value, required) in SYSCTLS {
            match std::fs::write(path, value) {
                Ok(()) => {}
                Err(err) if !required && err.kind() == std::io::ErrorKind::NotFound => {}
                Err(cause) => {
                    return Err(NetError::Io {
                        path: path.into(),
                        cause,
                    });
                }
            }
        }
        Ok(())
    })??;
    Netlink::open_in(ns)?.set_up("lo")
}

/// Runs a host program inside the kiln host namespace of `state_root` (for
/// `kiln network exec -- ip link`), with the caller's stdio, and waits for it. The child
/// enters the namespace between fork and exec; kiln itself stays where it is.
pub fn exec_in<S: AsRef<OsStr>>(state_root: &Path, argv: &[S]) -> Result<ExitStatus, NetError> {
    let ns = NetNs::open(&HostNamespace::path(state_root))?;
    let Some((program, args)) = argv.split_first() else {
        return Err(NetError::Exec {
            program: String::new(),
            cause: std::io::Error::new(std::io::ErrorKind::InvalidInput, "no command given"),
        });
    };
    let mut command = command_in(&ns, program);
    command.args(args);
    command.status().map_err(|cause| NetError::Exec {
        program: program.as_ref().to_string_lossy().into_owned(),
        cause,
    })
}

/// A `Command` whose child enters `ns` before exec; the caller adds arguments and runs it.
/// The command keeps its own descriptor of the namespace.
pub fn command_in<S: AsRef<OsStr>>(ns: &NetNs, program: S) -> Command {
    let mut command = Command::new(program);
    // A duplicate owned by the closure keeps the namespace open until the Command is dropped.
    let fd = ns.try_clone();
    // SAFETY: the closure runs between fork and exec and only calls setns(2), which is
    // async-signal-safe; it allocates nothing.
    unsafe {
        command.pre_exec(move || match &fd {
            Ok(ns) => nix::sched::setns(ns, CloneFlags::CLONE_NEWNET).map_err(Into::into),
            Err(_) => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        });
    }
    command
}
