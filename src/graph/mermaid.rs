//! Mermaid flowchart output for a [`Graph`].
//!
//! Owns Mermaid syntax and quoting only. Ids are the graph's own (`[a-z0-9_]`, prefixed, so
//! never `end` or a keyword); every label is a quoted string in which each character that
//! means something to Mermaid's parser, its entity decoder, its directive scanner (`%%{`)
//! or HTML labels is written as a numeric entity (`#34;`), as are control characters and
//! a `%` right after another. One statement per line; every node is declared before an edge
//! uses it. The project's name is not written: a flowchart has no title outside YAML front
//! matter, which would need quoting rules of its own.

use std::fmt::Write;

use super::{EdgeKind, Graph, Node, NodeKind};

/// The graph as a `flowchart LR`, with a final newline.
pub fn to_mermaid(graph: &Graph) -> String {
    let mut out = String::from("flowchart LR\n");
    for cluster in &graph.clusters {
        let _ = writeln!(
            out,
            "    subgraph {} [{}]",
            cluster.id,
            label(&cluster.label)
        );
        for node in graph
            .nodes
            .iter()
            .filter(|n| n.cluster.as_deref() == Some(&cluster.id))
        {
            write_node(&mut out, "        ", node);
        }
        out.push_str("    end\n");
    }
    let clustered = |n: &Node| {
        n.cluster
            .as_ref()
            .is_some_and(|c| graph.clusters.iter().any(|k| &k.id == c))
    };
    for node in graph.nodes.iter().filter(|n| !clustered(n)) {
        write_node(&mut out, "    ", node);
    }
    for edge in &graph.edges {
        let arrow = match edge.kind {
            EdgeKind::Attachment => "-->",
            EdgeKind::Link => "---",
            EdgeKind::DependsOn => "-.->",
        };
        if edge.label.is_empty() {
            let _ = writeln!(out, "    {} {arrow} {}", edge.from, edge.to);
        } else {
            let _ = writeln!(
                out,
                "    {} {arrow}|{}| {}",
                edge.from,
                label(&edge.label),
                edge.to
            );
        }
    }
    // Styles by kind; `class` needs at least one id, so only kinds that occur.
    for (kind, class, style) in [
        (NodeKind::Job, "job", "stroke-dasharray: 5 5"),
        (
            NodeKind::InternalNetwork,
            "internal",
            "stroke-dasharray: 3 3",
        ),
    ] {
        let ids: Vec<&str> = graph
            .nodes
            .iter()
            .filter(|n| n.kind == kind)
            .map(|n| n.id.as_str())
            .collect();
        if !ids.is_empty() {
            let _ = writeln!(out, "    classDef {class} {style}");
            let _ = writeln!(out, "    class {} {class}", ids.join(","));
        }
    }
    let links: Vec<String> = graph
        .edges
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EdgeKind::Link)
        .map(|(i, _)| i.to_string())
        .collect();
    if !links.is_empty() {
        let _ = writeln!(out, "    linkStyle {} stroke-width: 3px", links.join(","));
    }
    out
}

fn write_node(out: &mut String, indent: &str, node: &Node) {
    let (open, close) = match node.kind {
        NodeKind::Container => ("[", "]"),
        NodeKind::Job => ("([", "])"),
        NodeKind::Network | NodeKind::InternalNetwork => ("{{", "}}"),
    };
    let _ = writeln!(
        out,
        "{indent}{}{open}{}{close}",
        node.id,
        label(&node.label)
    );
}

/// Label lines as one quoted string, lines joined by `<br>`.
fn label(lines: &[String]) -> String {
    let inner: Vec<String> = lines.iter().map(|l| escape(l)).collect();
    format!("\"{}\"", inner.join("<br>"))
}

/// Text safe inside a Mermaid quoted string.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let special = matches!(
            c,
            '"' | '#' | '&' | '<' | '>' | '|' | '`' | '{' | '}' | '[' | ']' | '\\'
        );
        // `%%` starts a comment or a directive anywhere in the text: never emit two in a
        // row (`1%` stays readable).
        let second_percent = c == '%' && out.ends_with('%');
        if special || second_percent || c.is_control() {
            let _ = write!(out, "#{};", u32::from(c));
        } else {
            out.push(c);
        }
    }
    out
}
