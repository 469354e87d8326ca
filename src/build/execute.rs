//! Runs the plan: one task per layer step and one per image (assembling its config and
//! manifest), scheduled as a DAG. Every layer step waits for the layers below it, because
//! its result depends on the image there: `run` runs in it; `copy`, `workdir`,
//! `host-binary` and `host-path` look at what is already there (the image's symbolic links
//! are followed inside the image, see `place`); images that do not depend on each other
//! build in parallel. An image waits for its layers and its base.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::hashing::{HostInputs, ResolvedInputs};
use super::inputs::{CopyMatch, ItemKind};
use super::layer_dirs::{chain_ids, unpack_stack};
use super::place::{self, Placed, Placement};
use super::record::{self, BuildRecord};
use super::schedule::run_dag;
use super::union::Union;
use super::{
    BuildError, BuildEvent, BuildOptions, BuildOutcome, BuiltImage, CacheStatus, StepReport, io_err,
};
use crate::digest::Digest;
use crate::image::{History, ImageConfig, StoredImage, write_image};
use crate::layer::{self, Content, Entries, Entry, EntryKind, ImageIndex, WriteOptions};
use crate::plan::{Base, BuildPlan, ImagePlan, LayerAction, PlannedStep, StepAction};
use crate::runtime::{SandboxObserver, SandboxSpec};
use crate::store::{CacheEntry, Descriptor, Store};
use crate::timestamp::rfc3339_utc;

/// A layer of an image: its blob and the digest of its uncompressed tar.
#[derive(Debug, Clone)]
struct LayerRef {
    descriptor: Descriptor,
    diff_id: Digest,
    /// A `workdir` step that created nothing: its (empty) layer is left out of the image.
    empty: bool,
}

/// What an image is once built: enough to be the base of another.
#[derive(Debug, Clone)]
struct Assembled {
    layers: Vec<LayerRef>,
    config: ImageConfig,
}

#[derive(Debug, Clone, Copy)]
enum Task {
    Layer { image: usize, step: usize },
    Assemble { image: usize },
}

struct Run<'a> {
    store: &'a Store,
    plan: &'a BuildPlan,
    inputs: &'a HostInputs<'a>,
    options: &'a BuildOptions,
    events: &'a (dyn Fn(BuildEvent) + Sync),
    previous: Vec<Option<BuildRecord>>,
    layers: Mutex<HashMap<(usize, usize), LayerRef>>,
    assembled: Vec<OnceLock<Assembled>>,
    reports: Mutex<Vec<StepReport>>,
    built: Mutex<Vec<BuiltImage>>,
    /// Archive bases imported so far: path → manifest digest.
    archives: Mutex<HashMap<std::path::PathBuf, String>>,
    /// File trees of layer stacks that `copy` and `workdir` steps looked at, by chain id.
    indexes: Mutex<HashMap<Digest, Arc<ImageIndex>>>,
}

/// Builds every image of `plan`, whose keys must have been computed with `inputs`.
/// Returns every error when some step failed (independent steps still finish).
pub fn build(
    store: &Store,
    plan: &BuildPlan,
    inputs: &HostInputs<'_>,
    options: &BuildOptions,
    events: &(dyn Fn(BuildEvent) + Sync),
) -> Result<BuildOutcome, Vec<BuildError>> {
    let _gc_guard = store.lock_shared().map_err(|e| vec![e.into()])?;
    let run = Run {
        store,
        plan,
        inputs,
        options,
        events,
        previous: plan
            .images
            .iter()
            .map(|i| record::load(store, &i.tag))
            .collect(),
        layers: Mutex::new(HashMap::new()),
        assembled: plan.images.iter().map(|_| OnceLock::new()).collect(),
        reports: Mutex::new(Vec::new()),
        built: Mutex::new(Vec::new()),
        archives: Mutex::new(HashMap::new()),
        indexes: Mutex::new(HashMap::new()),
    };
    let (tasks, deps) = task_graph(plan);
    run_dag(&deps, options.jobs, |t| match tasks[t] {
        Task::Layer { image, step } => run.layer_step(image, step),
        Task::Assemble { image } => run.assemble(image),
    })
    .map_err(|errors| errors.into_iter().map(|(_, e)| e).collect::<Vec<_>>())?;
    let mut steps = run.reports.into_inner().expect("reports lock");
    steps.sort_by(|a, b| {
        let pos = |name: &str| plan.images.iter().position(|i| i.name == name);
        (pos(&a.image), a.index).cmp(&(pos(&b.image), b.index))
    });
    let mut images = run.built.into_inner().expect("built lock");
    images.sort_by_key(|b| plan.images.iter().position(|i| i.name == b.name));
    Ok(BuildOutcome { images, steps })
}

