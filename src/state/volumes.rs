//! Named volumes: directories under `$KILN_ROOT/volumes/` that outlive containers, for
//! `kiln run -v NAME:/path`, `--mount type=volume`, a project's `volume "NAME" "/path"` and
//! `kiln volume create|ls|inspect|rm|prune`. One store for all of them, scoped like
//! everything else a project owns ([`crate::scope`]): project `shop`'s volume `data` is
//! `shop/data` and lives in `volumes/shop/data/`; a volume of no project lives in
//! `volumes/_/NAME/` (`_` is no project's name: those start with a letter or digit). Beside
//! each volume, `.NAME.json` keeps when it was made, its labels and whether it is anonymous
//! (a dot never starts a volume name, so the two never meet). A directory without that
//! file (made by an older kiln) is a volume all the same.
//!
//! It owns the layout, names, creation (idempotent, so two containers starting at once may
//! both "create" one), listing, which containers use a volume (their records' `volumes`),
//! removal (never of a volume in use) and pruning. It does not fill a volume from an image
//! (`containers` copies an image's content up on first use) and mounts nothing.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Record;
use crate::scope::{self, Candidate, Kind};

/// The directory of the volumes of no project.
const UNSCOPED: &str = "_";

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum VolumeError {
    #[error("volume I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid volume name `{name}`")]
    #[diagnostic(help(
        "use letters, digits, `_`, `.` and `-`, starting with a letter or digit (a project's volume: PROJECT/NAME)"
    ))]
    InvalidName { name: String },
    #[error("no such volume: {name}")]
    #[diagnostic(help("`kiln volume ls` lists the volumes"))]
    NotFound { name: String },
    #[error("volume {name} is in use by {}", containers.join(", "))]
    #[diagnostic(help(
        "remove the container(s) first (`kiln rm {}`); a stopped container still holds its volumes",
        containers.join(" ")
    ))]
    InUse {
        name: String,
        containers: Vec<String>,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Ambiguous(#[from] scope::Ambiguous),
    #[error("{what} is not supported")]
    Unsupported {
        what: String,
        #[help]
        help: String,
    },
    #[error("invalid filter `{filter}`")]
    #[diagnostic(help("{help}"))]
    BadFilter { filter: String, help: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> VolumeError + '_ {
    move |source| VolumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What `.NAME.json` keeps.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Meta {
    created: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    anonymous: bool,
}

/// One volume, as `kiln volume inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeInfo {
    /// `shop/data`, or `data` outside a project.
    #[serde(rename = "name")]
    pub reference: String,
    pub project: Option<String>,
    /// The name inside its project.
    #[serde(skip)]
    pub name: String,
    /// Where its files are (Docker's `Mountpoint`).
    pub mountpoint: PathBuf,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    /// Made for one container's `-v /path` (no name given): `volume prune` takes these
    /// without `--all`.
    pub anonymous: bool,
}

/// The volumes of one state root.
#[derive(Debug, Clone)]
pub struct VolumeStore {
    dir: PathBuf,
}

/// What `kiln volume create` and a first use ask for.
#[derive(Debug, Clone, Default)]
pub struct NewVolume {
    pub labels: BTreeMap<String, String>,
    pub anonymous: bool,
}

impl VolumeStore {
    /// The store of `state_root` (`state_root/volumes`; made when a volume is).
    pub fn open(state_root: &Path) -> VolumeStore {
        VolumeStore {
            dir: state_root.join("volumes"),
        }
    }

    fn scope_dir(&self, project: Option<&str>) -> PathBuf {
        self.dir.join(project.unwrap_or(UNSCOPED))
    }

    fn meta_path(&self, project: Option<&str>, name: &str) -> PathBuf {
        self.scope_dir(project).join(format!(".{name}.json"))
    }

    /// The directory of volume `name` of `project` (none: of no project).
    pub fn path(&self, project: Option<&str>, name: &str) -> PathBuf {
        self.scope_dir(project).join(name)
    }

    /// Makes the volume unless it exists; either way returns it, and whether it is new.
    pub fn create(
        &self,
        project: Option<&str>,
        name: &str,
        new: &NewVolume,
    ) -> Result<(VolumeInfo, bool), VolumeError> {
        check_name(project, name)?;
        let scope_dir = self.scope_dir(project);
        // `volumes/` itself is private (0700), made so with the state root.
        fs::create_dir_all(&scope_dir).map_err(io_err(&scope_dir))?;
        let path = self.path(project, name);
        let made = match fs::create_dir(&path) {
            Ok(()) => true,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => false,
            Err(err) => return Err(io_err(&path)(err)),
        };
        if made {
            let meta = Meta {
                created: crate::timestamp::now(),
                labels: new.labels.clone(),
                anonymous: new.anonymous,
            };
            let meta_path = self.meta_path(project, name);
            let bytes = serde_json::to_vec_pretty(&meta).expect("volume metadata serializes");
            crate::atomic_file::replace(&meta_path, &bytes).map_err(io_err(&meta_path))?;
        }
        let info = self
            .get(project, name)?
            .ok_or_else(|| VolumeError::NotFound {
                name: scope::qualify(project, name),
            })?;
        Ok((info, made))
    }

    /// The volume, if it exists.
    pub fn get(
        &self,
        project: Option<&str>,
        name: &str,
    ) -> Result<Option<VolumeInfo>, VolumeError> {
        check_name(project, name)?;
        let path = self.path(project, name);
        let stat = match fs::symlink_metadata(&path) {
            Ok(stat) if stat.is_dir() => stat,
            Ok(_) => return Ok(None),
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_err(&path)(err)),
        };
        let meta = fs::read(self.meta_path(project, name))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Meta>(&bytes).ok())
            .unwrap_or_else(|| Meta {
                // An older kiln's volume: its directory's time stands in.
                created: crate::timestamp::rfc3339_utc(stat.mtime().max(0) as u64),
                ..Meta::default()
            });
        Ok(Some(VolumeInfo {
            reference: scope::qualify(project, name),
            project: project.map(str::to_string),
            name: name.to_string(),
            mountpoint: path,
            created: meta.created,
            labels: meta.labels,
            anonymous: meta.anonymous,
        }))
    }

    /// Every volume, by reference.
    pub fn list(&self) -> Result<Vec<VolumeInfo>, VolumeError> {
        let scopes = match fs::read_dir(&self.dir) {
            Ok(scopes) => scopes,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(io_err(&self.dir)(err)),
        };
        let mut volumes = Vec::new();
        for scope_entry in scopes.filter_map(Result::ok) {
            let Some(scope_name) = scope_entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let project = (scope_name != UNSCOPED).then_some(scope_name.as_str());
            if project.is_some_and(|p| super::validate_name(p).is_err()) {
                continue;
            }
            let Ok(entries) = fs::read_dir(scope_entry.path()) else {
                continue;
            };
            for entry in entries.filter_map(Result::ok) {
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if super::validate_name(&name).is_err() {
                    continue; // `.NAME.json`, or nothing of kiln's
                }
                if let Some(info) = self.get(project, &name)? {
                    volumes.push(info);
                }
            }
        }
        volumes.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(volumes)
    }

    /// The volume a command line names: `shop/data`, or a bare name resolved as
    /// [`crate::scope::resolve`] says (`context`: the current project).
    pub fn resolve(&self, query: &str, context: Option<&str>) -> Result<VolumeInfo, VolumeError> {
        let all = self.list()?;
        let candidates = all
            .into_iter()
            .map(|v| Candidate::from_reference(&v.reference.clone(), v));
        scope::resolve(Kind::Volume, query, context, candidates)?.ok_or_else(|| {
            VolumeError::NotFound {
                name: query.to_string(),
            }
        })
    }

    /// Removes a volume and everything in it, unless a container uses it (running or not,
    /// as Docker). Returns the bytes it held.
    pub fn remove(&self, volume: &VolumeInfo, records: &[Record]) -> Result<u64, VolumeError> {
        let containers = users(records, &volume.reference);
        if !containers.is_empty() {
            return Err(VolumeError::InUse {
                name: volume.reference.clone(),
                containers,
            });
        }
        let size = disk_usage(&volume.mountpoint);
        remove_tree(&volume.mountpoint)?;
        let meta = self.meta_path(volume.project.as_deref(), &volume.name);
        match fs::remove_file(&meta) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(io_err(&meta)(err)),
            _ => {}
        }
        Ok(size)
    }

    /// Removes every volume of `project` (`kiln down -v`: its containers are gone).
    pub fn remove_project(&self, project: &str) -> Result<(), VolumeError> {
        remove_tree(&self.scope_dir(Some(project)))
    }

    /// `kiln volume prune`: removes the unused volumes that `filter` takes (without
    /// `all`, only anonymous ones, as Docker 23 and later). Returns what it removed and the
    /// bytes reclaimed.
    pub fn prune(
        &self,
        records: &[Record],
        filter: &PruneFilter,
    ) -> Result<(Vec<String>, u64), VolumeError> {
        let mut removed = Vec::new();
        let mut reclaimed = 0;
        for volume in self.list()? {
            if (!filter.all && !volume.anonymous)
                || !filter.labels.iter().all(|l| l.matches(&volume.labels))
                || !users(records, &volume.reference).is_empty()
            {
                continue;
            }
            reclaimed += self.remove(&volume, records)?;
            removed.push(volume.reference);
        }
        Ok((removed, reclaimed))
    }
}

