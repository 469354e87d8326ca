//! Export and import: an image as an OCI layout directory, an OCI archive (that directory as
//! a tar) or a Docker archive (`docker save` / `podman load` format); and import of those
//! plus plain root-filesystem tarballs.
//!
//! Every archive is unpacked with the layer module's safe extraction (no absolute paths, no
//! `..`, no symlink escapes, no devices) into a temporary directory before anything is read,
//! and every blob is re-hashed on its way into the store; a digest that does not match is an
//! error and nothing is tagged. Archives are written with the deterministic tar writer, so
//! exporting twice gives the same bytes.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ImageConfig, ImageError, MEDIA_CONFIG, Manifest, StoredImage, write_image};
use crate::digest::Digest;
use crate::layer::{
    self, Compression, Entries, Entry, ExtractOptions, ScanOptions, WhiteoutMode, WriteOptions,
};
use crate::store::{Descriptor, MEDIA_INDEX, MEDIA_MANIFEST, REF_NAME, Store};

/// The container formats of `kiln export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// An OCI image layout directory.
    OciDir,
    /// An OCI image layout in a tar file.
    OciArchive,
    /// `docker save` format: manifest.json, the config and one uncompressed tar per layer.
    DockerArchive,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ArchiveError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("archive I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot unpack {}", path.display())]
    Unpack {
        path: PathBuf,
        #[source]
        #[diagnostic_source]
        source: layer::LayerError,
    },
    #[error("cannot write a layer")]
    Layer(#[source] layer::LayerError),
    #[error("{} is not a valid {what}", path.display())]
    Malformed {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{} holds no image", path.display())]
    Empty { path: PathBuf },
    #[error("{} holds {count} images", path.display())]
    #[diagnostic(help("name the one to import with --tag (its name in the archive)"))]
    Ambiguous { path: PathBuf, count: usize },
    #[error("blob {expected} in {} has the wrong content (it hashes to {actual})", path.display())]
    DigestMismatch {
        path: PathBuf,
        expected: Digest,
        actual: Digest,
    },
    #[error("{} refers to `{entry}`, which the archive lacks", path.display())]
    MissingEntry { path: PathBuf, entry: String },
    #[error("{} already exists", path.display())]
    #[diagnostic(help("remove it or choose another output path"))]
    OutputExists { path: PathBuf },
    #[error("{} has no tag and none was given", path.display())]
    #[diagnostic(help("give one with --tag NAME"))]
    NoTag { path: PathBuf },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What an export wrote.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub manifest: Digest,
    pub bytes: u64,
}

/// Writes `image` (named `name` inside the archive) to `out`. `compression` recompresses the
/// layers for OCI formats (`None`: keep them as stored); Docker archives always hold
/// uncompressed layers, as `docker load` expects.
pub fn export(
    store: &Store,
    image: &StoredImage,
    name: &str,
    format: ArchiveFormat,
    compression: Option<Compression>,
    out: &Path,
) -> Result<ExportReport, ArchiveError> {
    if out.exists() && !(out.is_dir() && fs::read_dir(out).map_err(io_err(out))?.next().is_none()) {
        return Err(ArchiveError::OutputExists {
            path: out.to_path_buf(),
        });
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::Builder::new()
        .prefix(".kiln-export-")
        .tempdir_in(parent)
        .map_err(io_err(parent))?;
    let staging = temp.path().join("out");
    fs::create_dir(&staging).map_err(io_err(&staging))?;
    let manifest = match format {
        ArchiveFormat::OciDir | ArchiveFormat::OciArchive => {
            write_oci_layout(store, image, name, compression, &staging)?
        }
        ArchiveFormat::DockerArchive => write_docker_dir(store, image, name, &staging)?,
    };
    match format {
        ArchiveFormat::OciDir => {
            if out.exists() {
                fs::remove_dir(out).map_err(io_err(out))?;
            }
            fs::rename(&staging, out).map_err(io_err(out))?;
        }
        ArchiveFormat::OciArchive | ArchiveFormat::DockerArchive => {
            let entries = Entries::scan_dir(&staging, &ScanOptions::default())
                .map_err(ArchiveError::Layer)?;
            let entries = normalize_ownership(entries)?;
            let tar_path = temp.path().join("archive.tar");
            let file = File::create(&tar_path).map_err(io_err(&tar_path))?;
            let options = WriteOptions {
                compression: Compression::None,
                source_date_epoch: 0,
                skip_implicit_dirs: false,
            };
            let mut writer = io::BufWriter::new(file);
            layer::write(&entries, &options, &mut writer).map_err(ArchiveError::Layer)?;
            let file = writer
                .into_inner()
                .map_err(|e| io_err(&tar_path)(e.into_error()))?;
            file.sync_all().map_err(io_err(&tar_path))?;
            fs::rename(&tar_path, out).map_err(io_err(out))?;
        }
    }
    let bytes = dir_or_file_size(out);
    Ok(ExportReport { manifest, bytes })
}

/// Archive members belong to root with plain modes, whoever ran the export.
fn normalize_ownership(entries: Entries) -> Result<Entries, ArchiveError> {
    let mut out = Entries::new();
    for (path, entry) in entries.iter() {
        let mode = if entry.kind.is_dir() { 0o755 } else { 0o644 };
        out.insert(path, Entry::new(entry.kind.clone(), mode, 0, 0))
            .map_err(ArchiveError::Layer)?;
    }
    Ok(out)
}

fn dir_or_file_size(path: &Path) -> u64 {
    fn walk(path: &Path) -> u64 {
        match fs::symlink_metadata(path) {
            Ok(meta) if meta.is_dir() => fs::read_dir(path)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| walk(&e.path()))
                        .sum()
                })
                .unwrap_or(0),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        }
    }
    walk(path)
}

