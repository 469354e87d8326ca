//! An image's merged file tree as metadata only: what every path is (directory, file, symbolic
//! link), its mode and owner, built by reading the layer tars in order with their whiteouts
//! applied, as an extractor would leave the tree, without writing anything. Build steps that
//! depend on what the image below them holds (`copy` into an existing directory, `workdir`)
//! decide with it.
//!
//! Paths resolve inside the image, never on the host: [`ImageIndex::resolve`] follows
//! symbolic links as `openat2(RESOLVE_IN_ROOT)` and BuildKit's `RootPath` do (an absolute
//! target starts again at the image's `/`, `..` stops at it). The contents of a few small
//! files are kept ([`CAPTURED`]: `/etc/passwd`, `/etc/group`) for user lookups.

use std::collections::BTreeMap;
use std::io::Read;

use tar::EntryType;

use super::{LayerError, OPAQUE_MARKER, WHITEOUT_PREFIX};

/// Files whose contents the index keeps (as read, at most [`MAX_CAPTURED`] bytes).
pub const CAPTURED: [&str; 2] = ["etc/passwd", "etc/group"];
const MAX_CAPTURED: u64 = 1 << 20;
/// Symbolic links followed in one resolution before giving up (Linux's own limit).
const MAX_HOPS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexKind {
    Dir,
    /// A regular file (or a hard link to one).
    File,
    /// A symbolic link, with its target as written.
    Symlink(String),
    /// A device or a FIFO.
    Other,
}

/// One path of the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexNode {
    pub kind: IndexKind,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl IndexNode {
    /// A directory an extractor creates for an entry whose parent the archive lacks.
    pub fn implicit_dir() -> IndexNode {
        IndexNode {
            kind: IndexKind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
        }
    }

    pub fn is_dir(&self) -> bool {
        self.kind == IndexKind::Dir
    }
}

static ROOT: IndexNode = IndexNode {
    kind: IndexKind::Dir,
    mode: 0o755,
    uid: 0,
    gid: 0,
};

/// Why a path could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many levels of symbolic links resolving `/{path}` in the image")]
pub struct SymlinkLoop {
    pub path: String,
}

/// The merged tree. Paths are relative, `/`-separated, without `.`, `..` or empty parts;
/// the root is `""`.
#[derive(Debug, Clone, Default)]
pub struct ImageIndex {
    nodes: BTreeMap<String, IndexNode>,
    captured: BTreeMap<String, Vec<u8>>,
}

/// One entry of a layer, read before any of the layer is applied (whiteouts hide only what
/// the layers below have).
enum Change {
    Whiteout(String),
    Opaque(String),
    Put(String, IndexNode, Option<Vec<u8>>),
    Link(String, String, IndexNode),
}

impl ImageIndex {
    pub fn new() -> ImageIndex {
        ImageIndex::default()
    }

    /// The node at the literal path `path` (symbolic links not followed); the root is `""`.
    pub fn get(&self, path: &str) -> Option<&IndexNode> {
        if path.is_empty() {
            Some(&ROOT)
        } else {
            self.nodes.get(path)
        }
    }

    /// The kept contents of a [`CAPTURED`] file at the literal `path`.
    pub fn captured(&self, path: &str) -> Option<&[u8]> {
        self.captured.get(path).map(Vec::as_slice)
    }

    /// Puts `node` at `path` as an extractor would: missing parents become 0755 root
    /// directories, and whatever was at the path goes, with everything below it unless both
    /// are directories.
    pub fn insert(&mut self, path: &str, node: IndexNode) {
        if path.is_empty() {
            return;
        }
        for (i, _) in path.match_indices('/') {
            let parent = &path[..i];
            match self.nodes.get(parent) {
                Some(existing) if existing.is_dir() => {}
                Some(_) => {
                    self.remove(parent);
                    self.nodes
                        .insert(parent.to_string(), IndexNode::implicit_dir());
                }
                None => {
                    self.nodes
                        .insert(parent.to_string(), IndexNode::implicit_dir());
                }
            }
        }
        let keep_below = node.is_dir() && self.nodes.get(path).is_some_and(IndexNode::is_dir);
        if !keep_below {
            self.remove(path);
        }
        self.captured.remove(path);
        self.nodes.insert(path.to_string(), node);
    }

    /// Removes `path` and everything below it.
    pub fn remove(&mut self, path: &str) {
        self.nodes.remove(path);
        self.captured.remove(path);
        self.remove_below(path);
    }