fn task_graph(plan: &BuildPlan) -> (Vec<Task>, Vec<Vec<usize>>) {
    let mut tasks = Vec::new();
    let mut layer_task: HashMap<(usize, usize), usize> = HashMap::new();
    for (i, image) in plan.images.iter().enumerate() {
        for step in &image.steps {
            if matches!(step.action, StepAction::Layer(_)) {
                layer_task.insert((i, step.index), tasks.len());
                tasks.push(Task::Layer {
                    image: i,
                    step: step.index,
                });
            }
        }
    }
    let assemble_base = tasks.len();
    for i in 0..plan.images.len() {
        tasks.push(Task::Assemble { image: i });
    }
    let mut deps = vec![Vec::new(); tasks.len()];
    for (i, image) in plan.images.iter().enumerate() {
        let base_dep = match image.base {
            Base::Project(b) => Some(assemble_base + b),
            _ => None,
        };
        let mut earlier_layers = Vec::new();
        for step in &image.steps {
            let StepAction::Layer(action) = &step.action else {
                continue;
            };
            let t = layer_task[&(i, step.index)];
            // What is already in the image decides where a copy or a host file lands (its
            // links are followed inside it) and what a workdir creates: every layer step
            // waits for the layers below, as `run` does.
            deps[t].extend(base_dep);
            deps[t].extend(earlier_layers.iter().copied());
            if let LayerAction::Copy {
                from: Some(Base::Project(j)),
                ..
            } = action
            {
                deps[t].push(assemble_base + j);
            }
            earlier_layers.push(t);
        }
        let a = assemble_base + i;
        deps[a].extend(base_dep);
        deps[a].extend(earlier_layers);
    }
    (tasks, deps)
}

