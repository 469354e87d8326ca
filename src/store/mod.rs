//! The content store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`)
//! under `$KILN_ROOT/store`, plus the lock that makes concurrent kiln processes safe.
//!
//! Owns blobs and tags. Every write goes ingest → commit → read: bytes stream into a
//! temporary file under `ingest/` while being hashed, the file is fsynced and renamed to its
//! digest, and only then can anyone see it. A crash leaves at most stray ingest files,
//! which `gc` removes. It knows nothing of images beyond the descriptors it must follow to
//! check references (`fsck`) and to keep what is reachable (`gc`).

mod lock;
mod maintenance;
mod meta;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::atomic_file;
use crate::digest::Digest;

pub use lock::StoreLock;
pub use maintenance::{GcReport, Problem};
pub use meta::{CACHE, CacheEntry};

/// The annotation OCI layouts use to name a manifest (a tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("store I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the store")]
    #[diagnostic(help("rebuild or pull the image; `kiln fsck` checks the whole store"))]
    MissingBlob { digest: Digest },
    #[error("blob {expected} is corrupt: its content hashes to {actual}")]
    #[diagnostic(help("run `kiln fsck` for a full check, then rebuild"))]
    CorruptBlob { expected: Digest, actual: Digest },
    #[error("{} is not a valid OCI index", path.display())]
    BadIndex {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An OCI content descriptor. Annotations are a sorted map, so serialization is stable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// `index.json`: the layout's list of named manifests.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    #[serde(rename = "schemaVersion")]
    schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    media_type: Option<String>,
    manifests: Vec<Descriptor>,
}

impl Default for Index {
    fn default() -> Self {
        Index {
            schema_version: 2,
            media_type: Some(MEDIA_INDEX.to_string()),
            manifests: Vec::new(),
        }
    }
}

