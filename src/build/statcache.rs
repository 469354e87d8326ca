//! Content hashes of input files (blake3), remembered by their stat so unchanged files are
//! not read again: a no-op rebuild of a large context costs one `lstat` per file.
//!
//! Owns the stat cache record in the store (`kiln/stat/cache`). A file whose size, mtime,
//! ctime, inode or device changed is hashed again; a file modified within the last two
//! seconds is hashed but not remembered (its mtime may not have ticked yet: the racy-git
//! problem).

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError};

const NAMESPACE: &str = "stat";
const NAME: &str = "cache";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Remembered {
    stamp: Stamp,
    hash: String,
}

/// Thread-safe: steps hash their inputs in parallel.
#[derive(Debug, Default)]
pub struct StatCache {
    entries: Mutex<HashMap<PathBuf, Remembered>>,
    dirty: Mutex<bool>,
    hits: std::sync::atomic::AtomicU64,
    misses: std::sync::atomic::AtomicU64,
}

impl StatCache {
    /// Loads the cache from the store; a missing or unreadable record is an empty cache.
    pub fn load(store: &Store) -> StatCache {
        let entries = store
            .get_meta(NAMESPACE, NAME)
            .ok()
            .flatten()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        StatCache {
            entries: Mutex::new(entries),
            ..StatCache::default()
        }
    }

    /// Writes the cache back if anything was learnt.
    pub fn save(&self, store: &Store) -> Result<(), StoreError> {
        if !*self.dirty.lock().expect("stat cache lock") {
            return Ok(());
        }
        let entries = self.entries.lock().expect("stat cache lock");
        let bytes = serde_json::to_vec(&*entries).expect("the stat cache serializes");
        store.put_meta(NAMESPACE, NAME, &bytes)
    }

    /// The blake3 hex digest of a regular file's content.
    pub fn hash(&self, path: &Path) -> io::Result<String> {
        use std::sync::atomic::Ordering::Relaxed;
        let meta = std::fs::symlink_metadata(path)?;
        let stamp = Stamp::of(&meta);
        if let Some(known) = self.entries.lock().expect("stat cache lock").get(path)
            && known.stamp == stamp
        {
            self.hits.fetch_add(1, Relaxed);
            return Ok(known.hash.clone());
        }
        self.misses.fetch_add(1, Relaxed);
        let hash = hash_file(path)?;
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(i64::MAX);
        let settled = now_ns - stamp.mtime_ns > 2_000_000_000;
        if settled {
            self.entries.lock().expect("stat cache lock").insert(
                path.to_path_buf(),
                Remembered {
                    stamp,
                    hash: hash.clone(),
                },
            );
            *self.dirty.lock().expect("stat cache lock") = true;
        }
        Ok(hash)
    }

    /// (files answered from the cache, files read and hashed).
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}

/// blake3 of a file, memory-mapped reads for large files are not worth a dependency:
/// blake3's own buffered update is fast enough for the sizes of build inputs.
pub(crate) fn hash_file(path: &Path) -> io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    io::copy(&mut file, &mut hasher)?;
    Ok(hasher.finalize().to_hex().to_string())
}
