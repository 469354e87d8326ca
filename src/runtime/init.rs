//! `--init`: kiln's own init as the container's pid 1 (`init/pid1.rs`, compiled by
//! `build.rs` into a static executable of a few KiB without libc, so that it runs in any
//! image, and embedded here). This file makes the copy the container executes: a memfd,
//! sealed against any change (`F_SEAL_WRITE`, `F_SEAL_SHRINK`, `F_SEAL_GROW`,
//! `F_SEAL_SEAL`), as runc runs itself from a sealed copy since CVE-2019-5736.
//!
//! Why a sealed copy and not a file: the init runs in the container for the container's
//! whole life, and `/proc/1/exe` there opens whatever it was executed from. Executed from
//! a file of the host (or a bind mount of one, Docker's way with docker-init), root in the
//! container could write to it through `/proc/1/exe` whenever it is not busy and so
//! change what later containers run, or, were it kiln's own binary, kiln itself. A sealed
//! memfd is nobody's file: no write, no truncate, whatever the container's capabilities,
//! and it goes away with its last user. Embedded, it cannot go missing or be swapped on
//! the host between kiln's start and the container's.
//!
//! It never runs anything; the runtime's exec step does (`SetupStep::ExecInit`).

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use nix::libc;

use super::SandboxError;

/// The init's name: argv[0] in the container, the memfd's name, its `comm`.
pub const NAME: &str = "kiln-init";

/// The init's executable, as `build.rs` compiled it.
pub const EXECUTABLE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/kiln-init"));

/// A sealed in-memory copy of the init, close-on-exec, ready for execveat(2).
pub fn sealed_copy() -> Result<OwnedFd, SandboxError> {
    let error = |source: io::Error| SandboxError::Init { source };
    let mut copy = File::from(memfd(NAME).map_err(error)?);
    copy.write_all(EXECUTABLE).map_err(error)?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: fcntl(2) on a descriptor we own, with integer arguments.
    if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(error(io::Error::last_os_error()));
    }
    Ok(OwnedFd::from(copy))
}

/// `MFD_EXEC` (Linux 6.3): executable even where `vm.memfd_noexec` makes memfds
/// non-executable by default; older kernels refuse the flag and make them executable.
const MFD_EXEC: libc::c_uint = 0x10;

fn memfd(name: &str) -> io::Result<OwnedFd> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    let flags = libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING;
    for extra in [MFD_EXEC, 0] {
        // SAFETY: a valid C string and integer flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags | extra) };
        if fd >= 0 {
            // SAFETY: memfd_create returned a new descriptor that nothing else owns.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::EINVAL) {
            return Err(error);
        }
    }
    Err(io::Error::from_raw_os_error(libc::EINVAL))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, Write};

    #[test]
    fn the_copy_is_the_init_and_cannot_change() {
        let fd = super::sealed_copy().unwrap();
        let mut copy = std::fs::File::from(fd);
        let mut bytes = Vec::new();
        copy.rewind().unwrap();
        copy.read_to_end(&mut bytes).unwrap();
        assert_eq!(bytes, super::EXECUTABLE);
        assert!(bytes.starts_with(b"\x7fELF"));
        assert!(copy.write_all(b"x").is_err());
        assert!(copy.set_len(0).is_err());
    }
}
