//! Ingest transactions: how content from outside (an archive, a registry) enters the store.
//! Blobs are staged in `ingest/` and verified while they stream in; tags are recorded; and
//! [`Transaction::commit`] publishes everything at once after checking that every
//! descriptor reachable from the new tags names a blob that is there, with that size and
//! that digest. Anything that fails before the commit leaves the store byte-identical
//! (blobs, `index.json`), and a dropped transaction removes its staged files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read, Write};
use std::sync::Mutex;

use super::references::{self, MAX_MANIFEST_BYTES};
use super::staging::{Group, Staged, Staging};
use super::{Descriptor, Index, REF_NAME, Store, StoreError, StoreLock, io_err};
use crate::atomic_file as atomic;
use crate::digest::Digest;

/// A set of blobs and tags that enter the store together or not at all. Holds the store's
/// shared lock (so `gc` waits) until committed or dropped. Methods take `&self`, so several
/// threads may stream blobs into one transaction at once.
pub struct Transaction {
    store: Store,
    staged: Mutex<BTreeMap<Digest, Staged>>,
    tags: Mutex<BTreeMap<String, Descriptor>>,
    keep: Mutex<Vec<Descriptor>>,
    /// Covers every staged file (declared after `staged`: the files go first on drop).
    group: Group,
    _lock: StoreLock,
}

/// What a commit published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// Blobs that were not in the store before.
    pub blobs_added: usize,
    pub bytes_added: u64,
    /// Staged blobs nothing committed refers to, thrown away.
    pub blobs_discarded: usize,
}

impl Store {
    /// Begins an ingest transaction.
    pub fn begin(&self) -> Result<Transaction, StoreError> {
        let lock = self.lock_shared()?;
        let dir = self.root.join("ingest");
        Ok(Transaction {
            store: self.clone(),
            staged: Mutex::new(BTreeMap::new()),
            tags: Mutex::new(BTreeMap::new()),
            keep: Mutex::new(Vec::new()),
            group: Group::create(&dir).map_err(io_err(&dir))?,
            _lock: lock,
        })
    }
}

