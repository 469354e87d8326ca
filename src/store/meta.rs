//! kiln's own small records beside the OCI layout, under `store/kiln/<namespace>/<name>`:
//! the build cache (step key → layer), the last build of each image (for `kiln explain`),
//! the stat cache. Each record is replaced atomically; the store does not interpret them,
//! except that cache records name layers `gc` must keep.

use std::fs;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Descriptor, Store, StoreError, io_err};
use crate::atomic_file;
use crate::digest::Digest;

/// Namespace of the build cache records.
pub const CACHE: &str = "cache";

/// What a cached layer step produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub layer: Descriptor,
    pub diff_id: Digest,
}

impl Store {
    fn meta_path(&self, namespace: &str, name: &str) -> PathBuf {
        self.root.join("kiln").join(namespace).join(name)
    }

    /// Reads a record; `None` if there is none.
    pub fn get_meta(&self, namespace: &str, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.meta_path(namespace, name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(io_err(&path)(err)),
        }
    }

    /// Replaces a record atomically.
    pub fn put_meta(&self, namespace: &str, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.meta_path(namespace, name);
        let dir = path.parent().expect("records live in a namespace");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        atomic_file::write_durably(&path, bytes).map_err(io_err(&path))
    }

    pub fn remove_meta(&self, namespace: &str, name: &str) -> Result<bool, StoreError> {
        let path = self.meta_path(namespace, name);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(io_err(&path)(err)),
        }
    }

    /// The names of a namespace's records, sorted (temporary files left out).
    pub fn list_meta(&self, namespace: &str) -> Result<Vec<String>, StoreError> {
        let dir = self.root.join("kiln").join(namespace);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_err(&dir)(err)),
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    pub fn cache_get(&self, key: &str) -> Result<Option<CacheEntry>, StoreError> {
        let Some(bytes) = self.get_meta(CACHE, key)? else {
            return Ok(None);
        };
        // A record that does not parse, or whose layer is gone, is a miss, not an error:
        // the step is rebuilt and the record replaced.
        Ok(serde_json::from_slice::<CacheEntry>(&bytes)
            .ok()
            .filter(|entry| self.contains(&entry.layer.digest)))
    }

    pub fn cache_put(&self, key: &str, entry: &CacheEntry) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(entry).expect("a cache entry serializes");
        self.put_meta(CACHE, key, &bytes)
    }

    /// The layers the build cache refers to: roots for `gc` and `fsck`.
    pub fn cache_roots(&self) -> Result<Vec<Descriptor>, StoreError> {
        let mut roots = Vec::new();
        for name in self.list_meta(CACHE)? {
            if let Some(bytes) = self.get_meta(CACHE, &name)?
                && let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes)
            {
                roots.push(entry.layer);
            }
        }
        Ok(roots)
    }

    /// Every build cache entry that parses, by key.
    pub fn cache_entries(&self) -> Result<Vec<(String, CacheEntry)>, StoreError> {
        let mut entries = Vec::new();
        for name in self.list_meta(CACHE)? {
            if let Some(bytes) = self.get_meta(CACHE, &name)?
                && let Ok(entry) = serde_json::from_slice::<CacheEntry>(&bytes)
            {
                entries.push((name, entry));
            }
        }
        Ok(entries)
    }

    /// Forgets one build cache entry (its layer becomes collectable unless an image has it).
    pub fn cache_remove(&self, key: &str) -> Result<bool, StoreError> {
        self.remove_meta(CACHE, key)
    }

    /// Forgets the whole build cache (its layers become collectable).
    pub fn cache_clear(&self) -> Result<usize, StoreError> {
        let names = self.list_meta(CACHE)?;
        for name in &names {
            self.remove_meta(CACHE, name)?;
        }
        Ok(names.len())
    }
}
