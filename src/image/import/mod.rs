//! Import: an OCI layout directory, an OCI archive, a Docker archive (`docker save`,
//! `podman save`), or a plain root-filesystem tarball, into the store. Every archive is
//! hostile until proven otherwise:
//!
//! - **Archives are read as data.** An archive is one tar stream, read once: members are
//!   names and bytes ([`members`]), never files on the host, so a member that is a symlink
//!   to `/etc/shadow` is a name pointing at a name the archive does not have, an error. An
//!   OCI layout directory is opened beneath its top with no symlink followed anywhere
//!   ([`crate::beneath`]).
//! - **Every descriptor is verified.** Each blob streams into a store transaction that
//!   checks its size (a byte past the descriptor's fails the write) and digest; the image's
//!   diff_ids must match its layer count, and an uncompressed layer must hash to its
//!   diff_id. The commit checks again everything the new tag reaches.
//! - **Nothing is committed unless all of it is.** Blobs and the tag enter the store in one
//!   [`Transaction::commit`]; any error before leaves the store byte-identical and its
//!   ingest directory empty.
//!
//! Only a root-filesystem tarball is unpacked to disk, by the layer module's safe
//! extractor (no absolute paths, no `..`, no link escapes, no device nodes) into a private
//! temporary directory, and then written as one deterministic layer.

mod layout_dir;
mod members;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek};
use std::path::Path;

use serde::Deserialize;

use super::archive::{ArchiveError, io_err};
use super::{ImageConfig, MEDIA_CONFIG, Manifest, oci_architecture};
use crate::digest::Digest;
use crate::layer::{self, Compression, Entries, ExtractOptions, ScanOptions, WhiteoutMode};
use crate::store::references::{self, MAX_MANIFEST_BYTES};
use crate::store::{Descriptor, MEDIA_MANIFEST, REF_NAME, Store, Transaction};

use layout_dir::LayoutDir;
use members::Members;

/// The largest image config kiln reads (configs with long histories run to hundreds of
/// kilobytes; none legitimately near this).
const MAX_CONFIG_BYTES: u64 = 8 << 20;

/// The annotation containerd and Docker (25 and later) put the full image name in.
const CONTAINERD_NAME: &str = "io.containerd.image.name";

/// What `import` found and stored.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub descriptor: Descriptor,
    pub format: &'static str,
}

/// Imports an OCI layout directory, an OCI or Docker archive, or a root-filesystem tarball
/// (optionally gzip/zstd compressed) into the store under `tag` (for archives: default the
/// name they carry). Nothing is stored unless every blob checked out.
pub fn import(store: &Store, path: &Path, tag: Option<&str>) -> Result<Imported, ArchiveError> {
    import_with(store, path, Naming::Tag(tag))
}

/// Imports an archive without naming it (a build's `from "oci-archive:…"`): the blobs are
/// stored and the manifest returned; the image that builds on it keeps them alive.
pub fn import_untagged(store: &Store, path: &Path) -> Result<Imported, ArchiveError> {
    import_with(store, path, Naming::Untagged)
}

#[derive(Debug, Clone, Copy)]
enum Naming<'a> {
    Tag(Option<&'a str>),
    Untagged,
}

impl<'a> Naming<'a> {
    fn wanted(self) -> Option<&'a str> {
        match self {
            Naming::Tag(tag) => tag,
            Naming::Untagged => None,
        }
    }

    /// Records the tag (or keeps the image untagged) in `tx`; returns the name it gets
    /// ("" when untagged).
    fn apply(
        self,
        tx: &Transaction,
        carried: Option<String>,
        descriptor: &Descriptor,
        archive: &Path,
    ) -> Result<String, ArchiveError> {
        match self {
            Naming::Untagged => {
                tx.keep(descriptor);
                Ok(String::new())
            }
            Naming::Tag(tag) => {
                let name =
                    tag.map(str::to_string)
                        .or(carried)
                        .ok_or_else(|| ArchiveError::NoTag {
                            path: archive.to_path_buf(),
                        })?;
                tx.tag(&name, descriptor)?;
                Ok(name)
            }
        }
    }
}

