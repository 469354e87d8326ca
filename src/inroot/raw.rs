//! The primitive itself, usable between clone(2) and execve(2): no allocation, no locks, no
//! panics — paths live in fixed stack buffers and every call is a plain syscall. The
//! container's child resolves its mount targets with it (through `runtime::Sys`), and
//! [`super::Root`] wraps it for everything else.
//!
//! [`resolve`] is `openat2(root, path, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)` plus, when
//! asked, `mkdir -p` inside the root: the first missing component is found, a dangling
//! symbolic link there is read and its target (taken inside the root: an absolute target
//! starts again at the root, `..` stops at it) replaces it in the path, and a really missing
//! component is created with `mkdirat`/`mknodat` on its parent's descriptor, which was
//! itself resolved inside the root. Then the whole path is resolved again, by the kernel.
//! Nothing is ever created through a path string the kernel could resolve differently.

use std::ffi::CStr;
use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::libc;

/// The kernel's PATH_MAX: the longest path (NUL included) the buffers hold.
pub const PATH_MAX: usize = 4096;

/// Linux's own limit on symbolic links followed in one lookup.
const MAX_HOPS: usize = 40;

/// What [`resolve`] makes when the path's last component is missing (the components before
/// it are always made as directories when `create` is not [`Create::Nothing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// Make nothing: a missing component is ENOENT. Whatever exists is accepted.
    Nothing,
    /// A directory (mode 0755 less the umask); an existing non-directory is ENOTDIR.
    Dir,
    /// An empty regular file (mode 0644 less the umask); an existing directory is EISDIR.
    File,
}

/// How [`resolve`] treats a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct How {
    pub create: Create,
    /// Follow symbolic links (inside the root). `false`: any symbolic link on the path is
    /// ELOOP (`RESOLVE_NO_SYMLINKS`), for mountpoints that must be real directories.
    pub symlinks: bool,
}

impl How {
    /// Follow links inside the root, create nothing.
    pub const EXISTING: How = How {
        create: Create::Nothing,
        symlinks: true,
    };
    /// Follow links inside the root, create a directory and its parents.
    pub const DIR: How = How {
        create: Create::Dir,
        symlinks: true,
    };
    /// Follow links inside the root, create a file and its parent directories.
    pub const FILE: How = How {
        create: Create::File,
        symlinks: true,
    };
}

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// `RESOLVE_*` flags of openat2(2) (linux/openat2.h).
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// The resolve flags every lookup inside a root uses.
pub fn in_root_flags(symlinks: bool) -> u64 {
    let mut flags = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    if !symlinks {
        flags |= RESOLVE_NO_SYMLINKS;
    }
    flags
}

/// openat2(2). `EAGAIN` (a rename raced with the lookup, which `RESOLVE_IN_ROOT` reports
/// rather than risk a wrong answer) is retried a few times.
pub fn openat2(dir: RawFd, path: &CStr, flags: i32, resolve: u64) -> Result<RawFd, Errno> {
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: 0,
        resolve,
    };
    let mut tries = 0;
    loop {
        // SAFETY: `path` is NUL-terminated and `how` is an initialised open_how whose size
        // we pass; the kernel only reads both.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        match Errno::result(fd) {
            Ok(fd) => return Ok(fd as RawFd),
            Err(Errno::EAGAIN) if tries < 8 => tries += 1,
            Err(errno) => return Err(errno),
        }
    }
}

/// Closes a descriptor this module opened.
pub fn close(fd: RawFd) {
    // SAFETY: callers pass descriptors they own and never use again.
    unsafe { libc::close(fd) };
}

/// Resolves `path` (absolute or not, it starts at the root either way) inside the directory
/// open at `root`, creating what `how` asks for, and returns an `O_PATH` descriptor of what
/// it names (the caller closes it). Errors are the kernel's: ENOENT (missing and not
/// created), ENOTDIR (a non-directory on the way, or where a directory is wanted), EISDIR
/// (a directory where a file is wanted), ELOOP (too many links, a magic link, or a link
/// where `how.symlinks` forbids one), ENAMETOOLONG.
pub fn resolve(root: RawFd, path: &CStr, how: How) -> Result<RawFd, Errno> {
    let mut path = Buffer::from(path.to_bytes())?;
    let resolve_flags = in_root_flags(how.symlinks);
    // Each round either ends, creates one component or replaces one dangling link: the
    // bound only stops a path that keeps changing under us.
    let mut hops = 0;
    for _ in 0..(2 * MAX_HOPS + PATH_MAX / 2) {
        match path.with_prefix(path.len, |p| openat2(root, p, libc::O_PATH, resolve_flags)) {
            Ok(fd) => return check_kind(fd, how.create),
            Err(Errno::ENOENT) if how.create != Create::Nothing => {}
            Err(errno) => return Err(errno),
        }
        let (parent_end, name_start, name_end) = first_missing(root, &mut path, resolve_flags)?;
        let parent = if parent_end == 0 {
            root
        } else {
            path.with_prefix(parent_end, |p| {
                openat2(root, p, libc::O_PATH | libc::O_DIRECTORY, resolve_flags)
            })?
        };
        let result = step(
            &mut path,
            parent,
            (parent_end, name_start, name_end),
            how,
            &mut hops,
        );
        if parent != root {
            close(parent);
        }
        result?;
    }
    Err(Errno::ELOOP)
}