impl Run<'_> {
    fn image(&self, i: usize) -> &ImagePlan {
        &self.plan.images[i]
    }

    /// The layers and config an image starts from.
    fn base(&self, i: usize) -> Result<Assembled, BuildError> {
        let image = self.image(i);
        match &image.base {
            Base::Scratch => Ok(Assembled {
                layers: Vec::new(),
                config: ImageConfig::empty(),
            }),
            Base::Project(b) => Ok(self.assembled[*b]
                .get()
                .expect("the base is assembled before its dependents")
                .clone()),
            Base::Stored(name) => self.stored(&image.name, name),
            Base::OciArchive(path) | Base::DockerArchive(path) => self.archive(i, path),
        }
    }

    /// Imports an archive base once (untagged) and reads it like a stored image.
    fn archive(&self, i: usize, path: &std::path::Path) -> Result<Assembled, BuildError> {
        let image = self.image(i);
        let digest = {
            let mut imported = self.archives.lock().expect("archives lock");
            match imported.get(path) {
                Some(digest) => digest.clone(),
                None => {
                    let done =
                        crate::image::import_untagged(self.store, path).map_err(|source| {
                            BuildError::Archive {
                                image: image.name.clone(),
                                span: image.base_span,
                                source: Box::new(source),
                            }
                        })?;
                    let digest = done.descriptor.digest.to_string();
                    imported.insert(path.to_path_buf(), digest.clone());
                    digest
                }
            }
        };
        self.stored(&image.name, &digest)
    }

    fn stored(&self, image: &str, name: &str) -> Result<Assembled, BuildError> {
        let stored = match StoredImage::load(self.store, name) {
            Ok(stored) => stored,
            Err(crate::image::ImageError::NotFound { .. }) => {
                return Err(BuildError::MissingBase {
                    image: image.to_string(),
                    name: name.to_string(),
                });
            }
            Err(other) => return Err(other.into()),
        };
        let layers = stored
            .manifest
            .layers
            .iter()
            .zip(&stored.config.rootfs.diff_ids)
            .map(|(descriptor, diff_id)| {
                Ok(LayerRef {
                    descriptor: descriptor.clone(),
                    diff_id: diff_id.parse().map_err(|_| BuildError::Io {
                        path: self.store.blob_path(&stored.manifest.config.digest),
                        source: std::io::Error::other(format!("bad diff_id `{diff_id}`")),
                    })?,
                    empty: false,
                })
            })
            .collect::<Result<_, BuildError>>()?;
        Ok(Assembled {
            layers,
            config: stored.config,
        })
    }

    fn layer_step(&self, i: usize, s: usize) -> Result<(), BuildError> {
        let image = self.image(i);
        let step = &image.steps[s];
        let key = step.key.expect("keys are computed before the build").hex();
        let started = Instant::now();
        (self.events)(BuildEvent::StepStarted {
            image: image.name.clone(),
            index: s,
            text: step.text.clone(),
        });
        let cached = if self.options.no_cache {
            None
        } else {
            self.store.cache_get(&key)?
        };
        let (entry, cache) = match cached {
            Some(entry) => (entry, CacheStatus::Hit),
            None => {
                let entry = self.produce_layer(i, step)?;
                self.store.cache_put(&key, &entry)?;
                (entry, CacheStatus::Miss)
            }
        };
        let duration = started.elapsed();
        let empty = matches!(step.action, StepAction::Layer(LayerAction::Workdir { .. }))
            && entry.diff_id == layer::empty_diff_id();
        self.layers.lock().expect("layers lock").insert(
            (i, s),
            LayerRef {
                descriptor: entry.layer.clone(),
                diff_id: entry.diff_id.clone(),
                empty,
            },
        );
        self.report(i, step, cache, duration, Some(entry.layer));
        Ok(())
    }

    fn report(
        &self,
        i: usize,
        step: &PlannedStep,
        cache: CacheStatus,
        duration: std::time::Duration,
        layer: Option<Descriptor>,
    ) {
        let image = self.image(i);
        let reason = match cache {
            CacheStatus::Hit => None,
            CacheStatus::Miss if self.options.no_cache => Some("--no-cache".to_string()),
            CacheStatus::Miss => Some(record::miss_reason(self.previous[i].as_ref(), step)),
        };
        if layer.is_some() {
            (self.events)(BuildEvent::StepFinished {
                image: image.name.clone(),
                index: step.index,
                cache,
                duration,
            });
        }
        self.reports.lock().expect("reports lock").push(StepReport {
            image: image.name.clone(),
            index: step.index,
            kind: step.keyword,
            cache,
            reason,
            key: step.key.map(|k| k.hex()).unwrap_or_default(),
            duration_ms: duration.as_secs_f64() * 1000.0,
            layer,
        });
    }

    fn produce_layer(&self, i: usize, step: &PlannedStep) -> Result<CacheEntry, BuildError> {
        let image = self.image(i);
        let StepAction::Layer(action) = &step.action else {
            unreachable!("only layer steps are layer tasks");
        };
        let entries = match action {
            LayerAction::Copy {
                sources,
                destination,
                from: Some(from),
            } => return self.copy_from_image(i, step, from, sources, destination),
            LayerAction::Run { argv, network } => return self.run_step(i, step, argv, *network),
            LayerAction::Workdir { .. } => self.workdir_entries(i, step)?,
            LayerAction::Copy {
                destination,
                from: None,
                ..
            } => {
                let resolved = self.inputs.resolved(image, step)?;
                let placement = self.place(i, step, &resolved.copies, destination)?;
                entries_of_placement(&placement, false).map_err(|e| self.layer_error(i, step, e))?
            }
            LayerAction::HostBinary { .. } | LayerAction::HostPath { .. } => {
                let resolved = self.inputs.resolved(image, step)?;
                let paths = self.place_host_items(i, step, &resolved)?;
                entries_of(&resolved, &paths).map_err(|e| self.layer_error(i, step, e))?
            }
        };
        self.write_layer(i, step, &entries)
    }

    fn layer_error(&self, i: usize, step: &PlannedStep, source: layer::LayerError) -> BuildError {
        BuildError::Layer {
            image: self.image(i).name.clone(),
            index: step.index,
            span: step.span,
            source,
        }
    }

    fn write_layer(
        &self,
        i: usize,
        step: &PlannedStep,
        entries: &Entries,
    ) -> Result<CacheEntry, BuildError> {
        store_layer(
            self.store,
            entries,
            self.options.compression,
            self.options.source_date_epoch,
            |e| self.layer_error(i, step, e),
        )
    }

    /// The layers below step `s` of image `i` (base first) and the config in effect there.
    fn state_before(&self, i: usize, s: usize) -> Result<Assembled, BuildError> {
        let mut state = self.base(i)?;
        let layers = self.layers.lock().expect("layers lock");
        for step in &self.image(i).steps[..s] {
            step.action.apply_config(&mut state.config);
            if let StepAction::Layer(_) = &step.action {
                let layer = layers
                    .get(&(i, step.index))
                    .expect("earlier layers finish first");
                if !layer.empty {
                    state.layers.push(layer.clone());
                }
            }
        }
        Ok(state)
    }

    /// The file tree of a stack of layers (metadata only), read from the store once per
    /// stack and build.
    fn index_of(&self, layers: &[LayerRef]) -> Result<Arc<ImageIndex>, BuildError> {
        let diff_ids: Vec<Digest> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        let Some(top) = chains.last() else {
            return Ok(Arc::new(ImageIndex::new()));
        };
        if let Some(found) = self.indexes.lock().expect("indexes lock").get(top) {
            return Ok(found.clone());
        }
        // Start from the longest stack below that is known.
        let (mut index, start) = {
            let known = self.indexes.lock().expect("indexes lock");
            match (0..chains.len())
                .rev()
                .find_map(|n| known.get(&chains[n]).map(|x| (x, n)))
            {
                Some((found, n)) => ((**found).clone(), n + 1),
                None => (ImageIndex::new(), 0),
            }
        };
        for layer in &layers[start..] {
            let digest = &layer.descriptor.digest;
            let unpack = |source| BuildError::Unpack {
                digest: digest.clone(),
                source,
            };
            let blob = self.store.open_blob(digest)?;
            let tar = layer::decompressing_reader(std::io::BufReader::new(blob)).map_err(unpack)?;
            index.apply_layer(tar).map_err(unpack)?;
        }
        let index = Arc::new(index);
        self.indexes
            .lock()
            .expect("indexes lock")
            .insert(top.clone(), index.clone());
        Ok(index)
    }

    /// Where the matches of a `copy` land in image `i` at step `step`.
    fn place(
        &self,
        i: usize,
        step: &PlannedStep,
        matches: &[(usize, CopyMatch)],
        destination: &str,
    ) -> Result<Placement, BuildError> {
        let state = self.state_before(i, step.index)?;
        let index = self.index_of(&state.layers)?;
        let workdir = state.config.config.working_dir.as_deref().unwrap_or("/");
        place::place(matches, destination, workdir, &index).map_err(|source| BuildError::Place {
            image: self.image(i).name.clone(),
            index: step.index,
            span: step.span,
            source,
        })
    }

    /// The image paths of a `host-binary` or `host-path` step's items, the image's links on
    /// the way followed inside the image below the step (see `place::host_items`).
    fn place_host_items(
        &self,
        i: usize,
        step: &PlannedStep,
        resolved: &ResolvedInputs,
    ) -> Result<Vec<String>, BuildError> {
        let state = self.state_before(i, step.index)?;
        let index = self.index_of(&state.layers)?;
        let items = resolved
            .items
            .iter()
            .map(|item| (item.image_path.as_str(), &item.kind));
        place::host_items(&index, items).map_err(|source| BuildError::Place {
            image: self.image(i).name.clone(),
            index: step.index,
            span: step.span,
            source,
        })
    }

    /// The layer of a `workdir` step: the directories it creates (none when the image has
    /// them), owned by the image's user.
    fn workdir_entries(&self, i: usize, step: &PlannedStep) -> Result<Entries, BuildError> {
        let image = self.image(i);
        let state = self.state_before(i, step.index)?;
        let index = self.index_of(&state.layers)?;
        let mut after = state.config.clone();
        step.action.apply_config(&mut after);
        let path = after.config.working_dir.unwrap_or_else(|| "/".into());
        let created = place::workdir(&index, &path).map_err(|source| BuildError::Place {
            image: image.name.clone(),
            index: step.index,
            span: step.span,
            source,
        })?;
        let mut entries = Entries::new();
        if created.is_empty() {
            return Ok(entries);
        }
        let user = state.config.config.user.as_deref().unwrap_or("");
        let (uid, gid) =
            super::owner::owner_ids(user, &index).map_err(|source| BuildError::Owner {
                image: image.name.clone(),
                index: step.index,
                span: step.span,
                source,
            })?;
        for dir in created {
            entries
                .insert(&dir, Entry::new(EntryKind::Dir, 0o755, uid, gid))
                .map_err(|e| self.layer_error(i, step, e))?;
        }
        Ok(entries)
    }

    fn scratch_dir(&self, what: &str) -> Result<tempfile::TempDir, BuildError> {
        let dir = self.options.state_root.join("tmp");
        crate::store::make_private(&dir).map_err(io_err(&dir))?;
        tempfile::Builder::new()
            .prefix(&format!("{what}-"))
            .tempdir_in(&dir)
            .map_err(io_err(&dir))
    }

    fn copy_from_image(
        &self,
        i: usize,
        step: &PlannedStep,
        from: &Base,
        sources: &[String],
        destination: &str,
    ) -> Result<CacheEntry, BuildError> {
        let image = self.image(i);
        let layers = match from {
            Base::Project(j) => self.assembled[*j]
                .get()
                .expect("copy sources are assembled first")
                .layers
                .clone(),
            Base::Stored(name) => self.stored(&image.name, name)?.layers,
            _ => unreachable!("copy from= names an image"),
        };
        // The source's layers, unpacked once per state root (shared with `run` steps and
        // containers), read as one tree: the step costs what it copies.
        let stack: Vec<(Descriptor, Digest)> = layers
            .iter()
            .map(|l| (l.descriptor.clone(), l.diff_id.clone()))
            .collect();
        let mut dirs = unpack_stack(self.store, &self.options.state_root, &stack)?;
        // An image without layers is an empty directory.
        let empty = if dirs.is_empty() {
            Some(self.scratch_dir("copy-from")?)
        } else {
            None
        };
        dirs.extend(empty.as_ref().map(|dir| dir.path().to_path_buf()));
        let view = Union::new(dirs).map_err(io_err(&self.options.state_root))?;
        let mut matches = Vec::new();
        for (group, source) in sources.iter().enumerate() {
            let found = super::copy_from::copy_from_match(&view, source).map_err(|source| {
                BuildError::CopyFrom {
                    image: image.name.clone(),
                    index: step.index,
                    span: step.span,
                    source,
                }
            })?;
            matches.push((group, found));
        }
        let placement = self.place(i, step, &matches, destination)?;
        let entries =
            entries_of_placement(&placement, true).map_err(|e| self.layer_error(i, step, e))?;
        // The entries read their files while the layer is written: `empty` lives until then.
        let result = self.write_layer(i, step, &entries);
        drop(empty);
        result
    }

    fn run_step(
        &self,
        i: usize,
        step: &PlannedStep,
        argv: &[String],
        network: bool,
    ) -> Result<CacheEntry, BuildError> {
        let image = self.image(i);
        let state = self.state_before(i, step.index)?;
        let stack: Vec<(Descriptor, Digest)> = state
            .layers
            .iter()
            .map(|l| (l.descriptor.clone(), l.diff_id.clone()))
            .collect();
        let lower_dirs = unpack_stack(self.store, &self.options.state_root, &stack)?;
        // The same resolution containers get (src/runtime/spec/user.rs).
        let user = match state.config.config.user.as_deref() {
            None | Some("") => None,
            Some(user) => {
                let roots: Vec<&Path> = lower_dirs.iter().map(PathBuf::as_path).collect();
                let resolved = crate::runtime::spec::resolve_user(user, &roots).map_err(|_| {
                    BuildError::UnknownUser {
                        image: image.name.clone(),
                        user: user.to_string(),
                        span: step.span,
                    }
                })?;
                Some(resolved.ids)
            }
        };
        let scratch = self.scratch_dir("run")?;
        let upper = scratch.path().join("upper");
        std::fs::create_dir(&upper).map_err(io_err(&upper))?;
        let mut env = state.config.config.env.clone();
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={}", crate::runtime::default_path()));
        }
        let spec = SandboxSpec {
            lower_dirs,
            upper_dir: upper.clone(),
            scratch_dir: scratch.path().join("sandbox"),
            argv: argv.to_vec(),
            env,
            cwd: state
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into()),
            user,
            hostname: "kiln-build".into(),
            network,
            // Device rules as a container's; named after the unique scratch directory.
            cgroup: Some(format!(
                "{}/{}{}",
                crate::runtime::cgroup::state_root_group(&self.options.state_root),
                super::STEP_CGROUP_PREFIX,
                scratch
                    .path()
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
            )),
        };
        let mut observer = LineForwarder {
            image: &image.name,
            events: self.events,
        };
        let outcome =
            crate::runtime::run(&spec, &mut observer).map_err(|source| BuildError::RunStart {
                image: image.name.clone(),
                index: step.index,
                span: step.span,
                source,
            })?;
        if !outcome.status.success() {
            return Err(BuildError::RunFailed {
                image: image.name.clone(),
                index: step.index,
                span: step.span,
                status: outcome.status.to_string(),
                code: outcome.status.code(),
                output_tail: String::from_utf8_lossy(&outcome.output_tail).into_owned(),
            });
        }
        let entries = Entries::scan_overlay_upper(&upper, &layer::ScanOptions::default())
            .map_err(|e| self.layer_error(i, step, e))?;
        let result = self.write_layer(i, step, &entries);
        drop(scratch);
        result
    }

    fn assemble(&self, i: usize) -> Result<(), BuildError> {
        let image = self.image(i);
        let mut state = self.base(i)?;
        let created = rfc3339_utc(self.options.source_date_epoch);
        {
            let layers = self.layers.lock().expect("layers lock");
            for step in &image.steps {
                step.action.apply_config(&mut state.config);
                let empty_layer = match &step.action {
                    StepAction::Config(_) => {
                        // Nothing to cache: "hit" means unchanged since the last build, as
                        // `kiln explain` says.
                        let key = step.key.map(|k| k.hex()).unwrap_or_default();
                        let unchanged = self.previous[i].as_ref().is_some_and(|p| {
                            p.steps
                                .iter()
                                .any(|s| s.index == step.index && s.key == key)
                        });
                        let cache = if unchanged {
                            CacheStatus::Hit
                        } else {
                            CacheStatus::Miss
                        };
                        self.report(i, step, cache, std::time::Duration::ZERO, None);
                        true
                    }
                    StepAction::Layer(_) => {
                        let layer = &layers[&(i, step.index)];
                        if !layer.empty {
                            state.layers.push(layer.clone());
                        }
                        layer.empty
                    }
                };
                state.config.history.push(History {
                    created: Some(created.clone()),
                    created_by: Some(step.text.clone()),
                    comment: Some("kiln".into()),
                    empty_layer,
                    ..History::default()
                });
            }
        }
        let config = &mut state.config;
        config.created = Some(created);
        config.rootfs.diff_ids = state.layers.iter().map(|l| l.diff_id.to_string()).collect();
        let descriptors: Vec<Descriptor> =
            state.layers.iter().map(|l| l.descriptor.clone()).collect();
        let (descriptor, _) = write_image(self.store, config, &descriptors)?;
        self.store.set_tag(&image.tag, &descriptor)?;
        record::save(self.store, image)?;
        (self.events)(BuildEvent::ImageBuilt {
            image: image.name.clone(),
            digest: descriptor.digest.clone(),
        });
        self.built.lock().expect("built lock").push(BuiltImage {
            name: image.name.clone(),
            digest: descriptor.digest,
            layers: descriptors,
            diff_ids: state.layers.iter().map(|l| l.diff_id.clone()).collect(),
            reproducible: !image.uses_network(),
        });
        let _ = self.assembled[i].set(state);
        Ok(())
    }
}

