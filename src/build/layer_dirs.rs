//! Unpacked layers: each layer a `run` step or a container needs is unpacked once into
//! `$KILN_ROOT/layers/<chain id>/`, with overlayfs whiteouts, and then shared read-only by
//! every sandbox and container that mounts it. Unpacking goes to a temporary directory renamed
//! into place, so a directory under its final name is always complete.
//!
//! Keyed by the OCI chain id (the layer *and* everything below it), not the diff_id: a layer
//! may lack entries for the parents of its files (kiln writes none for directories it did not
//! make), and overlayfs shows the top-most copy of a directory, so each parent created while
//! unpacking takes the mode and owner the layers below give that path — which depends on
//! those layers.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BuildError, io_err};
use crate::digest::Digest;
use crate::layer::{self, ExtractOptions, WhiteoutMode};
use crate::store::{Descriptor, Store};

/// OCI chain ids of a stack of layers, bottom first: the first is its diff_id, each next
/// one sha256("<chain below> <diff_id>").
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let chain = match out.last() {
            None => diff_id.clone(),
            Some(below) => Digest::of(format!("{below} {diff_id}").as_bytes()),
        };
        out.push(chain);
    }
    out
}

/// Unpacks a stack of layers (bottom first); returns their directories top-most first, the
/// order overlayfs wants its lower directories in.
pub fn unpack_stack(
    store: &Store,
    state_root: &Path,
    layers: &[(Descriptor, Digest)],
) -> Result<Vec<PathBuf>, BuildError> {
    let diff_ids: Vec<Digest> = layers.iter().map(|(_, d)| d.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let mut below: Vec<PathBuf> = Vec::new(); // top-most first
    for ((layer, _), chain) in layers.iter().zip(&chains) {
        let dir = ensure_unpacked(store, state_root, layer, chain, &below)?;
        below.insert(0, dir);
    }
    Ok(below)
}

/// The directory of an unpacked layer, unpacking it first if needed. `below` are the
/// unpacked layers under it, top-most first.
fn ensure_unpacked(
    store: &Store,
    state_root: &Path,
    layer: &Descriptor,
    chain: &Digest,
    below: &[PathBuf],
) -> Result<PathBuf, BuildError> {
    let layers = state_root.join("layers");
    let target = layers.join(chain.hex());
    if target.is_dir() {
        return Ok(target);
    }
    crate::store::make_private(&layers).map_err(io_err(&layers))?;
    let temp = tempfile::Builder::new()
        .prefix(".unpack-")
        .tempdir_in(&layers)
        .map_err(io_err(&layers))?;
    let blob = store.open_blob(&layer.digest)?;
    let tar = layer::decompressing_reader(std::io::BufReader::new(blob)).map_err(|source| {
        BuildError::Unpack {
            digest: layer.digest.clone(),
            source,
        }
    })?;
    let options = ExtractOptions {
        whiteouts: WhiteoutMode::Overlay,
        preserve_ownership: true,
        allow_devices: true,
    };
    let unpacked = temp.path().join("root");
    fs::create_dir(&unpacked).map_err(io_err(&unpacked))?;
    let report = layer::extract(tar, &unpacked, &options).map_err(|source| BuildError::Unpack {
        digest: layer.digest.clone(),
        source,
    })?;
    inherit_parents(&unpacked, &report.implicit_dirs, below)?;
    match fs::rename(&unpacked, &target) {
        Ok(()) => Ok(target),
        // Another build unpacked the same layer meanwhile: use theirs.
        Err(_) if target.is_dir() => Ok(target),
        Err(source) => Err(BuildError::Io {
            path: target,
            source,
        }),
    }
}

/// Flattens an image's layers into one directory tree (whiteouts applied): the source of a
/// `copy from=`.
pub fn flatten(store: &Store, layers: &[Descriptor], into: &Path) -> Result<(), BuildError> {
    let options = ExtractOptions {
        whiteouts: WhiteoutMode::Apply,
        preserve_ownership: true,
        allow_devices: true,
    };
    for layer in layers {
        let blob = store.open_blob(&layer.digest)?;
        let tar = layer::decompressing_reader(std::io::BufReader::new(blob)).map_err(|source| {
            BuildError::Unpack {
                digest: layer.digest.clone(),
                source,
            }
        })?;
        layer::extract(tar, into, &options).map_err(|source| BuildError::Unpack {
            digest: layer.digest.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Gives each directory the layer created only as a parent the mode and owner of the same
/// path in the top-most layer below that has it.
fn inherit_parents(root: &Path, implicit: &[PathBuf], below: &[PathBuf]) -> Result<(), BuildError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    for relative in implicit {
        let Some(meta) = below
            .iter()
            .find_map(|dir| fs::symlink_metadata(dir.join(relative)).ok())
        else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let path = root.join(relative);
        nix::unistd::chown(
            &path,
            Some(nix::unistd::Uid::from_raw(meta.uid())),
            Some(nix::unistd::Gid::from_raw(meta.gid())),
        )
        .map_err(|errno| BuildError::Io {
            path: path.clone(),
            source: errno.into(),
        })?;
        fs::set_permissions(&path, fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err(&path))?;
    }
    Ok(())
}
