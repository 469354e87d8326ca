//! Diagnostics: what went wrong, where, and how to fix it.
//!
//! Owns the [`Code`] registry (every stable diagnostic code with its one-line summary, from
//! which the book's error index is checked), the [`Diagnostic`] value, and the collector the
//! parser and validator push into. It does not render: `cli` turns diagnostics into text or
//! JSON through [`crate::spec::render`].

use super::source::Span;

macro_rules! codes {
    ($($variant:ident => $name:literal, $summary:literal;)*) => {
        /// A stable diagnostic code. The string form (`kiln::spec::unknown-node`) never
        /// changes once released; each has a page in the book's error index.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $($variant,)* }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// The short name, as used for the book page (`unknown-node`).
            pub fn name(self) -> &'static str {
                match self { $(Code::$variant => $name,)* }
            }

            /// One line saying what the code means.
            pub fn summary(self) -> &'static str {
                match self { $(Code::$variant => $summary,)* }
            }
        }
    };
}

codes! {
    Syntax => "syntax", "the file is not valid KDL v2";
    UnknownNode => "unknown-node", "a node kiln does not know, or one that is not allowed where it stands";
    UnknownProperty => "unknown-property", "a property the node does not take";
    MissingArgument => "missing-argument", "a node lacks an argument it needs";
    ExtraArgument => "extra-argument", "a node has more arguments than it takes";
    MissingProperty => "missing-property", "a node lacks a property it needs";
    DuplicateProperty => "duplicate-property", "the same property is given twice on one node";
    WrongType => "wrong-type", "a value has the wrong type (a number where a string belongs, …)";
    UnexpectedBlock => "unexpected-block", "a node has a `{ … }` block but takes none";
    MisplacedNode => "misplaced-node", "a node that is valid only once, or only in certain places";
    DuplicateName => "duplicate-name", "two declarations of the same kind share a name";
    InvalidName => "invalid-name", "a name that cannot be used as a host name or image name";
    UnknownImage => "unknown-image", "a reference to an image that is not declared";
    UnknownNetwork => "unknown-network", "a reference to a network that is not declared";
    UnknownContainer => "unknown-container", "a reference to a container or job that is not declared";
    UnknownHost => "unknown-host", "a reference to a host that is not declared";
    UnknownSite => "unknown-site", "an underlay link names a site that no host stands in";
    SiteLinkedToItself => "site-linked-to-itself", "an underlay link joins a site to itself";
    DuplicateUnderlayLink => "duplicate-underlay-link", "two underlay links join the same two sites";
    UnderlayWithoutHosts => "underlay-without-hosts", "an `underlay` in a project that declares no host";
    NoHostFits => "no-host-fits", "a container fits on no declared host (their cpus and memory are taken)";
    LinkAcrossHosts => "link-across-hosts", "a link joins containers pinned to two different hosts";
    UnknownLinkEndpoint => "unknown-link-endpoint", "a link endpoint names a container that is not declared";
    InvalidLinkEndpoint => "invalid-link-endpoint", "a link endpoint is not of the form `container:interface`";
    InterfaceConflict => "interface-conflict", "two links or network attachments claim one interface";
    ImageCycle => "image-cycle", "images depend on each other in a cycle (through `from` or `copy from=`)";
    DependencyCycle => "dependency-cycle", "containers depend on each other in a cycle (`depends-on`)";
    ImportCycle => "import-cycle", "files import each other in a cycle";
    ImportNotFound => "import-not-found", "an imported file or stdlib module does not exist";
    MissingFrom => "missing-from", "an image has no `from` step, or it is not the first step";
    InvalidSubnet => "invalid-subnet", "a subnet is not a valid CIDR network";
    OverlappingSubnets => "overlapping-subnets", "two networks or links have overlapping subnets";
    AddressOutsideSubnet => "address-outside-subnet", "a fixed address is not inside the subnet it is assigned on";
    DuplicateAddress => "duplicate-address", "one address is assigned twice";
    VniCollision => "vni-collision", "two overlay networks have the same VXLAN network identifier";
    InvalidAddress => "invalid-address", "a value is not a valid IP address";
    SubnetTooSmall => "subnet-too-small", "a subnet has fewer addresses than it must hand out";
    TooManyMembers => "too-many-members", "a network has more containers than its bridge has ports (1,023)";
    DuplicateHostPort => "duplicate-host-port", "one host port is published twice";
    PublishWithoutNetwork => "publish-without-network", "a container publishes a port but is on no network";
    InvalidPort => "invalid-port", "a port number outside 1–65535";
    InvalidDuration => "invalid-duration", "a duration that does not parse (`250ms`, `1s`, `1m30s`)";
    InvalidSize => "invalid-size", "a size that does not parse (`64MiB`, `1G`)";
    InvalidRate => "invalid-rate", "a rate that does not parse (`10mbit`, `1gbit`)";
    InvalidPercentage => "invalid-percentage", "a percentage that does not parse (`1%`, `0.5%`)";
    InvalidSignal => "invalid-signal", "a signal name that does not exist (`SIGTERM`, `TERM`, `15`)";
    UnknownRestartPolicy => "unknown-restart-policy", "a restart policy kiln does not know";
    InvalidReplicas => "invalid-replicas", "`replicas` is below 1";
    InvalidCpus => "invalid-cpus", "`cpus` is zero or negative";
    ImpairmentOutOfRange => "impairment-out-of-range", "an impairment value outside what netem accepts";
    ImpairmentConflict => "impairment-conflict", "two impairment settings that exclude each other";
    EgressConflict => "egress-conflict", "a network with `egress=#true` that is also `internal` or an overlay";
    EmptyHealth => "empty-health", "a `health` block has no probe";
    EmptyBlock => "empty-block", "a test's `fault` block without exactly one fault, or an `eventually` block without an assertion";
    InvalidChoice => "invalid-choice", "a value that is not one of the allowed choices";
    ValueOutOfRange => "value-out-of-range", "a number outside the range the setting accepts";
    InvalidUrl => "invalid-url", "an `http` URL that kiln cannot probe";
    PathNotFound => "path-not-found", "a `copy` source or volume path that does not exist";
    PathEscapesContext => "path-escapes-context", "a path that leaves the project directory";
    InvalidReference => "invalid-reference", "an image name written as a registry reference that is not a valid one";
    UnpinnedImage => "unpinned-image", "a registry image that is neither in the store nor pinned in kiln.lock";
    LockMismatch => "lock-mismatch", "kiln.lock disagrees with kiln.kdl (another digest, or a pin nothing uses)";
    InvalidLock => "invalid-lock", "kiln.lock is not what kiln writes (unknown nodes, bad references or digests)";
    InvalidSeccompProfile => "invalid-seccomp-profile", "a seccomp profile file kiln cannot use (not Docker's format, an unknown system call, …)";
    InvalidEnvFile => "invalid-env-file", "an env file that is not in Docker's format (a line without a variable name, a name with whitespace)";
}

