//! The build plan: the project's images as a graph of steps, decided before anything runs.
//!
//! Owns which image needs which (through `from` and `copy from=`), the order they can be
//! built in, what each step does (a layer or a config change) and the recipe of each step's
//! cache key. It is pure: file contents reach it as hashes through [`InputSource`], so every
//! rule here is tested without touching the disk. It must not build, hash files or write.

mod graph;
mod recipe;
#[cfg(test)]
mod tests;

pub use graph::{
    Base, BuildPlan, ImagePlan, LayerAction, PlannedStep, StepAction, apply_config,
    join_image_path, plan,
};
pub use recipe::{Change, Key, Recipe, RecipeItem};

/// Where the plan gets what it cannot know by itself: the content of a step's inputs.
pub trait InputSource {
    type Error;
    /// The input items of a layer step (files of a `copy`, the closure of a `host-binary`…)
    /// as `(label, value)` pairs in a stable order; the value carries a content hash.
    fn inputs(&self, image: &ImagePlan, step: &PlannedStep)
    -> Result<Vec<RecipeItem>, Self::Error>;
    /// The key of a base that is not an image of the project (a stored image, an archive).
    fn base_key(&self, base: &Base) -> Result<Key, Self::Error>;
}
