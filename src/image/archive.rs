//! Export: an image as an OCI layout directory, an OCI archive (that directory as a tar) or
//! a Docker archive (`docker save` / `podman load` format), and the errors of both export
//! and import (`super::import` reads those formats back). Archives are written with the
//! deterministic tar writer, so exporting twice gives the same bytes. Blobs are copied out
//! of the store, never hard-linked: a link would let whoever can write the exported file
//! change the store's blob.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::{ImageError, Manifest, StoredImage};
use crate::digest::Digest;
use crate::layer::{self, Compression, Entries, Entry, ScanOptions, WriteOptions};
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
    #[error("`{entry}` in {} is a link to `{target}`, outside the archive", path.display())]
    #[diagnostic(help(
        "kiln reads archives as data and never follows a link out of one; nothing was imported"
    ))]
    LinkOutside {
        path: PathBuf,
        entry: String,
        target: String,
    },
    #[error("`{entry}` in {} is a symbolic link", path.display())]
    #[diagnostic(help(
        "an OCI layout is read without following links (one could lead to any file of the machine); \
         copy the real files in; nothing was imported"
    ))]
    SymlinkInLayout { path: PathBuf, entry: String },
    #[error("`{entry}` in {} is not a regular file", path.display())]
    #[diagnostic(help("the archive is malformed or hostile; nothing was imported"))]
    NotAFile { path: PathBuf, entry: String },
    #[error("`{entry}` in {} is unsafe: {reason}", path.display())]
    #[diagnostic(help("the archive is malformed or hostile; nothing was imported"))]
    UnsafeEntry {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    #[error("`{entry}` in {} is not what its descriptor says", path.display())]
    BadBlob {
        path: PathBuf,
        entry: String,
        #[source]
        #[diagnostic_source]
        source: crate::store::StoreError,
    },
    #[error("{} has {layers} layers but its config lists {diff_ids} diff_ids", path.display())]
    #[diagnostic(help("the archive is malformed or hostile; nothing was imported"))]
    LayerCount {
        path: PathBuf,
        layers: usize,
        diff_ids: usize,
    },
    #[error("layer `{entry}` in {} hashes to {actual}, but the config says {expected}", path.display())]
    #[diagnostic(help(
        "a layer must be the one its image config names (kiln keys unpacked layers by it); \
         nothing was imported"
    ))]
    DiffIdMismatch {
        path: PathBuf,
        entry: String,
        expected: String,
        actual: Digest,
    },
    #[error("{} has two members named `{entry}`", path.display())]
    #[diagnostic(help("the archive is malformed or hostile; nothing was imported"))]
    Duplicate { path: PathBuf, entry: String },
    #[error("`{entry}` in {} is not where image archives keep their files", path.display())]
    #[diagnostic(help(
        "kiln imports what docker save, podman save and OCI tools write: blobs/sha256/…, \
         <id>/layer.tar, <id>.tar, <id>.json"
    ))]
    UnsupportedMember { path: PathBuf, entry: String },
    #[error("{} names a `{media_type}`, which kiln cannot import", path.display())]
    UnsupportedMedia { path: PathBuf, media_type: String },
    #[error("{} has no image for linux/{architecture}", path.display())]
    NoPlatform { path: PathBuf, architecture: String },
    #[error("{} is not a file kiln can read twice", path.display())]
    #[diagnostic(help(
        "a root filesystem tarball is read twice (once to find its format); save it to a file first"
    ))]
    NotSeekable { path: PathBuf },
    #[error("{} is not an OCI image layout: it has no `oci-layout` file", path.display())]
    NotALayout { path: PathBuf },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ArchiveError + '_ {
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
            // A copy (copy_file_range: a reflink where the filesystem can), never a hard
            // link: the exported file must not be the store's blob.
            fs::copy(path, &target).map(|_| ()).map_err(io_err(&target))
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
