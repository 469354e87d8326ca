//! `image` blocks: the base and the build steps.

use kdl::KdlValue;

use crate::spec::kdlv2;

use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{FromRef, Image, PortSpec, Protocol, RunCommand, Step};
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span, Spanned};

pub(super) const STEPS: &[&str] = &[
    "from",
    "copy",
    "host-binary",
    "host-path",
    "run",
    "env",
    "workdir",
    "user",
    "expose",
    "label",
    "entrypoint",
    "cmd",
    "volume",
    "stop-signal",
];

pub(super) fn parse_image(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Image> {
    let n = Node::new(node, file, diags, "image \"NAME\" { from \"scratch\"; … }");
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    n.finish(diags);
    let mut from: Option<Spanned<FromRef>> = None;
    let mut from_seen = false;
    let mut steps = Vec::new();
    for child in node.children().map(|c| c.nodes()).unwrap_or_default() {
        if child.name().value() != "from" {
            if let Some(step) = parse_step(child, file, diags) {
                steps.push(step);
            }
            continue;
        }
        let keyword = Span::from_miette(file, child.name().span());
        let parsed = parse_from(child, file, diags);
        if let Some(first) = &from {
            diags
                .error(Code::MissingFrom, keyword, "an image has one `from`")
                .label("a second base")
                .related(first.span, "the base is already set here")
                .help("use `copy … from=\"IMAGE\"` to take files from another image");
        } else if !steps.is_empty() {
            diags
                .error(Code::MissingFrom, keyword, "`from` must be the first step")
                .help("move `from` to the top of the image block");
        } else {
            from = parsed;
        }
        from_seen = true;
    }
    let name = name?;
    values::check_name(diags, &name, "image");
    if !from_seen {
        diags
            .error(
                Code::MissingFrom,
                name.span,
                format!("image `{}` has no `from`", name.value),
            )
            .help("start the block with `from \"scratch\"` or `from \"IMAGE\"`");
    }
    Some(Image { name, from, steps })
}

fn parse_from(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<FromRef>> {
    let n = Node::new(
        node,
        file,
        diags,
        "from \"scratch\" | from \"IMAGE\" | from \"oci-archive:PATH\"",
    );
    let base = n.str_arg(diags, 0, "a base image");
    n.max_args(diags, 1);
    n.no_children(diags);
    n.finish(diags);
    let base = base?;
    let parsed = FromRef::parse(&base.value);
    if let FromRef::OciArchive(path) | FromRef::DockerArchive(path) = &parsed
        && path.is_empty()
    {
        diags
            .error(
                Code::MissingArgument,
                base.span,
                "the archive path is empty",
            )
            .help("write `from \"oci-archive:path/to/image.tar\"`");
        return None;
    }
    Some(Spanned::new(parsed, base.span))
}

/// Key/value properties (`env K="V"`, `label "k"="v"`), all strings.
pub(super) fn string_props(
    n: &mut Node<'_>,
    diags: &mut Diagnostics,
    what: &str,
) -> Vec<(Spanned<String>, Spanned<String>)> {
    let mut out = Vec::new();
    for (key, value) in n.all_props() {
        let v = match value.value {
            KdlValue::Integer(i) => Some(Spanned::new(i.to_string(), value.span)),
            KdlValue::Float(f) => Some(Spanned::new(f.to_string(), value.span)),
            _ => value.string(diags, &format!("{what} `{}`", key.value)),
        };
        if let Some(v) = v {
            out.push((key, v));
        }
    }
    out
}

fn parse_step(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics) -> Option<Spanned<Step>> {
    let keyword = node.name().value();
    let usage = match keyword {
        "copy" => "copy \"SRC\"… \"DST\" [from=\"IMAGE\"]",
        "host-binary" => "host-binary \"/usr/bin/PROGRAM\"…",
        "host-path" => "host-path \"/PATH\"…",
        "run" => "run \"PROGRAM\" \"ARG\"… [network=#true] | run \"SHELL SCRIPT\"",
        "env" => "env KEY=\"VALUE\"…",
        "workdir" => "workdir \"/PATH\"",
        "user" => "user \"UID[:GID]\"",
        "expose" => "expose 8080 | expose \"53/udp\"",
        "label" => "label \"KEY\"=\"VALUE\"…",
        "entrypoint" => "entrypoint \"PROGRAM\" \"ARG\"…",
        "cmd" => "cmd \"ARG\"…",
        "volume" => "volume \"/PATH\"…",
        "stop-signal" => "stop-signal \"SIGTERM\"",
        _ => {
            unknown_node(diags, node, file, "an `image` block", STEPS);
            return None;
        }
    };
    let mut n = Node::new(node, file, diags, usage);
    n.no_children(diags);
    let step = match keyword {
        "copy" => {
            let mut args = if n.arg_count() == 1 {
                diags
                    .error(
                        Code::MissingArgument,
                        n.head_span(),
                        "`copy` is missing a destination",
                    )
                    .label("one path: the source")
                    .help(
                        "write it as `copy \"SRC\"… \"DST\"`, e.g. `copy \"site/\" \"/srv/www/\"`",
                    );
                Vec::new()
            } else {
                n.str_args(diags, 0, 2, "a source and a destination")
            };
            let from = n.prop_str(diags, "from");
            if args.len() < 2 {
                None
            } else {
                let destination = args.pop().expect("two or more");
                Some(Step::Copy {
                    sources: args,
                    destination,
                    from,
                })
            }
        }
        "host-binary" => Some(Step::HostBinary {
            paths: absolute_paths(&n, diags),
        }),
        "host-path" => Some(Step::HostPath {
            paths: absolute_paths(&n, diags),
        }),
        "run" => {
            let network = n.prop_bool(diags, "network").is_some_and(|b| b.value);
            let mut args = n.str_args(diags, 0, 1, "a command");
            let command = if args.len() == 1 && args[0].value.contains(char::is_whitespace) {
                RunCommand::Shell(args.pop().expect("one"))
            } else if args.is_empty() {
                return None;
            } else {
                RunCommand::Exec(args)
            };
            Some(Step::Run { command, network })
        }
        "env" => {
            n.max_args(diags, 0);
            let vars = string_props(&mut n, diags, "env");
            if vars.is_empty() && n.arg_count() == 0 {
                diags
                    .error(
                        Code::MissingArgument,
                        n.name_span(),
                        "`env` sets no variable",
                    )
                    .help("write it as `env KEY=\"VALUE\"`");
            }
            Some(Step::Env { vars })
        }
        "label" => {
            n.max_args(diags, 0);
            let labels = string_props(&mut n, diags, "label");
            if labels.is_empty() && n.arg_count() == 0 {
                diags
                    .error(
                        Code::MissingArgument,
                        n.name_span(),
                        "`label` sets no label",
                    )
                    .help("write it as `label \"KEY\"=\"VALUE\"`");
            }
            Some(Step::Label { labels })
        }
        "workdir" => {
            n.max_args(diags, 1);
            n.str_arg(diags, 0, "a path")
                .map(|path| Step::Workdir { path })
        }
        "user" => {
            n.max_args(diags, 1);
            let user = n.any_arg(diags, 0, "a user").and_then(|v| match v.value {
                KdlValue::Integer(i) => Some(Spanned::new(i.to_string(), v.span)),
                _ => v.string(diags, "the user"),
            });
            user.map(|user| Step::User { user })
        }
        "expose" => {
            if n.arg_count() == 0 {
                n.any_arg(diags, 0, "a port");
            }
            let ports = (0..n.arg_count())
                .filter_map(|i| n.arg(i))
                .filter_map(|v| port_spec(diags, v))
                .collect();
            Some(Step::Expose { ports })
        }
        "entrypoint" => Some(Step::Entrypoint {
            args: n.str_args(diags, 0, 1, "a program"),
        }),
        "cmd" => Some(Step::Cmd {
            args: n.str_args(diags, 0, 1, "a command"),
        }),
        "volume" => Some(Step::Volume {
            paths: absolute_paths(&n, diags),
        }),
        "stop-signal" => {
            n.max_args(diags, 1);
            n.any_arg(diags, 0, "a signal")
                .and_then(|v| values::signal(diags, v, "the stop signal"))
                .map(|signal| Step::StopSignal { signal })
        }
        _ => unreachable!("every keyword with a usage is handled"),
    };
    let span = n.span();
    n.finish(diags);
    step.map(|s| Spanned::new(s, span))
}

/// `8080`, `"8080"`, `"53/udp"`.
pub(super) fn port_spec(
    diags: &mut Diagnostics,
    value: crate::spec::reader::Value<'_>,
) -> Option<Spanned<PortSpec>> {
    if let KdlValue::Integer(_) = value.value {
        let port = values::port(diags, value, "the port")?;
        return Some(port.map(|port| PortSpec {
            port,
            protocol: Protocol::Tcp,
        }));
    }
    let text = value.string(diags, "the port")?;
    let (number, protocol) = match text.value.split_once('/') {
        None => (text.value.as_str(), Protocol::Tcp),
        Some((n, "tcp")) => (n, Protocol::Tcp),
        Some((n, "udp")) => (n, Protocol::Udp),
        Some((_, other)) => {
            diags
                .error(
                    Code::InvalidChoice,
                    text.span,
                    format!("invalid protocol `{other}`"),
                )
                .label("expected `tcp` or `udp`");
            return None;
        }
    };
    match number.parse::<u16>() {
        Ok(port) if port > 0 => Some(Spanned::new(PortSpec { port, protocol }, text.span)),
        _ => {
            diags
                .error(
                    Code::InvalidPort,
                    text.span,
                    format!("invalid port `{}`", text.value),
                )
                .label("ports go from 1 to 65535")
                .help("write `8080` or `\"53/udp\"`");
            None
        }
    }
}

/// Host paths and image paths in `host-binary`, `host-path`, `volume` are absolute.
fn absolute_paths(n: &Node<'_>, diags: &mut Diagnostics) -> Vec<Spanned<String>> {
    let paths = n.str_args(diags, 0, 1, "a path");
    for path in &paths {
        if !path.value.starts_with('/') {
            diags
                .error(
                    Code::WrongType,
                    path.span,
                    format!("`{}` takes absolute paths", n.name()),
                )
                .label("this path is relative")
                .help(format!(
                    "write `\"/{}\"`",
                    path.value.trim_start_matches("./")
                ));
        }
    }
    paths
}
