//! The narrow door to the cgroup filesystem: [`CgroupFs`] (five file operations, a
//! directory listing, and attaching a device program to a cgroup), [`RealFs`] for the
//! kernel, and [`CgroupEvent`], what the observer sees. Nothing here knows what the files
//! mean or what the program says.

use std::fmt;
use std::io::{self, Write};
use std::os::fd::AsFd;
use std::path::Path;

use super::DeviceRule;
use crate::runtime::ebpf::{BpfError, Insn, sys};

/// The name kiln's device programs carry (`bpftool prog` shows it).
pub const DEVICE_PROGRAM_NAME: &str = "kiln_devices";

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
    /// Loads `program` as a `BPF_CGROUP_DEVICE` program and attaches it to the cgroup
    /// directory `dir` (in a cgroup2 hierarchy) with `BPF_F_ALLOW_MULTI`; the attachment
    /// keeps it, nothing is pinned. Returns the program's id.
    fn attach_device_program(&self, dir: &Path, program: &[Insn]) -> Result<u32, BpfError>;
    /// The ids of the device programs attached to `dir` itself.
    fn device_programs(&self, dir: &Path) -> Result<Vec<u32>, BpfError>;
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

    fn attach_device_program(&self, dir: &Path, program: &[Insn]) -> Result<u32, BpfError> {
        let cgroup = open_dir(dir)?;
        let loaded = sys::load_cgroup_device(program, DEVICE_PROGRAM_NAME)?;
        sys::attach_cgroup_device(cgroup.as_fd(), loaded.as_fd())?;
        // Our descriptor goes; the attachment keeps the program.
        Ok(sys::program_info(loaded.as_fd())?.id)
    }

    fn device_programs(&self, dir: &Path) -> Result<Vec<u32>, BpfError> {
        sys::query_cgroup_device(open_dir(dir)?.as_fd())
    }
}

/// A cgroup directory, open for bpf(2).
fn open_dir(dir: &Path) -> Result<std::fs::File, BpfError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY)
        .open(dir)
        .map_err(|source| BpfError::new("open the cgroup", source))
}

/// A change about to be made to the cgroup filesystem (reads are not reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupEvent<'a> {
    Mkdir(&'a Path),
    Write {
        path: &'a Path,
        value: &'a str,
    },
    Rmdir(&'a Path),
    /// A device program of `instructions` made from `rules` is loaded and attached to
    /// `dir`.
    AttachDeviceProgram {
        dir: &'a Path,
        rules: &'a [DeviceRule],
        instructions: usize,
    },
    /// The device program could not be attached to `dir`, and the v1 rules stand alone.
    DeviceProgramSkipped {
        dir: &'a Path,
        reason: &'a str,
    },
}

impl fmt::Display for CgroupEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CgroupEvent::Mkdir(path) => write!(f, "mkdir {}", path.display()),
            CgroupEvent::Write { path, value } => {
                write!(f, "echo {:?} > {}", value.trim_end(), path.display())
            }
            CgroupEvent::Rmdir(path) => write!(f, "rmdir {}", path.display()),
            CgroupEvent::AttachDeviceProgram {
                dir,
                rules,
                instructions,
            } => {
                let rules: Vec<String> = rules.iter().map(ToString::to_string).collect();
                write!(
                    f,
                    "bpf: load a cgroup device program ({instructions} instructions) and attach it to {}: allow {}; deny every other device",
                    dir.display(),
                    rules.join(", ")
                )
            }
            CgroupEvent::DeviceProgramSkipped { dir, reason } => write!(
                f,
                "bpf: no device program on {} ({reason}); the v1 device rules apply",
                dir.display()
            ),
        }
    }
}
