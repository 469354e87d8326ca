//! What unit tests that touch the kernel need in order to run: root, an installed program.
//! Without CI a missing need prints a note naming the test, which then returns early; under
//! CI (`CI` set: `.ci/run` runs as root with every tool installed) it fails the test
//! instead, so a CI run is never green on skipped tests. The integration tests' harness
//! (`tests/it/harness/needs.rs`) does the same for them. Test-only: never in the binary.

/// Fails the test under CI; otherwise prints why it is skipped.
fn missing(what: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("this test")
        .to_string();
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {what}, and CI must run every test"
    );
    eprintln!("note: {test}: {what}; skipped");
}

/// Whether the tests run as root (namespaces, mounts, cgroups and raw sockets need it).
pub(crate) fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        missing("it needs root");
    }
    root
}

/// Whether `program` is on `PATH`.
pub(crate) fn has_program(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false);
    if !found {
        missing(&format!("{program} is not installed (.ci/run installs it)"));
    }
    found
}

/// The mount table's lines (`/proc/self/mountinfo`) that mention `dir`: a mount on or
/// below it, or one whose source lies there. Tests compare these, never the whole table,
/// which other tests running at the same time change.
pub(crate) fn mounts_mentioning(dir: &std::path::Path) -> Vec<String> {
    let needle = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains(&needle))
        .map(str::to_string)
        .collect()
}