/// Writes `entries` as a layer blob into the store, as every layer kiln makes is written
/// (build steps and `kiln commit`): the reproducible tar writer, mtimes clamped to
/// `source_date_epoch`, no entries for parent directories it added by itself. Returns the
/// blob's descriptor with the tar's diff_id; `layer_error` gives writing errors context.
pub fn store_layer<E: From<crate::store::StoreError>>(
    store: &Store,
    entries: &Entries,
    compression: layer::Compression,
    source_date_epoch: u64,
    layer_error: impl FnOnce(layer::LayerError) -> E,
) -> Result<CacheEntry, E> {
    let options = WriteOptions {
        compression,
        source_date_epoch,
        skip_implicit_dirs: true,
    };
    let mut ingest = store.ingest()?;
    let info = layer::write(entries, &options, &mut ingest).map_err(layer_error)?;
    let (digest, size) = ingest.commit()?;
    debug_assert_eq!(digest, info.digest);
    Ok(CacheEntry {
        layer: Descriptor {
            media_type: info.media_type().to_string(),
            digest,
            size,
            annotations: Default::default(),
        },
        diff_id: info.diff_id,
    })
}

/// Forwards a `run` step's output to the progress events.
struct LineForwarder<'a> {
    image: &'a str,
    events: &'a (dyn Fn(BuildEvent) + Sync),
}

