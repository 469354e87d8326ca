//! `kiln build`: executes the build plan. Layers come from host files (`host-binary`,
//! `host-path`), the build context (`copy`), other images (`copy from=`) and commands run in
//! the sandbox (`run`); config steps change the image config. Every layer step is looked up
//! in the build cache by its key first.
//!
//! Owns scheduling ([`schedule`]), input hashing ([`hashing`], [`statcache`]), the unpacked
//! layer directories `run` steps mount ([`layer_dirs`]) and `copy from=` reads as one tree
//! ([`union`]), step execution ([`execute`]) and the record of each image's last build that
//! `kiln explain` reads ([`record`]). It must not parse KDL or print: progress goes out as
//! [`BuildEvent`]s.

mod cleanup;
mod copy_from;
mod execute;
mod hashing;
pub mod inputs;
mod layer_dirs;
mod owner;
pub(crate) mod place;
pub mod record;
mod schedule;
mod statcache;
mod union;
pub mod verify;

use std::path::PathBuf;
use std::time::Duration;

pub use cleanup::{CleanReport, clean_state};
pub use execute::{build, store_layer};
pub use hashing::HostInputs;
pub use layer_dirs::{chain_ids, flatten, unpack_stack};
pub use owner::OwnerError;
pub use place::PlaceError;
pub use record::{ExplainedStep, explain};
pub use schedule::run_dag;
pub use statcache::StatCache;
pub use verify::{Verification, VerifyError, verify};

use crate::digest::Digest;
use crate::layer::Compression;
use crate::spec::Span;
use crate::store::Descriptor;

/// How to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Worker threads (steps and images run in parallel up to this many).
    pub jobs: usize,
    /// Ignore the build cache (every step runs; results still refresh the cache).
    pub no_cache: bool,
    /// Every mtime in every layer, and the config's `created`.
    pub source_date_epoch: u64,
    pub compression: Compression,
    /// The state root: unpacked layers and scratch directories for `run` live under it.
    pub state_root: PathBuf,
}

/// Whether a step's result came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheStatus {
    Hit,
    Miss,
}

/// Progress, as it happens.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    StepStarted {
        image: String,
        index: usize,
        text: String,
    },
    StepFinished {
        image: String,
        index: usize,
        cache: CacheStatus,
        duration: Duration,
    },
    /// A line a `run` step printed.
    Output {
        image: String,
        line: String,
    },
    ImageBuilt {
        image: String,
        digest: Digest,
    },
}

/// One step as it went: for `--report`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepReport {
    pub image: String,
    pub index: usize,
    pub kind: &'static str,
    pub cache: CacheStatus,
    /// Why a miss missed (the input that changed since the last build), `None` for a hit.
    pub reason: Option<String>,
    pub key: String,
    pub duration_ms: f64,
    /// The layer this step made or reused (`None` for config steps).
    pub layer: Option<Descriptor>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BuiltImage {
    pub name: String,
    pub digest: Digest,
    pub layers: Vec<Descriptor>,
    pub diff_ids: Vec<Digest>,
    /// False when a `run` step had the network: its result can depend on the outside.
    pub reproducible: bool,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BuildOutcome {
    pub images: Vec<BuiltImage>,
    pub steps: Vec<StepReport>,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum BuildError {
    #[error("cannot gather the inputs of step {} of image `{image}`", index + 1)]
    Inputs {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: inputs::InputError,
    },
    #[error("cannot copy out of the source image in step {} of image `{image}`", index + 1)]
    CopyFrom {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: copy_from::CopyFromError,
    },
    #[error("cannot place what step {} of image `{image}` copies or creates", index + 1)]
    Place {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: place::PlaceError,
    },
    #[error("cannot tell who owns what step {} of image `{image}` creates", index + 1)]
    Owner {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: owner::OwnerError,
    },
    #[error("`run` in image `{image}` failed: {status}")]
    RunFailed {
        image: String,
        index: usize,
        span: Span,
        status: String,
        code: i32,
        output_tail: String,
    },
    #[error("`run` in image `{image}` could not start")]
    RunStart {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: crate::runtime::SandboxError,
    },
    #[error("cannot write the layer of step {} of image `{image}`", index + 1)]
    Layer {
        image: String,
        index: usize,
        span: Span,
        #[source]
        #[diagnostic_source]
        source: crate::layer::LayerError,
    },
    #[error("cannot unpack layer {digest}")]
    Unpack {
        digest: Digest,
        #[source]
        #[diagnostic_source]
        source: crate::layer::LayerError,
    },
    #[error(
        "layer {digest} is not the layer its image names: it unpacks to {actual}, the image config says {expected}"
    )]
    #[diagnostic(help(
        "the image is corrupt or hostile (it claims another layer's identity); nothing of it was unpacked"
    ))]
    DiffIdMismatch {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("user `{user}` of image `{image}` is not in the image's /etc/passwd")]
    #[diagnostic(help("use numeric ids (`user \"1000:1000\"`) or create the user first"))]
    UnknownUser {
        image: String,
        user: String,
        span: Span,
    },
    #[error("base image `{name}` of image `{image}` is not in the store")]
    #[diagnostic(help("build or import it first; `kiln images` lists what the store has"))]
    MissingBase { image: String, name: String },
    #[error("cannot import the base of image `{image}`")]
    Archive {
        image: String,
        span: Span,
        #[source]
        source: Box<crate::image::ArchiveError>,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    #[diagnostic(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("build I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the cgroups of killed build steps")]
    Cleanup {
        #[source]
        source: Box<crate::runtime::SandboxError>,
    },
}

/// The cgroup of a `run` step is `kiln/<root>/` this, then its scratch directory's name.
pub(crate) const STEP_CGROUP_PREFIX: &str = "build-";

impl BuildError {
    /// The span in kiln.kdl this error is about, if any.
    pub fn span(&self) -> Option<Span> {
        match self {
            BuildError::Inputs { span, .. }
            | BuildError::CopyFrom { span, .. }
            | BuildError::Place { span, .. }
            | BuildError::Owner { span, .. }
            | BuildError::RunFailed { span, .. }
            | BuildError::RunStart { span, .. }
            | BuildError::Layer { span, .. }
            | BuildError::UnknownUser { span, .. }
            | BuildError::Archive { span, .. } => Some(*span),
            _ => None,
        }
    }
}

pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}
#[cfg(test)]
mod tests;
