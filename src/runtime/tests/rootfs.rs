//! A tiny root filesystem copied from the host: a few binaries with the shared libraries
//! `ldd` names, at their host paths, and the merged-/usr symlinks (/bin → usr/bin, …) as
//! the host has them.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Copies `binaries` (host paths) and their library closure into `root`.
pub(super) fn host_rootfs(root: &Path, binaries: &[&str]) {
    for top in ["bin", "sbin", "lib", "lib64"] {
        if let Ok(target) = fs::read_link(Path::new("/").join(top)) {
            fs::create_dir_all(root.join(&target)).unwrap();
            symlink(&target, root.join(top)).unwrap();
        }
    }
    for binary in binaries {
        copy_at_same_path(root, Path::new(binary));
        for library in libraries(binary) {
            copy_at_same_path(root, &library);
        }
    }
}

/// The absolute paths in `ldd`'s answer: libraries and the ELF interpreter.
fn libraries(binary: &str) -> Vec<PathBuf> {
    let output = Command::new("ldd").arg(binary).output().expect("ldd runs");
    assert!(output.status.success(), "ldd {binary} failed");
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
        .map(PathBuf::from)
        .collect()
}

fn copy_at_same_path(root: &Path, path: &Path) {
    let destination = root.join(path.strip_prefix("/").unwrap());
    fs::create_dir_all(destination.parent().unwrap()).unwrap();
    fs::copy(path, &destination)
        .unwrap_or_else(|e| panic!("copy {} into the rootfs: {e}", path.display()));
}
