//! A fast, hand-written parser for KDL v2.0.0 (<https://kdl.dev/spec>), and the judge of
//! what kiln accepts: a document is valid exactly when this parser accepts it.
//!
//! The `kdl` crate parses at under 1 MB/s; this one is a single forward pass with no
//! backtracking beyond a property's `=` look-ahead. It builds a plain tree mirroring the subset
//! of the `kdl` crate's API that kiln reads, reuses [`kdl::KdlValue`] for values, and reports
//! the first syntax error as a [`ParseError`] (a byte offset and a short message). kiln still
//! words most syntax errors with the `kdl` crate (`spec::syntax`), but never accepts a text
//! this parser rejects.
//!
//! Files, one job each:
//! - `chars.rs`: character classes (newlines, unicode spaces, identifier chars, disallowed
//!   code points);
//! - `lexer.rs`: the cursor and trivia (whitespace, comments, line continuations, `/-`);
//! - `scalar.rs`: strings (identifier, quoted, raw, multi-line), numbers and keywords;
//! - `parser.rs`: nodes, entries, type annotations, children blocks, spans, depth limit;
//! - `convert.rs` (tests only): the same tree built from a [`kdl::KdlDocument`], the oracle
//!   of the differential tests;
//! - `conformance.rs` (tests only): the official KDL test suite, vendored in
//!   `tests/kdl-spec/`.
//!
//! # Spans (byte offsets, identical to `kdl` 6.5)
//! - [`Node::span`]: from the node's type annotation `(` (or its name) to the end of its
//!   trailing node-space, so it includes a children block, slash-dashed entries/children and
//!   trailing spaces or comments, but not the terminator (`;`, newline, `//`).
//! - [`Ident::span`]: the name's text, quotes and `#`s included; for a type annotation, the
//!   type name inside the parentheses.
//! - [`Entry::span`]: an argument's text including its type annotation; a property's text from
//!   the key to the end of the value.
//! - [`Entry::value_span`]: for a property, the value's own text (after the `=`, any
//!   node-space and the type annotation); for an argument, equal to [`Entry::span`]. (Not a
//!   `kdl` span: it is what kiln's reader derived from `kdl`'s format information.)
//! - [`Node::children_open`]: the `{` of the node's (not slash-dashed) children block.
//! - [`Document::span`]: from the start of the first (not slash-dashed) node to the end of the
//!   last node's span; for no nodes, an empty span where the nodes would start (for a children
//!   block: just before the `}`).
//!
//! # Differences from the `kdl` crate (6.5)
//! Where both accept a text, the trees are identical (the differential tests in `tests.rs`
//! check it). This parser follows the spec where `kdl` does not. It rejects what `kdl` lets
//! through:
//! - disallowed literal code points anywhere, comments included: U+0000–U+0008,
//!   U+000E–U+001F, U+007F (DEL), the direction controls U+200E, U+200F, U+202A–U+202E,
//!   U+2066–U+2069, and U+FEFF (BOM) other than as the very first character;
//! - `0X`, `0O`, `0B` radix prefixes (the spec has lowercase only);
//! - a single-line raw string whose body starts with `"` and then `"` or its end
//!   (`#"""x"""#`, `#""""#`: the spec's single-line raw string may not start like a
//!   multi-line one);
//! - a bare `-inf` (the spec makes it illegal; `kdl` takes it as a string);
//! - `/-` glued to the end of a children block (`a {}/- b`), which `kdl` takes as a
//!   slash-dashed node with no terminator before it;
//! - a node right after a slash-dashed one with no terminator between (`/-a {}b`,
//!   `/-a #true.`: `kdl` ends a keyword at its last letter).
//!
//! And it accepts what the spec allows and `kdl` rejects:
//! - node-space after a children block before the terminator (`a {} ;`, `a {}  ⏎ b`);
//! - `;` after a slash-dashed node (`/- a; b`);
//! - `/-` with no node-space before it (`a "b"/-1`, `a {}/-{}`), as the grammar says since
//!   kdl-org/kdl#499 (January 2025), which the official test suite follows.
//!
//! Like `kdl`, integers must fit in `i128`, and so must each digit group of a decimal float.
//! Children blocks deeper than [`parser::MAX_DEPTH`] are rejected.

mod chars;
#[cfg(test)]
mod conformance;
#[cfg(test)]
mod convert;
mod lexer;
mod parser;
mod scalar;
#[cfg(test)]
mod tests;

use std::fmt;

use kdl::KdlValue;
use miette::SourceSpan;

/// Parses a KDL v2 document.
pub(crate) fn parse(text: &str) -> Result<Document, ParseError> {
    parser::document(text)
}

/// The first syntax error in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    /// Byte offset of the offending text.
    pub(crate) offset: usize,
    /// A short description.
    pub(crate) message: &'static str,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.message, self.offset)
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// Whether the error is a character KDL forbids anywhere (a control or direction
    /// character, a byte order mark after the start).
    pub(crate) fn disallowed_character(&self) -> bool {
        self.message == parser::DISALLOWED
    }
}

pub(crate) use scalar::RAW_LOOKS_MULTILINE;

/// A sequence of nodes: the whole file, or a children block.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
)]
pub(crate) struct Document {
    nodes: Vec<Node>,
    span: SourceSpan,
}

impl Document {
    pub(crate) fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
    )]
    pub(crate) fn span(&self) -> SourceSpan {
        self.span
    }
}

/// A node: `(type)name entries... { children }`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
)]
pub(crate) struct Node {
    ty: Option<Ident>,
    name: Ident,
    entries: Vec<Entry>,
    children: Option<Document>,
    children_open: Option<usize>,
    span: SourceSpan,
}

impl Node {
    pub(crate) fn name(&self) -> &Ident {
        &self.name
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
    )]
    pub(crate) fn ty(&self) -> Option<&Ident> {
        self.ty.as_ref()
    }

    pub(crate) fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn children(&self) -> Option<&Document> {
        self.children.as_ref()
    }

    pub(crate) fn span(&self) -> SourceSpan {
        self.span
    }

    /// The `{` that opens the children block, if there is one.
    pub(crate) fn children_open(&self) -> Option<SourceSpan> {
        self.children_open.map(|at| SourceSpan::from((at, 1)))
    }
}

/// A name: a node name, a property key or a type annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ident {
    value: String,
    span: SourceSpan,
}

impl Ident {
    pub(crate) fn value(&self) -> &str {
        &self.value
    }

    pub(crate) fn span(&self) -> SourceSpan {
        self.span
    }
}

/// An argument (`value`) or a property (`key=value`), either with an optional `(type)`.
#[derive(Debug, Clone)]
#[cfg_attr(
    not(test),
    allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
)]
pub(crate) struct Entry {
    name: Option<Ident>,
    ty: Option<Ident>,
    value: KdlValue,
    span: SourceSpan,
    value_span: SourceSpan,
}

impl Entry {
    pub(crate) fn name(&self) -> Option<&Ident> {
        self.name.as_ref()
    }

    pub(crate) fn value(&self) -> &KdlValue {
        &self.value
    }

    #[cfg_attr(
        not(test),
        allow(dead_code, reason = "mirrors kdl's API; kiln reads it only in tests")
    )]
    pub(crate) fn ty(&self) -> Option<&Ident> {
        self.ty.as_ref()
    }

    pub(crate) fn span(&self) -> SourceSpan {
        self.span
    }

    pub(crate) fn value_span(&self) -> SourceSpan {
        self.value_span
    }
}
