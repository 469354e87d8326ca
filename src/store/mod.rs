//! The content store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`)
//! under `$KILN_ROOT/store`, plus the lock that makes concurrent kiln processes safe.
//!
//! Owns blobs and tags. Every write goes ingest → commit → read: bytes stream into a
//! temporary file under `ingest/` while being hashed, the file is fsynced and renamed to its
//! digest, and only then can anyone see it. It knows nothing of images beyond the
//! descriptors it must follow to check references (`fsck`), to keep what is reachable
//! (`gc`) and to verify a transaction.
//!
//! # Two ways in
//!
//! - **kiln's own content** (a build's layers, configs, manifests): [`Store::ingest`] and
//!   [`Store::put`] publish each blob as soon as it is complete; the build holds
//!   [`Store::lock_shared`] until it has set its tags, so `gc` cannot collect them in
//!   between.
//! - **content from outside** (`kiln import`, `kiln pull`): every archive and registry
//!   response is hostile, so it goes through a [`Transaction`]:
//!
//!   ```no_run
//!   # fn demo(store: &kiln::store::Store, layer: &kiln::store::Descriptor,
//!   #         manifest: &kiln::store::Descriptor, manifest_bytes: &[u8],
//!   #         mut body: impl std::io::Read) -> Result<(), Box<dyn std::error::Error>> {
//!   let tx = store.begin()?;                  // shared lock: gc waits
//!   if !tx.has(&layer.digest) {
//!       let mut w = tx.writer(Some(layer))?;  // staged in ingest/, hashed as it streams;
//!       std::io::copy(&mut body, &mut w)?;    // a byte past layer.size fails the write
//!       w.finish()?;                          // wrong digest or size: an error
//!   }
//!   tx.put(manifest_bytes, Some(manifest))?;
//!   tx.tag("web:1", manifest)?;
//!   tx.commit()?;   // checks every descriptor reachable from the tag (present, right
//!                   // size; manifests parse), then renames the blobs and rewrites
//!                   // index.json once
//!   # Ok(()) }
//!   ```
//!
//!   Nothing is visible before `commit`; an error anywhere (or a dropped transaction)
//!   leaves the store byte-identical, its staged files removed. Staged blobs nothing
//!   committed reaches are discarded. Writers may stream several blobs in parallel into
//!   one transaction (its methods take `&self`).
//!
//! # Leftovers
//!
//! Each ingest file is covered by an `flock` of its writer (its own, or for a transaction
//! one lock file for all its blobs, so a transaction of a thousand blobs holds one
//! descriptor, not a thousand), so a writer killed with SIGKILL leaves unlocked files:
//! `fsck` reports them (a write in progress stays locked and is not reported) and `gc`
//! removes them. The store's directories are private (0700): layers may hold
//! device nodes and setuid programs that no other user may reach through the store.

mod lock;
mod maintenance;
mod meta;
mod private;
pub mod references;
mod staging;
mod transaction;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic_file;
use crate::digest::Digest;

pub use lock::StoreLock;
pub use maintenance::{GcReport, Problem};
pub use meta::{CACHE, CacheEntry};
pub use private::{PRIVATE_MODE, PRIVATE_STATE_DIRS, make_private, make_state_root_private};
pub use transaction::{BlobWriter, Committed, Transaction};

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
    #[error("blob {digest} has {actual} bytes, its descriptor says {expected}")]
    #[diagnostic(help(
        "the source is corrupt or hostile; nothing was committed and the store is unchanged"
    ))]
    WrongSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("content does not match its digest {expected} (it hashes to {actual})")]
    #[diagnostic(help(
        "the source is corrupt or hostile; nothing was committed and the store is unchanged"
    ))]
    WrongDigest { expected: Digest, actual: Digest },
    #[error("blob {digest} is missing (referenced by {referenced_by})")]
    #[diagnostic(help(
        "the source lacks a blob its manifest names; nothing was committed and the store is unchanged"
    ))]
    MissingReference {
        digest: Digest,
        referenced_by: String,
    },
    #[error("blob {digest} is not a valid manifest or index: {reason}")]
    #[diagnostic(help(
        "the source is corrupt or hostile; nothing was committed and the store is unchanged"
    ))]
    BadReference { digest: Digest, reason: String },
    #[error("blob {digest} is larger than the {limit} bytes kiln reads for a manifest or config")]
    TooLarge { digest: Digest, limit: u64 },
    #[error("a tag must name a manifest or an index, not {media_type} ({digest})")]
    NotAManifest { digest: Digest, media_type: String },
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
    /// The store's directory and its `ingest/` are private (0700), existing ones made so.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        for dir in [store.root.clone(), store.root.join("ingest")] {
            make_private(&dir).map_err(io_err(&dir))?;
        }
        let blobs = store.root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
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
        let lock = self.lock_shared()?;
        let dir = self.root.join("ingest");
        let staging = staging::Staging::create(&dir, None, None).map_err(io_err(&dir))?;
        Ok(Ingest {
            store: self.clone(),
            staging,
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
    staging: staging::Staging,
    /// `gc` removes files under `ingest/` only when no writer holds this.
    _lock: StoreLock,
}

impl Write for Ingest {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.staging.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.staging.flush()
    }
}

impl Ingest {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.staging.size()
    }

    /// fsyncs the data, moves it to `blobs/sha256/<digest>` and makes the rename durable.
    pub fn commit(self) -> Result<(Digest, u64), StoreError> {
        let path = self.staging.path().to_path_buf();
        let staged = self.staging.finish().map_err(io_err(&path))?;
        let (digest, size) = (staged.digest.clone(), staged.size);
        let target = self.store.blob_path(&digest);
        // Same content already committed (by us or a concurrent build): that one is kept.
        if staged.publish(&target).map_err(io_err(&target))? {
            let dir = target.parent().expect("blobs/sha256");
            atomic_file::sync_dir(dir).map_err(io_err(dir))?;
        }
        Ok((digest, size))
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod transaction_tests;
