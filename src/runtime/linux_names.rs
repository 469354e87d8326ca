//! Kernel numbers behind OCI names: capabilities and rlimit resources. Tables only.

use oci_spec::runtime::{Capability, PosixRlimitType};

/// Capability names by number (`CAP_` prefix dropped): the shared table.
pub(crate) use crate::kernel_names::CAPABILITIES as CAPABILITY_NAMES;

/// The capability's number, from its OCI name (`CAP_CHOWN` → 0).
pub(crate) fn capability_number(capability: &Capability) -> Option<u32> {
    let name = serde_json::to_value(capability).ok()?;
    let name = name.as_str()?.strip_prefix("CAP_")?;
    CAPABILITY_NAMES
        .iter()
        .position(|known| *known == name)
        .map(|n| n as u32)
}

/// A set of capabilities as the kernel's 64-bit mask.
pub(crate) fn capability_mask<'a>(
    capabilities: impl IntoIterator<Item = &'a Capability>,
) -> Result<u64, String> {
    let mut mask = 0u64;
    for capability in capabilities {
        let number = capability_number(capability).ok_or_else(|| format!("{capability:?}"))?;
        mask |= 1 << number;
    }
    Ok(mask)
}

/// `cap_chown,cap_kill` (capsh's spelling), or `none`.
pub(crate) fn capability_list(mask: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|bit| mask & (1 << bit) != 0)
        .map(|bit| match CAPABILITY_NAMES.get(bit) {
            Some(name) => format!("cap_{}", name.to_ascii_lowercase()),
            None => format!("cap_{bit}"),
        })
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join(",")
    }
}

/// The setrlimit(2) resource of an OCI rlimit, and prlimit(1)'s option name for it.
pub(crate) fn rlimit_resource(kind: PosixRlimitType) -> (u32, &'static str) {
    use PosixRlimitType as T;
    let (resource, name) = match kind {
        T::RlimitCpu => (libc::RLIMIT_CPU, "cpu"),
        T::RlimitFsize => (libc::RLIMIT_FSIZE, "fsize"),
        T::RlimitData => (libc::RLIMIT_DATA, "data"),
        T::RlimitStack => (libc::RLIMIT_STACK, "stack"),
        T::RlimitCore => (libc::RLIMIT_CORE, "core"),
        T::RlimitRss => (libc::RLIMIT_RSS, "rss"),
        T::RlimitNproc => (libc::RLIMIT_NPROC, "nproc"),
        T::RlimitNofile => (libc::RLIMIT_NOFILE, "nofile"),
        T::RlimitMemlock => (libc::RLIMIT_MEMLOCK, "memlock"),
        T::RlimitAs => (libc::RLIMIT_AS, "as"),
        T::RlimitLocks => (libc::RLIMIT_LOCKS, "locks"),
        T::RlimitSigpending => (libc::RLIMIT_SIGPENDING, "sigpending"),
        T::RlimitMsgqueue => (libc::RLIMIT_MSGQUEUE, "msgqueue"),
        T::RlimitNice => (libc::RLIMIT_NICE, "nice"),
        T::RlimitRtprio => (libc::RLIMIT_RTPRIO, "rtprio"),
        T::RlimitRttime => (libc::RLIMIT_RTTIME, "rttime"),
    };
    // u32 on glibc, c_int on musl.
    #[allow(clippy::unnecessary_cast)]
    let resource = resource as u32;
    (resource, name)
}
