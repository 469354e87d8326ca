//! The registry images of a project: each reference kiln.kdl makes to an image outside the
//! project (`from "debian:12"`, `copy … from="…"`, `container … image="…"`) resolved
//! through kiln.lock, pulled when the store lacks it, and replaced in the plan or model by
//! its pinned store name (`debian@sha256:…`), so every later step uses the locked digest and
//! a build from a complete store and lock needs no network.
//!
//! Rules: a name without `:`, `/` or `@`, or one the store holds as a local image (built,
//! imported or tagged here, not pulled), is not a registry reference. A reference with a
//! digest needs no lock entry. A tag is taken from kiln.lock; else from a pull the store
//! already has (`kiln pull` first, as Docker's `FROM` uses a local image); else it is pulled.
//! `--update` (and `kiln lock`) resolve every tag at the registry again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::CliError;
use super::registry::Progress;
use crate::digest::Digest;
use crate::image::lookup_tag;
use crate::reference::Reference;
use crate::registry::{self, NetOptions, pulled_from};
use crate::spec::lock::{self, LOCK_FILE};
use crate::store::Store;

/// Whether a name is written as a registry reference.
pub(super) fn registry_shaped(name: &str) -> bool {
    name.contains([':', '/', '@'])
}

pub(super) struct Pinner<'a> {
    store: &'a Store,
    pins: BTreeMap<String, Digest>,
    changed: bool,
    update: bool,
    net: NetOptions,
    lock_path: PathBuf,
    resolved: BTreeMap<String, Option<String>>,
}

/// `kiln.lock` beside the project file.
pub(super) fn lock_path(project_file: &Path) -> PathBuf {
    match project_file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(LOCK_FILE),
        _ => Path::new(".").join(LOCK_FILE),
    }
}

impl<'a> Pinner<'a> {
    pub(super) fn new(
        store: &'a Store,
        loaded: &crate::spec::Loaded,
        project_file: &Path,
        update: bool,
        net: NetOptions,
    ) -> Pinner<'a> {
        Pinner {
            store,
            pins: loaded.lock.pins(),
            changed: false,
            update,
            net,
            lock_path: lock_path(project_file),
            resolved: BTreeMap::new(),
        }
    }

    /// The store name to use for `name` (pulling what is missing), `None` when `name` is not
    /// a registry reference.
    pub(super) fn resolve(&mut self, name: &str) -> Result<Option<String>, crate::Error> {
        if let Some(done) = self.resolved.get(name) {
            return Ok(done.clone());
        }
        let result = self.resolve_new(name)?;
        self.resolved.insert(name.to_string(), result.clone());
        Ok(result)
    }

    fn resolve_new(&mut self, name: &str) -> Result<Option<String>, crate::Error> {
        if !registry_shaped(name) {
            return Ok(None);
        }
        let local = self.store.tag(name)?;
        if local.as_ref().is_some_and(|d| pulled_from(d).is_none()) {
            return Ok(None); // built, imported or tagged here
        }
        let Ok(reference) = Reference::parse(name) else {
            return Ok(None); // `kiln check` reports it; the build says it is missing
        };
        if let Some(digest) = &reference.digest {
            let pinned = reference.pinned(digest.clone());
            self.ensure(&pinned)?;
            return Ok(Some(pinned.familiar()));
        }
        let key = reference.to_string();
        if !self.update {
            if let Some(digest) = self.pins.get(&key).cloned() {
                let pinned = reference.pinned(digest);
                self.ensure(&pinned)?;
                return Ok(Some(pinned.familiar()));
            }
            let stored =
                lookup_tag(self.store, &reference.familiar())?.and_then(|d| pulled_from(&d));
            if let Some((_, digest)) = stored {
                let pinned = reference.pinned(digest.clone());
                self.pin(key, digest);
                self.ensure(&pinned)?;
                return Ok(Some(pinned.familiar()));
            }
        }
        let pulled = self.pull(&reference)?;
        self.pin(key, pulled.clone());
        Ok(Some(reference.pinned(pulled).familiar()))
    }

    fn pin(&mut self, key: String, digest: Digest) {
        if self.pins.get(&key) != Some(&digest) {
            self.pins.insert(key, digest);
            self.changed = true;
        }
    }

    /// Pulls a pinned reference unless the store has it.
    fn ensure(&self, pinned: &Reference) -> Result<(), crate::Error> {
        if lookup_tag(self.store, &pinned.familiar())?.is_none() {
            self.pull(pinned)?;
        }
        Ok(())
    }

    fn pull(&self, reference: &Reference) -> Result<Digest, crate::Error> {
        eprintln!("pulling {}", reference.familiar());
        let progress = Progress::new("pulled");
        let result = registry::pull(self.store, reference, None, &self.net, &|e| {
            progress.event(e)
        });
        progress.finish();
        Ok(result?.digest)
    }

    /// Writes kiln.lock if a pin changed.
    pub(super) fn save(&self) -> Result<(), crate::Error> {
        if !self.changed {
            return Ok(());
        }
        write_lock(&self.lock_path, &self.pins)
    }
}

