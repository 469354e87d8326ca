//! `kiln ps --filter KEY=VALUE`, with Docker's keys and Docker's way of combining them:
//! values of one key are alternatives (any may match), different keys must all match, and
//! every `label` filter must match. `name` and `id` match any part of the name or id
//! (`name` is a regular expression, as Docker's: `name=^web$`).
//!
//! It reads a container's recorded facts (its record, `launch.json`'s networks, its
//! image's layers in the store) and never changes anything.

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;

use super::ContainerError;
use super::lifecycle::Launch;
use crate::image::StoredImage;
use crate::state::{Record, Records};
use crate::store::Store;

/// Docker's container states: kiln's containers are in the first five (`paused`: running,
/// frozen by `kiln pause`); the others are valid and match nothing.
const STATUSES: [&str; 7] = [
    "created",
    "running",
    "restarting",
    "exited",
    "paused",
    "removing",
    "dead",
];

/// The parsed `--filter` flags.
#[derive(Debug, Default)]
pub struct ContainerFilter {
    ids: Vec<String>,
    names: Vec<Regex>,
    statuses: Vec<String>,
    /// `label=KEY` (any value) or `label=KEY=VALUE`.
    labels: Vec<(String, Option<String>)>,
    projects: Vec<String>,
    ancestors: Vec<String>,
    networks: Vec<String>,
}

impl ContainerFilter {
    /// Reads `KEY=VALUE` flags; an unknown key, a missing `=` or a bad value is an error
    /// (never a filter silently dropped).
    pub fn parse(filters: &[String]) -> Result<ContainerFilter, ContainerError> {
        let mut filter = ContainerFilter::default();
        for text in filters {
            let bad = |reason: &str| ContainerError::BadFilter {
                filter: text.clone(),
                reason: reason.to_string(),
            };
            let Some((key, value)) = text.split_once('=') else {
                return Err(bad("expected KEY=VALUE"));
            };
            let value = value.to_string();
            match key.trim().to_ascii_lowercase().as_str() {
                "id" => filter.ids.push(value),
                "name" => filter.names.push(
                    Regex::new(&value)
                        .map_err(|e| bad(&format!("not a regular expression: {e}")))?,
                ),
                "status" => {
                    if !STATUSES.contains(&value.as_str()) {
                        return Err(bad(&format!(
                            "the status is one of {}",
                            STATUSES.join(", ")
                        )));
                    }
                    filter.statuses.push(value);
                }
                "label" => filter.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value, None),
                }),
                "project" => filter.projects.push(value),
                "ancestor" => filter.ancestors.push(value),
                "network" => filter.networks.push(value),
                _ => return Err(bad(&format!("unknown filter key `{key}`"))),
            }
        }
        Ok(filter)
    }

    /// Whether a `status` filter was given: it looks at every container, as `-a` does.
    pub fn has_status(&self) -> bool {
        !self.statuses.is_empty()
    }

    /// Whether `record` (reconciled with the kernel) passes every filter.
    pub fn matches(&self, record: &Record, facts: &Facts<'_>) -> bool {
        let any = |values: &[String], test: &dyn Fn(&str) -> bool| {
            values.is_empty() || values.iter().any(|v| test(v))
        };
        any(&self.ids, &|v| record.id.as_str().contains(v))
            && (self.names.is_empty()
                || self
                    .names
                    .iter()
                    .any(|n| n.is_match(&record.name) || n.is_match(&record.reference())))
            && (self.statuses.is_empty() || {
                let status = facts.status(record);
                self.statuses.contains(&status)
            })
            && self.labels.iter().all(|(k, v)| match record.labels.get(k) {
                Some(actual) => v.as_ref().is_none_or(|v| v == actual),
                None => false,
            })
            && any(&self.projects, &|v| record.project() == Some(v))
            && any(&self.networks, &|v| {
                facts
                    .networks(record)
                    .iter()
                    .any(|n| n == v || crate::scope::qualify(record.project(), n) == v)
            })
            && any(&self.ancestors, &|v| facts.descends_from(record, v))
    }
}

/// What the filters read beyond a record: its networks and its image's layers.
pub struct Facts<'a> {
    records: &'a Records,
    store: Option<Store>,
    /// The layers (diff ids) of images already read, by name or digest.
    layers: std::cell::RefCell<BTreeMap<String, Option<Vec<String>>>>,
}

impl<'a> Facts<'a> {
    /// Its status as Docker names it: a paused container is `paused`, not `running`.
    fn status(&self, record: &Record) -> String {
        if record.state.status == crate::state::Status::Running
            && super::pause::is_paused(self.records.state_root(), record)
        {
            "paused".to_string()
        } else {
            record.state.status.to_string()
        }
    }

    pub fn new(records: &'a Records, state_root: &Path) -> Facts<'a> {
        let store_dir = state_root.join("store");
        let store = store_dir
            .join("index.json")
            .is_file()
            .then(|| Store::open(store_dir).ok())
            .flatten();
        Facts {
            records,
            store,
            layers: Default::default(),
        }
    }

    fn networks(&self, record: &Record) -> Vec<String> {
        Launch::load(&self.records.dir(&record.id))
            .map(|l| l.interfaces.into_iter().map(|i| i.network).collect())
            .unwrap_or_default()
    }

    fn image_layers(&self, image: &str) -> Option<Vec<String>> {
        let store = self.store.as_ref()?;
        self.layers
            .borrow_mut()
            .entry(image.to_string())
            .or_insert_with(|| {
                StoredImage::load(store, image)
                    .ok()
                    .map(|i| i.config.rootfs.diff_ids.clone())
            })
            .clone()
    }

    /// Docker's `ancestor`: the container's image is `image` (by name or digest) or is
    /// built on it (its layers start with all of `image`'s).
    fn descends_from(&self, record: &Record, image: &str) -> bool {
        if record.image == image || record.image_digest.starts_with(image) {
            return true;
        }
        match (
            self.image_layers(image),
            self.image_layers(&record.image_digest),
        ) {
            (Some(ancestor), Some(own)) => !ancestor.is_empty() && own.starts_with(&ancestor),
            _ => false,
        }
    }
}