/// The containers (their references) whose records say they use volume `reference`.
pub fn users(records: &[Record], reference: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.volumes.iter().any(|v| v == reference))
        .map(Record::reference)
        .collect()
}

fn check_name(project: Option<&str>, name: &str) -> Result<(), VolumeError> {
    let bad = || VolumeError::InvalidName {
        name: scope::qualify(project, name),
    };
    super::validate_name(name).map_err(|_| bad())?;
    if let Some(project) = project {
        super::validate_name(project).map_err(|_| bad())?;
    }
    Ok(())
}

fn remove_tree(path: &Path) -> Result<(), VolumeError> {
    match fs::remove_dir_all(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(io_err(path)(err)),
        _ => Ok(()),
    }
}

/// The bytes the files under `path` take (as `du` counts them, each inode once), never
/// following a symbolic link.
pub fn disk_usage(path: &Path) -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut total = 0;
    let mut todo = vec![path.to_path_buf()];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(stat) = entry.metadata() else { continue };
            if stat.is_dir() {
                todo.push(entry.path());
            }
            if seen.insert((stat.dev(), stat.ino())) {
                total += stat.blocks() * 512;
            }
        }
    }
    total
}

/// `label=KEY`, `label=KEY=VALUE`, `label!=KEY`, `label!=KEY=VALUE` (Docker's filters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelFilter {
    pub key: String,
    pub value: Option<String>,
    /// `label!=`: the volume must not have it.
    pub negated: bool,
}

