//! `copy SRC DST from="IMAGE"`: picks files out of another image's flattened root
//! filesystem. Paths are resolved inside that root (an absolute symlink target means the
//! image's `/`, `..` stops at its root), so nothing outside it is ever read.

use std::path::{Component, Path, PathBuf};

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
        }
    }
    Ok(())
}
