//! OCI layer tarballs: an in-memory list of entries, built from a directory tree or an
//! overlayfs upper directory, written as a bit-for-bit reproducible tar (zstd, gzip or plain)
//! with both OCI digests computed in one pass, and read back by a safe extractor.
//!
//! Owns the tar format, whiteouts, compression and layer digests. It must not know about
//! kiln.kdl, the store or images: callers hand it paths and byte sinks, and get digests back.
//!
//! # Reproducibility
//! [`write`] emits entries in sorted path order (parents before children), every mtime set
//! to [`WriteOptions::source_date_epoch`], no atime/ctime, empty user and group names, exact
//! mode/uid/gid. Headers are POSIX ustar; a PAX extended header (named
//! `PaxHeaders/<basename>`) is added only when a field does not fit ustar (long or
//! non-ASCII paths and link targets, uid/gid above 2097151, files of 8 GiB or more) or the
//! entry has xattrs (`SCHILY.xattr.*`). Numeric fields that overflow octal also get GNU
//! base-256 encoding, so readers without PAX support still see the right value.
//!
//! Gzip (zlib-rs backend) has level 6, mtime 0, no file name, OS byte 255. zstd has level 3,
//! no checksum, no content size, and runs in its single-threaded mode, so the core count
//! cannot leak into the bytes; parallelism comes from writing independent layers at once.
//! (zstd's multithreaded mode is also deterministic and independent of the worker count, but
//! its bytes differ from single-threaded mode and it measured slower on 2 cores: choosing it
//! later would change every zstd layer digest.) Neither compressor's output depends on the
//! CPU's features; both depend on the library versions Cargo.lock pins, so upgrading zstd or
//! zlib-rs must be treated as a change of layer bytes.
//!
//! # Extraction
//! [`extract`] resolves every parent path inside the root and follows symlinks only while
//! they stay inside: relative in-root links (`lib -> usr/lib`) work, but a parent that is an
//! absolute symlink (`var/run -> /run`) is refused rather than reinterpreted relative to the
//! root, as are links whose `..` climb above it. Entries never follow a symlink at their own
//! final component: an existing entry is removed and replaced.
//!
//! # Index
//! [`ImageIndex`] reads a stack of layers as metadata only (no file is written): the merged
//! tree a build step decides against (is `/srv` a directory already? what does `/bin`
//! link to?), with symbolic links resolved inside the image.
//!
//! # Paths
//! Entry paths are UTF-8, relative, `/`-separated, without `.` or `..`; names starting with
//! `.wh.` are reserved for whiteouts. Host names that are not UTF-8 are an error when
//! scanning. The extractor accepts any bytes.

mod compress;
mod entries;
mod extract;
mod header;
mod index;
mod resolve;
mod scan;
mod write;

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;

use std::io;
use std::path::PathBuf;

pub use compress::{Compression, decompressing_reader};
pub use entries::{Content, Entries, Entry, EntryKind, Tree, normalize_path};
pub use extract::{ExtractOptions, ExtractReport, WhiteoutMode, extract};
pub use index::{CAPTURED, ImageIndex, IndexKind, IndexNode, SymlinkLoop};
pub use scan::ScanOptions;
pub use write::{LayerInfo, WriteOptions, compress_stream, write};

/// Media type of an uncompressed layer.
pub const MEDIA_TYPE_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// Media type of a gzip-compressed layer.
pub const MEDIA_TYPE_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Media type of a zstd-compressed layer.
pub const MEDIA_TYPE_TAR_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Prefix of an OCI whiteout file: `.wh.NAME` deletes `NAME` from lower layers.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Name of the OCI marker that makes its directory opaque (hides all lower content).
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";

/// The diff_id of a layer without entries: the tar [`write`] makes of empty [`Entries`] (its
/// end-of-archive blocks, 1024 zero bytes), the well-known empty layer of Docker and OCI.
pub fn empty_diff_id() -> crate::digest::Digest {
    crate::digest::Digest::of(&[0u8; 1024])
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum LayerError {
    #[error("layer I/O failed at {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot write the layer stream")]
    Output(#[source] io::Error),

    #[error("cannot read the layer archive")]
    Archive(#[source] io::Error),

    #[error("invalid layer path `{path}`: {reason}")]
    InvalidPath { path: String, reason: &'static str },

    #[error("{} has a name that is not UTF-8", path.display())]
    #[diagnostic(help("kiln layers only hold UTF-8 names; rename the file"))]
    NotUtf8 { path: PathBuf },

    #[error("cannot add `{path}`: `{parent}` is not a directory")]
    ParentNotDir { path: String, parent: String },

    #[error("cannot replace directory `{path}` with a non-directory: it has entries below it")]
    DirNotEmpty { path: String },

    #[error("hardlink `{path}` points to `{target}`, which is not an earlier non-directory entry")]
    BadHardlink { path: String, target: String },

    #[error("{} changed while the layer was written (scanned {expected} bytes, found {actual})", path.display())]
    #[diagnostic(help("something modified the file during the build; run the build again"))]
    HostFileChanged {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    #[error("refusing to extract `{entry}`: {reason}")]
    #[diagnostic(help(
        "the archive is malformed or hostile; nothing was written outside the extraction root"
    ))]
    UnsafeEntry { entry: String, reason: String },

    #[error("refusing to extract device node `{entry}`")]
    #[diagnostic(help("device nodes are only extracted when explicitly allowed"))]
    DeviceNotAllowed { entry: String },

    #[error("cannot extract `{entry}`: unsupported tar entry type `{}`", *kind as char)]
    UnsupportedEntry { entry: String, kind: u8 },

    #[error("cannot extract `{entry}`")]
    Extract {
        entry: String,
        #[source]
        source: io::Error,
    },
}

pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> LayerError {
    let path = path.into();
    move |source| LayerError::Io { path, source }
}
