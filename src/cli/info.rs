//! `kiln info`: what kiln found on this kernel and which of its protections are active —
//! cgroups and device rules, seccomp, overlayfs, user namespaces, netem and nftables,
//! io_uring, openat2, pidfd, the state root — as text or JSON; and `kiln version`. The
//! probes are in [`probe`]; this file only gathers and renders. Changes nothing (the state
//! root is not even created).

mod probe;
#[cfg(test)]
mod tests;

use serde::Serialize;

use super::args::{Cli, FormatArgs, OutputFormat};
use super::output::{json_line, line, table};
use crate::runtime::cgroup::{DEVICE_PROGRAM_NAME, DEVICE_RULES, Hierarchy, Version};
use probe::{Permissions, Syscall};

/// kiln's own build.
#[derive(Debug, Serialize)]
pub(crate) struct Build {
    pub version: &'static str,
    /// The git commit it was built from, `unknown` outside a checkout.
    pub commit: &'static str,
    pub rustc: &'static str,
    pub os: &'static str,
    pub arch: &'static str,
}

pub(crate) const BUILD: Build = Build {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("KILN_GIT_COMMIT"),
    rustc: env!("KILN_RUSTC_VERSION"),
    os: std::env::consts::OS,
    arch: std::env::consts::ARCH,
};

#[derive(Debug, Serialize)]
struct Info {
    kiln: Build,
    kernel: Kernel,
    state_root: StateRoot,
    cgroup: Cgroup,
    device_rules: DeviceRules,
    seccomp: Seccomp,
    overlayfs: Feature,
    user_namespaces: UserNamespaces,
    netem: Netem,
    nftables: Nftables,
    io_uring: Feature,
    openat2: Feature,
    pidfd: Feature,
}

#[derive(Debug, Serialize)]
struct Kernel {
    release: String,
    /// Whether its build options could be read (`/proc/config.gz`, `/boot/config-…`).
    config_known: bool,
}

#[derive(Debug, Serialize)]
struct StateRoot {
    path: String,
    exists: bool,
    /// Octal, `0700`.
    mode: Option<String>,
    owner_uid: Option<u32>,
    /// No group or other permission: images' device nodes and setuid programs unreachable.
    private: bool,
}

