//! One kernel-level action of the child between clone and exec, as data ([`SetupStep`]),
//! and its rendering for `--trace`: the shell command a learner would type to do the same.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::linux_names::capability_list;
use super::seccomp::SeccompFilter;
use crate::inroot::{Create, How};

/// Where a [`SetupStep::Mount`] mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A path of kiln's own on the host (the scratch tmpfs, the merged root), or a path
    /// after pivot_root.
    Path(CString),
    /// The descriptor of the last [`SetupStep::Resolve`], through `/proc/self/fd/N`: the
    /// container path is kept for the trace and error messages.
    Resolved(CString),
}

impl Target {
    /// The path shown to people: the host path, or the path in the container.
    pub fn shown(&self) -> String {
        match self {
            Target::Path(path) | Target::Resolved(path) => show(path),
        }
    }
}

/// Why a path is resolved: what a failure means to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Purpose {
    /// A filesystem's mountpoint (`/proc`, `/dev`, a tmpfs).
    Mountpoint { fstype: String },
    /// The target of a bind mount (a volume, /etc/hosts) of `source`.
    Bind { source: String },
    /// A device node bound from the host.
    Device,
    /// The mount just made, found again to change its flags or propagation.
    Remount,
    /// The directory links are created in.
    Links,
    /// The working directory, created when missing.
    Workdir,
}

/// The setup of one sandbox or container: namespaces created by clone(2), then steps run
/// by the child, the last one always [`SetupStep::Exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    pub namespaces: CloneFlags,
    pub steps: Vec<SetupStep>,
    /// The command as given (`argv[0]`), for error messages.
    pub command: String,
    /// The PATH its lookup used.
    pub path: String,
    /// The working directory.
    pub cwd: String,
}

