//! Paths inside a container's or an image's root, resolved inside that root and never on the
//! host. An image is hostile: its `/evil -> /etc` symbolic link, a `..` that climbs, a
//! `/proc/self/fd/N` magic link must never make kiln read, create or mount anything outside
//! the root. The kernel does the resolving: `openat2(RESOLVE_IN_ROOT |
//! RESOLVE_NO_MAGICLINKS)` treats the root's descriptor as `/` for every component (an
//! absolute link target starts again there, `..` stops there, magic links fail), atomically,
//! so a path swapped for a link half-way cannot lead out either.
//!
//! Two layers:
//! - [`raw`]: the primitive on raw descriptors, allocation-free, so the container's child
//!   can use it between clone and exec (`runtime::Sys::resolve_in_root`): resolve, and
//!   create what is missing one component at a time with `mkdirat`/`mknodat` on the
//!   resolved parent's descriptor. The runtime mounts onto the descriptor it returns
//!   (`/proc/self/fd/N`), never onto a path string that would be resolved again.
//! - [`Root`]: the same for the rest of kiln (reading an image's `/etc/passwd`, a running
//!   container's `/etc/resolv.conf`, later `kiln cp`), with owned descriptors and errors
//!   that name the root and the path.
//!
//! Why not the `pathrs` crate (by runc's maintainer, made for exactly this)? It allocates,
//! and the child between clone and exec must not; and with openat2 always present (Linux
//! 5.6; kiln needs newer anyway) its fallbacks for older kernels are not needed. `libc`
//! gives the syscall and nothing more is required.
//!
//! A leaf of the module graph: it knows descriptors and paths, nothing of images, layers
//! or containers. It does not decide what may be mounted or read: its callers do.

pub mod raw;

use std::ffi::CString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::libc;

pub use raw::{Create, How};

/// A path that could not be resolved (or opened) inside a root.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("cannot resolve `{}` inside `{}`: {}", path.display(), root.display(), why(source))]
#[diagnostic(help("{}", help(source)))]
pub struct InRootError {
    /// The root, as kiln opened it.
    pub root: PathBuf,
    /// The path inside it.
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl InRootError {
    /// The kernel's error number, when there is one.
    pub fn errno(&self) -> Option<Errno> {
        self.source.raw_os_error().map(Errno::from_raw)
    }

    /// Whether the path (or a part of it) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.source.kind() == io::ErrorKind::NotFound
    }
}

/// The reason in words a user can act on.
pub fn why(source: &io::Error) -> String {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ENOENT) => "it does not exist".into(),
        Some(Errno::ENOTDIR) => "a part of it is not a directory".into(),
        Some(Errno::EISDIR) => "it is a directory".into(),
        Some(Errno::ELOOP) => {
            "too many symbolic links, a /proc magic link, or a link where none may be".into()
        }
        Some(Errno::ENAMETOOLONG) => "the path is too long".into(),
        Some(Errno::ENOSYS) => "this kernel has no openat2 (Linux 5.6 or newer needed)".into(),
        _ => source.to_string(),
    }
}

fn help(source: &io::Error) -> &'static str {
    match source.raw_os_error().map(Errno::from_raw) {
        Some(Errno::ELOOP) => {
            "kiln follows an image's symbolic links only inside the image, and never /proc's magic links (/proc/self/fd/N, /proc/self/root)"
        }
        Some(Errno::ENOSYS) => "kiln needs openat2(2): run it on Linux 5.6 or newer",
        _ => {
            "paths inside a root are resolved as the root sees them: its symbolic links stay inside it"
        }
    }
}

/// A directory open as a root: every path given to its methods is taken from it, as the
/// processes inside it see it (`/` is the root itself).
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
    path: PathBuf,
}