impl Transaction {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Starts staging one blob. With `expected`, the bytes are checked as they arrive: a
    /// write past `expected.size` fails at once, and [`BlobWriter::finish`] fails unless
    /// the content has exactly that size and digest.
    pub fn writer(&self, expected: Option<&Descriptor>) -> Result<BlobWriter<'_>, StoreError> {
        let dir = self.store.root.join("ingest");
        let staging = Staging::create(&dir, expected.map(|d| d.size), Some(&self.group))
            .map_err(io_err(&dir))?;
        Ok(BlobWriter {
            tx: self,
            staging,
            expected: expected.map(|d| (d.digest.clone(), d.size)),
        })
    }

    /// Stages a blob from memory (checked against `expected` like [`Transaction::writer`]).
    pub fn put(
        &self,
        bytes: &[u8],
        expected: Option<&Descriptor>,
    ) -> Result<(Digest, u64), StoreError> {
        let digest = Digest::of(bytes);
        let size = bytes.len() as u64;
        if let Some(expected) = expected {
            check(expected, &digest, size)?;
        }
        if self.has(&digest) {
            return Ok((digest, size));
        }
        let mut writer = self.writer(expected)?;
        writer
            .write_all(bytes)
            .map_err(io_err(writer.staging.path()))?;
        writer.finish()
    }

    /// Whether a blob is staged here or already in the store.
    pub fn has(&self, digest: &Digest) -> bool {
        self.staged.lock().expect("staged").contains_key(digest) || self.store.contains(digest)
    }

    /// The size of a staged or stored blob.
    fn size_of(&self, digest: &Digest) -> Option<u64> {
        if let Some(staged) = self.staged.lock().expect("staged").get(digest) {
            return Some(staged.size);
        }
        fs::metadata(self.store.blob_path(digest))
            .ok()
            .filter(fs::Metadata::is_file)
            .map(|m| m.len())
    }

    /// Opens a staged or stored blob for reading (to check a layer's content, say).
    pub fn open(&self, digest: &Digest) -> Result<fs::File, StoreError> {
        let path = match self.staged.lock().expect("staged").get(digest) {
            Some(staged) => staged.path().to_path_buf(),
            None => self.store.blob_path(digest),
        };
        fs::File::open(&path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => StoreError::MissingBlob {
                digest: digest.clone(),
            },
            _ => StoreError::Io { path, source },
        })
    }

    /// Reads a staged or stored blob of at most `limit` bytes (a manifest, a config).
    pub fn read(&self, digest: &Digest, limit: u64) -> Result<Vec<u8>, StoreError> {
        let file = self.open(digest)?;
        let path = self.store.blob_path(digest);
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err(&path))?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                digest: digest.clone(),
                limit,
            });
        }
        Ok(bytes)
    }

    /// Points `name` at `manifest` when the transaction commits. The descriptor must be a
    /// manifest or an index; its size and everything it reaches are checked at commit.
    pub fn tag(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        if !references::has_children(&manifest.media_type) {
            return Err(StoreError::NotAManifest {
                digest: manifest.digest.clone(),
                media_type: manifest.media_type.clone(),
            });
        }
        let mut descriptor = manifest.clone();
        descriptor.annotations.clear();
        self.tags
            .lock()
            .expect("tags")
            .insert(name.to_string(), descriptor);
        Ok(())
    }

    /// Like [`Transaction::tag`], keeping the descriptor's annotations in `index.json`
    /// (a pulled image's name records where it came from).
    pub fn tag_annotated(&self, name: &str, manifest: &Descriptor) -> Result<(), StoreError> {
        let annotations = manifest.annotations.clone();
        self.tag(name, manifest)?;
        if let Some(tagged) = self.tags.lock().expect("tags").get_mut(name) {
            tagged.annotations = annotations;
        }
        Ok(())
    }

    /// Publishes `descriptor` and what it reaches at commit without a tag (something else
    /// refers to it: an image built on an imported archive).
    pub fn keep(&self, descriptor: &Descriptor) {
        self.keep.lock().expect("keep").push(descriptor.clone());
    }

    /// Verifies and publishes: every descriptor reachable from the tags and kept
    /// descriptors must name a staged or stored blob of its size (a staged blob's digest
    /// was computed from its bytes); manifests and indexes must parse. Only then are the
    /// reachable staged blobs moved into `blobs/sha256` and `index.json` rewritten, once.
    /// Staged blobs nothing reaches are discarded.
    ///
    /// A failure while verifying changes nothing. A failure of the final writes (disk
    /// full) may leave published blobs that nothing references, never a tag to a partial
    /// image; `gc` removes them.
    pub fn commit(self) -> Result<Committed, StoreError> {
        let tags = std::mem::take(&mut *self.tags.lock().expect("tags"));
        let mut roots: Vec<(Descriptor, String)> = tags
            .iter()
            .map(|(name, d)| (d.clone(), format!("tag `{name}`")))
            .collect();
        roots.extend(
            self.keep
                .lock()
                .expect("keep")
                .iter()
                .map(|d| (d.clone(), "the transaction".to_string())),
        );
        let needed = self.verify(roots)?;

        let mut staged = std::mem::take(&mut *self.staged.lock().expect("staged"));
        let mut report = Committed::default();
        let dir = self.store.root.join("blobs/sha256");
        for digest in &needed {
            if let Some(blob) = staged.remove(digest) {
                let size = blob.size;
                let target = self.store.blob_path(digest);
                if blob.publish(&target).map_err(io_err(&target))? {
                    report.blobs_added += 1;
                    report.bytes_added += size;
                }
            }
        }
        report.blobs_discarded = staged.len();
        drop(staged);
        if report.blobs_added > 0 {
            atomic::sync_dir(&dir).map_err(io_err(&dir))?;
        }
        if !tags.is_empty() {
            self.store.set_tags(&tags)?;
        }
        Ok(report)
    }

    /// Walks everything reachable from `roots`; returns the digests to publish.
    fn verify(&self, roots: Vec<(Descriptor, String)>) -> Result<BTreeSet<Digest>, StoreError> {
        let mut seen: BTreeSet<Digest> = BTreeSet::new();
        let mut queue = roots;
        while let Some((descriptor, referenced_by)) = queue.pop() {
            let digest = &descriptor.digest;
            let actual = self
                .size_of(digest)
                .ok_or_else(|| StoreError::MissingReference {
                    digest: digest.clone(),
                    referenced_by: referenced_by.clone(),
                })?;
            if actual != descriptor.size {
                return Err(StoreError::WrongSize {
                    digest: digest.clone(),
                    expected: descriptor.size,
                    actual,
                });
            }
            if !seen.insert(digest.clone()) || !references::has_children(&descriptor.media_type) {
                continue;
            }
            let bytes = self.read(digest, MAX_MANIFEST_BYTES)?;
            let kids = references::children(&descriptor.media_type, &bytes).map_err(|reason| {
                StoreError::BadReference {
                    digest: digest.clone(),
                    reason,
                }
            })?;
            let name = format!("{} {digest}", short_kind(&descriptor.media_type));
            queue.extend(kids.into_iter().map(|k| (k, name.clone())));
        }
        Ok(seen)
    }
}

