//! `copy SRC DST from="IMAGE"`: picks files out of another image's flattened root
//! filesystem. Paths are resolved inside that root (an absolute symlink target means the
//! image's `/`, `..` stops at its root), so nothing outside it is ever read.

use std::path::{Component, Path, PathBuf};

use super::inputs::{HostItem, ItemKind};

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

const MAX_LINKS: usize = 40;

/// Resolves `path` (absolute in the image) to a real path under `root`, following every
/// symlink, the last one included.
fn resolve(root: &Path, path: &str) -> Result<PathBuf, CopyFromError> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut resolved: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(resolved.join("/")).join(&part);
        match std::fs::symlink_metadata(&candidate) {
            Ok(meta) if meta.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(CopyFromError::SymlinkLoop {
                        path: path.to_string(),
                    });
                }
                let target =
                    std::fs::read_link(&candidate).map_err(|source| CopyFromError::Io {
                        path: path.to_string(),
                        source,
                    })?;
                let target = target.to_string_lossy();
                if target.starts_with('/') {
                    resolved.clear();
                }
                let mut more = components(&target);
                more.reverse();
                pending.extend(more);
            }
            Ok(_) => resolved.push(part),
            Err(_) => {
                return Err(CopyFromError::NotFound {
                    path: path.to_string(),
                });
            }
        }
    }
    Ok(root.join(resolved.join("/")))
}

fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect()
}

/// The items `copy SRC DST` takes from the image rooted at `root`, with Docker's rules: a
/// directory's contents go under DST; a file goes to DST, or into it when DST ends in `/`.
pub(crate) fn copy_from_tree(
    root: &Path,
    src: &str,
    dst: &str,
) -> Result<Vec<HostItem>, CopyFromError> {
    let source = resolve(root, src)?;
    let io = |source: std::io::Error| CopyFromError::Io {
        path: src.to_string(),
        source,
    };
    let meta = std::fs::metadata(&source).map_err(io)?;
    let mut items = Vec::new();
    if meta.is_dir() {
        let base = dst.trim_end_matches('/');
        walk(&source, base, &mut items).map_err(io)?;
    } else {
        let name = Path::new(src)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let image_path = if dst.ends_with('/') {
            format!("{dst}{name}")
        } else {
            dst.to_string()
        };
        items.push(HostItem {
            image_path,
            source,
            kind: ItemKind::File,
        });
    }
    Ok(items)
}

fn walk(dir: &Path, image_dir: &str, items: &mut Vec<HostItem>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let image_path = format!("{image_dir}/{name}");
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            items.push(HostItem {
                image_path,
                source: path,
                kind: ItemKind::Symlink(target),
            });
        } else if kind.is_dir() {
            items.push(HostItem {
                image_path: image_path.clone(),
                source: path.clone(),
                kind: ItemKind::Dir,
            });
            walk(&path, &image_path, items)?;
        } else if kind.is_file() {
            items.push(HostItem {
                image_path,
                source: path,
                kind: ItemKind::File,
            });
        }
    }
    Ok(())
}