impl Root {
    /// Opens `dir` as a root. `dir` itself is kiln's own path on the host (a layer
    /// directory, `/proc/PID/root` of a container), followed as the host sees it.
    pub fn open(dir: impl AsRef<Path>) -> Result<Root, InRootError> {
        let dir = dir.as_ref();
        let fail = |source| InRootError {
            root: dir.to_path_buf(),
            path: PathBuf::from("/"),
            source,
        };
        let cpath = CString::new(dir.as_os_str().as_bytes())
            .map_err(|_| fail(io::Error::from(io::ErrorKind::InvalidInput)))?;
        // SAFETY: `cpath` is NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::open(
                cpath.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        let fd = Errno::result(fd).map_err(|e| fail(io::Error::from(e)))?;
        Ok(Root {
            // SAFETY: `fd` was just opened and is owned by nobody else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            path: dir.to_path_buf(),
        })
    }

    /// The root's path, as given to [`Root::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, path: &Path, errno: Errno) -> InRootError {
        InRootError {
            root: self.path.clone(),
            path: path.to_path_buf(),
            source: io::Error::from(errno),
        }
    }

    fn cpath(&self, path: &Path) -> Result<CString, InRootError> {
        CString::new(path.as_os_str().as_bytes()).map_err(|_| self.error(path, Errno::EINVAL))
    }

    /// An `O_PATH` descriptor of what `path` names inside the root, created as `how` says
    /// (see [`raw::resolve`]).
    pub fn resolve(&self, path: impl AsRef<Path>, how: How) -> Result<OwnedFd, InRootError> {
        let path = path.as_ref();
        let cpath = self.cpath(path)?;
        let fd = raw::resolve(self.fd.as_raw_fd(), &cpath, how)
            .map_err(|errno| self.error(path, errno))?;
        // SAFETY: `raw::resolve` returns a descriptor it opened for us.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// `mkdir -p` inside the root: the directory `path` names, created with its missing
    /// parents (0755 less the umask) where it is missing.
    pub fn create_dir_all(&self, path: impl AsRef<Path>) -> Result<OwnedFd, InRootError> {
        self.resolve(path, How::DIR)
    }

    /// Opens the regular file `path` names for reading. Anything else (a directory, a
    /// device, a FIFO) is refused before it is opened for real: opening a device or a
    /// FIFO of an image could block or act.
    pub fn open_file(&self, path: impl AsRef<Path>) -> Result<File, InRootError> {
        let path = path.as_ref();
        let fd = self.resolve(path, How::EXISTING)?;
        let meta = File::from(fd.try_clone().map_err(|e| InRootError {
            root: self.path.clone(),
            path: path.to_path_buf(),
            source: e,
        })?)
        .metadata()
        .map_err(|source| InRootError {
            root: self.path.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        if meta.is_dir() {
            return Err(self.error(path, Errno::EISDIR));
        }
        if !meta.is_file() {
            return Err(InRootError {
                root: self.path.clone(),
                path: path.to_path_buf(),
                source: io::Error::other("it is not a regular file"),
            });
        }
        reopen(fd.as_fd(), libc::O_RDONLY).map_err(|errno| self.error(path, errno))
    }

    /// The contents of the regular file `path`, at most `limit` bytes (more is an error:
    /// an image's file may be of any size).
    pub fn read(&self, path: impl AsRef<Path>, limit: u64) -> Result<Vec<u8>, InRootError> {
        let path = path.as_ref();
        let file = self.open_file(path)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| InRootError {
                root: self.path.clone(),
                path: path.to_path_buf(),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(InRootError {
                root: self.path.clone(),
                path: path.to_path_buf(),
                source: io::Error::other(format!("it is larger than {limit} bytes")),
            });
        }
        Ok(bytes)
    }
}

impl AsFd for Root {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// Opens for real (with `flags`) what the `O_PATH` descriptor `fd` names, through kiln's own
/// `/proc/self/fd/N`: the very inode, whatever happened to its path since.
pub fn reopen(fd: BorrowedFd<'_>, flags: i32) -> Result<File, Errno> {
    let path =
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).expect("no NUL in a number");
    // SAFETY: `path` is NUL-terminated; the result is checked and owned below.
    let opened = unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC | libc::O_NOCTTY) };
    let opened = Errno::result(opened)?;
    // SAFETY: just opened, owned by nobody else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(opened) }))
}

#[cfg(test)]
mod tests;
