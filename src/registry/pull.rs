//! `kiln pull`: a reference → a manifest (through an index, by platform) → its config and
//! layers → the store.
//!
//! The manifest is fetched with an `Accept` list of the four kinds kiln reads, capped at
//! 4 MiB and hashed: against the reference's digest when it has one, else against the
//! `Docker-Content-Digest` the registry sent. The layers kiln lacks download in parallel
//! (three at a time, as Docker does), each streaming into an ingest file of the store while
//! it is hashed and counted; a blob longer than its descriptor is cut off and refused. Only
//! when every blob checked out are they committed, then the manifest, then the names: a
//! failed pull leaves the store as it was.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use ureq::http::Method;

use super::client::{ATTEMPTS, Client, Req};
use super::media::{self, ImageManifest, Index, Kind, Platform};
use super::{BlobReport, Event, Events, NetOptions, Outcome, Reference, RegistryError};
use crate::digest::Digest;
use crate::image::ImageConfig;
use crate::store::{BlobWriter, Descriptor, Store, StoreError, Transaction};

/// Annotation on a pulled image's name: the reference it was pulled by.
pub const PULLED_FROM: &str = "dev.kiln.pulled.reference";
/// Annotation on a pulled image's name: what that reference resolved to (an index or a
/// manifest digest, as `kiln.lock` pins it).
pub const PULLED_DIGEST: &str = "dev.kiln.pulled.digest";

/// Annotations of a tag that came from a registry: the reference and its pinned digest.
pub fn pulled_from(descriptor: &Descriptor) -> Option<(String, Digest)> {
    let reference = descriptor.annotations.get(PULLED_FROM)?;
    let digest = descriptor.annotations.get(PULLED_DIGEST)?.parse().ok()?;
    Some((reference.clone(), digest))
}

/// Parallel blob downloads.
const PARALLEL: usize = 3;

/// What a pull did.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The name the image has in the store (`debian:12`, or `debian@sha256:…`).
    pub name: String,
    /// What the reference resolved to: the digest `kiln.lock` pins.
    pub digest: Digest,
    /// The image manifest in the store (the platform's, when `digest` is an index).
    pub manifest: Descriptor,
    /// The platform chosen from an index.
    pub platform: Option<Platform>,
    pub blobs: Vec<BlobReport>,
}

/// Resolves a reference to the digest of its manifest or index without pulling anything.
pub fn resolve(
    reference: &Reference,
    net: &NetOptions,
    events: Events<'_>,
) -> Result<Digest, RegistryError> {
    if let Some(digest) = &reference.digest {
        return Ok(digest.clone());
    }
    let client = Client::new(
        &reference.registry,
        reference.api_host(),
        &reference.repository,
        net,
        events,
    )?;
    let scope = format!("repository:{}:pull", reference.repository);
    let target = format!(
        "/v2/{}/manifests/{}",
        reference.repository,
        reference.api_reference()
    );
    let what = format!("resolve {}", reference.familiar());
    let response = client
        .send(&Req::new(Method::HEAD, &target, &scope, &what).header("accept", media::ACCEPT))?;
    if !response.status().is_success() {
        return Err(client.fail(response, &what, "manifest"));
    }
    let header = response
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    match header {
        Some(digest) => Ok(digest),
        // Not every registry sends it: fetch the manifest and hash it.
        None => Ok(fetch_manifest(&client, reference, &reference.api_reference(), None)?.digest),
    }
}

/// A fetched, verified manifest document.
struct Document {
    bytes: Vec<u8>,
    digest: Digest,
    media_type: String,
}

