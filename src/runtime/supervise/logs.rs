//! A container's log: one JSON object per line of output, `{"time_ns": nanoseconds since
//! the epoch, "stream": "stdout"|"stderr", "line": …}`, appended by the supervisor and read
//! by `kiln logs` (with `--since` and `-f`). Lines that do not end (a process that prints no
//! newline) are flushed as they are when the stream ends.

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

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

/// Appends lines to a log file.
pub struct LogWriter {
    file: File,
}

impl LogWriter {
    pub fn open(path: &Path) -> io::Result<LogWriter> {
        Ok(LogWriter {
            file: OpenOptions::new().create(true).append(true).open(path)?,
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
        self.file.write_all(&bytes)
    }
}

/// Reads a log file from the start, then (when following) as it grows.
pub struct LogReader {
    reader: BufReader<File>,
    partial: String,
}

impl LogReader {
    pub fn open(path: &Path) -> io::Result<LogReader> {
        Ok(LogReader {
            reader: BufReader::new(File::open(path)?),
            partial: String::new(),
        })
    }

    /// The next complete record, `None` at the current end of the file. Records that do
    /// not parse (a torn last line after a crash) are skipped.
    pub fn next_line(&mut self) -> io::Result<Option<LogLine>> {
        loop {
            let mut text = String::new();
            let n = self.reader.read_line(&mut text)?;
            if n == 0 {
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

    /// Skips to the end (for `kiln logs -f --tail 0`).
    pub fn seek_end(&mut self) -> io::Result<()> {
        self.reader.seek(SeekFrom::End(0)).map(|_| ())
    }
}
