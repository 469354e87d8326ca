//! `kiln build --verify`: rebuild everything from scratch in another state root (no cache,
//! no unpacked layers, a fresh stat cache) and compare the digests with the build just made,
//! layer by layer; on a difference, find the first layer and the first file that differ.
//!
//! Returns the comparison as data ([`Verification`]); the CLI prints it. It does not make
//! the other state root (the caller does, and removes it), and it does not print.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{BuildError, BuildOptions, BuildOutcome, BuiltImage, HostInputs, StatCache};
use crate::digest::Digest;
use crate::plan::BuildPlan;
use crate::store::{Descriptor, Store, StoreError};

/// Why the rebuild could not be compared.
#[derive(Debug)]
pub enum VerifyError {
    /// The other state root's store could not be opened.
    Store(StoreError),
    /// The cache keys of the rebuild could not be computed.
    Keys(Box<BuildError>),
    /// The rebuild failed.
    Build(Vec<BuildError>),
}

/// The comparison of every image built twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// In the order of the first build.
    pub images: Vec<ImageVerdict>,
}

impl Verification {
    /// Every image came out the same.
    pub fn identical(&self) -> bool {
        self.images.iter().all(|i| i.difference.is_none())
    }
}

/// One image, built twice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVerdict {
    pub name: String,
    pub first: Digest,
    pub second: Digest,
    /// `None` when the digests are equal.
    pub difference: Option<Difference>,
}

/// Where two builds of an image part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    /// Layer `index` (from 0) is the first that differs.
    Layer {
        index: usize,
        first: Digest,
        second: Digest,
        files: Files,
    },
    /// The layers agree as far as both go, but there are not as many.
    LayerCount { first: usize, second: usize },
    /// Every layer is identical: the image config differs.
    Config,
}

/// What the entries of two differing layers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Files {
    /// The first path (in sorted order) whose header or content differs, with a summary of
    /// each side (`None`: absent on that side).
    First {
        path: String,
        first: Option<String>,
        second: Option<String>,
    },
    /// The same entries: the tar bytes differ (order or padding).
    Same,
    /// A layer could not be read back.
    Unreadable(String),
}

/// Rebuilds `plan` with `options` in `other_root` and compares the result with `first`
/// (the build just made into `main_store`).
pub fn verify(
    main_store: &Store,
    plan: &BuildPlan,
    first: &BuildOutcome,
    options: &BuildOptions,
    other_root: &Path,
) -> Result<Verification, VerifyError> {
    let store = Store::open(other_root.join("store")).map_err(VerifyError::Store)?;
    let stat_cache = StatCache::default();
    let inputs = HostInputs::new(&store, &stat_cache);
    let mut plan = plan.clone();
    plan.compute_keys(&inputs)
        .map_err(|err| VerifyError::Keys(Box::new(err)))?;
    let options = BuildOptions {
        no_cache: true,
        state_root: other_root.to_path_buf(),
        ..options.clone()
    };
    let second =
        super::build(&store, &plan, &inputs, &options, &|_| {}).map_err(VerifyError::Build)?;
    let mut images = Vec::new();
    for image in &first.images {
        let Some(again) = second.images.iter().find(|i| i.name == image.name) else {
            continue;
        };
        let difference =
            (image.digest != again.digest).then(|| difference(image, main_store, again, &store));
        images.push(ImageVerdict {
            name: image.name.clone(),
            first: image.digest.clone(),
            second: again.digest.clone(),
            difference,
        });
    }
    Ok(Verification { images })
}

fn difference(
    first: &BuiltImage,
    first_store: &Store,
    second: &BuiltImage,
    second_store: &Store,
) -> Difference {
    let layers = first.layers.iter().zip(&first.diff_ids);
    let again = second.layers.iter().zip(&second.diff_ids);
    for (index, ((layer_a, a), (layer_b, b))) in layers.zip(again).enumerate() {
        if a == b {
            continue;
        }
        let files = match (
            listing(first_store, layer_a),
            listing(second_store, layer_b),
        ) {
            (Ok(before), Ok(after)) => {
                let paths: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
                match paths.into_iter().find(|p| before.get(*p) != after.get(*p)) {
                    Some(path) => Files::First {
                        path: path.clone(),
                        first: before.get(path).cloned(),
                        second: after.get(path).cloned(),
                    },
                    None => Files::Same,
                }
            }
            (Err(err), _) | (_, Err(err)) => Files::Unreadable(err.to_string()),
        };
        return Difference::Layer {
            index,
            first: a.clone(),
            second: b.clone(),
            files,
        };
    }
    if first.diff_ids.len() != second.diff_ids.len() {
        Difference::LayerCount {
            first: first.diff_ids.len(),
            second: second.diff_ids.len(),
        }
    } else {
        Difference::Config
    }
}

/// Path → (header summary, content hash) of every entry of a layer.
fn listing(store: &Store, layer: &Descriptor) -> std::io::Result<BTreeMap<String, String>> {
    let blob = store
        .open_blob(&layer.digest)
        .map_err(std::io::Error::other)?;
    let tar = crate::layer::decompressing_reader(std::io::BufReader::new(blob))
        .map_err(std::io::Error::other)?;
    let mut archive = tar::Archive::new(tar);
    let mut out = BTreeMap::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let header = entry.header();
        let summary = format!(
            "type {:?} mode {:o} uid {} gid {} mtime {} link {:?}",
            header.entry_type(),
            header.mode().unwrap_or(0),
            header.uid().unwrap_or(0),
            header.gid().unwrap_or(0),
            header.mtime().unwrap_or(0),
            header.link_name().ok().flatten().map(|l| l.into_owned())
        );
        let mut hasher = blake3::Hasher::new();
        std::io::copy(&mut entry, &mut hasher)?;
        out.insert(
            path,
            format!("{summary} content {}", hasher.finalize().to_hex()),
        );
    }
    Ok(out)
}
