//! `kiln system df` and `kiln system prune`: the disk a state root takes, by kind (images,
//! containers, volumes, build cache), and removing what nothing uses, with Docker's meaning.
//!
//! Owns what counts as "in use": a container that runs (or whose supervisor does), the image
//! (manifest) of any container that exists, running or not and tagged or not, a network with
//! a member that exists, a volume a container's record names. It never removes those. It
//! measures and decides; the removals are the owners' own (`remove`, `network::remove`,
//! `VolumeStore`, `Store::gc`, `build::clean_state`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ContainerError;
use crate::digest::Digest;
use crate::image::StoredImage;
use crate::state::volumes::{self, PruneFilter, VolumeStore};
use crate::state::{Record, Records, Status};
use crate::store::{Descriptor, Store};

/// One image (one manifest, with every name it is tagged with).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImageUsage {
    /// Its tags; empty for an untagged image a container still runs from.
    pub names: Vec<String>,
    pub digest: String,
    /// Its blobs' bytes (manifest, config, compressed layers).
    pub size: u64,
    /// The part of `size` another image has too.
    pub shared_size: u64,
    /// The containers made from it (running or not).
    pub containers: usize,
}

/// One container.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ContainerUsage {
    pub name: String,
    pub id: String,
    pub image: String,
    /// Its directory: upper layer, logs, spec.
    pub size: u64,
    pub status: String,
    pub running: bool,
    pub created: String,
}

/// One volume.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VolumeUsage {
    pub name: String,
    pub anonymous: bool,
    pub size: u64,
    /// The containers whose records name it (Docker's `LINKS`).
    pub containers: usize,
}

/// One build cache entry: the layer a cached step made.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheUsage {
    pub key: String,
    pub layer: String,
    /// The layer's bytes.
    pub size: u64,
    /// An image has the layer too: forgetting the entry frees nothing.
    pub shared: bool,
}

/// Everything `kiln system df` shows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Blobs nothing references (what `kiln gc` removes): a replaced image's, mostly.
    pub dangling_blobs: usize,
    pub dangling_bytes: u64,
    /// The bytes of every image's blobs, a blob two images share counted once.
    pub image_bytes: u64,
    /// The same, of the images containers run from: not reclaimable.
    pub image_bytes_in_use: u64,
    pub containers: Vec<ContainerUsage>,
    pub volumes: Vec<VolumeUsage>,
    pub build_cache: Vec<CacheUsage>,
}

/// One line of `kiln system df`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct UsageSummary {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub total: usize,
    pub active: usize,
    pub size: u64,
    pub reclaimable: u64,
}

/// Whether the container runs, or is between runs under its supervisor: then it, its image,
/// its networks and volumes are in use.
fn active(record: &Record) -> bool {
    let current = record.reconciled();
    matches!(current.state.status, Status::Running | Status::Restarting)
        || current.state.supervisor_alive()
}

/// The manifests the containers of `records` run from (each once), whether a tag still
/// names them or not: `gc` and `clean_state` must keep them.
pub fn images_in_use(store: &Store, records: &[Record]) -> Vec<Descriptor> {
    let mut seen = BTreeSet::new();
    records
        .iter()
        .filter(|r| seen.insert(r.image_digest.clone()))
        .filter_map(|r| StoredImage::load(store, &r.image_digest).ok())
        .map(|image| image.descriptor)
        .collect()
}

/// The blobs of an image, digest → bytes.
fn blobs(image: &StoredImage) -> BTreeMap<Digest, u64> {
    let mut blobs = BTreeMap::new();
    blobs.insert(image.descriptor.digest.clone(), image.descriptor.size);
    blobs.insert(
        image.manifest.config.digest.clone(),
        image.manifest.config.size,
    );
    for layer in &image.manifest.layers {
        blobs.insert(layer.digest.clone(), layer.size);
    }
    blobs
}

