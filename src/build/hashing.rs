//! The build's [`InputSource`]: resolves each layer step's host inputs (the closure of a
//! `host-binary`, the tree of a `host-path`, the files of a `copy`) and turns them into
//! recipe items with content hashes. The resolved items are kept, so the step that later
//! writes the layer reads exactly what was hashed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use rayon::prelude::*;

use super::BuildError;
use super::inputs::{self, Context, HostItem, HostRoot, InputError, ItemKind};
use super::statcache::StatCache;
use crate::image::StoredImage;
use crate::plan::{
    Base, ImagePlan, InputSource, Key, LayerAction, PlannedStep, RecipeItem, StepAction,
};
use crate::store::Store;

/// What a step's layer is made of: resolved items, and whether ownership comes from the
/// host (`host-binary`, `host-path`) or is root's (`copy`, as Docker's COPY does).
#[derive(Debug, Clone)]
pub(crate) struct ResolvedInputs {
    pub(crate) items: Vec<HostItem>,
    pub(crate) keep_owner: bool,
    /// Image paths are host paths: missing parent directories copy the host's.
    pub(crate) host_parents: bool,
}

pub struct HostInputs<'a> {
    store: &'a Store,
    host: HostRoot,
    stat_cache: &'a StatCache,
    resolved: Mutex<HashMap<(String, usize), ResolvedInputs>>,
}

impl<'a> HostInputs<'a> {
    pub fn new(store: &'a Store, stat_cache: &'a StatCache) -> HostInputs<'a> {
        HostInputs {
            store,
            host: HostRoot::system(),
            stat_cache,
            resolved: Mutex::new(HashMap::new()),
        }
    }

    /// The items hashed for a step (resolved again if keys were not computed here).
    pub(crate) fn resolved(
        &self,
        image: &ImagePlan,
        step: &PlannedStep,
    ) -> Result<ResolvedInputs, BuildError> {
        let key = (image.name.clone(), step.index);
        if let Some(found) = self.resolved.lock().expect("inputs lock").get(&key) {
            return Ok(found.clone());
        }
        let resolved = self.resolve(image, step)?;
        self.resolved
            .lock()
            .expect("inputs lock")
            .insert(key, resolved.clone());
        Ok(resolved)
    }

    fn resolve(&self, image: &ImagePlan, step: &PlannedStep) -> Result<ResolvedInputs, BuildError> {
        let wrap = |source: InputError| BuildError::Inputs {
            image: image.name.clone(),
            index: step.index,
            span: step.span,
            source,
        };
        let StepAction::Layer(action) = &step.action else {
            return Ok(ResolvedInputs {
                items: Vec::new(),
                keep_owner: false,
                host_parents: false,
            });
        };
        let (items, keep_owner) = match action {
            LayerAction::HostBinary { paths } => {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                (
                    inputs::host_binaries(&paths, &self.host).map_err(wrap)?,
                    true,
                )
            }
            LayerAction::HostPath { paths } => {
                let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
                (inputs::host_paths(&paths, &self.host).map_err(wrap)?, true)
            }
            LayerAction::Copy {
                sources,
                destination,
                from: None,
            } => {
                let root = image.context.clone().unwrap_or_else(|| ".".into());
                let context = Context::open(&root).map_err(wrap)?;
                let mut items = Vec::new();
                for source in sources {
                    items.extend(context.copy_items(source, destination).map_err(wrap)?);
                }
                (items, false)
            }
            // Their inputs are other images (in the key through the parent or `from image`).
            LayerAction::Copy { from: Some(_), .. } | LayerAction::Run { .. } => {
                (Vec::new(), false)
            }
        };
        Ok(ResolvedInputs {
            items,
            keep_owner,
            host_parents: keep_owner,
        })
    }
}

impl InputSource for HostInputs<'_> {
    type Error = BuildError;

    fn inputs(&self, image: &ImagePlan, step: &PlannedStep) -> Result<Vec<RecipeItem>, BuildError> {
        let resolved = self.resolved(image, step)?;
        let keep_owner = resolved.keep_owner;
        resolved
            .items
            .par_iter()
            .map(|item| {
                let wrap = |source: std::io::Error| BuildError::Io {
                    path: item.source.clone(),
                    source,
                };
                let meta = std::fs::symlink_metadata(&item.source).map_err(wrap)?;
                let owner = if keep_owner {
                    format!("{}:{}", meta.uid(), meta.gid())
                } else {
                    "0:0".to_string()
                };
                let mode = meta.mode() & 0o7777;
                let value = match &item.kind {
                    ItemKind::File => {
                        let hash = self
                            .stat_cache
                            .hash_with(&item.source, &meta)
                            .map_err(wrap)?;
                        format!("file {hash} {mode:04o} {owner}")
                    }
                    ItemKind::Dir => format!("dir {mode:04o} {owner}"),
                    ItemKind::Symlink(target) => format!("symlink {}", target.display()),
                };
                Ok(RecipeItem::new(item.image_path.clone(), value))
            })
            .collect()
    }

    fn base_key(&self, base: &Base) -> Result<Key, BuildError> {
        match base {
            Base::Stored(name) => {
                let image = StoredImage::load(self.store, name)?;
                Ok(Key::of_str(&format!(
                    "kiln-base:image:{}",
                    image.descriptor.digest
                )))
            }
            Base::OciArchive(path) | Base::DockerArchive(path) => {
                let hash = self
                    .stat_cache
                    .hash(path)
                    .map_err(|source| BuildError::Io {
                        path: path.clone(),
                        source,
                    })?;
                Ok(Key::of_str(&format!("kiln-base:archive:{hash}")))
            }
            Base::Scratch => Ok(Key::of_str("kiln-base:scratch")),
            // The plan keys project images itself; never asked, but total all the same.
            Base::Project(index) => Ok(Key::of_str(&format!("kiln-base:project:{index}"))),
        }
    }
}
