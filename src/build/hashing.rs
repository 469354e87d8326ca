//! The build's [`InputSource`]: resolves each layer step's host inputs (the closure of a
//! `host-binary`, the tree of a `host-path`, the files of a `copy`) and turns them into
//! recipe items with content hashes. The resolved items are kept, so the step that later
//! writes the layer reads exactly what was hashed.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;

use rayon::prelude::*;

use super::BuildError;
use super::inputs::{self, Context, CopyMatch, HostItem, HostRoot, InputError, ItemKind};
use super::statcache::StatCache;
use crate::image::StoredImage;
use crate::plan::{
    Base, ImagePlan, InputSource, Key, LayerAction, PlannedStep, RecipeItem, StepAction,
};
use crate::store::Store;

/// What a step's layer is made of: resolved items (`host-binary`, `host-path`) or what each
/// source of a `copy` names, and whether ownership comes from the host (`host-binary`,
/// `host-path`) or is root's (`copy`, as Docker's COPY does).
#[derive(Debug, Clone)]
pub(crate) struct ResolvedInputs {
    pub(crate) items: Vec<HostItem>,
    /// A `copy` from the context: every match, with the index of its source argument.
    pub(crate) copies: Vec<(usize, CopyMatch)>,
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
                copies: Vec::new(),
                keep_owner: false,
                host_parents: false,
            });
        };
        let mut copies = Vec::new();
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
                from: None,
                ..
            } => {
                let root = image.context.clone().unwrap_or_else(|| ".".into());
                let context = Context::open(&root).map_err(wrap)?;
                for (group, source) in sources.iter().enumerate() {
                    for found in context.copy_matches(source).map_err(wrap)? {
                        copies.push((group, found));
                    }
                }
                (Vec::new(), false)
            }
            // Their inputs are other images (in the key through the parent or `from image`),
            // or none (`workdir`).
            LayerAction::Copy { from: Some(_), .. }
            | LayerAction::Run { .. }
            | LayerAction::Workdir { .. } => (Vec::new(), false),
        };
        Ok(ResolvedInputs {
            items,
            copies,
            keep_owner,
            host_parents: keep_owner,
        })
    }
}

impl HostInputs<'_> {
    /// The recipe of a `copy` from the context: per match its kind, then each file of it by
    /// its context path with its content hash and mode (the owner is root's), each link
    /// with its target, and for files hard-linked together within one source, the first of
    /// them (the layer keeps them linked).
    fn copy_inputs(&self, copies: &[(usize, CopyMatch)]) -> Result<Vec<RecipeItem>, BuildError> {
        struct Flat<'a> {
            label: String,
            source: &'a std::path::Path,
            kind: &'a ItemKind,
            group: usize,
        }
        let mut flat = Vec::new();
        let dir = ItemKind::Dir;
        let file = ItemKind::File;
        for (group, m) in copies {
            flat.push(Flat {
                label: format!("source {}", m.path),
                source: &m.source,
                kind: if m.is_dir { &dir } else { &file },
                group: *group,
            });
            for entry in &m.contents {
                flat.push(Flat {
                    label: format!("source {}/{}", m.path.trim_end_matches('/'), entry.rel),
                    source: &entry.source,
                    kind: &entry.kind,
                    group: *group,
                });
            }
        }
        let stats: Vec<(String, std::fs::Metadata)> = flat
            .par_iter()
            .map(|f| {
                let wrap = |source: std::io::Error| BuildError::Io {
                    path: f.source.to_path_buf(),
                    source,
                };
                let meta = std::fs::symlink_metadata(f.source).map_err(wrap)?;
                let mode = meta.mode() & 0o7777;
                let value = match f.kind {
                    ItemKind::File => {
                        let hash = self.stat_cache.hash_with(f.source, &meta).map_err(wrap)?;
                        format!("file {hash} {mode:04o} 0:0")
                    }
                    ItemKind::Dir => format!("dir {mode:04o} 0:0"),
                    ItemKind::Symlink(target) => format!("symlink {}", target.display()),
                    ItemKind::Special => format!("special {:o} {}", meta.mode(), meta.rdev()),
                };
                Ok((value, meta))
            })
            .collect::<Result<_, BuildError>>()?;
        // Hard-link groups: files of one source sharing an inode.
        let mut first: HashMap<(usize, u64, u64), (&str, usize)> = HashMap::new();
        for (f, (_, meta)) in flat.iter().zip(&stats) {
            if *f.kind == ItemKind::File && meta.nlink() > 1 {
                first
                    .entry((f.group, meta.dev(), meta.ino()))
                    .and_modify(|(_, n)| *n += 1)
                    .or_insert((f.label.as_str(), 1));
            }
        }
        Ok(flat
            .iter()
            .zip(stats)
            .map(|(f, (mut value, meta))| {
                if *f.kind == ItemKind::File
                    && let Some((leader, n)) = first.get(&(f.group, meta.dev(), meta.ino()))
                    && *n > 1
                {
                    value.push_str(&format!(" linked to {leader}"));
                }
                RecipeItem::new(f.label.clone(), value)
            })
            .collect())
    }
}

impl InputSource for HostInputs<'_> {
    type Error = BuildError;

    fn inputs(&self, image: &ImagePlan, step: &PlannedStep) -> Result<Vec<RecipeItem>, BuildError> {
        let resolved = self.resolved(image, step)?;
        if !resolved.copies.is_empty() {
            return self.copy_inputs(&resolved.copies);
        }
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
                    ItemKind::Special => format!("special {:o} {}", meta.mode(), meta.rdev()),
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
