//! The cgroup of one sandbox run (a build step): made before the command may run, with the
//! same device rules a container gets ([`Hierarchy::create`]: v1 `devices.deny a` and the
//! allow list, and the `BPF_CGROUP_DEVICE` program in the unified hierarchy), the child
//! attached while it waits on its go-ahead pipe, and — when the run ends, however it ends —
//! everything left in it killed and the cgroup removed, then its parents once they are
//! empty. Dropping a [`SandboxCgroup`] that was not removed removes it (an early return, a
//! panic).
//!
//! [`interrupt`] (Ctrl-C of `kiln build`) kills every sandbox of this process through its
//! cgroup, and no sandbox is let run after it: each run then ends, and removes its cgroup,
//! as when its command fails.
//!
//! It owns no policy of its own: no limits (a build step has none), the rules are the
//! container's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::SandboxError;
use super::cgroup::{Cgroup, Hierarchy, Limits};

/// The sandboxes of this process that run in a cgroup, by cgroup name, and whether
/// [`interrupt`] was called.
static LIVE: Mutex<(bool, BTreeMap<String, Cgroup>)> = Mutex::new((false, BTreeMap::new()));

/// Whether [`interrupt`] was called.
pub fn interrupted() -> bool {
    LIVE.lock().unwrap_or_else(|e| e.into_inner()).0
}

/// Kills every sandbox of this process (SIGKILL to everything in their cgroups) and keeps
/// new ones from running: their [`run`](super::run) fails with
/// [`SandboxError::Interrupted`]. For a signal-handling thread; not async-signal-safe.
pub fn interrupt() {
    let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
    live.0 = true;
    for cgroup in live.1.values() {
        let _ = cgroup.kill_all();
    }
}

/// A sandbox's cgroup, removed when dropped.
pub(crate) struct SandboxCgroup {
    hierarchy: Hierarchy,
    cgroup: Option<Cgroup>,
}

impl SandboxCgroup {
    /// Makes cgroup `name` with the device rules and no limits.
    pub(crate) fn create(name: &str) -> Result<SandboxCgroup, SandboxError> {
        let hierarchy = Hierarchy::detect().map_err(SandboxError::cgroup)?;
        let cgroup = hierarchy
            .create(name, &Limits::default())
            .map_err(SandboxError::cgroup)?;
        Ok(SandboxCgroup {
            hierarchy,
            cgroup: Some(cgroup),
        })
    }

    /// Moves `pid` (the waiting child) into the cgroup, where [`interrupt`] finds it; fails
    /// with [`SandboxError::Interrupted`] once that was called.
    pub(crate) fn attach(&self, pid: i32) -> Result<(), SandboxError> {
        let Some(cgroup) = &self.cgroup else {
            return Ok(());
        };
        let mut live = LIVE.lock().unwrap_or_else(|e| e.into_inner());
        if live.0 {
            return Err(SandboxError::Interrupted);
        }
        cgroup.attach(pid).map_err(SandboxError::cgroup)?;
        live.1.insert(cgroup.name().to_owned(), cgroup.clone());
        Ok(())
    }

    /// Kills what is left in the cgroup, removes it, then removes its parents that nothing
    /// else uses (another kiln may be making a cgroup below one: it stays, which is right).
    pub(crate) fn remove(mut self) -> Result<(), SandboxError> {
        self.remove_now()
    }

    fn remove_now(&mut self) -> Result<(), SandboxError> {
        let Some(cgroup) = self.cgroup.take() else {
            return Ok(());
        };
        LIVE.lock()
            .unwrap_or_else(|e| e.into_inner())
            .1
            .remove(cgroup.name());
        let killed = cgroup.kill_all();
        let removed = cgroup.remove();
        let mut parent = cgroup.name();
        while let Some((above, _)) = parent.rsplit_once('/') {
            if !matches!(self.hierarchy.remove_if_empty(above), Ok(true)) {
                break;
            }
            parent = above;
        }
        killed.and(removed).map_err(SandboxError::cgroup)
    }
}

/// Removes the cgroups directly below `parent` whose name starts with `prefix`, killing
/// what is left in them first, then `parent` and its ancestors once empty: what sandboxes
/// whose kiln was killed with SIGKILL left (`kiln gc`, while no build of the state root
/// runs). Returns how many it removed; none without a cgroup filesystem.
pub fn remove_leftovers(parent: &str, prefix: &str) -> Result<usize, SandboxError> {
    let Ok(hierarchy) = Hierarchy::detect() else {
        return Ok(0);
    };
    let mut removed = 0;
    for name in hierarchy.list(parent).map_err(SandboxError::cgroup)? {
        let leftover = name
            .strip_prefix(parent)
            .and_then(|rest| rest.strip_prefix('/'))
            .is_some_and(|leaf| !leaf.contains('/') && leaf.starts_with(prefix));
        if !leftover {
            continue;
        }
        if let Some(cgroup) = hierarchy.open(&name).map_err(SandboxError::cgroup)? {
            SandboxCgroup {
                hierarchy: hierarchy.clone(),
                cgroup: Some(cgroup),
            }
            .remove()?;
            removed += 1;
        }
    }
    Ok(removed)
}

impl Drop for SandboxCgroup {
    fn drop(&mut self) {
        let _ = self.remove_now();
    }
}
