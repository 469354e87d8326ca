//! Interface names. Linux caps them at 15 bytes (IFNAMSIZ - 1) and refuses `/`, `:` and
//! whitespace; kiln derives its bridge and host-side veth names deterministically so the same
//! project always gets the same names, and a crashed run's leftovers can be found again.
//!
//! Only names: nothing here talks to the kernel.

use super::NetError;

/// The longest interface name the kernel accepts.
pub const IFNAME_MAX: usize = 15;

/// Checks a name the way the kernel's `dev_valid_name` does.
pub fn validate_ifname(name: &str) -> Result<(), NetError> {
    let reason = if name.is_empty() {
        Some("it is empty".to_string())
    } else if name.len() > IFNAME_MAX {
        Some(format!(
            "it is {} bytes long; Linux allows {IFNAME_MAX}",
            name.len()
        ))
    } else if name == "." || name == ".." {
        Some("`.` and `..` are not interface names".to_string())
    } else {
        name.chars()
            .find(|c| matches!(c, '/' | ':') || c.is_whitespace() || c.is_control())
            .map(|c| format!("{c:?} is not allowed"))
    };
    match reason {
        Some(reason) => Err(NetError::InvalidName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// The bridge of a network (by reference: `front`, or a project's `shop/front`):
/// `kb-<name>` when that is a valid name that fits, else `kb.<first 5 bytes of the name in
/// its project>.<6 hex of blake3(reference)>` — so every project network is hashed, and two
/// projects' `front` get two bridges. The third byte tells the two forms apart (`-` or
/// `.`), so a plain name can never collide with a hashed one.
pub fn bridge_name(network: &str) -> Result<String, NetError> {
    let plain = format!("kb-{network}");
    if plain.len() <= IFNAME_MAX && validate_ifname(&plain).is_ok() {
        return Ok(plain);
    }
    let short = crate::scope::split(network).1;
    let prefix: String = short.chars().take(5).collect();
    let hashed = format!("kb.{prefix}.{}", short_hash(network, 6));
    validate_ifname(&hashed)?;
    Ok(hashed)
}

/// The host-side end of a container's veth for its interface number `interface`:
/// `kv<9 hex of blake3(container id)>-<interface>`.
pub fn host_veth_name(container_id: &str, interface: u16) -> Result<String, NetError> {
    veth_name("kv", container_id, interface)
}

/// The temporary name of the container-side end while it still lives in the kiln host
/// namespace (before it moves into the container and becomes `eth0`, ...).
pub fn peer_veth_name(container_id: &str, interface: u16) -> Result<String, NetError> {
    veth_name("kp", container_id, interface)
}

/// The engine's ports (interfaces of the kiln host namespace that kiln's impairment
/// engine reads and writes) all start with `ke`; the third letter says whose they are:
/// `kel<8 hex of blake3(link)>-a` / `-b` for the two ends of an impaired link,
/// `kec<8 hex of blake3(its kv… name)>-<interface>` for the container side of an impaired
/// attachment and `keb…-<interface>` for its bridge side (whose peer is the `kv…` port on
/// the bridge).
pub fn link_port_name(link: &str, side: char) -> Result<String, NetError> {
    let name = format!("kel{}-{side}", short_hash(link, 8));
    validate_ifname(&name)?;
    Ok(name)
}

/// The two ports of an impaired attachment: (container side, bridge side), from the name
/// of its `kv…` port on the bridge.
pub fn attach_port_names(host_veth: &str, interface: u16) -> Result<(String, String), NetError> {
    Ok((
        veth_name_hashed("kec", host_veth, interface, 8)?,
        veth_name_hashed("keb", host_veth, interface, 8)?,
    ))
}

/// The bridge side of a network's egress veth (see `egress`): `kg<9 hex of
/// blake3(network reference)>`.
pub fn egress_veth_name(network: &str) -> Result<String, NetError> {
    let name = format!("kg{}", short_hash(network, 9));
    validate_ifname(&name)?;
    Ok(name)
}

fn veth_name_hashed(
    prefix: &str,
    id: &str,
    interface: u16,
    digits: usize,
) -> Result<String, NetError> {
    let name = format!("{prefix}{}-{interface}", short_hash(id, digits));
    if name.len() > IFNAME_MAX {
        return Err(NetError::InvalidName {
            name,
            reason: "a container has at most 1000 interfaces (0..=999)".to_string(),
        });
    }
    validate_ifname(&name)?;
    Ok(name)
}

fn veth_name(prefix: &str, container_id: &str, interface: u16) -> Result<String, NetError> {
    veth_name_hashed(prefix, container_id, interface, 9)
}

fn short_hash(text: &str, hex_digits: usize) -> String {
    let hex = blake3::hash(text.as_bytes()).to_hex();
    hex.as_str()[..hex_digits].to_string()
}
