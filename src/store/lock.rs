//! Whole-store locks (flock on `store/lock`). Writers of blobs and readers hold the shared
//! lock; `gc` and index rewrites hold the exclusive lock, so a blob is never collected while
//! a build that is about to reference it is running.

use std::fs::{File, OpenOptions};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use super::StoreError;

/// A held lock; released on drop.
pub struct StoreLock {
    _lock: Flock<File>,
}

pub(crate) fn acquire(path: &Path, exclusive: bool) -> Result<StoreLock, StoreError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let arg = if exclusive {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    let lock = Flock::lock(file, arg).map_err(|(_, errno)| StoreError::Io {
        path: path.to_path_buf(),
        source: errno.into(),
    })?;
    Ok(StoreLock { _lock: lock })
}
