//! From the model to the graph: which images to build, in which order, each step's action,
//! and the chain of keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::image::ImageConfig;
use crate::spec::model::{FromRef, Image, Project, RunCommand, Step};
use crate::spec::{Sources, Span};

use super::{InputSource, Key, Recipe};

/// What an image starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    Scratch,
    /// Another image of the plan, by index.
    Project(usize),
    /// An image already in the store, by name.
    Stored(String),
    OciArchive(PathBuf),
    DockerArchive(PathBuf),
}

/// A step that produces a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerAction {
    Copy {
        sources: Vec<String>,
        destination: String,
        /// Copy out of another image (of the plan, or stored) instead of the build context.
        from: Option<Base>,
    },
    HostBinary {
        paths: Vec<String>,
    },
    HostPath {
        paths: Vec<String>,
    },
    Run {
        argv: Vec<String>,
        network: bool,
    },
    /// `workdir PATH`: sets the working directory (a config change) and creates it in the
    /// image when it is missing, as Docker's WORKDIR does (the layer holds the directories
    /// made; an image that has them gets no layer for this step).
    Workdir {
        path: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum StepAction {
    Layer(LayerAction),
    /// A change to the image config only (env, user, cmd…): no layer.
    Config(Step),
}

impl StepAction {
    /// Applies what this step changes in the image config (`Config` steps and `workdir`).
    pub fn apply_config(&self, config: &mut ImageConfig) {
        match self {
            StepAction::Config(step) => apply_config(step, config),
            StepAction::Layer(LayerAction::Workdir { path }) => apply_workdir(path, config),
            StepAction::Layer(_) => {}
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlannedStep {
    /// Position among the image's steps (`from` is not a step), 0-based.
    pub index: usize,
    pub keyword: &'static str,
    pub span: Span,
    /// The step as written in kiln.kdl (for history and progress lines).
    pub text: String,
    pub action: StepAction,
    /// The recipe of this step's cache key, filled by [`BuildPlan::compute_keys`].
    pub recipe: Recipe,
    pub key: Option<Key>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImagePlan {
    /// As the project names it (`web`): in its messages and its other images' `from`.
    pub name: String,
    /// Its tag in the store: the project's reference of it (`shop/web`, see
    /// [`crate::scope`]), so two projects' `web` never overwrite each other.
    pub tag: String,
    pub span: Span,
    /// Relative `copy` sources are read from here: the directory of the file that declares
    /// the image (none for stdlib modules, which live in the binary).
    pub context: Option<PathBuf>,
    pub base: Base,
    pub base_span: Span,
    pub steps: Vec<PlannedStep>,
    /// Images of the plan this one needs first (its base, `copy from=` sources).
    pub needs: Vec<usize>,
    /// The key of the whole image (the last step's key, or the base's), once computed.
    pub key: Option<Key>,
}

impl ImagePlan {
    /// Whether a `run` step asks for the network, which makes the image unreproducible.
    pub fn uses_network(&self) -> bool {
        self.steps.iter().any(|s| {
            matches!(
                s.action,
                StepAction::Layer(LayerAction::Run { network: true, .. })
            )
        })
    }
}

/// The images to build, dependencies before dependents.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BuildPlan {
    pub images: Vec<ImagePlan>,
    /// Build settings that shape every layer's bytes (compression, SOURCE_DATE_EPOCH): part
    /// of every layer step's key, so a cached layer is only reused for the same settings.
    pub layer_settings: Vec<super::RecipeItem>,
}

impl BuildPlan {
    pub fn image(&self, name: &str) -> Option<(usize, &ImagePlan)> {
        self.images.iter().enumerate().find(|(_, i)| i.name == name)
    }

    /// Fills every step's recipe and key, and every image's key, in dependency order.
    pub fn compute_keys<S: InputSource>(&mut self, inputs: &S) -> Result<(), S::Error> {
        let mut effective: Vec<ImageConfig> = Vec::with_capacity(self.images.len());
        for index in 0..self.images.len() {
            let (base_key, mut config) = match &self.images[index].base {
                Base::Scratch => (Key::of_str("kiln-base:scratch"), ImageConfig::empty()),
                Base::Project(parent) => (
                    self.images[*parent].key.expect("parents come first"),
                    effective[*parent].clone(),
                ),
                other => (inputs.base_key(other)?, ImageConfig::empty()),
            };
            let image_keys: Vec<Option<Key>> = self.images.iter().map(|i| i.key).collect();
            let mut parent = base_key;
            let mut steps = std::mem::take(&mut self.images[index].steps);
            for step in &mut steps {
                let mut recipe = Recipe::default();
                recipe.push("parent", parent.hex());
                recipe.push("step", step.keyword);
                match &step.action {
                    StepAction::Config(model_step) => {
                        apply_config(model_step, &mut config);
                        describe_config(model_step, &mut recipe);
                    }
                    StepAction::Layer(action) => {
                        let from_key = match action {
                            LayerAction::Copy {
                                from: Some(Base::Project(from)),
                                ..
                            } => image_keys[*from],
                            LayerAction::Copy {
                                from: Some(other), ..
                            } => Some(inputs.base_key(other)?),
                            _ => None,
                        };
                        describe_layer(action, from_key, &mut recipe);
                        for env in &config.config.env {
                            recipe.push("env", env.clone());
                        }
                        recipe.push(
                            "workdir",
                            config.config.working_dir.clone().unwrap_or_default(),
                        );
                        recipe.push("user", config.config.user.clone().unwrap_or_default());
                        recipe.items.extend(self.layer_settings.iter().cloned());
                        recipe
                            .items
                            .extend(inputs.inputs(&self.images[index], step)?);
                    }
                }
                if let StepAction::Layer(LayerAction::Workdir { path }) = &step.action {
                    apply_workdir(path, &mut config);
                }
                let key = recipe.key();
                step.recipe = recipe;
                step.key = Some(key);
                parent = key;
            }
            self.images[index].steps = steps;
            self.images[index].key = Some(parent);
            effective.push(config);
        }
        Ok(())
    }
}

fn describe_layer(action: &LayerAction, from_key: Option<Key>, recipe: &mut Recipe) {
    match action {
        LayerAction::Copy {
            sources,
            destination,
            from,
        } => {
            for source in sources {
                recipe.push("source", source.clone());
            }
            recipe.push("destination", destination.clone());
            if from.is_some() {
                let key = from_key.expect("copy sources come first");
                recipe.push("from image", key.hex());
            }
        }
        LayerAction::HostBinary { paths } | LayerAction::HostPath { paths } => {
            for path in paths {
                recipe.push("path", path.clone());
            }
        }
        LayerAction::Run { argv, network } => {
            for arg in argv {
                recipe.push("arg", arg.clone());
            }
            recipe.push("network", network.to_string());
        }
        LayerAction::Workdir { path } => recipe.push("path", path.clone()),
    }
}

fn describe_config(step: &Step, recipe: &mut Recipe) {
    let mut push_all = |label: &str, values: &mut dyn Iterator<Item = String>| {
        for value in values {
            recipe.push(label, value);
        }
    };
    match step {
        Step::Env { vars } => push_all(
            "env",
            &mut vars.iter().map(|(k, v)| format!("{}={}", k.value, v.value)),
        ),
        Step::Label { labels } => push_all(
            "label",
            &mut labels
                .iter()
                .map(|(k, v)| format!("{}={}", k.value, v.value)),
        ),
        Step::Workdir { path } => push_all("workdir", &mut std::iter::once(path.value.clone())),
        Step::User { user } => push_all("user", &mut std::iter::once(user.value.clone())),
        Step::Expose { ports } => push_all(
            "port",
            &mut ports.iter().map(|p| exposed_port_key(&p.value)),
        ),
        Step::Entrypoint { args } | Step::Cmd { args } => {
            push_all("arg", &mut args.iter().map(|a| a.value.clone()))
        }
        Step::Volume { paths } => push_all("path", &mut paths.iter().map(|p| p.value.clone())),
        Step::StopSignal { signal } => {
            push_all("signal", &mut std::iter::once(signal.value.to_string()))
        }
        Step::Copy { .. } | Step::HostBinary { .. } | Step::HostPath { .. } | Step::Run { .. } => {}
    }
}

fn exposed_port_key(port: &crate::spec::model::PortSpec) -> String {
    let protocol = match port.protocol {
        crate::spec::model::Protocol::Tcp => "tcp",
        crate::spec::model::Protocol::Udp => "udp",
    };
    format!("{}/{protocol}", port.port)
}

/// Applies a config step to an image config, as Docker's instructions do.
pub fn apply_config(step: &Step, config: &mut ImageConfig) {
    let runtime = &mut config.config;
    match step {
        Step::Env { vars } => {
            for (key, value) in vars {
                config.set_env(&key.value, &value.value);
            }
        }
        Step::Label { labels } => {
            for (key, value) in labels {
                runtime
                    .labels
                    .insert(key.value.clone(), value.value.clone());
            }
        }
        Step::Workdir { path } => apply_workdir(&path.value, config),
        Step::User { user } => runtime.user = Some(user.value.clone()),
        Step::Expose { ports } => {
            for port in ports {
                runtime
                    .exposed_ports
                    .insert(exposed_port_key(&port.value), Default::default());
            }
        }
        Step::Entrypoint { args } => {
            runtime.entrypoint = Some(args.iter().map(|a| a.value.clone()).collect());
            // Docker: setting ENTRYPOINT resets a CMD inherited from the base image.
            runtime.cmd = None;
        }
        Step::Cmd { args } => runtime.cmd = Some(args.iter().map(|a| a.value.clone()).collect()),
        Step::Volume { paths } => {
            for path in paths {
                runtime
                    .volumes
                    .insert(path.value.clone(), Default::default());
            }
        }
        Step::StopSignal { signal } => runtime.stop_signal = Some(signal.value.to_string()),
        Step::Copy { .. } | Step::HostBinary { .. } | Step::HostPath { .. } | Step::Run { .. } => {}
    }
}

/// `workdir PATH`'s config change: a relative PATH is relative to the previous working
/// directory, as in Docker.
fn apply_workdir(path: &str, config: &mut ImageConfig) {
    let runtime = &mut config.config;
    let base = runtime.working_dir.clone().unwrap_or_else(|| "/".into());
    runtime.working_dir = Some(join_image_path(&base, path));
}

/// `base` joined with `path` inside an image (absolute paths replace), normalized.
pub fn join_image_path(base: &str, path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{base}/{path}")
    };
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// Plans the images named in `wanted` (all when empty) and everything they need.
/// The project must have passed validation (no unknown images, no cycles).
pub fn plan(project: &Project, sources: &Sources, wanted: &[String]) -> Result<BuildPlan, String> {
    let by_name: BTreeMap<&str, &Image> = project
        .images
        .iter()
        .map(|i| (i.name.value.as_str(), i))
        .collect();
    let roots: Vec<&str> = if wanted.is_empty() {
        project
            .images
            .iter()
            .map(|i| i.name.value.as_str())
            .collect()
    } else {
        wanted.iter().map(String::as_str).collect()
    };
    for name in &roots {
        if !by_name.contains_key(name) {
            return Err(name.to_string());
        }
    }
    // Depth-first post-order from the roots gives dependencies before dependents.
    let mut order: Vec<&str> = Vec::new();
    let mut state: BTreeMap<&str, bool> = BTreeMap::new(); // false: visiting, true: done
    fn visit<'a>(
        name: &'a str,
        by_name: &BTreeMap<&'a str, &'a Image>,
        state: &mut BTreeMap<&'a str, bool>,
        order: &mut Vec<&'a str>,
    ) {
        if state.contains_key(name) {
            return; // done, or a cycle (validation reports those)
        }
        state.insert(name, false);
        if let Some(image) = by_name.get(name) {
            for dep in image_dependencies(image) {
                if let Some((key, _)) = by_name.get_key_value(dep) {
                    visit(key, by_name, state, order);
                }
            }
        }
        state.insert(name, true);
        order.push(name);
    }
    for name in roots {
        visit(name, &by_name, &mut state, &mut order);
    }
    let index_of: BTreeMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let images = order
        .iter()
        .map(|name| plan_image(&project.name, by_name[name], &index_of, sources))
        .collect();
    Ok(BuildPlan {
        images,
        layer_settings: Vec::new(),
    })
}

fn image_dependencies(image: &Image) -> impl Iterator<Item = &str> {
    let base = match image.from.as_ref().map(|f| &f.value) {
        Some(FromRef::Image(name)) => Some(name.as_str()),
        _ => None,
    };
    base.into_iter()
        .chain(image.steps.iter().filter_map(|s| match &s.value {
            Step::Copy {
                from: Some(from), ..
            } => Some(from.value.as_str()),
            _ => None,
        }))
}

fn plan_image(
    project: &str,
    image: &Image,
    index_of: &BTreeMap<&str, usize>,
    sources: &Sources,
) -> ImagePlan {
    let file = sources.get(image.name.span.file);
    // `kiln.kdl` has the parent "": the current directory.
    let context = file.path.as_ref().map(|p| match p.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    });
    let resolve = |relative: &str| -> PathBuf {
        match &context {
            Some(dir) => dir.join(relative),
            None => PathBuf::from(relative),
        }
    };
    let (base, base_span) = match &image.from {
        None => (Base::Scratch, image.name.span),
        Some(from) => (
            match &from.value {
                FromRef::Scratch => Base::Scratch,
                FromRef::Image(name) => match index_of.get(name.as_str()) {
                    Some(index) => Base::Project(*index),
                    None => Base::Stored(name.clone()),
                },
                FromRef::OciArchive(path) => Base::OciArchive(resolve(path)),
                FromRef::DockerArchive(path) => Base::DockerArchive(resolve(path)),
            },
            from.span,
        ),
    };
    let steps = image
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| PlannedStep {
            index,
            keyword: step.value.keyword(),
            span: step.span,
            text: sources.slice(step.span).trim_end().to_string(),
            action: step_action(&step.value, index_of),
            recipe: Recipe::default(),
            key: None,
        })
        .collect();
    let mut needs: Vec<usize> = image_dependencies(image)
        .filter_map(|d| index_of.get(d).copied())
        .collect();
    needs.sort_unstable();
    needs.dedup();
    ImagePlan {
        name: image.name.value.clone(),
        tag: crate::scope::qualify(Some(project), &image.name.value),
        span: image.name.span,
        context,
        base,
        base_span,
        steps,
        needs,
        key: None,
    }
}

fn step_action(step: &Step, index_of: &BTreeMap<&str, usize>) -> StepAction {
    let strings = |items: &[crate::spec::Spanned<String>]| -> Vec<String> {
        items.iter().map(|s| s.value.clone()).collect()
    };
    StepAction::Layer(match step {
        Step::Copy {
            sources,
            destination,
            from,
        } => LayerAction::Copy {
            sources: strings(sources),
            destination: destination.value.clone(),
            from: from.as_ref().map(|f| match index_of.get(f.value.as_str()) {
                Some(index) => Base::Project(*index),
                None => Base::Stored(f.value.clone()),
            }),
        },
        Step::HostBinary { paths } => LayerAction::HostBinary {
            paths: strings(paths),
        },
        Step::HostPath { paths } => LayerAction::HostPath {
            paths: strings(paths),
        },
        Step::Run { command, network } => LayerAction::Run {
            argv: match command {
                RunCommand::Exec(_) | RunCommand::Shell(_) => command.argv(),
            },
            network: *network,
        },
        Step::Workdir { path } => LayerAction::Workdir {
            path: path.value.clone(),
        },
        other => return StepAction::Config(other.clone()),
    })
}
