//! Carrier off and on, the building block of link faults (`kiln network impair END --down`
//! / `--up`, and a test's `link-down`): END's interface is set down inside its container,
//! as pulling the cable at that end would — the container's routes through it go, the far
//! end of a kernel veth loses its carrier, a bridge loses the port — and up again, when the
//! kernel gives the interface its connected routes back. Where kiln's engine carries the
//! link, its path carries nothing while END is down (frames queued in the engine are
//! dropped), so neither direction passes even for a moment.
//!
//! It knows neither tests nor kiln.kdl: callers pass the container's pid 1, the interface
//! and, for an engine link, the engine's id of the path.

use std::path::Path;

use super::{NetError, NetNs, Netlink};

/// Sets `interface` of the container whose pid 1 is `pid` up or down; `path` is the
/// engine's id of the link when the engine carries it.
pub fn set(
    state_root: &Path,
    pid: i32,
    interface: &str,
    up: bool,
    path: Option<&str>,
) -> Result<(), NetError> {
    let netlink = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    if netlink.link(interface)?.is_none() {
        return Err(NetError::NoSuchInterface {
            op: if up { "set up" } else { "set down" },
            name: interface.to_string(),
        });
    }
    if up {
        netlink.set_up(interface)?;
        if let Some(id) = path {
            engine_path(state_root, id, true)?;
        }
    } else {
        if let Some(id) = path {
            engine_path(state_root, id, false)?;
        }
        netlink.set_down(interface)?;
    }
    Ok(())
}

/// Whether `interface` of the container whose pid 1 is `pid` is up.
pub fn is_up(pid: i32, interface: &str) -> Result<bool, NetError> {
    let netlink = Netlink::open_in(&NetNs::of_pid(pid)?)?;
    match netlink.link(interface)? {
        Some(link) => Ok(link.up),
        None => Err(NetError::NoSuchInterface {
            op: "read the state of",
            name: interface.to_string(),
        }),
    }
}

/// Makes the engine's path `id` carry frames or not, and waits until it does.
fn engine_path(state_root: &Path, id: &str, up: bool) -> Result<(), NetError> {
    super::engine::paths::update(state_root, |paths| {
        for path in paths.iter_mut().filter(|p| p.id == id) {
            path.up = up;
        }
    })?;
    super::engine::daemon::ensure(state_root)
}
