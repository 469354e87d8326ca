//! The standard library: `.kdl` modules embedded in the binary, imported as `std:NAME`.
//!
//! Owns the list of modules; each is a file under `stdlib/` at the top of the repository.
//! The tests parse and validate every one of them.

/// `(name, text)` of every stdlib module.
pub const MODULES: &[(&str, &str)] = &[("toolbox", include_str!("../../stdlib/toolbox.kdl"))];

pub fn module(name: &str) -> Option<&'static str> {
    MODULES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    MODULES.iter().map(|(n, _)| *n)
}
