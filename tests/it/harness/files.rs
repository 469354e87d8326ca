//! The repository's own files: its root, its example projects, golden files.

use std::path::{Path, PathBuf};

/// The repository root (where Cargo.toml is).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `examples/NAME/kiln.kdl`, as a command-line argument.
pub fn example(name: &str) -> String {
    repo()
        .join("examples")
        .join(name)
        .join("kiln.kdl")
        .display()
        .to_string()
}

/// Every `examples/*/kiln.kdl`, sorted.
pub fn examples() -> Vec<PathBuf> {
    let mut out: Vec<_> = std::fs::read_dir(repo().join("examples"))
        .expect("examples/ exists")
        .map(|e| e.expect("entry").path().join("kiln.kdl"))
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Whether golden files should be rewritten instead of compared.
fn bless() -> bool {
    std::env::var_os("KILN_BLESS").is_some()
}

/// Compares `actual` with the golden file at `path` (or rewrites it when blessing).
pub fn assert_golden(path: &Path, actual: &str) {
    if bless() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with KILN_BLESS=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "{} differs from the output (run with KILN_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}
