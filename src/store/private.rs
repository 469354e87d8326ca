//! Private directories: the state root and the directories under it that hold image
//! content (the store, unpacked layers, containers' upper directories, volumes, scratch
//! space) are mode 0700, as containerd's and Podman's are. Layers may carry device nodes
//! (a `/dev/kmsg` twin, mode 0666), setuid programs and secrets; behind a private
//! directory no other user of the machine can reach them by path.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

/// The mode of kiln's private directories.
pub const PRIVATE_MODE: u32 = 0o700;

/// The directories under the state root that hold image content or what containers
/// write: the store, unpacked layers, containers (their upper directories), build scratch
/// space, volumes.
pub const PRIVATE_STATE_DIRS: [&str; 5] = ["store", "layers", "containers", "tmp", "volumes"];

/// Makes the state root and [`PRIVATE_STATE_DIRS`] private, creating them if missing and
/// narrowing the modes of existing ones (a root made by an older kiln was 0755).
pub fn make_state_root_private(root: &Path) -> io::Result<()> {
    make_private(root)?;
    for dir in PRIVATE_STATE_DIRS {
        make_private(&root.join(dir))?;
    }
    Ok(())
}

/// Creates `dir` (and missing parents, which keep the default mode) as a private
/// directory, or makes an existing one private. A symlink is followed (the state root may
/// be one, by the administrator's choice); anything but a directory is an error.
pub fn make_private(dir: &Path) -> io::Result<()> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            if meta.permissions().mode() & 0o7777 != PRIVATE_MODE {
                fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_MODE))?;
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::from(io::ErrorKind::NotADirectory)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                fs::create_dir_all(parent)?;
            }
            match fs::DirBuilder::new().mode(PRIVATE_MODE).create(dir) {
                Ok(()) => {}
                // Made by a concurrent kiln meanwhile: fix its mode below like any other.
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {}
                Err(err) => return Err(err),
            }
            // The umask cannot widen 0700, but it may narrow it.
            fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_MODE))
        }
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn new_and_existing_directories_become_private() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("a/b/root");
        make_private(&fresh).unwrap();
        assert_eq!(mode(&fresh), 0o700);
        let open = dir.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        make_private(&open).unwrap();
        assert_eq!(mode(&open), 0o700);
        let file = dir.path().join("file");
        fs::write(&file, "").unwrap();
        assert!(make_private(&file).is_err());
    }
}
