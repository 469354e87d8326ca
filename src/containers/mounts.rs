//! What a container mounts, with Docker's meaning: `-v` (`SRC:DST[:OPTS]`, `/DST` for an
//! anonymous volume) and `--mount type=bind|volume|tmpfs,…` parsed into binds, named
//! volumes and tmpfs mounts; then, when the container is prepared, each named volume made
//! on first use and filled from the image ("copy-up": when the volume is empty and the
//! image has a directory there, its content moves in, owner and mode included, as Docker
//! does unless `nocopy`).
//!
//! The volumes themselves are `state::volumes`'. Parsing does no I/O except resolving (and,
//! for `-v`, creating) a bind's host source. Copy-up reads the image as data: its layers are
//! flattened into the state root's scratch space and the path is resolved inside that
//! root (`inroot`), never on the host.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::libc;

use super::{ContainerError, io_err};
use crate::runtime::spec::{Tmpfs, Volume};
use crate::state::volumes::{NewVolume, VolumeStore};

/// A named volume a container mounts, before it is made.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NamedVolume {
    /// Its project (none: a volume of no project).
    pub project: Option<String>,
    /// None: an anonymous volume, named by a fresh id when it is made.
    pub name: Option<String>,
    pub destination: String,
    pub read_only: bool,
    /// `nocopy`: leave a new volume empty instead of filling it from the image.
    pub no_copy: bool,
    /// `volume-label=K=V`: the labels of a volume this mount creates.
    pub labels: BTreeMap<String, String>,
}

/// One `-v` or `--mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    Bind(Volume),
    Volume(NamedVolume),
    Tmpfs(Tmpfs),
}

fn bad(spec: &str, reason: impl Into<String>, help: impl Into<String>) -> ContainerError {
    ContainerError::BadVolume {
        spec: spec.to_string(),
        reason: reason.into(),
        help: help.into(),
    }
}

/// The propagation modes of `bind-propagation=` and `-v …:rslave`.
const PROPAGATIONS: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

/// `-v SRC:DST[:OPTS]` or `-v /DST` (Docker's `--volume`): SRC is a host path when it
/// starts with `/` or `.` (a missing one is created, as Docker does), else a volume name
/// (`data`, or a project's `shop/data`). OPTS: `ro`, `rw`, `nocopy` (volumes), a
/// propagation mode (binds).
pub fn parse_volume(spec: &str) -> Result<Mount, ContainerError> {
    const FORM: &str =
        "use SRC:DST[:ro], e.g. -v ./data:/data:ro (a host path) or -v data:/data (a volume)";
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, destination, options) = match parts.as_slice() {
        [d] if d.starts_with('/') => ("", *d, ""),
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(bad(spec, "expected SRC:DST[:OPTIONS] or /DST", FORM)),
    };
    if destination.is_empty() || (parts.len() > 1 && source.is_empty()) {
        return Err(bad(spec, "empty source or destination", FORM));
    }
    if !destination.starts_with('/') {
        return Err(bad(
            spec,
            "the destination must be an absolute path in the container",
            format!("write it from the container's root, e.g. {source}:/{destination}"),
        ));
    }
    let bind = source.starts_with('/') || source.starts_with('.');
    let mut read_only = false;
    let mut no_copy = false;
    let mut propagation = None;
    for option in options.split(',').filter(|o| !o.is_empty()) {
        match option {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" if !bind => no_copy = true,
            p if bind && PROPAGATIONS.contains(&p) => propagation = Some(p.to_string()),
            "z" | "Z" => {
                return Err(bad(
                    spec,
                    format!("`{option}` (SELinux relabelling) is not something kiln does"),
                    "leave it out: kiln runs no SELinux policy",
                ));
            }
            _ => {
                return Err(bad(
                    spec,
                    format!("unknown option `{option}`"),
                    if bind {
                        "a bind takes ro, rw and a propagation (rprivate, private, rshared, shared, rslave, slave)"
                    } else {
                        "a volume takes ro, rw and nocopy"
                    },
                ));
            }
        }
    }
    if !bind {
        return Ok(Mount::Volume(named(
            spec,
            source,
            destination,
            read_only,
            no_copy,
        )?));
    }
    // Docker's `-v` makes a missing host directory; `--mount` refuses it.
    let path = PathBuf::from(source);
    if !path.exists() {
        std::fs::create_dir_all(&path).map_err(|source| ContainerError::VolumeSource {
            spec: spec.to_string(),
            path: path.clone(),
            source,
        })?;
    }
    Ok(Mount::Bind(Volume {
        source: canonical(spec, source)?,
        destination: destination.to_string(),
        read_only,
        propagation,
    }))
}

