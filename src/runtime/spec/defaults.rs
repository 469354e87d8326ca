//! Docker's defaults for a container, as OCI values: the mounts, devices, masked and
//! read-only paths, capabilities and rlimits every `docker run` gets. The build sandbox and
//! `kiln run` both start from here, so a `run` step sees what a container sees.
//!
//! Data only: no I/O except reading the current rlimit to clamp to it.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespace, LinuxNamespaceBuilder,
    LinuxNamespaceType, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder, PosixRlimitType,
};

/// Docker's default capability set (moby `oci/caps/defaults.go`), in its order.
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Paths hidden from the container: /dev/null is bound over files, an empty read-only
/// tmpfs over directories.
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths bound onto themselves read-only: kernel knobs a container must not turn.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The soft and hard RLIMIT_NOFILE Docker gives a container (before clamping).
pub const NOFILE_LIMIT: u64 = 1024;

/// The standard devices: name, major, minor (all `c`, mode 0666, owned by root).
pub const DEVICES: [(&str, i64, i64); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Namespaces of a container, the network one only when `new_network`.
pub fn namespaces(new_network: bool) -> Vec<LinuxNamespace> {
    let mut kinds = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Ipc,
    ];
    if new_network {
        kinds.push(LinuxNamespaceType::Network);
    }
    kinds.push(LinuxNamespaceType::Cgroup);
    kinds
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .expect("a namespace with a type is complete")
        })
        .collect()
}

fn mount(destination: &str, typ: &str, source: &str, options: &[&str]) -> Mount {
    MountBuilder::default()
        .destination(destination)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .expect("a mount with a destination is complete")
}

/// Docker's default mounts (moby `oci/defaults.go`), in mount order.
pub fn mounts() -> Vec<Mount> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
    ]
}

/// The standard devices as OCI device entries.
pub fn devices() -> Vec<LinuxDevice> {
    DEVICES
        .iter()
        .map(|(name, major, minor)| {
            LinuxDeviceBuilder::default()
                .path(format!("/dev/{name}"))
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()
                .expect("a device with path, type and numbers is complete")
        })
        .collect()
}

/// The device cgroup rules: deny everything, then allow what kiln's own cgroups allow
/// ([`DEVICE_RULES`](crate::runtime::cgroup::DEVICE_RULES): make any node, open the
/// standard devices, ptys and tun), so runc with kiln's bundle applies the same list.
pub fn device_rules() -> Vec<LinuxDeviceCgroup> {
    device_rules_of(&crate::runtime::cgroup::DEVICE_RULES)
}

/// `rules` (an allow-list) as OCI device cgroup entries after a "deny everything".
pub fn device_rules_of(rules: &[crate::runtime::cgroup::DeviceRule]) -> Vec<LinuxDeviceCgroup> {
    use crate::runtime::cgroup::DeviceKind;
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .expect("a device rule is complete");
    let allow = rules.iter().map(|rule| {
        let mut builder = LinuxDeviceCgroupBuilder::default()
            .allow(true)
            .access(rule.access.to_string());
        builder = match rule.kind {
            DeviceKind::Char => builder.typ(LinuxDeviceType::C),
            DeviceKind::Block => builder.typ(LinuxDeviceType::B),
            DeviceKind::Any => builder.typ(LinuxDeviceType::A),
        };
        if let Some(major) = rule.major {
            builder = builder.major(i64::from(major));
        }
        if let Some(minor) = rule.minor {
            builder = builder.minor(i64::from(minor));
        }
        builder.build().expect("a device rule is complete")
    });
    std::iter::once(deny_all).chain(allow).collect()
}

/// Docker's capabilities in the bounding, effective and permitted sets; none inheritable
/// or ambient.
pub fn capabilities() -> LinuxCapabilities {
    let set: HashSet<Capability> = DEFAULT_CAPABILITIES.into_iter().collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(HashSet::new()));
    caps.set_ambient(Some(HashSet::new()));
    caps
}

/// RLIMIT_NOFILE 1024:1024, never above the current hard limit: raising it needs
/// CAP_SYS_RESOURCE, which kiln may not have.
pub fn rlimits() -> Vec<PosixRlimit> {
    let hard = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map(|(_, hard)| hard)
        .unwrap_or(NOFILE_LIMIT);
    let limit = NOFILE_LIMIT.min(hard);
    vec![
        PosixRlimitBuilder::default()
            .typ(PosixRlimitType::RlimitNofile)
            .soft(limit)
            .hard(limit)
            .build()
            .expect("an rlimit with type and values is complete"),
    ]
}
