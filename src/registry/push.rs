//! `kiln push`: an image of the store → blobs the registry lacks → the manifest.
//!
//! Each blob is asked about first (`HEAD /v2/NAME/blobs/DIGEST`), so a second push of the
//! same image sends no layer. A blob the registry lacks is mounted from another repository
//! of the same registry when kiln has seen it there (pulled from or pushed to it), else
//! uploaded: in one `PUT` up to the chunk size, in `PATCH` chunks with `Content-Range`
//! above it (a chunk the registry did not take whole is resumed from the offset the upload's
//! status reports). Layers go as stored (zstd unless built otherwise), or recompressed with
//! `--compression` (once: the result is kept in the store). The manifest goes last, by tag.

use serde::{Deserialize, Serialize};
use ureq::http::Method;

use super::client::{Body, Client, Req, with_query};
use super::{BlobReport, Event, Events, NetOptions, Outcome, Reference, RegistryError};
use crate::digest::Digest;
use crate::image::{Manifest, StoredImage, media_compression, recompress_layer};
use crate::layer::Compression;
use crate::store::{Descriptor, MEDIA_MANIFEST, Store};

/// Parallel blob uploads.
const PARALLEL: usize = 3;
/// Store records: where a blob is known to be (`registry/repository`), for mounts.
const LOCATIONS: &str = "registry-blobs";
/// Store records: a layer recompressed (`HEX-gzip` → the other blob's descriptor).
const RECOMPRESSED: &str = "recompressed";

#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Recompress layers that are not already so (`--compression`).
    pub compression: Option<Compression>,
    /// Blobs above this go in chunks of this size.
    pub chunk_size: u64,
    pub net: NetOptions,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            compression: None,
            chunk_size: 64 * 1024 * 1024,
            net: NetOptions::default(),
        }
    }
}

/// What a push did.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub reference: String,
    /// The manifest digest in the registry.
    pub digest: Digest,
    /// The manifest's size plus every blob's.
    pub size: u64,
    pub blobs: Vec<BlobReport>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Locations {
    repositories: Vec<String>,
}

/// Notes that a blob is in `registry/repository` (a hint for mounts: stale is harmless).
pub(crate) fn remember(store: &Store, digest: &Digest, location: &str) {
    let mut known = locations(store, digest);
    if known.repositories.iter().any(|r| r == location) {
        return;
    }
    known.repositories.insert(0, location.to_string());
    known.repositories.truncate(8);
    let bytes = serde_json::to_vec(&known).expect("serializes");
    let _ = store.put_meta(LOCATIONS, digest.hex(), &bytes);
}

