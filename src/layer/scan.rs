//! A directory tree, or an overlayfs upper directory, → [`Entries`], as the tree is: lstat
//! metadata, symlinks not followed, hardlinks detected by (device, inode). Reads metadata
//! and xattrs only; file content is read later by the writer, opened beneath the tree's
//! directory ([`Content::Beneath`]). The walk goes by directory descriptors, never by path
//! strings resolved again, so a tree changed during the scan (a running container's upper
//! directory) can make it fail but never lead it out of the tree.

use std::collections::HashMap;
use std::fs::{self, File, Metadata};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::entries::{Content, Entries, Entry, EntryKind, Tree};
use super::{LayerError, io_err};
use crate::beneath;

/// The xattr kiln always keeps: file capabilities (e.g. `ping`'s cap_net_raw).
const CAPABILITY_XATTR: &str = "security.capability";
/// Overlayfs's own xattrs (root and userxattr variants): implementation details of the
/// upper directory, never layer content.
const OVERLAY_XATTR_PREFIXES: [&str; 2] = ["trusted.overlay.", "user.overlay."];
const OPAQUE_XATTRS: [&str; 2] = ["trusted.overlay.opaque", "user.overlay.opaque"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScanOptions {
    /// Keep every xattr, not only `security.capability` (which is always kept). Off by
    /// default: host labels such as `security.selinux` rarely belong in an image.
    pub all_xattrs: bool,
}

impl Entries {
    /// The entries of the tree under `dir` (which itself is not an entry). Sockets are
    /// skipped. Of several paths sharing an inode, the first in sorted order is stored as
    /// is and the others become hardlinks to it.
    pub fn scan_dir(dir: &Path, opts: &ScanOptions) -> Result<Entries, LayerError> {
        Scanner::new(*opts, false).run(dir)
    }

    /// Like [`Entries::scan_dir`] for the upper directory of an overlay mount: whiteouts
    /// (character devices 0/0) become [`EntryKind::Whiteout`], directories marked
    /// `trusted.overlay.opaque=y` become [`EntryKind::OpaqueDir`], and overlayfs's own
    /// xattrs are dropped.
    pub fn scan_overlay_upper(dir: &Path, opts: &ScanOptions) -> Result<Entries, LayerError> {
        Scanner::new(*opts, true).run(dir)
    }

    /// [`Entries::scan_overlay_upper`] of a directory the caller opened (beneath its own
    /// directory, with no symlink followed); `shown` is its path, for messages. For a tree
    /// someone may change meanwhile: nothing in it is ever followed out of it.
    pub fn scan_overlay_upper_at(
        dir: File,
        shown: &Path,
        opts: &ScanOptions,
    ) -> Result<Entries, LayerError> {
        Scanner::new(*opts, true).run_at(dir, shown)
    }
}

struct Scanner {
    opts: ScanOptions,
    overlay: bool,
    entries: Entries,
    /// Paths of non-directories with more than one link, by (device, inode).
    inodes: HashMap<(u64, u64), Vec<String>>,
}

impl Scanner {
    fn new(opts: ScanOptions, overlay: bool) -> Scanner {
        Scanner {
            opts,
            overlay,
            entries: Entries::new(),
            inodes: HashMap::new(),
        }
    }

    fn run(self, dir: &Path) -> Result<Entries, LayerError> {
        let root = beneath::open_root(dir).map_err(io_err(dir))?;
        self.run_at(root, dir)
    }

    fn run_at(mut self, root: File, dir: &Path) -> Result<Entries, LayerError> {
        let tree = Tree::new(root.try_clone().map_err(io_err(dir))?, dir.to_path_buf());
        self.walk(&tree, &root, dir, "")?;
        for mut paths in self.inodes.into_values() {
            paths.sort();
            // An inode whose other links are outside the tree leaves a group of one.
            let (first, others) = paths.split_first().expect("groups are never empty");
            for other in others {
                let entry = self
                    .entries
                    .get_mut(other)
                    .expect("scanned paths are entries");
                entry.kind = EntryKind::Hardlink(first.clone());
            }
        }
        Ok(self.entries)
    }

    /// Scans directory `dir` (open; `shown` is its path, for messages), whose entries are
    /// at `prefix` in the layer. Every name is looked up in `dir` through
    /// `/proc/self/fd/N/NAME`, so only its last component is resolved by name (and not
    /// followed: lstat, readlink, lgetxattr), and subdirectories are opened beneath `dir`
    /// with no symlink followed: a directory someone swaps for a link meanwhile (a running
    /// container's upper directory) is an error, never a way to the host's tree.
    fn walk(
        &mut self,
        tree: &Tree,
        dir: &File,
        shown: &Path,
        prefix: &str,
    ) -> Result<(), LayerError> {
        let at = PathBuf::from(format!("/proc/self/fd/{}", dir.as_raw_fd()));
        let mut children = Vec::new();
        for child in fs::read_dir(&at).map_err(io_err(shown))? {
            let child = child.map_err(io_err(shown))?;
            let name = child.file_name();
            let name = name.to_str().ok_or_else(|| LayerError::NotUtf8 {
                path: shown.join(&name),
            })?;
            children.push(name.to_string());
        }
        children.sort();
        for name in children {
            let host = at.join(&name);
            let shown_child = shown.join(&name);
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let meta = fs::symlink_metadata(&host).map_err(io_err(&shown_child))?;
            let Some(kind) = self.kind(tree, &host, &shown_child, &path, &meta)? else {
                continue;
            };
            let xattrs = if kind == EntryKind::Whiteout {
                Default::default()
            } else {
                self.xattrs(&host, &shown_child)?
            };
            let is_dir = kind.is_dir();
            let hardlinkable = !is_dir && kind != EntryKind::Whiteout && meta.nlink() > 1;
            let entry = Entry {
                xattrs,
                ..Entry::new(kind, meta.mode(), meta.uid(), meta.gid())
            };
            // Scanned names never start with `.wh.` (normalize_path rejects them), so a
            // host file cannot pose as a whiteout.
            self.entries
                .insert(&path, entry)
                .map_err(|error| match error {
                    LayerError::InvalidPath { reason, .. } => LayerError::InvalidPath {
                        path: shown_child.display().to_string(),
                        reason,
                    },
                    other => other,
                })?;
            if hardlinkable {
                self.inodes
                    .entry((meta.dev(), meta.ino()))
                    .or_default()
                    .push(path.clone());
            }
            if is_dir {
                let sub = beneath::open(dir, Path::new(&name), beneath::Kind::Dir)
                    .map_err(io_err(&shown_child))?;
                self.walk(tree, &sub, &shown_child, &path)?;
            }
        }
        Ok(())
    }

    /// `host` is where the syscalls find it, `shown` its path for messages, `path` its
    /// path in the tree.
    fn kind(
        &self,
        tree: &Tree,
        host: &Path,
        shown: &Path,
        path: &str,
        meta: &Metadata,
    ) -> Result<Option<EntryKind>, LayerError> {
        let file_type = meta.file_type();
        Ok(Some(if file_type.is_dir() {
            if self.overlay && self.is_opaque(host, shown)? {
                EntryKind::OpaqueDir
            } else {
                EntryKind::Dir
            }
        } else if file_type.is_file() {
            EntryKind::File(Content::Beneath {
                tree: tree.clone(),
                path: PathBuf::from(path),
                size: meta.len(),
            })
        } else if file_type.is_symlink() {
            EntryKind::Symlink(fs::read_link(host).map_err(io_err(shown))?)
        } else if file_type.is_char_device() {
            let (major, minor) = device_numbers(meta.rdev());
            if self.overlay && (major, minor) == (0, 0) {
                EntryKind::Whiteout
            } else {
                EntryKind::CharDevice { major, minor }
            }
        } else if file_type.is_block_device() {
            let (major, minor) = device_numbers(meta.rdev());
            EntryKind::BlockDevice { major, minor }
        } else if file_type.is_fifo() {
            EntryKind::Fifo
        } else {
            return Ok(None); // sockets belong to running processes, not to images
        }))
    }

    fn is_opaque(&self, host: &Path, shown: &Path) -> Result<bool, LayerError> {
        for name in OPAQUE_XATTRS {
            if xattr::get(host, name).map_err(io_err(shown))?.as_deref() == Some(b"y") {
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn xattrs(
        &self,
        host: &Path,
        shown: &Path,
    ) -> Result<std::collections::BTreeMap<String, Vec<u8>>, LayerError> {
        let mut xattrs = std::collections::BTreeMap::new();
        let names = match xattr::list(host) {
            Ok(names) => names,
            Err(error) if error.raw_os_error() == Some(libc::ENOTSUP) => return Ok(xattrs),
            Err(error) => return Err(io_err(shown)(error)),
        };
        for name in names {
            let Some(name) = name.to_str() else { continue };
            let overlay_own = OVERLAY_XATTR_PREFIXES.iter().any(|p| name.starts_with(p));
            if (self.overlay && overlay_own) || !(self.opts.all_xattrs || name == CAPABILITY_XATTR)
            {
                continue;
            }
            if let Some(value) = xattr::get(host, name).map_err(io_err(shown))? {
                xattrs.insert(name.to_string(), value);
            }
        }
        Ok(xattrs)
    }
}

/// Linux's split of a `dev_t` into major and minor numbers.
fn device_numbers(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff);
    let minor = ((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff);
    (major as u32, minor as u32)
}
