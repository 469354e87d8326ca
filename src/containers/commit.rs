//! `kiln commit`: a container's changes become a new image. Its overlayfs upper directory
//! (every file it wrote; each file it deleted as a whiteout, each directory it replaced
//! as opaque) is scanned and written as one more layer on top of its image's layers, by the
//! same path build steps take (`build::store_layer`: the reproducible writer, mtimes at
//! `SOURCE_DATE_EPOCH`); the image's config is kept, with `--change` instructions applied,
//! the new diff_id and a history entry appended; the manifest is written and tagged.
//!
//! A running container is frozen (cgroup freezer) from the scan until the layer is
//! written, so it cannot change files half-way; it is thawed afterwards, also on error.
//! Without a freezer it is committed as it runs, like `docker commit --pause=false`.
//!
//! It must not mount, start or stop containers.

use std::path::Path;

use super::{ContainerError, cgroup_name};
use crate::image::{History, ImageConfig, StoredImage, write_image};
use crate::layer::{Compression, Entries, ScanOptions};
use crate::runtime::cgroup::Hierarchy;
use crate::state::{Records, Status};
use crate::store::{CacheEntry, Descriptor, Store};
use crate::timestamp::rfc3339_utc;

/// What `kiln commit` was asked.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    /// The container, by name or (a prefix of its) id.
    pub container: String,
    /// The name to tag the new image with.
    pub image: String,
    /// Kept as the history entry's comment (and shown in its `created_by`).
    pub message: Option<String>,
    /// The image's author, in its config and history entry.
    pub author: Option<String>,
    /// Dockerfile-style instructions applied to the config: `CMD`, `ENTRYPOINT`, `ENV`,
    /// `EXPOSE`, `LABEL`, `USER`, `VOLUME`, `WORKDIR`, `STOPSIGNAL`.
    pub changes: Vec<String>,
    pub compression: Compression,
    /// Every mtime in the layer and the config's `created`, as in builds.
    pub source_date_epoch: u64,
}

/// The image `kiln commit` made.
#[derive(Debug, Clone)]
pub struct Committed {
    /// The new image's manifest.
    pub image: Descriptor,
    /// The layer made of the container's changes, with its diff_id.
    pub layer: CacheEntry,
    /// Whether the container was running and frozen while its changes were read.
    pub froze: bool,
}

/// One `--change` instruction, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Cmd(Vec<String>),
    Entrypoint(Vec<String>),
    Env(Vec<(String, String)>),
    Expose(Vec<String>),
    Label(Vec<(String, String)>),
    User(String),
    Volume(Vec<String>),
    Workdir(String),
    StopSignal(String),
}

/// Commits container `request.container` as image `request.image`.
pub fn commit(
    store: &Store,
    state_root: &Path,
    request: &CommitRequest,
) -> Result<Committed, ContainerError> {
    let changes = request
        .changes
        .iter()
        .map(|text| parse_change(text))
        .collect::<Result<Vec<_>, _>>()?;
    let records = Records::open(state_root)?;
    let record = records.find(&request.container)?.reconciled();
    let base = StoredImage::load(store, &record.image_digest)?;
    // The upper directory is the container's to change while it runs: opened beneath the
    // container's own directory with no symlink followed, and read only through
    // descriptors below it (see `layer::scan`).
    let container_dir = records.dir(&record.id);
    let upper = container_dir.join("upper");
    let upper_dir = crate::beneath::open_root(&container_dir)
        .and_then(|dir| crate::beneath::open(&dir, Path::new("upper"), crate::beneath::Kind::Dir))
        .map_err(|source| ContainerError::Io {
            path: upper.clone(),
            source,
        })?;
    // From the first blob until the tag is set, so gc cannot collect what is written.
    let _gc_guard = store.lock_shared()?;
    let running = matches!(record.state.status, Status::Running | Status::Restarting);
    let cgroup = match Hierarchy::detect() {
        Ok(hierarchy) if running => hierarchy.open(&cgroup_name(state_root, &record.id))?,
        _ => None,
    };
    let froze = match &cgroup {
        Some(cgroup) => cgroup.freeze()?,
        None => false,
    };
    let written = layer_of(store, upper_dir, &upper, &record.name, request);
    if froze && let Some(cgroup) = &cgroup {
        cgroup.thaw()?;
    }
    let layer = written?;

    let mut config = base.config.clone();
    apply_changes(&mut config, &changes);
    let created = rfc3339_utc(request.source_date_epoch);
    config.created = Some(created.clone());
    if request.author.is_some() {
        config.author.clone_from(&request.author);
    }
    config.rootfs.diff_ids.push(layer.diff_id.to_string());
    config.history.push(History {
        created: Some(created),
        created_by: Some(match &request.message {
            Some(message) => format!("kiln commit: {message}"),
            None => "kiln commit".to_string(),
        }),
        author: request.author.clone(),
        comment: request.message.clone(),
        empty_layer: false,
    });
    let mut layers = base.manifest.layers.clone();
    layers.push(layer.layer.clone());
    let (image, _) = write_image(store, &config, &layers)?;
    store.set_tag(&request.image, &image)?;
    Ok(Committed {
        image,
        layer,
        froze,
    })
}

/// The container's upper directory as a layer in the store.
fn layer_of(
    store: &Store,
    upper_dir: std::fs::File,
    upper: &Path,
    name: &str,
    request: &CommitRequest,
) -> Result<CacheEntry, ContainerError> {
    let layer_error = |source| ContainerError::Commit {
        name: name.to_string(),
        source,
    };
    let entries = Entries::scan_overlay_upper_at(upper_dir, upper, &ScanOptions::default())
        .map_err(layer_error)?;
    crate::build::store_layer(
        store,
        &entries,
        request.compression,
        request.source_date_epoch,
        layer_error,
    )
}

