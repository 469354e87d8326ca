//! An image archive read as data: one pass over the tar stream records every member's
//! name, kind and link target, and streams the content of the members image archives keep
//! their files in (`manifest.json`, `index.json`, `oci-layout`, `blobs/…`, `<id>/layer.tar`,
//! `<id>.json`, `<id>.tar`) into the store's ingest transaction, hashed on the way. Nothing
//! is written to the host's file system under a member's name, so no member can be a link
//! that kiln later follows: links between members are resolved here, over the recorded
//! names, and a link that leaves the archive (an absolute target, a `..` above its top) is
//! an error.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::super::ArchiveError;
use crate::digest::Digest;
use crate::store::Transaction;

/// Links followed while resolving one name (Linux's own limit).
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Member {
    /// A regular file, staged in the transaction.
    File {
        digest: Digest,
        size: u64,
    },
    /// A regular file outside the names image archives use: not read.
    Unread,
    Dir,
    Symlink(Vec<u8>),
    Hardlink(Vec<u8>),
    /// A device, a FIFO, anything else: never content.
    Other,
}

/// The members of an archive.
#[derive(Debug)]
pub(super) struct Members {
    archive: PathBuf,
    map: BTreeMap<String, Member>,
    /// Names with `..`, absolute or not UTF-8: harmless for a root-filesystem tarball (the
    /// extractor refuses them itself), fatal for an image archive.
    unsafe_names: Vec<(String, &'static str)>,
    duplicates: Vec<String>,
}

/// The components of an archive name (empty and `.` parts dropped), or why it is unsafe.
fn components(raw: &[u8]) -> Result<Vec<String>, &'static str> {
    if raw.first() == Some(&b'/') {
        return Err("an absolute name");
    }
    let text = std::str::from_utf8(raw).map_err(|_| "a name that is not UTF-8")?;
    if text.contains('\0') {
        return Err("a name with a NUL byte");
    }
    let mut parts = Vec::new();
    for part in text.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("a `..` component"),
            name => parts.push(name.to_string()),
        }
    }
    Ok(parts)
}

/// Whether image archives keep content under this name: what `docker save` (old and new),
/// `podman save`, skopeo and kiln itself write.
fn is_image_member(parts: &[String]) -> bool {
    let hex_id = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    match parts {
        [one] => {
            matches!(
                one.as_str(),
                "manifest.json" | "index.json" | "oci-layout" | "repositories"
            ) || one
                .strip_suffix(".json")
                .or_else(|| one.strip_suffix(".tar"))
                .is_some_and(hex_id)
        }
        [dir, _] => hex_id(dir),
        [blobs, _, _] => blobs == "blobs",
        _ => false,
    }
}

impl Members {
    /// Reads the whole tar stream, staging image-archive members into `tx`.
    pub(super) fn read(
        tar: impl Read,
        tx: &Transaction,
        archive: &Path,
    ) -> Result<Members, ArchiveError> {
        let read_err = |source: io::Error| ArchiveError::Io {
            path: archive.to_path_buf(),
            source,
        };
        let mut members = Members {
            archive: archive.to_path_buf(),
            map: BTreeMap::new(),
            unsafe_names: Vec::new(),
            duplicates: Vec::new(),
        };
        let mut tar = tar::Archive::new(tar);
        for entry in tar.entries().map_err(read_err)? {
            let mut entry = entry.map_err(read_err)?;
            let kind = entry.header().entry_type();
            if matches!(kind, EntryType::XGlobalHeader | EntryType::XHeader) {
                continue;
            }
            let raw = entry.path_bytes().into_owned();
            let parts = match components(&raw) {
                Ok(parts) if parts.is_empty() => continue, // the archive's top, `./`
                Ok(parts) => parts,
                Err(reason) => {
                    members
                        .unsafe_names
                        .push((String::from_utf8_lossy(&raw).into_owned(), reason));
                    continue;
                }
            };
            let member = match kind {
                EntryType::Regular | EntryType::Continuous if is_image_member(&parts) => {
                    let mut writer = tx.writer(None)?;
                    io::copy(&mut entry, &mut writer).map_err(read_err)?;
                    let (digest, size) = writer.finish()?;
                    Member::File { digest, size }
                }
                EntryType::Regular | EntryType::Continuous => Member::Unread,
                EntryType::Directory => Member::Dir,
                EntryType::Symlink => {
                    Member::Symlink(entry.link_name_bytes().unwrap_or_default().into_owned())
                }
                EntryType::Link => {
                    Member::Hardlink(entry.link_name_bytes().unwrap_or_default().into_owned())
                }
                _ => Member::Other,
            };
            let name = parts.join("/");
            if let Some(previous) = members.map.insert(name.clone(), member.clone())
                && !(previous == Member::Dir && member == Member::Dir)
            {
                members.duplicates.push(name);
            }
        }
        Ok(members)
    }