/// One round of [`resolve`] at the first missing component `name` (its parent open at
/// `parent`): a dangling link is replaced by its target in `path`; anything else missing is
/// created.
fn step(
    path: &mut Buffer,
    parent: RawFd,
    (parent_end, name_start, name_end): (usize, usize, usize),
    how: How,
    hops: &mut usize,
) -> Result<(), Errno> {
    let mut target = [0u8; PATH_MAX];
    let link = path.with_range(name_start, name_end, |name| {
        // SAFETY: `name` is NUL-terminated; the kernel writes at most `target.len()` bytes
        // into `target`, which outlives the call.
        let n = unsafe {
            libc::readlinkat(
                parent,
                name.as_ptr(),
                target.as_mut_ptr().cast(),
                target.len(),
            )
        };
        Errno::result(n).map(|n| n as usize)
    });
    match link {
        Ok(len) => {
            if !how.symlinks {
                return Err(Errno::ELOOP);
            }
            *hops += 1;
            if *hops > MAX_HOPS || len >= PATH_MAX {
                return Err(Errno::ELOOP);
            }
            // parent + "/" + target + rest, or target + rest for an absolute target (the
            // kernel then starts again at the root: RESOLVE_IN_ROOT).
            let mut next = Buffer::empty();
            if target[0] != b'/' {
                next.push(&path.bytes[..parent_end])?;
                next.push(b"/")?;
            }
            next.push(&target[..len])?;
            next.push(&path.bytes[name_end..path.len])?;
            *path = next;
            Ok(())
        }
        // Not a link: it exists after all (made since we looked). Look again.
        Err(Errno::EINVAL) => {
            *hops += 1;
            if *hops > MAX_HOPS {
                return Err(Errno::ELOOP);
            }
            Ok(())
        }
        Err(Errno::ENOENT) => {
            let last = path.bytes[name_end..path.len].iter().all(|&b| b == b'/');
            let made = path.with_range(name_start, name_end, |name| {
                if last && how.create == Create::File {
                    // SAFETY: `name` is NUL-terminated; mknodat only reads it.
                    Errno::result(unsafe {
                        libc::mknodat(parent, name.as_ptr(), libc::S_IFREG | 0o644, 0)
                    })
                } else {
                    // SAFETY: as above.
                    Errno::result(unsafe { libc::mkdirat(parent, name.as_ptr(), 0o755) })
                }
            });
            match made {
                Ok(_) | Err(Errno::EEXIST) => Ok(()),
                Err(errno) => Err(errno),
            }
        }
        Err(errno) => Err(errno),
    }
}

/// The first component of `path` that does not resolve: `(end of its parent, start, end)`.
/// A parent end of 0 means the root.
fn first_missing(
    root: RawFd,
    path: &mut Buffer,
    resolve_flags: u64,
) -> Result<(usize, usize, usize), Errno> {
    let mut parent_end = 0;
    let mut start = 0;
    while start < path.len {
        // Skip separators to the component's start, then to its end.
        while start < path.len && path.bytes[start] == b'/' {
            start += 1;
        }
        let mut end = start;
        while end < path.len && path.bytes[end] != b'/' {
            end += 1;
        }
        if end == start {
            break;
        }
        let dot = &path.bytes[start..end] == b".";
        let dot_dot = &path.bytes[start..end] == b"..";
        if !dot {
            match path.with_prefix(end, |p| openat2(root, p, libc::O_PATH, resolve_flags)) {
                Ok(fd) => close(fd),
                Err(Errno::ENOENT) if !dot_dot => return Ok((parent_end, start, end)),
                Err(errno) => return Err(errno),
            }
        }
        parent_end = end;
        start = end;
    }
    // Everything resolves now: something appeared since the whole path was tried.
    Err(Errno::EAGAIN)
}

/// Checks that what `fd` names suits `create`; closes it if not.
fn check_kind(fd: RawFd, create: Create) -> Result<RawFd, Errno> {
    // SAFETY: an all-zero stat is a valid value for fstat to overwrite.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is open (O_PATH descriptors allow fstat); `stat` is writable.
    if let Err(errno) = Errno::result(unsafe { libc::fstat(fd, &mut stat) }) {
        close(fd);
        return Err(errno);
    }
    let is_dir = stat.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let wrong = match create {
        Create::Nothing => None,
        Create::Dir => (!is_dir).then_some(Errno::ENOTDIR),
        Create::File => is_dir.then_some(Errno::EISDIR),
    };
    match wrong {
        Some(errno) => {
            close(fd);
            Err(errno)
        }
        None => Ok(fd),
    }
}

/// A path in a fixed buffer, with room for a NUL after any prefix.
struct Buffer {
    bytes: [u8; PATH_MAX],
    len: usize,
}

impl Buffer {
    fn empty() -> Buffer {
        Buffer {
            bytes: [0; PATH_MAX],
            len: 0,
        }
    }

    fn from(path: &[u8]) -> Result<Buffer, Errno> {
        let mut buffer = Buffer::empty();
        buffer.push(path)?;
        Ok(buffer)
    }

    fn push(&mut self, bytes: &[u8]) -> Result<(), Errno> {
        let end = self.len + bytes.len();
        if end >= PATH_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.bytes[self.len..end].copy_from_slice(bytes);
        self.len = end;
        Ok(())
    }

    /// Calls `f` with the first `end` bytes as a C string ("/" when empty: the root).
    fn with_prefix<T>(
        &mut self,
        end: usize,
        f: impl FnOnce(&CStr) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if end == 0 {
            return f(c"/");
        }
        self.with_range(0, end, f)
    }

    /// Calls `f` with bytes `start..end` as a C string: a NUL is put at `end` for the
    /// call and the byte there restored after.
    fn with_range<T>(
        &mut self,
        start: usize,
        end: usize,
        f: impl FnOnce(&CStr) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let saved = self.bytes[end];
        self.bytes[end] = 0;
        let result = match CStr::from_bytes_until_nul(&self.bytes[start..=end]) {
            Ok(c) => f(c),
            Err(_) => Err(Errno::EINVAL),
        };
        self.bytes[end] = saved;
        result
    }
}