/// Applies `--change` instructions in order. As in a Dockerfile, an `ENTRYPOINT` clears
/// the inherited `CMD` unless a `CMD` is given too.
pub fn apply_changes(config: &mut ImageConfig, changes: &[Change]) {
    let sets_cmd = changes.iter().any(|c| matches!(c, Change::Cmd(_)));
    let runtime = &mut config.config;
    for change in changes {
        match change {
            Change::Cmd(args) => runtime.cmd = Some(args.clone()),
            Change::Entrypoint(args) => {
                runtime.entrypoint = Some(args.clone());
                if !sets_cmd {
                    runtime.cmd = None;
                }
            }
            Change::Env(pairs) => {
                for (key, value) in pairs {
                    let entry = format!("{key}={value}");
                    let prefix = format!("{key}=");
                    match runtime.env.iter_mut().find(|e| e.starts_with(&prefix)) {
                        Some(slot) => *slot = entry,
                        None => runtime.env.push(entry),
                    }
                }
            }
            Change::Expose(ports) => {
                for port in ports {
                    runtime
                        .exposed_ports
                        .insert(port.clone(), Default::default());
                }
            }
            Change::Label(pairs) => {
                for (key, value) in pairs {
                    runtime.labels.insert(key.clone(), value.clone());
                }
            }
            Change::User(user) => runtime.user = Some(user.clone()),
            Change::Volume(paths) => {
                for path in paths {
                    runtime.volumes.insert(path.clone(), Default::default());
                }
            }
            Change::Workdir(dir) => runtime.working_dir = Some(dir.clone()),
            Change::StopSignal(signal) => runtime.stop_signal = Some(signal.clone()),
        }
    }
}

/// Parses one `--change` instruction: `CMD ["a","b"]` or `CMD a b` (run by `/bin/sh -c`),
/// the same for `ENTRYPOINT`; `ENV K=V …` or `ENV K V`; `EXPOSE 80 53/udp`; `LABEL k=v …`;
/// `USER u[:g]`; `VOLUME /a /b` or `VOLUME ["/a"]`; `WORKDIR /dir`; `STOPSIGNAL SIG`.
pub fn parse_change(text: &str) -> Result<Change, ContainerError> {
    let bad = |reason: &str| ContainerError::BadChange {
        change: text.to_string(),
        reason: reason.to_string(),
    };
    let trimmed = text.trim();
    let (keyword, rest) = trimmed
        .split_once(char::is_whitespace)
        .map_or((trimmed, ""), |(k, r)| (k, r.trim()));
    if rest.is_empty() {
        return Err(bad("it has no arguments"));
    }
    let words = || -> Vec<String> { rest.split_whitespace().map(str::to_string).collect() };
    let command = || -> Result<Vec<String>, ContainerError> {
        if rest.starts_with('[') {
            serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))
        } else {
            Ok(vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
        }
    };
    Ok(match keyword.to_ascii_uppercase().as_str() {
        "CMD" => Change::Cmd(command()?),
        "ENTRYPOINT" => Change::Entrypoint(command()?),
        "ENV" => Change::Env(pairs(rest, true).ok_or_else(|| bad("use ENV K=V or ENV K V"))?),
        "LABEL" => Change::Label(pairs(rest, false).ok_or_else(|| bad("use LABEL k=v"))?),
        "EXPOSE" => {
            let mut ports = Vec::new();
            for word in words() {
                let (port, protocol) = word.split_once('/').unwrap_or((&word, "tcp"));
                if port.parse::<u16>().is_err() || !["tcp", "udp", "sctp"].contains(&protocol) {
                    return Err(bad(
                        "use a port number with an optional /tcp, /udp or /sctp",
                    ));
                }
                ports.push(format!("{port}/{protocol}"));
            }
            Change::Expose(ports)
        }
        "USER" => Change::User(rest.to_string()),
        "VOLUME" => Change::Volume(if rest.starts_with('[') {
            serde_json::from_str(rest).map_err(|_| bad("not a JSON array of strings"))?
        } else {
            words()
        }),
        "WORKDIR" => {
            if !rest.starts_with('/') {
                return Err(bad("the directory must be absolute"));
            }
            Change::Workdir(rest.to_string())
        }
        "STOPSIGNAL" => Change::StopSignal(rest.to_string()),
        _ => return Err(bad("unknown instruction")),
    })
}

/// `K=V K2="two words"` pairs; with `space_form`, also the single `K V…` form of `ENV`.
fn pairs(text: &str, space_form: bool) -> Option<Vec<(String, String)>> {
    let first = text.split_whitespace().next()?;
    if !first.contains('=') {
        if !space_form {
            return None;
        }
        let (key, value) = text.split_once(char::is_whitespace)?;
        return Some(vec![(key.to_string(), value.trim().to_string())]);
    }
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let key: String =
            std::iter::from_fn(|| chars.next_if(|&c| c != '=' && !c.is_whitespace())).collect();
        if key.is_empty() || chars.next() != Some('=') {
            return None;
        }
        let mut value = String::new();
        let mut quote = None;
        while let Some(&c) = chars.peek() {
            match (quote, c) {
                (None, '"' | '\'') => quote = Some(c),
                (Some(q), c) if c == q => quote = None,
                (None, c) if c.is_whitespace() => break,
                (_, '\\') => {
                    chars.next();
                    if let Some(escaped) = chars.peek() {
                        value.push(*escaped);
                    }
                }
                (_, c) => value.push(c),
            }
            chars.next();
        }
        if quote.is_some() {
            return None;
        }
        out.push((key, value));
    }
    Some(out)
}

#[cfg(test)]
mod tests;