pub(super) fn write_lock(path: &Path, pins: &BTreeMap<String, Digest>) -> Result<(), crate::Error> {
    let text = lock::render(pins);
    crate::atomic_file::write_durably(path, text.as_bytes()).map_err(|source| CliError::Write {
        what: "the lock file",
        path: path.to_path_buf(),
        source,
    })?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

/// Replaces the plan's store bases (and `copy … from=` sources) that are registry
/// references by their pinned names; writes kiln.lock when a pin changed.
pub(super) fn pin_plan(
    cli: &super::args::Cli,
    loaded: &crate::spec::Loaded,
    plan: &mut crate::plan::BuildPlan,
    project_file: &Path,
    update: bool,
    net: &super::registry_args::RegistryNetArgs,
) -> Result<(), crate::Error> {
    use crate::plan::{Base, LayerAction, StepAction};
    let stored = |base: &Base| match base {
        Base::Stored(name) => registry_shaped(name),
        _ => false,
    };
    let needed = plan.images.iter().any(|image| {
        stored(&image.base)
            || image.steps.iter().any(|s| {
                matches!(&s.action, StepAction::Layer(LayerAction::Copy { from: Some(b), .. }) if stored(b))
            })
    });
    if !needed {
        return Ok(());
    }
    let store = super::open_store(cli)?;
    let mut pinner = Pinner::new(&store, loaded, project_file, update, net.options());
    for image in &mut plan.images {
        if let Base::Stored(name) = &mut image.base
            && let Some(pinned) = pinner.resolve(name)?
        {
            *name = pinned;
        }
        for step in &mut image.steps {
            if let StepAction::Layer(LayerAction::Copy {
                from: Some(Base::Stored(name)),
                ..
            }) = &mut step.action
                && let Some(pinned) = pinner.resolve(name)?
            {
                *name = pinned;
            }
        }
    }
    pinner.save()
}

/// Replaces containers' registry images by their pinned names (`kiln up`).
pub(super) fn pin_containers(
    cli: &super::args::Cli,
    loaded: &mut crate::spec::Loaded,
    project_file: &Path,
) -> Result<(), crate::Error> {
    let own: std::collections::BTreeSet<String> = loaded
        .project
        .images
        .iter()
        .map(|i| i.name.value.clone())
        .collect();
    if !loaded
        .project
        .containers
        .iter()
        .any(|c| !own.contains(&c.image.value) && registry_shaped(&c.image.value))
    {
        return Ok(());
    }
    let store = super::open_store(cli)?;
    let mut pinner = Pinner::new(&store, loaded, project_file, false, NetOptions::default());
    let mut renamed = Vec::new();
    for (i, c) in loaded.project.containers.iter().enumerate() {
        if !own.contains(&c.image.value)
            && let Some(pinned) = pinner.resolve(&c.image.value)?
        {
            renamed.push((i, pinned));
        }
    }
    pinner.save()?;
    for (i, pinned) in renamed {
        loaded.project.containers[i].image.value = pinned;
    }
    Ok(())
}

/// `kiln lock`: resolves every registry image of the project at its registry and writes
/// kiln.lock with exactly those pins.
pub(super) fn lock(
    cli: &super::args::Cli,
    args: &super::registry_args::LockArgs,
) -> Result<u8, crate::Error> {
    let file = &args.project.file;
    let loaded = super::load_project_file(cli, file)?;
    if !loaded.diagnostics.is_empty() {
        let style = crate::spec::render::TextStyle {
            color: super::stderr_color(),
            width: super::render_width(),
        };
        eprint!(
            "{}",
            crate::spec::render::text_all(&loaded.diagnostics, &loaded.sources, style)
        );
    }
    let errors_outside_lock = loaded
        .diagnostics
        .iter()
        .any(|d| d.is_error() && Some(d.span.file) != loaded.lock.file);
    if errors_outside_lock {
        eprintln!("{}: not locked: fix the errors above", file.display());
        return Ok(1);
    }
    let store = super::open_store(cli)?;
    let net = args.net.options();
    let mut pins = BTreeMap::new();
    for name in lock::registry_names(&loaded.project) {
        if store
            .tag(&name.value)?
            .is_some_and(|d| pulled_from(&d).is_none())
        {
            continue; // a local image of the store
        }
        let Ok(reference) = Reference::parse(&name.value) else {
            continue;
        };
        if reference.digest.is_some() {
            continue; // pinned in kiln.kdl itself
        }
        let digest = registry::resolve(&reference, &net, &|_| {})?;
        super::output::line(format!("{}  {digest}", reference))?;
        pins.insert(reference.to_string(), digest);
    }
    write_lock(&lock_path(file), &pins)?;
    Ok(0)
}
