//! Files under `store/ingest/`: a blob being written, hashed as its bytes arrive. Each file
//! is created exclusively (mode 0600) and is covered by an exclusive `flock` for as long as
//! a live writer owns it, so `fsck` and `gc` can tell a write in progress (locked) from the
//! leftover of a killed process (the kernel dropped its lock). Dropped without being
//! published, the file is removed.
//!
//! A lone writer ([`super::Ingest`]) locks its own file. A transaction may stage hundreds of
//! blobs and must not hold a descriptor for each: it holds one lock file,
//! `.tx-<pid>-<n>.lock` (a [`Group`]), and its blobs are named `.tx-<pid>-<n>-<k>.tmp`, live
//! while that lock is held.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest as _, Sha256};

use crate::atomic_file as atomic;
use crate::digest::Digest;

const GROUP_PREFIX: &str = ".tx-";

fn create_exclusive(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

fn lock(file: &File, path: &Path) -> io::Result<Flock<File>> {
    match Flock::lock(file.try_clone()?, FlockArg::LockExclusiveNonblock) {
        Ok(locked) => Ok(locked),
        Err((_, errno)) => {
            let _ = fs::remove_file(path);
            Err(errno.into())
        }
    }
}

/// The lock a transaction's staged files live by.
pub(crate) struct Group {
    path: PathBuf,
    stem: String,
    next: AtomicU64,
    _lock: Flock<File>,
}

impl Group {
    pub(crate) fn create(ingest_dir: &Path) -> io::Result<Group> {
        let name = atomic::temp_name("tx");
        // `.tx-<pid>-<n>.tmp` → stem `.tx-<pid>-<n>`
        let stem = name.trim_end_matches(".tmp").to_string();
        let path = ingest_dir.join(format!("{stem}.lock"));
        let file = create_exclusive(&path)?;
        let locked = lock(&file, &path)?;
        Ok(Group {
            path,
            stem,
            next: AtomicU64::new(0),
            _lock: locked,
        })
    }

    fn member_path(&self, dir: &Path) -> PathBuf {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        dir.join(format!("{}-{k}.tmp", self.stem))
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// A blob being written into `ingest/`.
pub(crate) struct Staging {
    path: PathBuf,
    file: Option<File>,
    /// A lone writer's lock on its own file (a group member has none).
    lock: Option<Flock<File>>,
    hasher: Sha256,
    size: u64,
    /// Bytes past this are refused as they arrive (a descriptor's size: a hostile source
    /// cannot fill the disk past what it announced).
    limit: Option<u64>,
}

impl Staging {
    /// A new file in `ingest_dir`, locked by itself or covered by `group`.
    pub(crate) fn create(
        ingest_dir: &Path,
        limit: Option<u64>,
        group: Option<&Group>,
    ) -> io::Result<Staging> {
        let path = match group {
            Some(group) => group.member_path(ingest_dir),
            None => ingest_dir.join(atomic::temp_name("blob")),
        };
        let file = create_exclusive(&path)?;
        let lock = match group {
            Some(_) => None,
            None => Some(lock(&file, &path)?),
        };
        Ok(Staging {
            path,
            file: Some(file),
            lock,
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

    /// fsyncs the bytes and returns the blob's digest and size; the file stays (covered by
    /// its lock) until [`Staged::publish`] or drop. A group member's descriptor is closed.
    pub(crate) fn finish(mut self) -> io::Result<Staged> {
        let file = self.file.take().expect("finished once");
        file.sync_all()?;
        drop(file);
        Ok(Staged {
            path: std::mem::take(&mut self.path),
            live: true,
            _lock: self.lock.take(),
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
    live: bool,
    _lock: Option<Flock<File>>,
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
        self.live = false;
        Ok(moved)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if self.live {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// Whether the file at `path` is locked by a live process (nonexistent: not locked).
fn held(path: &Path) -> io::Result<bool> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        // A symlink or something odd in ingest/ is not kiln's: a leftover to remove.
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => return Ok(false),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(err),
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => Ok(false),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(true),
        Err((_, errno)) => Err(errno.into()),
    }
}

/// A file found in `ingest/` that no live writer holds: the leftover of a killed process.
pub(crate) fn is_leftover(path: &Path) -> io::Result<bool> {
    if fs::symlink_metadata(path).is_err() {
        return Ok(false); // gone meanwhile
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A transaction's blob lives by its group's lock file.
    if let Some(member) = name
        .strip_prefix(GROUP_PREFIX)
        .and_then(|rest| rest.strip_suffix(".tmp"))
        && let Some((stem, _k)) = member.rsplit_once('-')
    {
        let lock = path.with_file_name(format!("{GROUP_PREFIX}{stem}.lock"));
        return Ok(!held(&lock)?);
    }
    Ok(!held(path)?)
}
