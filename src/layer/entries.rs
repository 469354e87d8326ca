//! The in-memory list of a layer's entries: a sorted map from normalized relative path to
//! kind and metadata. It validates paths and keeps the tree well formed (every entry's
//! parents exist and are directories); it reads no files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::{LayerError, WHITEOUT_PREFIX};

/// Where a regular file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A host file read when the layer is written. `size` is what the scan saw; a different
    /// size at write time is an error, never a silently corrupt layer.
    Host { path: PathBuf, size: u64 },
    /// A file of a scanned tree that someone else may change while kiln reads it (a running
    /// container's upper directory): opened beneath the tree's directory with no symlink
    /// followed ([`crate::beneath`]), so a directory swapped for a link since the scan is an
    /// error, never a way to the host's files. `path` is relative to the tree.
    Beneath {
        tree: Tree,
        path: PathBuf,
        size: u64,
    },
    /// Bytes held in memory.
    Bytes(Vec<u8>),
}

impl Content {
    /// The size the tar header will declare.
    pub fn size(&self) -> u64 {
        match self {
            Content::Host { size, .. } | Content::Beneath { size, .. } => *size,
            Content::Bytes(bytes) => bytes.len() as u64,
        }
    }

    /// The path shown in messages: the host path, or the tree's path joined with `path`.
    pub fn shown(&self) -> Option<PathBuf> {
        match self {
            Content::Host { path, .. } => Some(path.clone()),
            Content::Beneath { tree, path, .. } => Some(tree.shown.join(path)),
            Content::Bytes(_) => None,
        }
    }

    /// Opens a host file for reading (non-blocking, so a FIFO swapped in cannot hang the
    /// reader; the caller checks it is a regular file). `None` for bytes in memory.
    pub fn open(&self) -> Option<std::io::Result<std::fs::File>> {
        use std::os::unix::fs::OpenOptionsExt;
        match self {
            Content::Host { path, .. } => Some(
                std::fs::File::options()
                    .read(true)
                    .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                    .open(path),
            ),
            Content::Beneath { tree, path, .. } => Some(
                crate::beneath::open(&tree.dir, path, crate::beneath::Kind::File).map_err(|err| {
                    match err.raw_os_error() {
                        Some(libc::EINVAL | libc::EISDIR) => {
                            std::io::Error::other("it is no longer a regular file")
                        }
                        Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV) => std::io::Error::other(
                            "a directory on its path became a link or a file since the scan",
                        ),
                        _ => err,
                    }
                }),
            ),
            Content::Bytes(_) => None,
        }
    }
}

/// A scanned tree's directory, held open: its files are opened beneath it.
#[derive(Debug, Clone)]
pub struct Tree {
    dir: std::sync::Arc<std::fs::File>,
    /// Its path, for messages.
    shown: PathBuf,
}

impl Tree {
    pub fn new(dir: std::fs::File, shown: PathBuf) -> Tree {
        Tree {
            dir: std::sync::Arc::new(dir),
            shown,
        }
    }

    pub fn dir(&self) -> &std::fs::File {
        &self.dir
    }

    pub fn shown(&self) -> &std::path::Path {
        &self.shown
    }
}

/// The same tree: the same open directory.
impl PartialEq for Tree {
    fn eq(&self, other: &Tree) -> bool {
        std::sync::Arc::ptr_eq(&self.dir, &other.dir)
    }
}

impl Eq for Tree {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File(Content),
    Dir,
    /// The target is kept exactly as found (absolute or relative, never resolved).
    Symlink(PathBuf),
    /// A hard link to another (earlier in sorted order, non-directory) entry of the layer,
    /// named by its layer path.
    Hardlink(String),
    CharDevice {
        major: u32,
        minor: u32,
    },
    BlockDevice {
        major: u32,
        minor: u32,
    },
    Fifo,
    /// Deletes the path from lower layers; written as `.wh.NAME` in the same directory.
    Whiteout,
    /// A directory that hides all lower-layer content below it; written as the directory
    /// plus a `.wh..wh..opq` marker inside it.
    OpaqueDir,
}