fn import_with(store: &Store, path: &Path, naming: Naming<'_>) -> Result<Imported, ArchiveError> {
    let tx = store.begin()?;
    // Each kind stages its image in `tx` and says what name the archive carries; naming
    // and committing are the same for all.
    let (tx, descriptor, carried, format) = if path.is_dir() {
        let layout = LayoutDir::open(path)?;
        let (descriptor, carried) = import_oci(&tx, &layout, path, naming.wanted())?;
        (tx, descriptor, carried, "oci")
    } else {
        let mut file = File::open(path).map_err(io_err(path))?;
        let members = {
            let reader = BufReader::new(file.try_clone().map_err(io_err(path))?);
            let tar =
                layer::decompressing_reader(reader).map_err(|source| ArchiveError::Unpack {
                    path: path.to_path_buf(),
                    source,
                })?;
            Members::read(tar, &tx, path)?
        };
        if members.has_file("oci-layout") && members.has_file("index.json") {
            members.check_names()?;
            let (descriptor, carried) = import_oci(&tx, &members, path, naming.wanted())?;
            (tx, descriptor, carried, "oci")
        } else if members.has_file("manifest.json") {
            members.check_names()?;
            let (descriptor, carried) = import_docker(&tx, &members, path, naming.wanted())?;
            (tx, descriptor, carried, "docker")
        } else {
            // A root filesystem: what was staged while looking is thrown away, and the
            // tarball is read again, this time to unpack it.
            drop(members);
            drop(tx);
            file.rewind().map_err(|_| ArchiveError::NotSeekable {
                path: path.to_path_buf(),
            })?;
            let tx = store.begin()?;
            let descriptor = import_rootfs(&tx, file, path)?;
            if let Naming::Tag(None) = naming {
                return Err(ArchiveError::NoTag {
                    path: path.to_path_buf(),
                });
            }
            (tx, descriptor, None, "rootfs")
        }
    };
    let name = naming.apply(&tx, carried, &descriptor, path)?;
    tx.commit()?;
    Ok(Imported {
        name,
        descriptor,
        format,
    })
}

/// Where an OCI layout's files come from: an archive's members or a directory.
trait Layout {
    /// A small file of the layout (`index.json`, `oci-layout`), at most `limit` bytes.
    fn small_file(&self, tx: &Transaction, name: &str, limit: u64)
    -> Result<Vec<u8>, ArchiveError>;

    /// Stages the blob `descriptor` names, verified against it.
    fn stage_blob(&self, tx: &Transaction, descriptor: &Descriptor) -> Result<(), ArchiveError>;
}

/// The name of a blob in an OCI layout.
fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

impl Layout for Members {
    fn small_file(
        &self,
        tx: &Transaction,
        name: &str,
        limit: u64,
    ) -> Result<Vec<u8>, ArchiveError> {
        let (digest, _) = self.resolve(name)?;
        Ok(tx.read(&digest, limit)?)
    }

    fn stage_blob(&self, _tx: &Transaction, descriptor: &Descriptor) -> Result<(), ArchiveError> {
        let entry = blob_name(&descriptor.digest);
        let (digest, size) = self.resolve(&entry)?;
        let mismatch = |source| ArchiveError::BadBlob {
            path: self.archive().to_path_buf(),
            entry: entry.clone(),
            source,
        };
        if size != descriptor.size {
            return Err(mismatch(crate::store::StoreError::WrongSize {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual: size,
            }));
        }
        if digest != descriptor.digest {
            return Err(mismatch(crate::store::StoreError::WrongDigest {
                expected: descriptor.digest.clone(),
                actual: digest,
            }));
        }
        Ok(())
    }
}

