//! Linux names as users write them on the command line and in kiln.kdl, with Docker's
//! spelling rules: capabilities (`NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin`, `ALL`),
//! `--ulimit` resources (`nofile`), and which sysctls belong to a container's own
//! namespaces. `spec` checks kiln.kdl with these tables and `runtime` turns the names into
//! kernel numbers, so both agree on what a name means.
//!
//! Pure tables and string checks: no I/O, no other kiln module.

/// Capability names by number (`CAP_` prefix dropped), up to CAP_CHECKPOINT_RESTORE (40).
pub const CAPABILITIES: [&str; 41] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
];

/// What `--cap-add ALL` and `--cap-drop ALL` say.
pub const ALL_CAPABILITIES: &str = "ALL";

/// A capability name as Docker normalizes it: upper case, without `CAP_` (`net_admin` and
/// `CAP_NET_ADMIN` are `NET_ADMIN`), or [`ALL_CAPABILITIES`]. `None` for a name no kernel
/// kiln knows has.
pub fn capability(name: &str) -> Option<&'static str> {
    let upper = name.trim().to_ascii_uppercase();
    if upper == ALL_CAPABILITIES {
        return Some(ALL_CAPABILITIES);
    }
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    CAPABILITIES.iter().copied().find(|known| *known == bare)
}

/// The `--ulimit` resources Docker takes, each with what it limits (`as` is left out, as
/// Docker leaves it out).
pub const ULIMITS: [(&str, &str); 15] = [
    ("core", "core file size (bytes)"),
    ("cpu", "CPU time (seconds)"),
    ("data", "data segment size (bytes)"),
    ("fsize", "file size (bytes)"),
    ("locks", "file locks"),
    ("memlock", "locked memory (bytes)"),
    ("msgqueue", "POSIX message queue bytes"),
    ("nice", "nice priority ceiling (20 - nice)"),
    ("nofile", "open files"),
    ("nproc", "processes of the user"),
    ("rss", "resident set (bytes)"),
    ("rtprio", "real-time priority"),
    ("rttime", "real-time CPU time (microseconds)"),
    ("sigpending", "queued signals"),
    ("stack", "stack size (bytes)"),
];

/// The resource `name` names (`nofile`, `NOFILE`), or `None`.
pub fn ulimit(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    ULIMITS.iter().map(|(n, _)| *n).find(|n| *n == lower)
}

/// `-1` and `unlimited` in a ulimit value: RLIM_INFINITY.
pub const UNLIMITED: u64 = u64::MAX;

/// A ulimit value: a non-negative number, or `-1`/`unlimited` for no limit.
pub fn ulimit_value(text: &str) -> Option<u64> {
    match text.trim() {
        "-1" | "unlimited" => Some(UNLIMITED),
        number => number.parse().ok(),
    }
}

/// The namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlNamespace {
    /// `kernel.shm*`, `kernel.msg*`, `kernel.sem`, `fs.mqueue.*`: the IPC namespace, which
    /// every container has of its own.
    Ipc,
    /// `net.*`: the network namespace (not with the host's network).
    Network,
    /// `kernel.domainname`: the UTS namespace.
    Uts,
}

/// The IPC sysctls Docker (and runc) let a container set.
const IPC_SYSCTLS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Which namespace sysctl `name` lives in, as Docker and runc decide; `Err` says why a
/// container may not set it (it would change the machine, not the container).
pub fn sysctl(name: &str) -> Result<SysctlNamespace, &'static str> {
    let well_formed = !name.is_empty()
        && name.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
        });
    if !well_formed {
        return Err("a sysctl is dotted words, like `net.ipv4.ip_forward`");
    }
    if IPC_SYSCTLS.contains(&name) || name.starts_with("fs.mqueue.") {
        Ok(SysctlNamespace::Ipc)
    } else if name.starts_with("net.") {
        Ok(SysctlNamespace::Network)
    } else if name == "kernel.domainname" {
        Ok(SysctlNamespace::Uts)
    } else if name == "kernel.hostname" {
        Err("the host name is set with --hostname (`hostname` in kiln.kdl)")
    } else {
        Err("it is not namespaced: it would change the whole machine")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_spelled_as_docker_spells_them() {
        assert_eq!(capability("net_admin"), Some("NET_ADMIN"));
        assert_eq!(capability("CAP_SYS_TIME"), Some("SYS_TIME"));
        assert_eq!(capability("cap_chown"), Some("CHOWN"));
        assert_eq!(capability("all"), Some("ALL"));
        assert_eq!(capability("CAP_ALL"), None);
        assert_eq!(capability("NET_ADMINS"), None);
        assert_eq!(CAPABILITIES[21], "SYS_ADMIN");
    }

    #[test]
    fn ulimits_and_their_values() {
        assert_eq!(ulimit("NOFILE"), Some("nofile"));
        assert_eq!(ulimit("as"), None);
        assert_eq!(ulimit_value("-1"), Some(UNLIMITED));
        assert_eq!(ulimit_value("unlimited"), Some(UNLIMITED));
        assert_eq!(ulimit_value("1024"), Some(1024));
        assert_eq!(ulimit_value("-2"), None);
    }

    #[test]
    fn only_namespaced_sysctls_are_allowed() {
        assert_eq!(sysctl("net.ipv4.ip_forward"), Ok(SysctlNamespace::Network));
        assert_eq!(sysctl("kernel.shmmax"), Ok(SysctlNamespace::Ipc));
        assert_eq!(sysctl("kernel.sem"), Ok(SysctlNamespace::Ipc));
        assert_eq!(sysctl("fs.mqueue.msg_max"), Ok(SysctlNamespace::Ipc));
        assert_eq!(sysctl("kernel.domainname"), Ok(SysctlNamespace::Uts));
        assert!(
            sysctl("kernel.hostname")
                .unwrap_err()
                .contains("--hostname")
        );
        assert!(sysctl("vm.swappiness").is_err());
        assert!(sysctl("kernel.shm_next_id").is_err());
        assert!(sysctl("net..x").is_err());
        assert!(sysctl("net/ipv4/ip_forward").is_err());
    }
}
