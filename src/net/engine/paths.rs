//! The engine's desired state: `$ROOT/net/linkd.json`, every path the daemon must carry —
//! its two ports (interfaces of the kiln host namespace) and the impairment applied to
//! each direction. kiln commands change it under a lock (`linkd.lock`) and bump its
//! generation; the daemon applies it and reports the generation it applied, so a command
//! knows when its change is in force.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::net::{NetError, Netem};

/// One path: frames go both ways between `ports[0]` and `ports[1]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathSpec {
    /// `link PROJECT A B` or `attach CONTAINER-ID INTERFACE`: who owns the path.
    pub id: String,
    pub ports: [String; 2],
    /// Applied to both directions.
    pub netem: Netem,
    /// False: the path carries nothing (a link set down).
    #[serde(default = "up")]
    pub up: bool,
}

fn up() -> bool {
    true
}

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Paths {
    pub generation: u64,
    pub paths: Vec<PathSpec>,
}

pub fn file(state_root: &Path) -> PathBuf {
    state_root.join("net").join("linkd.json")
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> NetError + '_ {
    move |cause| NetError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The paths recorded under the state root (none when the file is missing).
pub fn load(state_root: &Path) -> Result<Paths, NetError> {
    let path = file(state_root);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| io_error(&path)(std::io::Error::other(e)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Paths::default()),
        Err(cause) => Err(NetError::Io { path, cause }),
    }
}

/// Changes the paths under the lock; returns the new generation. The file stays when no
/// path is left (empty), so generations only grow.
pub fn update(state_root: &Path, change: impl FnOnce(&mut Vec<PathSpec>)) -> Result<u64, NetError> {
    let dir = state_root.join("net");
    std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
    let lock_path = dir.join("linkd.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(&lock_path))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| io_error(&lock_path)(errno.into()))?;
    let mut paths = load(state_root)?;
    let before = paths.paths.clone();
    change(&mut paths.paths);
    if paths.paths == before {
        return Ok(paths.generation);
    }
    paths.generation += 1;
    let path = file(state_root);
    let bytes = serde_json::to_vec_pretty(&paths).expect("paths serialize");
    crate::atomic_file::replace(&path, &bytes).map_err(io_error(&path))?;
    Ok(paths.generation)
}

/// Adds or replaces the path `spec.id`.
pub fn put(state_root: &Path, spec: PathSpec) -> Result<u64, NetError> {
    update(state_root, |paths| {
        match paths.iter_mut().find(|p| p.id == spec.id) {
            Some(existing) => *existing = spec,
            None => paths.push(spec),
        }
    })
}

/// Removes the paths whose id `gone` picks.
pub fn remove_where(state_root: &Path, gone: impl Fn(&str) -> bool) -> Result<u64, NetError> {
    update(state_root, |paths| paths.retain(|p| !gone(&p.id)))
}