impl SandboxObserver for LineForwarder<'_> {
    fn output_line(&mut self, line: &[u8]) {
        (self.events)(BuildEvent::Output {
            image: self.image.to_string(),
            line: String::from_utf8_lossy(line).into_owned(),
        });
    }
}

/// Layer entries for a `copy`'s placement: each item with its source's mode (and owner with
/// `keep_owner`, else root's), directories the copy made as 0755 root, and files of one
/// source sharing an inode as one file plus hard links to it (the first path in tar order is
/// the file), as BuildKit keeps them.
fn entries_of_placement(
    placement: &Placement,
    keep_owner: bool,
) -> Result<Entries, layer::LayerError> {
    let mut entries = Entries::new();
    let mut linked: HashMap<(usize, u64, u64), String> = HashMap::new();
    for (path, placed) in placement {
        let (source, kind, group) = match placed {
            Placed::NewDir => {
                entries.insert(path, Entry::new(EntryKind::Dir, 0o755, 0, 0))?;
                continue;
            }
            Placed::Item {
                source,
                kind,
                group,
            } => (source, kind, *group),
        };
        let meta = std::fs::symlink_metadata(source).map_err(layer::io_err(source.clone()))?;
        let (uid, gid) = if keep_owner {
            (meta.uid(), meta.gid())
        } else {
            (0, 0)
        };
        let kind = match kind {
            // A device or FIFO of another image (`copy from=`), even where the source was
            // named as a file: a node, never opened (a FIFO would block, a device would
            // read the machine's).
            _ if is_special(&meta) => special_kind(&meta),
            ItemKind::File if meta.nlink() > 1 => {
                match linked.entry((group, meta.dev(), meta.ino())) {
                    std::collections::hash_map::Entry::Occupied(first) => {
                        EntryKind::Hardlink(first.get().clone())
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => {
                        slot.insert(layer::normalize_path(path)?);
                        EntryKind::File(Content::Host {
                            path: source.clone(),
                            size: meta.size(),
                        })
                    }
                }
            }
            ItemKind::File => EntryKind::File(Content::Host {
                path: source.clone(),
                size: meta.size(),
            }),
            ItemKind::Dir => EntryKind::Dir,
            ItemKind::Symlink(target) => EntryKind::Symlink(target.clone()),
            ItemKind::Special => special_kind(&meta),
        };
        entries.insert(path, Entry::new(kind, meta.mode(), uid, gid))?;
    }
    Ok(entries)
}

/// Whether `meta` is a device or a FIFO.
fn is_special(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    kind.is_fifo() || kind.is_char_device() || kind.is_block_device()
}

/// The layer entry of a device or FIFO (anything else that is not a file, directory or link
/// is taken as a FIFO: it is never opened).
fn special_kind(meta: &std::fs::Metadata) -> EntryKind {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    let rdev = meta.rdev();
    let (major, minor) = (
        nix::sys::stat::major(rdev) as u32,
        nix::sys::stat::minor(rdev) as u32,
    );
    if kind.is_char_device() {
        EntryKind::CharDevice { major, minor }
    } else if kind.is_block_device() {
        EntryKind::BlockDevice { major, minor }
    } else {
        EntryKind::Fifo
    }
}

/// Layer entries for resolved host items.
fn entries_of(resolved: &ResolvedInputs, paths: &[String]) -> Result<Entries, layer::LayerError> {
    let mut entries = Entries::new();
    for (item, image_path) in resolved.items.iter().zip(paths) {
        let meta =
            std::fs::symlink_metadata(&item.source).map_err(layer::io_err(item.source.clone()))?;
        let (uid, gid) = if resolved.keep_owner {
            (meta.uid(), meta.gid())
        } else {
            (0, 0)
        };
        let kind = match &item.kind {
            ItemKind::File => EntryKind::File(Content::Host {
                path: item.source.clone(),
                size: meta.size(),
            }),
            ItemKind::Dir => EntryKind::Dir,
            ItemKind::Symlink(target) => EntryKind::Symlink(target.clone()),
            ItemKind::Special => special_kind(&meta),
        };
        entries.insert(image_path, Entry::new(kind, meta.mode(), uid, gid))?;
    }
    if resolved.host_parents {
        // Host trees keep the host's directories as they are (`/tmp` stays 1777), where
        // the image path is the host path: host-binary and host-path.
        let implicit: Vec<String> = entries
            .iter()
            .filter(|(path, _)| entries.is_implicit(path))
            .map(|(path, _)| path.to_string())
            .collect();
        for path in implicit {
            if let Ok(meta) = std::fs::symlink_metadata(Path::new("/").join(&path))
                && meta.is_dir()
            {
                entries.insert(
                    &path,
                    Entry::new(EntryKind::Dir, meta.mode(), meta.uid(), meta.gid()),
                )?;
            }
        }
    }
    Ok(entries)
}
