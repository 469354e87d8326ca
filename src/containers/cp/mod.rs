//! `kiln cp`: files into and out of a container, with `docker cp`'s meaning for each form
//! of SRC and DEST (a file into a directory keeps its name; a directory into an existing
//! one goes inside it, or only its contents with a trailing `/.`; a missing DEST is
//! made; `-` is a tar stream on stdin or stdout), for running containers (their root as
//! their pid 1 sees it, `/proc/PID/root`) and for created or stopped ones (their
//! overlayfs mounted for kiln alone, `runtime::mount_view`).
//!
//! Every path inside a container is resolved inside its root (`inroot`): a symbolic link
//! in the container never makes kiln read or write a host path. What comes out of a
//! container is written inside the destination directory only. The copy itself is a tar
//! stream between `pack` (reads a tree through descriptors) and `unpack` (writes one
//! through descriptors). It does not parse the command line (the CLI's).

mod pack;
mod unpack;

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{OFlag, open};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat};

use super::ContainerError;
use super::lifecycle::{Launch, layout};
use crate::inroot::{How, InRootError, Root};
use crate::process::Pidfd;
use crate::runtime::{RootView, mount_view};
use crate::state::{Record, Records, Status};

/// Why a copy failed.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CopyError {
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("refused archive entry `{entry}`: {reason}")]
    #[diagnostic(help("kiln cp writes only relative paths below the destination, and no devices"))]
    BadEntry { entry: String, reason: String },
    #[error("{path}: {reason}")]
    Conflict { path: String, reason: String },
    #[error(transparent)]
    #[diagnostic(transparent)]
    InRoot(Box<InRootError>),
    #[error("no such file or directory: {path}")]
    NotFound { path: String },
    #[error("{path} is not a directory")]
    #[diagnostic(help("a trailing `/` asks for a directory; leave it out to copy a file"))]
    NotADirectory { path: String },
    #[error("cannot copy a directory to a file: {dest}")]
    #[diagnostic(help("name a directory, or a path that does not exist yet"))]
    DirectoryToFile { dest: String },
    #[error("destination directory {dest} must exist")]
    #[diagnostic(help(
        "a DEST that ends with `/` names a directory: create it first, or leave the `/` out"
    ))]
    DestinationMustExist { dest: String },
    #[error("destination {dest} must be a directory")]
    #[diagnostic(help("a tar stream (`-`) is extracted into an existing directory"))]
    StreamIntoNonDirectory { dest: String },
    #[error("cannot mount the root of container {name} to copy: {source}")]
    View {
        name: String,
        #[source]
        source: Box<crate::runtime::SandboxError>,
    },
}

impl From<CopyError> for ContainerError {
    fn from(error: CopyError) -> ContainerError {
        ContainerError::Copy(Box::new(error))
    }
}

/// One end of a copy.
#[derive(Debug, Clone, Copy)]
pub enum Side<'a> {
    /// A path on the machine, as given (a trailing `/` or `/.` matters).
    Host(&'a str),
    /// A path in a container, from its root (`tmp/x` is `/tmp/x`), as given.
    Container { record: &'a Record, path: &'a str },
    /// `-`: a tar stream on stdin (SRC) or stdout (DEST).
    Stream,
}

/// `kiln cp`'s options.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopyOptions {
    /// `-L`: follow a symbolic link SRC names (the link itself otherwise).
    pub follow_link: bool,
    /// `-a`: keep the source's uid and gid (otherwise the files are root's).
    pub archive: bool,
}

/// What a copy wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    /// Entries (files, directories, links) written.
    pub entries: u64,
}

/// A container's root, held open for the copy: a running container's as its pid 1 sees
/// it, or a stopped one's mounted for kiln (with the container's lock, so it does not
/// start meanwhile).
struct ContainerRoot {
    root: Root,
    // Dropped after `root`: the fields drop in order.
    _view: Option<RootView>,
    _lock: Option<nix::fcntl::Flock<File>>,
    _process: Option<Pidfd>,
}

