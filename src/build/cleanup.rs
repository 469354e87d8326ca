//! Leftovers of builds under the state root: scratch directories of steps that were killed
//! (`tmp/`), half-unpacked layers (`layers/.unpack-*`) and unpacked layers no image or cache
//! entry uses any more. Run by `kiln gc` while it holds the store's exclusive lock, so no
//! build is running.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use super::{BuildError, io_err};
use crate::image::StoredImage;
use crate::store::Store;

/// What [`clean_state`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanReport {
    pub scratch_dirs: usize,
    /// Cgroups of `run` steps whose kiln was killed (`kiln/<root>/build-*`).
    pub step_cgroups: usize,
    pub unpacked_layers: usize,
}

/// Removes build leftovers; `store` must be the store of `state_root`. The unpacked layers
/// of tagged images and of `in_use` (the manifests containers run from, tagged or not) stay.
pub fn clean_state(
    store: &Store,
    state_root: &Path,
    in_use: &[crate::store::Descriptor],
) -> Result<CleanReport, BuildError> {
    let _exclusive = store.lock_gc()?;
    let mut report = CleanReport::default();
    let tmp = state_root.join("tmp");
    for entry in read_dir(&tmp)? {
        remove_tree(&entry)?;
        report.scratch_dirs += 1;
    }
    // No build of this root runs (the exclusive lock): a step's cgroup is a leftover.
    report.step_cgroups = crate::runtime::remove_leftovers(
        &crate::runtime::cgroup::state_root_group(state_root),
        super::STEP_CGROUP_PREFIX,
    )
    .map_err(|source| BuildError::Cleanup {
        source: Box::new(source),
    })?;
    // Unpacked layers are keyed by chain id: keep every prefix of every tagged image's stack.
    let mut keep: BTreeSet<String> = BTreeSet::new();
    let tagged = store.tags()?.into_values();
    for descriptor in tagged.chain(in_use.iter().cloned()) {
        if let Ok(image) = StoredImage::from_descriptor(store, descriptor) {
            let diff_ids: Vec<crate::digest::Digest> = image
                .config
                .rootfs
                .diff_ids
                .iter()
                .filter_map(|d| d.parse().ok())
                .collect();
            keep.extend(
                super::chain_ids(&diff_ids)
                    .iter()
                    .map(|c| c.hex().to_string()),
            );
        }
    }
    let layers = state_root.join("layers");
    for entry in read_dir(&layers)? {
        let name = entry
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') || !keep.contains(&name) {
            remove_tree(&entry)?;
            report.unpacked_layers += 1;
        }
    }
    Ok(report)
}

fn read_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, BuildError> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.filter_map(Result::ok).map(|e| e.path()).collect()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(io_err(dir)(err)),
    }
}

/// Removes a tree that may hold read-only directories (unpacked layers keep their modes).
fn remove_tree(path: &Path) -> Result<(), BuildError> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(_) => {
            make_writable(path);
            fs::remove_dir_all(path).map_err(io_err(path))
        }
    }
}

fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = fs::symlink_metadata(path)
        && meta.is_dir()
    {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
        if let Ok(entries) = fs::read_dir(path) {
            for entry in entries.flatten() {
                make_writable(&entry.path());
            }
        }
    }
}
