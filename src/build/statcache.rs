//! Content hashes of input files (blake3), remembered by their stat so unchanged files are
//! not read again: a no-op rebuild of a large context costs one `lstat` per file.
//!
//! Owns the stat cache record in the store (`kiln/stat/cache`), a compact binary file:
//! a magic line, then per entry the path length (u32 LE), the path bytes, the stamp (size,
//! mtime, ctime, inode, device: 5 × u64/i64 LE) and the 32-byte hash. The loaded entries are
//! read without a lock; what a build learns goes to a separate map merged on `save`.
//!
//! A file whose size, mtime, ctime, inode or device changed is hashed again; a file modified
//! within the last two seconds is hashed but not remembered (its mtime may not have ticked
//! yet: the racy-git problem).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::store::{Store, StoreError};

const NAMESPACE: &str = "stat";
const NAME: &str = "cache";
const MAGIC: &[u8] = b"kiln-stat-cache-v2\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    ino: u64,
    dev: u64,
}

impl Stamp {
    fn of(meta: &Metadata) -> Stamp {
        Stamp {
            size: meta.size(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            ino: meta.ino(),
            dev: meta.dev(),
        }
    }
}

type Entries = HashMap<PathBuf, (Stamp, [u8; 32])>;

/// Thread-safe: steps hash their inputs in parallel.
#[derive(Debug, Default)]
pub struct StatCache {
    /// What the last builds learnt: read-only here, so lookups take no lock.
    known: Entries,
    learnt: Mutex<Entries>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl StatCache {
    /// Loads the cache from the store; a missing or unreadable record is an empty cache.
    pub fn load(store: &Store) -> StatCache {
        let known = store
            .get_meta(NAMESPACE, NAME)
            .ok()
            .flatten()
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        StatCache {
            known,
            ..StatCache::default()
        }
    }

    /// Writes the cache back if anything was learnt.
    pub fn save(&self, store: &Store) -> Result<(), StoreError> {
        let learnt = self.learnt.lock().expect("stat cache lock");
        if learnt.is_empty() {
            return Ok(());
        }
        let mut all: Vec<(&PathBuf, &(Stamp, [u8; 32]))> = self
            .known
            .iter()
            .filter(|(path, _)| !learnt.contains_key(*path))
            .chain(learnt.iter())
            .collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        store.put_meta(NAMESPACE, NAME, &encode(&all))
    }

    /// The blake3 hex digest of a regular file's content.
    pub fn hash(&self, path: &Path) -> io::Result<String> {
        let meta = std::fs::symlink_metadata(path)?;
        self.hash_with(path, &meta)
    }

    /// As [`hash`](Self::hash), with the file's `lstat` already in hand.
    pub fn hash_with(&self, path: &Path, meta: &Metadata) -> io::Result<String> {
        let stamp = Stamp::of(meta);
        if let Some((known, hash)) = self.known.get(path)
            && *known == stamp
        {
            self.hits.fetch_add(1, Relaxed);
            return Ok(hex(hash));
        }
        // Learnt earlier in this build (a file two steps share).
        if let Some((known, hash)) = self.learnt.lock().expect("stat cache lock").get(path)
            && *known == stamp
        {
            self.hits.fetch_add(1, Relaxed);
            return Ok(hex(hash));
        }
        self.misses.fetch_add(1, Relaxed);
        let hash = hash_file_bytes(path)?;
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or(i64::MAX);
        if now_ns - stamp.mtime_ns > 2_000_000_000 {
            self.learnt
                .lock()
                .expect("stat cache lock")
                .insert(path.to_path_buf(), (stamp, hash));
        }
        Ok(hex(&hash))
    }

    /// (files answered from the cache, files read and hashed).
    pub fn counts(&self) -> (u64, u64) {
        (self.hits.load(Relaxed), self.misses.load(Relaxed))
    }
}

fn hex(hash: &[u8; 32]) -> String {
    blake3::Hash::from(*hash).to_hex().to_string()
}

fn encode(entries: &[(&PathBuf, &(Stamp, [u8; 32]))]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + entries.len() * 128);
    out.extend_from_slice(MAGIC);
    for (path, (stamp, hash)) in entries {
        let bytes = path.as_os_str().as_bytes();
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
        out.extend_from_slice(&stamp.size.to_le_bytes());
        out.extend_from_slice(&stamp.mtime_ns.to_le_bytes());
        out.extend_from_slice(&stamp.ctime_ns.to_le_bytes());
        out.extend_from_slice(&stamp.ino.to_le_bytes());
        out.extend_from_slice(&stamp.dev.to_le_bytes());
        out.extend_from_slice(hash.as_slice());
    }
    out
}

/// `None` for anything that is not a whole, well-formed record (an older format, a torn
/// file): the cache then starts empty.
fn decode(bytes: &[u8]) -> Option<Entries> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut entries = Entries::new();
    let take = |n: usize, rest: &mut &[u8]| -> Option<Vec<u8>> {
        if rest.len() < n {
            return None;
        }
        let (head, tail) = rest.split_at(n);
        *rest = tail;
        Some(head.to_vec())
    };
    let u64_of = |b: Vec<u8>| u64::from_le_bytes(b.try_into().expect("8 bytes"));
    while !rest.is_empty() {
        let len = u32::from_le_bytes(take(4, &mut rest)?.try_into().ok()?) as usize;
        let path = PathBuf::from(OsStr::from_bytes(&take(len, &mut rest)?));
        let stamp = Stamp {
            size: u64_of(take(8, &mut rest)?),
            mtime_ns: u64_of(take(8, &mut rest)?) as i64,
            ctime_ns: u64_of(take(8, &mut rest)?) as i64,
            ino: u64_of(take(8, &mut rest)?),
            dev: u64_of(take(8, &mut rest)?),
        };
        let hash: [u8; 32] = take(32, &mut rest)?.try_into().ok()?;
        entries.insert(path, (stamp, hash));
    }
    Some(entries)
}

fn hash_file_bytes(path: &Path) -> io::Result<[u8; 32]> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    io::copy(&mut file, &mut hasher)?;
    Ok(*hasher.finalize().as_bytes())
}

/// blake3 hex digest of a file's content.
#[cfg(test)]
pub(crate) fn hash_file(path: &Path) -> io::Result<String> {
    Ok(hex(&hash_file_bytes(path)?))
}