fn container_root(records: &Records, record: &Record) -> Result<ContainerRoot, ContainerError> {
    let lock = records.lock(&record.id)?;
    let current = records.load(&record.id)?.reconciled();
    if matches!(current.state.status, Status::Running | Status::Restarting)
        && let Some(process) = current.state.process()
    {
        drop(lock);
        let root = Root::open(format!("/proc/{}/root", process.pid()))
            .map_err(|e| CopyError::InRoot(Box::new(e)))?;
        // Opened after the pidfd: the root is that process's, not a recycled pid's.
        if process.exited() {
            return Err(ContainerError::NotRunning {
                name: record.reference(),
            });
        }
        return Ok(ContainerRoot {
            root,
            _view: None,
            _lock: None,
            _process: Some(process),
        });
    }
    if current.state.status == Status::Restarting || current.state.supervisor_alive() {
        // Between two runs: the supervisor may mount it any moment.
        return Err(ContainerError::AlreadyRunning {
            name: record.reference(),
        });
    }
    let dir = records.dir(&record.id);
    let launch = Launch::load(&dir)?;
    let view = mount_view(&layout(&dir, &launch)).map_err(|source| CopyError::View {
        name: record.reference(),
        source: Box::new(source),
    })?;
    let root = Root::open(view.path()).map_err(|e| CopyError::InRoot(Box::new(e)))?;
    Ok(ContainerRoot {
        root,
        _view: Some(view),
        _lock: Some(lock),
        _process: None,
    })
}

/// A path as written, in its parts: trailing `/.` (contents only), trailing `/`.
struct Written<'a> {
    raw: &'a str,
    contents: bool,
    trailing_slash: bool,
}

impl<'a> Written<'a> {
    fn new(raw: &'a str) -> Written<'a> {
        Written {
            raw,
            contents: raw == "." || raw.ends_with("/."),
            trailing_slash: raw.ends_with('/') || raw.ends_with("/."),
        }
    }

    /// The name the copy gets: the last component (`None` for `/`, `.` or `/.`: only
    /// what it holds is copied).
    fn name(&self) -> Option<PathBuf> {
        if self.contents {
            return None;
        }
        Path::new(self.raw).file_name().map(PathBuf::from)
    }
}

/// The object SRC names, `O_PATH`: a link itself unless followed (`-L`, or a trailing
/// `/`). `None` when it does not exist.
fn source_in_root(
    root: &Root,
    path: &Path,
    follow: bool,
) -> Result<Option<(OwnedFd, FileStat)>, CopyError> {
    let in_root = |e: InRootError| {
        if e.is_not_found() {
            Ok(None)
        } else {
            Err(CopyError::InRoot(Box::new(e)))
        }
    };
    let fd = match (follow, path.parent(), path.file_name()) {
        (false, Some(parent), Some(name)) => match root.resolve(parent, How::EXISTING) {
            Ok(parent) => match pack::open_nofollow(&parent, Path::new(name)) {
                Ok(fd) => fd,
                Err(nix::errno::Errno::ENOENT) => return Ok(None),
                Err(e) => {
                    return Err(CopyError::Read {
                        path: path.display().to_string(),
                        source: e.into(),
                    });
                }
            },
            Err(e) => return in_root(e),
        },
        _ => match root.resolve(path, How::EXISTING) {
            Ok(fd) => fd,
            Err(e) => return in_root(e),
        },
    };
    let stat = fstat(&fd).map_err(|e| CopyError::Read {
        path: path.display().to_string(),
        source: e.into(),
    })?;
    Ok(Some((fd, stat)))
}

fn source_on_host(raw: &str, follow: bool) -> Result<Option<(OwnedFd, FileStat)>, CopyError> {
    let mut flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    let fd = match open(raw, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ENOENT) => return Ok(None),
        Err(e) => {
            return Err(CopyError::Read {
                path: raw.to_string(),
                source: e.into(),
            });
        }
    };
    let stat = fstat(&fd).map_err(|e| CopyError::Read {
        path: raw.to_string(),
        source: e.into(),
    })?;
    Ok(Some((fd, stat)))
}