fn write_blob(dir: &Path, digest: &Digest, content: BlobSource<'_>) -> Result<(), ArchiveError> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).map_err(io_err(&blobs))?;
    let target = blobs.join(digest.hex());
    match content {
        BlobSource::Bytes(bytes) => fs::write(&target, bytes).map_err(io_err(&target)),
        BlobSource::File(path) => {
            // A hard link when the store is on the same filesystem; a copy otherwise.
            fs::hard_link(path, &target)
                .or_else(|_| fs::copy(path, &target).map(|_| ()))
                .map_err(io_err(&target))
        }
    }
}

enum BlobSource<'a> {
    Bytes(&'a [u8]),
    File(&'a Path),
}

/// The layers of `image` in `compression` (or as stored): their descriptors, written into
/// `dir/blobs`.
fn export_layers(
    store: &Store,
    image: &StoredImage,
    compression: Option<Compression>,
    dir: &Path,
) -> Result<Vec<Descriptor>, ArchiveError> {
    let mut layers = Vec::new();
    for layer in &image.manifest.layers {
        let current = media_compression(&layer.media_type);
        let wanted = compression.unwrap_or(current);
        if wanted == current {
            write_blob(
                dir,
                &layer.digest,
                BlobSource::File(&store.blob_path(&layer.digest)),
            )?;
            layers.push(layer.clone());
            continue;
        }
        let recompressed = dir.join(".recompress");
        let digest = recompress(store, layer, wanted, &recompressed)?;
        let size = fs::metadata(&recompressed)
            .map_err(io_err(&recompressed))?
            .len();
        write_blob(dir, &digest, BlobSource::File(&recompressed))?;
        fs::remove_file(&recompressed).map_err(io_err(&recompressed))?;
        layers.push(Descriptor {
            media_type: wanted.media_type().to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
        });
    }
    Ok(layers)
}

/// The compression a layer media type names.
pub fn media_compression(media_type: &str) -> Compression {
    if media_type.ends_with("+zstd") {
        Compression::Zstd
    } else if media_type.ends_with("+gzip") || media_type.ends_with(".tar.gzip") {
        Compression::Gzip
    } else {
        Compression::None
    }
}

/// A stored layer compressed as `to` instead, written into the store (the tar, and so the
/// diff_id, stay the same). For `kiln push --compression`.
pub fn recompress_layer(
    store: &Store,
    layer: &Descriptor,
    to: Compression,
) -> Result<Descriptor, ArchiveError> {
    let path = store.blob_path(&layer.digest);
    let blob = store.open_blob(&layer.digest)?;
    let mut tar = layer::decompressing_reader(BufReader::new(blob)).map_err(|source| {
        ArchiveError::Unpack {
            path: path.clone(),
            source,
        }
    })?;
    let mut ingest = store.ingest()?;
    layer::compress_stream(&mut tar, to, &mut ingest).map_err(io_err(&path))?;
    let (digest, size) = ingest.commit()?;
    Ok(Descriptor {
        media_type: to.media_type().to_string(),
        digest,
        size,
        annotations: BTreeMap::new(),
    })
}

/// Decompresses a stored layer and compresses it again as `to` into `out`; the tar bytes
/// (and so the diff_id) stay the same.
fn recompress(
    store: &Store,
    layer: &Descriptor,
    to: Compression,
    out: &Path,
) -> Result<Digest, ArchiveError> {
    let blob = store.open_blob(&layer.digest)?;
    let mut tar = layer::decompressing_reader(BufReader::new(blob)).map_err(|source| {
        ArchiveError::Unpack {
            path: store.blob_path(&layer.digest),
            source,
        }
    })?;
    let file = File::create(out).map_err(io_err(out))?;
    let mut hashing = HashingWriter::new(io::BufWriter::new(file));
    layer::compress_stream(&mut tar, to, &mut hashing).map_err(io_err(out))?;
    let (digest, _) = hashing.finish().map_err(io_err(out))?;
    Ok(digest)
}

/// A writer that hashes (sha256) what passes through.
struct HashingWriter<W: io::Write> {
    inner: W,
    hasher: sha2::Sha256,
    size: u64,
}

impl<W: io::Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
            size: 0,
        }
    }

    fn finish(mut self) -> io::Result<(Digest, u64)> {
        self.inner.flush()?;
        Ok((Digest::from_hasher(self.hasher), self.size))
    }
}

