//! Lists a directory tree as items, as is: symbolic links inside it are kept as links (never
//! followed), sockets are skipped, and other special files are an error. A policy decides
//! what is left out and which links are acceptable; the tree's top is the caller's business.

use std::fs;
use std::os::unix::fs::FileTypeExt as _;
use std::path::Path;

use super::{InputError, ItemKind, ItemSet, error::io_err, show};

pub(crate) trait TreePolicy {
    /// Whether the entry at `rel` (relative to the tree's top) is left out, with everything
    /// under it.
    fn skip(&self, rel: &Path, is_dir: bool) -> bool;

    /// Checks a symbolic link at `rel` (relative to the tree's top) before it is kept.
    fn check_link(&self, rel: &Path, target: &Path) -> Result<(), InputError>;
}

/// Everything takes, every link is fine: `host-path`.
pub(crate) struct AsIs;

impl TreePolicy for AsIs {
    fn skip(&self, _: &Path, _: bool) -> bool {
        false
    }

    fn check_link(&self, _: &Path, _: &Path) -> Result<(), InputError> {
        Ok(())
    }
}

/// Adds the contents of the host directory `source` under the rooted image directory `image`.
pub(crate) fn add_tree(
    source: &Path,
    image: &Path,
    policy: &dyn TreePolicy,
    items: &mut ItemSet,
) -> Result<(), InputError> {
    visit(source, image, Path::new(""), policy, items)
}

fn visit(
    source: &Path,
    image: &Path,
    rel: &Path,
    policy: &dyn TreePolicy,
    items: &mut ItemSet,
) -> Result<(), InputError> {
    let mut entries = Vec::new();
    for entry in fs::read_dir(source).map_err(io_err(source))? {
        let entry = entry.map_err(io_err(source))?;
        let file_type = entry.file_type().map_err(io_err(&entry.path()))?;
        entries.push((entry.file_name(), file_type));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));

    for (name, file_type) in entries {
        let entry_source = source.join(&name);
        let entry_image = image.join(&name);
        let entry_rel = rel.join(&name);
        if policy.skip(&entry_rel, file_type.is_dir()) {
            continue;
        }
        if file_type.is_dir() {
            items.insert(entry_image.clone(), entry_source.clone(), ItemKind::Dir);
            visit(&entry_source, &entry_image, &entry_rel, policy, items)?;
        } else if file_type.is_file() {
            items.insert(entry_image, entry_source, ItemKind::File);
        } else if file_type.is_symlink() {
            let target = fs::read_link(&entry_source).map_err(io_err(&entry_source))?;
            policy.check_link(&entry_rel, &target)?;
            items.insert(entry_image, entry_source, ItemKind::Symlink(target));
        } else if file_type.is_socket() {
            // A socket is a live endpoint, not content: there is nothing to copy.
        } else {
            let kind = if file_type.is_fifo() {
                "named pipe"
            } else if file_type.is_char_device() {
                "character device"
            } else if file_type.is_block_device() {
                "block device"
            } else {
                "special file"
            };
            return Err(InputError::UnsupportedFileType {
                path: show(&entry_source),
                kind,
            });
        }
    }
    Ok(())
}
