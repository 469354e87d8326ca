//! The syscalls of the sandbox's setup behind a narrow trait, and the loop that executes a
//! plan's steps through it. [`RealSys`] calls the kernel; tests use a recording fake.
//!
//! [`execute`] and [`RealSys`] run in the child between clone(2) and execve(2) of a
//! multithreaded process, where another thread may have held the allocator's lock at the
//! moment of the clone. So they must not allocate, lock or panic: only plain syscalls on
//! data prepared by the plan. User and group changes use the raw syscalls, because glibc's
//! wrappers try to synchronise threads the child does not have.

use std::ffi::CStr;
use std::os::fd::RawFd;
use std::os::raw::{c_char, c_short};

use nix::errno::Errno;
use nix::libc;
use nix::mount::MsFlags;

use nix::sched::CloneFlags;

use super::seccomp::BpfInstruction;
use super::step::{CStringArray, SetupStep, Target};
use crate::inroot::{self, How};

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
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno>;
    /// Opens the directory `path` (`O_PATH`): the root later resolutions stay in.
    fn open_root(&mut self, path: &CStr) -> Result<RawFd, Errno>;
    /// [`inroot::raw::resolve`]: `path` inside the directory open at `root`, created as
    /// `how` says; an `O_PATH` descriptor the caller closes.
    fn resolve_in_root(&mut self, root: RawFd, path: &CStr, how: How) -> Result<RawFd, Errno>;
    /// symlinkat(2): `name` in the directory open at `dir`, pointing at `target`.
    fn symlinkat(&mut self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno>;
    /// mknodat(2) of `name` in the directory open at `dir` (`mode` holds the node's type),
    /// replacing a non-directory already there, then fchownat(2) to `uid`:`gid`.
    fn mknodat(
        &mut self,
        dir: RawFd,
        name: &CStr,
        mode: u32,
        device: u64,
        owner: (u32, u32),
    ) -> Result<(), Errno>;
    fn close(&mut self, fd: RawFd);
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno>;
    /// The working directory `path`, resolved inside the process's root (`/`) with no
    /// magic links, then fchdir(2).
    fn chdir_in_root(&mut self, path: &CStr) -> Result<(), Errno>;
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno>;
    fn unmount_detach(&mut self, target: &CStr) -> Result<(), Errno>;
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno>;
    /// Writes `value` to `/proc/sys/PATH` of the process's own /proc (a procfs mount is
    /// checked for; the lookup stays beneath its `sys` directory, no symlinks).
    fn write_sysctl(&mut self, path: &CStr, value: &CStr) -> Result<(), Errno>;
    fn loopback_up(&mut self) -> Result<(), Errno>;
    fn setsid(&mut self) -> Result<(), Errno>;
    fn umask(&mut self, mask: u32);
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno>;
    fn setgid(&mut self, gid: u32) -> Result<(), Errno>;
    fn setuid(&mut self, uid: u32) -> Result<(), Errno>;
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno>;
    fn set_controlling_terminal(&mut self) -> Result<(), Errno>;
    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno>;
    fn keep_caps(&mut self) -> Result<(), Errno>;
    /// Drops `cap` from the bounding set; EINVAL past the kernel's last capability.
    fn drop_bounding_cap(&mut self, cap: u32) -> Result<(), Errno>;
    fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno>;
    fn clear_ambient_caps(&mut self) -> Result<(), Errno>;
    fn raise_ambient_cap(&mut self, cap: u32) -> Result<(), Errno>;
    fn set_no_new_privs(&mut self) -> Result<(), Errno>;
    /// Installs a seccomp filter; needs no_new_privs or CAP_SYS_ADMIN.
    fn load_seccomp(&mut self, program: &[BpfInstruction]) -> Result<(), Errno>;
    /// Whether `path` names an existing file (symlinks followed).
    fn exists(&mut self, path: &CStr) -> bool;
    /// Replaces the process; returns only on failure.
    fn execve(&mut self, path: &CStr, argv: &CStringArray, env: &CStringArray) -> Errno;
    /// execveat(fd, "", argv, env, AT_EMPTY_PATH): the file open at `fd`.
    fn execve_fd(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> Errno;
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
    let mut fds = Descriptors {
        root: None,
        resolved: None,
    };
    let failure = run_steps(steps, sys, on_step, &mut fds);
    fds.close(sys);
    failure
}

/// The descriptors the steps hold: the root and the last path resolved in it.
struct Descriptors {
    root: Option<RawFd>,
    resolved: Option<RawFd>,
}

impl Descriptors {
    fn close(&mut self, sys: &mut dyn Sys) {
        for fd in [self.resolved.take(), self.root.take()]
            .into_iter()
            .flatten()
        {
            sys.close(fd);
        }
    }
}

fn run_steps(
    steps: &[SetupStep],
    sys: &mut dyn Sys,
    on_step: &mut dyn FnMut(usize),
    fds: &mut Descriptors,
) -> Failure {
    for (index, step) in steps.iter().enumerate() {
        on_step(index);
        let result = match step {
            SetupStep::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => {
                let mut buffer = [0u8; PROC_FD_PATH];
                let target = match target {
                    Target::Path(path) => Ok(path.as_c_str()),
                    Target::Resolved(_) => match fds.resolved {
                        Some(fd) => proc_fd_path(fd, &mut buffer),
                        None => Err(Errno::EBADF),
                    },
                };
                target.and_then(|target| {
                    sys.mount(
                        source.as_deref(),
                        target,
                        fstype.as_deref(),
                        *flags,
                        data.as_deref(),
                    )
                })
            }
            SetupStep::Unshare { flags } => sys.unshare(*flags),
            SetupStep::MakeDir { path, mode } => sys.mkdir(path, *mode),
            SetupStep::OpenRoot { path } => {
                fds.close(sys);
                sys.open_root(path).map(|fd| fds.root = Some(fd))
            }
            SetupStep::Resolve { path, how, .. } => {
                if let Some(fd) = fds.resolved.take() {
                    sys.close(fd);
                }
                match fds.root {
                    Some(root) => sys
                        .resolve_in_root(root, path, *how)
                        .map(|fd| fds.resolved = Some(fd)),
                    None => Err(Errno::EBADF),
                }
            }
            SetupStep::SymlinkAt { target, name } => match fds.resolved {
                Some(dir) => sys.symlinkat(target, dir, name),
                None => Err(Errno::EBADF),
            },
            SetupStep::MakeNode {
                name,
                block,
                mode,
                major,
                minor,
                uid,
                gid,
            } => match fds.resolved {
                Some(dir) => {
                    let kind = if *block { libc::S_IFBLK } else { libc::S_IFCHR };
                    let device = libc::makedev(*major, *minor);
                    sys.mknodat(dir, name, kind | (mode & 0o7777), device, (*uid, *gid))
                }
                None => Err(Errno::EBADF),
            },
            SetupStep::CloseRoot => {
                fds.close(sys);
                Ok(())
            }
            SetupStep::ChdirInRoot { path } => sys.chdir_in_root(path),
            SetupStep::MaskPath { path } => mask_path(sys, path),
            SetupStep::ReadonlyPath { path } => readonly_path(sys, path),
            SetupStep::SetControllingTerminal => sys.set_controlling_terminal(),
            SetupStep::SetRlimit {
                resource,
                soft,
                hard,
                ..
            } => sys.setrlimit(*resource, *soft, *hard),
            SetupStep::KeepCaps => sys.keep_caps(),
            SetupStep::DropBoundingCaps { keep } => drop_bounding(sys, *keep),
            SetupStep::SetCapabilities {
                effective,
                permitted,
                inheritable,
                ambient,
            } => set_capabilities(sys, *effective, *permitted, *inheritable, *ambient),
            SetupStep::NoNewPrivs => sys.set_no_new_privs(),
            SetupStep::Seccomp { filter } => sys.load_seccomp(filter.program()),
            SetupStep::Chdir { path } => sys.chdir(path),
            SetupStep::PivotRoot { new_root, put_old } => sys.pivot_root(new_root, put_old),
            SetupStep::UnmountDetach { target } => sys.unmount_detach(target),
            SetupStep::SetHostname { name } => sys.sethostname(name),
            SetupStep::Sysctl { path, value } => sys.write_sysctl(path, value),
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
            SetupStep::ExecInit { init, argv, env } => {
                let errno = sys.execve_fd(*init, argv, env);
                return Failure::Exec(ExecFailure::Other {
                    candidate: 0,
                    errno,
                });
            }
        };
        if let Err(errno) = result {
            return Failure::Step { index, errno };
        }
    }
    // A plan always ends with its exec step; reaching here means it had none.
    Failure::Exec(ExecFailure::NotFound)
}

/// Room for `/proc/self/fd/` and any descriptor number, NUL included.
const PROC_FD_PATH: usize = 32;

/// `/proc/self/fd/FD` in `buffer`, without allocating: a path to what `fd` names that the
/// kernel does not resolve again from a string (magic link of kiln's own process).
fn proc_fd_path(fd: RawFd, buffer: &mut [u8; PROC_FD_PATH]) -> Result<&CStr, Errno> {
    const PREFIX: &[u8] = b"/proc/self/fd/";
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    buffer[..PREFIX.len()].copy_from_slice(PREFIX);
    let mut digits = [0u8; 10];
    let mut n = fd as u32;
    let mut count = 0;
    loop {
        digits[count] = b'0' + (n % 10) as u8;
        count += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..count {
        buffer[PREFIX.len() + i] = digits[count - 1 - i];
    }
    buffer[PREFIX.len() + count] = 0;
    CStr::from_bytes_until_nul(&buffer[..]).map_err(|_| Errno::EINVAL)
}

/// runc's maskPath: /dev/null over a file, a read-only empty tmpfs over a directory.
fn mask_path(sys: &mut dyn Sys, path: &CStr) -> Result<(), Errno> {
    match sys.mount(Some(c"/dev/null"), path, None, MsFlags::MS_BIND, None) {
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(Errno::ENOTDIR) => sys.mount(
            Some(c"tmpfs"),
            path,
            Some(c"tmpfs"),
            MsFlags::MS_RDONLY,
            None,
        ),
        Err(errno) => Err(errno),
    }
}

/// runc's readonlyPath: a recursive bind onto itself, remounted read-only.
fn readonly_path(sys: &mut dyn Sys, path: &CStr) -> Result<(), Errno> {
    match sys.mount(
        Some(path),
        path,
        None,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None,
    ) {
        Ok(()) => {}
        Err(Errno::ENOENT) => return Ok(()),
        Err(errno) => return Err(errno),
    }
    sys.mount(
        None,
        path,
        None,
        MsFlags::MS_BIND
            | MsFlags::MS_REMOUNT
            | MsFlags::MS_RDONLY
            | MsFlags::MS_NOSUID
            | MsFlags::MS_NODEV
            | MsFlags::MS_NOEXEC,
        None,
    )
}

/// Drops every capability outside `keep` from the bounding set, up to the kernel's last.
fn drop_bounding(sys: &mut dyn Sys, keep: u64) -> Result<(), Errno> {
    for cap in 0..64u32 {
        if keep & (1 << cap) != 0 {
            continue;
        }
        match sys.drop_bounding_cap(cap) {
            Ok(()) => {}
            Err(Errno::EINVAL) => break,
            Err(errno) => return Err(errno),
        }
    }
    Ok(())
}

fn set_capabilities(
    sys: &mut dyn Sys,
    effective: u64,
    permitted: u64,
    inheritable: u64,
    ambient: u64,
) -> Result<(), Errno> {
    sys.capset(effective, permitted, inheritable)?;
    sys.clear_ambient_caps()?;
    for cap in 0..64u32 {
        if ambient & (1 << cap) != 0 {
            sys.raise_ambient_cap(cap)?;
        }
    }
    Ok(())
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

    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        // SAFETY: `path` is a valid NUL-terminated string.
        check(unsafe { libc::mkdir(path.as_ptr(), mode) })
    }

    fn open_root(&mut self, path: &CStr) -> Result<RawFd, Errno> {
        // SAFETY: `path` is a valid NUL-terminated string; the result is checked.
        Errno::result(unsafe {
            libc::open(
                path.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })
    }

    fn resolve_in_root(&mut self, root: RawFd, path: &CStr, how: How) -> Result<RawFd, Errno> {
        inroot::raw::resolve(root, path, how)
    }

    fn symlinkat(&mut self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        // SAFETY: both strings are NUL-terminated; `dir` is a descriptor the plan opened.
        check(unsafe { libc::symlinkat(target.as_ptr(), dir, name.as_ptr()) })
    }

    fn mknodat(
        &mut self,
        dir: RawFd,
        name: &CStr,
        mode: u32,
        device: u64,
        owner: (u32, u32),
    ) -> Result<(), Errno> {
        // SAFETY: `name` is NUL-terminated; `dir` is a descriptor the plan resolved.
        let make = || check(unsafe { libc::mknodat(dir, name.as_ptr(), mode, device) });
        match make() {
            Err(Errno::EEXIST) => {
                // SAFETY: as above; a directory is not removed (flags 0: EISDIR).
                check(unsafe { libc::unlinkat(dir, name.as_ptr(), 0) })?;
                make()?;
            }
            other => other?,
        }
        // SAFETY: as above; the node just made is not followed if it were a link.
        check(unsafe {
            libc::fchownat(
                dir,
                name.as_ptr(),
                owner.0,
                owner.1,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }

    fn close(&mut self, fd: RawFd) {
        inroot::raw::close(fd);
    }

    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        // SAFETY: `path` is a valid NUL-terminated string.
        check(unsafe { libc::chdir(path.as_ptr()) })
    }

    fn chdir_in_root(&mut self, path: &CStr) -> Result<(), Errno> {
        let root = self.open_root(c"/")?;
        let dir = inroot::raw::openat2(
            root,
            path,
            libc::O_PATH | libc::O_DIRECTORY,
            inroot::raw::in_root_flags(true),
        );
        inroot::raw::close(root);
        let dir = dir?;
        // SAFETY: `dir` is the descriptor just opened (fchdir accepts O_PATH ones).
        let result = check(unsafe { libc::fchdir(dir) });
        inroot::raw::close(dir);
        result
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

    fn write_sysctl(&mut self, path: &CStr, value: &CStr) -> Result<(), Errno> {
        write_sysctl(path, value)
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

    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        // SAFETY: plain integer argument.
        check(unsafe { libc::unshare(flags.bits()) })
    }

    fn set_controlling_terminal(&mut self) -> Result<(), Errno> {
        // SAFETY: TIOCSCTTY takes an integer (0: do not steal from another session).
        check(unsafe { libc::ioctl(0, libc::TIOCSCTTY as _, 0) })
    }

    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` is an initialised rlimit the kernel only reads.
        check(unsafe { libc::setrlimit(resource as _, &limit) })
    }

    fn keep_caps(&mut self) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) })
    }

    fn drop_bounding_cap(&mut self, cap: u32) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) })
    }

    fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        #[repr(C)]
        struct Header {
            version: u32,
            pid: i32,
        }
        #[repr(C)]
        #[derive(Clone, Copy)]
        struct Data {
            effective: u32,
            permitted: u32,
            inheritable: u32,
        }
        const VERSION_3: u32 = 0x2008_0522;
        let header = Header {
            version: VERSION_3,
            pid: 0,
        };
        let half = |mask: u64, high: bool| (if high { mask >> 32 } else { mask }) as u32;
        let data = [false, true].map(|high| Data {
            effective: half(effective, high),
            permitted: half(permitted, high),
            inheritable: half(inheritable, high),
        });
        // SAFETY: version 3 takes a header and two data structs, both initialised and
        // living across the call; the kernel only reads them.
        check_long(unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) })
    }

    fn clear_ambient_caps(&mut self) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        match check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        }) {
            // Kernels before 4.3 have no ambient set: nothing to clear.
            Err(Errno::EINVAL) => Ok(()),
            other => other,
        }
    }

    fn raise_ambient_cap(&mut self, cap: u32) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap as libc::c_ulong,
                0,
                0,
            )
        })
    }

    fn set_no_new_privs(&mut self) -> Result<(), Errno> {
        // SAFETY: prctl with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn load_seccomp(&mut self, program: &[BpfInstruction]) -> Result<(), Errno> {
        let len = u16::try_from(program.len()).map_err(|_| Errno::E2BIG)?;
        let fprog = libc::sock_fprog {
            len,
            // The kernel only reads the program; the cast keeps the const-ness honest.
            filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
        };
        // SAFETY: BpfInstruction is repr(C) with sock_filter's fields and layout; `fprog`
        // points at `program`, which outlives the call, and the kernel copies it.
        check(unsafe {
            libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &fprog as *const libc::sock_fprog,
            )
        })
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
    fn execve_fd(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> Errno {
        // SAFETY: an empty C string with AT_EMPTY_PATH names `fd` itself; `argv` and `env`
        // are NULL-terminated arrays of valid C strings that live as long as the call.
        unsafe {
            libc::syscall(
                libc::SYS_execveat,
                fd,
                c"".as_ptr(),
                argv.as_ptr(),
                env.as_ptr(),
                libc::AT_EMPTY_PATH,
            )
        };
        Errno::last()
    }
}

/// `PROC_SUPER_MAGIC` of statfs(2): the filesystem of a real /proc.
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// `RESOLVE_*` of openat2(2): stay beneath the directory, on its mount, follow no link.
const RESOLVE_BENEATH_STRICT: u64 = 0x08 | 0x01 | 0x02 | 0x04;

/// [`Sys::write_sysctl`]: `/proc/sys` opened and checked to be procfs, the file opened
/// beneath it, `value` written in one write(2) as sysctl(8) does.
fn write_sysctl(path: &CStr, value: &CStr) -> Result<(), Errno> {
    let dir = inroot::raw::openat2(
        libc::AT_FDCWD,
        c"/proc/sys",
        libc::O_PATH | libc::O_DIRECTORY,
        0x04 | 0x02,
    )?;
    let result = (|| {
        // SAFETY: a zeroed statfs is a valid out-parameter the kernel fills.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `dir` is an open descriptor and `stat` a writable statfs.
        check(unsafe { libc::fstatfs(dir, &mut stat) })?;
        if stat.f_type as i64 != PROC_SUPER_MAGIC {
            return Err(Errno::EXDEV);
        }
        let file = inroot::raw::openat2(dir, path, libc::O_WRONLY, RESOLVE_BENEATH_STRICT)?;
        let bytes = value.to_bytes();
        // SAFETY: the pointer and length describe `value`'s bytes; `file` is open.
        let written = unsafe { libc::write(file, bytes.as_ptr().cast(), bytes.len()) };
        inroot::raw::close(file);
        match Errno::result(written) {
            Ok(n) if n as usize == bytes.len() => Ok(()),
            Ok(_) => Err(Errno::EIO),
            Err(errno) => Err(errno),
        }
    })();
    inroot::raw::close(dir);
    result
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