    fn remove_below(&mut self, path: &str) {
        // Keys below `a` start with `a/`; `0` is the byte after `/`.
        let (from, to) = if path.is_empty() {
            (String::new(), None)
        } else {
            (format!("{path}/"), Some(format!("{path}0")))
        };
        let doomed: Vec<String> = match &to {
            Some(to) => self
                .nodes
                .range(from..to.clone())
                .map(|(k, _)| k.clone())
                .collect(),
            None => self.nodes.keys().cloned().collect(),
        };
        for key in doomed {
            self.nodes.remove(&key);
            self.captured.remove(&key);
        }
    }

    /// Applies one uncompressed layer tar on top of the tree.
    pub fn apply_layer(&mut self, tar: impl Read) -> Result<(), LayerError> {
        let mut changes = Vec::new();
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(LayerError::Archive)? {
            let mut entry = entry.map_err(LayerError::Archive)?;
            if let Some(change) = read_change(&mut entry)? {
                changes.push(change);
            }
        }
        for change in &changes {
            match change {
                Change::Whiteout(path) => {
                    let path = self.through_parents(path)?;
                    self.remove(&path);
                }
                Change::Opaque(dir) => {
                    let dir = self.resolve(dir, true).map_err(unsafe_entry)?;
                    self.remove_below(&dir);
                }
                Change::Put(..) | Change::Link(..) => {}
            }
        }
        for change in changes {
            match change {
                Change::Put(path, node, content) => {
                    let path = self.through_parents(&path)?;
                    self.insert(&path, node);
                    if let Some(content) = content {
                        self.captured.insert(path, content);
                    }
                }
                Change::Link(path, target, fallback) => {
                    let path = self.through_parents(&path)?;
                    let target = self.through_parents(&target)?;
                    let node = self.get(&target).cloned().unwrap_or(fallback);
                    let content = self.captured.get(&target).cloned();
                    self.insert(&path, node);
                    if let Some(content) = content {
                        self.captured.insert(path, content);
                    }
                }
                Change::Whiteout(_) | Change::Opaque(_) => {}
            }
        }
        Ok(())
    }

    /// Where an extractor puts the entry `path`: its parents' symbolic links followed inside
    /// the image (as kiln's extractor and containerd's do), its own name as it is.
    fn through_parents(&self, path: &str) -> Result<String, LayerError> {
        if !path.contains('/') {
            return Ok(path.to_string());
        }
        self.resolve(path, false).map_err(unsafe_entry)
    }

    /// `path` (absolute or relative to the root) with every symbolic link on it followed
    /// inside the image, the last component's too when `follow_last`: the normalized path it
    /// names. A part that does not exist ends the lookups; the rest is taken as written.
    pub fn resolve(&self, path: &str, follow_last: bool) -> Result<String, SymlinkLoop> {
        let mut pending: Vec<String> = parts(path).rev().map(str::to_string).collect();
        let mut resolved: Vec<String> = Vec::new();
        let mut hops = 0;
        while let Some(part) = pending.pop() {
            if part == ".." {
                resolved.pop();
                continue;
            }
            resolved.push(part);
            let is_last = pending.is_empty();
            if is_last && !follow_last {
                break;
            }
            let here = resolved.join("/");
            let Some(IndexNode {
                kind: IndexKind::Symlink(target),
                ..
            }) = self.nodes.get(&here)
            else {
                continue;
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err(SymlinkLoop {
                    path: parts(path).collect::<Vec<_>>().join("/"),
                });
            }
            resolved.pop();
            if target.starts_with('/') {
                resolved.clear();
            }
            pending.extend(parts(target).rev().map(str::to_string));
        }
        Ok(resolved.join("/"))
    }

    /// Every path and node, parents before children.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &IndexNode)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }
}

fn unsafe_entry(error: SymlinkLoop) -> LayerError {
    LayerError::UnsafeEntry {
        entry: format!("/{}", error.path),
        reason: error.to_string(),
    }
}

/// The non-empty, non-`.` parts of a path (`..` kept).
fn parts(path: &str) -> impl DoubleEndedIterator<Item = &str> {
    path.split('/').filter(|p| !p.is_empty() && *p != ".")
}

