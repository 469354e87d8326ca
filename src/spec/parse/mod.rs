//! KDL document → typed model, node by node, keeping every span.
//!
//! Owns the meaning of each node: which arguments, properties and children it takes and what
//! they become in [`crate::spec::model`]. Walks the KDL tree by hand (serde would lose the
//! spans). Reports local problems (types, units, unknown nodes); cross-references are checked
//! later by `validate`, once imports are merged.

mod container;
mod container_log;
mod container_options;
mod image;
mod test;
mod topology;
mod underlay;
pub(crate) mod values;

use super::kdlv2;

use super::diag::{Code, Diagnostics, did_you_mean};
use super::model::{Driver, Host, Network, Project};
use super::reader::Node;
use super::source::{FileId, Span, Spanned};

/// What one file declares, before imports are merged.
#[derive(Default)]
pub(crate) struct ParsedFile {
    pub(crate) project_name: Option<Spanned<String>>,
    pub(crate) imports: Vec<Spanned<String>>,
    pub(crate) items: Project,
}

const TOP_LEVEL: &[&str] = &[
    "project",
    "import",
    "image",
    "network",
    "container",
    "job",
    "link",
    "test",
    "host",
    "underlay",
];

/// Where a node that is not allowed here does belong, for the `help` line.
fn home_of(name: &str) -> Option<&'static str> {
    if image::STEPS.contains(&name) && container::CHILDREN.contains(&name) {
        Some("an `image` or a `container` block")
    } else if image::STEPS.contains(&name) {
        Some("an `image` block")
    } else if container::CHILDREN.contains(&name) {
        Some("a `container` or `job` block")
    } else if test::ASSERTIONS.contains(&name) {
        Some("a `test` block (or a container's `health` block)")
    } else if name == "fault" || name == "eventually" {
        Some("a `test` block")
    } else if test::FAULTS.contains(&name) {
        Some("a test's `fault` block")
    } else if name == "impair" {
        Some("a `link` block (of the top level or of `underlay`) or a container's `network` block")
    } else if TOP_LEVEL.contains(&name) {
        Some("the top level of the file")
    } else {
        None
    }
}

