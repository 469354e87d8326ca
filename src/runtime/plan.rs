//! The sandbox's setup as data: a [`SandboxSpec`] becomes the namespaces to create and the
//! ordered [`SetupStep`]s the child executes. Pure (no I/O): unit tests assert the exact
//! mounts, and `--trace` prints the same steps the child runs.
//!
//! Everything the child needs is built here, before the fork, because the child of a
//! multithreaded process must not allocate: C strings, the argv/envp pointer arrays and the
//! candidate paths of the PATH lookup.

use std::ffi::{CStr, CString};
use std::fmt;
use std::os::raw::c_char;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;

use super::{SandboxError, SandboxSpec};

/// The PATH used for the command lookup when the spec's env has none (Docker's default).
pub fn default_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// Devices bind-mounted from the host into the sandbox's /dev.
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Mountpoints provided by the skeleton layer below the caller's layers.
const SKELETON_DIRS: [&str; 3] = ["proc", "dev", "sys"];

/// Linux limits mount data to one page, NUL included.
const MOUNT_DATA_MAX: usize = 4095;

/// The umask of the command, fixed so that layers do not depend on kiln's own umask.
const UMASK: u32 = 0o022;

/// The sandbox's directories. On the host, `scratch_dir` only ever holds two: the overlayfs
/// workdir and an empty mountpoint. In the sandbox's mount namespace a tmpfs is mounted on
/// that mountpoint to hold the skeleton layer and the merged root, so they cost no disk
/// writes and vanish with the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScratchLayout {
    /// The overlayfs workdir (the kernel creates `work/` in it). Not inside the tmpfs: it
    /// must be on the upper directory's filesystem.
    pub(crate) overlay_work: PathBuf,
    /// Where the tmpfs is mounted; empty on the host.
    pub(crate) mountpoint: PathBuf,
    /// Lowest lower layer, on the tmpfs: empty `proc`, `dev`, `sys` directories.
    pub(crate) skeleton: PathBuf,
    /// Where the merged root is mounted, on the tmpfs.
    pub(crate) merged: PathBuf,
}

impl ScratchLayout {
    pub(crate) fn new(scratch: &Path) -> ScratchLayout {
        let mountpoint = scratch.join("mnt");
        ScratchLayout {
            overlay_work: scratch.join("overlay-work"),
            skeleton: mountpoint.join("skeleton"),
            merged: mountpoint.join("merged"),
            mountpoint,
        }
    }
}

/// The setup of one sandbox: namespaces created by clone(2), then steps run by the child.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupPlan {
    pub namespaces: CloneFlags,
    pub steps: Vec<SetupStep>,
}