fn parse<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    archive: &Path,
    what: &'static str,
) -> Result<T, ArchiveError> {
    serde_json::from_slice(bytes).map_err(|source| ArchiveError::Malformed {
        path: archive.to_path_buf(),
        what,
        source,
    })
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

/// The name an index entry carries: containerd's full name, else the OCI ref name.
fn carried_name(descriptor: &Descriptor) -> Option<String> {
    descriptor
        .annotations
        .get(CONTAINERD_NAME)
        .or_else(|| descriptor.annotations.get(REF_NAME))
        .cloned()
}

/// Reads an OCI layout: stages and verifies the chosen manifest, its config and layers;
/// returns the manifest's descriptor and the name the layout gives it.
fn import_oci(
    tx: &Transaction,
    layout: &dyn Layout,
    archive: &Path,
    tag: Option<&str>,
) -> Result<(Descriptor, Option<String>), ArchiveError> {
    let marker = layout.small_file(tx, "oci-layout", 4096)?;
    let _: serde_json::Map<String, serde_json::Value> = parse(&marker, archive, "oci-layout")?;
    let index_bytes = layout.small_file(tx, "index.json", MAX_MANIFEST_BYTES)?;
    let index: OciIndex = parse(&index_bytes, archive, "OCI index")?;
    let chosen = match index.manifests.len() {
        0 => {
            return Err(ArchiveError::Empty {
                path: archive.to_path_buf(),
            });
        }
        1 => index.manifests[0].clone(),
        count => tag
            .and_then(|t| {
                index.manifests.iter().find(|m| {
                    m.annotations.get(REF_NAME).map(String::as_str) == Some(t)
                        || m.annotations.get(CONTAINERD_NAME).map(String::as_str) == Some(t)
                })
            })
            .cloned()
            .ok_or(ArchiveError::Ambiguous {
                path: archive.to_path_buf(),
                count,
            })?,
    };
    let carried = carried_name(&chosen);
    let mut descriptor = chosen;
    if references::is_index(&descriptor.media_type) {
        // A multi-platform image: the manifest for this machine.
        layout.stage_blob(tx, &descriptor)?;
        let bytes = tx.read(&descriptor.digest, MAX_MANIFEST_BYTES)?;
        let nested: PlatformIndex = parse(&bytes, archive, "OCI index")?;
        descriptor = nested
            .manifests
            .into_iter()
            .find(|m| {
                m.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == oci_architecture())
                    && references::is_manifest(&m.descriptor.media_type)
            })
            .map(|m| m.descriptor)
            .ok_or_else(|| ArchiveError::NoPlatform {
                path: archive.to_path_buf(),
                architecture: oci_architecture().to_string(),
            })?;
    }
    if !references::is_manifest(&descriptor.media_type) {
        return Err(ArchiveError::UnsupportedMedia {
            path: archive.to_path_buf(),
            media_type: descriptor.media_type,
        });
    }
    layout.stage_blob(tx, &descriptor)?;
    let manifest: Manifest = parse(
        &tx.read(&descriptor.digest, MAX_MANIFEST_BYTES)?,
        archive,
        "OCI manifest",
    )?;
    layout.stage_blob(tx, &manifest.config)?;
    let config: ImageConfig = parse(
        &tx.read(&manifest.config.digest, MAX_CONFIG_BYTES)?,
        archive,
        "OCI image config",
    )?;
    check_layer_count(&config, manifest.layers.len(), archive)?;
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        layout.stage_blob(tx, layer)?;
        check_diff_id(tx, layer, diff_id, &blob_name(&layer.digest), archive)?;
    }
    let descriptor = Descriptor {
        annotations: BTreeMap::new(),
        ..descriptor
    };
    Ok((descriptor, carried))
}

#[derive(Debug, Deserialize)]
struct PlatformIndex {
    manifests: Vec<PlatformDescriptor>,
}

#[derive(Debug, Deserialize)]
struct PlatformDescriptor {
    #[serde(flatten)]
    descriptor: Descriptor,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    os: String,
    architecture: String,
}