fn fetch_manifest(
    client: &Client<'_>,
    reference: &Reference,
    api_reference: &str,
    expected: Option<(&Digest, u64)>,
) -> Result<Document, RegistryError> {
    let scope = format!("repository:{}:pull", reference.repository);
    let target = format!("/v2/{}/manifests/{api_reference}", reference.repository);
    let shown = format!("{}@{api_reference}", reference.familiar_name());
    let shown = if api_reference.starts_with("sha256:") {
        shown
    } else {
        format!("{}:{api_reference}", reference.familiar_name())
    };
    let what = format!("GET manifest {shown}");
    let response = client
        .send(&Req::new(Method::GET, &target, &scope, &what).header("accept", media::ACCEPT))?;
    if !response.status().is_success() {
        return Err(client.fail(response, &what, "manifest"));
    }
    let too_large = |size| RegistryError::ManifestTooLarge {
        reference: shown.clone(),
        size,
        limit: media::MAX_MANIFEST,
    };
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    if let Some(length) = header("content-length").and_then(|l| l.parse::<u64>().ok())
        && length > media::MAX_MANIFEST
    {
        return Err(too_large(length));
    }
    let content_type = header("content-type");
    let announced = header("docker-content-digest").and_then(|d| d.parse::<Digest>().ok());
    let bytes = client.read_limited(response, media::MAX_MANIFEST, &what)?;
    if bytes.len() as u64 > media::MAX_MANIFEST {
        return Err(too_large(bytes.len() as u64));
    }
    let actual = Digest::of(&bytes);
    let wanted = expected
        .map(|(d, _)| d.clone())
        .or_else(|| api_reference.parse::<Digest>().ok())
        .or(announced);
    if let Some(wanted) = wanted
        && wanted != actual
    {
        return Err(RegistryError::ManifestDigest {
            reference: shown,
            expected: wanted,
            actual,
        });
    }
    if let Some((digest, size)) = expected
        && bytes.len() as u64 != size
    {
        return Err(RegistryError::Blob {
            reference: shown,
            digest: digest.clone(),
            source: crate::store::StoreError::WrongSize {
                digest: digest.clone(),
                expected: size,
                actual: bytes.len() as u64,
            },
        });
    }
    let media_type = media::media_type_of(content_type.as_deref(), &bytes);
    Ok(Document {
        bytes,
        digest: actual,
        media_type,
    })
}

fn malformed(client: &Client<'_>, what: String, reason: impl ToString) -> RegistryError {
    RegistryError::Malformed {
        registry: client.registry().to_string(),
        what,
        reason: reason.to_string(),
    }
}

/// Pulls `reference` into the store; `platform` chooses from an index (default: this
/// machine's).
pub fn pull(
    store: &Store,
    reference: &Reference,
    platform: Option<&Platform>,
    net: &NetOptions,
    events: Events<'_>,
) -> Result<Pulled, RegistryError> {
    let client = Client::new(
        &reference.registry,
        reference.api_host(),
        &reference.repository,
        net,
        events,
    )?;
    let shown = reference.familiar();
    let top = fetch_manifest(&client, reference, &reference.api_reference(), None)?;
    events(Event::Resolved {
        reference: shown.clone(),
        digest: top.digest.clone(),
    });
    let unsupported = |doc: &Document| RegistryError::UnsupportedManifest {
        reference: shown.clone(),
        media_type: doc.media_type.clone(),
    };
    let (manifest_doc, chosen) = match media::kind(&top.media_type) {
        None => return Err(unsupported(&top)),
        Some(Kind::Manifest) => (top, None),
        Some(Kind::Index) => {
            let index: Index = serde_json::from_slice(&top.bytes)
                .map_err(|e| malformed(&client, format!("index {shown}"), e))?;
            let wanted = platform.cloned().unwrap_or_else(Platform::host);
            let entry = media::select(&index, &wanted, &shown)?;
            let doc = fetch_manifest(
                &client,
                reference,
                &entry.digest.to_string(),
                Some((&entry.digest, entry.size)),
            )?;
            if media::kind(&doc.media_type) != Some(Kind::Manifest) {
                return Err(unsupported(&doc));
            }
            let platform = entry.platform.clone();
            // `top` is still needed for its digest.
            return finish(
                store,
                &client,
                reference,
                top.digest,
                doc,
                platform,
                platform_check(None),
            );
        }
    };
    finish(
        store,
        &client,
        reference,
        manifest_doc.digest.clone(),
        manifest_doc,
        chosen,
        platform_check(platform),
    )
}

/// The platform a single-image manifest must have, when one was asked for.
fn platform_check(platform: Option<&Platform>) -> Option<Platform> {
    platform.cloned()
}

