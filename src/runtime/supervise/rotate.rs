//! Size-capped, rotated logs, as Docker's json-file and local drivers keep them: the live
//! file (`log.jsonl`) grows to `max-size`, then becomes `log.jsonl.1` (the one before that
//! `log.jsonl.2`, …) and a new live file starts; with `max-file` files in all, the oldest
//! is deleted. A log never takes more than `max-size` × `max-file` (plus one record).
//!
//! It owns the file names and the rotation; the records' format is `logs`'s, and reading
//! across the files is `LogReader`'s.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// How large a container's log may grow: `--log-opt max-size=… --log-opt max-file=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLimits {
    /// Bytes in one file before it rotates; `None`: never rotate (Docker's `max-size=-1`).
    pub max_size: Option<u64>,
    /// Files kept, the live one included (1: a full file is deleted and a new one begun).
    pub max_files: u32,
}

impl LogLimits {
    /// kiln's default cap: 10 MiB × 3 files, 30 MiB per container at most.
    pub const DEFAULT: LogLimits = LogLimits {
        max_size: Some(10 * 1024 * 1024),
        max_files: 3,
    };
}

impl Default for LogLimits {
    fn default() -> LogLimits {
        LogLimits::DEFAULT
    }
}

/// Rotated generation `n` of the log at `path` (1 is the newest): `log.jsonl.1`.
pub fn generation(path: &Path, n: u32) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{n}"));
    path.with_file_name(name)
}

/// The rotated generations of the log at `path` that exist, newest first, by number.
fn generations(path: &Path) -> Vec<(u32, PathBuf)> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let n: u32 = file_name.strip_prefix(&prefix)?.parse().ok()?;
            (n > 0).then(|| (n, entry.path()))
        })
        .collect();
    found.sort();
    found
}

/// Every file of the log at `path`, oldest first: the rotated ones, then the live one
/// (whether or not it exists now).
pub fn files(path: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = generations(path)
        .into_iter()
        .rev()
        .map(|(_, p)| p)
        .collect();
    files.push(path.to_path_buf());
    files
}

/// The live file of a log, rotated before a record would take it past its size.
pub struct Rotating {
    path: PathBuf,
    limits: LogLimits,
    file: File,
    size: u64,
}

impl Rotating {
    /// Opens (or creates) the live file for appending; generations beyond `max-file` (the
    /// limits were lowered since) are deleted.
    pub fn open(path: &Path, limits: LogLimits) -> io::Result<Rotating> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        for (n, old) in generations(path) {
            if n >= limits.max_files.max(1) {
                remove(&old)?;
            }
        }
        Ok(Rotating {
            path: path.to_path_buf(),
            limits,
            file,
            size,
        })
    }

    /// Appends one whole record with one `write(2)` (readers never see half of one),
    /// rotating first when it would not fit.
    pub fn write_record(&mut self, record: &[u8]) -> io::Result<()> {
        let len = record.len() as u64;
        if let Some(max) = self.limits.max_size
            && self.size > 0
            && self.size + len > max
        {
            self.rotate()?;
        }
        self.file.write_all(record)?;
        self.size += len;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let last = self.limits.max_files.max(1) - 1;
        if last > 0 {
            remove(&generation(&self.path, last))?;
            for n in (1..last).rev() {
                match fs::rename(generation(&self.path, n), generation(&self.path, n + 1)) {
                    Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
                    _ => {}
                }
            }
        }
        // Renamed, never emptied in place: a reader holding the file reads it to its end,
        // then finds the new one by its name.
        fs::rename(&self.path, generation(&self.path, 1))?;
        if last == 0 {
            // One file (Docker's max-file=1): the full one goes.
            remove(&generation(&self.path, 1))?;
        }
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn remove(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}