/// One kernel-level action of the child, in the order it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupStep {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: MsFlags,
        data: Option<CString>,
    },
    /// An empty regular file, as a bind-mount target.
    CreateFile {
        path: CString,
    },
    MakeDir {
        path: CString,
        mode: u32,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    Chdir {
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
    SetHostname {
        name: CString,
    },
    /// Brings `lo` up; only planned in a new network namespace.
    LoopbackUp,
    /// setsid(2): no controlling terminal, so the command cannot read kiln's terminal.
    NewSession,
    Umask {
        mask: u32,
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
    /// execve(2) of each candidate path in turn (the PATH lookup) until one runs.
    Exec {
        candidates: Vec<CString>,
        argv: CStringArray,
        env: CStringArray,
    },
}

/// Computes the setup of `spec`. Checks what the kernel would reject late or obscurely.
pub fn plan(spec: &SandboxSpec) -> Result<SetupPlan, SandboxError> {
    let scratch_dir = absolute("scratch directory", &spec.scratch_dir)?;
    let scratch = ScratchLayout::new(scratch_dir);
    let upper = outside_scratch("upper directory", &spec.upper_dir, scratch_dir)?;
    let mut lowers = Vec::with_capacity(spec.lower_dirs.len() + 1);
    for lower in &spec.lower_dirs {
        lowers.push(outside_scratch("lower directory", lower, scratch_dir)?);
    }
    lowers.push(&scratch.skeleton);
    if !spec.cwd.starts_with('/') {
        return Err(SandboxError::RelativePath {
            what: "working directory",
            path: PathBuf::from(&spec.cwd),
        });
    }
    if spec.hostname.len() > 64 {
        return Err(SandboxError::BadHostname {
            hostname: spec.hostname.clone(),
        });
    }
    let command = spec.argv.first().ok_or(SandboxError::EmptyCommand)?;
    if command.is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    if let Some(entry) = spec.env.iter().find(|e| !e.contains('=')) {
        return Err(SandboxError::BadEnv {
            entry: entry.clone(),
        });
    }

    let mut namespaces = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS;
    if !spec.network {
        namespaces |= CloneFlags::CLONE_NEWNET;
    }

    let root = &scratch.merged;
    let in_root = |relative: &str| cpath(&root.join(relative), "scratch directory");
    let mut steps = Vec::new();
    // First, before anything is mounted: nothing may propagate to the machine's mounts.
    steps.push(mount(
        None,
        c("/"),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    ));
    steps.push(mount(
        Some(c("tmpfs")),
        cpath(&scratch.mountpoint, "scratch directory")?,
        Some(c("tmpfs")),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(c("mode=755,size=64k")),
    ));
    for dir in [&scratch.skeleton, &scratch.merged] {
        steps.push(SetupStep::MakeDir {
            path: cpath(dir, "scratch directory")?,
            mode: 0o755,
        });
    }
    for dir in SKELETON_DIRS {
        steps.push(SetupStep::MakeDir {
            path: cpath(&scratch.skeleton.join(dir), "scratch directory")?,
            mode: 0o755,
        });
    }
    steps.push(mount(
        Some(c("overlay")),
        cpath(root, "scratch directory")?,
        Some(c("overlay")),
        MsFlags::empty(),
        Some(overlay_options(&lowers, upper, &scratch.overlay_work)?),
    ));
    steps.push(mount(
        Some(c("proc")),
        in_root("proc")?,
        Some(c("proc")),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    ));
    steps.push(mount(
        Some(c("tmpfs")),
        in_root("dev")?,
        Some(c("tmpfs")),
        MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME,
        Some(c("mode=755,size=65536k")),
    ));
    for device in DEVICES {
        let target = in_root(&format!("dev/{device}"))?;
        steps.push(SetupStep::CreateFile {
            path: target.clone(),
        });
        steps.push(mount(
            Some(cstring(format!("/dev/{device}"))),
            target,
            None,
            MsFlags::MS_BIND,
            None,
        ));
    }
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        steps.push(SetupStep::Symlink {
            target: c(target),
            link: in_root(&format!("dev/{link}"))?,
        });
    }
    steps.push(SetupStep::MakeDir {
        path: in_root("dev/shm")?,
        mode: 0o755,
    });
    steps.push(mount(
        Some(c("shm")),
        in_root("dev/shm")?,
        Some(c("tmpfs")),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(c("mode=1777,size=65536k")),
    ));
    steps.push(mount(
        Some(c("sysfs")),
        in_root("sys")?,
        Some(c("sysfs")),
        MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None,
    ));
    // pivot_root(".", ".") stacks the old root on the new one; detaching "." drops it.
    // No put_old directory is needed, so nothing is created in the rootfs.
    steps.push(SetupStep::Chdir {
        path: cpath(root, "scratch directory")?,
    });
    steps.push(SetupStep::PivotRoot {
        new_root: c("."),
        put_old: c("."),
    });
    steps.push(SetupStep::UnmountDetach { target: c(".") });
    steps.push(SetupStep::Chdir { path: c("/") });
    steps.push(SetupStep::SetHostname {
        name: CString::new(spec.hostname.as_str())
            .map_err(|_| SandboxError::Nul { what: "hostname" })?,
    });
    if !spec.network {
        steps.push(SetupStep::LoopbackUp);
    }
    steps.push(SetupStep::NewSession);
    steps.push(SetupStep::Umask { mask: UMASK });
    if let Some(user) = &spec.user {
        // Groups first: once the uid is dropped, the process may no longer change them.
        steps.push(SetupStep::SetGroups {
            groups: user.groups.clone(),
        });
        steps.push(SetupStep::SetGid { gid: user.gid });
        steps.push(SetupStep::SetUid { uid: user.uid });
    }
    steps.push(SetupStep::Chdir {
        path: CString::new(spec.cwd.as_str()).map_err(|_| SandboxError::Nul {
            what: "working directory",
        })?,
    });
    steps.push(SetupStep::Exec {
        candidates: exec_candidates(command, &path_var(&spec.env))?,
        argv: strings("command", &spec.argv)?,
        env: strings("environment", &spec.env)?,
    });
    Ok(SetupPlan { namespaces, steps })
}

/// The PATH the command lookup uses: the one in `env`, else [`default_path`].
pub(crate) fn path_var(env: &[String]) -> String {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(default_path())
        .to_string()
}

/// The paths execve tries for `command`, in order: itself if it has a `/`, else each
/// non-empty PATH entry joined with it (like execvp, minus the current directory).
fn exec_candidates(command: &str, path: &str) -> Result<Vec<CString>, SandboxError> {
    let nul = |_| SandboxError::Nul { what: "command" };
    if command.contains('/') {
        return Ok(vec![CString::new(command).map_err(nul)?]);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| CString::new(format!("{}/{command}", dir.trim_end_matches('/'))).map_err(nul))
        .collect()
}

fn overlay_options(lowers: &[&Path], upper: &Path, work: &Path) -> Result<CString, SandboxError> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        escape_overlay_path(lower, &mut data);
    }
    data.extend_from_slice(b",upperdir=");
    escape_overlay_path(upper, &mut data);
    data.extend_from_slice(b",workdir=");
    escape_overlay_path(work, &mut data);
    // Keep upper directories plain: no redirect or metacopy xattrs that a layer diff would
    // misread, no index tied to this mount. `volatile`: unmounting must not sync the whole
    // upper filesystem (tens of milliseconds on a busy disk, every run); the upper
    // directory is scratch until the caller has turned it into a stored layer anyway.
    data.extend_from_slice(b",index=off,metacopy=off,redirect_dir=off,volatile");
    if data.len() > MOUNT_DATA_MAX {
        return Err(SandboxError::OverlayOptionsTooLong { len: data.len() });
    }
    CString::new(data).map_err(|_| SandboxError::Nul {
        what: "layer directory path",
    })
}