fn finish(
    store: &Store,
    client: &Client<'_>,
    reference: &Reference,
    top_digest: Digest,
    doc: Document,
    chosen: Option<Platform>,
    must_match: Option<Platform>,
) -> Result<Pulled, RegistryError> {
    let events = client.events();
    let shown = reference.familiar();
    let manifest: ImageManifest = serde_json::from_slice(&doc.bytes)
        .map_err(|e| malformed(client, format!("manifest {shown}"), e))?;
    if manifest.schema_version != 2 {
        return Err(RegistryError::UnsupportedManifest {
            reference: shown,
            media_type: format!(
                "{} (schemaVersion {})",
                doc.media_type, manifest.schema_version
            ),
        });
    }
    if !media::config_supported(&manifest.config.media_type) {
        return Err(RegistryError::UnsupportedBlob {
            what: "config",
            digest: manifest.config.digest.clone(),
            media_type: manifest.config.media_type.clone(),
        });
    }
    for layer in &manifest.layers {
        if !media::layer_supported(&layer.media_type) {
            return Err(RegistryError::UnsupportedBlob {
                what: "layer",
                digest: layer.digest.clone(),
                media_type: layer.media_type.clone(),
            });
        }
    }
    let scope = format!("repository:{}:pull", reference.repository);

    // The config: small, read into memory and verified there.
    let config_desc = &manifest.config;
    events(Event::BlobStarted {
        digest: config_desc.digest.clone(),
        size: config_desc.size,
    });
    let tx = store.begin()?;
    let (config_bytes, config_outcome) = if store.contains(&config_desc.digest) {
        (store.read(&config_desc.digest)?, Outcome::Skipped)
    } else {
        if config_desc.size > media::MAX_CONFIG {
            return Err(malformed(
                client,
                format!("config {}", config_desc.digest),
                format!(
                    "it is {} bytes, over the {} kiln reads",
                    config_desc.size,
                    media::MAX_CONFIG
                ),
            ));
        }
        let what = format!("GET config {}", config_desc.digest);
        let target = format!("/v2/{}/blobs/{}", reference.repository, config_desc.digest);
        let response = client.send(&Req::new(Method::GET, &target, &scope, &what))?;
        if !response.status().is_success() {
            return Err(client.fail(response, &what, "blob"));
        }
        let bytes = client.read_limited(response, config_desc.size, &what)?;
        tx.put(&bytes, Some(config_desc))
            .map_err(|source| RegistryError::Blob {
                reference: shown.clone(),
                digest: config_desc.digest.clone(),
                source,
            })?;
        events(Event::BlobBytes {
            digest: config_desc.digest.clone(),
            bytes: config_desc.size,
        });
        (bytes, Outcome::Transferred)
    };
    events(Event::BlobDone {
        digest: config_desc.digest.clone(),
        outcome: config_outcome,
    });
    let config: ImageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| malformed(client, format!("config {}", config_desc.digest), e))?;
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        return Err(RegistryError::LayerCount {
            layers: manifest.layers.len(),
            diff_ids: config.rootfs.diff_ids.len(),
        });
    }
    if let Some(wanted) = must_match {
        let have = Platform {
            os: config.os.clone(),
            architecture: config.architecture.clone(),
            variant: None,
        };
        if have.os != wanted.os || have.architecture != wanted.architecture {
            return Err(RegistryError::NoPlatform {
                reference: shown,
                wanted: wanted.to_string(),
                available: have.to_string(),
            });
        }
    }

    // The layers: the missing ones stream into ingest files, verified, not yet committed.
    let mut reports: BTreeMap<Digest, BlobReport> = BTreeMap::new();
    let mut wanted: Vec<&Descriptor> = Vec::new();
    for layer in &manifest.layers {
        if reports.contains_key(&layer.digest) || wanted.iter().any(|w| w.digest == layer.digest) {
            continue;
        }
        if store.contains(&layer.digest) {
            events(Event::BlobStarted {
                digest: layer.digest.clone(),
                size: layer.size,
            });
            events(Event::BlobDone {
                digest: layer.digest.clone(),
                outcome: Outcome::Skipped,
            });
            reports.insert(
                layer.digest.clone(),
                BlobReport {
                    digest: layer.digest.clone(),
                    size: layer.size,
                    outcome: Outcome::Skipped,
                },
            );
        } else {
            wanted.push(layer);
        }
    }
    download_all(&tx, client, reference, &scope, &wanted)?;
    for layer in &wanted {
        events(Event::BlobDone {
            digest: layer.digest.clone(),
            outcome: Outcome::Transferred,
        });
        reports.insert(
            layer.digest.clone(),
            BlobReport {
                digest: layer.digest.clone(),
                size: layer.size,
                outcome: Outcome::Transferred,
            },
        );
    }

    // Everything checked out: the manifest and the names, committed together.
    let (manifest_digest, manifest_size) = tx.put(&doc.bytes, None)?;
    debug_assert_eq!(manifest_digest, doc.digest);
    let mut blobs = vec![BlobReport {
        digest: config_desc.digest.clone(),
        size: config_desc.size,
        outcome: config_outcome,
    }];
    blobs.extend(
        manifest
            .layers
            .iter()
            .filter_map(|l| reports.remove(&l.digest)),
    );
    let mut annotations = BTreeMap::new();
    annotations.insert(PULLED_FROM.to_string(), reference.to_string());
    annotations.insert(PULLED_DIGEST.to_string(), top_digest.to_string());
    let descriptor = Descriptor {
        media_type: doc.media_type.clone(),
        digest: manifest_digest,
        size: manifest_size,
        annotations,
    };
    let pinned_name = reference.pinned(top_digest.clone()).familiar();
    tx.tag_annotated(&pinned_name, &descriptor)?;
    let name = if reference.tag.is_some() {
        let tagged = Reference {
            digest: None,
            ..reference.clone()
        }
        .familiar();
        tx.tag_annotated(&tagged, &descriptor)?;
        tagged
    } else {
        pinned_name
    };
    tx.commit().map_err(|source| RegistryError::Blob {
        reference: shown.clone(),
        digest: descriptor.digest.clone(),
        source,
    })?;
    let location = reference.full_name();
    for blob in &blobs {
        super::push::remember(store, &blob.digest, &location);
    }
    Ok(Pulled {
        name,
        digest: top_digest,
        manifest: Descriptor {
            annotations: BTreeMap::new(),
            ..descriptor
        },
        platform: chosen,
        blobs,
    })
}