/// One kernel-level action of the child, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    /// unshare(2): namespaces created after the parent has set the child up (the cgroup
    /// namespace, so that its root is the container's cgroup).
    Unshare {
        flags: CloneFlags,
    },
    Mount {
        source: Option<CString>,
        target: Target,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// A directory of kiln's own (the scratch tmpfs), by its host path.
    MakeDir {
        path: CString,
        mode: u32,
    },
    /// Opens the merged root (`O_PATH`): every later [`SetupStep::Resolve`] stays inside it.
    OpenRoot {
        path: CString,
    },
    /// Resolves the container path `path` inside the root opened by
    /// [`SetupStep::OpenRoot`] (`openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`: the
    /// image's links are followed as the container will see them, never on the host),
    /// creating what `how` asks for one component at a time on resolved descriptors. The
    /// descriptor is kept for the steps that follow ([`Target::Resolved`],
    /// [`SetupStep::SymlinkAt`]) until the next resolve.
    Resolve {
        path: CString,
        how: How,
        purpose: Purpose,
    },
    /// symlinkat(2): the link `name` → `target` in the directory last resolved.
    SymlinkAt {
        target: CString,
        name: CString,
    },
    /// mknodat(2) of the device node `name` in the directory last resolved (one already
    /// there is replaced), then fchownat(2) to `uid`:`gid`: a `--device` whose host node
    /// is not at the same path.
    MakeNode {
        name: CString,
        block: bool,
        mode: u32,
        major: u32,
        minor: u32,
        uid: u32,
        gid: u32,
    },
    /// Closes the root's and the last resolved descriptors: nothing of the host stays open
    /// across pivot_root.
    CloseRoot,
    Chdir {
        path: CString,
    },
    /// The process's working directory: resolved inside the process's root
    /// (`RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS`), then fchdir(2): neither an image's link
    /// nor a `/proc/self/fd/N` of a descriptor kiln still holds can put it outside.
    ChdirInRoot {
        path: CString,
    },
    PivotRoot {
        new_root: CString,
        put_old: CString,
    },
    /// umount2(MNT_DETACH): drops the old root after pivot_root.
    UnmountDetach {
        target: CString,
    },
    /// Hides `path`: /dev/null bound over a file, an empty read-only tmpfs over a
    /// directory; nothing if it does not exist.
    MaskPath {
        path: CString,
    },
    /// Binds `path` onto itself read-only (with nosuid, nodev, noexec); nothing if it does
    /// not exist.
    ReadonlyPath {
        path: CString,
    },
    SetHostname {
        name: CString,
    },
    /// Writes `value` to the sysctl file `path` (relative to `/proc/sys`, `net/ipv4/ip_forward`)
    /// of the container's own /proc, mounted after pivot_root: the lookup starts at that
    /// mount's `sys` and stays beneath it (no symlinks, no other mount), never the host's.
    Sysctl {
        path: CString,
        value: CString,
    },
    /// Brings `lo` up; only planned in a new network namespace.
    LoopbackUp,
    /// setsid(2): a new session without a controlling terminal.
    NewSession,
    /// ioctl(0, TIOCSCTTY): stdin, a pty, becomes the controlling terminal.
    SetControllingTerminal,
    Umask {
        mask: u32,
    },
    /// setrlimit(2); `name` is prlimit(1)'s for the resource.
    SetRlimit {
        resource: u32,
        name: &'static str,
        soft: u64,
        hard: u64,
    },
    /// prctl(PR_SET_KEEPCAPS): keep the permitted capabilities across the uid change.
    KeepCaps,
    /// prctl(PR_CAPBSET_DROP) of every capability not in `keep`.
    DropBoundingCaps {
        keep: u64,
    },
    SetGroups {
        groups: Vec<u32>,
    },
    SetGid {
        gid: u32,
    },
    SetUid {
        uid: u32,
    },
    /// capset(2) of the three sets, then the ambient set cleared and `ambient` raised.
    SetCapabilities {
        effective: u64,
        permitted: u64,
        inheritable: u64,
        ambient: u64,
    },
    /// prctl(PR_SET_NO_NEW_PRIVS): execve never grants privileges (setuid bits, file caps).
    NoNewPrivs,
    /// prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER) of a program built by the plan.
    Seccomp {
        filter: SeccompFilter,
    },
    /// execve(2) of each candidate path in turn (the PATH lookup) until one runs.
    Exec {
        candidates: Vec<CString>,
        argv: CStringArray,
        env: CStringArray,
    },
    /// execveat(2) of the sealed in-memory copy of `kiln-init` open at `init`
    /// (`AT_EMPTY_PATH`), with `argv` = `kiln-init -- COMMAND [ARG]…`: `--init`. The init
    /// does the command's PATH lookup itself.
    ExecInit {
        init: std::os::fd::RawFd,
        argv: CStringArray,
        env: CStringArray,
    },
}
/// C strings with the NULL-terminated pointer array execve(2) wants, built ahead of time.
pub struct CStringArray {
    strings: Vec<CString>,
    pointers: Vec<*const c_char>,
}

// SAFETY: the pointers point into the heap buffers of `strings`, which this struct owns and
// never mutates; sharing or sending it is exactly as safe as sharing or sending the strings.
unsafe impl Send for CStringArray {}
// SAFETY: as above; nothing is mutated through a shared reference.
unsafe impl Sync for CStringArray {}

impl CStringArray {
    pub fn new(strings: Vec<CString>) -> CStringArray {
        let mut pointers: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        pointers.push(std::ptr::null());
        CStringArray { strings, pointers }
    }

    pub fn strings(&self) -> &[CString] {
        &self.strings
    }

    /// A NULL-terminated array of pointers, valid as long as `self` is.
    pub fn as_ptr(&self) -> *const *const c_char {
        self.pointers.as_ptr()
    }
}

impl Clone for CStringArray {
    fn clone(&self) -> CStringArray {
        CStringArray::new(self.strings.clone())
    }
}

impl PartialEq for CStringArray {
    fn eq(&self, other: &CStringArray) -> bool {
        self.strings == other.strings
    }
}

impl Eq for CStringArray {}

impl fmt::Debug for CStringArray {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.strings).finish()
    }
}