/// Reports a node that is not allowed where it stands.
pub(crate) fn unknown_node(
    diags: &mut Diagnostics,
    node: &kdlv2::Node,
    file: FileId,
    context: &str,
    allowed: &[&str],
) {
    let name = node.name().value();
    let span = Span::from_miette(file, node.name().span());
    let help = match (did_you_mean(name, allowed.iter().copied()), home_of(name)) {
        (Some(suggestion), _) => Some(suggestion),
        (None, Some(home)) => Some(format!("`{name}` belongs in {home}")),
        (None, None) => Some(format!(
            "{context} takes {}",
            allowed
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    };
    let place = if context == "the top level" {
        format!("at {context}")
    } else {
        format!("in {context}")
    };
    let message = if home_of(name).is_some() {
        format!("`{name}` is not allowed {place}")
    } else {
        format!("unknown node `{name}` {place}")
    };
    diags
        .error(Code::UnknownNode, span, message)
        .maybe_help(help);
}

/// Parses the top level of one file.
pub(crate) fn parse_document(
    doc: &kdlv2::Document,
    file: FileId,
    diags: &mut Diagnostics,
) -> ParsedFile {
    let mut out = ParsedFile::default();
    for node in doc.nodes() {
        match node.name().value() {
            "project" => parse_project(node, file, diags, &mut out),
            "import" => {
                let n = Node::new(
                    node,
                    file,
                    diags,
                    "import \"std:NAME\" | import \"path/to/file.kdl\"",
                );
                if let Some(path) = n.str_arg(diags, 0, "a path") {
                    out.imports.push(path);
                }
                n.max_args(diags, 1);
                n.no_children(diags);
                n.finish(diags);
            }
            "image" => {
                if let Some(image) = image::parse_image(node, file, diags) {
                    out.items.images.push(image);
                }
            }
            "network" => {
                if let Some(network) = parse_network(node, file, diags) {
                    out.items.networks.push(network);
                }
            }
            "container" | "job" => {
                if let Some(container) = container::parse_container(node, file, diags) {
                    out.items.containers.push(container);
                }
            }
            "link" => {
                if let Some(link) = topology::parse_link(node, file, diags) {
                    out.items.links.push(link);
                }
            }
            "test" => {
                if let Some(test) = test::parse_test(node, file, diags) {
                    out.items.tests.push(test);
                }
            }
            "host" => {
                if let Some(host) = parse_host(node, file, diags) {
                    out.items.hosts.push(host);
                }
            }
            "underlay" => out
                .items
                .underlay
                .extend(underlay::parse_underlay(node, file, diags)),
            _ => unknown_node(diags, node, file, "the top level", TOP_LEVEL),
        }
    }
    out
}

fn parse_project(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics, out: &mut ParsedFile) {
    let n = Node::new(node, file, diags, "project \"NAME\"");
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    n.no_children(diags);
    let keyword = n.name_span();
    n.finish(diags);
    let Some(name) = name else { return };
    values::check_name(diags, &name, "project");
    if let Some(first) = &out.project_name {
        diags
            .error(Code::MisplacedNode, keyword, "`project` is declared twice")
            .related(first.span, "first declared here")
            .help("keep one `project` node");
        return;
    }
    out.project_name = Some(name);
}

fn parse_network(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics) -> Option<Network> {
    let usage = "network \"NAME\" subnet=\"10.89.0.0/24\" [internal=#true|egress=#true] [driver=\"bridge\"|\"overlay\"] [vni=N]";
    let mut n = Node::new(node, file, diags, usage);
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    let subnet = n
        .prop_any("subnet")
        .and_then(|v| values::subnet(diags, v, "`subnet`"));
    let internal = n.prop_bool(diags, "internal").is_some_and(|b| b.value);
    let egress = n.prop_bool(diags, "egress").filter(|b| b.value);
    let driver = n.prop_any("driver").and_then(|v| {
        values::choice(
            diags,
            v,
            "network driver",
            &[("bridge", Driver::Bridge), ("overlay", Driver::Overlay)],
        )
    });
    let vni = n
        .prop_any("vni")
        .and_then(|v| v.integer(diags, "`vni`"))
        .and_then(|v| values::bounded(diags, v, "`vni`", 1, i128::from(super::model::VNI_MAX)))
        .map(|v| v.map(|vni| vni as u32));
    n.no_children(diags);
    n.finish(diags);
    let name = name?;
    values::check_name(diags, &name, "network");
    let overlay = driver.as_ref().is_some_and(|d| d.value == Driver::Overlay);
    if let Some(vni) = &vni
        && !overlay
    {
        diags
            .error(
                Code::UnknownProperty,
                vni.span,
                "`vni` is a property of overlay networks",
            )
            .label("a bridge network has no VXLAN identifier")
            .help("add `driver=\"overlay\"`, or remove `vni`");
    }
    if let Some(egress) = &egress {
        if internal {
            diags
                .error(
                    Code::EgressConflict,
                    egress.span,
                    "an `internal` network cannot have `egress`",
                )
                .label("a way out of the topology")
                .help("remove `internal=#true` or `egress=#true`: internal means no way out");
        } else if overlay {
            diags
                .error(
                    Code::EgressConflict,
                    egress.span,
                    "an overlay network cannot have `egress` yet",
                )
                .label("egress is made for bridge networks")
                .help("put the containers that must reach the outside on a bridge network with `egress=#true` as well");
        }
    }
    if overlay && subnet.is_none() {
        diags
            .error(
                Code::MissingProperty,
                name.span,
                format!("overlay network `{}` has no `subnet`", name.value),
            )
            .label("every host must give it the same addresses")
            .help(
                "add `subnet=\"10.77.0.0/16\"`: kiln cannot pick one that every machine agrees on",
            );
    }
    Some(Network {
        name,
        subnet,
        internal,
        egress: egress.is_some(),
        driver: driver.map_or(Driver::Bridge, |d| d.value),
        vni: vni.filter(|_| overlay),
    })
}

fn parse_host(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics) -> Option<Host> {
    let mut n = Node::new(
        node,
        file,
        diags,
        "host \"NAME\" address=\"192.0.2.1\" [cpus=4] [memory=\"8GiB\"] [site=\"east\"]",
    );
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    let address = match n.prop_any("address") {
        Some(v) => values::address(diags, v, "`address`").and_then(|a| underlay_address(diags, a)),
        None => {
            n.required_str(diags, "address");
            None
        }
    };
    let cpus = n
        .prop_any("cpus")
        .and_then(|v| v.number(diags, "`cpus`"))
        .and_then(|cpus| {
            if cpus.value > 0.0 && cpus.value.is_finite() {
                return Some(cpus);
            }
            diags
                .error(Code::InvalidCpus, cpus.span, format!("`cpus` is {}", cpus.value))
                .label("must be greater than 0")
                .help("give the number of CPUs containers may use on the host, or remove `cpus` for no limit");
            None
        });
    let memory = n
        .prop_any("memory")
        .and_then(|v| values::size(diags, v, "`memory`"));
    let site = n.prop_any("site").and_then(|v| v.string(diags, "`site`"));
    n.no_children(diags);
    n.finish(diags);
    if let Some(site) = &site {
        values::check_name(diags, site, "site");
    }
    let name = name?;
    values::check_name(diags, &name, "host");
    Some(Host {
        name,
        address,
        cpus,
        memory,
        site,
    })
}

/// A host's underlay address must be one a VXLAN socket can send from and to: a unicast
/// address (not `0.0.0.0`, a multicast group or the broadcast address).
fn underlay_address(
    diags: &mut Diagnostics,
    address: Spanned<std::net::IpAddr>,
) -> Option<Spanned<std::net::IpAddr>> {
    let reason = match address.value {
        ip if ip.is_unspecified() => Some("the unspecified address is no host's"),
        ip if ip.is_multicast() => Some("a multicast group is no host's address"),
        std::net::IpAddr::V4(v4) if v4.is_broadcast() => Some("the broadcast address is no host's"),
        _ => None,
    };
    let Some(reason) = reason else {
        return Some(address);
    };
    diags
        .error(
            Code::InvalidAddress,
            address.span,
            format!("invalid host address `{}`", address.value),
        )
        .label(reason)
        .help("give the unicast address by which the other hosts reach this one, e.g. `\"192.0.2.1\"`");
    None
}
