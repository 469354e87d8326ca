//! The narrow door to the cgroup filesystem: [`CgroupFs`] (five operations and a directory
//! listing), [`RealFs`] for the kernel, and [`CgroupEvent`], what the observer sees.
//! Nothing here knows what the files mean.

use std::fmt;
use std::io::{self, Write};
use std::path::Path;

/// Every operation kiln does on a cgroup filesystem. Implementations return the raw
/// `io::Error`; callers attach the path and an explanation.
pub trait CgroupFs: fmt::Debug + Send + Sync {
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<String>;
    /// Writes `value` in one `write(2)` to an existing file (cgroup files take one value
    /// per write; they are never created).
    fn write(&self, path: &Path, value: &str) -> io::Result<()>;
    /// Creates one directory (not its parents). `AlreadyExists` when it exists.
    fn mkdir(&self, path: &Path) -> io::Result<()>;
    /// Removes one empty directory. On cgroupfs a cgroup's interface files do not count.
    fn rmdir(&self, path: &Path) -> io::Result<()>;
    fn exists(&self, path: &Path) -> bool;
    /// The names of the subdirectories of `path` (child cgroups), in no particular order.
    fn subdirs(&self, path: &Path) -> io::Result<Vec<String>>;
}

/// The kernel's cgroup filesystem, through `std::fs`.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl CgroupFs for RealFs {
    fn read(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        // O_TRUNC is ignored by cgroupfs but keeps a plain-file fake tree truthful.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)?;
        let written = file.write(value.as_bytes())?;
        if written != value.len() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", value.len()),
            ));
        }
        Ok(())
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir(path)
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    }
}

/// A change about to be made to the cgroup filesystem (reads are not reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupEvent<'a> {
    Mkdir(&'a Path),
    Write { path: &'a Path, value: &'a str },
    Rmdir(&'a Path),
}

impl fmt::Display for CgroupEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupEvent::Mkdir(path) => write!(f, "mkdir {}", path.display()),
            CgroupEvent::Write { path, value } => {
                write!(f, "echo {:?} > {}", value.trim_end(), path.display())
            }
            CgroupEvent::Rmdir(path) => write!(f, "rmdir {}", path.display()),
        }
    }
}
