//! `link` blocks and `impair` (netem settings), shared by links and network attachments.

use crate::spec::kdlv2;

use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{DelayDistribution, Endpoint, ImpairEngine, Impairment, Link, LossModel};
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span, Spanned};
use crate::spec::units::Percent;

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

/// The line every `impair` diagnostic shows as its form.
const IMPAIR_FORM: &str = "impair [delay=\"20ms\"] [jitter=\"5ms\"] [distribution=\"normal\"] [loss=\"1%\"] [rate=\"10mbit\"] [corrupt=\"0.1%\"] [duplicate=\"1%\"] [reorder=\"25%\"] [engine=\"userspace\"] … [{ gilbert-elliott … | four-state … }]";

pub(super) fn parse_impair(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Impairment> {
    let n = Node::new(node, file, diags, IMPAIR_FORM);
    n.max_args(diags, 0);
    impair_settings(n, node, file, diags)
}

/// The form of a fault's `impair`: the end first, then the settings of any `impair`.
const FAULT_IMPAIR_FORM: &str =
    "impair \"CONTAINER:INTERFACE\" [delay=\"200ms\"] [loss=\"10%\"] … (the settings of `impair`)";

/// `impair "r1:eth1" delay="200ms"` inside a test's `fault`: the end (not checked here)
/// and the impairment.
pub(super) fn parse_fault_impair(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> (Option<Spanned<String>>, Option<Impairment>) {
    let n = Node::new(node, file, diags, FAULT_IMPAIR_FORM);
    n.max_args(diags, 1);
    let end = n.str_arg(diags, 0, "an interface (`CONTAINER:INTERFACE`)");
    (end, impair_settings(n, node, file, diags))
}

/// The properties and loss-model children of an `impair` node, checked.
fn impair_settings(
    mut n: Node<'_>,
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Impairment> {
    let duration = |n: &mut Node<'_>, diags: &mut Diagnostics, key: &'static str| {
        n.prop_any(key)
            .and_then(|v| values::duration(diags, v, &format!("`{key}`")))
    };
    let delay = duration(&mut n, diags, "delay");
    let jitter = duration(&mut n, diags, "jitter");
    let rate = n
        .prop_any("rate")
        .and_then(|v| values::rate(diags, v, "`rate`"));
    let percent = |n: &mut Node<'_>, diags: &mut Diagnostics, key: &'static str| {
        let p = n
            .prop_any(key)
            .and_then(|v| values::percent(diags, v, &format!("`{key}`")))?;
        in_range(diags, key, p)
    };
    let loss = percent(&mut n, diags, "loss");
    let corrupt = percent(&mut n, diags, "corrupt");
    let duplicate = percent(&mut n, diags, "duplicate");
    let reorder = percent(&mut n, diags, "reorder");
    let delay_correlation = percent(&mut n, diags, "delay-correlation");
    let loss_correlation = percent(&mut n, diags, "loss-correlation");
    let corrupt_correlation = percent(&mut n, diags, "corrupt-correlation");
    let duplicate_correlation = percent(&mut n, diags, "duplicate-correlation");
    let reorder_correlation = percent(&mut n, diags, "reorder-correlation");
    let distribution = n.prop_any("distribution").and_then(|v| {
        values::choice(
            diags,
            v,
            "distribution",
            &[
                ("uniform", DelayDistribution::Uniform),
                ("normal", DelayDistribution::Normal),
                ("pareto", DelayDistribution::Pareto),
                ("paretonormal", DelayDistribution::Paretonormal),
            ],
        )
    });
    let engine = n.prop_any("engine").and_then(|v| {
        values::choice(
            diags,
            v,
            "engine",
            &[
                ("auto", ImpairEngine::Auto),
                ("kernel", ImpairEngine::Kernel),
                ("userspace", ImpairEngine::Userspace),
            ],
        )
    });
    let int =
        |n: &mut Node<'_>, diags: &mut Diagnostics, key: &'static str, min: i128, max: i128| {
            n.prop_int(diags, key)
                .and_then(|v| values::bounded(diags, v, &format!("`{key}`"), min, max))
        };
    let gap = int(&mut n, diags, "gap", 1, i128::from(u32::MAX)).map(|v| v.map(|g| g as u32));
    let limit = int(&mut n, diags, "limit", 1, i128::from(u32::MAX)).map(|v| v.map(|l| l as u32));
    let packet_overhead = int(
        &mut n,
        diags,
        "packet-overhead",
        i128::from(i32::MIN),
        i128::from(i32::MAX),
    )
    .map(|v| v.map(|o| o as i32));
    let cell_size =
        int(&mut n, diags, "cell-size", 1, i128::from(u32::MAX)).map(|v| v.map(|c| c as u32));
    let cell_overhead = int(
        &mut n,
        diags,
        "cell-overhead",
        i128::from(i32::MIN),
        i128::from(i32::MAX),
    )
    .map(|v| v.map(|o| o as i32));
    let seed = int(&mut n, diags, "seed", 0, i128::from(u64::MAX)).map(|v| v.map(|s| s as u64));
    let head = n.head_span();
    let had_settings = node.entries().iter().any(|e| e.name().is_some());
    let loss_model = parse_loss_models(&n, file, diags);
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
    // `what` needs `base`: "`jitter` needs a `delay`", with the fix as help.
    let needs =
        |diags: &mut Diagnostics, what: &str, span: Option<Span>, base: bool, help: &str| {
            if let (Some(span), false) = (span, base) {
                let (requirement, fix) = help.split_once(": ").unwrap_or((help, ""));
                diags
                    .error(
                        Code::ImpairmentOutOfRange,
                        span,
                        format!("`{what}` needs {requirement}"),
                    )
                    .help(fix.to_string());
            }
        };
    needs(
        diags,
        "jitter",
        jitter.as_ref().map(|j| j.span),
        delay.is_some(),
        "a `delay`: add `delay=\"…\"`: jitter varies the delay around it",
    );
    needs(
        diags,
        "reorder",
        reorder.as_ref().map(|r| r.span),
        delay.is_some(),
        "a `delay`: add `delay=\"…\"`: reordered packets are sent at once, the others after the delay",
    );
    needs(
        diags,
        "distribution",
        distribution.as_ref().map(|d| d.span),
        jitter.is_some(),
        "a `jitter`: add `jitter=\"…\"`: the distribution shapes the jitter",
    );
    needs(
        diags,
        "delay-correlation",
        delay_correlation.as_ref().map(|d| d.span),
        jitter.is_some(),
        "a `jitter`: add `jitter=\"…\"`: the correlation links successive random delays",
    );
    for (key, value, base, base_name) in [
        (
            "loss-correlation",
            &loss_correlation,
            loss.is_some(),
            "loss",
        ),
        (
            "corrupt-correlation",
            &corrupt_correlation,
            corrupt.is_some(),
            "corrupt",
        ),
        (
            "duplicate-correlation",
            &duplicate_correlation,
            duplicate.is_some(),
            "duplicate",
        ),
        (
            "reorder-correlation",
            &reorder_correlation,
            reorder.is_some(),
            "reorder",
        ),
    ] {
        needs(
            diags,
            key,
            value.as_ref().map(|v| v.span),
            base,
            &format!(
                "a `{base_name}`: add `{base_name}=\"…\"`: the correlation links its successive draws"
            ),
        );
    }
    needs(
        diags,
        "gap",
        gap.as_ref().map(|g| g.span),
        reorder.is_some(),
        "a `reorder`: add `reorder=\"…\"`: one packet in `gap` may be sent ahead",
    );
    for (key, span) in [
        ("packet-overhead", packet_overhead.as_ref().map(|v| v.span)),
        ("cell-size", cell_size.as_ref().map(|v| v.span)),
        ("cell-overhead", cell_overhead.as_ref().map(|v| v.span)),
    ] {
        needs(
            diags,
            key,
            span,
            rate.is_some(),
            "a `rate`: add `rate=\"…\"`: overheads count against the rate",
        );
    }
    needs(
        diags,
        "cell-overhead",
        cell_overhead.as_ref().map(|v| v.span),
        cell_size.is_some() || rate.is_none(),
        "a `cell-size`: add `cell-size=48`: the overhead is per cell",
    );
    if let (Some(l), Some(model)) = (&loss, &loss_model) {
        diags
            .error(
                Code::ImpairmentConflict,
                l.span,
                "`loss` and a loss model are both given",
            )
            .related(model.span, "loss model given here")
            .help("keep one: `loss` loses packets independently, the model in bursts");
    }
    let impairment = Impairment {
        delay,
        jitter,
        delay_correlation,
        distribution,
        loss,
        loss_correlation,
        loss_model,
        rate,
        packet_overhead,
        cell_size,
        cell_overhead,
        corrupt,
        corrupt_correlation,
        duplicate,
        duplicate_correlation,
        reorder,
        reorder_correlation,
        gap,
        limit,
        seed,
        engine,
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

/// A percentage from 0% to 100%.
fn in_range(diags: &mut Diagnostics, key: &str, p: Spanned<Percent>) -> Option<Spanned<Percent>> {
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
}

/// The children of `impair`: at most one loss model.
fn parse_loss_models(
    n: &Node<'_>,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<LossModel>> {
    let mut found: Option<Spanned<LossModel>> = None;
    let mut first: Option<Span> = None;
    for child in n.children().map(|d| d.nodes()).unwrap_or_default() {
        let name = child.name().value();
        if !matches!(name, "gilbert-elliott" | "four-state") {
            unknown_node(
                diags,
                child,
                file,
                "an `impair` block",
                &["gilbert-elliott", "four-state"],
            );
            continue;
        }
        let span = Span::from_miette(file, child.name().span());
        if let Some(first) = first {
            diags
                .error(Code::ImpairmentConflict, span, "a second loss model")
                .related(first, "first given here")
                .help("an `impair` has one loss model: keep `gilbert-elliott` or `four-state`");
            continue;
        }
        first = Some(span);
        found = parse_loss_model(child, file, diags).map(|m| Spanned::new(m, span));
    }
    found
}

fn parse_loss_model(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<LossModel> {
    let gilbert = node.name().value() == "gilbert-elliott";
    let form = if gilbert {
        "gilbert-elliott p=\"1%\" [r=\"100%\"] [bad-loss=\"100%\"] [good-loss=\"0%\"]"
    } else {
        "four-state p13=\"1%\" [p31=\"99%\"] [p32=\"0%\"] [p23=\"100%\"] [p14=\"0%\"]"
    };
    let mut n = Node::new(node, file, diags, form);
    n.max_args(diags, 0);
    n.no_children(diags);
    let mut percent = |key: &'static str| {
        let p = n
            .prop_any(key)
            .and_then(|v| values::percent(diags, v, &format!("`{key}`")))?;
        in_range(diags, key, p)
    };
    let model = if gilbert {
        let p = percent("p");
        let r = percent("r");
        let bad_loss = percent("bad-loss");
        let good_loss = percent("good-loss");
        p.map(|p| LossModel::GilbertElliott {
            p: p.value,
            r: r.map_or(Percent(100.0), |r| r.value),
            bad_loss: bad_loss.map_or(Percent(100.0), |b| b.value),
            good_loss: good_loss.map_or(Percent(0.0), |g| g.value),
        })
    } else {
        let p13 = percent("p13");
        let p31 = percent("p31");
        let p32 = percent("p32");
        let p23 = percent("p23");
        let p14 = percent("p14");
        p13.map(|p13| LossModel::FourState {
            p13: p13.value,
            p31: p31.map_or(Percent(100.0 - p13.value.0), |p| p.value),
            p32: p32.map_or(Percent(0.0), |p| p.value),
            p23: p23.map_or(Percent(100.0), |p| p.value),
            p14: p14.map_or(Percent(0.0), |p| p.value),
        })
    };
    let key = if gilbert { "p" } else { "p13" };
    let head = n.head_span();
    n.finish(diags);
    if model.is_none()
        && !node
            .entries()
            .iter()
            .any(|e| e.name().is_some_and(|k| k.value() == key))
    {
        diags
            .error(
                Code::MissingProperty,
                head,
                format!("`{}` needs `{key}`", node.name().value()),
            )
            .help(format!(
                "add `{key}=\"1%\"`: the chance of entering a burst of losses"
            ));
    }
    model
}
