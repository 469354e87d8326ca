//! Network namespaces as owned handles: create (pinned by a bind mount, as `ip netns add`
//! does), open, remove, and run code inside one on a short-lived thread.
//!
//! The rule this module keeps: the calling thread never changes namespace. Every `unshare`
//! and `setns` happens on a fresh thread that exits afterwards, so the machine's own network
//! namespace is never entered or modified, and a process can drive several namespaces at
//! once.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::mount::{MntFlags, MsFlags};
use nix::sched::CloneFlags;

use super::NetError;

/// `statfs` magic of the nsfs filesystem that namespace files live on.
const NSFS_MAGIC: i64 = 0x6e73_6673;

/// An open network namespace (an nsfs file descriptor). Dropping it closes the descriptor;
/// the namespace lives on while a pin, a process or another descriptor holds it.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
}

impl NetNs {
    /// Creates a namespace and pins it at `path` (which must not exist): a thread unshares
    /// its network namespace and bind-mounts `/proc/thread-self/ns/net` onto an empty file,
    /// then exits. Nothing is configured in the new namespace (only `lo`, down).
    pub fn create_pinned(path: &Path) -> Result<NetNs, NetError> {
        let ns_error = |op, cause| NetError::Namespace {
            op,
            path: path.to_path_buf(),
            cause,
        };
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(path)
            .map_err(|cause| ns_error("create the pin of", cause))?;
        let pinned = std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<(), NetError> {
                    nix::sched::unshare(CloneFlags::CLONE_NEWNET)
                        .map_err(|errno| ns_error("create", errno.into()))?;
                    nix::mount::mount(
                        Some("/proc/thread-self/ns/net"),
                        path,
                        None::<&str>,
                        MsFlags::MS_BIND,
                        None::<&str>,
                    )
                    .map_err(|errno| ns_error("pin", errno.into()))
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        if let Err(err) = pinned {
            let _ = fs::remove_file(path);
            return Err(err);
        }
        NetNs::open(path)
    }

    /// Creates a namespace held only by the returned descriptor: it disappears (with every
    /// interface in it) when the last holder closes it. For containers and tests.
    pub fn create_unpinned() -> Result<NetNs, NetError> {
        std::thread::scope(|scope| {
            scope
                .spawn(|| -> Result<NetNs, NetError> {
                    let path = Path::new("/proc/thread-self/ns/net");
                    nix::sched::unshare(CloneFlags::CLONE_NEWNET).map_err(|errno| {
                        NetError::Namespace {
                            op: "create",
                            path: path.to_path_buf(),
                            cause: errno.into(),
                        }
                    })?;
                    NetNs::open(path)
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Opens a pinned namespace (or any nsfs path such as `/proc/PID/ns/net`).
    pub fn open(path: &Path) -> Result<NetNs, NetError> {
        let file = File::options()
            .read(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)
            .map_err(|cause| NetError::Namespace {
                op: "open",
                path: path.to_path_buf(),
                cause,
            })?;
        let stat = nix::sys::statfs::fstatfs(&file).map_err(|errno| NetError::Namespace {
            op: "open",
            path: path.to_path_buf(),
            cause: errno.into(),
        })?;
        if stat.filesystem_type().0 as i64 != NSFS_MAGIC {
            return Err(NetError::NotPinned {
                path: path.to_path_buf(),
            });
        }
        Ok(NetNs { fd: file.into() })
    }

    /// The namespace a process is in.
    pub fn of_pid(pid: i32) -> Result<NetNs, NetError> {
        NetNs::open(Path::new(&format!("/proc/{pid}/ns/net")))
    }

    /// Unpins a namespace: detaches the bind mount and removes the file. Missing pins (or a
    /// plain file left by a crash) are fine, so this can run any number of times.
    pub fn remove_pinned(path: &Path) -> Result<(), NetError> {
        match nix::mount::umount2(path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (a leftover empty file); ENOENT: nothing there.
            Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
            Err(errno) => {
                return Err(NetError::Namespace {
                    op: "unpin",
                    path: path.to_path_buf(),
                    cause: errno.into(),
                });
            }
        }
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(cause) => Err(NetError::Namespace {
                op: "remove the pin of",
                path: path.to_path_buf(),
                cause,
            }),
        }
    }

    /// Whether `path` is a live pin (a mounted nsfs file).
    pub fn is_pinned(path: &Path) -> bool {
        NetNs::open(path).is_ok()
    }

    /// The namespace's inode number: equal for two handles of the same namespace, and the
    /// number `ip netns identify` and `/proc/PID/ns/net` (`net:[N]`) show.
    pub fn inode(&self) -> u64 {
        // fstat of an open nsfs descriptor cannot fail short of a kernel bug.
        nix::sys::stat::fstat(&self.fd).map_or(0, |stat| stat.st_ino)
    }

    /// Another descriptor for the same namespace.
    pub fn try_clone(&self) -> Result<NetNs, NetError> {
        Ok(NetNs {
            fd: self.fd.try_clone().map_err(NetError::Enter)?,
        })
    }
}

impl AsFd for NetNs {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl From<NetNs> for OwnedFd {
    fn from(ns: NetNs) -> OwnedFd {
        ns.fd
    }
}

impl AsRawFd for NetNs {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

/// Runs `f` on a fresh thread that has entered `ns`, and returns its result. The calling
/// thread stays where it is; the helper thread ends when `f` returns. A panic in `f` is
/// passed on to the caller.
pub fn run_in<T, F>(ns: &NetNs, f: F) -> Result<T, NetError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    run_in_fd(ns.as_fd(), f)
}

/// [`run_in`] for any descriptor of a network namespace (`/proc/PID/ns/net` opened by the
/// caller, a pin): the one place kiln joins a network namespace on a thread.
pub fn run_in_fd<T, F>(ns: BorrowedFd<'_>, f: F) -> Result<T, NetError>
where
    F: FnOnce() -> T + Send,
    T: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                nix::sched::setns(ns, CloneFlags::CLONE_NEWNET)
                    .map_err(|errno| NetError::Enter(errno.into()))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}