impl<W: io::Write> io::Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn write_oci_layout(
    store: &Store,
    image: &StoredImage,
    name: &str,
    compression: Option<Compression>,
    dir: &Path,
) -> Result<Digest, ArchiveError> {
    let layers = export_layers(store, image, compression, dir)?;
    let config = &image.manifest.config;
    write_blob(
        dir,
        &config.digest,
        BlobSource::File(&store.blob_path(&config.digest)),
    )?;
    let (manifest_digest, manifest_size) = if layers == image.manifest.layers {
        write_blob(
            dir,
            &image.descriptor.digest,
            BlobSource::File(&store.blob_path(&image.descriptor.digest)),
        )?;
        (image.descriptor.digest.clone(), image.descriptor.size)
    } else {
        let manifest = Manifest::new(config.clone(), layers);
        let bytes = manifest.to_canonical_json();
        let digest = Digest::of(&bytes);
        write_blob(dir, &digest, BlobSource::Bytes(&bytes))?;
        (digest, bytes.len() as u64)
    };
    let mut annotations = BTreeMap::new();
    annotations.insert(REF_NAME.to_string(), name.to_string());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [Descriptor {
            media_type: MEDIA_MANIFEST.to_string(),
            digest: manifest_digest.clone(),
            size: manifest_size,
            annotations,
        }],
    });
    let index_path = dir.join("index.json");
    fs::write(
        &index_path,
        serde_json::to_vec(&index).expect("an index serializes"),
    )
    .map_err(io_err(&index_path))?;
    let layout = dir.join("oci-layout");
    fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(io_err(&layout))?;
    Ok(manifest_digest)
}

