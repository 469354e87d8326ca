//! A [`Sys`] that records every call and fails where told to.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;

use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use std::os::fd::RawFd;

use crate::inroot::How;
use crate::runtime::{BpfInstruction, CStringArray, Sys};

/// The descriptor the fake's open_root returns.
pub(super) const ROOT_FD: RawFd = 3;
/// The descriptor every resolution returns (the executor closes the last one first).
pub(super) const RESOLVED_FD: RawFd = 4;
/// How a mount onto the resolved descriptor names its target.
pub(super) const RESOLVED: &str = "/proc/self/fd/4";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    Mkdir(String, u32),
    OpenRoot(String),
    /// A path resolved inside the root opened last.
    Resolve(String, How),
    /// A link (target, name) in the directory resolved last.
    SymlinkAt(String, String),
    /// A device node (name, mode with its type, device number) in the directory resolved
    /// last.
    Mknod(String, u32, u64),
    Chdir(String),
    ChdirInRoot(String),
    PivotRoot(String, String),
    UnmountDetach(String),
    Hostname(String),
    /// A sysctl written in the container's /proc: (path below /proc/sys, value).
    Sysctl(String, String),
    LoopbackUp,
    Setsid,
    Umask(u32),
    SetGroups(Vec<u32>),
    SetGid(u32),
    SetUid(u32),
    Unshare(CloneFlags),
    ControllingTerminal,
    Rlimit(u32, u64, u64),
    KeepCaps,
    DropBounding(u32),
    Capset(u64, u64, u64),
    ClearAmbient,
    RaiseAmbient(u32),
    NoNewPrivs,
    Seccomp(usize),
    Exists(String),
    Execve(String, Vec<String>, Vec<String>),
}

/// Records calls. The `fail_call`-th call (0-based, execve and exists excluded) fails
/// with the given errno; execve fails with `exec_errors[path]`, else ENOENT; `exists`
/// answers from `existing`; mounts onto a path in `mount_errors` fail with its errno;
/// dropping a bounding capability above `last_cap` fails with EINVAL, as the kernel does;
/// resolving a path in `resolve_errors` fails with its errno. `open` counts the
/// descriptors handed out and not closed yet.
#[derive(Debug, Default)]
pub(super) struct FakeSys {
    pub(super) calls: Vec<Call>,
    pub(super) fail_call: Option<(usize, Errno)>,
    pub(super) exec_errors: BTreeMap<String, Errno>,
    pub(super) existing: BTreeSet<String>,
    pub(super) counted: usize,
    pub(super) mount_errors: BTreeMap<String, Errno>,
    pub(super) resolve_errors: BTreeMap<String, Errno>,
    pub(super) last_cap: u32,
    pub(super) open: i32,
}

impl FakeSys {
    pub(super) fn new() -> FakeSys {
        FakeSys {
            last_cap: 40,
            ..FakeSys::default()
        }
    }
}

fn s(c: &CStr) -> String {
    c.to_str().expect("test strings are UTF-8").to_string()
}

fn strings(array: &CStringArray) -> Vec<String> {
    array.strings().iter().map(|c| s(c)).collect()
}

impl FakeSys {
    fn record(&mut self, call: Call) -> Result<(), Errno> {
        self.calls.push(call);
        let n = self.counted;
        self.counted += 1;
        match self.fail_call {
            Some((at, errno)) if at == n => Err(errno),
            _ => Ok(()),
        }
    }
}