/// A volume mount of `source` (`""`: anonymous), `PROJECT/NAME` or `NAME`.
fn named(
    spec: &str,
    source: &str,
    destination: &str,
    read_only: bool,
    no_copy: bool,
) -> Result<NamedVolume, ContainerError> {
    let (project, name) = crate::scope::split(source);
    let valid = |n: &str| crate::state::validate_name(n).is_ok();
    if !source.is_empty() && (!valid(name) || !project.is_none_or(valid)) {
        return Err(bad(
            spec,
            format!("`{source}` is neither a host path nor a volume name"),
            "a host path starts with / or . (./data); a volume name is letters, digits, _ . - (data, or a project's shop/data)",
        ));
    }
    Ok(NamedVolume {
        project: project.map(str::to_string),
        name: (!source.is_empty()).then(|| name.to_string()),
        destination: destination.to_string(),
        read_only,
        no_copy,
        labels: BTreeMap::new(),
    })
}

fn canonical(spec: &str, source: &str) -> Result<PathBuf, ContainerError> {
    std::fs::canonicalize(source).map_err(|err| {
        let path = PathBuf::from(source);
        match err.kind() {
            std::io::ErrorKind::NotFound => ContainerError::VolumeSourceNotFound {
                spec: spec.to_string(),
                path,
            },
            _ => ContainerError::VolumeSource {
                spec: spec.to_string(),
                path,
                source: err,
            },
        }
    })
}

/// `--mount type=bind|volume|tmpfs,source=…,target=…[,readonly][,…]` with Docker's keys.
/// A missing bind source is an error (unlike `-v`); what kiln does not implement
/// (`volume-opt`, another volume driver, `volume-subpath`, …) is refused, never ignored.
pub fn parse_mount(spec: &str) -> Result<Mount, ContainerError> {
    const FORM: &str = "e.g. --mount type=volume,src=data,dst=/data or --mount type=bind,src=./conf,dst=/etc/app,readonly";
    let mut kind = "volume";
    let mut source = String::new();
    let mut destination = String::new();
    let mut read_only = false;
    let mut propagation = None;
    let mut no_copy = false;
    let mut labels = BTreeMap::new();
    let mut tmpfs_options = Vec::new();
    // Options only a type takes, checked against the type at the end (Docker's order).
    let mut only: Vec<(&str, &str)> = Vec::new();
    let boolean = |key: &str, value: Option<&str>| match value {
        None | Some("true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(bad(
            spec,
            format!("`{key}={other}` is not true or false"),
            format!("write {key}, {key}=true or {key}=false"),
        )),
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v)),
            None => (field.trim(), None),
        };
        let value_of = |key: &str| {
            value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| bad(spec, format!("`{key}` needs a value"), FORM))
        };
        match key {
            "type" => kind = value_of(key)?,
            "source" | "src" => source = value_of(key)?.to_string(),
            "destination" | "dst" | "target" => destination = value_of(key)?.to_string(),
            "readonly" | "ro" => read_only = boolean(key, value)?,
            "bind-propagation" => {
                let mode = value_of(key)?;
                if !PROPAGATIONS.contains(&mode) {
                    return Err(bad(
                        spec,
                        format!("unknown bind-propagation `{mode}`"),
                        "use rprivate (the default), private, rshared, shared, rslave or slave",
                    ));
                }
                propagation = Some(mode.to_string());
                only.push((key, "bind"));
            }
            "bind-recursive" if value == Some("enabled") => only.push((key, "bind")),
            "volume-nocopy" => {
                no_copy = boolean(key, value)?;
                only.push((key, "volume"));
            }
            "volume-label" => {
                let label = value_of(key)?;
                let (k, v) = label.split_once('=').unwrap_or((label, ""));
                labels.insert(k.to_string(), v.to_string());
                only.push((key, "volume"));
            }
            "volume-driver" if value == Some("local") => only.push((key, "volume")),
            "tmpfs-size" => {
                let size = value_of(key)?;
                let bytes = match size.parse::<u64>() {
                    Ok(bytes) => bytes,
                    Err(_) => {
                        crate::spec::units::Size::parse(size)
                            .map_err(|reason| {
                                bad(
                                    spec,
                                    format!("tmpfs-size `{size}`: {reason}"),
                                    "give bytes or a size such as 64m or 1GiB",
                                )
                            })?
                            .0
                    }
                };
                tmpfs_options.push(format!("size={bytes}"));
                only.push((key, "tmpfs"));
            }
            "tmpfs-mode" => {
                let mode = value_of(key)?;
                if u32::from_str_radix(mode, 8).is_err() {
                    return Err(bad(
                        spec,
                        format!("tmpfs-mode `{mode}` is not an octal mode"),
                        "write it in octal, e.g. tmpfs-mode=1770",
                    ));
                }
                tmpfs_options.push(format!("mode={mode}"));
                only.push((key, "tmpfs"));
            }
            _ => {
                let why = match key {
                    "volume-opt" => "kiln's volumes are directories: there are no driver options",
                    "volume-driver" => "kiln has one volume driver, `local`",
                    "volume-subpath" => "kiln does not mount part of a volume yet",
                    "bind-recursive" | "bind-nonrecursive" => {
                        "kiln's binds are always recursive (bind-recursive=enabled)"
                    }
                    "consistency" => "it has no meaning on Linux",
                    _ => "unknown option",
                };
                return Err(bad(spec, format!("`{key}` is not supported: {why}"), FORM));
            }
        }
    }
    if let Some((key, _)) = only.iter().find(|(_, wants)| *wants != kind) {
        return Err(bad(
            spec,
            format!("`{key}` does not go with type={kind}"),
            FORM,
        ));
    }
    if destination.is_empty() {
        return Err(bad(spec, "no target", FORM));
    }
    if !destination.starts_with('/') {
        return Err(bad(
            spec,
            "the target must be an absolute path in the container",
            format!("write it from the container's root, e.g. dst=/{destination}"),
        ));
    }
    match kind {
        "bind" => {
            if source.is_empty() {
                return Err(bad(spec, "a bind needs a source", FORM));
            }
            Ok(Mount::Bind(Volume {
                source: canonical(spec, &source)?,
                destination,
                read_only,
                propagation,
            }))
        }
        "volume" => {
            let mut volume = named(spec, &source, &destination, read_only, no_copy)?;
            volume.labels = labels;
            Ok(Mount::Volume(volume))
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(bad(
                    spec,
                    "a tmpfs has no source",
                    "leave src out: --mount type=tmpfs,dst=/run",
                ));
            }
            if read_only {
                tmpfs_options.push("ro".into());
            }
            Ok(Mount::Tmpfs(Tmpfs {
                destination,
                options: tmpfs_options,
            }))
        }
        other => Err(bad(
            spec,
            format!("type `{other}` is not supported"),
            "kiln mounts type=bind, type=volume and type=tmpfs",
        )),
    }
}

