//! Resolving archive paths inside an extraction root without ever leaving it. Symlinks met
//! on the way are followed only while they stay inside the root: an absolute target, or a
//! relative one whose `..` climbs above the root, is an error. The result names a real
//! directory (no symlink below the root), so creating a name inside it cannot escape.

use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The depth of symlink chains followed before giving up (Linux's own limit).
const MAX_SYMLINK_HOPS: usize = 40;

/// Why a path cannot be used; the extractor names the entry around it.
#[derive(Debug)]
pub(super) enum Refusal {
    Unsafe(String),
    Io(io::Error),
}

/// The components of a raw archive path: empty and `.` parts dropped; an absolute path or a
/// `..` part is refused.
pub(super) fn components(raw: &[u8]) -> Result<Vec<OsString>, Refusal> {
    if raw.first() == Some(&b'/') {
        return Err(Refusal::Unsafe("absolute paths are not allowed".into()));
    }
    let mut parts = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(Refusal::Unsafe("`..` components are not allowed".into())),
            name => parts.push(OsString::from_vec(name.to_vec())),
        }
    }
    Ok(parts)
}

/// What to do with a parent directory that does not exist.
pub(super) enum Missing<'a> {
    /// Create it (mode 0755) and record its path.
    Create(&'a mut Vec<PathBuf>),
    /// Stop and return `None`.
    Stop,
}

/// The real directory that `parts` (relative to `root`) names, following symlinks only
/// inside `root`. `None` when a part does not exist and `missing` is `Stop`.
pub(super) fn resolve_dir(
    root: &Path,
    parts: &[OsString],
    mut missing: Missing<'_>,
) -> Result<Option<PathBuf>, Refusal> {
    let mut resolved: Vec<OsString> = Vec::new();
    let mut pending: VecDeque<OsString> = parts.iter().cloned().collect();
    let mut hops = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            // Only symlink targets bring `..` here (archive paths cannot hold it).
            if resolved.pop().is_none() {
                return Err(Refusal::Unsafe(format!(
                    "a symlink on its path leads outside the extraction root (at `{}`)",
                    display(&resolved, &part)
                )));
            }
            continue;
        }
        let mut candidate = join(root, &resolved);
        candidate.push(&part);
        let meta = match fs::symlink_metadata(&candidate) {
            Ok(meta) => meta,
            Err(error) if error.kind() == io::ErrorKind::NotFound => match &mut missing {
                Missing::Stop => return Ok(None),
                Missing::Create(created) => {
                    fs::DirBuilder::new()
                        .mode(0o755)
                        .create(&candidate)
                        .map_err(Refusal::Io)?;
                    // The umask may have removed bits; parents we invent are exactly 0755.
                    fs::set_permissions(&candidate, fs::Permissions::from_mode(0o755))
                        .map_err(Refusal::Io)?;
                    created.push(candidate);
                    resolved.push(part);
                    continue;
                }
            },
            Err(error) => return Err(Refusal::Io(error)),
        };
        if meta.is_dir() {
            resolved.push(part);
        } else if meta.file_type().is_symlink() {
            hops += 1;
            if hops > MAX_SYMLINK_HOPS {
                return Err(Refusal::Unsafe("too many levels of symbolic links".into()));
            }
            let target = fs::read_link(&candidate).map_err(Refusal::Io)?;
            let name = display(&resolved, &part);
            let bytes = target.as_os_str().as_bytes();
            if bytes.first() == Some(&b'/') {
                return Err(Refusal::Unsafe(format!(
                    "its parent `{name}` is a symlink to `{}`, outside the extraction root",
                    target.display()
                )));
            }
            for link_part in bytes.split(|&b| b == b'/').rev() {
                match link_part {
                    b"" | b"." => {}
                    other => pending.push_front(OsStr::from_bytes(other).to_os_string()),
                }
            }
            // A `..` that climbs above the root is caught above; name the symlink in it.
            if climbs_out(&resolved, bytes) {
                return Err(Refusal::Unsafe(format!(
                    "its parent `{name}` is a symlink to `{}`, outside the extraction root",
                    target.display()
                )));
            }
        } else {
            return Err(Refusal::Unsafe(format!(
                "its parent `{}` is not a directory",
                display(&resolved, &part)
            )));
        }
    }
    Ok(Some(join(root, &resolved)))
}

/// Whether the relative symlink `target`, read in the directory `resolved`, rises above
/// the root.
fn climbs_out(resolved: &[OsString], target: &[u8]) -> bool {
    let mut depth = resolved.len() as isize;
    for part in target.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut path = root.to_path_buf();
    path.extend(parts);
    path
}

fn display(resolved: &[OsString], part: &OsStr) -> String {
    let mut path = PathBuf::new();
    path.extend(resolved);
    path.push(part);
    path.to_string_lossy().into_owned()
}