impl Sys for FakeSys {
    fn mount(
        &mut self,
        source: Option<&CStr>,
        target: &CStr,
        fstype: Option<&CStr>,
        flags: MsFlags,
        data: Option<&CStr>,
    ) -> Result<(), Errno> {
        if let Some(errno) = self.mount_errors.get(&s(target)) {
            let errno = *errno;
            self.calls.push(Call::Mount {
                source: source.map(s),
                target: s(target),
                fstype: fstype.map(s),
                flags,
                data: data.map(s),
            });
            return Err(errno);
        }
        self.record(Call::Mount {
            source: source.map(s),
            target: s(target),
            fstype: fstype.map(s),
            flags,
            data: data.map(s),
        })
    }
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        self.record(Call::Mkdir(s(path), mode))
    }
    fn open_root(&mut self, path: &CStr) -> Result<RawFd, Errno> {
        self.record(Call::OpenRoot(s(path)))?;
        self.open += 1;
        Ok(ROOT_FD)
    }
    fn resolve_in_root(&mut self, root: RawFd, path: &CStr, how: How) -> Result<RawFd, Errno> {
        assert_eq!(root, ROOT_FD, "resolved inside the root");
        if let Some(errno) = self.resolve_errors.get(&s(path)) {
            let errno = *errno;
            self.calls.push(Call::Resolve(s(path), how));
            return Err(errno);
        }
        self.record(Call::Resolve(s(path), how))?;
        self.open += 1;
        Ok(RESOLVED_FD)
    }
    fn symlinkat(&mut self, target: &CStr, dir: RawFd, name: &CStr) -> Result<(), Errno> {
        assert_eq!(dir, RESOLVED_FD, "links go in the resolved directory");
        self.record(Call::SymlinkAt(s(target), s(name)))
    }
    fn mknodat(
        &mut self,
        _dir: RawFd,
        name: &CStr,
        mode: u32,
        device: u64,
        _owner: (u32, u32),
    ) -> Result<(), Errno> {
        self.record(Call::Mknod(s(name), mode, device))
    }
    fn close(&mut self, fd: RawFd) {
        assert!(
            fd == ROOT_FD || fd == RESOLVED_FD,
            "closes only what it opened"
        );
        self.open -= 1;
    }
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::Chdir(s(path)))
    }
    fn chdir_in_root(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::ChdirInRoot(s(path)))
    }
    fn pivot_root(&mut self, new_root: &CStr, put_old: &CStr) -> Result<(), Errno> {
        self.record(Call::PivotRoot(s(new_root), s(put_old)))
    }
    fn unmount_detach(&mut self, target: &CStr) -> Result<(), Errno> {
        self.record(Call::UnmountDetach(s(target)))
    }
    fn sethostname(&mut self, name: &CStr) -> Result<(), Errno> {
        self.record(Call::Hostname(s(name)))
    }
    fn loopback_up(&mut self) -> Result<(), Errno> {
        self.record(Call::LoopbackUp)
    }
    fn write_sysctl(&mut self, path: &CStr, value: &CStr) -> Result<(), Errno> {
        self.record(Call::Sysctl(s(path), s(value)))
    }
    fn setsid(&mut self) -> Result<(), Errno> {
        self.record(Call::Setsid)
    }
    fn umask(&mut self, mask: u32) {
        let _ = self.record(Call::Umask(mask));
    }
    fn setgroups(&mut self, groups: &[u32]) -> Result<(), Errno> {
        self.record(Call::SetGroups(groups.to_vec()))
    }
    fn setgid(&mut self, gid: u32) -> Result<(), Errno> {
        self.record(Call::SetGid(gid))
    }
    fn setuid(&mut self, uid: u32) -> Result<(), Errno> {
        self.record(Call::SetUid(uid))
    }
    fn unshare(&mut self, flags: CloneFlags) -> Result<(), Errno> {
        self.record(Call::Unshare(flags))
    }
    fn set_controlling_terminal(&mut self) -> Result<(), Errno> {
        self.record(Call::ControllingTerminal)
    }
    fn setrlimit(&mut self, resource: u32, soft: u64, hard: u64) -> Result<(), Errno> {
        self.record(Call::Rlimit(resource, soft, hard))
    }
    fn keep_caps(&mut self) -> Result<(), Errno> {
        self.record(Call::KeepCaps)
    }
    fn drop_bounding_cap(&mut self, cap: u32) -> Result<(), Errno> {
        if cap > self.last_cap {
            return Err(Errno::EINVAL);
        }
        self.record(Call::DropBounding(cap))
    }
    fn capset(&mut self, effective: u64, permitted: u64, inheritable: u64) -> Result<(), Errno> {
        self.record(Call::Capset(effective, permitted, inheritable))
    }
    fn clear_ambient_caps(&mut self) -> Result<(), Errno> {
        self.record(Call::ClearAmbient)
    }
    fn raise_ambient_cap(&mut self, cap: u32) -> Result<(), Errno> {
        self.record(Call::RaiseAmbient(cap))
    }
    fn set_no_new_privs(&mut self) -> Result<(), Errno> {
        self.record(Call::NoNewPrivs)
    }
    fn load_seccomp(&mut self, program: &[BpfInstruction]) -> Result<(), Errno> {
        self.record(Call::Seccomp(program.len()))
    }
    fn exists(&mut self, path: &CStr) -> bool {
        self.calls.push(Call::Exists(s(path)));
        self.existing.contains(&s(path))
    }
    fn execve(&mut self, path: &CStr, argv: &CStringArray, env: &CStringArray) -> Errno {
        self.calls
            .push(Call::Execve(s(path), strings(argv), strings(env)));
        self.exec_errors
            .get(&s(path))
            .copied()
            .unwrap_or(Errno::ENOENT)
    }
    fn execve_fd(&mut self, fd: RawFd, argv: &CStringArray, env: &CStringArray) -> Errno {
        self.calls.push(Call::Execve(
            format!("fd {fd}"),
            strings(argv),
            strings(env),
        ));
        Errno::ENOEXEC
    }
}
