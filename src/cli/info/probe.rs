//! What this kernel offers kiln, one probe per feature. Each probe reads the kernel's own
//! answer (a file of /proc or /sys, the kernel's build configuration, or a harmless system
//! call) and hands the text to a pure parser beside it, which the unit tests feed samples.
//! Probes never change anything: no module is loaded, no setting written, nothing created.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The kernel's build options (`CONFIG_…=y|m|"…"`), from `/proc/config.gz` or
/// `/boot/config-RELEASE`; empty when neither is readable.
pub(crate) fn kernel_config(release: &str) -> KernelConfig {
    let gz = std::fs::read("/proc/config.gz").ok().and_then(|bytes| {
        let mut text = String::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_string(&mut text)
            .ok()
            .map(|_| text)
    });
    let text = gz.or_else(|| std::fs::read_to_string(format!("/boot/config-{release}")).ok());
    match text {
        Some(text) => KernelConfig::parse(&text),
        None => KernelConfig::default(),
    }
}

/// A kernel's build options, or nothing known.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct KernelConfig {
    options: Option<BTreeMap<String, String>>,
}

impl KernelConfig {
    /// Parses `CONFIG_X=y` lines; `# CONFIG_X is not set` and comments leave `X` out.
    pub(crate) fn parse(text: &str) -> KernelConfig {
        let options = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .filter_map(|(key, value)| {
                let name = key.trim().strip_prefix("CONFIG_")?;
                Some((name.to_string(), value.trim().to_string()))
            })
            .collect();
        KernelConfig {
            options: Some(options),
        }
    }

    /// Whether option `name` (without `CONFIG_`) is built in or a module; `None` when the
    /// configuration is unknown.
    pub(crate) fn enabled(&self, name: &str) -> Option<bool> {
        let options = self.options.as_ref()?;
        Some(options.get(name).is_some_and(|v| v == "y" || v == "m"))
    }

    pub(crate) fn known(&self) -> bool {
        self.options.is_some()
    }
}

/// Whether `/proc/filesystems` lists `name` (`overlay`, `cgroup2`).
pub(crate) fn parse_filesystems(text: &str, name: &str) -> bool {
    text.lines()
        .any(|line| line.split_whitespace().last() == Some(name))
}

/// The `Seccomp:` field of `/proc/PID/status`: 0 none, 1 strict, 2 filter.
pub(crate) fn parse_seccomp_status(text: &str) -> Option<u8> {
    text.lines()
        .find_map(|line| line.strip_prefix("Seccomp:"))
        .and_then(|value| value.trim().parse().ok())
}

/// The words of `/proc/sys/kernel/seccomp/actions_avail` (`kill_process … allow`).
pub(crate) fn parse_words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_string).collect()
}

/// A number in a /proc/sys file (`max_user_namespaces`, `io_uring_disabled`).
pub(crate) fn parse_number(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// What a probe system call said: the call works (`Ok`), is missing (`ENOSYS`), refused
/// (`EPERM`, a policy), or something else went wrong (another errno).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Syscall {
    Works,
    Missing,
    Refused,
    Other(i32),
}

impl Syscall {
    /// The answer of a call whose `errno` (0 for success) says what the kernel knows;
    /// `works_on` lists errnos that still prove the call exists (EINVAL, EFAULT for bad
    /// arguments given on purpose).
    pub(crate) fn from_errno(errno: i32, works_on: &[i32]) -> Syscall {
        match errno {
            0 => Syscall::Works,
            libc::ENOSYS => Syscall::Missing,
            libc::EPERM | libc::EACCES => Syscall::Refused,
            e if works_on.contains(&e) => Syscall::Works,
            e => Syscall::Other(e),
        }
    }

    pub(crate) fn works(self) -> bool {
        self == Syscall::Works
    }

    pub(crate) fn describe(self) -> String {
        match self {
            Syscall::Works => "available".to_string(),
            Syscall::Missing => "missing (ENOSYS)".to_string(),
            Syscall::Refused => "refused by policy (EPERM)".to_string(),
            Syscall::Other(errno) => {
                format!("unknown ({})", std::io::Error::from_raw_os_error(errno))
            }
        }
    }
}

/// The errno of the last failed libc call.
fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `io_uring_setup(0, NULL)`: EINVAL (no entries) means the kernel has io_uring, ENOSYS
/// that it has not, EPERM that `kernel.io_uring_disabled` forbids it. Creates nothing.
pub(crate) fn io_uring() -> Syscall {
    // SAFETY: io_uring_setup with 0 entries and a null params pointer fails before it reads
    // or writes any memory.
    let ret = unsafe { libc::syscall(libc::SYS_io_uring_setup, 0, std::ptr::null_mut::<u8>()) };
    if ret >= 0 {
        // SAFETY: a descriptor the call just returned, ours alone.
        unsafe { libc::close(ret as i32) };
        return Syscall::Works;
    }
    Syscall::from_errno(errno(), &[libc::EINVAL, libc::EFAULT])
}

/// `openat2(AT_FDCWD, "/", {O_PATH | O_CLOEXEC, RESOLVE_BENEATH})`.
pub(crate) fn openat2() -> Syscall {
    let path = c"/";
    // struct open_how { u64 flags; u64 mode; u64 resolve; }
    let how: [u64; 3] = [(libc::O_PATH | libc::O_CLOEXEC) as u64, 0, 0];
    // SAFETY: a NUL-terminated path and an `open_how` of the size passed, both alive for
    // the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            libc::AT_FDCWD,
            path.as_ptr(),
            how.as_ptr(),
            std::mem::size_of_val(&how),
        )
    };
    if ret >= 0 {
        // SAFETY: a descriptor the call just returned, ours alone.
        unsafe { libc::close(ret as i32) };
        return Syscall::Works;
    }
    Syscall::from_errno(errno(), &[])
}

/// `pidfd_open(getpid(), 0)`.
pub(crate) fn pidfd() -> Syscall {
    // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, std::process::id() as i32, 0) };
    if ret >= 0 {
        // SAFETY: a descriptor the call just returned, ours alone.
        unsafe { libc::close(ret as i32) };
        return Syscall::Works;
    }
    Syscall::from_errno(errno(), &[])
}

/// The kernel's release (`uname -r`), from `/proc/sys/kernel/osrelease`.
pub(crate) fn kernel_release() -> String {
    read("/proc/sys/kernel/osrelease")
        .map(|text| text.trim().to_string())
        .unwrap_or_else(|| "unknown".to_string())
}

/// A file's text, or `None` when it cannot be read.
pub(crate) fn read(path: impl AsRef<Path>) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// What `path` is: its permission bits and owner, if it exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Permissions {
    pub mode: u32,
    pub uid: u32,
}

impl Permissions {
    pub(crate) fn of(path: &Path) -> Option<Permissions> {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(path).ok()?;
        Some(Permissions {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
        })
    }

    /// Whether nobody but its owner can reach into it (no group or other bits).
    pub(crate) fn private(self) -> bool {
        self.mode & 0o077 == 0
    }
}