/// The image's `Volumes` (Dockerfile `VOLUME`) as Docker mounts them: an anonymous volume
/// for each path no mount of the container already has (`-v`, `--mount`, `--tmpfs`), filled
/// from the image on first use like any new volume. The paths come from a hostile image:
/// each must be absolute, is cleaned lexically, and may not be `/`.
pub(crate) fn image_volumes<'a>(
    image: impl IntoIterator<Item = &'a String>,
    taken: &[&str],
) -> Result<Vec<NamedVolume>, ContainerError> {
    let mut out: Vec<NamedVolume> = Vec::new();
    for path in image {
        let cleaned = clean_absolute(path).ok_or_else(|| {
            bad(
                path,
                "the image's volume path is not an absolute path below `/`",
                "the image config's Volumes must be absolute paths other than `/`: rebuild the image",
            )
        })?;
        let covered = taken
            .iter()
            .any(|t| clean_absolute(t).as_deref() == Some(&cleaned))
            || out.iter().any(|v| v.destination == cleaned);
        if !covered {
            out.push(NamedVolume {
                destination: cleaned,
                ..NamedVolume::default()
            });
        }
    }
    Ok(out)
}

/// `/a//b/./c/../d` → `/a/b/d`; `None` for a relative path, a NUL byte, or one that cleans
/// to `/`.
fn clean_absolute(path: &str) -> Option<String> {
    if !path.starts_with('/') || path.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| format!("/{}", parts.join("/")))
}

