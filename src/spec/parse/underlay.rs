//! `underlay { link "east" "west" { impair … } }`: the impaired paths of the underlay
//! between sites (a host's `site=`, else the host itself). Which names exist and which pairs
//! repeat is checked once the file is whole (`validate::underlay`).

use crate::spec::kdlv2;

use super::topology::parse_impair_block;
use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::UnderlayLink;
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span};

const LINK_FORM: &str = "link \"SITE\" \"SITE\" { impair delay=\"40ms\" loss=\"1%\" … }";

/// The `underlay` node: no arguments, no properties, `link` children.
pub(super) fn parse_underlay(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Vec<UnderlayLink> {
    let n = Node::new(
        node,
        file,
        diags,
        "underlay { link \"SITE\" \"SITE\" { impair … } }",
    );
    n.max_args(diags, 0);
    let mut links = Vec::new();
    for child in n.children().map(|d| d.nodes()).unwrap_or_default() {
        if child.name().value() != "link" {
            unknown_node(diags, child, file, "an `underlay` block", &["link"]);
            continue;
        }
        if let Some(link) = parse_link(child, file, diags) {
            links.push(link);
        }
    }
    n.finish(diags);
    links
}

fn parse_link(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics) -> Option<UnderlayLink> {
    let n = Node::new(node, file, diags, LINK_FORM);
    let a = n.str_arg(diags, 0, "two sites");
    let b = if n.arg_count() >= 1 {
        n.str_arg(diags, 1, "a second site")
    } else {
        None
    };
    n.max_args(diags, 2);
    let span = Span::from_miette(file, node.name().span());
    let impair = parse_impair_block(&n, file, diags, "an underlay `link` block");
    let has_impair = n
        .children()
        .is_some_and(|d| d.nodes().iter().any(|c| c.name().value() == "impair"));
    n.finish(diags);
    if !has_impair {
        diags
            .error(
                Code::MissingProperty,
                span,
                "an underlay `link` without `impair`",
            )
            .label("hosts of different sites reach each other anyway")
            .help("add `{ impair delay=\"40ms\" loss=\"1%\"; }`, or remove the link");
    }
    let (a, b) = (a?, b?);
    for site in [&a, &b] {
        values::check_name(diags, site, "site");
    }
    Some(UnderlayLink { a, b, impair, span })
}
