//! A [`Sys`] that records every call and fails where told to.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CStr;

use nix::errno::Errno;
use nix::mount::MsFlags;

use crate::runtime::{CStringArray, Sys};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Call {
    Mount {
        source: Option<String>,
        target: String,
        fstype: Option<String>,
        flags: MsFlags,
        data: Option<String>,
    },
    CreateFile(String),
    Mkdir(String, u32),
    Symlink(String, String),
    Chdir(String),
    PivotRoot(String, String),
    UnmountDetach(String),
    Hostname(String),
    LoopbackUp,
    Setsid,
    Umask(u32),
    SetGroups(Vec<u32>),
    SetGid(u32),
    SetUid(u32),
    Exists(String),
    Execve(String, Vec<String>, Vec<String>),
}

/// Records calls. The `fail_call`-th call (0-based, execve and exists excluded) fails
/// with the given errno; execve fails with `exec_errors[path]`, else ENOENT; `exists`
/// answers from `existing`.
#[derive(Debug, Default)]
pub(super) struct FakeSys {
    pub(super) calls: Vec<Call>,
    pub(super) fail_call: Option<(usize, Errno)>,
    pub(super) exec_errors: BTreeMap<String, Errno>,
    pub(super) existing: BTreeSet<String>,
    pub(super) counted: usize,
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
        self.record(Call::Mount {
            source: source.map(s),
            target: s(target),
            fstype: fstype.map(s),
            flags,
            data: data.map(s),
        })
    }
    fn create_file(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::CreateFile(s(path)))
    }
    fn mkdir(&mut self, path: &CStr, mode: u32) -> Result<(), Errno> {
        self.record(Call::Mkdir(s(path), mode))
    }
    fn symlink(&mut self, target: &CStr, link: &CStr) -> Result<(), Errno> {
        self.record(Call::Symlink(s(target), s(link)))
    }
    fn chdir(&mut self, path: &CStr) -> Result<(), Errno> {
        self.record(Call::Chdir(s(path)))
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
}