/// Makes the container's named volumes that are missing, fills new (empty) ones from the
/// image unless `nocopy`, and returns their binds and references. `layers`: the image's
/// layer blobs, lowest first; `lower_dirs`: the same unpacked, to see cheaply whether the
/// image has anything at a path at all.
pub(crate) fn attach_volumes(
    store: &crate::store::Store,
    state_root: &Path,
    layers: &[crate::store::Descriptor],
    lower_dirs: &[PathBuf],
    volumes: &[NamedVolume],
) -> Result<(Vec<Volume>, Vec<String>), ContainerError> {
    let store_of_volumes = VolumeStore::open(state_root);
    let mut binds = Vec::new();
    let mut references = Vec::new();
    for wanted in volumes {
        let name = match &wanted.name {
            Some(name) => name.clone(),
            None => crate::state::ContainerId::generate()
                .map_err(io_err(Path::new("/dev/urandom")))?
                .as_str()
                .to_string(),
        };
        let new = NewVolume {
            labels: wanted.labels.clone(),
            anonymous: wanted.name.is_none(),
        };
        let (volume, _) = store_of_volumes.create(wanted.project.as_deref(), &name, &new)?;
        if !wanted.no_copy && is_empty(&volume.mountpoint)? {
            copy_up(
                store,
                state_root,
                layers,
                lower_dirs,
                &wanted.destination,
                &volume.mountpoint,
            )
            .map_err(|source| ContainerError::CopyUp {
                volume: volume.reference.clone(),
                destination: wanted.destination.clone(),
                source: Box::new(source),
            })?;
        }
        binds.push(Volume {
            source: volume.mountpoint.clone(),
            destination: wanted.destination.clone(),
            read_only: wanted.read_only,
            propagation: None,
        });
        references.push(volume.reference);
    }
    Ok((binds, references))
}

fn is_empty(dir: &Path) -> Result<bool, ContainerError> {
    Ok(std::fs::read_dir(dir)
        .map_err(io_err(dir))?
        .next()
        .is_none())
}

/// Moves the content of the image's directory `destination` into the empty volume at
/// `volume`, and gives the volume that directory's owner and mode. Nothing happens when
/// the image has no directory there.
fn copy_up(
    store: &crate::store::Store,
    state_root: &Path,
    layers: &[crate::store::Descriptor],
    lower_dirs: &[PathBuf],
    destination: &str,
    volume: &Path,
) -> Result<(), ContainerError> {
    // Whatever the image has at `/a/b` it has some of at `/a` in some layer: when no layer
    // has the first component, there is nothing to copy and nothing to flatten.
    let first = destination
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if first.is_empty()
        || !lower_dirs
            .iter()
            .any(|dir| std::fs::symlink_metadata(dir.join(first)).is_ok())
    {
        return Ok(());
    }
    let tmp = state_root.join("tmp");
    crate::store::make_private(&tmp).map_err(io_err(&tmp))?;
    let scratch = tempfile::Builder::new()
        .prefix("copy-up-")
        .tempdir_in(&tmp)
        .map_err(io_err(&tmp))?;
    let root = scratch.path().join("root");
    std::fs::create_dir(&root).map_err(io_err(&root))?;
    crate::build::flatten(store, layers, &root).map_err(|e| ContainerError::Layers(Box::new(e)))?;
    let image_root = crate::inroot::Root::open(&root).map_err(|e| ContainerError::Io {
        path: root.clone(),
        source: e.source,
    })?;
    let found = match image_root.resolve(destination, crate::inroot::How::EXISTING) {
        Ok(fd) => fd,
        Err(err) if err.is_not_found() => return Ok(()),
        Err(err) => {
            return Err(ContainerError::Io {
                path: root.join(destination.trim_start_matches('/')),
                source: err.source,
            });
        }
    };
    let Ok(source_dir) = crate::inroot::reopen(found.as_fd(), libc::O_RDONLY | libc::O_DIRECTORY)
    else {
        return Ok(()); // a file, a device…: Docker copies directories only
    };
    let stat = source_dir.metadata().map_err(io_err(&root))?;
    let target_dir = std::fs::File::open(volume).map_err(io_err(volume))?;
    let fd_path = PathBuf::from(format!("/proc/self/fd/{}", source_dir.as_raw_fd()));
    for entry in std::fs::read_dir(&fd_path).map_err(io_err(&fd_path))? {
        let entry = entry.map_err(io_err(&fd_path))?;
        let name = entry.file_name();
        // The scratch root and the volume are both under the state root: a rename moves
        // each entry (and all below it) with its owner, mode and links intact.
        nix::fcntl::renameat(
            source_dir.as_fd(),
            name.as_os_str(),
            target_dir.as_fd(),
            name.as_os_str(),
        )
        .map_err(|errno| ContainerError::Io {
            path: volume.join(&name),
            source: errno.into(),
        })?;
    }
    nix::unistd::fchown(
        target_dir.as_fd(),
        Some(nix::unistd::Uid::from_raw(stat.uid())),
        Some(nix::unistd::Gid::from_raw(stat.gid())),
    )
    .map_err(|errno| ContainerError::Io {
        path: volume.to_path_buf(),
        source: errno.into(),
    })?;
    target_dir
        .set_permissions(std::fs::Permissions::from_mode(stat.mode() & 0o7777))
        .map_err(io_err(volume))?;
    Ok(())
}
