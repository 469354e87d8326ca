//! `test` blocks (assertions about a running topology) and `health` probes.

use kdl::KdlValue;

use crate::spec::kdlv2;

use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{
    Assertion, Check, Fault, FaultAction, PingExpect, Probe, TcpExpect, Test,
};
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span, Spanned};
use crate::spec::units::Duration;

pub(super) const ASSERTIONS: &[&str] = &["http", "dns", "ping", "tcp", "exec"];

pub(super) fn parse_test(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Test> {
    let n = Node::new(
        node,
        file,
        diags,
        "test \"NAME\" { http …; dns …; ping …; tcp …; exec … }",
    );
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    n.finish(diags);
    let mut assertions = Vec::new();
    let mut faults = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        match child.name().value() {
            "fault" => faults.extend(parse_fault(child, file, diags)),
            "eventually" => assertions.extend(parse_eventually(child, file, diags)),
            keyword if ASSERTIONS.contains(&keyword) => {
                if let Some(assertion) = parse_assertion(child, file, diags) {
                    assertions.push(Check {
                        assertion,
                        within: None,
                    });
                }
            }
            _ => unknown_node(diags, child, file, "a `test` block", TEST_NODES),
        }
    }
    Some(Test {
        name: name?,
        assertions,
        faults,
    })
}

/// What a `test` block holds.
const TEST_NODES: &[&str] = &["http", "dns", "ping", "tcp", "exec", "eventually", "fault"];

/// What a `fault` block holds: one of these.
pub(super) const FAULTS: &[&str] = &["link-down", "stop", "kill", "pause", "impair"];

/// `eventually within="5s" { ASSERTION… }`: its assertions, each tried again until it
/// passes or the time is up.
fn parse_eventually(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics) -> Vec<Check> {
    let mut n = Node::new(
        node,
        file,
        diags,
        "eventually within=\"5s\" { http …; ping …; tcp …; dns …; exec … }",
    );
    n.max_args(diags, 0);
    let within = match n.prop_any("within") {
        Some(v) => values::duration(diags, v, "`within`"),
        None => {
            diags
                .error(
                    Code::MissingProperty,
                    n.name_span(),
                    "`eventually` needs `within=`",
                )
                .help("say how long it may take to come true: `eventually within=\"5s\" { … }`");
            None
        }
    };
    let head = n.name_span();
    n.finish(diags);
    let mut checks = Vec::new();
    let mut seen = false;
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        seen = true;
        if !ASSERTIONS.contains(&child.name().value()) {
            unknown_node(diags, child, file, "an `eventually` block", ASSERTIONS);
            continue;
        }
        if let Some(assertion) = parse_assertion(child, file, diags) {
            checks.push(Check {
                assertion,
                within: within.clone(),
            });
        }
    }
    if !seen {
        diags
            .error(Code::EmptyBlock, head, "`eventually` has no assertion")
            .help("put what must come true inside: `eventually within=\"5s\" { ping from=\"a\" \"b\" }`");
    }
    checks
}

