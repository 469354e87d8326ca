//! A tree as a tar stream, read through descriptors only: the top is an `O_PATH`
//! descriptor (found inside the container's root by `inroot`, or the user's host path),
//! every entry below it is opened relative to its directory's descriptor with
//! `O_NOFOLLOW`, one name at a time. A symbolic link is archived as a link, never
//! followed, so whatever the tree holds (a container's `/evil -> /etc`), nothing outside
//! it is read. Devices and FIFOs are archived as headers, never opened; sockets are left
//! out. Hard links become separate files.

use std::io::{self, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use super::CopyError;

/// `O_PATH` of `name` in `dir`, the name itself (a link is not followed).
pub(super) fn open_nofollow(dir: impl AsFd, name: &Path) -> nix::Result<OwnedFd> {
    openat(
        dir,
        name,
        OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

pub(super) fn kind(stat: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits())
}

/// Writes tar entries to an archive.
pub(super) struct Packer<W: Write> {
    builder: tar::Builder<W>,
    /// What the entries are named in errors.
    shown: String,
}

impl<W: Write> Packer<W> {
    pub(super) fn new(out: W, shown: &str) -> Packer<W> {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        Packer {
            builder,
            shown: shown.to_string(),
        }
    }

    fn err(&self, name: &Path, source: io::Error) -> CopyError {
        CopyError::Read {
            path: format!("{}/{}", self.shown.trim_end_matches('/'), name.display()),
            source,
        }
    }

    /// Archives the tree at `fd` (an `O_PATH` descriptor) as `name`; with `name` empty,
    /// only what a directory holds, each entry under its own name.
    pub(super) fn add(&mut self, fd: &OwnedFd, name: &Path) -> Result<(), CopyError> {
        let stat = fstat(fd).map_err(|e| self.err(name, e.into()))?;
        if name.as_os_str().is_empty() {
            if kind(&stat) != SFlag::S_IFDIR {
                return Err(self.err(name, io::Error::from(io::ErrorKind::NotADirectory)));
            }
            return self.children(fd, name);
        }
        self.node(fd, &stat, name)
    }

    fn header(stat: &FileStat, entry: tar::EntryType) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(entry);
        header.set_mode(stat.st_mode & 0o7777);
        header.set_uid(u64::from(stat.st_uid));
        header.set_gid(u64::from(stat.st_gid));
        header.set_mtime(u64::try_from(stat.st_mtime).unwrap_or(0));
        header.set_size(0);
        header
    }

    fn node(&mut self, fd: &OwnedFd, stat: &FileStat, name: &Path) -> Result<(), CopyError> {
        let kind = kind(stat);
        let wrap = |me: &Self, e: io::Error| me.err(name, e);
        match kind {
            SFlag::S_IFDIR => {
                let mut header = Self::header(stat, tar::EntryType::Directory);
                self.builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(|e| wrap(self, e))?;
                self.children(fd, name)
            }
            SFlag::S_IFREG => {
                // The very inode the descriptor names, opened for reading now that it is
                // known to be a regular file.
                let file = crate::inroot::reopen(fd.as_fd(), nix::libc::O_RDONLY)
                    .map_err(|e| wrap(self, e.into()))?;
                let mut header = Self::header(stat, tar::EntryType::Regular);
                header.set_size(u64::try_from(stat.st_size).unwrap_or(0));
                // A file that shrinks meanwhile must not make the archive lie about sizes.
                let reader = io::Read::take(file, header.size().unwrap_or(0));
                let mut padded = Padded {
                    inner: reader,
                    left: header.size().unwrap_or(0),
                };
                self.builder
                    .append_data(&mut header, name, &mut padded)
                    .map_err(|e| wrap(self, e))
            }
            SFlag::S_IFLNK => {
                let target = readlinkat(fd, "").map_err(|e| wrap(self, e.into()))?;
                let mut header = Self::header(stat, tar::EntryType::Symlink);
                self.builder
                    .append_link(&mut header, name, Path::new(&target))
                    .map_err(|e| wrap(self, e))
            }
            SFlag::S_IFIFO | SFlag::S_IFCHR | SFlag::S_IFBLK => {
                let entry = match kind {
                    SFlag::S_IFIFO => tar::EntryType::Fifo,
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    _ => tar::EntryType::Block,
                };
                let mut header = Self::header(stat, entry);
                let rdev = stat.st_rdev;
                header
                    .set_device_major(nix::libc::major(rdev))
                    .map_err(|e| wrap(self, e))?;
                header
                    .set_device_minor(nix::libc::minor(rdev))
                    .map_err(|e| wrap(self, e))?;
                self.builder
                    .append_data(&mut header, name, io::empty())
                    .map_err(|e| wrap(self, e))
            }
            // Sockets: nothing a copy can make of them.
            _ => Ok(()),
        }
    }

    /// The entries of directory `fd`, sorted, each as `prefix/NAME`.
    fn children(&mut self, fd: &OwnedFd, prefix: &Path) -> Result<(), CopyError> {
        let dir = crate::inroot::reopen(fd.as_fd(), nix::libc::O_RDONLY | nix::libc::O_DIRECTORY)
            .map_err(|e| self.err(prefix, e.into()))?;
        let listing = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&dir));
        let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&listing)
            .map_err(|e| self.err(prefix, e))?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(prefix, e))?;
        names.sort();
        for child in names {
            let name = prefix.join(&child);
            let child_fd = match open_nofollow(&dir, Path::new(&child)) {
                Ok(fd) => fd,
                // Gone meanwhile (a running container changes its files).
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(e) => return Err(self.err(&name, e.into())),
            };
            let stat = fstat(&child_fd).map_err(|e| self.err(&name, e.into()))?;
            self.node(&child_fd, &stat, &name)?;
        }
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<W, CopyError> {
        self.builder.finish().map_err(|source| CopyError::Read {
            path: self.shown.clone(),
            source,
        })?;
        self.builder.into_inner().map_err(|source| CopyError::Read {
            path: self.shown,
            source,
        })
    }
}

/// A file's content, zero-filled up to the size its header announced (a file that
/// shrank while it was read).
struct Padded<R> {
    inner: R,
    left: u64,
}

impl<R: io::Read> io::Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}