impl Code {
    /// The full stable code, e.g. `kiln::spec::unknown-node`.
    pub fn as_str(self) -> String {
        format!("kiln::spec::{}", self.name())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "kiln::spec::{}", self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A secondary span with its message ("image declared here").
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One problem found in a project file.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    /// Short, lowercase, no fix in it.
    pub message: String,
    /// The smallest span that shows the problem.
    pub span: Span,
    /// Text under the primary span; defaults to nothing.
    pub label: Option<String>,
    /// How to fix it, where known.
    pub help: Option<String>,
    /// Related spans ("declared here", the edges of a cycle).
    pub related: Vec<Label>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// Collects diagnostics while parsing and validating; nothing stops at the first problem.
#[derive(Debug, Default)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    /// Set while an import failed: references to undeclared names are not reported.
    pub(crate) suppress_unknown: bool,
}

/// Builder returned by [`Diagnostics::error`]: add a label, help and related spans.
pub struct DiagnosticBuilder<'a> {
    diagnostic: &'a mut Diagnostic,
}

impl DiagnosticBuilder<'_> {
    pub fn label(self, label: impl Into<String>) -> Self {
        self.diagnostic.label = Some(label.into());
        self
    }

    pub fn help(self, help: impl Into<String>) -> Self {
        self.diagnostic.help = Some(help.into());
        self
    }

    pub fn maybe_help(self, help: Option<String>) -> Self {
        if help.is_some() {
            self.diagnostic.help = help;
        }
        self
    }

    pub fn related(self, span: Span, message: impl Into<String>) -> Self {
        self.diagnostic.related.push(Label {
            span,
            message: message.into(),
        });
        self
    }
}

impl Diagnostics {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.items.push(diagnostic);
    }

    fn add(
        &mut self,
        severity: Severity,
        code: Code,
        span: Span,
        message: String,
    ) -> DiagnosticBuilder<'_> {
        self.items.push(Diagnostic {
            code,
            severity,
            message,
            span,
            label: None,
            help: None,
            related: Vec::new(),
        });
        let diagnostic = self.items.last_mut().expect("just pushed");
        DiagnosticBuilder { diagnostic }
    }

    pub fn error(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
    ) -> DiagnosticBuilder<'_> {
        self.add(Severity::Error, code, span, message.into())
    }

    pub fn warning(
        &mut self,
        code: Code,
        span: Span,
        message: impl Into<String>,
    ) -> DiagnosticBuilder<'_> {
        self.add(Severity::Warning, code, span, message.into())
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The diagnostics in source order (file, then position), errors before warnings at
    /// the same place, so output is stable whatever order the checks ran in.
    pub fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by(|a, b| {
            (a.span, a.severity, a.code, &a.message).cmp(&(b.span, b.severity, b.code, &b.message))
        });
        self.items.dedup();
        self.items
    }
}

/// "did you mean `x`?" for a misspelt name, from the names that would have been valid.
pub fn did_you_mean<'a>(
    wrong: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let best = candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(wrong, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some(format!("did you mean `{}`?", best.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names_are_unique_and_kebab_case() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.name()), "duplicate code {}", code.name());
            assert!(
                code.name()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-')
            );
            assert!(!code.summary().is_empty());
        }
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("imgae", ["image", "network"]).as_deref(),
            Some("did you mean `image`?")
        );
        assert_eq!(did_you_mean("zzz", ["image", "network"]), None);
    }
}