impl LabelFilter {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = match (&self.value, labels.get(&self.key)) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(want), Some(have)) => want == have,
        };
        has != self.negated
    }
}

/// What `kiln volume prune` removes besides "unused".
#[derive(Debug, Clone, Default)]
pub struct PruneFilter {
    /// `--all` (or `--filter all=true`): named volumes too, not only anonymous ones.
    pub all: bool,
    pub labels: Vec<LabelFilter>,
}

/// `kiln volume ls --filter`.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// `dangling=true`: only unused ones; `false`: only used ones.
    pub dangling: Option<bool>,
    /// `name=TEXT`: the reference contains TEXT.
    pub names: Vec<String>,
    pub labels: Vec<LabelFilter>,
}

impl ListFilter {
    pub fn matches(&self, volume: &VolumeInfo, records: &[Record]) -> bool {
        self.dangling
            .is_none_or(|d| d == users(records, &volume.reference).is_empty())
            && (self.names.is_empty() || self.names.iter().any(|n| volume.reference.contains(n)))
            && self.labels.iter().all(|l| l.matches(&volume.labels))
    }
}

/// One `--filter KEY=VALUE` of `kiln volume ls` (`prune`: `ls` false) into `list`/`prune`.
pub fn parse_filter(
    text: &str,
    list: &mut ListFilter,
    prune: &mut PruneFilter,
    ls: bool,
) -> Result<(), VolumeError> {
    let keys = if ls {
        "dangling, label, label!= and name"
    } else {
        "all, label and label!="
    };
    let bad = |help: String| VolumeError::BadFilter {
        filter: text.to_string(),
        help,
    };
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| bad(format!("write KEY=VALUE; the keys are {keys}")))?;
    let boolean = |value: &str| match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(bad(format!("`{key}` is true or false"))),
    };
    match (key, ls) {
        ("label" | "label!", _) => {
            let (label, want) = match value.split_once('=') {
                Some((k, v)) => (k, Some(v.to_string())),
                None => (value, None),
            };
            if label.is_empty() {
                return Err(bad("give a label: label=KEY or label=KEY=VALUE".into()));
            }
            let filter = LabelFilter {
                key: label.to_string(),
                value: want,
                negated: key == "label!",
            };
            if ls {
                list.labels.push(filter);
            } else {
                prune.labels.push(filter);
            }
        }
        ("dangling", true) => list.dangling = Some(boolean(value)?),
        ("name", true) => list.names.push(value.to_string()),
        ("all", false) => prune.all = boolean(value)?,
        _ => return Err(bad(format!("kiln takes the filters {keys}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn volumes_are_scoped_by_project_and_made_once() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path());
        let new = NewVolume {
            labels: labels(&[("tier", "db")]),
            anonymous: false,
        };
        let (plain, made) = store.create(None, "data", &new).unwrap();
        assert!(made);
        assert_eq!(plain.reference, "data");
        assert_eq!(plain.mountpoint, root.path().join("volumes/_/data"));
        let (again, made) = store.create(None, "data", &NewVolume::default()).unwrap();
        assert!(!made, "a second create finds the first");
        assert_eq!(again.labels, labels(&[("tier", "db")]));
        let (shop, _) = store.create(Some("shop"), "data", &new).unwrap();
        assert_eq!(shop.reference, "shop/data");
        assert_eq!(shop.mountpoint, root.path().join("volumes/shop/data"));
        // An older kiln's project volume has no metadata: still a volume.
        fs::create_dir_all(root.path().join("volumes/blog/data")).unwrap();
        let all: Vec<String> = store
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.reference)
            .collect();
        assert_eq!(all, ["blog/data", "data", "shop/data"]);
        assert_eq!(
            store.resolve("data", Some("shop")).unwrap().reference,
            "shop/data"
        );
        assert_eq!(store.resolve("data", None).unwrap().reference, "data");
        assert!(matches!(
            store.resolve("nope", None),
            Err(VolumeError::NotFound { .. })
        ));
        assert!(matches!(
            store.create(None, "../x", &new),
            Err(VolumeError::InvalidName { .. })
        ));
    }

    #[test]
    fn prune_takes_unused_anonymous_ones_unless_all_and_honours_labels() {
        let root = tempfile::tempdir().unwrap();
        let store = VolumeStore::open(root.path());
        let anonymous = NewVolume {
            anonymous: true,
            ..NewVolume::default()
        };
        store.create(None, "a1", &anonymous).unwrap();
        let (keep, _) = store
            .create(
                None,
                "keep",
                &NewVolume {
                    labels: labels(&[("keep", "yes")]),
                    anonymous: false,
                },
            )
            .unwrap();
        fs::write(keep.mountpoint.join("f"), vec![1u8; 8192]).unwrap();
        store.create(None, "named", &NewVolume::default()).unwrap();
        let (removed, _) = store.prune(&[], &PruneFilter::default()).unwrap();
        assert_eq!(removed, ["a1"]);
        let mut list = ListFilter::default();
        let mut prune = PruneFilter::default();
        parse_filter("label!=keep", &mut list, &mut prune, false).unwrap();
        parse_filter("all=true", &mut list, &mut prune, false).unwrap();
        assert!(parse_filter("dangling=true", &mut list, &mut prune, false).is_err());
        let (removed, _) = store.prune(&[], &prune).unwrap();
        assert_eq!(removed, ["named"]);
        let (removed, reclaimed) = store
            .prune(
                &[],
                &PruneFilter {
                    all: true,
                    labels: Vec::new(),
                },
            )
            .unwrap();
        assert_eq!(removed, ["keep"]);
        assert!(reclaimed >= 8192, "{reclaimed}");
        assert!(store.list().unwrap().is_empty());
    }

    #[test]
    fn label_filters_have_dockers_meaning() {
        let have = labels(&[("a", "1")]);
        let filter = |key: &str, value: Option<&str>, negated| LabelFilter {
            key: key.into(),
            value: value.map(str::to_string),
            negated,
        };
        assert!(filter("a", None, false).matches(&have));
        assert!(filter("a", Some("1"), false).matches(&have));
        assert!(!filter("a", Some("2"), false).matches(&have));
        assert!(filter("a", Some("2"), true).matches(&have));
        assert!(!filter("a", None, true).matches(&have));
        assert!(filter("b", None, true).matches(&have));
    }
}
