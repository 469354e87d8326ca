//! Entries → tar → compressed stream, hashing both sides in one pass: the uncompressed tar
//! gives the layer's diff_id, the bytes written out give its digest.
//!
//! The compressor is fed fixed-size blocks, whatever sizes reads and header writes have:
//! deflate (zlib-rs) output depends on how its input is split across calls, so the split
//! must be a function of the tar bytes alone.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};
use tar::EntryType;

use super::compress::{Compression, Encoder};
use super::entries::{Content, Entries, Entry, EntryKind};
use super::header::{self, Member};
use super::{LayerError, OPAQUE_MARKER, WHITEOUT_PREFIX, io_err};
use crate::digest::Digest;

/// Buffer for copying file content into the tar stream.
const COPY_BUFFER: usize = 256 * 1024;
/// The size of every block handed to the compressor (the last one may be shorter).
const COMPRESS_BLOCK: usize = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteOptions {
    pub compression: Compression,
    /// The mtime of every entry (seconds since the epoch); `SOURCE_DATE_EPOCH`, default 0.
    pub source_date_epoch: u64,
    /// Leave out the parent directories [`Entries::insert`] added by itself: applied over
    /// lower layers, the directories keep the metadata those layers gave them (a `copy` into
    /// `/tmp/x` must not turn `/tmp` into 0755 root:root); extractors create missing parents.
    pub skip_implicit_dirs: bool,
}

/// The identity of a written layer, as the image config and manifest need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    /// sha256 of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// sha256 of the bytes written out (the manifest's layer digest).
    pub digest: Digest,
    /// Bytes written out.
    pub size: u64,
    /// Bytes of the uncompressed tar.
    pub uncompressed_size: u64,
    pub compression: Compression,
}

impl LayerInfo {
    pub fn media_type(&self) -> &'static str {
        self.compression.media_type()
    }
}

/// Writes `entries` as a reproducible tar, compressed as `opts` says, to `out`.
///
/// The bytes depend only on the entries (paths, kinds, metadata, content) and `opts`.
/// Host files are read now; one whose size differs from the scanned size is an error.
/// Hardlinks must point to an earlier non-directory entry.
pub fn write(
    entries: &Entries,
    opts: &WriteOptions,
    out: impl Write,
) -> Result<LayerInfo, LayerError> {
    let mut tar = Pipeline::new(opts.compression, out).map_err(LayerError::Output)?;
    let mut buffer = vec![0u8; COPY_BUFFER];
    for (path, entry) in entries.iter() {
        if opts.skip_implicit_dirs && entries.is_implicit(path) {
            continue;
        }
        write_entry(&mut tar, entries, path, entry, opts, &mut buffer)?;
    }
    tar.write_all(&[0u8; 2 * header::BLOCK])
        .map_err(LayerError::Output)?;
    tar.finish().map_err(LayerError::Output)
}

/// The byte path of a layer: tar bytes are hashed (diff_id), cut into fixed-size blocks,
/// compressed, hashed again (digest) and written out.
pub(super) struct Pipeline<W: Write> {
    tar: Hashing<Blocks<Encoder<Hashing<W>>>>,
    compression: Compression,
}

impl<W: Write> Pipeline<W> {
    pub(super) fn new(compression: Compression, out: W) -> io::Result<Pipeline<W>> {
        let encoder = Encoder::new(compression, Hashing::new(out))?;
        Ok(Pipeline {
            tar: Hashing::new(Blocks::new(encoder)),
            compression,
        })
    }

    /// Ends the compressed stream, flushes `out` and returns the layer's identity.
    pub(super) fn finish(self) -> io::Result<LayerInfo> {
        let Hashing {
            inner: blocks,
            hasher,
            count: uncompressed_size,
        } = self.tar;
        let mut compressed = blocks.finish()?.finish()?;
        compressed.inner.flush()?;
        Ok(LayerInfo {
            diff_id: Digest::from_hasher(hasher),
            digest: Digest::from_hasher(compressed.hasher),
            size: compressed.count,
            uncompressed_size,
            compression: self.compression,
        })
    }
}

impl<W: Write> Write for Pipeline<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tar.write(buf)
    }

    /// Does nothing: a flush inside the compressed stream would change its bytes.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Passes bytes on in blocks of exactly [`COMPRESS_BLOCK`] bytes (the last may be shorter).
struct Blocks<W> {
    inner: W,
    block: Vec<u8>,
}

impl<W: Write> Blocks<W> {
    fn new(inner: W) -> Blocks<W> {
        Blocks {
            inner,
            block: Vec::with_capacity(COMPRESS_BLOCK),
        }
    }

    fn finish(mut self) -> io::Result<W> {
        if !self.block.is_empty() {
            self.inner.write_all(&self.block)?;
        }
        Ok(self.inner)
    }
}

