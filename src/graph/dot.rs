//! Graphviz dot output for a [`Graph`].
//!
//! Owns dot syntax and quoting only: every id and label is written as a quoted string with
//! `"` and `\` escaped (dot gives `\n`, `\l`, `\N`… meaning, so a backslash in a name must
//! not reach it raw), `&` written as `&amp;` (Graphviz decodes entities) and control
//! characters replaced, so any name gives valid dot that shows the name as written.

use std::fmt::Write;

use super::{Edge, EdgeKind, Graph, Node, NodeKind};

/// The graph as a dot `digraph`, laid out left to right, with a final newline.
pub fn to_dot(graph: &Graph) -> String {
    let mut out = String::new();
    let title = format!("project {}", graph.project);
    // Writing to a String cannot fail.
    let _ = writeln!(out, "digraph {} {{", quote(&graph.project));
    let _ = writeln!(
        out,
        "  graph [rankdir=LR, label={}, labelloc=t, fontname=\"Helvetica\"];",
        quote(&title)
    );
    out.push_str("  node [fontname=\"Helvetica\", fontsize=10];\n");
    out.push_str("  edge [fontname=\"Helvetica\", fontsize=9];\n");

    for cluster in &graph.clusters {
        let _ = writeln!(
            out,
            "  subgraph {} {{",
            quote(&format!("cluster_{}", cluster.id))
        );
        let _ = writeln!(
            out,
            "    label={}; style=\"rounded,dashed\";",
            label(&cluster.label)
        );
        let mut members = graph
            .nodes
            .iter()
            .filter(|n| n.cluster.as_deref() == Some(&cluster.id))
            .peekable();
        if members.peek().is_none() {
            // dot draws no empty cluster: a host with nothing pinned to it gets a note.
            // Graph ids never start with `cluster_`, so this one is free.
            let _ = writeln!(
                out,
                "    {} [label=\"no container pinned\", shape=plaintext];",
                quote(&format!("cluster_{}_empty", cluster.id))
            );
        }
        for node in members {
            write_node(&mut out, "    ", node);
        }
        out.push_str("  }\n");
    }
    let clustered = |n: &Node| {
        n.cluster
            .as_ref()
            .is_some_and(|c| graph.clusters.iter().any(|k| &k.id == c))
    };
    for node in graph.nodes.iter().filter(|n| !clustered(n)) {
        write_node(&mut out, "  ", node);
    }
    for edge in &graph.edges {
        write_edge(&mut out, edge);
    }
    out.push_str("}\n");
    out
}

fn write_node(out: &mut String, indent: &str, node: &Node) {
    let style = match node.kind {
        NodeKind::Container => "shape=box, style=rounded",
        NodeKind::Job => "shape=box, style=\"rounded,dashed\"",
        NodeKind::Network => "shape=ellipse",
        NodeKind::InternalNetwork => "shape=ellipse, style=dashed",
    };
    let _ = writeln!(
        out,
        "{indent}{} [label={}, {style}];",
        quote(&node.id),
        label(&node.label)
    );
}

fn write_edge(out: &mut String, edge: &Edge) {
    let style = match edge.kind {
        EdgeKind::Attachment => "",
        EdgeKind::Link => ", dir=none, penwidth=2",
        EdgeKind::DependsOn => ", style=dashed",
    };
    let _ = writeln!(
        out,
        "  {} -> {} [label={}{style}];",
        quote(&edge.from),
        quote(&edge.to),
        label(&edge.label)
    );
}

/// Label lines as one quoted string, lines joined by dot's `\n` escape.
fn label(lines: &[String]) -> String {
    let inner: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    format!("\"{}\"", inner.join("\\n"))
}

/// A dot quoted string for any text.
pub(super) fn quote(text: &str) -> String {
    format!("\"{}\"", escape(text))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            // Graphviz decodes HTML entities in every string: `&amp;` would show as `&`.
            '&' => out.push_str("&amp;"),
            // A raw line break would only bend the layout, but NUL and friends reach C
            // string handling in Graphviz: show every control character as U+FFFD.
            c if c.is_control() => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
