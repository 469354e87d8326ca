//! Unpacked layers: each layer a `run` step (or a `copy from=`) needs is unpacked once into
//! `$KILN_ROOT/layers/<diff_id>/`, with overlayfs whiteouts, and then shared read-only by
//! every sandbox that mounts it. Unpacking goes to a temporary directory renamed into place,
//! so a directory under its final name is always complete.

use std::fs;
use std::path::{Path, PathBuf};

use super::{BuildError, io_err};
use crate::layer::{self, ExtractOptions, WhiteoutMode};
use crate::store::{Descriptor, Digest, Store};

/// The directory of an unpacked layer, unpacking it first if needed.
pub fn ensure_unpacked(
    store: &Store,
    state_root: &Path,
    layer: &Descriptor,
    diff_id: &Digest,
) -> Result<PathBuf, BuildError> {
    let layers = state_root.join("layers");
    let target = layers.join(diff_id.hex());
    if target.is_dir() {
        return Ok(target);
    }
    fs::create_dir_all(&layers).map_err(io_err(&layers))?;
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
    layer::extract(tar, &unpacked, &options).map_err(|source| BuildError::Unpack {
        digest: layer.digest.clone(),
        source,
    })?;
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
