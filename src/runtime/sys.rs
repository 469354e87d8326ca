//! The syscalls of the sandbox's setup behind a narrow trait, and the loop that executes a
//! plan's steps through it. [`RealSys`] calls the kernel; tests use a recording fake.
//!
//! [`execute`] and [`RealSys`] run in the child between clone(2) and execve(2) of a
//! multithreaded process, where another thread may have held the allocator's lock at the
//! moment of the clone. So they must not allocate, lock or panic: only plain syscalls on
//! data prepared by the plan. User and group changes use the raw syscalls, because glibc's
//! wrappers try to synchronise threads the child does not have.

use std::ffi::CStr;
use std::os::raw::{c_char, c_short};

use nix::errno::Errno;
use nix::libc;
use nix::mount::MsFlags;

use super::plan::{CStringArray, SetupStep};

/// The kernel operations the setup needs. Each returns the raw errno on failure.
pub trait Sys {
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno>;
    fn create_file(&mut self, path: &CStr) -> Result<(), Errno>;
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno>;
    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno>;
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno>;
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno>;
    fn unmount_detach(&mut self, target: &CStr) -> Result<(), Errno>;
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno>;
    fn loopback_up(&mut self) -> Result<(), Errno>;
    fn setsid(&mut self) -> Result<(), Errno>;
    fn umask(&mut self, mask: u32);
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno>;
    fn setgid(&mut self, gid: u32) -> Result<(), Errno>;
    fn setuid(&mut self, uid: u32) -> Result<(), Errno>;
    /// Whether `path` names an existing file (symlinks followed).
    fn exists(&mut self, path: &CStr) -> bool;
    /// Replaces the process; returns only on failure.
    fn execve(&mut self, path: &CStr, argv: &CStringArray, env: &CStringArray) -> Errno;
}

/// Why the setup stopped. Only returned on failure: on success the process is the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Step `index` of the plan failed.
    Step { index: usize, errno: Errno },
    /// Every step succeeded, but no candidate of the exec step could be executed.
    Exec(ExecFailure),
}

/// How the PATH lookup failed; `candidate` indexes the exec step's candidate paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecFailure {
    NotFound,
    NotExecutable { candidate: usize },
    MissingInterpreter { candidate: usize },
    Other { candidate: usize, errno: Errno },
}

/// Runs `steps` in order, calling `on_step` before each; stops at the first failure.
/// Never returns when the exec step succeeds.
pub fn execute(steps: &[SetupStep], sys: &mut dyn Sys, on_step: &mut dyn FnMut(usize)) -> Failure {
    for (index, step) in steps.iter().enumerate() {
        on_step(index);
        let result = match step {
            SetupStep::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => sys.mount(
                source.as_deref(),
                target,
                fstype.as_deref(),
                *flags,
                data.as_deref(),
            ),
            SetupStep::CreateFile { path } => sys.create_file(path),
            SetupStep::MakeDir { path, mode } => sys.mkdir(path, *mode),
            SetupStep::Symlink { target, link } => sys.symlink(target, link),
            SetupStep::Chdir { path } => sys.chdir(path),
            SetupStep::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old),
            SetupStep::UnmountDetach { target } => sys.unmount_detach(target),
            SetupStep::SetHostname { name } => sys.sethostname(name),
            SetupStep::LoopbackUp => sys.loopback_up(),
            SetupStep::NewSession => sys.setsid(),
            SetupStep::Umask { mask } => {
                sys.umask(*mask);
                Ok(())
            }
            SetupStep::SetGroups { groups } => sys.setgroups(groups),
            SetupStep::SetGid { gid } => sys.setgid(*gid),
            SetupStep::SetUid { uid } => sys.setuid(*uid),
            SetupStep::Exec {
                candidates,
                argv,
                env,
            } => return Failure::Exec(exec_first(sys, candidates, argv, env)),
        };
        if let Err(errno) = result {
            return Failure::Step { index, errno };
        }
    }
    // A plan always ends with its exec step; reaching here means it had none.
    Failure::Exec(ExecFailure::NotFound)
}

/// execvp's search: skip candidates that do not exist, remember one that exists but may not
/// be executed, stop at any other error.
fn exec_first(
    sys: &mut dyn Sys,
    candidates: &[std::ffi::CString],
    argv: &CStringArray,
    env: &CStringArray,
) -> ExecFailure {
    let mut not_executable = None;
    for (candidate, path) in candidates.iter().enumerate() {
        match sys.execve(path, argv, env) {
            Errno::ENOENT | Errno::ENOTDIR => {
                // execve says ENOENT also when the file exists but its `#!` interpreter or
                // ELF loader does not.
                if sys.exists(path) {
                    return ExecFailure::MissingInterpreter { candidate };
                }
            }
            Errno::EACCES => {
                not_executable.get_or_insert(candidate);
            }
            errno => return ExecFailure::Other { candidate, errno },
        }
    }
    match not_executable {
        Some(candidate) => ExecFailure::NotExecutable { candidate },
        None => ExecFailure::NotFound,
    }
}