/// Shell-like rendering for `--trace`: what a learner would type to do the same.
impl fmt::Display for SetupStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupStep::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => fmt_mount(
                f,
                source.as_deref(),
                target,
                fstype.as_deref(),
                *flags,
                data,
            ),
            SetupStep::Unshare { flags } => {
                write!(f, "unshare {}", namespace_options(*flags))
            }
            SetupStep::OpenRoot { path } => write!(
                f,
                "exec {{root}}<{}  # O_PATH: later paths are resolved inside it",
                show(path)
            ),
            SetupStep::Resolve { path, how, .. } => {
                let create = match how.create {
                    Create::Nothing => "",
                    Create::Dir => ", mkdir -p inside it",
                    Create::File => ", mkdir -p and touch inside it",
                };
                let links = if how.symlinks {
                    "RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS"
                } else {
                    "RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS|RESOLVE_NO_SYMLINKS"
                };
                write!(f, "N=openat2({{root}}, {}, {links}){create}", show(path))
            }
            SetupStep::SymlinkAt { target, name } => {
                write!(f, "ln -s {} /proc/self/fd/N/{}", show(target), show(name))
            }
            SetupStep::MakeNode {
                name,
                block,
                mode,
                major,
                minor,
                uid,
                gid,
            } => write!(
                f,
                "mknod -m {mode:o} /proc/self/fd/N/{} {} {major} {minor} && chown {uid}:{gid} /proc/self/fd/N/{0}",
                show(name),
                if *block { 'b' } else { 'c' }
            ),
            SetupStep::CloseRoot => f.write_str("exec {root}>&- N>&-"),
            SetupStep::ChdirInRoot { path } => write!(
                f,
                "cd {}  # openat2(/, RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), fchdir",
                show(path)
            ),
            SetupStep::MaskPath { path } => write!(
                f,
                "mount --bind /dev/null {0}  # or, for a directory: mount -t tmpfs -o ro tmpfs {0}",
                show(path)
            ),
            SetupStep::ReadonlyPath { path } => write!(
                f,
                "mount --rbind {0} {0} && mount -o remount,bind,ro,nosuid,nodev,noexec {0}",
                show(path)
            ),
            SetupStep::SetControllingTerminal => f.write_str("ioctl(0, TIOCSCTTY)"),
            SetupStep::SetRlimit {
                name, soft, hard, ..
            } => write!(f, "prlimit --{name}={soft}:{hard}"),
            SetupStep::KeepCaps => f.write_str("prctl(PR_SET_KEEPCAPS, 1)"),
            SetupStep::DropBoundingCaps { keep } => write!(
                f,
                "prctl(PR_CAPBSET_DROP) {}  # keep {}",
                capability_list(!keep & ALL_KNOWN_CAPS),
                capability_list(*keep)
            ),
            SetupStep::SetCapabilities {
                effective,
                permitted,
                inheritable,
                ambient,
            } => write!(
                f,
                "capset effective={} permitted={} inheritable={} ambient={}",
                capability_list(*effective),
                capability_list(*permitted),
                capability_list(*inheritable),
                capability_list(*ambient)
            ),
            SetupStep::NoNewPrivs => f.write_str("prctl(PR_SET_NO_NEW_PRIVS, 1)"),
            SetupStep::Seccomp { filter } => write!(f, "{filter}"),
            SetupStep::MakeDir { path, mode } => write!(f, "mkdir -m {mode:o} {}", show(path)),
            SetupStep::Chdir { path } => write!(f, "cd {}", show(path)),
            SetupStep::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root {} {}", show(new_root), show(put_old))
            }
            SetupStep::UnmountDetach { target } => write!(f, "umount --lazy {}", show(target)),
            SetupStep::SetHostname { name } => write!(f, "hostname {}", show(name)),
            SetupStep::Sysctl { path, value } => write!(
                f,
                "sysctl -w {}={}  # /proc/sys/{} of the container's /proc",
                show(path).replace('/', "."),
                quote(&show(value)),
                show(path)
            ),
            SetupStep::LoopbackUp => f.write_str("ip link set lo up"),
            SetupStep::NewSession => f.write_str("setsid"),
            SetupStep::Umask { mask } => write!(f, "umask {mask:03o}"),
            SetupStep::SetGroups { groups } => {
                let list: Vec<String> = groups.iter().map(u32::to_string).collect();
                write!(f, "setgroups [{}]", list.join(","))
            }
            SetupStep::SetGid { gid } => write!(f, "setgid {gid}"),
            SetupStep::SetUid { uid } => write!(f, "setuid {uid}"),
            SetupStep::Exec { argv, .. } => {
                f.write_str("exec")?;
                for arg in argv.strings() {
                    write!(f, " {}", quote(&show(arg)))?;
                }
                Ok(())
            }
            SetupStep::ExecInit { argv, .. } => {
                f.write_str("exec")?;
                for arg in argv.strings() {
                    write!(f, " {}", quote(&show(arg)))?;
                }
                f.write_str("  # --init: kiln's init from its sealed in-memory copy")
            }
        }
    }
}

