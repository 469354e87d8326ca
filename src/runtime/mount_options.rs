//! OCI mount options (`["nosuid", "ro", "mode=755"]`) split into mount(2) flags, a
//! propagation change and the filesystem's own data string.

use nix::mount::MsFlags;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MountOptions {
    pub(crate) flags: MsFlags,
    /// `private`, `rslave`, …: applied by a separate mount(2) call.
    pub(crate) propagation: MsFlags,
    pub(crate) bind: bool,
    pub(crate) recursive: bool,
    /// What mount(2) does not know, passed on as the data string.
    pub(crate) data: Vec<String>,
}

pub(crate) fn parse(options: &[String]) -> MountOptions {
    let mut parsed = MountOptions {
        flags: MsFlags::empty(),
        propagation: MsFlags::empty(),
        bind: false,
        recursive: false,
        data: Vec::new(),
    };
    for option in options {
        let (set, clear) = match option.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "dirsync" => (MsFlags::MS_DIRSYNC, MsFlags::empty()),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "atime" => (MsFlags::empty(), MsFlags::MS_NOATIME),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "diratime" => (MsFlags::empty(), MsFlags::MS_NODIRATIME),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "norelatime" => (MsFlags::empty(), MsFlags::MS_RELATIME),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "nostrictatime" => (MsFlags::empty(), MsFlags::MS_STRICTATIME),
            "mand" => (MsFlags::MS_MANDLOCK, MsFlags::empty()),
            "nomand" => (MsFlags::empty(), MsFlags::MS_MANDLOCK),
            "bind" => {
                parsed.bind = true;
                continue;
            }
            "rbind" => {
                parsed.bind = true;
                parsed.recursive = true;
                continue;
            }
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable"
            | "runbindable" => {
                parsed.propagation = propagation(option);
                continue;
            }
            _ => {
                parsed.data.push(option.clone());
                continue;
            }
        };
        parsed.flags = (parsed.flags | set) & !clear;
    }
    parsed
}

fn propagation(option: &str) -> MsFlags {
    let (recursive, kind) = match option.strip_prefix('r') {
        Some(kind) if !kind.is_empty() => (MsFlags::MS_REC, kind),
        _ => (MsFlags::empty(), option),
    };
    recursive
        | match kind {
            "private" => MsFlags::MS_PRIVATE,
            "shared" => MsFlags::MS_SHARED,
            "slave" => MsFlags::MS_SLAVE,
            _ => MsFlags::MS_UNBINDABLE,
        }
}