/// A store rooted at a directory (normally `$KILN_ROOT/store`).
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens the store, creating an empty layout if there is none.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        for dir in [store.root.join("blobs/sha256"), store.root.join("ingest")] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        let layout = store.root.join("oci-layout");
        if !layout.exists() {
            atomic_file::write_durably(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)
                .map_err(io_err(&layout))?;
        }
        let index = store.root.join("index.json");
        if !index.exists() {
            let _guard = store.lock_index()?;
            if !index.exists() {
                store.write_index(&Index::default())?;
            }
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Keeps `gc` away: a build holds this from its first blob until its tags are set, so
    /// nothing it wrote is collected before it is referenced. Many holders at once are fine.
    pub fn lock_shared(&self) -> Result<StoreLock, StoreError> {
        lock::acquire(&self.root.join("gc.lock"), false)
    }

    /// Excludes every writer: `gc` holds it.
    pub fn lock_gc(&self) -> Result<StoreLock, StoreError> {
        lock::acquire(&self.root.join("gc.lock"), true)
    }

    /// Serializes read-modify-write of `index.json`. Separate from the gc lock so that a
    /// process holding the shared gc lock can still set tags without deadlocking itself.
    fn lock_index(&self) -> Result<StoreLock, StoreError> {
        lock::acquire(&self.root.join("index.lock"), true)
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn contains(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Starts writing a blob; call [`Ingest::commit`] to publish it.
    pub fn ingest(&self) -> Result<Ingest, StoreError> {
        let path = self
            .root
            .join("ingest")
            .join(atomic_file::temp_name("blob"));
        let lock = self.lock_shared()?;
        let file = File::create(&path).map_err(io_err(&path))?;
        Ok(Ingest {
            store: self.clone(),
            path,
            file: Some(file),
            hasher: Sha256::new(),
            size: 0,
            _lock: lock,
        })
    }

    /// Writes a whole blob from memory.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::of(bytes);
        if self.contains(&digest) {
            return Ok((digest, bytes.len() as u64));
        }
        let mut ingest = self.ingest()?;
        ingest
            .write_all(bytes)
            .map_err(io_err(&self.root.join("ingest")))?;
        ingest.commit()
    }

    /// Opens a blob for reading (not verified: use [`Store::read`] for small blobs).
    pub fn open_blob(&self, digest: &Digest) -> Result<File, StoreError> {
        let path = self.blob_path(digest);
        File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob {
                digest: digest.clone(),
            },
            _ => StoreError::Io { path, source },
        })
    }

    /// Reads a whole blob and verifies its digest.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut bytes)
            .map_err(io_err(&self.blob_path(digest)))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(StoreError::CorruptBlob {
                expected: digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn read_index(&self) -> Result<Index, StoreError> {
        let path = self.root.join("index.json");
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| StoreError::BadIndex { path, source })
    }

    fn write_index(&self, index: &Index) -> Result<(), StoreError> {
        let path = self.root.join("index.json");
        let mut bytes = serde_json::to_vec_pretty(index).expect("an index serializes");
        bytes.push(b'\n');
        atomic_file::write_durably(&path, &bytes).map_err(io_err(&path))
    }

    /// Every tag and the manifest it names, sorted by tag.
    pub fn tags(&self) -> Result<BTreeMap<String, Descriptor>, StoreError> {
        Ok(self
            .read_index()?
            .manifests
            .into_iter()
            .filter_map(|d| d.annotations.get(REF_NAME).cloned().map(|name| (name, d)))
            .collect())
    }

    pub fn tag(&self, name: &str) -> Result<Option<Descriptor>, StoreError> {
        Ok(self.tags()?.remove(name))
    }

    /// Points `name` at a manifest (which must be in the store), replacing any previous one.
    pub fn set_tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        if !self.contains(&manifest.digest) {
            return Err(StoreError::MissingBlob {
                digest: manifest.digest.clone(),
            });
        }
        let _guard = self.lock_index()?;
        let mut index = self.read_index()?;
        let mut descriptor = manifest.clone();
        descriptor
            .annotations
            .insert(REF_NAME.to_string(), name.to_string());
        if index.manifests.contains(&descriptor) {
            return Ok(()); // already so: no rewrite, no fsync
        }
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        index.manifests.push(descriptor);
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(REF_NAME)
                .cmp(&b.annotations.get(REF_NAME))
        });
        self.write_index(&index)
    }

    /// Removes a tag; returns whether it existed. The blobs stay until `gc`.
    pub fn remove_tag(&self, name: &str) -> Result<bool, StoreError> {
        let _guard = self.lock_index()?;
        let mut index = self.read_index()?;
        let before = index.manifests.len();
        index
            .manifests
            .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        let removed = index.manifests.len() != before;
        if removed {
            self.write_index(&index)?;
        }
        Ok(removed)
    }
}

/// A blob being written: bytes are hashed as they arrive; nothing is visible until commit.
/// Dropped without commit, the temporary file is removed.
pub struct Ingest {
    store: Store,
    path: PathBuf,
    file: Option<File>,
    hasher: Sha256,
    size: u64,
    /// `gc` removes files under `ingest/` only when no writer holds this.
    _lock: StoreLock,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| io::Error::other("ingest already committed"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Ingest {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// fsyncs the data, moves it to `blobs/sha256/<digest>` and makes the rename durable.
    pub fn commit(mut self) -> Result<(Digest, u64), StoreError> {
        let file = self.file.take().expect("committed once");
        file.sync_all().map_err(io_err(&self.path))?;
        drop(file);
        let digest = Digest::from_hasher(std::mem::take(&mut self.hasher));
        let target = self.store.blob_path(&digest);
        if target.exists() {
            // Same content already committed (by us or a concurrent build): keep that one.
            fs::remove_file(&self.path).map_err(io_err(&self.path))?;
        } else {
            fs::rename(&self.path, &target).map_err(io_err(&target))?;
            let dir = target.parent().expect("blobs/sha256");
            atomic_file::sync_dir(dir).map_err(io_err(dir))?;
        }
        Ok((digest, self.size))
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests;