/// overlayfs splits its options on `,` and lowerdir on `:`; a backslash escapes both.
pub(crate) fn escape_overlay_path(path: &Path, out: &mut Vec<u8>) {
    for &byte in path.as_os_str().as_bytes() {
        if matches!(byte, b',' | b':' | b'\\') {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// An absolute path outside the scratch directory, whose mountpoint the tmpfs hides.
fn outside_scratch<'a>(
    what: &'static str,
    path: &'a Path,
    scratch: &Path,
) -> Result<&'a Path, SandboxError> {
    let path = absolute(what, path)?;
    if path.starts_with(scratch) || scratch.starts_with(path) {
        return Err(SandboxError::InsideScratch {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(path)
}

fn absolute<'a>(what: &'static str, path: &'a Path) -> Result<&'a Path, SandboxError> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(SandboxError::RelativePath {
            what,
            path: path.to_path_buf(),
        })
    }
}

fn mount(
    source: Option<CString>,
    target: CString,
    fstype: Option<CString>,
    flags: MsFlags,
    data: Option<CString>,
) -> SetupStep {
    SetupStep::Mount {
        source,
        target,
        fstype,
        flags,
        data,
    }
}

/// A C string from a literal or a formatted string free of NULs.
fn c(s: &str) -> CString {
    cstring(s.to_string())
}

fn cstring(s: String) -> CString {
    CString::new(s).unwrap_or_default()
}

fn cpath(path: &Path, what: &'static str) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::Nul { what })
}

fn strings(what: &'static str, items: &[String]) -> Result<CStringArray, SandboxError> {
    let strings = items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| SandboxError::Nul { what }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CStringArray::new(strings))
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
            SetupStep::CreateFile { path } => write!(f, "touch {}", show(path)),
            SetupStep::MakeDir { path, mode } => write!(f, "mkdir -m {mode:o} {}", show(path)),
            SetupStep::Symlink { target, link } => {
                write!(f, "ln -s {} {}", show(target), show(link))
            }
            SetupStep::Chdir { path } => write!(f, "cd {}", show(path)),
            SetupStep::PivotRoot { new_root, put_old } => {
                write!(f, "pivot_root {} {}", show(new_root), show(put_old))
            }
            SetupStep::UnmountDetach { target } => write!(f, "umount --lazy {}", show(target)),
            SetupStep::SetHostname { name } => write!(f, "hostname {}", show(name)),
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
        }
    }
}

fn fmt_mount(
    f: &mut fmt::Formatter<'_>,
    source: Option<&CStr>,
    target: &CStr,
    fstype: Option<&CStr>,
    flags: MsFlags,
    data: &Option<CString>,
) -> fmt::Result {
    let recursive = if flags.contains(MsFlags::MS_REC) {
        "r"
    } else {
        ""
    };
    let source = source.map(show).unwrap_or_else(|| "none".into());
    if flags.contains(MsFlags::MS_PRIVATE) {
        return write!(f, "mount --make-{recursive}private {}", show(target));
    }
    if flags.contains(MsFlags::MS_BIND) {
        return write!(f, "mount --{recursive}bind {source} {}", show(target));
    }
    write!(f, "mount")?;
    if let Some(fstype) = fstype {
        write!(f, " -t {}", show(fstype))?;
    }
    write!(f, " {source} {}", show(target))?;
    let mut options: Vec<String> = [
        (MsFlags::MS_RDONLY, "ro"),
        (MsFlags::MS_NOSUID, "nosuid"),
        (MsFlags::MS_NODEV, "nodev"),
        (MsFlags::MS_NOEXEC, "noexec"),
        (MsFlags::MS_STRICTATIME, "strictatime"),
    ]
    .iter()
    .filter(|(flag, _)| flags.contains(*flag))
    .map(|(_, name)| (*name).to_string())
    .collect();
    options.extend(data.as_deref().map(show));
    if !options.is_empty() {
        write!(f, " -o {}", options.join(","))?;
    }
    Ok(())
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
