//! Finds the input files of the build steps that read from the host: `host-binary` (an
//! executable and its shared-library closure), `host-path` (a file or tree as is) and `copy`
//! (from the build context, honouring `.kilnignore`).
//!
//! The result of `host-binary` and `host-path` is a sorted list of [`HostItem`]s: what goes
//! where in the step's layer. The result of `copy` is a list of [`CopyMatch`]es: what each
//! source names, before anyone knows where it lands (that depends on the image below the
//! step: `build::place` decides).
//! This module only resolves paths and reads ELF headers; it must not write tars, touch the
//! store or parse KDL. Ownership, modes and content are read later, from each item's `source`,
//! by the layer writer, which also creates any missing parent directories.
//!
//! All host lookups go through a [`HostRoot`] (normally `/`), resolving symbolic links
//! component by component inside it, so tests can build a fake root in a temporary directory.

mod closure;
mod context;
mod elf;
mod error;
mod hostpath;
mod ldconf;
mod resolve;
mod tree;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

pub use closure::host_binaries;
pub use context::{Context, IGNORE_FILE};
pub use error::InputError;
pub use hostpath::host_paths;
pub use resolve::HostRoot;

/// One entry of a layer: the absolute path it gets in the image and where to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostItem {
    /// Absolute path in the image, e.g. `/usr/bin/dash`.
    pub image_path: String,
    /// Host path to read (with lstat: a symlink item's source is the link itself).
    pub source: PathBuf,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemKind {
    File,
    Dir,
    /// A symbolic link, with its target exactly as the host has it.
    Symlink(PathBuf),
    /// A device or a FIFO of another image (`copy from=`), carried as a node, never opened.
    Special,
}

/// One thing a `copy` source names, found before the destination is known (placing it is
/// `build::place`'s job, against the image below the step): a file, or a directory whose
/// contents are copied. A glob names one per match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyMatch {
    /// The source as matched: relative to the context (`site/index.html`), or the path in
    /// the `from=` image. Its last component is the name a file takes inside a destination
    /// directory.
    pub path: String,
    /// The file or directory read (symbolic links on the way to it followed).
    pub source: PathBuf,
    pub is_dir: bool,
    /// A directory's contents, relative to it, parents first (empty for a file).
    pub contents: Vec<TreeItem>,
}

impl CopyMatch {
    /// The name a file takes inside a destination directory.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').find(|p| !p.is_empty()).unwrap_or("")
    }
}

/// An entry inside a copied directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeItem {
    /// Path relative to the copied directory (`css/main.css`).
    pub rel: String,
    /// Host path to read (with lstat: a symlink's source is the link itself).
    pub source: PathBuf,
    pub kind: ItemKind,
}

impl HostItem {
    /// The stat-cache fingerprint of this item's source.
    pub fn stat(&self) -> Result<FileStat, InputError> {
        stat(&self.source)
    }
}

/// What the stat cache compares to decide a file is unchanged without hashing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStat {
    pub size: u64,
    pub mtime_ns: i128,
    pub ino: u64,
    pub dev: u64,
}

/// Reads the [`FileStat`] of `path` without following a final symbolic link.
pub fn stat(path: &Path) -> Result<FileStat, InputError> {
    let meta = std::fs::symlink_metadata(path).map_err(error::io_err(path))?;
    Ok(FileStat {
        size: meta.size(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ino: meta.ino(),
        dev: meta.dev(),
    })
}

/// Items collected while resolving, deduplicated by image path (a later insert of the same
/// path replaces the earlier one, as a later copy overwrites) and ordered component by
/// component, so a directory always comes right before its contents.
#[derive(Debug, Default)]
pub(crate) struct ItemSet {
    /// Keyed by the image path with `/` as byte 0: byte order is then component order,
    /// and comparing keys is a memcmp (large copies insert tens of thousands of items).
    items: BTreeMap<Vec<u8>, (PathBuf, PathBuf, ItemKind)>,
}

impl ItemSet {
    pub(crate) fn insert(&mut self, image_path: PathBuf, source: PathBuf, kind: ItemKind) {
        let key = image_path
            .as_os_str()
            .as_bytes()
            .iter()
            .map(|&b| if b == b'/' { 0 } else { b })
            .collect();
        self.items.insert(key, (image_path, source, kind));
    }

    pub(crate) fn into_items(self) -> Result<Vec<HostItem>, InputError> {
        self.items
            .into_values()
            .map(
                |(image_path, source, kind)| match image_path.into_os_string().into_string() {
                    Ok(image_path) => Ok(HostItem {
                        image_path,
                        source,
                        kind,
                    }),
                    Err(_) => Err(InputError::NotUtf8 { path: source }),
                },
            )
            .collect()
    }
}

/// `path` for messages.
pub(crate) fn show(path: &Path) -> String {
    path.display().to_string()
}