/// A tar path as an index path, or `None` for the root; `..` is refused as extraction
/// refuses it.
fn clean(raw: &str) -> Result<Option<String>, LayerError> {
    let mut out: Vec<&str> = Vec::new();
    for part in parts(raw) {
        if part == ".." {
            return Err(LayerError::UnsafeEntry {
                entry: raw.to_string(),
                reason: "`..` components are not allowed".into(),
            });
        }
        out.push(part);
    }
    Ok((!out.is_empty()).then(|| out.join("/")))
}

fn read_change<R: Read>(entry: &mut tar::Entry<'_, R>) -> Result<Option<Change>, LayerError> {
    let kind = entry.header().entry_type();
    if matches!(
        kind,
        EntryType::XGlobalHeader | EntryType::XHeader | EntryType::GNULongName
    ) {
        return Ok(None);
    }
    let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
    let Some(path) = clean(&raw)? else {
        return Ok(None);
    };
    let (parent, name) = match path.rsplit_once('/') {
        Some((parent, name)) => (parent.to_string(), name),
        None => (String::new(), path.as_str()),
    };
    if name == OPAQUE_MARKER {
        return Ok(Some(Change::Opaque(parent)));
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        let hidden = if parent.is_empty() {
            hidden.to_string()
        } else {
            format!("{parent}/{hidden}")
        };
        return Ok(Some(Change::Whiteout(hidden)));
    }
    let header = entry.header();
    let bad = |source| LayerError::Extract {
        entry: raw.clone(),
        source,
    };
    let mode = header.mode().map_err(bad)? & 0o7777;
    let uid = u32::try_from(header.uid().map_err(bad)?).unwrap_or(u32::MAX);
    let gid = u32::try_from(header.gid().map_err(bad)?).unwrap_or(u32::MAX);
    let node = |kind| IndexNode {
        kind,
        mode,
        uid,
        gid,
    };
    Ok(Some(match kind {
        EntryType::Directory => Change::Put(path, node(IndexKind::Dir), None),
        EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            Change::Put(path, node(IndexKind::Symlink(target)), None)
        }
        EntryType::Link => {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned())
                .unwrap_or_default();
            let target = clean(&target)?.unwrap_or_default();
            Change::Link(path, target, node(IndexKind::File))
        }
        EntryType::Regular | EntryType::Continuous => {
            let size = header.size().map_err(bad)?;
            let content = if CAPTURED.contains(&path.as_str()) && size <= MAX_CAPTURED {
                let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
                entry.read_to_end(&mut bytes).map_err(bad)?;
                Some(bytes)
            } else {
                None
            };
            Change::Put(path, node(IndexKind::File), content)
        }
        _ => Change::Put(path, node(IndexKind::Other), None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::{Compression, Content, Entries, Entry, EntryKind, WriteOptions, write};

    fn tar(entries: &[(&str, EntryKind, u32)]) -> Vec<u8> {
        let mut list = Entries::new();
        for (path, kind, mode) in entries {
            list.insert(path, Entry::new(kind.clone(), *mode, 0, 0))
                .expect("entry");
        }
        let mut out = Vec::new();
        let opts = WriteOptions {
            compression: Compression::None,
            source_date_epoch: 0,
            skip_implicit_dirs: true,
        };
        write(&list, &opts, &mut out).expect("written");
        out
    }

    fn file(text: &str) -> EntryKind {
        EntryKind::File(Content::Bytes(text.as_bytes().to_vec()))
    }

    fn link(target: &str) -> EntryKind {
        EntryKind::Symlink(target.into())
    }

    fn listing(index: &ImageIndex) -> Vec<String> {
        index
            .iter()
            .map(|(path, node)| match &node.kind {
                IndexKind::Dir => format!("D {path} {:o}", node.mode),
                IndexKind::File => format!("F {path} {:o}", node.mode),
                IndexKind::Symlink(t) => format!("L {path} -> {t}"),
                IndexKind::Other => format!("O {path}"),
            })
            .collect()
    }

    #[test]
    fn layers_merge_with_whiteouts_opaque_directories_and_implicit_parents() {
        let mut index = ImageIndex::new();
        index
            .apply_layer(
                &tar(&[
                    ("etc", EntryKind::Dir, 0o755),
                    ("etc/passwd", file("root:x:0:0::/root:/bin/sh\n"), 0o644),
                    ("srv/www/index.html", file("x"), 0o644),
                    ("tmp", EntryKind::Dir, 0o1777),
                    ("old/a", file("a"), 0o600),
                    ("keep/a", file("a"), 0o600),
                    ("bin", link("usr/bin"), 0o777),
                ])[..],
            )
            .expect("layer 1");
        index
            .apply_layer(
                &tar(&[
                    ("old", EntryKind::Whiteout, 0),
                    ("keep", EntryKind::OpaqueDir, 0o700),
                    ("keep/b", file("b"), 0o644),
                    ("srv/www", file("now a file"), 0o640),
                ])[..],
            )
            .expect("layer 2");
        assert_eq!(
            listing(&index),
            [
                "L bin -> usr/bin",
                "D etc 755",
                "F etc/passwd 644",
                "D keep 700",
                "F keep/b 644",
                "D srv 755",
                "F srv/www 640",
                "D tmp 1777",
            ]
        );
        assert_eq!(
            index.captured("etc/passwd"),
            Some(&b"root:x:0:0::/root:/bin/sh\n"[..])
        );
        assert!(index.get("").is_some_and(IndexNode::is_dir));
    }

    #[test]
    fn a_whiteout_hides_only_lower_layers() {
        let mut index = ImageIndex::new();
        index
            .apply_layer(&tar(&[("a", file("old"), 0o644), ("d/old", file("o"), 0o644)])[..])
            .expect("layer 1");
        // The opaque marker clears what the layers below put in `d`, never what its own
        // layer adds there (the marker may come before or after the additions).
        index
            .apply_layer(
                &tar(&[
                    ("d", EntryKind::OpaqueDir, 0o755),
                    ("d/x", file("x"), 0o644),
                ])[..],
            )
            .expect("layer 2");
        assert_eq!(listing(&index), ["F a 644", "D d 755", "F d/x 644"]);
    }

    #[test]
    fn resolution_stays_inside_the_image() {
        let mut index = ImageIndex::new();
        index
            .apply_layer(
                &tar(&[
                    ("usr/bin", EntryKind::Dir, 0o755),
                    ("bin", link("usr/bin"), 0o777),
                    ("evil", link("/tmp/x"), 0o777),
                    ("up", link("../../../../etc"), 0o777),
                    ("usr/lib/rel", link("../bin"), 0o777),
                    ("loop1", link("loop2"), 0o777),
                    ("loop2", link("/loop1"), 0o777),
                ])[..],
            )
            .expect("layer");
        let resolve = |p: &str| index.resolve(p, true).expect(p);
        assert_eq!(resolve("/bin/sh"), "usr/bin/sh");
        assert_eq!(resolve("bin"), "usr/bin");
        assert_eq!(index.resolve("/bin", false).expect("bin"), "bin");
        // An absolute target is the image's own root, never the host's.
        assert_eq!(resolve("/evil/y"), "tmp/x/y");
        // `..` stops at the image's root.
        assert_eq!(resolve("/up/passwd"), "etc/passwd");
        assert_eq!(resolve("/usr/lib/rel/x"), "usr/bin/x");
        assert_eq!(resolve("/a/../../b/./c"), "b/c");
        assert_eq!(resolve("/"), "");
        assert!(index.resolve("/loop1/x", true).is_err());
    }

    #[test]
    fn entries_below_a_linked_directory_land_where_an_extractor_puts_them() {
        let mut index = ImageIndex::new();
        index
            .apply_layer(
                &tar(&[
                    ("usr/bin", EntryKind::Dir, 0o755),
                    ("bin", link("usr/bin"), 0o777),
                ])[..],
            )
            .expect("layer 1");
        // A tool that wrote `bin/tool` without resolving `/bin`: it lands in /usr/bin, and
        // the link stays.
        let mut raw = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o755);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(0);
        raw.append_data(&mut header, "bin/tool", &b""[..])
            .expect("entry");
        index
            .apply_layer(&raw.into_inner().expect("tar")[..])
            .expect("layer 2");
        assert_eq!(
            listing(&index),
            [
                "L bin -> usr/bin",
                "D usr 755",
                "D usr/bin 755",
                "F usr/bin/tool 755"
            ]
        );
    }

    #[test]
    fn a_hard_link_is_a_file_like_its_target() {
        let mut index = ImageIndex::new();
        index
            .apply_layer(
                &tar(&[
                    ("a", file("x"), 0o600),
                    ("b", EntryKind::Hardlink("a".into()), 0o600),
                ])[..],
            )
            .expect("layer");
        assert_eq!(listing(&index), ["F a 600", "F b 600"]);
    }
}