fn locations(store: &Store, digest: &Digest) -> Locations {
    store
        .get_meta(LOCATIONS, digest.hex())
        .ok()
        .flatten()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The layer as `to`, recompressing it into the store once.
fn layer_as(
    store: &Store,
    layer: &Descriptor,
    to: Compression,
) -> Result<Descriptor, RegistryError> {
    if media_compression(&layer.media_type) == to {
        return Ok(layer.clone());
    }
    let key = format!(
        "{}-{}",
        layer.digest.hex(),
        match to {
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    );
    if let Some(bytes) = store.get_meta(RECOMPRESSED, &key)?
        && let Ok(done) = serde_json::from_slice::<Descriptor>(&bytes)
        && store.contains(&done.digest)
    {
        return Ok(done);
    }
    let done = recompress_layer(store, layer, to).map_err(|e| RegistryError::Io {
        path: store.blob_path(&layer.digest),
        source: std::io::Error::other(e.to_string()),
    })?;
    store.put_meta(
        RECOMPRESSED,
        &key,
        &serde_json::to_vec(&done).expect("serializes"),
    )?;
    Ok(done)
}

/// Pushes `image` to `reference` (a tag, or a digest that must be the manifest's).
pub fn push(
    store: &Store,
    image: &StoredImage,
    reference: &Reference,
    options: &PushOptions,
    events: Events<'_>,
) -> Result<Pushed, RegistryError> {
    let _lock = store.lock_shared()?;
    let client = Client::new(
        &reference.registry,
        reference.api_host(),
        &reference.repository,
        &options.net,
        events,
    )?;
    let layers: Vec<Descriptor> = match options.compression {
        None => image.manifest.layers.clone(),
        Some(to) => image
            .manifest
            .layers
            .iter()
            .map(|l| layer_as(store, l, to))
            .collect::<Result<_, _>>()?,
    };
    let (manifest_bytes, media_type) = if layers == image.manifest.layers {
        (
            store.read(&image.descriptor.digest)?,
            image.descriptor.media_type.clone(),
        )
    } else {
        let mut manifest = Manifest::new(image.manifest.config.clone(), layers.clone());
        manifest.annotations = image.manifest.annotations.clone();
        (manifest.to_canonical_json(), MEDIA_MANIFEST.to_string())
    };
    let manifest_digest = Digest::of(&manifest_bytes);
    if let Some(wanted) = &reference.digest
        && *wanted != manifest_digest
    {
        return Err(RegistryError::ManifestDigest {
            reference: reference.familiar(),
            expected: wanted.clone(),
            actual: manifest_digest,
        });
    }

    let mut blobs: Vec<Descriptor> = vec![image.manifest.config.clone()];
    for layer in &layers {
        if !blobs.iter().any(|b| b.digest == layer.digest) {
            blobs.push(layer.clone());
        }
    }
    let target_location = reference.full_name();
    let outcomes = super::parallel(&blobs, PARALLEL, |blob| {
        let outcome = push_blob(store, &client, reference, blob, options.chunk_size)?;
        remember(store, &blob.digest, &target_location);
        Ok(outcome)
    })?;

    let api_reference = reference
        .tag
        .clone()
        .unwrap_or_else(|| manifest_digest.to_string());
    let what = format!("PUT manifest {}", reference.familiar());
    let scope = format!("repository:{}:pull,push", reference.repository);
    let target = format!("/v2/{}/manifests/{api_reference}", reference.repository);
    let response = client.send(
        &Req::new(Method::PUT, &target, &scope, &what)
            .header("content-type", media_type)
            .body(Body::Bytes(&manifest_bytes)),
    )?;
    if !response.status().is_success() {
        return Err(client.fail(response, &what, "repository"));
    }
    if let Some(answered) = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok())
        && answered != manifest_digest
    {
        return Err(RegistryError::ManifestDigest {
            reference: reference.familiar(),
            expected: manifest_digest,
            actual: answered,
        });
    }
    let reports: Vec<BlobReport> = blobs
        .iter()
        .zip(outcomes)
        .map(|(b, outcome)| BlobReport {
            digest: b.digest.clone(),
            size: b.size,
            outcome,
        })
        .collect();
    Ok(Pushed {
        reference: reference.familiar(),
        size: manifest_bytes.len() as u64 + reports.iter().map(|b| b.size).sum::<u64>(),
        digest: manifest_digest,
        blobs: reports,
    })
}

fn header(response: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// One blob: skipped when the registry has it, mounted when it can be, uploaded otherwise.
fn push_blob(
    store: &Store,
    client: &Client<'_>,
    reference: &Reference,
    blob: &Descriptor,
    chunk_size: u64,
) -> Result<Outcome, RegistryError> {
    let events = client.events();
    let repo = &reference.repository;
    let digest = &blob.digest;
    events(Event::BlobStarted {
        digest: digest.clone(),
        size: blob.size,
    });
    let done = |outcome| {
        events(Event::BlobDone {
            digest: digest.clone(),
            outcome,
        });
        Ok(outcome)
    };
    let scope = format!("repository:{repo}:pull,push");
    let what = format!("HEAD blob {digest}");
    let target = format!("/v2/{repo}/blobs/{digest}");
    let response = client.send(&Req::new(Method::HEAD, &target, &scope, &what))?;
    match response.status().as_u16() {
        200 => return done(Outcome::Skipped),
        404 => {}
        _ => return Err(client.fail(response, &what, "repository")),
    }
    let path = store.blob_path(digest);
    if !path.is_file() {
        return Err(crate::store::StoreError::MissingBlob {
            digest: digest.clone(),
        }
        .into());
    }

    // A mount from another repository of this registry, where kiln saw the blob.
    let prefix = format!("{}/", reference.registry);
    let source = locations(store, digest)
        .repositories
        .into_iter()
        .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
        .find(|r| r != repo);
    let mut location = None;
    if let Some(from) = &source {
        let what = format!("mount blob {digest} from {from}");
        let mount_scope = format!("{scope} repository:{from}:pull");
        let target = format!(
            "/v2/{repo}/blobs/uploads/?mount={}&from={}",
            digest,
            super::client::query_escape(from)
        );
        let response = client.send(&Req::new(Method::POST, &target, &mount_scope, &what))?;
        match response.status().as_u16() {
            201 => return done(Outcome::Mounted),
            // Not mounted: the registry opened an upload instead.
            202 => location = header(&response, "location"),
            _ => {}
        }
    }
    let (location, min_chunk) = match location {
        Some(l) => (l, 0),
        None => {
            let what = format!("start upload of {digest}");
            let target = format!("/v2/{repo}/blobs/uploads/");
            let response = client.send(&Req::new(Method::POST, &target, &scope, &what))?;
            if response.status().as_u16() != 202 {
                return Err(client.fail(response, &what, "repository"));
            }
            let min = header(&response, "oci-chunk-min-length")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            let location =
                header(&response, "location").ok_or_else(|| RegistryError::Malformed {
                    registry: client.registry().to_string(),
                    what: what.clone(),
                    reason: "the answer has no Location".to_string(),
                })?;
            (location, min)
        }
    };
    let mut location = client.url(&super::client::resolve_location(
        &client.url(&format!("/v2/{repo}/blobs/uploads/"))?,
        &location,
    ))?;
    let chunk = chunk_size.max(min_chunk).max(1);
    let what = format!("upload blob {digest}");
    if blob.size <= chunk {
        // Monolithic: the whole blob in the closing PUT.
        let url = with_query(&location, "digest", &digest.to_string());
        let mut req = Req::new(Method::PUT, &url, &scope, &what)
            .header("content-type", "application/octet-stream")
            .body(Body::File {
                path: &path,
                offset: 0,
                len: blob.size,
            });
        req.progress = Some(digest);
        let response = client.send(&req)?;
        if response.status().as_u16() != 201 {
            return Err(client.fail(response, &what, "upload"));
        }
        return done(Outcome::Transferred);
    }
    // Chunked: PATCH ranges, each answer saying where to send the next.
    let mut offset = 0u64;
    let mut resumed = 0;
    while offset < blob.size {
        let len = chunk.min(blob.size - offset);
        let mut req = Req::new(Method::PATCH, &location, &scope, &what)
            .header("content-type", "application/octet-stream")
            .header("content-range", format!("{}-{}", offset, offset + len - 1))
            .body(Body::File {
                path: &path,
                offset,
                len,
            });
        req.progress = Some(digest);
        let response = client.send(&req)?;
        match response.status().as_u16() {
            202 => {
                if let Some(next) = header(&response, "location") {
                    location = super::client::resolve_location(&location, &next);
                }
                offset = match header(&response, "range").and_then(|r| range_end(&r)) {
                    Some(end) => end + 1,
                    None => offset + len,
                };
            }
            416 if resumed < 3 => {
                // The registry has a different amount than kiln thought: ask and resume.
                resumed += 1;
                let status_what = format!("upload status of {digest}");
                let response =
                    client.send(&Req::new(Method::GET, &location, &scope, &status_what))?;
                if response.status().as_u16() != 204 {
                    return Err(client.fail(response, &status_what, "upload"));
                }
                if let Some(next) = header(&response, "location") {
                    location = super::client::resolve_location(&location, &next);
                }
                offset = header(&response, "range")
                    .and_then(|r| range_end(&r))
                    .map_or(0, |end| end + 1);
            }
            _ => return Err(client.fail(response, &what, "upload")),
        }
    }
    let url = with_query(&location, "digest", &digest.to_string());
    let response = client.send(&Req::new(Method::PUT, &url, &scope, &what))?;
    if response.status().as_u16() != 201 {
        return Err(client.fail(response, &what, "upload"));
    }
    done(Outcome::Transferred)
}

/// The last byte of a `Range: 0-N` (or `bytes=0-N`) header.
fn range_end(value: &str) -> Option<u64> {
    let value = value.trim().trim_start_matches("bytes=");
    value.split_once('-')?.1.trim().parse().ok()
}

/// The records a pull leaves, for tests: where each blob was seen.
#[cfg(test)]
pub(crate) fn known_locations(store: &Store, digest: &Digest) -> Vec<String> {
    locations(store, digest).repositories
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_locations() {
        assert_eq!(range_end("0-1023"), Some(1023));
        assert_eq!(range_end("bytes=0-9"), Some(9));
        assert_eq!(range_end("garbage"), None);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"x");
        remember(&store, &d, "localhost:5000/a");
        remember(&store, &d, "localhost:5000/b");
        remember(&store, &d, "localhost:5000/a");
        assert_eq!(
            known_locations(&store, &d),
            ["localhost:5000/b", "localhost:5000/a"]
        );
    }
}
