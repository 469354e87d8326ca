//! How an impairment is carried: by the kernel's netem qdisc on both ends of a veth, or by
//! kiln's own engine ([`super::engine`]) between two *ports* in the kiln host namespace.
//! The choice (`engine="kernel"|"userspace"`, or automatic: the kernel where it has
//! netem), the probe for netem, and the set-up of a port live here; links and attachments
//! share them.

use std::path::Path;
use std::sync::OnceLock;

use super::{NetError, NetNs, Netem, Netlink, run_in};

/// What the user asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// The kernel when it has netem, else kiln's engine.
    #[default]
    Auto,
    Kernel,
    Userspace,
}

impl Engine {
    pub const NAMES: &'static [&'static str] = &["auto", "kernel", "userspace"];

    pub fn from_name(name: &str) -> Option<Engine> {
        match name {
            "auto" => Some(Engine::Auto),
            "kernel" => Some(Engine::Kernel),
            "userspace" => Some(Engine::Userspace),
            _ => None,
        }
    }
}

/// Who carries an impaired link or attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Carrier {
    /// netem qdiscs on both ends.
    Kernel,
    /// kiln's engine, between two ports in the kiln host namespace.
    Userspace,
}

impl Carrier {
    pub fn name(self) -> &'static str {
        match self {
            Carrier::Kernel => "kernel",
            Carrier::Userspace => "userspace",
        }
    }
}

/// Picks the carrier for `engine`: `kernel` needs netem.
pub fn choose(engine: Engine) -> Result<Carrier, NetError> {
    match engine {
        Engine::Userspace => Ok(Carrier::Userspace),
        Engine::Kernel if netem_available() => Ok(Carrier::Kernel),
        Engine::Kernel => Err(NetError::NetemUnavailable {
            name: "engine=\"kernel\"".into(),
            cause: std::io::Error::from_raw_os_error(libc::ENOENT),
        }),
        Engine::Auto if netem_available() => Ok(Carrier::Kernel),
        Engine::Auto => Ok(Carrier::Userspace),
    }
}

/// Whether this kernel has netem: a netem qdisc on `lo` of a scratch namespace (made and
/// gone with this call), once per process. `KILN_NETEM=off` answers no (to try the
/// engine on a kernel that has netem).
pub fn netem_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        if std::env::var_os("KILN_NETEM").is_some_and(|v| v == "off") {
            return false;
        }
        let probe = || -> Result<(), NetError> {
            let ns = NetNs::create_unpinned()?;
            Netlink::open_in(&ns)?.replace_netem("lo", &Netem::default())
        };
        !matches!(probe(), Err(NetError::NetemUnavailable { .. }))
    })
}

/// Readies a port (an engine-side veth end in the kiln host namespace): no ARP answers and
/// no IPv6, so the namespace's own stack never speaks on it, then up.
pub fn prepare_port(host: &NetNs, netlink: &Netlink, name: &str) -> Result<(), NetError> {
    netlink.set_arp(name, false)?;
    let sysctl = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    run_in(host, || match std::fs::write(&sysctl, "1") {
        Ok(()) => Ok(()),
        // No IPv6 on this kernel: nothing to turn off.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(cause) => Err(NetError::Io {
            path: sysctl.clone().into(),
            cause,
        }),
    })??;
    netlink.set_up(name)
}

/// Registers (or updates) an engine path and waits until the engine carries it.
pub fn carry(
    state_root: &Path,
    id: &str,
    ports: [String; 2],
    netem: &Netem,
) -> Result<(), NetError> {
    netem.validate()?;
    super::engine::paths::put(
        state_root,
        super::engine::paths::PathSpec {
            id: id.to_string(),
            ports,
            netem: netem.clone(),
            up: true,
        },
    )?;
    super::engine::daemon::ensure(state_root)
}