fn fmt_mount(
    f: &mut fmt::Formatter<'_>,
    source: Option<&CStr>,
    target: &Target,
    fstype: Option<&CStr>,
    flags: MsFlags,
    data: &Option<CString>,
) -> fmt::Result {
    mount_command(f, source, target, fstype, flags, data)?;
    if let Target::Resolved(path) = target {
        write!(f, "  # N: {} in the root", show(path))?;
    }
    Ok(())
}

fn mount_command(
    f: &mut fmt::Formatter<'_>,
    source: Option<&CStr>,
    target: &Target,
    fstype: Option<&CStr>,
    flags: MsFlags,
    data: &Option<CString>,
) -> fmt::Result {
    let target = match target {
        Target::Path(path) => show(path),
        Target::Resolved(_) => "/proc/self/fd/N".to_string(),
    };
    let recursive = if flags.contains(MsFlags::MS_REC) {
        "r"
    } else {
        ""
    };
    let source = source.map(show).unwrap_or_else(|| "none".into());
    for (flag, kind) in [
        (MsFlags::MS_PRIVATE, "private"),
        (MsFlags::MS_SHARED, "shared"),
        (MsFlags::MS_SLAVE, "slave"),
        (MsFlags::MS_UNBINDABLE, "unbindable"),
    ] {
        if flags.contains(flag) {
            return write!(f, "mount --make-{recursive}{kind} {target}");
        }
    }
    if flags.contains(MsFlags::MS_REMOUNT) {
        let mut options = vec!["remount".to_string()];
        if flags.contains(MsFlags::MS_BIND) {
            options.push("bind".into());
        }
        options.extend(flag_names(flags));
        options.extend(data.as_deref().map(show));
        return write!(f, "mount -o {} {target}", options.join(","));
    }
    if flags.contains(MsFlags::MS_BIND) {
        return write!(f, "mount --{recursive}bind {source} {target}");
    }
    write!(f, "mount")?;
    if let Some(fstype) = fstype {
        write!(f, " -t {}", show(fstype))?;
    }
    write!(f, " {source} {target}")?;
    let mut options = flag_names(flags);
    options.extend(data.as_deref().map(show));
    if !options.is_empty() {
        write!(f, " -o {}", options.join(","))?;
    }
    Ok(())
}

fn flag_names(flags: MsFlags) -> Vec<String> {
    [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_RELATIME, "relatime"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
    ]
    .iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| (*name).to_string())
    .collect()
}

/// Every capability this kernel interface knows (CAP_CHECKPOINT_RESTORE = 40 is the last).
const ALL_KNOWN_CAPS: u64 = (1 << 41) - 1;

/// unshare(1)'s options for `flags`.
pub(crate) fn namespace_options(flags: CloneFlags) -> String {
    namespace_names(flags)
        .iter()
        .map(|name| format!("--{name}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The namespaces in `flags`, by their short names.
pub(crate) fn namespace_names(flags: CloneFlags) -> Vec<&'static str> {
    [
        (CloneFlags::CLONE_NEWNS, "mount"),
        (CloneFlags::CLONE_NEWPID, "pid"),
        (CloneFlags::CLONE_NEWIPC, "ipc"),
        (CloneFlags::CLONE_NEWUTS, "uts"),
        (CloneFlags::CLONE_NEWNET, "net"),
        (CloneFlags::CLONE_NEWCGROUP, "cgroup"),
    ]
    .iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| *name)
    .collect()
}

fn show(s: &CStr) -> String {
    s.to_string_lossy().into_owned()
}

/// Single-quotes an argument when a shell would need it.
fn quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./=:,+@%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}
