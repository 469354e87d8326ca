//! An error and its causes: the one walk of `source()` chains that kiln renders by hand.
//!
//! The binary renders errors with miette (`main.rs`); some places need the chain as text
//! instead — a build error printed rustc-style with its place in kiln.kdl, a reason kept in
//! another error's message (a rollout's "new version did not start: …"), the one line a
//! supervisor sends back over its report pipe. They all use [`chain`] or [`one_line`], and
//! [`help`] for the fix. A leaf of the module graph: it knows no kiln error type.

use std::error::Error;

use miette::Diagnostic;

/// The messages of `err` and its causes, outermost first.
pub fn chain(err: &dyn Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        out.push(cause.to_string());
        source = cause.source();
    }
    out
}

/// `err` and its causes on one line, joined by `: `.
pub fn one_line(err: &dyn Error) -> String {
    chain(err).join(": ")
}

/// The fix a diagnostic offers: its own `help`, else that of the first diagnostic it wraps
/// (`#[diagnostic_source]`) that has one.
pub fn help(err: &dyn Diagnostic) -> Option<String> {
    if let Some(help) = err.help() {
        return Some(help.to_string());
    }
    let mut inner = err.diagnostic_source();
    while let Some(diagnostic) = inner {
        if let Some(help) = diagnostic.help() {
            return Some(help.to_string());
        }
        inner = diagnostic.diagnostic_source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("cannot attach")]
    #[diagnostic(help("free a port"))]
    struct Inner(#[source] std::io::Error);

    #[derive(Debug, thiserror::Error, Diagnostic)]
    #[error("cannot start")]
    struct Outer(
        #[source]
        #[diagnostic_source]
        Inner,
    );

    #[test]
    fn the_chain_is_outermost_first_and_help_comes_from_the_first_that_has_one() {
        let err = Outer(Inner(std::io::Error::other("address in use")));
        assert_eq!(
            chain(&err),
            ["cannot start", "cannot attach", "address in use"]
        );
        assert_eq!(
            one_line(&err),
            "cannot start: cannot attach: address in use"
        );
        assert_eq!(help(&err).as_deref(), Some("free a port"));
        assert_eq!(help(&err.0), Some("free a port".to_string()));
    }
}
