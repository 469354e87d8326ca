//! The record of each image's last build (every step's key and recipe), kept in the store
//! under `kiln/builds/<image>`, and `kiln explain`: per step, hit or miss and, for a miss,
//! the input that changed since that record.

use serde::{Deserialize, Serialize};

use crate::plan::{BuildPlan, Change, ImagePlan, PlannedStep, Recipe, StepAction};
use crate::store::{Store, StoreError};

use super::CacheStatus;

const NAMESPACE: &str = "builds";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildRecord {
    pub image: String,
    pub key: String,
    pub steps: Vec<StepRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub index: usize,
    pub text: String,
    pub key: String,
    pub recipe: Recipe,
}

/// Image names may hold characters a file name cannot (`/`): encode them.
fn file_name(image: &str) -> String {
    image
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.' {
                (b as char).to_string()
            } else {
                format!("%{b:02x}")
            }
        })
        .collect()
}

pub(crate) fn load(store: &Store, image: &str) -> Option<BuildRecord> {
    let bytes = store.get_meta(NAMESPACE, &file_name(image)).ok()??;
    serde_json::from_slice(&bytes).ok()
}

pub(crate) fn save(store: &Store, image: &ImagePlan) -> Result<(), StoreError> {
    let record = BuildRecord {
        image: image.name.clone(),
        key: image.key.map(|k| k.hex()).unwrap_or_default(),
        steps: image
            .steps
            .iter()
            .map(|s| StepRecord {
                index: s.index,
                text: s.text.clone(),
                key: s.key.map(|k| k.hex()).unwrap_or_default(),
                recipe: s.recipe.clone(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&record).expect("a build record serializes");
    let name = file_name(&image.tag);
    // A no-op rebuild writes nothing (and fsyncs nothing).
    if store.get_meta(NAMESPACE, &name)?.as_deref() == Some(bytes.as_slice()) {
        return Ok(());
    }
    store.put_meta(NAMESPACE, &name, &bytes)
}

/// Why a step's key is not the one it had last time, in one line.
pub(crate) fn miss_reason(previous: Option<&BuildRecord>, step: &PlannedStep) -> String {
    let Some(previous) = previous else {
        return "first build of this image".to_string();
    };
    let Some(before) = previous.steps.iter().find(|s| s.index == step.index) else {
        return "a new step".to_string();
    };
    if Some(before.key.as_str()) == step.key.map(|k| k.hex()).as_deref() {
        return "same key as the last build, but its layer is no longer cached".to_string();
    }
    let changes = step.recipe.changes_since(&before.recipe);
    let own: Vec<&Change> = changes
        .iter()
        .filter(|c| !matches!(c, Change::Changed { label, .. } if label == "parent"))
        .collect();
    if own.is_empty() {
        return if step.index == 0 {
            "the base image changed".to_string()
        } else {
            "an earlier step changed".to_string()
        };
    }
    let mut text = own[0].to_string();
    if own.len() > 1 {
        text.push_str(&format!(" (and {} more)", own.len() - 1));
    }
    text
}

/// One step as `kiln explain` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedStep {
    pub image: String,
    pub index: usize,
    pub text: String,
    pub key: String,
    pub cache: CacheStatus,
    /// For a miss: every input that changed since the last build (empty for a hit).
    pub changes: Vec<String>,
    pub reason: Option<String>,
}

/// Hit or miss for every step of the plan (keys computed), with reasons for misses.
pub fn explain(store: &Store, plan: &BuildPlan) -> Result<Vec<ExplainedStep>, StoreError> {
    let mut out = Vec::new();
    for image in &plan.images {
        let previous = load(store, &image.tag);
        for step in &image.steps {
            let key = step.key.map(|k| k.hex()).unwrap_or_default();
            let hit = match &step.action {
                StepAction::Layer(_) => store.cache_get(&key)?.is_some(),
                // A config step costs nothing: it "hits" when its key is the one last built.
                StepAction::Config(_) => previous
                    .as_ref()
                    .and_then(|p| p.steps.iter().find(|s| s.index == step.index))
                    .is_some_and(|s| s.key == key),
            };
            let (cache, changes, reason) = if hit {
                (CacheStatus::Hit, Vec::new(), None)
            } else {
                let before = previous
                    .as_ref()
                    .and_then(|p| p.steps.iter().find(|s| s.index == step.index));
                let changes = before
                    .map(|b| {
                        step.recipe
                            .changes_since(&b.recipe)
                            .iter()
                            .filter(|c| !matches!(c, Change::Changed { label, .. } if label == "parent"))
                            .map(ToString::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    CacheStatus::Miss,
                    changes,
                    Some(miss_reason(previous.as_ref(), step)),
                )
            };
            out.push(ExplainedStep {
                image: image.name.clone(),
                index: step.index,
                text: step.text.clone(),
                key,
                cache,
                changes,
                reason,
            });
        }
    }
    Ok(out)
}
