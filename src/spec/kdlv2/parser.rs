//! The structure of a KDL v2 document: nodes, type annotations, entries (arguments and
//! properties), children blocks, node terminators and `/-` on nodes, entries and children.
//!
//! Spans follow the `kdl` crate (6.5) exactly; see the module docs in `mod.rs`.

use miette::SourceSpan;

use super::chars::first_disallowed;
use super::lexer::{Cursor, PResult};
use super::{Document, Entry, Ident, Node, ParseError};
use kdl::KdlValue;

/// Stacks the parser fills while a node or block is incomplete; see [`nodes`], [`base_node`].
#[derive(Default)]
pub(super) struct Scratch {
    nodes: Vec<Node>,
    entries: Vec<Entry>,
}

/// The error for text right after a slash-dashed node (`kdl` 6.5 takes it as the next node).
pub(super) const AFTER_DASHED_NODE: &str = "expected a newline after a slash-dashed node";

/// The error for a code point KDL forbids anywhere in a document.
pub(super) const DISALLOWED: &str = "disallowed code point (control, direction or BOM character)";

/// Children blocks nested deeper than this are rejected (keeps recursion bounded).
pub(super) const MAX_DEPTH: usize = 256;

fn span(start: usize, end: usize) -> SourceSpan {
    SourceSpan::from((start, end - start))
}

/// `document := bom? nodes`
pub(super) fn document(src: &str) -> PResult<Document> {
    if let Some(offset) = first_disallowed(src.as_bytes()) {
        return Err(ParseError {
            offset,
            message: DISALLOWED,
        });
    }
    let mut c = Cursor::new(src);
    if c.starts_with("\u{FEFF}".as_bytes()) {
        c.pos = 3;
    }
    let doc = nodes(&mut c, 0)?;
    if !c.at_eof() {
        return c.err(c.pos, "unexpected '}' outside a children block");
    }
    Ok(doc)
}

/// `nodes := (line-space* node)* line-space*`; stops at the end or at a `}`.
fn nodes(c: &mut Cursor<'_>, depth: usize) -> PResult<Document> {
    // Nodes go on the shared stack and move into an exact-size Vec at the end of the block
    // (nested blocks push and drain above this mark).
    let mark = c.scratch.nodes.len();
    let mut first: Option<usize> = None;
    let mut last_end = 0;
    loop {
        c.skip_line_space()?;
        if c.at_eof() || c.peek() == Some(b'}') {
            break;
        }
        let dashed = c.slashdash()?;
        let node = base_node(c, depth)?;
        let node_end = node.span.offset() + node.span.len();
        if !dashed {
            first.get_or_insert(node.span.offset());
            last_end = node_end;
            c.scratch.nodes.push(node);
        }
        // `node-terminator`, or the end of the enclosing block (`final-node`).
        match c.peek() {
            None | Some(b'}') => {}
            Some(b';') => c.pos += 1,
            Some(b'/') if c.peek_at(1) == Some(b'/') => c.line_comment(),
            Some(_) => {
                let n = c.newline();
                if n == 0 && dashed {
                    return c.err(c.pos, AFTER_DASHED_NODE);
                }
                if n == 0 {
                    return c.err(c.pos, "expected ';' or a newline after a node");
                }
                c.pos += n;
            }
        }
    }
    let span = match first {
        Some(start) => span(start, last_end),
        None => span(c.pos, c.pos),
    };
    let nodes = c.scratch.nodes.drain(mark..).collect();
    Ok(Document { nodes, span })
}