impl EntryKind {
    pub fn is_dir(&self) -> bool {
        matches!(self, EntryKind::Dir | EntryKind::OpaqueDir)
    }
}

/// One layer entry: its kind and the metadata the tar header records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: EntryKind,
    /// Permission bits including setuid, setgid and sticky (`0o7777` mask; the file type
    /// comes from `kind`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

impl Entry {
    /// An entry with the given kind, mode and owner, and no xattrs.
    pub fn new(kind: EntryKind, mode: u32, uid: u32, gid: u32) -> Entry {
        Entry {
            kind,
            mode: mode & 0o7777,
            uid,
            gid,
            xattrs: BTreeMap::new(),
        }
    }

    /// A directory owned by root with mode 0755: what missing parents become.
    pub fn implicit_dir() -> Entry {
        Entry::new(EntryKind::Dir, 0o755, 0, 0)
    }
}

/// A layer's entries, sorted by path. Iteration order is the tar order: a parent sorts
/// before its children because a path sorts before every path it prefixes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entries {
    map: BTreeMap<String, Entry>,
    /// Directories created by `insert` for missing parents; an explicit insert replaces them.
    implicit: BTreeSet<String>,
}

impl Entries {
    pub fn new() -> Entries {
        Entries::default()
    }

    /// Adds or replaces the entry at `path` (normalized with [`normalize_path`]); missing
    /// parent directories are added as 0755 root:root and replaced by a later explicit
    /// insert of the same path. Fails if a parent is not a directory, or if a directory that
    /// has entries below it would be replaced by a non-directory.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), LayerError> {
        let path = normalize_path(path)?;
        for (index, _) in path.match_indices('/') {
            let parent = &path[..index];
            match self.map.get(parent) {
                None => {
                    self.map.insert(parent.to_string(), Entry::implicit_dir());
                    self.implicit.insert(parent.to_string());
                }
                Some(existing) if existing.kind.is_dir() => {}
                Some(_) => {
                    let parent = parent.to_string();
                    return Err(LayerError::ParentNotDir { path, parent });
                }
            }
        }
        if !entry.kind.is_dir() && self.has_children(&path) {
            return Err(LayerError::DirNotEmpty { path });
        }
        self.implicit.remove(&path);
        self.map.insert(path, entry);
        Ok(())
    }

    /// The entry at `path` (already normalized).
    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.map.get(path)
    }

    /// Whether the directory at `path` was only added as a missing parent.
    pub fn is_implicit(&self, path: &str) -> bool {
        self.implicit.contains(path)
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Entries in tar order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.map.iter().map(|(path, entry)| (path.as_str(), entry))
    }

    pub(crate) fn get_mut(&mut self, path: &str) -> Option<&mut Entry> {
        self.map.get_mut(path)
    }

    fn has_children(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.map
            .range(prefix.clone()..)
            .next()
            .is_some_and(|(next, _)| next.starts_with(&prefix))
    }
}

/// Normalizes a layer path: a leading `/`, empty and `.` components are dropped; `..`, NUL
/// bytes, the root itself and names starting with `.wh.` (reserved for whiteouts) are
/// rejected.
pub fn normalize_path(path: &str) -> Result<String, LayerError> {
    let invalid = |reason| LayerError::InvalidPath {
        path: path.to_string(),
        reason,
    };
    if path.contains('\0') {
        return Err(invalid("it contains a NUL byte"));
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(invalid("`..` components are not allowed")),
            name if name.starts_with(WHITEOUT_PREFIX) => {
                return Err(invalid(
                    "names starting with `.wh.` are reserved for whiteouts",
                ));
            }
            name => parts.push(name),
        }
    }
    if parts.is_empty() {
        return Err(invalid("the layer root is not an entry"));
    }
    Ok(parts.join("/"))
}
