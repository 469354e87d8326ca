//! `copy SRC DST from="IMAGE"`: picks files out of another image's flattened root
//! filesystem. Paths are resolved inside that root (an absolute symlink target means the
//! image's `/`, `..` stops at its root), so nothing outside it is ever read. Devices and
//! FIFOs are carried into the layer as nodes (as BuildKit does), never opened.

use std::os::fd::AsRawFd;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use crate::inroot::{How, Root};

use super::inputs::{CopyMatch, ItemKind, TreeItem};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CopyFromError {
    #[error("`{path}` does not exist in the source image")]
    #[diagnostic(help("`kiln inspect` and `kiln history` show what the source image contains"))]
    NotFound { path: String },
    #[error("too many levels of symbolic links resolving `{path}` in the source image")]
    SymlinkLoop { path: String },
    #[error("cannot read `{path}` in the source image")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Resolves `path` (absolute in the image) to a real path under `root`, following every
/// symlink, the last one included, inside the image (`inroot`: an absolute target starts
/// again at the image's `/`, `..` stops there).
fn resolve(root: &Path, path: &str) -> Result<PathBuf, CopyFromError> {
    let io = |source: std::io::Error| CopyFromError::Io {
        path: path.to_string(),
        source,
    };
    let image = Root::open(root).map_err(|e| io(e.source))?;
    let fd = image.resolve(path, How::EXISTING).map_err(|e| {
        if e.is_not_found() || e.errno() == Some(Errno::ENOTDIR) {
            CopyFromError::NotFound {
                path: path.to_string(),
            }
        } else if e.errno() == Some(Errno::ELOOP) {
            CopyFromError::SymlinkLoop {
                path: path.to_string(),
            }
        } else {
            io(e.source)
        }
    })?;
    // The real path of what the descriptor names: below `root` by construction (the
    // flattened image is kiln's own scratch directory, which nothing else changes).
    let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(io)?;
    let root = std::fs::canonicalize(root).map_err(io)?;
    if !real.starts_with(&root) {
        return Err(io(std::io::Error::other("it resolved outside the image")));
    }
    Ok(real)
}

/// What `copy SRC … from=` names in the image rooted at `root`: the file or directory at
/// `src`, symbolic links on the way (its own too) followed inside the image. Where it lands
/// is `build::place`'s business.
pub(crate) fn copy_from_match(root: &Path, src: &str) -> Result<CopyMatch, CopyFromError> {
    let source = resolve(root, src)?;
    let io = |source: std::io::Error| CopyFromError::Io {
        path: src.to_string(),
        source,
    };
    let meta = std::fs::metadata(&source).map_err(io)?;
    let mut contents = Vec::new();
    if meta.is_dir() {
        walk(&source, "", &mut contents).map_err(io)?;
    }
    Ok(CopyMatch {
        path: src.to_string(),
        source,
        is_dir: meta.is_dir(),
        contents,
    })
}

fn walk(dir: &Path, rel_dir: &str, items: &mut Vec<TreeItem>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if rel_dir.is_empty() {
            name
        } else {
            format!("{rel_dir}/{name}")
        };
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            items.push(TreeItem {
                rel,
                source: path,
                kind: ItemKind::Symlink(target),
            });
        } else if kind.is_dir() {
            items.push(TreeItem {
                rel: rel.clone(),
                source: path.clone(),
                kind: ItemKind::Dir,
            });
            walk(&path, &rel, items)?;
        } else if kind.is_file() {
            items.push(TreeItem {
                rel,
                source: path,
                kind: ItemKind::File,
            });
        } else if !kind.is_socket() {
            // Devices and FIFOs are carried as they are, as BuildKit's copy does (a socket
            // is nothing without its process; BuildKit skips those too).
            items.push(TreeItem {
                rel,
                source: path,
                kind: ItemKind::Special,
            });
        }
    }
    Ok(())
}
