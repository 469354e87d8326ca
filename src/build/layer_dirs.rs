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

use sha2::{Digest as _, Sha256};

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
    for ((layer, diff_id), chain) in layers.iter().zip(&chains) {
        let dir = ensure_unpacked(store, state_root, layer, diff_id, chain, &below)?;
        below.insert(0, dir);
    }
    Ok(below)
}

/// The directory of an unpacked layer, unpacking it first if needed. `below` are the
/// unpacked layers under it, top-most first.
///
/// The directory is shared by every image whose stack has the same chain id, which the
/// image's config computes from its diff_ids. So the uncompressed stream is hashed while it
/// is unpacked and must be the `diff_id` the config claims: otherwise a hostile image could
/// name a popular base layer's diff_id, get its own content unpacked under that chain id,
/// and have it served to every container of the real base.
fn ensure_unpacked(
    store: &Store,
    state_root: &Path,
    layer: &Descriptor,
    diff_id: &Digest,
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
    let mut hashing = HashingReader {
        inner: tar,
        hasher: Sha256::new(),
    };
    let unpack_err = |source| BuildError::Unpack {
        digest: layer.digest.clone(),
        source,
    };
    let report = layer::extract(&mut hashing, &unpacked, &options).map_err(unpack_err)?;
    // The tar's end-of-archive blocks (and anything after) are part of the diff_id.
    std::io::copy(&mut hashing, &mut std::io::sink())
        .map_err(|e| unpack_err(crate::layer::LayerError::Archive(e)))?;
    let actual = Digest::from_hasher(hashing.hasher);
    if actual != *diff_id {
        return Err(BuildError::DiffIdMismatch {
            digest: layer.digest.clone(),
            expected: diff_id.clone(),
            actual,
        });
    }
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
/// path in the top-most layer below that has it. Every path is opened beneath its layer with
/// no symlink followed: a later entry of the layer may have replaced a parent with a link
/// out (`a/b/f`, then `a -> /etc`), and a path-based chown would follow it.
fn inherit_parents(root: &Path, implicit: &[PathBuf], below: &[PathBuf]) -> Result<(), BuildError> {
    use crate::beneath::{self, Kind};
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let top = beneath::open_root(root).map_err(io_err(root))?;
    let lowers: Vec<fs::File> = below
        .iter()
        .map(|dir| beneath::open_root(dir).map_err(io_err(dir)))
        .collect::<Result<_, _>>()?;
    for relative in implicit {
        let mut found = None;
        for lower in &lowers {
            match beneath::open(lower, relative, Kind::Dir) {
                Ok(dir) => {
                    found = Some(dir.metadata().map_err(io_err(relative))?);
                    break;
                }
                Err(err) if err.raw_os_error() == Some(libc::ENOENT) => continue,
                // A non-directory (or a link) hides the layers below: nothing to inherit.
                Err(_) => break,
            }
        }
        let Some(meta) = found else { continue };
        let path = root.join(relative);
        let dir = match beneath::open(&top, relative, Kind::Dir) {
            Ok(dir) => dir,
            Err(err) if beneath::not_there(&err) => continue,
            Err(err) => return Err(io_err(&path)(err)),
        };
        nix::unistd::fchown(
            &dir,
            Some(nix::unistd::Uid::from_raw(meta.uid())),
            Some(nix::unistd::Gid::from_raw(meta.gid())),
        )
        .map_err(|errno| BuildError::Io {
            path: path.clone(),
            source: errno.into(),
        })?;
        dir.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(io_err(&path))?;
    }
    Ok(())
}

/// Hashes what is read through it (the uncompressed layer: its diff_id).
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: std::io::Read> std::io::Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::layer::{Compression, Entries, Entry, EntryKind, WriteOptions};

    fn layer_blob(store: &Store, files: &[(&str, &[u8])]) -> (Descriptor, Digest) {
        let mut entries = Entries::new();
        for (path, bytes) in files {
            let entry = Entry::new(
                EntryKind::File(crate::layer::Content::Bytes(bytes.to_vec())),
                0o644,
                0,
                0,
            );
            entries.insert(path, entry).unwrap();
        }
        let mut ingest = store.ingest().unwrap();
        let options = WriteOptions {
            compression: Compression::Gzip,
            source_date_epoch: 0,
            skip_implicit_dirs: true,
        };
        let info = crate::layer::write(&entries, &options, &mut ingest).unwrap();
        let (digest, size) = ingest.commit().unwrap();
        let descriptor = Descriptor {
            media_type: info.media_type().to_string(),
            digest,
            size,
            annotations: Default::default(),
        };
        (descriptor, info.diff_id)
    }

    #[test]
    fn a_layer_that_is_not_its_diff_id_is_not_unpacked() {
        // Unpacking for overlay needs root (under CI, the test fails without).
        if !crate::test_support::is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        let (real, real_diff) = layer_blob(&store, &[("etc/os-release", b"real base\n")]);
        let (evil, _) = layer_blob(&store, &[("etc/os-release", b"evil\n")]);
        // The evil layer claims the real one's diff_id, to be unpacked under its chain id.
        let err = unpack_stack(&store, dir.path(), &[(evil, real_diff.clone())]).unwrap_err();
        assert!(matches!(err, BuildError::DiffIdMismatch { .. }), "{err}");
        assert!(!dir.path().join("layers").join(real_diff.hex()).exists());
        let dirs = unpack_stack(&store, dir.path(), &[(real, real_diff)]).unwrap();
        assert_eq!(
            fs::read(dirs[0].join("etc/os-release")).unwrap(),
            b"real base\n"
        );
        assert_eq!(
            fs::metadata(dir.path().join("layers"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    #[test]
    fn implicit_parents_are_never_chowned_through_a_replaced_parent() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir_all(host.join("b")).unwrap();
        fs::set_permissions(host.join("b"), fs::Permissions::from_mode(0o755)).unwrap();
        let below = dir.path().join("below");
        fs::create_dir_all(below.join("a/b")).unwrap();
        fs::set_permissions(below.join("a/b"), fs::Permissions::from_mode(0o777)).unwrap();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        // The layer made `a/b` as parents of a file, then replaced `a` with a link out.
        std::os::unix::fs::symlink(&host, root.join("a")).unwrap();
        inherit_parents(&root, &[PathBuf::from("a/b")], &[below]).unwrap();
        assert_eq!(fs::metadata(host.join("b")).unwrap().mode() & 0o777, 0o755);
    }
}
