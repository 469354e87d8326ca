//! Atomic file replacement: write a temporary file beside the target, rename it over the
//! target. Readers see the old file or the new one, never a part; a crash leaves at most a
//! stray temporary file (named by `temp_name`), which `gc` removes.
//!
//! Two strengths: [`write_durably`] fsyncs the file and its directory (the store's blobs and
//! indexes, network records, pid files: state nothing else can tell again), [`replace`] does
//! not (container records and the files kiln writes into a container's world, which the
//! kernel can tell again: fsync's milliseconds would sit on a container's start).
//!
//! A leaf of the module graph, so that the store, container state, networks and projects
//! share one discipline without depending on each other. It owns only how bytes reach a
//! path; it must not know what the files mean.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name for a temporary file unique to this process and call.
pub(crate) fn temp_name(prefix: &str) -> String {
    format!(
        ".{prefix}-{}-{}.tmp",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes a rename or a new file in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably (temp file, fsync, rename, fsync of
/// the directory).
pub fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(temp_name("write"));
    let result = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Replaces `path` with `bytes` with a temp file and a rename, without fsync: readers never
/// see a torn file, but a power cut may lose the last version.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let temp = dir.join(temp_name("replace"));
    let result = fs::write(&temp, bytes).and_then(|()| fs::rename(&temp, path));
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}
