//! `copy SRC DST from="IMAGE"`: picks files out of another image, read through its unpacked
//! layers ([`super::union`]: the merged tree, whiteouts and opaque directories honoured,
//! nothing flattened or mounted), so a step costs what it copies. Paths are resolved inside
//! the image (an absolute symlink target means the image's `/`, `..` stops at its root), so
//! nothing outside it is ever read. Devices and FIFOs are carried into the layer as nodes
//! (as BuildKit does), never opened.

use std::os::unix::fs::FileTypeExt;

use super::inputs::{CopyMatch, ItemKind, TreeItem};
use super::union::{Dir, Node, Union, UnionError};

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

/// What `copy SRC … from=` names in the image `image`: the file or directory at `src`,
/// symbolic links on the way (its own too) followed inside the image. Where it lands is
/// `build::place`'s business.
pub(crate) fn copy_from_match(image: &Union, src: &str) -> Result<CopyMatch, CopyFromError> {
    let path = || src.to_string();
    let io = |source: std::io::Error| CopyFromError::Io {
        path: path(),
        source,
    };
    let node = image.resolve(src).map_err(|err| match err {
        UnionError::NotFound => CopyFromError::NotFound { path: path() },
        UnionError::SymlinkLoop => CopyFromError::SymlinkLoop { path: path() },
        UnionError::Io(source) => io(source),
    })?;
    match node {
        Node::Leaf { source, .. } => Ok(CopyMatch {
            path: path(),
            source,
            is_dir: false,
            contents: Vec::new(),
        }),
        Node::Dir(dir) => {
            let mut contents = Vec::new();
            walk(image, &dir, "", &mut contents).map_err(io)?;
            Ok(CopyMatch {
                path: path(),
                source: dir.top().to_path_buf(),
                is_dir: true,
                contents,
            })
        }
    }
}

fn walk(image: &Union, dir: &Dir, rel_dir: &str, items: &mut Vec<TreeItem>) -> std::io::Result<()> {
    for (name, node) in image.list(dir)? {
        let name = name.to_string_lossy();
        let rel = if rel_dir.is_empty() {
            name.into_owned()
        } else {
            format!("{rel_dir}/{name}")
        };
        match node {
            Node::Dir(sub) => {
                items.push(TreeItem {
                    rel: rel.clone(),
                    source: sub.top().to_path_buf(),
                    kind: ItemKind::Dir,
                });
                walk(image, &sub, &rel, items)?;
            }
            Node::Leaf { source, meta } => {
                let kind = meta.file_type();
                let kind = if kind.is_symlink() {
                    ItemKind::Symlink(std::fs::read_link(&source)?)
                } else if kind.is_file() {
                    ItemKind::File
                } else if kind.is_socket() {
                    // A socket is nothing without its process; BuildKit skips those too.
                    continue;
                } else {
                    // Devices and FIFOs are carried as they are, as BuildKit's copy does.
                    ItemKind::Special
                };
                items.push(TreeItem { rel, source, kind });
            }
        }
    }
    Ok(())
}
