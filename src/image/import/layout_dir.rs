//! An OCI layout directory handed to `kiln import`: someone else's tree. Every file is
//! opened beneath the layout's top with no symlink followed in any component
//! ([`crate::beneath`]), must be a regular file, and is read once, through the descriptor
//! that was checked: a blob that is a link to `/etc/shadow` is an error, not a copy of
//! the machine's password hashes.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use super::super::ArchiveError;
use super::{Layout, blob_name};
use crate::beneath::{self, Kind};
use crate::store::{Descriptor, StoreError, Transaction};

pub(super) struct LayoutDir {
    path: PathBuf,
    dir: File,
}

impl LayoutDir {
    pub(super) fn open(path: &Path) -> Result<LayoutDir, ArchiveError> {
        let dir = beneath::open_root(path).map_err(|source| ArchiveError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(LayoutDir {
            path: path.to_path_buf(),
            dir,
        })
    }

    fn open_file(&self, name: &str) -> Result<File, ArchiveError> {
        beneath::open(&self.dir, Path::new(name), Kind::File).map_err(|source| {
            let entry = name.to_string();
            let path = self.path.clone();
            match source.raw_os_error() {
                Some(libc::ELOOP) => ArchiveError::SymlinkInLayout { path, entry },
                Some(libc::ENOENT) if name == "oci-layout" => ArchiveError::NotALayout { path },
                Some(libc::ENOENT) => ArchiveError::MissingEntry { path, entry },
                Some(libc::EINVAL | libc::EISDIR) => ArchiveError::NotAFile { path, entry },
                Some(libc::EXDEV | libc::ENOTDIR) => ArchiveError::UnsafeEntry {
                    path,
                    entry,
                    reason: "it leaves the layout".into(),
                },
                _ => ArchiveError::Io {
                    path: self.path.join(name),
                    source,
                },
            }
        })
    }
}

impl Layout for LayoutDir {
    fn small_file(
        &self,
        _tx: &Transaction,
        name: &str,
        limit: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        let file = self.open_file(name)?;
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| ArchiveError::Io {
                path: self.path.join(name),
                source,
            })?;
        if bytes.len() as u64 > limit {
            return Err(ArchiveError::UnsafeEntry {
                path: self.path.clone(),
                entry: name.to_string(),
                reason: format!("larger than the {limit} bytes kiln reads for it"),
            });
        }
        Ok(bytes)
    }

    fn stage_blob(&self, tx: &Transaction, descriptor: &Descriptor) -> Result<(), ArchiveError> {
        if tx.has(&descriptor.digest) {
            return Ok(()); // the commit checks its size against the descriptor
        }
        let entry = blob_name(&descriptor.digest);
        let mut file = self.open_file(&entry)?;
        let bad = |source| ArchiveError::BadBlob {
            path: self.path.clone(),
            entry: entry.clone(),
            source,
        };
        let mut writer = tx.writer(Some(descriptor))?;
        if let Err(source) = io::copy(&mut file, &mut writer) {
            if source.kind() == io::ErrorKind::FileTooLarge {
                let actual = file.metadata().map(|m| m.len()).unwrap_or(0);
                return Err(bad(StoreError::WrongSize {
                    digest: descriptor.digest.clone(),
                    expected: descriptor.size,
                    actual,
                }));
            }
            return Err(ArchiveError::Io {
                path: self.path.join(&entry),
                source,
            });
        }
        writer.finish().map_err(|err| match err {
            StoreError::WrongSize { .. } | StoreError::WrongDigest { .. } => bad(err),
            other => ArchiveError::Store(other),
        })?;
        Ok(())
    }
}
