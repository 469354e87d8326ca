//! Whether a test can run here. Without CI a missing need prints a note naming the test, and
//! the test skips what needs it; under CI (`CI` set, as `.ci/run` runs as root with every tool
//! installed) a missing need fails the test, so a CI run can never be green on skips.

use std::path::Path;

/// The running test's name (the test thread is named after it).
fn test_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string()
}

/// Fails the test under CI; otherwise prints why it is skipped.
fn missing(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{}: {what}, and CI must run every test",
        test_name()
    );
    eprintln!("note: {}: {what}; skipping what needs it", test_name());
}

/// Whether the tests run as root (containers, networks and the build sandbox need it; CI
/// runs as root, so there it must be).
pub fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        missing("it needs root");
    }
    root
}

/// Whether an interop tool is installed; under CI (which installs them) it must be.
pub fn which(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        missing(&format!("{program} is not installed (.ci/run installs it)"));
    }
    found
}

/// Whether the host has Python 3.11 and its library (images that serve or probe over the
/// network copy them in with `host-binary` and `host-path`).
pub fn has_python() -> bool {
    let found =
        Path::new("/usr/bin/python3").is_file() && Path::new("/usr/lib/python3.11").is_dir();
    if !found {
        missing("it needs python 3.11 on the host (.ci/run installs it)");
    }
    found
}
