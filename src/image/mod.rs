//! OCI images: the image config and manifest as kiln writes and reads them, and loading an
//! image from the store by name.
//!
//! Owns the JSON shapes (every map sorted, so bytes are stable) and the assembly of
//! config + layers into a manifest in the store. It must not build layers or know kiln.kdl.

mod archive;
mod config;
mod filter;
mod import;
mod manifest;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use crate::reference::{DEFAULT_REGISTRY, DOCKER_HUB_HOST, Reference, ReferenceError};
pub use archive::{
    ArchiveError, ArchiveFormat, ExportReport, export, media_compression, recompress_layer,
};
pub use config::{History, ImageConfig, RootFs, RuntimeConfig, oci_architecture};
pub use filter::ImageFilter;
pub use import::{Imported, import, import_untagged};
pub use manifest::{MEDIA_CONFIG, Manifest};

use crate::digest::Digest;
use crate::store::{Descriptor, MEDIA_MANIFEST, Store, StoreError};

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] StoreError),
    #[error("no image named `{name}` in the store")]
    #[diagnostic(help("`kiln images` lists the images; `kiln build` builds the project's"))]
    NotFound { name: String },
    #[error("invalid filter `{filter}`: {reason}")]
    #[diagnostic(help(
        "use KEY=VALUE with a key among reference, label, dangling (e.g. --filter reference='web*')"
    ))]
    BadFilter { filter: String, reason: String },
    #[error("{what} {digest} is not valid JSON for an OCI {what}")]
    Malformed {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// An image in the store: its manifest descriptor, manifest and config.
#[derive(Debug, Clone)]
pub struct StoredImage {
    pub descriptor: Descriptor,
    pub manifest: Manifest,
    pub config: ImageConfig,
}

impl StoredImage {
    /// Loads the image a tag (or a `sha256:` manifest digest) names.
    pub fn load(store: &Store, name: &str) -> Result<StoredImage, ImageError> {
        let descriptor = match name.parse::<Digest>() {
            Ok(digest) if store.contains(&digest) => Descriptor {
                media_type: MEDIA_MANIFEST.to_string(),
                size: std::fs::metadata(store.blob_path(&digest))
                    .map(|m| m.len())
                    .unwrap_or(0),
                digest,
                annotations: Default::default(),
            },
            _ => lookup_tag(store, name)?.ok_or_else(|| ImageError::NotFound {
                name: name.to_string(),
            })?,
        };
        Self::from_descriptor(store, descriptor)
    }

    /// Loads the image a tag names, `None` when the store has no such name.
    pub fn find(store: &Store, name: &str) -> Result<Option<StoredImage>, ImageError> {
        match Self::load(store, name) {
            Ok(image) => Ok(Some(image)),
            Err(ImageError::NotFound { .. }) => Ok(None),
            Err(other) => Err(other),
        }
    }

    pub fn from_descriptor(
        store: &Store,
        descriptor: Descriptor,
    ) -> Result<StoredImage, ImageError> {
        let bytes = store.read(&descriptor.digest)?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Malformed {
                what: "manifest",
                digest: descriptor.digest.clone(),
                source,
            })?;
        let config_bytes = store.read(&manifest.config.digest)?;
        let config: ImageConfig =
            serde_json::from_slice(&config_bytes).map_err(|source| ImageError::Malformed {
                what: "config",
                digest: manifest.config.digest.clone(),
                source,
            })?;
        Ok(StoredImage {
            descriptor,
            manifest,
            config,
        })
    }

    /// Compressed size of the layers plus the config and manifest.
    pub fn size(&self) -> u64 {
        self.descriptor.size
            + self.manifest.config.size
            + self.manifest.layers.iter().map(|l| l.size).sum::<u64>()
    }
}

/// The descriptor a name is tagged with: the name as written, else its familiar spelling as
/// a registry reference (`docker.io/library/debian` finds the pulled `debian:latest`).
pub fn lookup_tag(store: &Store, name: &str) -> Result<Option<Descriptor>, StoreError> {
    if let Some(found) = store.tag(name)? {
        return Ok(Some(found));
    }
    match Reference::parse(name) {
        Ok(reference) if reference.familiar() != name => store.tag(&reference.familiar()),
        _ => Ok(None),
    }
}

/// Writes `config` and a manifest over `layers` into the store; returns the manifest's
/// descriptor (untagged). Same inputs, same bytes, same digest.
pub fn write_image(
    store: &Store,
    config: &ImageConfig,
    layers: &[Descriptor],
) -> Result<(Descriptor, Manifest), ImageError> {
    let config_bytes = config.to_canonical_json();
    let (config_digest, config_size) = store.put(&config_bytes)?;
    let manifest = Manifest::new(
        Descriptor {
            media_type: MEDIA_CONFIG.to_string(),
            digest: config_digest,
            size: config_size,
            annotations: Default::default(),
        },
        layers.to_vec(),
    );
    let bytes = manifest.to_canonical_json();
    let (digest, size) = store.put(&bytes)?;
    Ok((
        Descriptor {
            media_type: MEDIA_MANIFEST.to_string(),
            digest,
            size,
            annotations: Default::default(),
        },
        manifest,
    ))
}