#[derive(Debug, Serialize)]
struct Cgroup {
    /// `v1`, `v2`, `hybrid` (v1 controllers and a unified hierarchy), or `none`.
    version: String,
    /// v1 controller → mount point (empty on v2).
    v1: std::collections::BTreeMap<String, String>,
    /// The cgroup2 mount point (v2, or hybrid's unified one).
    unified: Option<String>,
    /// The controllers kiln uses here.
    controllers: Vec<String>,
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct DeviceRules {
    /// The layers in force for a container: `v1` (the devices files), `v2 bpf`.
    active: Vec<String>,
    /// The v1 `devices` hierarchy.
    v1: Option<String>,
    /// The cgroup2 hierarchy where each container's program is attached.
    bpf: Option<String>,
    /// Whether this kernel's verifier accepted kiln's program just now (`null`: not tried,
    /// no cgroup2 hierarchy or not root).
    bpf_program_loads: Option<bool>,
    bpf_error: Option<String>,
    rules: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Seccomp {
    /// What kiln gives containers: `filter` (its default allow-list) or `none`.
    mode: String,
    filter_available: bool,
    /// `/proc/sys/kernel/seccomp/actions_avail`.
    actions: Vec<String>,
    /// The mode kiln itself runs under (0 none, 1 strict, 2 filter: an outer sandbox).
    kiln_process_mode: Option<u8>,
}

#[derive(Debug, Serialize)]
struct Feature {
    available: bool,
    detail: String,
}

#[derive(Debug, Serialize)]
struct UserNamespaces {
    available: bool,
    max: Option<u64>,
    /// kiln does not put containers in a user namespace (as Docker by default).
    used_by_kiln: bool,
}

#[derive(Debug, Serialize)]
struct Netem {
    /// `null` when the kernel's configuration cannot be read.
    available: Option<bool>,
    /// What carries `impair` of links and networks by default (`engine="auto"`): `kernel`
    /// (netem qdiscs) where the kernel has netem, else `userspace` (kiln's own engine).
    impairments: String,
}

#[derive(Debug, Serialize)]
struct Nftables {
    available: Option<bool>,
    /// Whether kiln's networks drop spoofed frames (netdev and bridge tables).
    anti_spoofing: Option<bool>,
}

/// `kiln version`.
pub(super) fn version(args: &FormatArgs) -> Result<u8, crate::Error> {
    match args.format {
        OutputFormat::Json => json_line(&BUILD)?,
        OutputFormat::Text => table(&[
            vec!["Version:".into(), BUILD.version.into()],
            vec!["Git commit:".into(), BUILD.commit.into()],
            vec!["Rust:".into(), BUILD.rustc.into()],
            vec!["OS/Arch:".into(), format!("{}/{}", BUILD.os, BUILD.arch)],
        ])?,
    }
    Ok(0)
}

/// `kiln info`.
pub(super) fn run(cli: &Cli, args: &FormatArgs) -> Result<u8, crate::Error> {
    let info = gather(cli);
    match args.format {
        OutputFormat::Json => json_line(&info)?,
        OutputFormat::Text => print(&info)?,
    }
    Ok(0)
}

fn gather(cli: &Cli) -> Info {
    let release = probe::kernel_release();
    let config = probe::kernel_config(&release);
    let (cgroup, device_rules) = cgroups();
    let filesystems = probe::read("/proc/filesystems").unwrap_or_default();
    let overlay_listed = probe::parse_filesystems(&filesystems, "overlay");
    let actions = probe::read("/proc/sys/kernel/seccomp/actions_avail")
        .map(|text| probe::parse_words(&text))
        .unwrap_or_default();
    let filter_available =
        actions.iter().any(|a| a == "errno") || config.enabled("SECCOMP_FILTER").unwrap_or(false);
    let max_userns = probe::read("/proc/sys/user/max_user_namespaces")
        .and_then(|text| probe::parse_number(&text));
    let netem = config.enabled("NET_SCH_NETEM");
    let nft = config.enabled("NF_TABLES");
    let anti_spoofing = match (
        nft,
        config.enabled("NF_TABLES_NETDEV"),
        config.enabled("NF_TABLES_BRIDGE"),
    ) {
        (Some(a), Some(b), Some(c)) => Some(a && b && c),
        _ => None,
    };
    let io_uring = probe::io_uring();
    let io_uring_disabled = probe::read("/proc/sys/kernel/io_uring_disabled")
        .and_then(|text| probe::parse_number(&text));
    let root = super::state_root(cli);
    let permissions = Permissions::of(&root);
    Info {
        kiln: BUILD,
        kernel: Kernel {
            release,
            config_known: config.known(),
        },
        state_root: StateRoot {
            path: root.display().to_string(),
            exists: permissions.is_some(),
            mode: permissions.map(|p| format!("{:04o}", p.mode)),
            owner_uid: permissions.map(|p| p.uid),
            private: permissions.is_some_and(Permissions::private),
        },
        cgroup,
        device_rules,
        seccomp: Seccomp {
            mode: if filter_available { "filter" } else { "none" }.to_string(),
            filter_available,
            actions,
            kiln_process_mode: probe::read("/proc/self/status")
                .and_then(|text| probe::parse_seccomp_status(&text)),
        },
        overlayfs: Feature {
            available: overlay_listed || config.enabled("OVERLAY_FS").unwrap_or(false),
            detail: if overlay_listed {
                "listed in /proc/filesystems".to_string()
            } else {
                "not in /proc/filesystems".to_string()
            },
        },
        user_namespaces: UserNamespaces {
            available: max_userns.is_some_and(|n| n > 0)
                && config.enabled("USER_NS").unwrap_or(true),
            max: max_userns,
            used_by_kiln: false,
        },
        netem: Netem {
            available: netem,
            impairments: crate::net::impair::Carrier::name(if netem == Some(true) {
                crate::net::impair::Carrier::Kernel
            } else {
                crate::net::impair::Carrier::Userspace
            })
            .to_string(),
        },
        nftables: Nftables {
            available: nft,
            anti_spoofing,
        },
        io_uring: Feature {
            available: io_uring.works() && io_uring_disabled.unwrap_or(0) == 0,
            detail: match io_uring_disabled {
                Some(n) if n > 0 => {
                    format!("{}; kernel.io_uring_disabled = {n}", io_uring.describe())
                }
                _ => format!(
                    "{}; containers are denied it by seccomp",
                    io_uring.describe()
                ),
            },
        },
        openat2: syscall_feature(
            probe::openat2(),
            "image paths resolved with RESOLVE_IN_ROOT",
        ),
        pidfd: syscall_feature(probe::pidfd(), "processes followed without pid reuse races"),
    }
}

fn syscall_feature(answer: Syscall, use_: &str) -> Feature {
    Feature {
        available: answer.works(),
        detail: if answer.works() {
            format!("available: {use_}")
        } else {
            answer.describe()
        },
    }
}

fn cgroups() -> (Cgroup, DeviceRules) {
    let rules: Vec<String> = DEVICE_RULES.iter().map(ToString::to_string).collect();
    let hierarchy = match Hierarchy::detect() {
        Ok(hierarchy) => hierarchy,
        Err(err) => {
            return (
                Cgroup {
                    version: "none".into(),
                    v1: Default::default(),
                    unified: None,
                    controllers: Vec::new(),
                    error: Some(err.to_string()),
                },
                DeviceRules {
                    active: Vec::new(),
                    v1: None,
                    bpf: None,
                    bpf_program_loads: None,
                    bpf_error: None,
                    rules,
                },
            );
        }
    };
    let display = |p: &std::path::Path| p.display().to_string();
    let (version, v1, unified) = match hierarchy.version() {
        Version::V2 { root } => ("v2", Default::default(), Some(display(root))),
        Version::V1 { mounts, unified } => (
            if unified.is_some() { "hybrid" } else { "v1" },
            mounts
                .iter()
                .map(|(controller, path)| (controller.clone(), display(path)))
                .collect(),
            unified.as_deref().map(display),
        ),
    };
    let at = hierarchy.device_rules();
    let (loads, error) = match &at.program {
        Some(_) if nix::unistd::geteuid().is_root() => match try_load() {
            Ok(()) => (Some(true), None),
            Err(err) => (Some(false), Some(err)),
        },
        _ => (None, None),
    };
    let mut active = Vec::new();
    if at.v1.is_some() {
        active.push("v1".to_string());
    }
    if loads != Some(false) && at.program.is_some() {
        active.push("v2 bpf".to_string());
    }
    (
        Cgroup {
            version: version.into(),
            v1,
            unified,
            controllers: hierarchy.controllers().iter().cloned().collect(),
            error: None,
        },
        DeviceRules {
            active,
            v1: at.v1.as_deref().map(display),
            bpf: at.program.as_deref().map(display),
            bpf_program_loads: loads,
            bpf_error: error,
            rules,
        },
    )
}

/// Loads kiln's device program and lets it go (attached nowhere): the verifier's verdict.
fn try_load() -> Result<(), String> {
    let program =
        crate::runtime::cgroup::device_program(&DEVICE_RULES).map_err(|e| e.to_string())?;
    crate::runtime::ebpf::sys::load_cgroup_device(&program, DEVICE_PROGRAM_NAME)
        .map(drop)
        .map_err(|e| e.to_string())
}

fn yes_no(value: bool) -> &'static str {
    if value { "yes" } else { "no" }
}

fn maybe(value: Option<bool>) -> &'static str {
    value.map_or("unknown (no kernel config)", yes_no)
}

