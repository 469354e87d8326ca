//! A container's root filesystem mounted for kiln itself while the container does not run
//! (`kiln cp` to or from a created or stopped container): the overlayfs the container gets
//! — its layers, the skeleton below them, its upper directory — mounted on its scratch
//! directory in a private mount namespace of the calling thread, so the machine's mount
//! table never sees it and it vanishes with the process at the latest.
//!
//! The caller must make sure the container does not start meanwhile (one overlayfs per
//! upper directory at a time): `kiln cp` holds the container's record lock, which `kiln
//! start` takes too. It does not resolve paths inside the root (`inroot`'s) nor copy.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

use super::SandboxError;
use super::plan::{RootfsLayout, SKELETON_DIRS, ScratchLayout, overlay_options};
use super::sandbox::{clean_scratch, prepare_scratch};

/// The mounted root; unmounted (and the scratch directory emptied) when dropped.
#[derive(Debug)]
pub struct RootView {
    scratch: ScratchLayout,
}

impl RootView {
    /// Where the merged root is mounted (in this thread's mount namespace only).
    pub fn path(&self) -> &Path {
        &self.scratch.merged
    }
}

fn sys_err(path: &Path) -> impl FnOnce(nix::Error) -> SandboxError + '_ {
    move |errno| SandboxError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    }
}

/// Mounts `rootfs` read-write for kiln (see the module's documentation).
pub fn mount_view(rootfs: &RootfsLayout) -> Result<RootView, SandboxError> {
    let scratch = ScratchLayout::new(&rootfs.scratch_dir);
    prepare_scratch(&scratch)?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(sys_err(Path::new("/proc/self/ns/mnt")))?;
    // Before anything is mounted: nothing may propagate to the machine's mounts.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(sys_err(Path::new("/")))?;
    mount(
        Some("tmpfs"),
        &scratch.mountpoint,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=755,size=64k"),
    )
    .map_err(sys_err(&scratch.mountpoint))?;
    let view = RootView { scratch };
    let scratch = &view.scratch;
    let mut dirs: Vec<PathBuf> = vec![scratch.skeleton.clone(), scratch.merged.clone()];
    dirs.extend(SKELETON_DIRS.iter().map(|d| scratch.skeleton.join(d)));
    for dir in &dirs {
        std::fs::create_dir(dir).map_err(|source| SandboxError::Io {
            path: dir.clone(),
            source,
        })?;
    }
    let mut lowers: Vec<&Path> = rootfs.lower_dirs.iter().map(PathBuf::as_path).collect();
    lowers.push(&scratch.skeleton);
    let options: CString = overlay_options(&lowers, &rootfs.upper_dir, &scratch.overlay_work)?;
    mount(
        Some("overlay"),
        &scratch.merged,
        Some("overlay"),
        MsFlags::empty(),
        Some(std::ffi::OsStr::from_bytes(options.as_bytes())),
    )
    .map_err(sys_err(&scratch.merged))?;
    Ok(view)
}

impl Drop for RootView {
    fn drop(&mut self) {
        let _ = umount2(&self.scratch.merged, MntFlags::MNT_DETACH);
        let _ = umount2(&self.scratch.mountpoint, MntFlags::MNT_DETACH);
        let _ = clean_scratch(&self.scratch);
    }
}
