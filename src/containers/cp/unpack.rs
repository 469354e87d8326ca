//! A tar stream written into a directory, every path resolved inside a root: the
//! container's root for `kiln cp … C:DIR` (its links followed as the container sees them,
//! never to the host), the destination directory itself for a copy out of a container (a
//! container's archive cannot reach past it). Each entry's parent is resolved with
//! `inroot` (`openat2(RESOLVE_IN_ROOT)`, missing directories made inside the root); the
//! entry itself is made with the `*at` call on that descriptor, never following a link
//! in its place (an existing file or link is replaced, a directory kept). An entry named
//! absolutely or with `..` is refused, and so are device nodes. Directories get their
//! mode and time once everything inside them is written.

use std::ffi::OsString;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstatat, futimens, mkdirat, mknodat};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};

use super::CopyError;
use super::pack::kind;
use crate::inroot::{How, Root};

/// Where and how entries are written.
pub(super) struct Unpacker<'a> {
    pub root: &'a Root,
    /// The directory inside `root` the entries are relative to.
    pub base: PathBuf,
    /// `-a`: the archive's uid and gid; otherwise the files are kiln's (root's).
    pub preserve_ownership: bool,
}

/// A directory's metadata, applied at the end.
struct DirMeta {
    path: PathBuf,
    mode: u32,
    mtime: u64,
    owner: Option<(u32, u32)>,
}

/// The components of an entry's raw path: `.` and empty parts dropped, an absolute path
/// or a `..` refused.
fn relative(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.first() == Some(&b'/') {
        return Err("an absolute path".into());
    }
    let mut path = PathBuf::new();
    for part in raw.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err("a `..` component".into()),
            name => path.push(OsString::from_vec(name.to_vec())),
        }
    }
    Ok(path)
}

fn time(seconds: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(seconds).unwrap_or(i64::MAX), 0)
}

