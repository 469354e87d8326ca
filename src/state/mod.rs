//! The state of containers: what kiln knows about each container, under
//! `$KILN_ROOT/containers/<id>/` — `state.json` (replaced by rename, not fsynced: the kernel is
//! the truth and `reconciled` asks it), `config.json` (the OCI
//! runtime spec it runs), `log.jsonl` (its output with timestamps) and a `lock` — plus the
//! name index `names/<key>` (created with O_EXCL, so two `kiln run --name web` at once cannot
//! both win). Names are per project ([`crate::scope`]): a container of project `shop` is
//! indexed as `names/shop+web`, one of no project as `names/web`, so two projects' `web`
//! never meet. A container can be renamed ([`Records::rename`]); the names `kiln up` keeps
//! previous versions under (`web-1~previous`, see [`hidden_name`]) are ones users cannot
//! give, so they never clash with a container of theirs.
//!
//! It owns ids, names, the state machine and reconciliation with the kernel (a record that
//! says "running" is checked against the process: pid alive *and* the same start time, so a
//! recycled pid is not mistaken for the container). It does not start processes, and it
//! knows neither images, networks nor the language.
//!
//! Why a module of its own, low in the graph: `containers` writes these records, but `net`
//! reads them too (the DNS daemon and `network rm` ask which containers still live), and `net`
//! sits below `containers`. Inside `runtime` they were misplaced — the runtime runs one
//! process tree and never reads a record — and they made `net` depend on `runtime`. Here
//! they depend only on [`crate::atomic_file`] and [`crate::process`], so `runtime`, `net`,
//! `containers`, `project` and `cli` can all read them without an upward edge. (Networks
//! keep their own records in `net::records`: only `net` and those above it read them.)
mod id;
mod record;
#[cfg(test)]
mod tests;
pub mod volumes;
mod watch;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub use id::{ContainerId, generate_name};
pub use record::{ContainerState, Membership, Record, Status, process_start_time};
pub use watch::RecordWatch;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RecordError {
    #[error("container state I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the name `{name}` is already in use by container {id}")]
    #[diagnostic(help("remove it with `kiln rm -f {name}`, or choose another --name"))]
    NameInUse { name: String, id: String },
    #[error("no container named or with id `{query}`")]
    #[diagnostic(help("`kiln ps -a` lists every container"))]
    NotFound { query: String },
    #[error("`{query}` matches several containers: {ids}")]
    #[diagnostic(help("give more of the id, or the name"))]
    Ambiguous { query: String, ids: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    AmbiguousName(#[from] crate::scope::Ambiguous),
    #[error("{} is not a valid container record", path.display())]
    Malformed {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot rename container {from} to {to}: it is running")]
    #[diagnostic(help("stop it first (`kiln stop {from}`)"))]
    RenameRunning { from: String, to: String },
    #[error("invalid container name `{name}`")]
    #[diagnostic(help("use letters, digits, `_`, `.` and `-`, starting with a letter or digit"))]
    InvalidName { name: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> RecordError + '_ {
    move |source| RecordError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The records of one state root.
#[derive(Debug, Clone)]
pub struct Records {
    root: PathBuf,
}

impl Records {
    /// `state_root/containers` and `state_root/names`, created if missing.
    pub fn open(state_root: &Path) -> Result<Records, RecordError> {
        let records = Records {
            root: state_root.to_path_buf(),
        };
        for dir in [records.containers_dir(), records.names_dir()] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        // Once per state root: the index of an older kiln moves to per-project names.
        let marker = records.root.join(SCOPED_MARKER);
        if !marker.exists() {
            records.upgrade_index()?;
            let _ = File::create(&marker);
        }
        Ok(records)
    }

    /// The state root these records live in.
    pub fn state_root(&self) -> &Path {
        &self.root
    }

    fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    fn names_dir(&self) -> PathBuf {
        self.root.join("names")
    }

    /// The directory of a container's files.
    pub fn dir(&self, id: &ContainerId) -> PathBuf {
        self.containers_dir().join(id.as_str())
    }

    /// A watch that wakes on every change of container `id`'s record or files (see
    /// [`RecordWatch`]). Made before the record is read, it misses nothing.
    pub fn watch(&self, id: &ContainerId) -> Result<RecordWatch, RecordError> {
        let dir = self.dir(id);
        RecordWatch::new(&dir).map_err(io_err(&dir))
    }

    /// The index file of the container `name` of `project` (none: of no project).
    fn name_path(&self, project: Option<&str>, name: &str) -> PathBuf {
        self.names_dir()
            .join(crate::scope::file_key(&crate::scope::qualify(
                project, name,
            )))
    }

    /// Reserves the record's name (in its project) for a new container and writes its first
    /// record. The name is taken first (O_EXCL), so a clash leaves nothing behind.
    pub fn create(&self, record: &Record) -> Result<(), RecordError> {
        validate_name(&record.name)?;
        let name_path = self.name_path(record.project(), &record.name);
        take_name(&name_path, &record.id, &record.reference())?;
        let dir = self.dir(&record.id);
        if let Err(err) = fs::create_dir_all(&dir) {
            let _ = fs::remove_file(&name_path);
            return Err(io_err(&dir)(err));
        }
        self.save(record)
    }

    /// Replaces a container's state record atomically.
    pub fn save(&self, record: &Record) -> Result<(), RecordError> {
        let path = self.dir(&record.id).join("state.json");
        let bytes = serde_json::to_vec_pretty(record).expect("a record serializes");
        crate::atomic_file::replace(&path, &bytes).map_err(io_err(&path))
    }

    pub fn load(&self, id: &ContainerId) -> Result<Record, RecordError> {
        let path = self.dir(id).join("state.json");
        let bytes = fs::read(&path).map_err(io_err(&path))?;
        serde_json::from_slice(&bytes).map_err(|source| RecordError::Malformed { path, source })
    }

    /// Every container, oldest first. Unreadable records (a crash between mkdir and the
    /// first write) are skipped.
    pub fn list(&self) -> Result<Vec<Record>, RecordError> {
        let dir = self.containers_dir();
        let mut records: Vec<Record> = fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(ContainerId::parse))
            .filter_map(|id| self.load(&id).ok())
            .collect();
        records.sort_by(|a, b| (&a.created, a.id.as_str()).cmp(&(&b.created, b.id.as_str())));
        Ok(records)
    }

    /// A container by name, full id or unique id prefix (as Docker resolves them), with no
    /// current project: see [`Records::resolve`].
    pub fn find(&self, query: &str) -> Result<Record, RecordError> {
        self.resolve(query, None)
    }

    /// A container by reference (`shop/web`, or a bare `web` resolved as
    /// [`crate::scope::resolve`] says, `context` being the current project), else by full id
    /// or unique id prefix. A bare name several projects have is an error listing them.
    pub fn resolve(&self, query: &str, context: Option<&str>) -> Result<Record, RecordError> {
        let (project, name) = crate::scope::split(query);
        if validate_stored_name(name).is_ok() && project.is_none_or(|p| validate_name(p).is_ok()) {
            let candidates = self.named(name)?;
            if let Some(path) =
                crate::scope::resolve(crate::scope::Kind::Container, query, context, candidates)?
                && let Ok(id) = fs::read_to_string(&path)
                && let Some(id) = ContainerId::parse(id.trim())
                && let Ok(record) = self.load(&id)
            {
                return Ok(record);
            }
        }
        let matches: Vec<Record> = self
            .list()?
            .into_iter()
            .filter(|r| !query.is_empty() && r.id.as_str().starts_with(query))
            .collect();
        match matches.len() {
            0 => Err(RecordError::NotFound {
                query: query.to_string(),
            }),
            1 => Ok(matches.into_iter().next().expect("one match")),
            _ => Err(RecordError::Ambiguous {
                query: query.to_string(),
                ids: matches
                    .iter()
                    .map(|r| r.id.short().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The index entries of every container called `name`, in any project.
    fn named(&self, name: &str) -> Result<Vec<crate::scope::Candidate<PathBuf>>, RecordError> {
        let dir = self.names_dir();
        Ok(fs::read_dir(&dir)
            .map_err(io_err(&dir))?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let key = entry.file_name().into_string().ok()?;
                let candidate =
                    crate::scope::Candidate::from_reference(&crate::scope::from_file_key(&key), ());
                (candidate.name == name).then(|| crate::scope::Candidate {
                    project: candidate.project,
                    name: candidate.name,
                    item: entry.path(),
                })
            })
            .collect())
    }

    /// The container named exactly `name` in `project` (none: of no project) — never an id
    /// prefix: a project's container `db` must not find some container whose id starts
    /// with `db`.
    pub fn find_member(
        &self,
        project: Option<&str>,
        name: &str,
    ) -> Result<Option<Record>, RecordError> {
        // Hidden names (`web-1~previous`) are names too; paths are not.
        if validate_stored_name(name).is_err() || project.is_some_and(|p| validate_name(p).is_err())
        {
            return Ok(None);
        }
        let name_path = self.name_path(project, name);
        let id = match fs::read_to_string(&name_path) {
            Ok(id) => id,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(io_err(&name_path)(err)),
        };
        match ContainerId::parse(id.trim()) {
            // A name whose record is gone (removed half-way) names nothing.
            Some(id) if self.dir(&id).join("state.json").exists() => self.load(&id).map(Some),
            _ => Ok(None),
        }
    }

    /// The container named exactly `name` of no project.
    pub fn find_named(&self, name: &str) -> Result<Option<Record>, RecordError> {
        self.find_member(None, name)
    }

    /// Gives a stopped container another name (a valid one, or a [`hidden_name`]); returns
    /// its record as saved. The new name is taken first (O_EXCL, so a clash changes
    /// nothing), then the record says it, then the old name is let go: a crash in between
    /// leaves both names pointing at the container, never none. A running container is
    /// refused — its supervisor keeps a copy of the record it writes back.
    pub fn rename(&self, record: &Record, to: &str) -> Result<Record, RecordError> {
        validate_stored_name(to)?;
        let _lock = self.lock(&record.id)?;
        let mut current = self.load(&record.id)?;
        let from = current.name.clone();
        if from == to {
            return Ok(current);
        }
        let reconciled = current.reconciled();
        if matches!(
            reconciled.state.status,
            Status::Running | Status::Restarting
        ) || reconciled.state.supervisor_alive()
        {
            return Err(RecordError::RenameRunning {
                from,
                to: to.to_string(),
            });
        }
        let to_path = self.name_path(current.project(), to);
        take_name(
            &to_path,
            &current.id,
            &crate::scope::qualify(current.project(), to),
        )?;
        current.name = to.to_string();
        if let Err(err) = self.save(&current) {
            let _ = fs::remove_file(&to_path);
            return Err(err);
        }
        let from_path = self.name_path(current.project(), &from);
        if fs::read_to_string(&from_path).is_ok_and(|id| id.trim() == current.id.as_str()) {
            fs::remove_file(&from_path).map_err(io_err(&from_path))?;
        }
        Ok(current)
    }

    /// Removes a container's files and its name.
    pub fn remove(&self, record: &Record) -> Result<(), RecordError> {
        let name_path = self.name_path(record.project(), &record.name);
        if fs::read_to_string(&name_path).is_ok_and(|id| id.trim() == record.id.as_str()) {
            fs::remove_file(&name_path).map_err(io_err(&name_path))?;
        }
        let dir = self.dir(&record.id);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(io_err(&dir)(err)),
        }
    }

    /// Moves the index entries of project containers made before names were per project
    /// (`names/web` for project `shop`'s `web`) to their place (`names/shop+web`); returns
    /// how many moved. Idempotent, and safe while another kiln does the same.
    pub fn upgrade_index(&self) -> Result<usize, RecordError> {
        let dir = self.names_dir();
        let mut moved = 0;
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
            let Ok(key) = entry.file_name().into_string() else {
                continue;
            };
            let Some(record) = fs::read_to_string(entry.path())
                .ok()
                .and_then(|id| ContainerId::parse(id.trim()))
                .and_then(|id| self.load(&id).ok())
            else {
                continue;
            };
            let Some(project) = record.project().filter(|_| record.name == key) else {
                continue;
            };
            match take_name(
                &self.name_path(Some(project), &record.name),
                &record.id,
                &record.reference(),
            ) {
                Ok(()) => {}
                // Moved by another kiln, or the project has a newer container of the name:
                // either way the old entry stays as it is.
                Err(RecordError::NameInUse { .. }) => continue,
                Err(err) => return Err(err),
            }
            let path = entry.path();
            if fs::read_to_string(&path).is_ok_and(|id| id.trim() == record.id.as_str()) {
                fs::remove_file(&path).map_err(io_err(&path))?;
            }
            moved += 1;
        }
        Ok(moved)
    }

    /// Holds the container's lock (flock on `lock`) while it is changed.
    pub fn lock(&self, id: &ContainerId) -> Result<nix::fcntl::Flock<File>, RecordError> {
        let path = self.dir(id).join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, errno)| {
            RecordError::Io {
                path,
                source: errno.into(),
            }
        })
    }
}

/// Creates the index file `path` holding `id` (O_EXCL): the name is taken, or it is
/// already someone's and nothing changed.
fn take_name(path: &Path, id: &ContainerId, reference: &str) -> Result<(), RecordError> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(mut file) => file.write_all(id.as_str().as_bytes()).map_err(io_err(path)),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
            let id = fs::read_to_string(path).unwrap_or_default();
            Err(RecordError::NameInUse {
                name: reference.to_string(),
                id: id.chars().take(12).collect(),
            })
        }
        Err(err) => Err(io_err(path)(err)),
    }
}

