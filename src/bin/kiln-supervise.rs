//! `kiln-supervise`: the keeper of one detached container, as a small executable of its own.
//!
//! `kiln run -d`, `kiln restart` and `kiln up` start one per container and it lives as long
//! as the container does, so what its process costs is paid a thousand times in a large
//! project. `kiln __supervise` does the same work, but as all of kiln; this one has no
//! argument parser, no error renderer, and is linked at a fixed address (`build.rs`), so
//! its read-only data are not relocated into private pages at every start.
//!
//! Started by kiln only, as `kiln-supervise --root ROOT __supervise ID --build STAMP --kiln
//! KILN` (`kiln::containers::supervisor_command`): kiln looks for it beside itself, and one
//! from another build hands over to `KILN __supervise`.

use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    ExitCode::from(kiln::containers::supervise_main(&args))
}