/// Measures the state root: `store` must be its store.
pub fn disk_usage(store: &Store, state_root: &Path) -> Result<DiskUsage, ContainerError> {
    let records = Records::open(state_root)?.list()?;
    let mut usage = DiskUsage::default();

    // Images: every tagged manifest, and the untagged ones containers run from.
    let mut by_digest: BTreeMap<Digest, (Vec<String>, StoredImage)> = BTreeMap::new();
    for (name, descriptor) in store.tags()? {
        let image = StoredImage::from_descriptor(store, descriptor)?;
        by_digest
            .entry(image.descriptor.digest.clone())
            .or_insert_with(|| (Vec::new(), image))
            .0
            .push(name);
    }
    for descriptor in images_in_use(store, &records) {
        if !by_digest.contains_key(&descriptor.digest) {
            let image = StoredImage::from_descriptor(store, descriptor)?;
            by_digest.insert(image.descriptor.digest.clone(), (Vec::new(), image));
        }
    }
    let mut holders: BTreeMap<Digest, usize> = BTreeMap::new();
    for (_, image) in by_digest.values() {
        for digest in blobs(image).into_keys() {
            *holders.entry(digest).or_default() += 1;
        }
    }
    let mut image_blobs = BTreeMap::new();
    let mut in_use_blobs = BTreeMap::new();
    for (digest, (names, image)) in &by_digest {
        let own = blobs(image);
        image_blobs.extend(own.clone());
        let containers = records
            .iter()
            .filter(|r| r.image_digest == digest.to_string())
            .count();
        if containers > 0 {
            in_use_blobs.extend(own.clone());
        }
        let shared_size = own
            .iter()
            .filter(|(d, _)| holders.get(*d).copied().unwrap_or(0) > 1)
            .map(|(_, size)| size)
            .sum();
        usage.images.push(ImageUsage {
            names: names.clone(),
            digest: digest.to_string(),
            size: own.values().sum(),
            shared_size,
            containers,
        });
    }
    usage.image_bytes = image_blobs.values().sum();
    usage.image_bytes_in_use = in_use_blobs.values().sum();

    // The build cache's layers no image has are its own.
    for (key, entry) in store.cache_entries()? {
        usage.build_cache.push(CacheUsage {
            key,
            layer: entry.layer.digest.to_string(),
            size: entry.layer.size,
            shared: image_blobs.contains_key(&entry.layer.digest),
        });
    }
    let mut roots = store.cache_roots()?;
    roots.extend(images_in_use(store, &records));
    (usage.dangling_blobs, usage.dangling_bytes) = store.collectable(&roots)?;

    let records_store = Records::open(state_root)?;
    for record in &records {
        let current = record.reconciled();
        usage.containers.push(ContainerUsage {
            name: record.reference(),
            id: record.id.to_string(),
            image: record.image.clone(),
            size: volumes::disk_usage(&records_store.dir(&record.id)),
            status: current.state.status.to_string(),
            running: active(record),
            created: record.created.clone(),
        });
    }

    for volume in VolumeStore::open(state_root).list()? {
        usage.volumes.push(VolumeUsage {
            containers: volumes::users(&records, &volume.reference).len(),
            size: volumes::disk_usage(&volume.mountpoint),
            anonymous: volume.anonymous,
            name: volume.reference,
        });
    }
    Ok(usage)
}

impl DiskUsage {
    /// Docker's four lines: images, containers, local volumes, build cache.
    pub fn summary(&self) -> [UsageSummary; 4] {
        let cache_own: BTreeMap<&str, u64> = self
            .build_cache
            .iter()
            .filter(|c| !c.shared)
            .map(|c| (c.layer.as_str(), c.size))
            .collect();
        let cache_size = cache_own.values().sum();
        let image_size = self.image_bytes + self.dangling_bytes;
        [
            UsageSummary {
                kind: "Images",
                total: self.images.len(),
                active: self.images.iter().filter(|i| i.containers > 0).count(),
                size: image_size,
                reclaimable: image_size.saturating_sub(self.image_bytes_in_use),
            },
            UsageSummary {
                kind: "Containers",
                total: self.containers.len(),
                active: self.containers.iter().filter(|c| c.running).count(),
                size: self.containers.iter().map(|c| c.size).sum(),
                reclaimable: self
                    .containers
                    .iter()
                    .filter(|c| !c.running)
                    .map(|c| c.size)
                    .sum(),
            },
            UsageSummary {
                kind: "Local Volumes",
                total: self.volumes.len(),
                active: self.volumes.iter().filter(|v| v.containers > 0).count(),
                size: self.volumes.iter().map(|v| v.size).sum(),
                reclaimable: self
                    .volumes
                    .iter()
                    .filter(|v| v.containers == 0)
                    .map(|v| v.size)
                    .sum(),
            },
            UsageSummary {
                kind: "Build Cache",
                total: self.build_cache.len(),
                // Nothing holds a cache entry between builds.
                active: 0,
                size: cache_size,
                reclaimable: cache_size,
            },
        ]
    }
}