/// In the state root: the index in `names/` is per project (see [`Records::upgrade_index`]).
const SCOPED_MARKER: &str = ".names-per-project";

/// What separates a container's name from the tag of a hidden name: a character
/// [`validate_name`] refuses, so no user-given name has it.
const HIDDEN_MARK: char = '~';

/// The name a container of `kiln up` is kept under while it is not in service:
/// `web-1~previous`.
pub fn hidden_name(name: &str, tag: &str) -> String {
    format!("{name}{HIDDEN_MARK}{tag}")
}

/// `Some((name, tag))` for a [`hidden_name`].
pub fn split_hidden(name: &str) -> Option<(&str, &str)> {
    name.split_once(HIDDEN_MARK)
}

/// A name a record may have: a valid one, or a valid one made hidden with a plain tag.
fn validate_stored_name(name: &str) -> Result<(), RecordError> {
    match split_hidden(name) {
        Some((base, tag)) if !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric()) => {
            validate_name(base)
        }
        Some(_) => Err(RecordError::InvalidName {
            name: name.to_string(),
        }),
        None => validate_name(name),
    }
}

/// Docker's rule for container names.
pub fn validate_name(name: &str) -> Result<(), RecordError> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && name.len() <= 128;
    if ok {
        Ok(())
    } else {
        Err(RecordError::InvalidName {
            name: name.to_string(),
        })
    }
}
