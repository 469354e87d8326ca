//! Builds this module's tree from a [`kdl::KdlDocument`]: the oracle of the differential
//! tests. The spans that `kdl` does not expose directly (a property value's own text, the `{`
//! of a children block) are derived from its format information exactly as kiln's reader
//! derived them before this parser existed.

use kdl::{KdlDocument, KdlEntry, KdlIdentifier, KdlNode};
use miette::SourceSpan;

use super::{Document, Entry, Ident, Node};

/// The same document, as this module's tree.
pub(crate) fn from_kdl(doc: &KdlDocument) -> Document {
    Document {
        nodes: doc.nodes().iter().map(node).collect(),
        span: doc.span(),
    }
}

fn ident(id: &KdlIdentifier) -> Ident {
    Ident {
        value: id.value().to_owned(),
        span: id.span(),
    }
}

fn end(span: SourceSpan) -> usize {
    span.offset() + span.len()
}

fn node(n: &KdlNode) -> Node {
    let children_open = n.children().map(|_| {
        // Text between the last entry (or the name) and the block is `before_children`.
        let last_end = n
            .entries()
            .iter()
            .map(|e| end(e.span()))
            .max()
            .unwrap_or_else(|| end(n.name().span()));
        let before = n.format().map_or(1, |f| f.before_children.len());
        last_end + before
    });
    Node {
        ty: n.ty().map(ident),
        name: ident(n.name()),
        entries: n.entries().iter().map(entry).collect(),
        children: n.children().map(from_kdl),
        children_open,
        span: n.span(),
    }
}

fn entry(e: &KdlEntry) -> Entry {
    let span = e.span();
    let value_span = match e.name() {
        None => span,
        Some(name) => {
            // The value's own text ends the entry; its length is the value's repr.
            let name_end = end(name.span());
            let text_len = end(span).saturating_sub(name_end);
            let repr = e
                .format()
                .map(|f| f.value_repr.len())
                .filter(|len| *len > 0 && *len <= text_len);
            match repr {
                Some(len) => SourceSpan::from((end(span) - len, len)),
                None => SourceSpan::from((name_end, text_len)),
            }
        }
    };
    Entry {
        name: e.name().map(ident),
        ty: e.ty().map(ident),
        value: e.value().clone(),
        span,
        value_span,
    }
}