fn print(info: &Info) -> Result<(), crate::Error> {
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = |key: &str, value: String| rows.push(vec![format!("{key}:"), value]);
    row(
        "kiln",
        format!(
            "{} ({}), {}",
            info.kiln.version, info.kiln.commit, info.kiln.rustc
        ),
    );
    row(
        "Kernel",
        format!(
            "{} ({}/{})",
            info.kernel.release, info.kiln.os, info.kiln.arch
        ),
    );
    let root = &info.state_root;
    row(
        "State root",
        match &root.mode {
            Some(mode) => format!(
                "{} (mode {mode}, owner uid {}{})",
                root.path,
                root.owner_uid.unwrap_or(0),
                if root.private {
                    ", private"
                } else {
                    ", NOT private: made private by the next command"
                }
            ),
            None => format!("{} (not created yet)", root.path),
        },
    );
    let cgroup = &info.cgroup;
    let mut where_ = Vec::new();
    if !cgroup.v1.is_empty() {
        let mounts: std::collections::BTreeSet<&str> = cgroup
            .v1
            .values()
            .map(|p| p.rsplit_once('/').map_or(p.as_str(), |(d, _)| d))
            .collect();
        where_.push(format!(
            "v1 under {}",
            mounts.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    if let Some(unified) = &cgroup.unified {
        where_.push(format!("unified at {unified}"));
    }
    row(
        "Cgroups",
        match &cgroup.error {
            Some(error) => format!("none ({error})"),
            None => format!(
                "{} ({}); controllers: {}",
                cgroup.version,
                where_.join(", "),
                cgroup.controllers.join(" ")
            ),
        },
    );
    let devices = &info.device_rules;
    let mut layers = Vec::new();
    if let Some(v1) = &devices.v1 {
        layers.push(format!("v1 devices files ({v1})"));
    }
    if let Some(bpf) = &devices.bpf {
        layers.push(match (devices.bpf_program_loads, &devices.bpf_error) {
            (Some(true), _) => format!("v2 eBPF program ({bpf}; verified by this kernel)"),
            (Some(false), Some(error)) => format!("NOT the v2 eBPF program ({error})"),
            _ => format!("v2 eBPF program ({bpf}; not checked: needs root)"),
        });
    }
    row(
        "Device rules",
        if layers.is_empty() {
            "NONE: containers may open any device they can make".to_string()
        } else {
            layers.join(" + ")
        },
    );
    let seccomp = &info.seccomp;
    row(
        "Seccomp",
        if seccomp.filter_available {
            format!(
                "filter (kiln's default allow-list); actions: {}",
                seccomp.actions.join(" ")
            )
        } else {
            "not available: containers run without a filter".to_string()
        },
    );
    row(
        "Overlayfs",
        format!(
            "{} ({})",
            yes_no(info.overlayfs.available),
            info.overlayfs.detail
        ),
    );
    let userns = &info.user_namespaces;
    row(
        "User namespaces",
        format!(
            "{} (max {}); not used by kiln",
            yes_no(userns.available),
            userns.max.map_or("unknown".to_string(), |n| n.to_string())
        ),
    );
    row(
        "Netem",
        format!(
            "{}; impairments by: {}",
            maybe(info.netem.available),
            info.netem.impairments
        ),
    );
    row(
        "Nftables",
        format!(
            "{}; anti-spoofing: {}",
            maybe(info.nftables.available),
            match info.nftables.anti_spoofing {
                Some(true) => "on (netdev and bridge tables)",
                Some(false) => "unavailable",
                None => "unknown",
            }
        ),
    );
    row("io_uring", info.io_uring.detail.clone());
    row("openat2", info.openat2.detail.clone());
    row("pidfd", info.pidfd.detail.clone());
    table(&rows)?;
    if !info.kernel.config_known {
        line("(no /proc/config.gz or /boot/config-RELEASE: netem and nftables unknown)")?;
    }
    Ok(())
}