/// `fault at="1s" for="2s" { link-down "r1:eth1" }`.
fn parse_fault(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<Fault>> {
    let mut n = Node::new(
        node,
        file,
        diags,
        "fault at=\"1s\" [for=\"2s\"] { link-down \"CONTAINER:INTERFACE\" | stop \"CONTAINER\" | kill \"CONTAINER\" | pause \"CONTAINER\" | impair \"CONTAINER:INTERFACE\" delay=… }",
    );
    n.max_args(diags, 0);
    let at = n
        .prop_any("at")
        .and_then(|v| values::duration(diags, v, "`at`"))
        .map_or(Duration(0), |d| d.value);
    let lasts = n
        .prop_any("for")
        .and_then(|v| values::duration(diags, v, "`for`"));
    if let Some(lasts) = &lasts
        && lasts.value.0 == 0
    {
        diags
            .error(Code::ValueOutOfRange, lasts.span, "a fault lasts longer than 0s")
            .help("give it a duration (`for=\"2s\"`), or leave `for` out: it lasts until the test ends");
    }
    let head = n.name_span();
    let span = n.span();
    n.finish(diags);
    let children: Vec<&kdlv2::Node> = node
        .children()
        .map(|d| d.nodes())
        .unwrap_or_default()
        .iter()
        .collect();
    let mut actions = Vec::new();
    for child in &children {
        if !FAULTS.contains(&child.name().value()) {
            unknown_node(diags, child, file, "a `fault` block", FAULTS);
            continue;
        }
        actions.extend(parse_action(child, file, diags));
    }
    match children.len() {
        0 => {
            diags
                .error(Code::EmptyBlock, head, "`fault` says nothing goes wrong")
                .help("put one fault inside: `fault at=\"1s\" { link-down \"r1:eth1\" }`");
            return None;
        }
        1 => {}
        _ => {
            let second = Span::from_miette(file, children[1].span());
            diags
                .error(Code::EmptyBlock, second, "a `fault` holds one fault")
                .label("a second one")
                .help("give each its own `fault` block (they may share `at` and `for`)");
            return None;
        }
    }
    Some(Spanned::new(
        Fault {
            at,
            lasts: lasts.map(|l| l.value),
            action: actions.pop()?,
        },
        span,
    ))
}

fn parse_action(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<FaultAction>> {
    let keyword = node.name().value();
    if keyword == "impair" {
        let (end, impairment) = super::topology::parse_fault_impair(node, file, diags);
        let end = end.filter(|end| well_formed_end(diags, end, keyword))?;
        return Some(Spanned::new(
            FaultAction::Impair {
                end,
                impairment: Box::new(impairment?),
            },
            Span::from_miette(file, node.span()),
        ));
    }
    let usage = match keyword {
        "link-down" => "link-down \"CONTAINER:INTERFACE\"",
        "stop" => "stop \"CONTAINER\"",
        "pause" => "pause \"CONTAINER\"",
        _ => "kill \"CONTAINER\"",
    };
    let n = Node::new(node, file, diags, usage);
    n.no_children(diags);
    n.max_args(diags, 1);
    let action = match keyword {
        "link-down" => {
            let end = n.str_arg(diags, 0, "an interface (`CONTAINER:INTERFACE`)")?;
            well_formed_end(diags, &end, keyword).then_some(FaultAction::LinkDown { end })
        }
        "stop" => Some(FaultAction::Stop {
            container: n.str_arg(diags, 0, "a container")?,
        }),
        "pause" => Some(FaultAction::Pause {
            container: n.str_arg(diags, 0, "a container")?,
        }),
        _ => Some(FaultAction::Kill {
            container: n.str_arg(diags, 0, "a container")?,
        }),
    };
    let span = n.span();
    n.finish(diags);
    action.map(|a| Spanned::new(a, span))
}

/// Whether a fault's `CONTAINER:INTERFACE` has that form (reported when it does not).
fn well_formed_end(diags: &mut Diagnostics, end: &Spanned<String>, keyword: &str) -> bool {
    let well_formed = end
        .value
        .split_once(':')
        .is_some_and(|(c, i)| !c.is_empty() && !i.is_empty() && !i.contains(':'));
    if !well_formed {
        diags
            .error(
                Code::InvalidLinkEndpoint,
                end.span,
                format!("`{}` is not `container:interface`", end.value),
            )
            .help(format!(
                "name the interface with its container: `{keyword} \"r1:eth1\"`"
            ));
    }
    well_formed
}

fn usage(keyword: &str) -> &'static str {
    match keyword {
        "http" => {
            "http from=\"CONTAINER\" \"http://NAME:PORT/PATH\" [status=200] [contains=\"TEXT\"]"
        }
        "dns" => "dns from=\"CONTAINER\" \"NAME\" [expect=\"ADDRESS\"|\"nxdomain\"]",
        "ping" => {
            "ping from=\"CONTAINER\" \"TARGET\" [count=3] [min-rtt=\"20ms\"] [max-rtt=\"50ms\"] [expect=\"reachable\"|\"unreachable\"]"
        }
        "tcp" => {
            "tcp from=\"CONTAINER\" \"HOST:PORT\" [expect=\"open\"|\"refused\"|\"timeout\"] [timeout=\"1s\"]"
        }
        _ => "exec \"CONTAINER\" \"PROGRAM\" \"ARG\"… [stdout=\"TEXT\"] [exit=0]",
    }
}

fn parse_assertion(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<Assertion>> {
    let keyword = node.name().value();
    let mut n = Node::new(node, file, diags, usage(keyword));
    n.no_children(diags);
    let from = if keyword == "exec" {
        None
    } else {
        n.required_str(diags, "from")
    };
    let assertion = match keyword {
        "http" => {
            n.max_args(diags, 1);
            let url = n
                .str_arg(diags, 0, "a URL")
                .and_then(|u| check_url(diags, u));
            let status = status(&mut n, diags);
            let contains = n.prop_str(diags, "contains");
            Some(Assertion::Http {
                from: from?,
                url: url?,
                status,
                contains,
            })
        }
        "dns" => {
            n.max_args(diags, 1);
            let name = n.str_arg(diags, 0, "a name to resolve");
            let expect = match n.prop_any("expect") {
                None => None,
                Some(v) => match v.value {
                    KdlValue::String(s) if s == "nxdomain" => Some(Vec::new()),
                    _ => {
                        let text = v.string(diags, "`expect`")?;
                        let mut addresses = Vec::new();
                        for (offset, part) in split_commas(&text.value) {
                            let span = crate::spec::source::Span::new(
                                text.span.file,
                                text.span.offset as usize + 1 + offset,
                                part.len(),
                            );
                            match part.parse() {
                                Ok(ip) => addresses.push(Spanned::new(ip, span)),
                                Err(_) => {
                                    diags
                                        .error(Code::InvalidAddress, span, format!("invalid address `{part}`"))
                                        .label("not an IP address")
                                        .help("write `expect=\"10.89.0.10\"`, several separated by commas, or `expect=\"nxdomain\"`");
                                }
                            }
                        }
                        Some(addresses)
                    }
                },
            };
            Some(Assertion::Dns {
                from: from?,
                name: name?,
                expect,
            })
        }
        "ping" => {
            n.max_args(diags, 1);
            let target = n.str_arg(diags, 0, "a target");
            let count = n
                .prop_int(diags, "count")
                .and_then(|c| values::bounded(diags, c, "`count`", 1, 1000))
                .map_or(3, |c| c.value as u32);
            let min_rtt = n
                .prop_any("min-rtt")
                .and_then(|v| values::duration(diags, v, "`min-rtt`"));
            let max_rtt = n
                .prop_any("max-rtt")
                .and_then(|v| values::duration(diags, v, "`max-rtt`"));
            if let (Some(min), Some(max)) = (&min_rtt, &max_rtt)
                && min.value.0 > max.value.0
            {
                diags
                    .error(
                        Code::ValueOutOfRange,
                        min.span,
                        format!("`min-rtt` is above `max-rtt` ({})", max.value),
                    )
                    .related(max.span, "`max-rtt` given here")
                    .help("no round trip can be both: swap them");
            }
            let expect = n
                .prop_any("expect")
                .and_then(|v| {
                    values::choice(
                        diags,
                        v,
                        "expectation",
                        &[
                            ("reachable", PingExpect::Reachable),
                            ("unreachable", PingExpect::Unreachable),
                        ],
                    )
                })
                .map_or(PingExpect::Reachable, |e| e.value);
            Some(Assertion::Ping {
                from: from?,
                target: target?,
                count,
                min_rtt,
                max_rtt,
                expect,
            })
        }
        "tcp" => {
            n.max_args(diags, 1);
            let address = n
                .str_arg(diags, 0, "an address")
                .and_then(|a| check_host_port(diags, a));
            let expect = n
                .prop_any("expect")
                .and_then(|v| {
                    values::choice(
                        diags,
                        v,
                        "expectation",
                        &[
                            ("open", TcpExpect::Open),
                            ("refused", TcpExpect::Refused),
                            ("timeout", TcpExpect::Timeout),
                        ],
                    )
                })
                .map_or(TcpExpect::Open, |e| e.value);
            let timeout = n
                .prop_any("timeout")
                .and_then(|v| values::duration(diags, v, "`timeout`"))
                .map_or(Duration::from_millis(1_000), |d| d.value);
            Some(Assertion::Tcp {
                from: from?,
                address: address?,
                expect,
                timeout,
            })
        }
        _ => {
            let container = n.str_arg(diags, 0, "a container");
            let command = if n.arg_count() >= 1 {
                n.str_args(diags, 1, 1, "a command")
            } else {
                Vec::new()
            };
            let stdout = n.prop_str(diags, "stdout");
            let exit = n
                .prop_int(diags, "exit")
                .and_then(|e| values::bounded(diags, e, "`exit`", 0, 255))
                .map_or(0, |e| e.value as i32);
            if command.is_empty() {
                None
            } else {
                Some(Assertion::Exec {
                    container: container?,
                    command,
                    stdout,
                    exit,
                })
            }
        }
    };
    let span = n.span();
    n.finish(diags);
    assertion.map(|a| Spanned::new(a, span))
}

/// `status=` of an http check or probe: a status code, 200 when absent.
fn status(n: &mut Node<'_>, diags: &mut Diagnostics) -> u16 {
    n.prop_int(diags, "status")
        .and_then(|s| values::bounded(diags, s, "`status`", 100, 599))
        .map_or(200, |s| s.value as u16)
}

fn split_commas(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut offset = 0;
    for part in text.split(',') {
        let trimmed = part.trim();
        let lead = part.len() - part.trim_start().len();
        out.push((offset + lead, trimmed));
        offset += part.len() + 1;
    }
    out
}

/// kiln probes plain HTTP itself: `http://HOST[:PORT][/PATH]`.
fn check_url(diags: &mut Diagnostics, url: Spanned<String>) -> Option<Spanned<String>> {
    let problem = match url.value.strip_prefix("http://") {
        None if url.value.starts_with("https://") => Some("kiln probes plain HTTP only"),
        None => Some("the URL must start with `http://`"),
        Some(rest) => {
            let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
            if authority.is_empty() {
                Some("the URL has no host")
            } else if let Some((_, port)) = authority.rsplit_once(':')
                && !authority.ends_with(']')
                && port.parse::<u16>().map_or(true, |p| p == 0)
            {
                Some("the port is not a number from 1 to 65535")
            } else {
                None
            }
        }
    };
    match problem {
        Some(problem) => {
            let help = if url.value.starts_with("https://") {
                "probe a plain HTTP port of the service, or use an `exec` probe that runs an HTTPS client".to_string()
            } else if !url.value.contains("://") && !url.value.is_empty() {
                format!("add the scheme: `\"http://{}\"`", url.value)
            } else {
                "write `\"http://NAME:PORT/PATH\"`".to_string()
            };
            diags
                .error(
                    Code::InvalidUrl,
                    url.span,
                    format!("invalid URL `{}`", url.value),
                )
                .label(problem)
                .help(help);
            None
        }
        None => Some(url),
    }
}

/// `HOST:PORT` (or `[V6]:PORT`) for tcp checks.
fn check_host_port(diags: &mut Diagnostics, address: Spanned<String>) -> Option<Spanned<String>> {
    let ok = address
        .value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Some(address)
    } else {
        diags
            .error(
                Code::InvalidAddress,
                address.span,
                format!("invalid address `{}`", address.value),
            )
            .label("expected `HOST:PORT`")
            .help("write `\"web:8080\"` or `\"10.89.0.10:8080\"`");
        None
    }
}

/// A probe in a `health` block: `http URL [status=]`, `tcp "HOST:PORT"|PORT`, `exec ARGS…`.
pub(super) fn parse_probe(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<Probe>> {
    let keyword = node.name().value();
    let usage = match keyword {
        "http" => "http \"http://127.0.0.1:PORT/PATH\" [status=200]",
        "tcp" => "tcp PORT | tcp \"HOST:PORT\"",
        _ => "exec \"PROGRAM\" \"ARG\"…",
    };
    let mut n = Node::new(node, file, diags, usage);
    n.no_children(diags);
    let probe = match keyword {
        "http" => {
            n.max_args(diags, 1);
            let url = n
                .str_arg(diags, 0, "a URL")
                .and_then(|u| check_url(diags, u));
            let status = status(&mut n, diags);
            url.map(|url| Probe::Http { url, status })
        }
        "tcp" => {
            n.max_args(diags, 1);
            n.any_arg(diags, 0, "a port").and_then(|v| match v.value {
                KdlValue::Integer(_) => values::port(diags, v, "the port").map(|p| Probe::Tcp {
                    address: Spanned::new(format!("127.0.0.1:{}", p.value), p.span),
                }),
                _ => v
                    .string(diags, "the address")
                    .and_then(|a| check_host_port(diags, a))
                    .map(|address| Probe::Tcp { address }),
            })
        }
        _ => {
            let command = n.str_args(diags, 0, 1, "a command");
            (!command.is_empty()).then_some(Probe::Exec { command })
        }
    };
    let span = n.span();
    n.finish(diags);
    probe.map(|p| Spanned::new(p, span))
}
