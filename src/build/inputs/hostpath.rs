//! `host-path`: a file or a whole tree from the host, as is. Every symbolic link met while
//! resolving the path itself (its leading components and its last one) becomes a symlink
//! item and is followed, so `host-path "/lib/python3.11"` on a merged-/usr host gives the link
//! `/lib -> usr/lib` and the tree at `/usr/lib/python3.11`. Inside the tree links are kept as
//! links, never followed, wherever they point.

use super::resolve::HostRoot;
use super::tree::{self, AsIs};
use super::{HostItem, InputError, ItemKind, ItemSet};

/// Each path in `paths` (absolute, inside `host`), file or tree, with the links leading to
/// it, deduplicated by image path and sorted.
pub fn host_paths(paths: &[&str], host: &HostRoot) -> Result<Vec<HostItem>, InputError> {
    let mut items = ItemSet::default();
    for path in paths {
        let (physical, meta) = host.resolve(path, &mut items)?;
        let source = host.host_path(&physical);
        if meta.is_dir() {
            if physical.as_os_str() != "/" {
                items.insert(physical.clone(), source.clone(), ItemKind::Dir);
            }
            tree::add_tree(&source, &physical, &AsIs, &mut items)?;
        } else if meta.is_file() {
            items.insert(physical, source, ItemKind::File);
        } else {
            // A socket, pipe or device named directly: say so rather than skip it silently.
            return Err(InputError::UnsupportedFileType {
                path: (*path).to_owned(),
                kind: "special file",
            });
        }
    }
    items.into_items()
}
