//! `fsck` (re-hash every blob, follow every reference, find leftovers of killed writers)
//! and `gc` (remove what nothing references, and those leftovers).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs::{self, File};
use std::io;

use sha2::{Digest as _, Sha256};

use super::references::{self, MAX_MANIFEST_BYTES};
use super::{Descriptor, Store, StoreError, io_err, staging};
use crate::digest::Digest;

/// One thing `fsck` found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A blob whose content does not hash to its name.
    Corrupt { digest: Digest, actual: Digest },
    /// A referenced blob that is not in the store.
    Missing {
        digest: Digest,
        referenced_by: String,
    },
    /// A referenced blob whose size differs from its descriptor.
    WrongSize {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    /// A manifest or index that does not parse.
    Unreadable { digest: Digest, reason: String },
    /// A file in `blobs/sha256` that is not named by a digest.
    StrayFile { name: String },
    /// A file a killed writer left in `ingest/` (or a temporary file of an interrupted
    /// index write): no live process holds it.
    Leftover { path: String, size: u64 },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Corrupt { digest, actual } => write!(
                f,
                "blob {digest} is corrupt: its content hashes to {actual}"
            ),
            Problem::Missing {
                digest,
                referenced_by,
            } => write!(
                f,
                "blob {digest} is missing (referenced by {referenced_by})"
            ),
            Problem::WrongSize {
                digest,
                expected,
                actual,
            } => {
                write!(
                    f,
                    "blob {digest} has {actual} bytes, its descriptor says {expected}"
                )
            }
            Problem::Unreadable { digest, reason } => write!(
                f,
                "blob {digest} is not a valid manifest or index: {reason}"
            ),
            Problem::StrayFile { name } => {
                write!(f, "blobs/sha256/{name} is not named by a sha256 digest")
            }
            Problem::Leftover { path, size } => write!(
                f,
                "{path} ({size} bytes) is the leftover of an interrupted write; `kiln gc` removes it"
            ),
        }
    }
}

/// What `gc` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_removed: usize,
    pub bytes_freed: u64,
    pub ingest_files_removed: usize,
}

/// The blobs a descriptor references directly (config and layers of a manifest, the
/// manifests of an index).
fn children(store: &Store, descriptor: &Descriptor) -> Result<Vec<Descriptor>, String> {
    if !references::has_children(&descriptor.media_type) {
        return Ok(Vec::new());
    }
    if descriptor.size > MAX_MANIFEST_BYTES {
        return Err(format!(
            "larger than the {MAX_MANIFEST_BYTES} bytes kiln reads for a manifest"
        ));
    }
    let bytes = store.read(&descriptor.digest).map_err(|e| e.to_string())?;
    references::children(&descriptor.media_type, &bytes)
}

/// Hashes a file without loading it whole.
fn hash_file(path: &std::path::Path) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    io::copy(&mut File::open(path)?, &mut hasher)?;
    Ok(Digest::from_hasher(hasher))
}

impl Store {
    /// Walks everything reachable from the tags and `roots`; returns digest → size.
    fn reachable(
        &self,
        roots: &[Descriptor],
        problems: &mut Vec<Problem>,
    ) -> Result<BTreeMap<Digest, u64>, StoreError> {
        let mut seen = BTreeMap::new();
        let mut queue: Vec<(Descriptor, String)> = self
            .tags()?
            .into_iter()
            .map(|(name, d)| (d, format!("tag `{name}`")))
            .collect();
        queue.extend(
            roots
                .iter()
                .map(|d| (d.clone(), "the build cache".to_string())),
        );
        while let Some((descriptor, referenced_by)) = queue.pop() {
            // Every reference's size is checked (two descriptors of one blob may disagree);
            // a blob's own references are followed once.
            let first = !seen.contains_key(&descriptor.digest);
            seen.entry(descriptor.digest.clone())
                .or_insert(descriptor.size);
            let path = self.blob_path(&descriptor.digest);
            let Ok(meta) = fs::metadata(&path) else {
                if first {
                    problems.push(Problem::Missing {
                        digest: descriptor.digest.clone(),
                        referenced_by,
                    });
                }
                continue;
            };
            let wrong = Problem::WrongSize {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: meta.len(),
            };
            if meta.len() != descriptor.size && !problems.contains(&wrong) {
                problems.push(wrong);
            }
            if !first {
                continue;
            }
            match children(self, &descriptor) {
                Ok(kids) => {
                    let name = format!(
                        "{} {}",
                        short_kind(&descriptor.media_type),
                        descriptor.digest
                    );
                    queue.extend(kids.into_iter().map(|k| (k, name.clone())));
                }
                Err(reason) => problems.push(Problem::Unreadable {
                    digest: descriptor.digest.clone(),
                    reason,
                }),
            }
        }
        Ok(seen)
    }

