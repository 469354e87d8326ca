//! Cycles: images built from each other, containers that depend on each other.

use std::collections::{BTreeMap, BTreeSet};

use super::NameMap;

use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{FromRef, Project, Step};
use crate::spec::source::Span;

/// An edge `from → to`, declared at `span`.
struct Edge<'a> {
    from: &'a str,
    to: &'a str,
    span: Span,
    /// How the edge reads: "is built from", "copies from", "depends on".
    verb: &'static str,
}

/// Every elementary cycle reachable by depth-first search, each reported once (as the list
/// of its edges, starting from its smallest node name).
fn find_cycles<'e, 'a>(edges: &'e [Edge<'a>]) -> Vec<Vec<&'e Edge<'a>>> {
    let mut adjacency: BTreeMap<&str, Vec<&Edge<'_>>> = BTreeMap::new();
    for e in edges {
        adjacency.entry(e.from).or_default().push(e);
    }
    let mut cycles: Vec<Vec<&Edge<'_>>> = Vec::new();
    let mut seen_sets: BTreeSet<Vec<&str>> = BTreeSet::new();
    let mut done: BTreeSet<&str> = BTreeSet::new();

    fn visit<'e, 'a>(
        node: &'a str,
        adjacency: &BTreeMap<&str, Vec<&'e Edge<'a>>>,
        path: &mut Vec<&'e Edge<'a>>,
        // Node → its position on the current path (a map: paths can be thousands long).
        on_path: &mut NameMap<&'a str, usize>,
        done: &mut BTreeSet<&'a str>,
        found: &mut Vec<Vec<&'e Edge<'a>>>,
    ) {
        if done.contains(node) {
            return;
        }
        on_path.insert(node, on_path.len());
        for edge in adjacency.get(node).map(Vec::as_slice).unwrap_or_default() {
            if let Some(&start) = on_path.get(edge.to) {
                let mut cycle: Vec<&Edge<'_>> = path[start..].to_vec();
                cycle.push(edge);
                found.push(cycle);
            } else {
                path.push(edge);
                visit(edge.to, adjacency, path, on_path, done, found);
                path.pop();
            }
        }
        on_path.remove(node);
        done.insert(node);
    }

    let nodes: Vec<&str> = adjacency.keys().copied().collect();
    for node in nodes {
        let mut found = Vec::new();
        visit(
            node,
            &adjacency,
            &mut Vec::new(),
            &mut NameMap::default(),
            &mut done,
            &mut found,
        );
        for cycle in found {
            let mut key: Vec<&str> = cycle.iter().map(|e| e.from).collect();
            key.sort_unstable();
            if seen_sets.insert(key) {
                // Rotate so the cycle starts at its smallest node: stable output.
                let start = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, e)| e.from)
                    .map_or(0, |(i, _)| i);
                let mut rotated = cycle[start..].to_vec();
                rotated.extend_from_slice(&cycle[..start]);
                cycles.push(rotated);
            }
        }
    }
    cycles
}

fn report(
    diags: &mut Diagnostics,
    code: Code,
    cycles: Vec<Vec<&Edge<'_>>>,
    kind: &str,
    help: &str,
) {
    for cycle in cycles {
        let first = cycle[0];
        let names: Vec<&str> = cycle
            .iter()
            .map(|e| e.from)
            .chain(std::iter::once(first.from))
            .collect();
        let mut builder = if cycle.len() == 1 {
            diags
                .error(
                    code,
                    first.span,
                    format!("{kind} `{}` {} itself", first.from, first.verb),
                )
                .label(format!("`{}` names itself here", first.from))
        } else {
            diags
                .error(
                    code,
                    first.span,
                    format!("{kind}s form a cycle: {}", names.join(" → ")),
                )
                .label(format!(
                    "`{}` {} `{}` here",
                    first.from, first.verb, first.to
                ))
        };
        for edge in &cycle[1..] {
            builder = builder.related(
                edge.span,
                format!("`{}` {} `{}` here", edge.from, edge.verb, edge.to),
            );
        }
        builder.help(help);
    }
}

pub(super) fn check(project: &Project, diags: &mut Diagnostics) {
    let mut image_edges = Vec::new();
    for image in &project.images {
        if let Some(from) = &image.from
            && let FromRef::Image(base) = &from.value
        {
            image_edges.push(Edge {
                from: &image.name.value,
                to: base,
                span: from.span,
                verb: "is built from",
            });
        }
        for step in &image.steps {
            if let Step::Copy {
                from: Some(source), ..
            } = &step.value
            {
                image_edges.push(Edge {
                    from: &image.name.value,
                    to: &source.value,
                    span: source.span,
                    verb: "copies from",
                });
            }
        }
    }
    report(
        diags,
        Code::ImageCycle,
        find_cycles(&image_edges),
        "image",
        "an image cannot be built from itself, directly or through other images: break the cycle",
    );

    let mut dependency_edges = Vec::new();
    for c in &project.containers {
        for dep in &c.depends_on {
            dependency_edges.push(Edge {
                from: &c.name.value,
                to: &dep.name.value,
                span: dep.name.span,
                verb: "depends on",
            });
        }
    }
    report(
        diags,
        Code::DependencyCycle,
        find_cycles(&dependency_edges),
        "container",
        "containers start after what they depend on, so a cycle can never start: remove one `depends-on`",
    );
}