impl<W: Write> Write for Blocks<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let taken = buf.len().min(COMPRESS_BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..taken]);
        if self.block.len() == COMPRESS_BLOCK {
            self.inner.write_all(&self.block)?;
            self.block.clear();
        }
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_entry(
    tar: &mut impl Write,
    entries: &Entries,
    path: &str,
    entry: &Entry,
    opts: &WriteOptions,
    buffer: &mut [u8],
) -> Result<(), LayerError> {
    let mut member = Member {
        path,
        kind: EntryType::Regular,
        mode: entry.mode,
        uid: entry.uid,
        gid: entry.gid,
        size: 0,
        mtime: opts.source_date_epoch,
        link: None,
        device: None,
        xattrs: &entry.xattrs,
    };
    let dir_path;
    let whiteout_path;
    let link_text;
    match &entry.kind {
        EntryKind::File(content) => {
            member.size = content.size();
            emit(tar, &member)?;
            match content {
                Content::Bytes(bytes) => tar.write_all(bytes).map_err(LayerError::Output)?,
                Content::Host { .. } | Content::Beneath { .. } => {
                    copy_host_file(tar, content, buffer)?
                }
            }
            let padding = header::padding(member.size);
            return tar
                .write_all(&[0u8; header::BLOCK][..padding])
                .map_err(LayerError::Output);
        }
        EntryKind::Dir | EntryKind::OpaqueDir => {
            dir_path = format!("{path}/");
            member.path = &dir_path;
            member.kind = EntryType::Directory;
        }
        EntryKind::Symlink(target) => {
            link_text = target.to_str().ok_or_else(|| LayerError::NotUtf8 {
                path: target.clone(),
            })?;
            member.kind = EntryType::Symlink;
            member.link = Some(link_text);
        }
        EntryKind::Hardlink(target) => {
            let valid = target.as_str() < path
                && entries
                    .get(target)
                    .is_some_and(|t| !t.kind.is_dir() && t.kind != EntryKind::Whiteout);
            if !valid {
                return Err(LayerError::BadHardlink {
                    path: path.to_string(),
                    target: target.clone(),
                });
            }
            member.kind = EntryType::Link;
            member.link = Some(target);
        }
        EntryKind::CharDevice { major, minor } => {
            member.kind = EntryType::Char;
            member.device = Some((*major, *minor));
        }
        EntryKind::BlockDevice { major, minor } => {
            member.kind = EntryType::Block;
            member.device = Some((*major, *minor));
        }
        EntryKind::Fifo => member.kind = EntryType::Fifo,
        EntryKind::Whiteout => {
            let (parent, name) = match path.rsplit_once('/') {
                Some((parent, name)) => (format!("{parent}/"), name),
                None => (String::new(), path),
            };
            whiteout_path = format!("{parent}{WHITEOUT_PREFIX}{name}");
            member.path = &whiteout_path;
        }
    }
    emit(tar, &member)?;
    if entry.kind == EntryKind::OpaqueDir {
        // Right after its directory, before any child: readers that apply entries in order
        // must not clear what this layer adds.
        let marker = format!("{path}/{OPAQUE_MARKER}");
        let no_xattrs = Default::default();
        emit(
            tar,
            &Member {
                path: &marker,
                kind: EntryType::Regular,
                mode: 0,
                uid: 0,
                gid: 0,
                size: 0,
                mtime: opts.source_date_epoch,
                link: None,
                device: None,
                xattrs: &no_xattrs,
            },
        )?;
    }
    Ok(())
}

fn emit(tar: &mut impl Write, member: &Member<'_>) -> Result<(), LayerError> {
    tar.write_all(&header::encode(member))
        .map_err(LayerError::Output)
}

/// Copies exactly `content.size()` bytes of the host file `content` names, failing if it
/// is shorter or longer: the header already declared the size.
fn copy_host_file(
    tar: &mut impl Write,
    content: &Content,
    buffer: &mut [u8],
) -> Result<(), LayerError> {
    let size = content.size();
    let shown = content.shown().unwrap_or_default();
    let path = shown.as_path();
    // Non-blocking: a file swapped for a FIFO since the scan (a running container's upper
    // directory) must not hang the writer; it is refused just below, as is a device.
    let mut file = content.open().expect("a host file").map_err(io_err(path))?;
    let meta = file.metadata().map_err(io_err(path))?;
    if !meta.is_file() {
        return Err(LayerError::Io {
            path: path.to_path_buf(),
            source: io::Error::other("it is no longer a regular file"),
        });
    }
    let actual = meta.len();
    let changed = |actual| LayerError::HostFileChanged {
        path: path.to_path_buf(),
        expected: size,
        actual,
    };
    if actual != size {
        return Err(changed(actual));
    }
    let mut left = size;
    while left > 0 {
        let want = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        let read = match file.read(&mut buffer[..want]) {
            Ok(0) => return Err(changed(size - left)),
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(io_err(path)(error)),
        };
        tar.write_all(&buffer[..read]).map_err(LayerError::Output)?;
        left -= read as u64;
    }
    let mut probe = [0u8; 1];
    if file.read(&mut probe).map_err(io_err(path))? != 0 {
        let actual = file.metadata().map_err(io_err(path))?.len();
        return Err(changed(actual.max(size + 1)));
    }
    Ok(())
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Hashing<W> {
        Hashing {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Compresses a whole uncompressed tar stream as `compression`, exactly as [`write`] would
/// have compressed the same tar bytes (same fixed blocks, same settings): recompressing a
/// stored layer for export gives the blob a fresh build would have made.
pub fn compress_stream(
    tar: &mut dyn io::Read,
    compression: Compression,
    out: &mut dyn Write,
) -> io::Result<()> {
    let encoder = Encoder::new(compression, out)?;
    let mut blocks = Blocks::new(encoder);
    io::copy(tar, &mut blocks)?;
    blocks.finish()?.finish()?;
    Ok(())
}
