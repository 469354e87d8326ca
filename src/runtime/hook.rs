//! The error a caller's start hook ([`super::StartHooks::before_continue`],
//! [`super::ExecHooks::before_continue`]) returns: the caller's own error (a cgroup, a
//! network, a record), kept whole — its message, its causes and its help — although the
//! runtime knows none of those types.

use std::fmt;

use miette::Diagnostic;

/// Why a start hook refused to let the process run.
pub struct HookError(Box<dyn Diagnostic + Send + Sync + 'static>);

impl HookError {
    pub fn new(err: impl Diagnostic + Send + Sync + 'static) -> HookError {
        HookError(Box::new(err))
    }
}

impl fmt::Debug for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// The caller's error's message: a `HookError` is transparent.
impl fmt::Display for HookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for HookError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl Diagnostic for HookError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.code()
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.help()
    }
    fn url<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.0.url()
    }
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        self.0.diagnostic_source()
    }
}