/// The kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealSys;

fn check(result: libc::c_int) -> Result<(), Errno> {
    Errno::result(result).map(drop)
}

fn check_long(result: libc::c_long) -> Result<(), Errno> {
    Errno::result(result).map(drop)
}

impl Sys for RealSys {
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        // nix passes C strings through without copying.
        nix::mount::mount(source, target, fstype, flags, data)
    }

    fn create_file(&mut self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: `path` is a valid NUL-terminated string; mknod only reads it.
        check(unsafe { libc::mknod(path.as_ptr(), libc::S_IFREG | 0o644, 0) })
    }

    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        // SAFETY: `path` is a valid NUL-terminated string.
        check(unsafe { libc::mkdir(path.as_ptr(), mode) })
    }

    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        // SAFETY: both are valid NUL-terminated strings.
        check(unsafe { libc::symlink(target.as_ptr(), link.as_ptr()) })
    }

    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: `path` is a valid NUL-terminated string.
        check(unsafe { libc::chdir(path.as_ptr()) })
    }

    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        // SAFETY: the raw syscall takes two valid NUL-terminated strings.
        check_long(unsafe {
            libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr())
        })
    }

    fn unmount_detach(&mut self, target: &CStr) -> Result<(), Errno> {
        // SAFETY: `target` is a valid NUL-terminated string.
        check(unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) })
    }

    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno> {
        let bytes = name.to_bytes();
        // SAFETY: the pointer and length describe `name`'s bytes.
        check(unsafe { libc::sethostname(bytes.as_ptr().cast::<c_char>(), bytes.len()) })
    }

    fn loopback_up(&mut self) -> Result<(), Errno> {
        loopback_up()
    }

    fn setsid(&mut self) -> Result<(), Errno> {
        // SAFETY: no arguments; setsid only changes this process's session.
        check(unsafe { libc::setsid() })
    }

    fn umask(&mut self, mask: u32) {
        // SAFETY: umask cannot fail.
        unsafe { libc::umask(mask) };
    }

    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno> {
        // SAFETY: gid_t is u32; the pointer and length describe `groups`. The raw syscall
        // changes only this thread, which is the whole child.
        check_long(unsafe { libc::syscall(libc::SYS_setgroups, groups.len(), groups.as_ptr()) })
    }

    fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        // SAFETY: plain integers; see setgroups for why the raw syscall.
        check_long(unsafe { libc::syscall(libc::SYS_setresgid, gid, gid, gid) })
    }

    fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        // SAFETY: plain integers; see setgroups for why the raw syscall.
        check_long(unsafe { libc::syscall(libc::SYS_setresuid, uid, uid, uid) })
    }

    fn exists(&mut self, path: &CStr) -> bool {
        // SAFETY: `path` is a valid NUL-terminated string.
        unsafe { libc::access(path.as_ptr(), libc::F_OK) == 0 }
    }

    fn execve(&mut self, path: &CStr, argv: &CStringArray, env: &CStringArray) -> Errno {
        // SAFETY: `argv` and `env` are NULL-terminated arrays of valid C strings that live
        // as long as the call.
        unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), env.as_ptr()) };
        Errno::last()
    }
}

/// `struct ifreq` as SIOCGIFFLAGS/SIOCSIFFLAGS use it: the name, then the flags, padded to
/// the size of the kernel's union.
#[repr(C)]
struct IfreqFlags {
    name: [c_char; libc::IFNAMSIZ],
    flags: c_short,
    _pad: [u8; 22],
}

/// `ip link set lo up`, with two ioctls instead of a netlink conversation.
fn loopback_up() -> Result<(), Errno> {
    // SAFETY: plain integer arguments; the result is checked.
    let socket = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    Errno::result(socket)?;
    let mut request = IfreqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    for (slot, byte) in request.name.iter_mut().zip(b"lo") {
        *slot = *byte as c_char;
    }
    // SAFETY: `request` is a properly sized, initialised ifreq the kernel reads and writes.
    let result = check(unsafe {
        libc::ioctl(
            socket,
            libc::SIOCGIFFLAGS as _,
            &mut request as *mut IfreqFlags,
        )
    })
    .and_then(|()| {
        request.flags |= libc::IFF_UP as c_short;
        // SAFETY: as above.
        check(unsafe {
            libc::ioctl(
                socket,
                libc::SIOCSIFFLAGS as _,
                &mut request as *mut IfreqFlags,
            )
        })
    });
    // SAFETY: `socket` is a descriptor this function opened and nothing else uses.
    unsafe { libc::close(socket) };
    result
}
