//! Files under `store/ingest/`: a blob being written, hashed as its bytes arrive. Each file
//! is created exclusively (mode 0600) and holds an exclusive `flock` for as long as a live
//! writer owns it, so `fsck` and `gc` can tell a write in progress (locked) from the
//! leftover of a killed process (the kernel dropped its lock). Dropped without being
//! published, the file is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::atomic_file as atomic;
use crate::digest::Digest;

/// A blob being written into `ingest/`.
pub(crate) struct Staging {
    path: PathBuf,
    file: Option<Flock<File>>,
    hasher: Sha256,
    size: u64,
    /// Bytes past this are refused as they arrive (a descriptor's size: a hostile source
    /// cannot fill the disk past what it announced).
    limit: Option<u64>,
}

impl Staging {
    pub(crate) fn create(ingest_dir: &Path, limit: Option<u64>) -> io::Result<Staging> {
        let path = ingest_dir.join(atomic::temp_name("blob"));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)?;
        let file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((_, errno)) => {
                let _ = fs::remove_file(&path);
                return Err(errno.into());
            }
        };
        Ok(Staging {
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            limit,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes written so far.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// fsyncs the bytes and returns the blob's digest and size; the file stays (locked)
    /// until [`Staged::publish`] or drop.
    pub(crate) fn finish(mut self) -> io::Result<Staged> {
        let file = self.file.take().expect("finished once");
        file.sync_all()?;
        Ok(Staged {
            path: std::mem::take(&mut self.path),
            file: Some(file),
            digest: Digest::from_hasher(std::mem::take(&mut self.hasher)),
            size: self.size,
        })
    }
}

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("blob already finished"))?;
        if let Some(limit) = self.limit
            && self.size + buf.len() as u64 > limit
        {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("more than the {limit} bytes its descriptor announced"),
            ));
        }
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A complete blob in `ingest/`, hashed and fsynced, not yet visible.
pub(crate) struct Staged {
    path: PathBuf,
    file: Option<Flock<File>>,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
}

impl Staged {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `target` (`blobs/sha256/<digest>`), unless a blob is already there
    /// (same name, same content: the other copy is kept). Returns whether it moved. The
    /// caller syncs the directory.
    pub(crate) fn publish(mut self, target: &Path) -> io::Result<bool> {
        let moved = if target.exists() {
            fs::remove_file(&self.path)?;
            false
        } else {
            fs::rename(&self.path, target)?;
            true
        };
        self.file = None;
        Ok(moved)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A file found in `ingest/` that no live writer holds: the leftover of a killed process.
pub(crate) fn is_leftover(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        // A symlink or something odd in ingest/ is not kiln's: a leftover to remove.
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Ok(true),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => Ok(true),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(false),
        Err((_, errno)) => Err(errno.into()),
    }
}
