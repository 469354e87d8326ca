//! The library directories a host root configures in `/etc/ld.so.conf`, in file order,
//! following `include` lines (glob patterns in their last component, matches taken in sorted
//! order like glibc's ldconfig; relative patterns are relative to the including file's
//! directory). `hwcap` lines and comments are ignored.
//!
//! We read the configuration rather than `/etc/ld.so.cache`: it is plain text, exists in a
//! fake root as easily as in a real one, and is never stale. The cost is that a library
//! installed without running ldconfig is found here although the real loader would miss it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use globset::GlobBuilder;

use super::resolve::{Follow, HostRoot};
use super::{InputError, error::io_err};

/// Includes nested deeper than this are a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

/// The directories of `/etc/ld.so.conf` under `root`; none when the file does not exist.
pub(crate) fn configured_dirs(root: &HostRoot) -> Result<Vec<PathBuf>, InputError> {
    let mut dirs = Vec::new();
    read_conf(root, Path::new("/etc/ld.so.conf"), 0, &mut dirs)?;
    Ok(dirs)
}

fn read_conf(
    root: &HostRoot,
    file: &Path,
    depth: usize,
    dirs: &mut Vec<PathBuf>,
) -> Result<(), InputError> {
    if depth > MAX_INCLUDE_DEPTH {
        return Ok(());
    }
    let Some(host) = existing(root, file)? else {
        return Ok(());
    };
    let text = match fs::read(&host) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => return Ok(()),
        Err(e) => return Err(io_err(&host)(e)),
    };
    let here = file.parent().unwrap_or(Path::new("/"));
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("include") => {
                for pattern in words {
                    for included in expand_include(root, &here.join(pattern))? {
                        read_conf(root, &included, depth + 1, dirs)?;
                    }
                }
            }
            Some("hwcap") => {}
            _ => {
                let dir = line.trim_end_matches('/');
                let dir = if dir.is_empty() { "/" } else { dir };
                // libc5-era "dir=TYPE" lines: the type is irrelevant today.
                let dir = dir.split('=').next().unwrap_or(dir);
                let dir = PathBuf::from(dir);
                if dir.is_absolute() && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
    }
    Ok(())
}

/// The files an include pattern names, sorted; the glob is matched in the last component.
fn expand_include(root: &HostRoot, pattern: &Path) -> Result<Vec<PathBuf>, InputError> {
    let (Some(dir), Some(name)) = (pattern.parent(), pattern.file_name()) else {
        return Ok(Vec::new());
    };
    let name = name.to_string_lossy();
    if !name.contains(['*', '?', '[']) {
        return Ok(vec![pattern.to_path_buf()]);
    }
    let Ok(glob) = GlobBuilder::new(&name).literal_separator(true).build() else {
        return Ok(Vec::new());
    };
    let matcher = glob.compile_matcher();
    let Some(host_dir) = existing(root, dir)? else {
        return Ok(Vec::new());
    };
    let entries = match fs::read_dir(&host_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&host_dir)(e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(&host_dir))?;
        let file_name = entry.file_name();
        // Like glob(3), a leading dot must be matched explicitly.
        if matcher.is_match(&file_name) && !file_name.to_string_lossy().starts_with('.') {
            names.push(file_name);
        }
    }
    names.sort();
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// The host path of `rooted` resolved inside the root, if it exists.
fn existing(root: &HostRoot, rooted: &Path) -> Result<Option<PathBuf>, InputError> {
    Ok(root
        .try_resolve(Path::new("/"), rooted, Follow::All)?
        .ok()
        .map(|found| root.host_path(&found.path)))
}