fn short_kind(media_type: &str) -> &'static str {
    if references::is_index(media_type) {
        "index"
    } else {
        "manifest"
    }
}

fn check(expected: &Descriptor, digest: &Digest, size: u64) -> Result<(), StoreError> {
    if size != expected.size {
        return Err(StoreError::WrongSize {
            digest: expected.digest.clone(),
            expected: expected.size,
            actual: size,
        });
    }
    if *digest != expected.digest {
        return Err(StoreError::WrongDigest {
            expected: expected.digest.clone(),
            actual: digest.clone(),
        });
    }
    Ok(())
}

/// One blob streaming into a transaction. Dropped without [`BlobWriter::finish`], its file
/// is removed.
pub struct BlobWriter<'t> {
    tx: &'t Transaction,
    staging: Staging,
    expected: Option<(Digest, u64)>,
}

impl Write for BlobWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.staging.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.staging.flush()
    }
}

impl BlobWriter<'_> {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.staging.size()
    }

    /// Checks the blob against its expected descriptor (if any) and stages it; returns its
    /// digest and size.
    pub fn finish(self) -> Result<(Digest, u64), StoreError> {
        let path = self.staging.path().to_path_buf();
        let staged = self.staging.finish().map_err(io_err(&path))?;
        if let Some((digest, size)) = &self.expected {
            let expected = Descriptor {
                media_type: String::new(),
                digest: digest.clone(),
                size: *size,
                annotations: BTreeMap::new(),
            };
            check(&expected, &staged.digest, staged.size)?;
        }
        let out = (staged.digest.clone(), staged.size);
        let mut map = self.tx.staged.lock().expect("staged");
        // The same content staged twice is one blob; the second copy is dropped (removed).
        map.entry(staged.digest.clone()).or_insert(staged);
        Ok(out)
    }
}

impl Store {
    /// Sets several tags in one rewrite of `index.json` (a transaction's commit).
    fn set_tags(&self, tags: &BTreeMap<String, Descriptor>) -> Result<(), StoreError> {
        let _guard = self.lock_index()?;
        let mut index: Index = self.read_index()?;
        let before = index.manifests.clone();
        for (name, manifest) in tags {
            let mut descriptor = manifest.clone();
            descriptor
                .annotations
                .insert(REF_NAME.to_string(), name.clone());
            index
                .manifests
                .retain(|d| d.annotations.get(REF_NAME) != Some(name));
            index.manifests.push(descriptor);
        }
        index.manifests.sort_by(|a, b| {
            a.annotations
                .get(REF_NAME)
                .cmp(&b.annotations.get(REF_NAME))
        });
        if index.manifests == before {
            return Ok(());
        }
        self.write_index(&index)
    }
}
