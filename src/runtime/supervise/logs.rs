//! A container's log: one JSON object per line of output, `{"time_ns": nanoseconds since
//! the epoch, "stream": "stdout"|"stderr", "line": …}`, appended by the supervisor and read
//! by `kiln logs` (with `--since` and `-f`). Lines that do not end (a process that prints no
//! newline) are flushed as they are when the stream ends. The log is capped and rotated
//! (`rotate`); the reader reads its files in order and follows it across a rotation.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::rotate::{self, LogLimits, Rotating};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Nanoseconds since the Unix epoch (sorts and compares without parsing).
    pub time_ns: u128,
    pub stream: Stream,
    pub line: String,
}

impl LogLine {
    /// `2026-11-30T10:00:00.123456789Z`
    pub fn timestamp(&self) -> String {
        crate::timestamp::rfc3339_nanos(self.time_ns)
    }
}

/// Appends lines to a log, rotating it within its limits.
pub struct LogWriter {
    file: Rotating,
}

impl LogWriter {
    pub fn open(path: &Path, limits: LogLimits) -> io::Result<LogWriter> {
        Ok(LogWriter {
            file: Rotating::open(path, limits)?,
        })
    }

    /// One write per line, so a reader never sees half a record (appends of one
    /// `write(2)` to a regular file do not interleave).
    pub fn append(&mut self, stream: Stream, line: &[u8]) -> io::Result<()> {
        let record = LogLine {
            time_ns: crate::timestamp::now_ns(),
            stream,
            line: String::from_utf8_lossy(line).into_owned(),
        };
        let mut bytes = serde_json::to_vec(&record).expect("a log line serializes");
        bytes.push(b'\n');
        self.file.write_record(&bytes)
    }
}

/// Reads a log from its oldest file on, then (when following) as it grows, across
/// rotations.
pub struct LogReader {
    path: PathBuf,
    /// The files still to read, oldest first, with their inode numbers; the last is the
    /// live one as it was when opened.
    files: VecDeque<(BufReader<File>, u64)>,
    partial: String,
}

impl LogReader {
    /// Opens every file of the log at `path`; `NotFound` when it has none yet.
    pub fn open(path: &Path) -> io::Result<LogReader> {
        let files = open_files(path)?;
        if files.is_empty() {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        Ok(LogReader {
            path: path.to_path_buf(),
            files,
            partial: String::new(),
        })
    }

    /// The next complete record, `None` at the current end of the log. Records that do
    /// not parse (a torn last line after a crash) are skipped.
    pub fn next_line(&mut self) -> io::Result<Option<LogLine>> {
        loop {
            let Some((reader, _)) = self.files.front_mut() else {
                return Ok(None);
            };
            let mut text = String::new();
            let n = reader.read_line(&mut text)?;
            if n == 0 {
                if self.files.len() > 1 {
                    // A rotated file is complete: on to the next.
                    self.files.pop_front();
                    self.partial.clear();
                    continue;
                }
                if self.rotated()? {
                    continue;
                }
                return Ok(None);
            }
            if !text.ends_with('\n') {
                // Written but not finished: keep it and try again later.
                self.partial.push_str(&text);
                return Ok(None);
            }
            let whole = std::mem::take(&mut self.partial) + &text;
            if let Ok(line) = serde_json::from_str::<LogLine>(whole.trim_end()) {
                return Ok(Some(line));
            }
        }
    }

    /// At the end of the live file: whether the writer has rotated it since it was opened
    /// (the files made since are queued behind it, in order, and read once its own end is)
    /// or it was emptied in place (by someone else: read again from its start).
    fn rotated(&mut self) -> io::Result<bool> {
        let Some((reader, inode)) = self.files.back_mut() else {
            return Ok(false);
        };
        let inode = *inode;
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(err) => return Err(err),
        };
        if meta.ino() == inode {
            if meta.len() < reader.stream_position()? {
                reader.seek(SeekFrom::Start(0))?;
                self.partial.clear();
                return Ok(true);
            }
            return Ok(false);
        }
        // Every file newer than ours: those after it in the chain, or all of them when
        // ours has been deleted meanwhile (what it held after our last read is lost).
        let mut all = open_files(&self.path)?;
        if let Some(ours) = all.iter().position(|(_, i)| *i == inode) {
            all.drain(..=ours);
        }
        let found = !all.is_empty();
        self.files.extend(all);
        Ok(found)
    }

    /// Skips to the end (for `kiln logs -f --tail 0`).
    pub fn seek_end(&mut self) -> io::Result<()> {
        while self.files.len() > 1 {
            self.files.pop_front();
        }
        self.partial.clear();
        match self.files.front_mut() {
            Some((reader, _)) => reader.seek(SeekFrom::End(0)).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The files of the log at `path` as they are now, oldest first, each with its inode.
/// They are opened newest first, so that a rotation meanwhile shows as one file seen
/// twice (skipped) rather than a file missed.
fn open_files(path: &Path) -> io::Result<VecDeque<(BufReader<File>, u64)>> {
    let mut files: VecDeque<(BufReader<File>, u64)> = VecDeque::new();
    for name in rotate::files(path).iter().rev() {
        let file = match File::open(name) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let inode = file.metadata()?.ino();
        if files.iter().all(|(_, i)| *i != inode) {
            files.push_front((BufReader::new(file), inode));
        }
    }
    Ok(files)
}