    /// The archive's path, for errors.
    pub(super) fn archive(&self) -> &Path {
        &self.archive
    }

    /// Whether `name` resolves to a regular member (a link to one included).
    pub(super) fn has_file(&self, name: &str) -> bool {
        self.resolve(name).is_ok()
    }

    /// Refuses an archive with unsafe or duplicate names: once it is read as an image
    /// archive, every name must be plain.
    pub(super) fn check_names(&self) -> Result<(), ArchiveError> {
        if let Some((entry, reason)) = self.unsafe_names.first() {
            return Err(ArchiveError::UnsafeEntry {
                path: self.archive.clone(),
                entry: entry.clone(),
                reason: (*reason).to_string(),
            });
        }
        if let Some(entry) = self.duplicates.first() {
            return Err(ArchiveError::Duplicate {
                path: self.archive.clone(),
                entry: entry.clone(),
            });
        }
        Ok(())
    }

    /// The staged blob that `name` is, following links between members (a symlink's
    /// target is read relative to its directory, a hard link's from the archive's top),
    /// never out of the archive.
    pub(super) fn resolve(&self, name: &str) -> Result<(Digest, u64), ArchiveError> {
        let unsafe_name = |reason: &str| ArchiveError::UnsafeEntry {
            path: self.archive.clone(),
            entry: name.to_string(),
            reason: reason.to_string(),
        };
        let missing = || ArchiveError::MissingEntry {
            path: self.archive.clone(),
            entry: name.to_string(),
        };
        let mut path = components(name.as_bytes()).map_err(unsafe_name)?;
        let mut hops = 0;
        'walk: loop {
            if path.is_empty() {
                return Err(missing());
            }
            for i in 1..=path.len() {
                let prefix = path[..i].join("/");
                let last = i == path.len();
                match self.map.get(&prefix) {
                    None | Some(Member::Dir) if !last => {} // a directory, listed or implied
                    Some(Member::File { digest, size }) if last => {
                        return Ok((digest.clone(), *size));
                    }
                    Some(Member::Unread) if last => {
                        return Err(ArchiveError::UnsupportedMember {
                            path: self.archive.clone(),
                            entry: prefix,
                        });
                    }
                    Some(Member::Symlink(target)) => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Err(unsafe_name("too many levels of links"));
                        }
                        let outside = || ArchiveError::LinkOutside {
                            path: self.archive.clone(),
                            entry: prefix.clone(),
                            target: String::from_utf8_lossy(target).into_owned(),
                        };
                        if target.first() == Some(&b'/') || target.is_empty() {
                            return Err(outside());
                        }
                        let text = std::str::from_utf8(target).map_err(|_| outside())?;
                        let mut next: Vec<String> = path[..i - 1].to_vec();
                        for part in text.split('/') {
                            match part {
                                "" | "." => {}
                                ".." => {
                                    next.pop().ok_or_else(outside)?;
                                }
                                other => next.push(other.to_string()),
                            }
                        }
                        next.extend_from_slice(&path[i..]);
                        path = next;
                        continue 'walk;
                    }
                    Some(Member::Hardlink(target)) if last => {
                        hops += 1;
                        if hops > MAX_HOPS {
                            return Err(unsafe_name("too many levels of links"));
                        }
                        path = components(target).map_err(|_| ArchiveError::LinkOutside {
                            path: self.archive.clone(),
                            entry: prefix.clone(),
                            target: String::from_utf8_lossy(target).into_owned(),
                        })?;
                        continue 'walk;
                    }
                    Some(Member::Dir | Member::Other) if last => {
                        return Err(ArchiveError::NotAFile {
                            path: self.archive.clone(),
                            entry: prefix,
                        });
                    }
                    _ => return Err(missing()),
                }
            }
            return Err(missing());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(entries: &[(&str, Member)]) -> Members {
        Members {
            archive: PathBuf::from("a.tar"),
            map: entries
                .iter()
                .map(|(n, m)| (n.to_string(), m.clone()))
                .collect(),
            unsafe_names: Vec::new(),
            duplicates: Vec::new(),
        }
    }

    fn file(n: u8) -> Member {
        Member::File {
            digest: Digest::of(&[n]),
            size: 1,
        }
    }

    fn link(target: &str) -> Member {
        Member::Symlink(target.as_bytes().to_vec())
    }

    #[test]
    fn links_resolve_between_members_and_never_out_of_the_archive() {
        let m = members(&[
            ("a/layer.tar", file(1)),
            ("b/layer.tar", link("../a/layer.tar")),
            ("c", link("a")),
            ("d/layer.tar", Member::Hardlink(b"a/layer.tar".to_vec())),
            ("shadow", link("/etc/shadow")),
            ("up", link("../../etc/shadow")),
            ("loop", link("loop")),
            ("dev", Member::Other),
            ("skipped", Member::Unread),
            ("hard-out", Member::Hardlink(b"../x".to_vec())),
        ]);
        let one = (Digest::of(&[1]), 1);
        assert_eq!(m.resolve("a/layer.tar").unwrap(), one);
        assert_eq!(m.resolve("./b/layer.tar").unwrap(), one);
        assert_eq!(m.resolve("c/layer.tar").unwrap(), one);
        assert_eq!(m.resolve("d/layer.tar").unwrap(), one);
        for outside in ["shadow", "up", "hard-out"] {
            assert!(
                matches!(m.resolve(outside), Err(ArchiveError::LinkOutside { .. })),
                "{outside}"
            );
        }
        assert!(matches!(
            m.resolve("loop"),
            Err(ArchiveError::UnsafeEntry { .. })
        ));
        assert!(matches!(
            m.resolve("dev"),
            Err(ArchiveError::NotAFile { .. })
        ));
        assert!(matches!(
            m.resolve("skipped"),
            Err(ArchiveError::UnsupportedMember { .. })
        ));
        for bad in ["/a/layer.tar", "../a/layer.tar", "a/../a/layer.tar"] {
            assert!(
                matches!(m.resolve(bad), Err(ArchiveError::UnsafeEntry { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            m.resolve("a/layer.tar/x"),
            Err(ArchiveError::MissingEntry { .. })
        ));
        assert!(matches!(
            m.resolve(""),
            Err(ArchiveError::MissingEntry { .. })
        ));
    }

    #[test]
    fn image_members_are_the_names_image_archives_use() {
        let yes = |n: &str| is_image_member(&components(n.as_bytes()).unwrap());
        let hex = "a".repeat(64);
        assert!(yes("manifest.json"));
        assert!(yes("./index.json"));
        assert!(yes(&format!("{hex}/layer.tar")));
        assert!(yes(&format!("{hex}.json")));
        assert!(yes(&format!("{hex}.tar")));
        assert!(yes(&format!("blobs/sha256/{hex}")));
        assert!(!yes("etc/passwd"));
        assert!(!yes("usr/lib/x86_64-linux-gnu/libc.so.6"));
        assert!(!yes("bin"));
    }
}
