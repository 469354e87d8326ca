//! A stack of unpacked layer directories ([`super::layer_dirs`], top-most first) read as the
//! one tree overlayfs would show, without mounting anything: a path is looked up in each
//! layer from the top down; a whiteout (a character device 0/0) hides it and everything
//! below; a directory is the union of the directories of that name down to the first one
//! marked opaque (`trusted.overlay.opaque=y`) or the first layer where the name is not a
//! directory; anything else is the top-most layer's. `copy … from=` reads the source image
//! through it, so a step costs what it copies, not what the image holds (the layers are
//! unpacked once per state root and shared with `run` steps and containers).
//!
//! Paths resolve inside the image, never on the host: a symbolic link is read from its layer
//! and followed by this module, component by component, as `openat2(RESOLVE_IN_ROOT)` does
//! (an absolute target starts again at the image's `/`, `..` stops there), up to Linux's 40
//! links. The kernel never follows a link of the image: every host path this module hands
//! out is a layer directory joined with components it found, by `lstat`, to be directories
//! of that same layer. (The layer directories are kiln's own and never change once made.)
//!
//! It reads; it never writes, and it knows nothing of what a build does with what it finds.

use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The xattr that marks a directory opaque (what the layers below have there is hidden).
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Symbolic links followed in one resolution before giving up (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum UnionError {
    /// It (or a directory on the way) does not exist, or a part on the way is not a
    /// directory.
    NotFound,
    /// More than [`MAX_HOPS`] symbolic links.
    SymlinkLoop,
    Io(io::Error),
}

impl From<io::Error> for UnionError {
    fn from(err: io::Error) -> Self {
        UnionError::Io(err)
    }
}

/// A directory of the merged tree: the directories of that path that make it, one per
/// layer, top-most first (the first gives its mode and owner).
#[derive(Debug, Clone)]
pub(crate) struct Dir {
    pub(crate) parts: Vec<PathBuf>,
}

impl Dir {
    /// The host path whose metadata the directory has.
    pub(crate) fn top(&self) -> &Path {
        &self.parts[0]
    }
}

/// What a path of the merged tree is.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Dir(Dir),
    /// A file, symbolic link, device or FIFO: the host path of the top-most layer's copy
    /// and its `lstat`.
    Leaf {
        source: PathBuf,
        meta: Metadata,
    },
}

/// The merged tree of a stack of unpacked layers.
pub(crate) struct Union {
    root: Dir,
}

impl Union {
    /// The layers' directories, top-most first (as [`super::unpack_stack`] returns them);
    /// at least one (an image without layers is an empty directory).
    pub(crate) fn new(layers: Vec<PathBuf>) -> io::Result<Union> {
        let mut parts = Vec::new();
        for layer in layers {
            let opaque = is_opaque(&layer)?;
            parts.push(layer);
            if opaque {
                break;
            }
        }
        if parts.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a union of no layers",
            ));
        }
        Ok(Union {
            root: Dir { parts },
        })
    }

    /// What `name` is in the merged directory `dir`; `None` when no layer has it or the
    /// top-most one that does whites it out.
    pub(crate) fn lookup(&self, dir: &Dir, name: &OsStr) -> io::Result<Option<Node>> {
        let mut parts = Vec::new();
        for part in &dir.parts {
            let path = part.join(name);
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(meta) => meta,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(err) => return Err(err),
            };
            if is_whiteout(&meta) {
                break;
            }
            if !meta.is_dir() {
                if parts.is_empty() {
                    return Ok(Some(Node::Leaf { source: path, meta }));
                }
                // A file under a directory of a higher layer is hidden, with all below it.
                break;
            }
            let opaque = is_opaque(&path)?;
            parts.push(path);
            if opaque {
                break;
            }
        }
        Ok((!parts.is_empty()).then_some(Node::Dir(Dir { parts })))
    }

    /// The names in the merged directory `dir` with what each is, sorted by name.
    pub(crate) fn list(&self, dir: &Dir) -> io::Result<Vec<(OsString, Node)>> {
        let mut names = BTreeSet::new();
        for part in &dir.parts {
            for entry in std::fs::read_dir(part)? {
                names.insert(entry?.file_name());
            }
        }
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            if let Some(node) = self.lookup(dir, &name)? {
                out.push((name, node));
            }
        }
        Ok(out)
    }

    /// Resolves `path` (in the image; relative paths start at its `/`) to what it names,
    /// every symbolic link followed inside the image, the last one too.
    pub(crate) fn resolve(&self, path: &str) -> Result<Node, UnionError> {
        let mut todo: Vec<Vec<u8>> = components(path.as_bytes());
        todo.reverse(); // a stack: the next component last
        let mut dirs: Vec<Dir> = vec![self.root.clone()];
        let mut hops = 0;
        while let Some(name) = todo.pop() {
            match name.as_slice() {
                b"." => continue,
                b".." => {
                    if dirs.len() > 1 {
                        dirs.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let here = dirs.last().expect("the root stays");
            match self.lookup(here, OsStr::from_bytes(&name))? {
                None => return Err(UnionError::NotFound),
                Some(Node::Dir(dir)) => dirs.push(dir),
                Some(Node::Leaf { source, meta }) if meta.file_type().is_symlink() => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(UnionError::SymlinkLoop);
                    }
                    let target = std::fs::read_link(&source)?;
                    let target = target.as_os_str().as_bytes();
                    if target.starts_with(b"/") {
                        dirs.truncate(1);
                    }
                    todo.extend(components(target).into_iter().rev());
                }
                Some(leaf) => {
                    // A file with more to come (`file/x`, `file/`) is not a directory.
                    return if todo.is_empty() && !path.ends_with('/') {
                        Ok(leaf)
                    } else {
                        Err(UnionError::NotFound)
                    };
                }
            }
        }
        Ok(Node::Dir(dirs.pop().expect("the root stays")))
    }
}

/// The non-empty `/`-separated parts of `path`.
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// Whether `meta` is an overlayfs whiteout: a character device 0/0.
fn is_whiteout(meta: &Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Whether the directory `path` is marked opaque (`lgetxattr`: a link is never followed).
fn is_opaque(path: &Path) -> io::Result<bool> {
    Ok(xattr::get(path, OPAQUE_XATTR)?.is_some_and(|v| v == b"y"))
}

#[cfg(test)]
mod tests;