/// `web` → `web:latest`; names with a tag stay as they are.
fn docker_reference(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

fn write_docker_dir(
    store: &Store,
    image: &StoredImage,
    name: &str,
    dir: &Path,
) -> Result<Digest, ArchiveError> {
    let config_digest = &image.manifest.config.digest;
    let config_name = format!("{}.json", config_digest.hex());
    let config_path = dir.join(&config_name);
    fs::copy(store.blob_path(config_digest), &config_path).map_err(io_err(&config_path))?;
    let mut layer_names = Vec::new();
    for (layer, diff_id) in image
        .manifest
        .layers
        .iter()
        .zip(&image.config.rootfs.diff_ids)
    {
        let hex = diff_id.strip_prefix("sha256:").unwrap_or(diff_id);
        let layer_dir = dir.join(hex);
        fs::create_dir_all(&layer_dir).map_err(io_err(&layer_dir))?;
        let target = layer_dir.join("layer.tar");
        let blob = store.open_blob(&layer.digest)?;
        let mut tar = layer::decompressing_reader(BufReader::new(blob)).map_err(|source| {
            ArchiveError::Unpack {
                path: store.blob_path(&layer.digest),
                source,
            }
        })?;
        let mut file = File::create(&target).map_err(io_err(&target))?;
        io::copy(&mut tar, &mut file).map_err(io_err(&target))?;
        layer_names.push(format!("{hex}/layer.tar"));
    }
    let manifest = serde_json::json!([{
        "Config": config_name,
        "RepoTags": [docker_reference(name)],
        "Layers": layer_names,
    }]);
    let path = dir.join("manifest.json");
    fs::write(
        &path,
        serde_json::to_vec(&manifest).expect("a manifest serializes"),
    )
    .map_err(io_err(&path))?;
    Ok(image.descriptor.digest.clone())
}

/// What `import` found and stored.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub descriptor: Descriptor,
    pub format: &'static str,
}

/// Imports an OCI layout directory, an OCI or Docker archive, or a root-filesystem tarball
/// (optionally gzip/zstd compressed) into the store under `tag` (for archives: default the
/// name they carry). Nothing is tagged unless every blob checked out.
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

    /// Tags the image unless untagged; returns the name it got ("" when untagged).
    fn apply(
        self,
        store: &Store,
        carried: Option<String>,
        descriptor: &Descriptor,
        archive: &Path,
    ) -> Result<String, ArchiveError> {
        match self {
            Naming::Untagged => Ok(String::new()),
            Naming::Tag(tag) => {
                let name =
                    tag.map(str::to_string)
                        .or(carried)
                        .ok_or_else(|| ArchiveError::NoTag {
                            path: archive.to_path_buf(),
                        })?;
                store.set_tag(&name, descriptor)?;
                Ok(name)
            }
        }
    }
}

