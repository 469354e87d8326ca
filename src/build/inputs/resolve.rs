//! Path resolution inside a base directory, one component at a time, the way the kernel
//! would inside a chroot: every symbolic link met on the way is read and followed by this
//! code (never by the OS), and reported, so callers can put the same links in the image.
//!
//! Two scopes: a [`HostRoot`] behaves like a chroot (absolute link targets and `..` at the
//! top stay inside the root); a build context refuses to be left (an escape is reported,
//! not clamped). Paths inside the base are "rooted": absolute, with `/` meaning the base.

use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::{InputError, ItemKind, ItemSet, show};

/// Linux's limit on symbolic links followed in one lookup.
const MAX_LINKS: usize = 40;

/// The root directory host paths are resolved in: `/` normally, a fake tree in tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot {
    root: PathBuf,
}

impl HostRoot {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The machine's own root, `/`.
    pub fn system() -> Self {
        Self::new("/")
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// Where the rooted path `image` is on the host.
    pub(crate) fn host_path(&self, image: &Path) -> PathBuf {
        host_of(&self.root, image)
    }

    /// Resolves the absolute path `path` inside the root, following every symbolic link
    /// (the last component's too) and adding one symlink item per link met to `items`.
    /// Returns the rooted physical path and its metadata.
    pub(crate) fn resolve(
        &self,
        path: &str,
        items: &mut ItemSet,
    ) -> Result<(PathBuf, Metadata), InputError> {
        if !path.starts_with('/') {
            return Err(InputError::NotAbsolute { path: path.into() });
        }
        let resolved = self.try_resolve(Path::new("/"), Path::new(path), Follow::All)?;
        match resolved {
            Ok(found) => {
                self.record_links(&found.links, items);
                let meta = found
                    .meta
                    .expect("Follow::All never returns a missing path");
                Ok((found.path, meta))
            }
            Err(failure) => Err(failure.into_error(path)),
        }
    }

    /// Like [`Self::resolve`] but a failure to find the path is a value, not an error, and
    /// links are returned instead of recorded: for search paths, where most candidates miss.
    pub(crate) fn try_resolve(
        &self,
        start: &Path,
        path: &Path,
        follow: Follow,
    ) -> Result<Result<Resolved, Failure>, InputError> {
        match walk(&self.root, Scope::Chroot, start, path, follow) {
            Err(Failure::Io { path, source }) => Err(InputError::Io { path, source }),
            other => Ok(other),
        }
    }

    pub(crate) fn record_links(&self, links: &[Link], items: &mut ItemSet) {
        for link in links {
            items.insert(
                link.path.clone(),
                self.host_path(&link.path),
                ItemKind::Symlink(link.target.clone()),
            );
        }
    }
}

/// Where the rooted path `rooted` is on the host, under `base`.
pub(crate) fn host_of(base: &Path, rooted: &Path) -> PathBuf {
    match rooted.strip_prefix("/") {
        Ok(rest) if rest.as_os_str().is_empty() => base.to_path_buf(),
        Ok(rest) => base.join(rest),
        Err(_) => base.join(rooted),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Like a chroot: absolute link targets mean the base, `..` at the top stays there.
    Chroot,
    /// A build context: leaving the base is an escape.
    Context,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    /// Follow every link, the last component's included; every component must exist.
    All,
    /// Follow links, but a missing component ends the lookup and the rest is taken as
    /// written (for judging where a possibly dangling link points).
    AllowMissing,
}

/// A symbolic link met while resolving: its rooted path and its target as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link {
    pub(crate) path: PathBuf,
    pub(crate) target: PathBuf,
}

#[derive(Debug)]
pub(crate) struct Resolved {
    /// The rooted, link-free path.
    pub(crate) path: PathBuf,
    /// `None` when a component was missing (only with [`Follow::AllowMissing`]).
    pub(crate) meta: Option<Metadata>,
    pub(crate) links: Vec<Link>,
}

#[derive(Debug)]
pub(crate) enum Failure {
    Missing { at: PathBuf },
    NotDir { at: PathBuf },
    Loop,
    Escapes { link: PathBuf, target: PathBuf },
    Io { path: PathBuf, source: io::Error },
}

impl Failure {
    /// The error for a host lookup of `requested` that failed this way.
    pub(crate) fn into_error(self, requested: &str) -> InputError {
        match self {
            Failure::Missing { at } => InputError::NotFound {
                path: requested.into(),
                missing: show(&at),
            },
            Failure::NotDir { at } => InputError::NotADirectory {
                path: requested.into(),
                component: show(&at),
            },
            Failure::Loop => InputError::SymlinkLoop {
                path: requested.into(),
            },
            Failure::Escapes { link, target } => InputError::SymlinkEscapes {
                link: show(&link),
                target: show(&target),
            },
            Failure::Io { path, source } => InputError::Io { path, source },
        }
    }
}

/// Resolves `path` (absolute: from the base's top; relative: from the rooted `start`).
pub(crate) fn walk(
    base: &Path,
    scope: Scope,
    start: &Path,
    path: &Path,
    follow: Follow,
) -> Result<Resolved, Failure> {
    let mut pending: Vec<OsString> = Vec::new();
    let mut current = if path.has_root() {
        PathBuf::from("/")
    } else {
        start.to_path_buf()
    };
    push_components(&mut pending, path);
    let mut links = Vec::new();
    let mut missing = false;

    while let Some(name) = pending.pop() {
        if name == ".." {
            if current == Path::new("/") {
                if scope == Scope::Context {
                    return Err(escape(&links, &current));
                }
            } else {
                current.pop();
            }
            continue;
        }
        let next = current.join(&name);
        if missing {
            current = next;
            continue;
        }
        let host = host_of(base, &next);
        let meta = match fs::symlink_metadata(&host) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound && follow == Follow::AllowMissing => {
                missing = true;
                current = next;
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Failure::Missing { at: next });
            }
            Err(source) => return Err(Failure::Io { path: host, source }),
        };
        if meta.is_symlink() {
            if links.len() >= MAX_LINKS {
                return Err(Failure::Loop);
            }
            let target = fs::read_link(&host).map_err(|source| Failure::Io {
                path: host.clone(),
                source,
            })?;
            if target.as_os_str().is_empty() {
                return Err(Failure::Missing { at: next });
            }
            let mut rest = target.as_path();
            if target.has_root() {
                current = PathBuf::from("/");
                if scope == Scope::Context {
                    rest = target.strip_prefix(base).map_err(|_| Failure::Escapes {
                        link: next.clone(),
                        target: target.clone(),
                    })?;
                }
            }
            push_components(&mut pending, rest);
            links.push(Link { path: next, target });
        } else {
            let is_last = pending.is_empty();
            if !is_last && !meta.is_dir() {
                return Err(Failure::NotDir { at: next });
            }
            current = next;
        }
    }

    let meta = if missing {
        None
    } else {
        let host = host_of(base, &current);
        Some(fs::symlink_metadata(&host).map_err(|source| Failure::Io { path: host, source })?)
    };
    Ok(Resolved {
        path: current,
        meta,
        links,
    })
}

/// Pushes the components of `path` so that popping yields them in order; `.` and the root
/// are dropped (the caller has already positioned itself).
fn push_components(pending: &mut Vec<OsString>, path: &Path) {
    let names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect();
    pending.extend(names.into_iter().rev());
}

/// The escape failure for `..` leaving the base: blamed on the last link followed.
fn escape(links: &[Link], current: &Path) -> Failure {
    match links.last() {
        Some(link) => Failure::Escapes {
            link: link.path.clone(),
            target: link.target.clone(),
        },
        None => Failure::Escapes {
            link: current.to_path_buf(),
            target: PathBuf::from(".."),
        },
    }
}