/// `base-node`: type, name, entries, children blocks and trailing node-space.
///
/// ```text
/// base-node := slashdash? type? node-space* string
///     (node-space* (node-space | slashdash) node-prop-or-arg)*
///     (node-space* slashdash node-children)*
///     (node-space* node-children)?
///     (node-space* slashdash node-children)*
///     node-space*
/// ```
/// (The grammar as amended after 2.0.0 by kdl-org/kdl#499, which the official test suite
/// follows: `/-` and a children block need no node-space before them, `a "b"/-1`, `a{}`.)
/// The span ends after the trailing node-space, or, for a node with a children block, at
/// the last `}` (as in `kdl`).
fn base_node(c: &mut Cursor<'_>, depth: usize) -> PResult<Node> {
    let start = c.pos;
    let ty = if c.peek() == Some(b'(') {
        Some(type_annotation(c)?)
    } else {
        None
    };
    c.skip_node_space()?;
    let name = ident(c, "expected a node name")?;
    // Entries go on the shared stack until the node's entries are complete (at its children
    // block or its end), then move into an exact-size Vec: fewer, smaller allocations.
    let mark = c.scratch.entries.len();
    let mut entries = None;
    let mut children = None;
    let mut children_open = None;
    // Once any children block (slash-dashed or not) is seen, only children blocks may follow.
    let mut in_children = false;
    let mut blocks_end = 0;
    loop {
        let spaced = c.skip_node_space()?;
        match c.peek() {
            Some(b'{') => {
                if children.is_some() {
                    return c.err(c.pos, "a node has at most one children block");
                }
                children_open = Some(c.pos);
                entries.get_or_insert_with(|| c.scratch.entries.drain(mark..).collect());
                children = Some(children_block(c, depth)?);
                in_children = true;
                blocks_end = c.pos;
            }
            Some(b'/') if c.peek_at(1) == Some(b'-') => {
                c.slashdash()?;
                if c.peek() == Some(b'{') {
                    entries.get_or_insert_with(|| c.scratch.entries.drain(mark..).collect());
                    children_block(c, depth)?;
                    in_children = true;
                    if children.is_some() {
                        blocks_end = c.pos;
                    }
                } else if in_children {
                    return c.err(c.pos, "arguments and properties must come before children");
                } else {
                    entry(c)?;
                }
            }
            _ if !spaced => break,
            None | Some(b';' | b'}') => break,
            Some(b'/') if c.peek_at(1) == Some(b'/') => break,
            Some(_) if c.newline() != 0 => break,
            Some(_) if in_children => {
                return c.err(c.pos, "arguments and properties must come before children");
            }
            Some(_) => {
                let e = entry(c)?;
                c.scratch.entries.push(e);
            }
        }
    }
    let end = if children.is_some() {
        blocks_end
    } else {
        c.pos
    };
    let entries = entries.unwrap_or_else(|| c.scratch.entries.drain(mark..).collect());
    Ok(Node {
        ty,
        name,
        entries,
        children,
        children_open,
        span: span(start, end),
    })
}

/// `node-children := '{' nodes final-node? '}'`
fn children_block(c: &mut Cursor<'_>, depth: usize) -> PResult<Document> {
    if depth >= MAX_DEPTH {
        return c.err(c.pos, "children blocks nested too deeply");
    }
    let open = c.pos;
    c.pos += 1;
    let doc = nodes(c, depth + 1)?;
    if c.peek() != Some(b'}') {
        return c.err(open, "unclosed children block");
    }
    c.pos += 1;
    Ok(doc)
}

/// `type := '(' node-space* string node-space* ')'`
fn type_annotation(c: &mut Cursor<'_>) -> PResult<Ident> {
    c.pos += 1;
    c.skip_node_space()?;
    let ty = ident(c, "expected a type name")?;
    c.skip_node_space()?;
    if c.peek() != Some(b')') {
        return c.err(c.pos, "expected ')' after the type name");
    }
    c.pos += 1;
    Ok(ty)
}

/// A string used as a name (node name, property key, type name).
fn ident(c: &mut Cursor<'_>, message: &'static str) -> PResult<Ident> {
    let at = c.pos;
    let s = c.scalar()?;
    match s.value {
        KdlValue::String(value) if s.is_string => Ok(Ident {
            value,
            span: span(s.start, s.end),
        }),
        _ => c.err(at, message),
    }
}

/// `node-prop-or-arg := prop | value`
fn entry(c: &mut Cursor<'_>) -> PResult<Entry> {
    let start = c.pos;
    if c.peek() == Some(b'(') {
        let ty = type_annotation(c)?;
        c.skip_node_space()?;
        let s = c.scalar()?;
        return Ok(Entry {
            name: None,
            ty: Some(ty),
            value: s.value,
            span: span(start, s.end),
            value_span: span(start, s.end),
        });
    }
    let s = c.scalar()?;
    let arg = Entry {
        name: None,
        ty: None,
        value: s.value,
        span: span(s.start, s.end),
        value_span: span(s.start, s.end),
    };
    let KdlValue::String(key) = arg.value else {
        return Ok(arg);
    };
    if !s.is_string {
        return Ok(Entry {
            value: KdlValue::String(key),
            ..arg
        });
    }
    let save = c.pos;
    c.skip_node_space()?;
    if c.peek() != Some(b'=') {
        c.pos = save;
        return Ok(Entry {
            value: KdlValue::String(key),
            ..arg
        });
    }
    c.pos += 1;
    c.skip_node_space()?;
    let ty = if c.peek() == Some(b'(') {
        let ty = type_annotation(c)?;
        c.skip_node_space()?;
        Some(ty)
    } else {
        None
    };
    let v = c.scalar()?;
    Ok(Entry {
        name: Some(Ident {
            value: key,
            span: span(s.start, s.end),
        }),
        ty,
        value: v.value,
        span: span(start, v.end),
        value_span: span(v.start, v.end),
    })
}