fn import_with(store: &Store, path: &Path, naming: Naming<'_>) -> Result<Imported, ArchiveError> {
    if path.is_dir() {
        return import_oci_dir(store, path, path, naming);
    }
    let temp = tempfile::Builder::new()
        .prefix("kiln-import-")
        .tempdir()
        .map_err(|e| io_err(path)(e))?;
    let root = temp.path().join("archive");
    fs::create_dir(&root).map_err(io_err(&root))?;
    let file = File::open(path).map_err(io_err(path))?;
    let tar = layer::decompressing_reader(BufReader::new(file)).map_err(|source| {
        ArchiveError::Unpack {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let options = ExtractOptions {
        whiteouts: WhiteoutMode::Apply,
        preserve_ownership: nix::unistd::geteuid().is_root(),
        allow_devices: false,
    };
    layer::extract(tar, &root, &options).map_err(|source| ArchiveError::Unpack {
        path: path.to_path_buf(),
        source,
    })?;
    if root.join("oci-layout").is_file() && root.join("index.json").is_file() {
        import_oci_dir(store, &root, path, naming)
    } else if root.join("manifest.json").is_file() {
        import_docker_dir(store, &root, path, naming)
    } else {
        import_rootfs(store, &root, path, naming)
    }
}

#[derive(Debug, Deserialize)]
struct OciIndex {
    manifests: Vec<Descriptor>,
}

/// Copies `file` into the store, checking that it hashes to `expected`.
fn ingest_checked(
    store: &Store,
    file: &Path,
    expected: &Digest,
    archive: &Path,
) -> Result<u64, ArchiveError> {
    if store.contains(expected) {
        return Ok(fs::metadata(store.blob_path(expected))
            .map(|m| m.len())
            .unwrap_or(0));
    }
    let mut ingest = store.ingest()?;
    let mut source = File::open(file).map_err(io_err(file))?;
    io::copy(&mut source, &mut ingest).map_err(io_err(file))?;
    let (actual, size) = ingest.commit()?;
    if &actual != expected {
        return Err(ArchiveError::DigestMismatch {
            path: archive.to_path_buf(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(size)
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    what: &'static str,
) -> Result<T, ArchiveError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    serde_json::from_slice(&bytes).map_err(|source| ArchiveError::Malformed {
        path: path.to_path_buf(),
        what,
        source,
    })
}

fn import_oci_dir(
    store: &Store,
    dir: &Path,
    archive: &Path,
    naming: Naming<'_>,
) -> Result<Imported, ArchiveError> {
    let tag = naming.wanted();
    let index: OciIndex = read_json(&dir.join("index.json"), "OCI index")?;
    let chosen = match index.manifests.len() {
        0 => {
            return Err(ArchiveError::Empty {
                path: archive.to_path_buf(),
            });
        }
        1 => index.manifests[0].clone(),
        count => tag
            .and_then(|t| {
                index
                    .manifests
                    .iter()
                    .find(|m| m.annotations.get(REF_NAME).map(String::as_str) == Some(t))
            })
            .cloned()
            .ok_or(ArchiveError::Ambiguous {
                path: archive.to_path_buf(),
                count,
            })?,
    };
    let blob = |digest: &Digest| dir.join("blobs/sha256").join(digest.hex());
    let manifest_path = blob(&chosen.digest);
    if !manifest_path.is_file() {
        return Err(ArchiveError::MissingEntry {
            path: archive.to_path_buf(),
            entry: format!("blobs/sha256/{}", chosen.digest.hex()),
        });
    }
    let manifest: Manifest = read_json(&manifest_path, "OCI manifest")?;
    for descriptor in manifest.layers.iter().chain([&manifest.config]) {
        let path = blob(&descriptor.digest);
        if !path.is_file() {
            return Err(ArchiveError::MissingEntry {
                path: archive.to_path_buf(),
                entry: format!("blobs/sha256/{}", descriptor.digest.hex()),
            });
        }
        ingest_checked(store, &path, &descriptor.digest, archive)?;
    }
    // The config must parse as one, or the image is useless.
    let _: ImageConfig = read_json(&blob(&manifest.config.digest), "OCI image config")?;
    let size = ingest_checked(store, &manifest_path, &chosen.digest, archive)?;
    let carried = chosen.annotations.get(REF_NAME).cloned();
    let descriptor = Descriptor {
        media_type: MEDIA_MANIFEST.to_string(),
        digest: chosen.digest,
        size,
        annotations: BTreeMap::new(),
    };
    let name = naming.apply(store, carried, &descriptor, archive)?;
    Ok(Imported {
        name,
        descriptor,
        format: "oci",
    })
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Vec<String>,
    layers: Vec<String>,
}

fn import_docker_dir(
    store: &Store,
    dir: &Path,
    archive: &Path,
    naming: Naming<'_>,
) -> Result<Imported, ArchiveError> {
    let tag = naming.wanted();
    let entries: Vec<DockerManifestEntry> =
        read_json(&dir.join("manifest.json"), "Docker archive manifest")?;
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
    let member = |name: &str| -> Result<PathBuf, ArchiveError> {
        let path = dir.join(name);
        // Names come from the archive: they must stay inside it (extraction already made
        // sure no link leads out).
        if name.split('/').any(|c| c == "..") || name.starts_with('/') || !path.is_file() {
            return Err(ArchiveError::MissingEntry {
                path: archive.to_path_buf(),
                entry: name.to_string(),
            });
        }
        Ok(path)
    };
    let config_path = member(&entry.config)?;
    let config_bytes = fs::read(&config_path).map_err(io_err(&config_path))?;
    let config: ImageConfig =
        serde_json::from_slice(&config_bytes).map_err(|source| ArchiveError::Malformed {
            path: config_path.clone(),
            what: "image config",
            source,
        })?;
    let (config_digest, config_size) = store.put(&config_bytes)?;
    let mut layers = Vec::new();
    for (index, name) in entry.layers.iter().enumerate() {
        let path = member(name)?;
        let mut head = [0u8; 4];
        let n = File::open(&path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(io_err(&path))?;
        let compression = Compression::detect(&head[..n]);
        let mut ingest = store.ingest()?;
        let mut source = File::open(&path).map_err(io_err(&path))?;
        io::copy(&mut source, &mut ingest).map_err(io_err(&path))?;
        let (digest, size) = ingest.commit()?;
        if compression == Compression::None
            && let Some(expected) = config.rootfs.diff_ids.get(index)
            && *expected != digest.to_string()
        {
            return Err(ArchiveError::DigestMismatch {
                path: archive.to_path_buf(),
                expected: expected.parse().unwrap_or_else(|_| digest.clone()),
                actual: digest,
            });
        }
        layers.push(Descriptor {
            media_type: compression.media_type().to_string(),
            digest,
            size,
            annotations: BTreeMap::new(),
        });
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
    let bytes = manifest.to_canonical_json();
    let (digest, size) = store.put(&bytes)?;
    let descriptor = Descriptor {
        media_type: MEDIA_MANIFEST.to_string(),
        digest,
        size,
        annotations: BTreeMap::new(),
    };
    let name = naming.apply(
        store,
        entry.repo_tags.first().cloned(),
        &descriptor,
        archive,
    )?;
    Ok(Imported {
        name,
        descriptor,
        format: "docker",
    })
}

fn import_rootfs(
    store: &Store,
    root: &Path,
    archive: &Path,
    naming: Naming<'_>,
) -> Result<Imported, ArchiveError> {
    if let Naming::Tag(None) = naming {
        return Err(ArchiveError::NoTag {
            path: archive.to_path_buf(),
        });
    }
    let entries = Entries::scan_dir(root, &ScanOptions::default()).map_err(ArchiveError::Layer)?;
    let options = WriteOptions {
        compression: Compression::Zstd,
        source_date_epoch: 0,
        skip_implicit_dirs: false,
    };
    let mut ingest = store.ingest()?;
    let info = layer::write(&entries, &options, &mut ingest).map_err(ArchiveError::Layer)?;
    let (digest, size) = ingest.commit()?;
    let mut config = ImageConfig::empty();
    config.created = Some(crate::timestamp::rfc3339_utc(0));
    config.rootfs.diff_ids = vec![info.diff_id.to_string()];
    let layer = Descriptor {
        media_type: info.media_type().to_string(),
        digest,
        size,
        annotations: BTreeMap::new(),
    };
    let (descriptor, _) = write_image(store, &config, &[layer])?;
    let name = naming.apply(store, None, &descriptor, archive)?;
    Ok(Imported {
        name,
        descriptor,
        format: "rootfs",
    })
}