fn is_dir(stat: &FileStat) -> bool {
    pack::kind(stat) == SFlag::S_IFDIR
}

/// A path in a container, from its root.
fn in_container(path: &str) -> PathBuf {
    Path::new("/").join(path.trim_start_matches('/'))
}

/// Where the archive goes: a root, the directory in it, and what the top entry is called
/// (`None`: the source's contents, into that directory).
struct Target<'r> {
    root: &'r Root,
    dir: PathBuf,
    name: Option<PathBuf>,
}

/// What DEST is now: `Some(true)` a directory, `Some(false)` something else, `None`
/// nothing (links followed: inside the root for a container).
type Found = Option<bool>;

fn found_in_root(root: &Root, path: &Path) -> Result<Found, CopyError> {
    match root.resolve(path, How::EXISTING) {
        Ok(fd) => {
            let stat = fstat(&fd).map_err(|e| CopyError::Read {
                path: path.display().to_string(),
                source: e.into(),
            })?;
            Ok(Some(is_dir(&stat)))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(CopyError::InRoot(Box::new(e))),
    }
}

fn found_on_host(path: &Path) -> Result<Found, CopyError> {
    match std::fs::metadata(path) {
        Ok(meta) => Ok(Some(meta.is_dir())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CopyError::Read {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Docker's rules: where SRC (a directory or not, its name, contents only or not) goes
/// for DEST as written and as found. `(directory to write in, name of the copy)`.
fn place(
    src_dir: bool,
    src: &Written<'_>,
    dest: &Written<'_>,
    dest_path: &Path,
    found: Found,
) -> Result<(PathBuf, Option<PathBuf>), CopyError> {
    let shown = || dest.raw.to_string();
    let parent_and_name = || {
        let name = dest_path.file_name().map(PathBuf::from);
        let parent = dest_path.parent().unwrap_or(Path::new("/")).to_path_buf();
        (parent, name)
    };
    match found {
        Some(true) => Ok((dest_path.to_path_buf(), src.name())),
        Some(false) if src_dir => Err(CopyError::DirectoryToFile { dest: shown() }),
        Some(false) if dest.trailing_slash => Err(CopyError::NotADirectory { path: shown() }),
        Some(false) => Ok(parent_and_name()),
        None if dest.trailing_slash && !src_dir => {
            Err(CopyError::DestinationMustExist { dest: shown() })
        }
        None => {
            let (parent, name) = parent_and_name();
            // `cp dir C:/new/.`-like names with no last component: into the parent.
            Ok((parent, name.or_else(|| src.name())))
        }
    }
}

/// Copies `src` to `dest` (exactly one of them in a container, or a stream and a
/// container).
pub fn copy(
    records: &Records,
    src: Side<'_>,
    dest: Side<'_>,
    options: CopyOptions,
) -> Result<Copied, ContainerError> {
    match (src, dest) {
        (Side::Container { record, path }, dest) => {
            let held = container_root(records, record)?;
            let written = Written::new(path);
            let src_path = in_container(path);
            let follow = options.follow_link || written.trailing_slash;
            let (fd, stat) = source_in_root(&held.root, &src_path, follow)?.ok_or_else(|| {
                CopyError::NotFound {
                    path: format!("{}:{}", record.reference(), src_path.display()),
                }
            })?;
            if written.trailing_slash && !is_dir(&stat) {
                return Err(CopyError::NotADirectory {
                    path: path.to_string(),
                }
                .into());
            }
            let shown = format!("{}:{}", record.reference(), src_path.display());
            match dest {
                Side::Stream => {
                    let name = written.name().unwrap_or_default();
                    let mut packer = pack::Packer::new(io::stdout().lock(), &shown);
                    packer.add(&fd, &name)?;
                    packer
                        .finish()?
                        .flush()
                        .map_err(|source| CopyError::Write {
                            path: "standard output".into(),
                            source,
                        })?;
                    Ok(Copied::default())
                }
                Side::Host(raw) => {
                    let dest_written = Written::new(raw);
                    let dest_path =
                        std::path::absolute(raw).map_err(|source| CopyError::Write {
                            path: raw.to_string(),
                            source,
                        })?;
                    let found = found_on_host(&dest_path)?;
                    let (dir, name) =
                        place(is_dir(&stat), &written, &dest_written, &dest_path, found)?;
                    if found_on_host(&dir)? != Some(true) {
                        return Err(CopyError::NotFound {
                            path: dir.display().to_string(),
                        }
                        .into());
                    }
                    // The container's archive is written inside `dir`, and only there.
                    let root = Root::open(&dir).map_err(|e| CopyError::InRoot(Box::new(e)))?;
                    let target = Target {
                        root: &root,
                        dir: PathBuf::from("/"),
                        name,
                    };
                    transfer(&fd, &shown, &target, options)
                }
                Side::Container { .. } => Err(ContainerError::CopyBetweenContainers),
            }
        }
        (src, Side::Container { record, path }) => {
            let held = container_root(records, record)?;
            let dest_written = Written::new(path);
            let dest_path = in_container(path);
            let found = found_in_root(&held.root, &dest_path)?;
            match src {
                Side::Stream => {
                    if found != Some(true) {
                        return Err(CopyError::StreamIntoNonDirectory {
                            dest: path.to_string(),
                        }
                        .into());
                    }
                    let unpacker = unpack::Unpacker {
                        root: &held.root,
                        base: dest_path,
                        preserve_ownership: options.archive,
                    };
                    let entries = unpacker.unpack(io::stdin().lock())?;
                    Ok(Copied { entries })
                }
                Side::Host(raw) => {
                    let written = Written::new(raw);
                    let follow = options.follow_link || written.trailing_slash;
                    let (fd, stat) =
                        source_on_host(raw, follow)?.ok_or_else(|| CopyError::NotFound {
                            path: raw.to_string(),
                        })?;
                    if written.trailing_slash && !is_dir(&stat) {
                        return Err(CopyError::NotADirectory {
                            path: raw.to_string(),
                        }
                        .into());
                    }
                    let (dir, name) =
                        place(is_dir(&stat), &written, &dest_written, &dest_path, found)?;
                    if found_in_root(&held.root, &dir)? != Some(true) {
                        return Err(CopyError::NotFound {
                            path: format!("{}:{}", record.reference(), dir.display()),
                        }
                        .into());
                    }
                    let target = Target {
                        root: &held.root,
                        dir,
                        name,
                    };
                    transfer(&fd, raw, &target, options)
                }
                Side::Container { .. } => Err(ContainerError::CopyBetweenContainers),
            }
        }
        _ => Err(ContainerError::CopyWithoutContainer),
    }
}

/// Packs the tree at `fd` on one thread and unpacks it into `target` on this one,
/// through a pipe.
fn transfer(
    fd: &OwnedFd,
    shown: &str,
    target: &Target<'_>,
    options: CopyOptions,
) -> Result<Copied, ContainerError> {
    let (reader, writer) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| CopyError::Read {
        path: shown.to_string(),
        source: e.into(),
    })?;
    let name = target.name.clone().unwrap_or_default();
    let unpacker = unpack::Unpacker {
        root: target.root,
        base: target.dir.clone(),
        preserve_ownership: options.archive,
    };
    std::thread::scope(|scope| {
        let packing = scope.spawn(move || {
            let mut packer = pack::Packer::new(File::from(writer), shown);
            packer.add(fd, &name)?;
            packer.finish().map(drop)
        });
        let unpacked = unpacker.unpack(File::from(reader));
        let packed = packing.join().expect("the packing thread panicked");
        // The reader's error says less when the writer failed first (a broken pipe).
        packed?;
        Ok(Copied { entries: unpacked? })
    })
}