impl Unpacker<'_> {
    fn shown(&self, path: &Path) -> String {
        self.base.join(path).display().to_string()
    }

    fn err(&self, path: &Path, source: impl Into<io::Error>) -> CopyError {
        CopyError::Write {
            path: self.shown(path),
            source: source.into(),
        }
    }

    /// Writes every entry of `tar`; the number of entries written.
    pub(super) fn unpack(&self, tar: impl Read) -> Result<u64, CopyError> {
        let mut archive = tar::Archive::new(tar);
        let mut dirs: Vec<DirMeta> = Vec::new();
        let mut count = 0;
        let entries = archive.entries().map_err(|e| self.err(Path::new(""), e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.err(Path::new(""), e))?;
            let raw = entry.path_bytes().into_owned();
            let path = relative(&raw).map_err(|reason| CopyError::BadEntry {
                entry: String::from_utf8_lossy(&raw).into_owned(),
                reason,
            })?;
            let Some(name) = path.file_name().map(ToOwned::to_owned) else {
                // The archive's own `./`: the destination is the caller's.
                continue;
            };
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644) & 0o7777;
            let mtime = header.mtime().unwrap_or(0);
            let owner = match self.preserve_ownership {
                true => Some((
                    u32::try_from(header.uid().unwrap_or(0)).unwrap_or(0),
                    u32::try_from(header.gid().unwrap_or(0)).unwrap_or(0),
                )),
                false => None,
            };
            let kind = header.entry_type();
            let parent_path = self.base.join(path.parent().unwrap_or(Path::new("")));
            let parent = self
                .root
                .resolve(&parent_path, How::DIR)
                .map_err(|e| CopyError::InRoot(Box::new(e)))?;
            let name = Path::new(&name);
            let existing = match fstatat(&parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => Some(stat),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(self.err(&path, e)),
            };
            let is_dir = |s: &FileStat| kind_of(s) == SFlag::S_IFDIR;
            if kind == tar::EntryType::Directory {
                match &existing {
                    Some(stat) if is_dir(stat) => {}
                    Some(_) => {
                        return Err(CopyError::Conflict {
                            path: self.shown(&path),
                            reason: "cannot overwrite a non-directory with a directory".into(),
                        });
                    }
                    None => mkdirat(&parent, name, Mode::from_bits_truncate(0o700))
                        .map_err(|e| self.err(&path, e))?,
                }
                dirs.push(DirMeta {
                    path: self.base.join(&path),
                    mode,
                    mtime,
                    owner,
                });
                count += 1;
                continue;
            }
            match &existing {
                Some(stat) if is_dir(stat) => {
                    return Err(CopyError::Conflict {
                        path: self.shown(&path),
                        reason: "cannot overwrite a directory with a non-directory".into(),
                    });
                }
                Some(_) => unlinkat(&parent, name, UnlinkatFlags::NoRemoveDir)
                    .map_err(|e| self.err(&path, e))?,
                None => {}
            }
            match kind {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let fd = openat(
                        &parent,
                        name,
                        OFlag::O_WRONLY
                            | OFlag::O_CREAT
                            | OFlag::O_EXCL
                            | OFlag::O_NOFOLLOW
                            | OFlag::O_CLOEXEC,
                        Mode::from_bits_truncate(0o600),
                    )
                    .map_err(|e| self.err(&path, e))?;
                    let mut file = std::fs::File::from(fd);
                    io::copy(&mut entry, &mut file).map_err(|e| self.err(&path, e))?;
                    self.finish_fd(file.as_fd(), mode, mtime, owner)
                        .map_err(|e| self.err(&path, e))?;
                }
                tar::EntryType::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| OsString::from_vec(t.into_owned()))
                        .unwrap_or_default();
                    symlinkat(target.as_os_str(), &parent, name).map_err(|e| self.err(&path, e))?;
                    if let Some((uid, gid)) = owner {
                        fchownat(
                            &parent,
                            name,
                            Some(Uid::from_raw(uid)),
                            Some(Gid::from_raw(gid)),
                            AtFlags::AT_SYMLINK_NOFOLLOW,
                        )
                        .map_err(|e| self.err(&path, e))?;
                    }
                }
                tar::EntryType::Link => {
                    let target = entry
                        .link_name_bytes()
                        .map(|t| t.into_owned())
                        .unwrap_or_default();
                    let target = relative(&target).map_err(|reason| CopyError::BadEntry {
                        entry: String::from_utf8_lossy(&raw).into_owned(),
                        reason: format!("a hard link to {reason}"),
                    })?;
                    let (target_parent, target_name) = self.existing_parent(&target)?;
                    linkat(
                        &target_parent,
                        target_name.as_path(),
                        &parent,
                        name,
                        AtFlags::empty(),
                    )
                    .map_err(|e| self.err(&path, e))?;
                }
                tar::EntryType::Fifo => {
                    mknodat(
                        &parent,
                        name,
                        SFlag::S_IFIFO,
                        Mode::from_bits_truncate(mode),
                        0,
                    )
                    .map_err(|e| self.err(&path, e))?;
                    let fd = super::pack::open_nofollow(&parent, name)
                        .map_err(|e| self.err(&path, e))?;
                    if let Some((uid, gid)) = owner {
                        let _ = fchownat(
                            &fd,
                            "",
                            Some(Uid::from_raw(uid)),
                            Some(Gid::from_raw(gid)),
                            AtFlags::AT_EMPTY_PATH,
                        );
                    }
                }
                other => {
                    return Err(CopyError::BadEntry {
                        entry: String::from_utf8_lossy(&raw).into_owned(),
                        reason: format!("kiln cp does not make {other:?} entries (devices)"),
                    });
                }
            }
            count += 1;
        }
        // Innermost first: a directory's time is set after what is written inside it.
        for dir in dirs.iter().rev() {
            let fd = self
                .root
                .resolve(&dir.path, How::EXISTING)
                .map_err(|e| CopyError::InRoot(Box::new(e)))?;
            let opened =
                crate::inroot::reopen(fd.as_fd(), nix::libc::O_RDONLY | nix::libc::O_DIRECTORY)
                    .map_err(|e| self.err(&dir.path, e))?;
            self.finish_fd(opened.as_fd(), dir.mode, dir.mtime, dir.owner)
                .map_err(|e| self.err(&dir.path, e))?;
        }
        Ok(count)
    }

    /// The directory holding `path` (relative to the base) and its last name, which must
    /// exist: a hard link's target.
    fn existing_parent(&self, path: &Path) -> Result<(OwnedFd, PathBuf), CopyError> {
        let name = path.file_name().ok_or_else(|| CopyError::BadEntry {
            entry: path.display().to_string(),
            reason: "a hard link to nothing".into(),
        })?;
        let parent = self
            .root
            .resolve(
                self.base.join(path.parent().unwrap_or(Path::new(""))),
                How::EXISTING,
            )
            .map_err(|e| CopyError::InRoot(Box::new(e)))?;
        Ok((parent, PathBuf::from(name)))
    }

    /// Ownership (with `-a`), then mode (after chown, which clears set-id bits), then time.
    fn finish_fd(
        &self,
        fd: std::os::fd::BorrowedFd<'_>,
        mode: u32,
        mtime: u64,
        owner: Option<(u32, u32)>,
    ) -> nix::Result<()> {
        if let Some((uid, gid)) = owner {
            fchown(fd, Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)))?;
        }
        fchmod(fd, Mode::from_bits_truncate(mode))?;
        futimens(fd, &time(mtime), &time(mtime))
    }
}

fn kind_of(stat: &FileStat) -> SFlag {
    kind(stat)
}

#[cfg(test)]
mod tests {
    use super::relative;
    use std::path::PathBuf;

    #[test]
    fn entry_paths_stay_relative() {
        assert_eq!(relative(b"./a/b/").unwrap(), PathBuf::from("a/b"));
        assert_eq!(relative(b"./").unwrap(), PathBuf::from(""));
        assert!(relative(b"/etc/passwd").is_err());
        assert!(relative(b"a/../../x").is_err());
        let _ = std::ffi::OsStr::new("");
    }
}
