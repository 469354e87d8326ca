//! Opening a path beneath a directory without following any symbolic link on the way:
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` (Linux 5.6), or on older kernels one
//! `openat(O_NOFOLLOW)` per component. For trees an attacker may have shaped (an OCI layout
//! handed to `kiln import`, a directory extracted from an image): a symlink anywhere in the
//! path, an absolute path or a `..` is an error, never a way out.
//!
//! A leaf of the module graph: it knows file descriptors and nothing of images. (Paths
//! inside a container's root, where symlinks are followed *inside* the root, need
//! `RESOLVE_IN_ROOT` instead; that is not this module.)

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Component, Path};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::Mode;

/// What to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file, read-only. A FIFO or device is refused (opened non-blocking, so a
    /// FIFO cannot hang the caller).
    File,
    /// A directory (to change its metadata through the descriptor).
    Dir,
}

/// Opens `path` (relative, without `..`) beneath `dir`. A symlink in any component fails
/// with `ELOOP`; a `..` or absolute path with `EXDEV`; the wrong kind of file with
/// `EISDIR`/`ENOTDIR` (a FIFO or device as [`Kind::File`]: `EINVAL`).
pub fn open(dir: &File, path: &Path, kind: Kind) -> io::Result<File> {
    if path.is_absolute()
        || path
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::RootDir))
    {
        return Err(Errno::EXDEV.into());
    }
    let flags = match kind {
        Kind::File => OFlag::O_RDONLY | OFlag::O_NONBLOCK,
        Kind::Dir => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
    } | OFlag::O_NOFOLLOW
        | OFlag::O_CLOEXEC;
    let how = OpenHow::new().flags(flags).resolve(
        ResolveFlag::RESOLVE_BENEATH
            | ResolveFlag::RESOLVE_NO_SYMLINKS
            | ResolveFlag::RESOLVE_NO_MAGICLINKS,
    );
    let file = match openat2(dir.as_fd(), path, how) {
        Ok(fd) => File::from(fd),
        Err(Errno::ENOSYS) => walk(dir, path, flags)?,
        Err(errno) => return Err(errno.into()),
    };
    check_kind(file, kind)
}

/// The fallback for kernels without openat2: each directory component with
/// `O_NOFOLLOW | O_DIRECTORY`, the last with `flags` (which hold `O_NOFOLLOW`).
fn walk(dir: &File, path: &Path, flags: OFlag) -> io::Result<File> {
    let parts: Vec<&std::ffi::OsStr> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name),
            _ => None,
        })
        .collect();
    let Some((last, parents)) = parts.split_last() else {
        return Err(Errno::ENOENT.into());
    };
    let mut current: Option<File> = None;
    for part in parents {
        let base = current.as_ref().unwrap_or(dir);
        let next = openat(
            base.as_fd(),
            *part,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        current = Some(File::from(next));
    }
    let base = current.as_ref().unwrap_or(dir);
    Ok(File::from(openat(
        base.as_fd(),
        *last,
        flags,
        Mode::empty(),
    )?))
}

fn check_kind(file: File, kind: Kind) -> io::Result<File> {
    let meta = file.metadata()?;
    match kind {
        Kind::Dir if meta.is_dir() => Ok(file),
        Kind::Dir => Err(Errno::ENOTDIR.into()),
        Kind::File if meta.is_file() => {
            // Blocking reads from here on (O_NONBLOCK only kept a FIFO from hanging open).
            let flags = nix::fcntl::fcntl(&file, nix::fcntl::F_GETFL)?;
            let flags = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
            nix::fcntl::fcntl(&file, nix::fcntl::F_SETFL(flags))?;
            Ok(file)
        }
        Kind::File if meta.is_dir() => Err(Errno::EISDIR.into()),
        Kind::File => Err(Errno::EINVAL.into()),
    }
}

/// Whether [`open`] failed because nothing of that kind is at that path without a symlink
/// on the way (missing, a symlink, a non-directory parent), rather than for an I/O error.
pub fn not_there(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR | libc::EXDEV)
    )
}

/// Opens a directory the caller names (following links in its own path: the caller chose
/// it), as the base for [`open`].
pub fn open_root(path: &Path) -> io::Result<File> {
    let file = File::open(path)?;
    if !file.metadata()?.is_dir() {
        return Err(Errno::ENOTDIR.into());
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errno(result: io::Result<File>) -> Option<i32> {
        result.err().and_then(|e| e.raw_os_error())
    }

    #[test]
    fn symlinks_dotdot_and_odd_files_are_refused_on_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("blobs/sha256")).unwrap();
        std::fs::write(root.join("blobs/sha256/ok"), "ok").unwrap();
        std::fs::write(dir.path().join("secret"), "secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("blobs/sha256/abs"))
            .unwrap();
        std::os::unix::fs::symlink("ok", root.join("blobs/sha256/rel")).unwrap();
        std::os::unix::fs::symlink("blobs", root.join("via")).unwrap();
        nix::unistd::mkfifo(&root.join("fifo"), Mode::from_bits_truncate(0o600)).unwrap();
        let base = open_root(&root).unwrap();
        let cases: [(&str, Kind, Option<i32>); 8] = [
            ("blobs/sha256/ok", Kind::File, None),
            ("blobs/sha256/abs", Kind::File, Some(libc::ELOOP)),
            ("blobs/sha256/rel", Kind::File, Some(libc::ELOOP)),
            ("via/sha256/ok", Kind::File, Some(libc::ELOOP)),
            ("../secret", Kind::File, Some(libc::EXDEV)),
            ("fifo", Kind::File, Some(libc::EINVAL)),
            ("blobs", Kind::File, Some(libc::EISDIR)),
            ("blobs/sha256", Kind::Dir, None),
        ];
        for (path, kind, expected) in cases {
            assert_eq!(
                errno(open(&base, Path::new(path), kind)),
                expected,
                "{path}"
            );
            // The fallback walk refuses the same links (ELOOP, or ENOTDIR for a link
            // used as a directory).
            let flags = match kind {
                Kind::File => OFlag::O_RDONLY | OFlag::O_NONBLOCK,
                Kind::Dir => OFlag::O_RDONLY | OFlag::O_DIRECTORY,
            } | OFlag::O_NOFOLLOW;
            if expected.is_none() {
                assert!(walk(&base, Path::new(path), flags).is_ok(), "{path}");
            } else if expected == Some(libc::ELOOP) {
                let got = errno(walk(&base, Path::new(path), flags));
                assert!(
                    matches!(got, Some(libc::ELOOP | libc::ENOTDIR)),
                    "{path}: {got:?}"
                );
            }
        }
        assert_eq!(
            std::io::read_to_string(open(&base, Path::new("blobs/sha256/ok"), Kind::File).unwrap())
                .unwrap(),
            "ok"
        );
    }
}
