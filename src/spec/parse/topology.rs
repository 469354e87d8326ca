//! `link` blocks and `impair` (netem settings), shared by links and network attachments.

use crate::spec::kdlv2;

use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{Endpoint, Impairment, Link};
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span, Spanned};

pub(super) fn parse_link(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Link> {
    let mut n = Node::new(
        node,
        file,
        diags,
        "link \"CONTAINER:IFACE\" \"CONTAINER:IFACE\" [subnet=\"CIDR\"] { impair … }",
    );
    let a = n
        .str_arg(diags, 0, "two endpoints")
        .and_then(|e| endpoint(diags, e));
    let b = if n.arg_count() >= 1 {
        n.str_arg(diags, 1, "a second endpoint")
            .and_then(|e| endpoint(diags, e))
    } else {
        None
    };
    n.max_args(diags, 2);
    let subnet = n
        .prop_any("subnet")
        .and_then(|v| values::subnet(diags, v, "`subnet`"));
    let impair = parse_impair_block(&n, file, diags, "a `link` block");
    n.finish(diags);
    Some(Link {
        a: a?,
        b: b?,
        subnet,
        impair,
    })
}

/// Splits `"r1:eth1"` into container and interface, each with its own span.
fn endpoint(diags: &mut Diagnostics, text: Spanned<String>) -> Option<Endpoint> {
    // The span of a quoted string includes its quotes; parts are located inside them.
    let inner = if text.span.len as usize >= text.value.len() + 2 {
        text.span.offset as usize + 1
    } else {
        text.span.offset as usize
    };
    let Some((container, interface)) = text.value.split_once(':') else {
        diags
            .error(
                Code::InvalidLinkEndpoint,
                text.span,
                format!("invalid link endpoint `{}`", text.value),
            )
            .label("expected `container:interface`")
            .help(format!(
                "name the interface too, e.g. `\"{}:eth1\"`",
                text.value
            ));
        return None;
    };
    let iface_valid = !interface.is_empty()
        && interface.len() <= 15
        && interface != "lo"
        && interface
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if container.is_empty() || !iface_valid {
        let reason = if container.is_empty() {
            "the container name is empty"
        } else if interface.is_empty() {
            "the interface name is empty"
        } else if interface.len() > 15 {
            "interface names are at most 15 characters"
        } else if interface == "lo" {
            "`lo` is the loopback interface"
        } else {
            "interface names use letters, digits, `-`, `_` and `.`"
        };
        diags
            .error(
                Code::InvalidLinkEndpoint,
                text.span,
                format!("invalid link endpoint `{}`", text.value),
            )
            .label(reason)
            .help("write `\"container:eth1\"`");
        return None;
    }
    let container_span = Span::new(text.span.file, inner, container.len());
    let interface_span = Span::new(text.span.file, inner + container.len() + 1, interface.len());
    Some(Endpoint {
        container: Spanned::new(container.to_string(), container_span),
        interface: Spanned::new(interface.to_string(), interface_span),
    })
}

/// The `{ impair … }` block of a link or a network attachment: at most one `impair`.
pub(super) fn parse_impair_block(
    n: &Node<'_>,
    file: FileId,
    diags: &mut Diagnostics,
    context: &str,
) -> Option<Impairment> {
    let mut impair: Option<(Span, Option<Impairment>)> = None;
    for child in n.children().map(|d| d.nodes()).unwrap_or_default() {
        if child.name().value() != "impair" {
            unknown_node(diags, child, file, context, &["impair"]);
            continue;
        }
        let span = Span::from_miette(file, child.name().span());
        if let Some((first, _)) = &impair {
            diags
                .error(Code::MisplacedNode, span, "`impair` is given twice")
                .related(*first, "first given here")
                .help("put every setting in one `impair` node");
            continue;
        }
        impair = Some((span, parse_impair(child, file, diags)));
    }
    impair.and_then(|(_, i)| i)
}

pub(super) fn parse_impair(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Impairment> {
    let mut n = Node::new(
        node,
        file,
        diags,
        "impair [delay=\"20ms\"] [jitter=\"5ms\"] [loss=\"1%\"] [rate=\"10mbit\"] [corrupt=\"0.1%\"] [duplicate=\"1%\"] [reorder=\"25%\"]",
    );
    n.max_args(diags, 0);
    n.no_children(diags);
    let delay = n
        .prop_any("delay")
        .and_then(|v| values::duration(diags, v, "`delay`"));
    let jitter = n
        .prop_any("jitter")
        .and_then(|v| values::duration(diags, v, "`jitter`"));
    let rate = n
        .prop_any("rate")
        .and_then(|v| values::rate(diags, v, "`rate`"));
    let mut percent = |n: &mut Node<'_>, key: &'static str| {
        let p = n
            .prop_any(key)
            .and_then(|v| values::percent(diags, v, &format!("`{key}`")))?;
        if !(0.0..=100.0).contains(&p.value.0) {
            diags
                .error(
                    Code::ImpairmentOutOfRange,
                    p.span,
                    format!("`{key}` is {}", p.value),
                )
                .label("must be from 0% to 100%");
            return None;
        }
        Some(p)
    };
    let loss = percent(&mut n, "loss");
    let corrupt = percent(&mut n, "corrupt");
    let duplicate = percent(&mut n, "duplicate");
    let reorder = percent(&mut n, "reorder");
    let head = n.head_span();
    let had_settings = node.entries().iter().any(|e| e.name().is_some());
    n.finish(diags);
    if let Some(r) = &rate
        && r.value.0 < 8
    {
        diags
            .error(
                Code::ImpairmentOutOfRange,
                r.span,
                "`rate` is below 8bit (one byte a second)",
            )
            .help("remove `rate` for an unlimited link");
    }
    if let (Some(j), None) = (&jitter, &delay) {
        diags
            .error(
                Code::ImpairmentOutOfRange,
                j.span,
                "`jitter` needs a `delay`",
            )
            .help("add `delay=\"…\"`: jitter varies the delay around it");
    }
    if let (Some(r), None) = (&reorder, &delay) {
        diags
            .error(
                Code::ImpairmentOutOfRange,
                r.span,
                "`reorder` needs a `delay`",
            )
            .help(
                "add `delay=\"…\"`: reordered packets are sent at once, the others after the delay",
            );
    }
    let impairment = Impairment {
        delay,
        jitter,
        loss,
        rate,
        corrupt,
        duplicate,
        reorder,
    };
    if impairment == Impairment::default() {
        if had_settings {
            return None; // Every setting was invalid and is reported already.
        }
        diags
            .warning(Code::ImpairmentOutOfRange, head, "`impair` sets nothing")
            .help("add a setting such as `delay=\"20ms\"`, or remove the node");
        return None;
    }
    Some(impairment)
}