fn check_layer_count(
    config: &ImageConfig,
    layers: usize,
    archive: &Path,
) -> Result<(), ArchiveError> {
    if config.rootfs.diff_ids.len() != layers {
        return Err(ArchiveError::LayerCount {
            path: archive.to_path_buf(),
            layers,
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    Ok(())
}

/// The compression of a staged blob, from its first bytes.
fn compression_of(tx: &Transaction, digest: &Digest) -> Result<Compression, ArchiveError> {
    let mut head = Vec::with_capacity(4);
    tx.open(digest)?
        .take(4)
        .read_to_end(&mut head)
        .map_err(|source| ArchiveError::Io {
            path: tx.store().blob_path(digest),
            source,
        })?;
    Ok(Compression::detect(&head))
}

/// An uncompressed layer is its own diff_id: check it (free). A compressed one is checked
/// when it is unpacked (`build::layer_dirs`), which hashes what it decompresses.
fn check_diff_id(
    tx: &Transaction,
    layer: &Descriptor,
    diff_id: &str,
    entry: &str,
    archive: &Path,
) -> Result<(), ArchiveError> {
    let wrong = |actual: Digest| ArchiveError::DiffIdMismatch {
        path: archive.to_path_buf(),
        entry: entry.to_string(),
        expected: diff_id.to_string(),
        actual,
    };
    if diff_id.parse::<Digest>().is_err() {
        return Err(wrong(layer.digest.clone()));
    }
    if compression_of(tx, &layer.digest)? == Compression::None
        && layer.digest.to_string() != diff_id
    {
        return Err(wrong(layer.digest.clone()));
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

/// Reads a Docker archive: its config and layers, staged as the members are; a manifest
/// written for them. Returns the manifest's descriptor and the archive's first tag.
fn import_docker(
    tx: &Transaction,
    members: &Members,
    archive: &Path,
    tag: Option<&str>,
) -> Result<(Descriptor, Option<String>), ArchiveError> {
    let bytes = members.small_file(tx, "manifest.json", MAX_MANIFEST_BYTES)?;
    let entries: Vec<DockerManifestEntry> = parse(&bytes, archive, "Docker archive manifest")?;
    let entry = match entries.len() {
        0 => {
            return Err(ArchiveError::Empty {
                path: archive.to_path_buf(),
            });
        }
        1 => &entries[0],
        count => tag
            .and_then(|t| entries.iter().find(|e| e.repo_tags.iter().any(|r| r == t)))
            .ok_or(ArchiveError::Ambiguous {
                path: archive.to_path_buf(),
                count,
            })?,
    };
    let (config_digest, config_size) = members.resolve(&entry.config)?;
    let config: ImageConfig = parse(
        &tx.read(&config_digest, MAX_CONFIG_BYTES)?,
        archive,
        "image config",
    )?;
    check_layer_count(&config, entry.layers.len(), archive)?;
    let mut layers = Vec::new();
    for (name, diff_id) in entry.layers.iter().zip(&config.rootfs.diff_ids) {
        let (digest, size) = members.resolve(name)?;
        let layer = Descriptor {
            media_type: compression_of(tx, &digest)?.media_type().to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
        };
        check_diff_id(tx, &layer, diff_id, name, archive)?;
        layers.push(layer);
    }
    let manifest = Manifest::new(
        Descriptor {
            media_type: MEDIA_CONFIG.to_string(),
            digest: config_digest,
            size: config_size,
            annotations: BTreeMap::new(),
        },
        layers,
    );
    let (digest, size) = tx.put(&manifest.to_canonical_json(), None)?;
    let descriptor = Descriptor {
        media_type: MEDIA_MANIFEST.to_string(),
        digest,
        size,
        annotations: BTreeMap::new(),
    };
    Ok((descriptor, entry.repo_tags.first().cloned()))
}

/// Unpacks a root-filesystem tarball (safely, into a private temporary directory) and
/// stages it as a one-layer image.
fn import_rootfs(tx: &Transaction, file: File, archive: &Path) -> Result<Descriptor, ArchiveError> {
    let temp = tempfile::Builder::new()
        .prefix("kiln-import-")
        .tempdir()
        .map_err(io_err(archive))?;
    let root = temp.path().join("rootfs");
    std::fs::create_dir(&root).map_err(io_err(&root))?;
    let tar = layer::decompressing_reader(BufReader::new(file)).map_err(|source| {
        ArchiveError::Unpack {
            path: archive.to_path_buf(),
            source,
        }
    })?;
    let options = ExtractOptions {
        whiteouts: WhiteoutMode::Apply,
        preserve_ownership: nix::unistd::geteuid().is_root(),
        allow_devices: false,
    };
    layer::extract(tar, &root, &options).map_err(|source| ArchiveError::Unpack {
        path: archive.to_path_buf(),
        source,
    })?;
    let entries = Entries::scan_dir(&root, &ScanOptions::default()).map_err(ArchiveError::Layer)?;
    let options = layer::WriteOptions {
        compression: Compression::Zstd,
        source_date_epoch: 0,
        skip_implicit_dirs: false,
    };
    let mut writer = tx.writer(None)?;
    let info = layer::write(&entries, &options, &mut writer).map_err(ArchiveError::Layer)?;
    let (digest, size) = writer.finish()?;
    let mut config = ImageConfig::empty();
    config.created = Some(crate::timestamp::rfc3339_utc(0));
    config.rootfs.diff_ids = vec![info.diff_id.to_string()];
    let config_bytes = config.to_canonical_json();
    let (config_digest, config_size) = tx.put(&config_bytes, None)?;
    let manifest = Manifest::new(
        Descriptor {
            media_type: MEDIA_CONFIG.to_string(),
            digest: config_digest,
            size: config_size,
            annotations: BTreeMap::new(),
        },
        vec![Descriptor {
            media_type: info.media_type().to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
        }],
    );
    let (digest, size) = tx.put(&manifest.to_canonical_json(), None)?;
    Ok(Descriptor {
        media_type: MEDIA_MANIFEST.to_string(),
        digest,
        size,
        annotations: BTreeMap::new(),
    })
}