/// Downloads the blobs in parallel into the transaction, each verified as it is staged;
/// the first error stops the rest.
fn download_all(
    tx: &Transaction,
    client: &Client<'_>,
    reference: &Reference,
    scope: &str,
    wanted: &[&Descriptor],
) -> Result<Vec<()>, RegistryError> {
    super::parallel(wanted, PARALLEL, |layer| {
        download(tx, client, reference, scope, layer)
    })
}

/// One blob into the transaction, verified (digest and size); tried again when the
/// connection breaks.
fn download(
    tx: &Transaction,
    client: &Client<'_>,
    reference: &Reference,
    scope: &str,
    layer: &Descriptor,
) -> Result<(), RegistryError> {
    let events = client.events();
    let shown = reference.familiar();
    let what = format!("GET blob {}", layer.digest);
    let target = format!("/v2/{}/blobs/{}", reference.repository, layer.digest);
    let wrong = |source| RegistryError::Blob {
        reference: shown.clone(),
        digest: layer.digest.clone(),
        source,
    };
    let wrong_size = |actual| {
        wrong(StoreError::WrongSize {
            digest: layer.digest.clone(),
            expected: layer.size,
            actual,
        })
    };
    events(Event::BlobStarted {
        digest: layer.digest.clone(),
        size: layer.size,
    });
    let mut attempt = 0;
    loop {
        attempt += 1;
        let response = client.send(&Req::new(Method::GET, &target, scope, &what))?;
        if !response.status().is_success() {
            return Err(client.fail(response, &what, "blob"));
        }
        if let Some(length) = response
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            && length != layer.size
        {
            return Err(wrong_size(length));
        }
        let mut writer = tx.writer(Some(layer))?;
        let mut reader = response.into_body().into_reader().take(layer.size + 1);
        match copy(&mut reader, &mut writer, layer, events) {
            Ok(received) if received > layer.size => return Err(wrong_size(received)),
            Ok(_) => {
                writer.finish().map_err(wrong)?;
                return Ok(());
            }
            Err(err) if attempt < ATTEMPTS && is_transient_io(&err) => {
                let wait = 250u64 << (attempt - 1);
                events(Event::Retrying {
                    what: what.clone(),
                    attempt: attempt + 1,
                    reason: err.to_string(),
                    wait_ms: wait,
                });
                std::thread::sleep(std::time::Duration::from_millis(wait));
            }
            // The connection kept ending early: say how much came.
            Err(err) if is_transient_io(&err) => return Err(wrong_size(writer.size())),
            Err(err) => {
                return Err(RegistryError::Io {
                    path: tx.store().root().join("ingest"),
                    source: err,
                });
            }
        }
    }
}

/// Streams a blob into its writer, reporting progress; the number of bytes received
/// (one more than the descriptor's size means the blob was too long).
fn copy(
    reader: &mut impl Read,
    writer: &mut BlobWriter<'_>,
    layer: &Descriptor,
    events: super::Events<'_>,
) -> Result<u64, std::io::Error> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0u64;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(received);
        }
        received += n as u64;
        if received > layer.size {
            return Ok(received);
        }
        writer.write_all(&buf[..n])?;
        events(Event::BlobBytes {
            digest: layer.digest.clone(),
            bytes: n as u64,
        });
    }
}

fn is_transient_io(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        err.kind(),
        ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | TimedOut | Interrupted
    ) || err.get_ref().is_some_and(|inner| {
        inner.to_string().contains("eof") || inner.to_string().contains("timeout")
    })
}