    /// Re-hashes every blob and checks every reference from the tags and `roots`.
    /// An empty list means the store is sound.
    pub fn fsck(&self, roots: &[Descriptor]) -> Result<Vec<Problem>, StoreError> {
        let _guard = self.lock_shared()?;
        let mut problems = Vec::new();
        let dir = self.root.join("blobs/sha256");
        let mut names: Vec<String> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for name in names {
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                problems.push(Problem::StrayFile { name });
                continue;
            };
            let path = dir.join(&name);
            let actual = hash_file(&path).map_err(io_err(&path))?;
            if actual != digest {
                problems.push(Problem::Corrupt { digest, actual });
            }
        }
        let corrupt: BTreeSet<Digest> = problems
            .iter()
            .filter_map(|p| {
                if let Problem::Corrupt { digest, .. } = p {
                    Some(digest.clone())
                } else {
                    None
                }
            })
            .collect();
        let mut reference_problems = Vec::new();
        self.reachable(roots, &mut reference_problems)?;
        // A corrupt manifest is reported once, as corrupt, not again as unreadable.
        reference_problems.retain(
            |p| !matches!(p, Problem::Unreadable { digest, .. } if corrupt.contains(digest)),
        );
        problems.extend(reference_problems);
        // A dead transaction's lock file is not worth a line of its own: its blobs are.
        let leftovers = self
            .leftovers()?
            .into_iter()
            .filter(|(p, _)| !is_lock_file(p));
        problems.extend(leftovers.map(|(path, size)| {
            Problem::Leftover {
                path: path
                    .strip_prefix(&self.root)
                    .unwrap_or(&path)
                    .display()
                    .to_string(),
                size,
            }
        }));
        Ok(problems)
    }

    /// Files in `ingest/` no live writer holds, and temporary files of interrupted atomic
    /// writes in the store's top directory; with their sizes.
    fn leftovers(&self) -> Result<Vec<(std::path::PathBuf, u64)>, StoreError> {
        let mut out = Vec::new();
        let ingest = self.root.join("ingest");
        for entry in fs::read_dir(&ingest)
            .map_err(io_err(&ingest))?
            .filter_map(Result::ok)
        {
            let path = entry.path();
            if staging::is_leftover(&path).map_err(io_err(&path))? {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((path, size));
            }
        }
        // Index rewrites hold the index lock while their temporary file exists.
        let _index = self.lock_index()?;
        for entry in fs::read_dir(&self.root)
            .map_err(io_err(&self.root))?
            .filter_map(Result::ok)
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                out.push((entry.path(), size));
            }
        }
        out.sort();
        Ok(out)
    }

    /// What [`Store::gc`] would remove now (leftovers of writers aside): how many blobs
    /// nothing reachable from a tag or from `roots` references, and their bytes.
    pub fn collectable(&self, roots: &[Descriptor]) -> Result<(usize, u64), StoreError> {
        let _guard = self.lock_shared()?;
        let mut ignored = Vec::new();
        let keep = self.reachable(roots, &mut ignored)?;
        let dir = self.root.join("blobs/sha256");
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(err) => return Err(io_err(&dir)(err)),
        };
        let (mut count, mut bytes) = (0, 0);
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let kept = format!("sha256:{name}")
                .parse::<Digest>()
                .is_ok_and(|d| keep.contains_key(&d));
            if !kept {
                count += 1;
                bytes += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
        Ok((count, bytes))
    }

    /// Removes every blob not reachable from a tag or from `roots`, and every leftover of
    /// an interrupted write. Waits for running writers (they hold the shared lock).
    pub fn gc(&self, roots: &[Descriptor]) -> Result<GcReport, StoreError> {
        let _guard = self.lock_gc()?;
        let mut ignored = Vec::new();
        let keep = self.reachable(roots, &mut ignored)?;
        let mut report = GcReport::default();
        let dir = self.root.join("blobs/sha256");
        for entry in fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let keep_it = format!("sha256:{name}")
                .parse::<Digest>()
                .is_ok_and(|d| keep.contains_key(&d));
            if !keep_it {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                fs::remove_file(entry.path()).map_err(io_err(&entry.path()))?;
                report.blobs_removed += 1;
                report.bytes_freed += size;
            }
        }
        // Every writer holds the shared lock, so with the exclusive one held every file in
        // ingest/ is a leftover; `leftovers` checks each file's own lock all the same.
        for (path, _) in self.leftovers()? {
            match fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => fs::remove_dir_all(&path),
                _ => fs::remove_file(&path),
            }
            .map_err(io_err(&path))?;
            if !is_lock_file(&path) {
                report.ingest_files_removed += 1;
            }
        }
        Ok(report)
    }
}

/// A transaction's lock file in `ingest/` (see `staging::Group`).
fn is_lock_file(path: &std::path::Path) -> bool {
    path.extension().is_some_and(|e| e == "lock")
}

fn short_kind(media_type: &str) -> &'static str {
    if references::is_manifest(media_type) {
        "manifest"
    } else if references::is_index(media_type) {
        "index"
    } else {
        "blob"
    }
}