/// What `kiln system prune` takes besides stopped containers, unused networks, dangling
/// images and the build cache no image shares.
#[derive(Debug, Clone, Copy, Default)]
pub struct PruneOptions {
    /// `-a`: every image no container uses (not only dangling ones) and the whole build
    /// cache.
    pub all: bool,
    /// `--volumes`: anonymous volumes no container uses.
    pub volumes: bool,
}

/// What `kiln system prune` removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Pruned {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    /// Tags removed (`-a`).
    pub untagged: Vec<String>,
    pub blobs: usize,
    pub build_cache: Vec<String>,
    pub unpacked_layers: usize,
    pub reclaimed: u64,
}

/// Removes what nothing uses, in Docker's order: stopped containers first (so that their
/// networks, volumes and images become unused), then networks without members, anonymous
/// volumes (`--volumes`), images and build cache.
pub fn prune(
    store: &Store,
    state_root: &Path,
    options: PruneOptions,
) -> Result<Pruned, ContainerError> {
    let records = Records::open(state_root)?;
    let mut pruned = Pruned::default();
    for record in records.list()? {
        if active(&record) {
            continue;
        }
        let size = volumes::disk_usage(&records.dir(&record.id));
        match super::remove(&records, &record, state_root, false) {
            Ok(()) => {
                pruned.reclaimed += size;
                pruned.containers.push(record.id.to_string());
            }
            // It started since: in use.
            Err(ContainerError::Running { .. }) => {}
            Err(err) => return Err(err),
        }
    }
    let remaining = records.list()?;
    let ids: BTreeSet<String> = remaining.iter().map(|r| r.id.to_string()).collect();

    let networks = crate::net::records::NetworkRecords::open(state_root)
        .and_then(|n| n.list())
        .map_err(crate::net::network::NetworkError::from)?;
    for network in networks {
        if network
            .members
            .iter()
            .any(|m| ids.contains(&m.container_id))
        {
            continue;
        }
        match crate::net::network::remove(state_root, &network.name) {
            Ok(record) => pruned.networks.push(record.name),
            // A container joined it since: in use.
            Err(crate::net::network::NetworkError::Record(
                crate::net::records::NetRecordError::InUse { .. },
            )) => {}
            Err(err) => return Err(err.into()),
        }
    }

    if options.volumes {
        let (removed, bytes) =
            VolumeStore::open(state_root).prune(&remaining, &PruneFilter::default())?;
        pruned.volumes = removed;
        pruned.reclaimed += bytes;
    }

    let in_use = images_in_use(store, &remaining);
    let used: BTreeSet<&Digest> = in_use.iter().map(|d| &d.digest).collect();
    if options.all {
        for (name, descriptor) in store.tags()? {
            if !used.contains(&descriptor.digest) && store.remove_tag(&name)? {
                pruned.untagged.push(name);
            }
        }
    }
    let image_blobs: BTreeSet<Digest> = store
        .tags()?
        .into_values()
        .chain(in_use.iter().cloned())
        .filter_map(|d| StoredImage::from_descriptor(store, d).ok())
        .flat_map(|image| blobs(&image).into_keys())
        .collect();
    for (key, entry) in store.cache_entries()? {
        if (options.all || !image_blobs.contains(&entry.layer.digest))
            && store.cache_remove(&key)?
        {
            pruned.build_cache.push(key);
        }
    }
    let mut roots = store.cache_roots()?;
    roots.extend(in_use.iter().cloned());
    let report = store.gc(&roots)?;
    pruned.blobs = report.blobs_removed;
    pruned.reclaimed += report.bytes_freed;
    let layers = state_root.join("layers");
    let before = volumes::disk_usage(&layers);
    let cleaned = crate::build::clean_state(store, state_root, &in_use).map_err(Box::new)?;
    pruned.unpacked_layers = cleaned.unpacked_layers;
    pruned.reclaimed += before.saturating_sub(volumes::disk_usage(&layers));
    Ok(pruned)
}
