//! Safe extraction of a layer tar into a directory. Nothing is ever written outside the
//! root: absolute paths, `..`, paths through symlinks that leave the root, hardlinks to
//! anything not already inside the root, and (unless allowed) device nodes are refused with
//! an error naming the entry. Whiteouts are applied (flattening layers into one rootfs) or
//! turned into overlayfs whiteouts (a layer unpacked as an overlay lowerdir).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::resolve::{Missing, Refusal, components, resolve_dir};
use super::{LayerError, OPAQUE_MARKER, WHITEOUT_PREFIX};

const COPY_BUFFER: usize = 256 * 1024;
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// xattrs never taken from an archive: overlayfs's own (an archive must not plant
/// redirects or opaque markers of its choosing) .
const FORBIDDEN_XATTR_PREFIXES: [&str; 2] = ["trusted.overlay.", "user.overlay."];
/// xattr namespaces that need privilege; only set when ownership is preserved.
const PRIVILEGED_XATTR_PREFIXES: [&str; 2] = ["trusted.", "security."];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhiteoutMode {
    /// Delete whited-out paths and clear opaque directories of what earlier layers put
    /// there: for flattening layers, in order, into one rootfs.
    #[default]
    Apply,
    /// Create overlayfs whiteouts (character device 0/0) and mark opaque directories with
    /// `trusted.overlay.opaque=y`: for a directory used as an overlay lowerdir. Needs root.
    Overlay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExtractOptions {
    pub whiteouts: WhiteoutMode,
    /// chown entries to their uid/gid and set `trusted.*`/`security.*` xattrs (needs root).
    /// Without it files belong to the caller and those xattrs are skipped.
    pub preserve_ownership: bool,
    /// Create character and block devices (FIFOs are always allowed).
    pub allow_devices: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExtractReport {
    /// Entries created (files, directories, links, devices), not counting whiteouts.
    pub entries: u64,
    /// Bytes of regular-file content written.
    pub bytes: u64,
    /// Whiteouts and opaque markers applied or created.
    pub whiteouts: u64,
    /// Directories the archive has no entry for, created as parents of its entries (0755,
    /// owned by the extracting user), relative to the root: an overlay user gives them the
    /// metadata the layers below have for the same path.
    pub implicit_dirs: Vec<PathBuf>,
}

/// Extracts the uncompressed tar `tar` into the existing directory `root` (see
/// [`super::decompressing_reader`] for compressed layers). Modes, mtimes, xattrs and (with
/// `preserve_ownership`) ownership are set; directories get their mode and mtime after
/// their contents are written. The root entry (`./`) is skipped: the root's own metadata is
/// the caller's.
pub fn extract(
    tar: impl Read,
    root: &Path,
    opts: &ExtractOptions,
) -> Result<ExtractReport, LayerError> {
    let meta = fs::metadata(root).map_err(super::io_err(root))?;
    if !meta.is_dir() {
        return Err(super::io_err(root)(io::Error::from(
            io::ErrorKind::NotADirectory,
        )));
    }
    let mut extractor = Extractor {
        root,
        opts,
        written: HashSet::new(),
        implicit: BTreeSet::new(),
        dirs: BTreeMap::new(),
        report: ExtractReport::default(),
        buffer: vec![0; COPY_BUFFER],
    };
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().map_err(LayerError::Archive)? {
        let mut entry = entry.map_err(LayerError::Archive)?;
        extractor.entry(&mut entry)?;
    }
    extractor.finish_dirs()?;
    let mut report = extractor.report;
    report.implicit_dirs = extractor
        .implicit
        .iter()
        .filter(|dir| !extractor.dirs.contains_key(*dir))
        .filter_map(|dir| dir.strip_prefix(root).ok().map(Path::to_path_buf))
        .collect();
    Ok(report)
}

/// Mode and mtime of a directory, applied once everything below it is written.
struct DirMeta {
    entry: String,
    mode: u32,
    mtime: u64,
}

/// The header fields applied to a created entry.
struct Meta {
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    xattrs: Vec<(String, Vec<u8>)>,
}

struct Extractor<'a> {
    root: &'a Path,
    opts: &'a ExtractOptions,
    /// Real paths this extraction created: whiteouts and opaque markers only hide what
    /// earlier layers put there, never what this layer adds.
    written: HashSet<PathBuf>,
    /// Parent directories created because the archive needed them.
    implicit: BTreeSet<PathBuf>,
    dirs: BTreeMap<PathBuf, DirMeta>,
    report: ExtractReport,
    buffer: Vec<u8>,
}

impl Extractor<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), LayerError> {
        let kind = entry.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            return Ok(());
        }
        let raw = entry.path_bytes().into_owned();
        let name_of = String::from_utf8_lossy(&raw).into_owned();
        let refuse = |refusal| refused(&name_of, refusal);
        let parts = components(&raw).map_err(refuse)?;
        let Some((name, parents)) = parts.split_last() else {
            return Ok(()); // the root itself
        };
        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE_MARKER.as_bytes() {
            return self.opaque(parents, &name_of);
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(parents, OsStr::from_bytes(hidden), &name_of);
        }
        let is_device = matches!(kind, EntryType::Char | EntryType::Block);
        if is_device && !self.opts.allow_devices {
            return Err(LayerError::DeviceNotAllowed { entry: name_of });
        }
        let supported = matches!(
            kind,
            EntryType::Regular
                | EntryType::Continuous
                | EntryType::Directory
                | EntryType::Symlink
                | EntryType::Link
                | EntryType::Char
                | EntryType::Block
                | EntryType::Fifo
        );
        if !supported {
            return Err(LayerError::UnsupportedEntry {
                entry: name_of,
                kind: kind.as_byte(),
            });
        }

        let mut created = Vec::new();
        let dir = resolve_dir(self.root, parents, Missing::Create(&mut created))
            .map_err(refuse)?
            .expect("missing parents are created");
        self.implicit.extend(created.iter().cloned());
        self.written.extend(created);
        let dest = dir.join(name);
        let meta = self.meta(entry, &name_of)?;
        let fail = |source| LayerError::Extract {
            entry: name_of.clone(),
            source,
        };

        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&dest) {
                    Ok(existing) if existing.is_dir() => {}
                    _ => {
                        remove_existing(&dest).map_err(fail)?;
                        fs::DirBuilder::new().create(&dest).map_err(fail)?;
                        // Writable by its creator until finish_dirs sets the real mode.
                        fs::set_permissions(&dest, fs::Permissions::from_mode(0o700))
                            .map_err(fail)?;
                    }
                }
                self.own_and_xattrs(&dest, &meta).map_err(fail)?;
                self.dirs.insert(
                    dest.clone(),
                    DirMeta {
                        entry: name_of.clone(),
                        mode: meta.mode,
                        mtime: meta.mtime,
                    },
                );
            }
            EntryType::Link => {
                let target = self.hardlink_target(entry, &dest, &name_of)?;
                remove_existing(&dest).map_err(fail)?;
                fs::hard_link(&target, &dest).map_err(fail)?;
                // The inode's metadata is the target's; a link header does not change it.
            }
            _ => {
                remove_existing(&dest).map_err(fail)?;
                match kind {
                    EntryType::Symlink => {
                        let target = entry.link_name_bytes().ok_or_else(|| {
                            refused(&name_of, Refusal::Unsafe("symlink without a target".into()))
                        })?;
                        std::os::unix::fs::symlink(OsStr::from_bytes(&target), &dest)
                            .map_err(fail)?;
                    }
                    EntryType::Char | EntryType::Block => {
                        let header = entry.header();
                        let major = header.device_major().ok().flatten().unwrap_or(0);
                        let minor = header.device_minor().ok().flatten().unwrap_or(0);
                        let flag = if kind == EntryType::Char {
                            SFlag::S_IFCHR
                        } else {
                            SFlag::S_IFBLK
                        };
                        let dev = makedev(u64::from(major), u64::from(minor));
                        mknod(&dest, flag, Mode::from_bits_truncate(0o600), dev)
                            .map_err(|errno| fail(errno.into()))?;
                    }
                    EntryType::Fifo => {
                        nix::unistd::mkfifo(&dest, Mode::from_bits_truncate(0o600))
                            .map_err(|errno| fail(errno.into()))?;
                    }
                    _ => self.write_file(entry, &dest).map_err(fail)?,
                }
                let is_symlink = kind == EntryType::Symlink;
                self.own_and_xattrs(&dest, &meta).map_err(fail)?;
                if !is_symlink {
                    // After chown, which clears setuid/setgid.
                    fs::set_permissions(&dest, fs::Permissions::from_mode(meta.mode))
                        .map_err(fail)?;
                }
                set_mtime(&dest, meta.mtime).map_err(fail)?;
            }
        }
        self.written.insert(dest);
        self.report.entries += 1;
        Ok(())
    }

    fn meta<R: Read>(
        &self,
        entry: &mut tar::Entry<'_, R>,
        name_of: &str,
    ) -> Result<Meta, LayerError> {
        let header = entry.header();
        let bad = |source| LayerError::Extract {
            entry: name_of.to_string(),
            source,
        };
        let mut meta = Meta {
            mode: header.mode().map_err(bad)? & 0o7777,
            uid: header.uid().map_err(bad)?,
            gid: header.gid().map_err(bad)?,
            mtime: header.mtime().map_err(bad)?,
            xattrs: Vec::new(),
        };
        if let Some(extensions) = entry.pax_extensions().map_err(bad)? {
            for extension in extensions {
                let extension = extension.map_err(bad)?;
                let Ok(key) = extension.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    meta.xattrs
                        .push((name.to_string(), extension.value_bytes().to_vec()));
                }
            }
        }
        Ok(meta)
    }

    fn write_file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dest: &Path,
    ) -> io::Result<()> {
        let mut file = fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dest)?;
        loop {
            let read = match entry.read(&mut self.buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            file.write_all(&self.buffer[..read])?;
            self.report.bytes += read as u64;
        }
        Ok(())
    }

    /// The real path of a hardlink's target: inside the root, existing, not a directory.
    fn hardlink_target<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        dest: &Path,
        name_of: &str,
    ) -> Result<PathBuf, LayerError> {
        let unsafe_link = |reason: String| refused(name_of, Refusal::Unsafe(reason));
        let raw = entry
            .link_name_bytes()
            .ok_or_else(|| unsafe_link("hardlink without a target".into()))?;
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let parts = components(&raw).map_err(|refusal| match refusal {
            Refusal::Unsafe(reason) => unsafe_link(format!("hardlink target `{shown}`: {reason}")),
            io => refused(name_of, io),
        })?;
        let Some((name, parents)) = parts.split_last() else {
            return Err(unsafe_link("hardlink to the root".into()));
        };
        let missing = || {
            unsafe_link(format!(
                "hardlink target `{shown}` does not exist in the root"
            ))
        };
        let dir = resolve_dir(self.root, parents, Missing::Stop)
            .map_err(|refusal| refused(name_of, refusal))?
            .ok_or_else(missing)?;
        let target = dir.join(name);
        match fs::symlink_metadata(&target) {
            Ok(meta) if meta.is_dir() => Err(unsafe_link(format!(
                "hardlink target `{shown}` is a directory"
            ))),
            Ok(_) if target == dest => Err(unsafe_link("hardlink to itself".into())),
            Ok(_) => Ok(target),
            Err(_) => Err(missing()),
        }
    }

    fn own_and_xattrs(&self, dest: &Path, meta: &Meta) -> io::Result<()> {
        if self.opts.preserve_ownership {
            let uid = u32::try_from(meta.uid).map_err(|_| io::ErrorKind::InvalidData)?;
            let gid = u32::try_from(meta.gid).map_err(|_| io::ErrorKind::InvalidData)?;
            std::os::unix::fs::lchown(dest, Some(uid), Some(gid))?;
        }
        // After chown, which drops security.capability.
        for (name, value) in &meta.xattrs {
            if FORBIDDEN_XATTR_PREFIXES.iter().any(|p| name.starts_with(p)) {
                continue;
            }
            let privileged = PRIVILEGED_XATTR_PREFIXES
                .iter()
                .any(|p| name.starts_with(p));
            if privileged && !self.opts.preserve_ownership {
                continue;
            }
            xattr::set(dest, name, value)?;
        }
        Ok(())
    }

    /// `DIR/.wh.NAME`: delete `NAME` (Apply) or create an overlay whiteout (Overlay).
    fn whiteout(
        &mut self,
        parents: &[OsString],
        hidden: &OsStr,
        name_of: &str,
    ) -> Result<(), LayerError> {
        if hidden.is_empty() || hidden == "." || hidden == ".." {
            return Err(refused(
                name_of,
                Refusal::Unsafe("whiteout of an invalid name".into()),
            ));
        }
        let fail = |source| LayerError::Extract {
            entry: name_of.to_string(),
            source,
        };
        self.report.whiteouts += 1;
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                let Some(dir) = resolve_dir(self.root, parents, Missing::Stop)
                    .map_err(|refusal| refused(name_of, refusal))?
                else {
                    return Ok(()); // nothing below to hide
                };
                let target = dir.join(hidden);
                if !self.written.contains(&target) {
                    remove_existing(&target).map_err(fail)?;
                }
            }
            WhiteoutMode::Overlay => {
                let mut created = Vec::new();
                let dir = resolve_dir(self.root, parents, Missing::Create(&mut created))
                    .map_err(|refusal| refused(name_of, refusal))?
                    .expect("missing parents are created");
                self.implicit.extend(created.iter().cloned());
                self.written.extend(created);
                let target = dir.join(hidden);
                remove_existing(&target).map_err(fail)?;
                mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                    .map_err(|errno| fail(errno.into()))?;
                self.written.insert(target);
            }
        }
        Ok(())
    }

    /// `DIR/.wh..wh..opq`: clear what earlier layers put in DIR (Apply) or mark DIR opaque
    /// for overlayfs (Overlay).
    fn opaque(&mut self, parents: &[OsString], name_of: &str) -> Result<(), LayerError> {
        let fail = |source| LayerError::Extract {
            entry: name_of.to_string(),
            source,
        };
        self.report.whiteouts += 1;
        match self.opts.whiteouts {
            WhiteoutMode::Apply => {
                let Some(dir) = resolve_dir(self.root, parents, Missing::Stop)
                    .map_err(|refusal| refused(name_of, refusal))?
                else {
                    return Ok(());
                };
                self.clear_unwritten(&dir).map_err(fail)?;
            }
            WhiteoutMode::Overlay => {
                let mut created = Vec::new();
                let dir = resolve_dir(self.root, parents, Missing::Create(&mut created))
                    .map_err(|refusal| refused(name_of, refusal))?
                    .expect("missing parents are created");
                self.implicit.extend(created.iter().cloned());
                self.written.extend(created);
                xattr::set(&dir, OVERLAY_OPAQUE_XATTR, b"y").map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Removes everything below `dir` that this extraction did not write.
    fn clear_unwritten(&self, dir: &Path) -> io::Result<()> {
        for child in fs::read_dir(dir)? {
            let path = child?.path();
            if self.written.contains(&path) {
                if fs::symlink_metadata(&path)?.is_dir() {
                    self.clear_unwritten(&path)?;
                }
            } else {
                remove_existing(&path)?;
            }
        }
        Ok(())
    }

    /// Directory modes and mtimes, deepest first, once nothing more is written below them.
    /// Each directory is reopened beneath the root with no symlink followed: a later entry
    /// may have replaced one of its parents with a symlink (`etc/` then `etc -> /etc`),
    /// and a path-based chmod would then change the host's directory.
    fn finish_dirs(&mut self) -> Result<(), LayerError> {
        let root = crate::beneath::open_root(self.root).map_err(super::io_err(self.root))?;
        for (path, dir) in self.dirs.iter().rev() {
            let fail = |source| LayerError::Extract {
                entry: dir.entry.clone(),
                source,
            };
            let Ok(relative) = path.strip_prefix(self.root) else {
                continue;
            };
            let file = match crate::beneath::open(&root, relative, crate::beneath::Kind::Dir) {
                Ok(file) => file,
                // Replaced, whited out, or now reached through a symlink: not ours to touch.
                Err(err) if crate::beneath::not_there(&err) => continue,
                Err(err) => return Err(fail(err)),
            };
            file.set_permissions(fs::Permissions::from_mode(dir.mode))
                .map_err(fail)?;
            set_fd_mtime(&file, dir.mtime).map_err(fail)?;
        }
        Ok(())
    }
}

/// Sets atime and mtime through a descriptor.
fn set_fd_mtime(file: &fs::File, mtime: u64) -> io::Result<()> {
    let seconds = i64::try_from(mtime).map_err(|_| io::ErrorKind::InvalidData)?;
    let time = TimeSpec::new(seconds, 0);
    nix::sys::stat::futimens(file, &time, &time).map_err(io::Error::from)
}

fn refused(entry: &str, refusal: Refusal) -> LayerError {
    match refusal {
        Refusal::Unsafe(reason) => LayerError::UnsafeEntry {
            entry: entry.to_string(),
            reason,
        },
        Refusal::Io(source) => LayerError::Extract {
            entry: entry.to_string(),
            source,
        },
    }
}

/// Removes whatever is at `path` (never following a symlink); nothing there is fine.
fn remove_existing(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}

/// Sets atime and mtime of `path` itself (a symlink is not followed).
fn set_mtime(path: &Path, mtime: u64) -> io::Result<()> {
    let seconds = i64::try_from(mtime).map_err(|_| io::ErrorKind::InvalidData)?;
    let time = TimeSpec::new(seconds, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .map_err(io::Error::from)
}
