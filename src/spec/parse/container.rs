//! `container` and `job` blocks: what runs, where it attaches, its limits, health and order.

use kdl::KdlValue;

use crate::spec::kdlv2;

use super::container_options;
use super::image::string_props;
use super::test::parse_probe;
use super::topology::parse_impair_block;
use super::{unknown_node, values};
use crate::spec::diag::{Code, Diagnostics, did_you_mean};
use crate::spec::model::{
    Attachment, Condition, Container, ContainerKind, Dependency, Health, Protocol, Publish,
    RestartPolicy, Seccomp, Volume, VolumeSource,
};
use crate::spec::reader::Node;
use crate::spec::source::{FileId, Span, Spanned};
use crate::spec::units::Duration;

pub(super) const CHILDREN: &[&str] = &[
    "network",
    "publish",
    "publish-all",
    "env",
    "volume",
    "memory",
    "cpus",
    "pids",
    "restart",
    "health",
    "depends-on",
    "entrypoint",
    "cmd",
    "workdir",
    "user",
    "hostname",
    "stop-signal",
    "seccomp",
    "read-only",
    "tmpfs",
    "cap-add",
    "cap-drop",
    "ulimit",
    "sysctl",
    "stop-timeout",
    "label",
    "privileged",
    "init",
    "device",
    "env-file",
    "log",
    "add-host",
    "dns",
    "dns-search",
    "dns-option",
];

/// Children that may appear more than once; every other child is a single setting.
const REPEATABLE: &[&str] = &[
    "network",
    "publish",
    "env",
    "volume",
    "depends-on",
    "tmpfs",
    "cap-add",
    "cap-drop",
    "ulimit",
    "sysctl",
    "label",
    "device",
    "env-file",
    "add-host",
    "dns",
    "dns-search",
    "dns-option",
];

/// What a job does not take: it runs once to completion.
const NOT_IN_JOBS: &[&str] = &["publish", "publish-all", "health"];

pub(super) fn parse_container(
    node: &kdlv2::Node,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Container> {
    let kind = if node.name().value() == "job" {
        ContainerKind::Job
    } else {
        ContainerKind::Service
    };
    let usage = match kind {
        ContainerKind::Service => {
            "container \"NAME\" image=\"IMAGE\" [replicas=N] [host=\"HOST\"] { … }"
        }
        ContainerKind::Job => "job \"NAME\" image=\"IMAGE\" [host=\"HOST\"] { … }",
    };
    let mut n = Node::new(node, file, diags, usage);
    let name = n.str_arg(diags, 0, "a name");
    n.max_args(diags, 1);
    let image = n.required_str(diags, "image");
    let replicas = if kind == ContainerKind::Service {
        n.prop_int(diags, "replicas")
    } else {
        if let Some((key, _)) = n.prop_with_key("replicas") {
            diags
                .error(Code::UnknownProperty, key, "a job has no `replicas`")
                .label("a job runs once, to completion")
                .help("declare several jobs, or make it a `container`");
        }
        None
    };
    let host = n.prop_str(diags, "host");
    let head = n.head_span();
    n.finish(diags);

    let replicas = match replicas {
        Some(r) if r.value < 1 => {
            diags
                .error(
                    Code::InvalidReplicas,
                    r.span,
                    format!("`replicas` is {}", r.value),
                )
                .label("must be at least 1")
                .help("remove the container, or set `replicas=1`");
            Spanned::new(1, r.span)
        }
        Some(r) => match u32::try_from(r.value) {
            Ok(v) if v <= 1000 => Spanned::new(v, r.span),
            _ => {
                diags
                    .error(
                        Code::InvalidReplicas,
                        r.span,
                        format!("`replicas` is {}", r.value),
                    )
                    .label("kiln runs at most 1000 replicas of one container");
                Spanned::new(1, r.span)
            }
        },
        None => Spanned::new(1, head),
    };

    let mut c = Container {
        name: name
            .clone()
            .unwrap_or_else(|| Spanned::new(String::new(), head)),
        kind,
        image: image.unwrap_or_else(|| Spanned::new(String::new(), head)),
        replicas,
        host,
        networks: Vec::new(),
        publish: Vec::new(),
        publish_all: false,
        env: Vec::new(),
        volumes: Vec::new(),
        memory: None,
        cpus: None,
        pids: None,
        restart: Spanned::new(RestartPolicy::No, head),
        health: None,
        depends_on: Vec::new(),
        entrypoint: None,
        cmd: None,
        workdir: None,
        user: None,
        hostname: None,
        stop_signal: None,
        seccomp: None,
        read_only: false,
        tmpfs: Vec::new(),
        cap_add: Vec::new(),
        cap_drop: Vec::new(),
        ulimits: Vec::new(),
        sysctls: Vec::new(),
        stop_timeout: None,
        labels: Vec::new(),
        add_hosts: Vec::new(),
        dns: Vec::new(),
        dns_search: Vec::new(),
        dns_options: Vec::new(),
        env_files: Vec::new(),
        privileged: false,
        init: false,
        devices: Vec::new(),
        log: None,
    };
    let context = match kind {
        ContainerKind::Service => "a `container` block",
        ContainerKind::Job => "a `job` block",
    };
    let allowed: Vec<&str> = CHILDREN
        .iter()
        .copied()
        .filter(|c| kind == ContainerKind::Service || !NOT_IN_JOBS.contains(c))
        .collect();
    let mut settings_seen: Vec<(&str, Span)> = Vec::new();
    for child in node.children().map(|d| d.nodes()).unwrap_or_default() {
        let keyword = child.name().value();
        if !allowed.contains(&keyword) {
            unknown_node(diags, child, file, context, &allowed);
            continue;
        }
        if !REPEATABLE.contains(&keyword) {
            let span = Span::from_miette(file, child.name().span());
            if let Some((_, first)) = settings_seen.iter().find(|(k, _)| *k == keyword) {
                diags
                    .error(
                        Code::MisplacedNode,
                        span,
                        format!("`{keyword}` is given twice"),
                    )
                    .label("given again here")
                    .related(*first, "first given here")
                    .help(format!(
                        "a {} has one `{keyword}`: keep one of them",
                        node.name().value()
                    ));
                continue;
            }
            settings_seen.push((keyword, span));
        }
        parse_child(child, file, diags, &mut c);
    }
    if let Some(name) = &name {
        values::check_name(diags, name, "container");
    }
    container_options::check_networks(&c, diags);
    name.map(|_| c)
}

fn parse_child(node: &kdlv2::Node, file: FileId, diags: &mut Diagnostics, c: &mut Container) {
    let keyword = node.name().value();
    let usage = match keyword {
        "network" => "network \"NAME\" [ip=\"ADDRESS\"] [alias=\"NAME\"] [{ impair … }]",
        "publish" => {
            "publish PORT host=HOST_PORT [address=\"127.0.0.1\"] [protocol=\"tcp\"|\"udp\"] [max-connections=N] [idle-timeout=\"1h\"]"
        }
        "publish-all" => "publish-all [#true|#false]",
        "env" => "env KEY=\"VALUE\"…",
        "label" => "label KEY=\"VALUE\"…",
        "volume" => "volume \"SOURCE\" \"/TARGET\" [ro=#true]",
        "memory" => "memory \"128MiB\"",
        "cpus" => "cpus 0.5",
        "pids" => "pids 64",
        "restart" => {
            "restart \"no\"|\"on-failure\"|\"always\"|\"unless-stopped\"|\"on-unhealthy\" [max=N]"
        }
        "health" => {
            "health [interval=\"1s\"] [timeout=\"2s\"] [retries=3] [start-period=\"0s\"] { http …; tcp …; exec … }"
        }
        "depends-on" => "depends-on \"NAME\"… [condition=\"started\"|\"healthy\"|\"completed\"]",
        "entrypoint" => "entrypoint \"PROGRAM\" \"ARG\"…",
        "cmd" => "cmd \"PROGRAM\" \"ARG\"…",
        "workdir" => "workdir \"/PATH\"",
        "user" => "user \"UID[:GID]\"",
        "hostname" => "hostname \"NAME\"",
        "stop-signal" => "stop-signal \"SIGTERM\"",
        "seccomp" => "seccomp \"unconfined\"|\"PROFILE.json\"",
        "log" => super::container_log::USAGE,
        other => {
            container_options::USAGE
                .iter()
                .find(|(k, _)| *k == other)
                .expect("checked against CHILDREN")
                .1
        }
    };
    let mut n = Node::new(node, file, diags, usage);
    if !matches!(keyword, "network" | "health") {
        n.no_children(diags);
    }
    match keyword {
        "network" => {
            n.max_args(diags, 1);
            let network = n.str_arg(diags, 0, "a network name");
            let ip = n
                .prop_any("ip")
                .and_then(|v| values::address(diags, v, "`ip`"));
            let aliases: Vec<_> = n.prop_str(diags, "alias").into_iter().collect();
            for alias in &aliases {
                values::check_name(diags, alias, "alias");
            }
            let impair = parse_impair_block(&n, file, diags, "a container's `network` block");
            if let Some(network) = network {
                c.networks.push(Attachment {
                    network,
                    ip,
                    aliases,
                    impair,
                });
            }
        }
        "publish" => {
            n.max_args(diags, 1);
            let port = n
                .any_arg(diags, 0, "a container port")
                .and_then(|v| values::port(diags, v, "the container port"));
            let host = n
                .prop_any("host")
                .and_then(|v| values::port(diags, v, "the host port"));
            let address = n
                .prop_any("address")
                .and_then(|v| values::address(diags, v, "`address`"));
            let protocol = n
                .prop_any("protocol")
                .and_then(|v| {
                    values::choice(
                        diags,
                        v,
                        "protocol",
                        &[("tcp", Protocol::Tcp), ("udp", Protocol::Udp)],
                    )
                })
                .map_or(Protocol::Tcp, |p| p.value);
            let max_connections = n
                .prop_int(diags, "max-connections")
                .and_then(|m| values::bounded(diags, m, "`max-connections`", 1, 1 << 20))
                .map(|m| Spanned::new(m.value as u32, m.span));
            let idle_timeout = n
                .prop_any("idle-timeout")
                .and_then(|v| values::duration(diags, v, "`idle-timeout`"))
                .filter(|d| {
                    let positive = d.value.0 > 0;
                    if !positive {
                        diags
                            .error(
                                Code::ValueOutOfRange,
                                d.span,
                                "`idle-timeout` is out of range",
                            )
                            .label("must be longer than 0s")
                            .help("leave it out for the default (1h for TCP, 60s for UDP)");
                    }
                    positive
                });
            if let Some(port) = port {
                let host = host.unwrap_or(port.clone());
                c.publish.push(Publish {
                    port,
                    host,
                    address,
                    protocol,
                    max_connections,
                    idle_timeout,
                });
            }
        }
        "publish-all" => {
            n.max_args(diags, 1);
            c.publish_all = match n.arg(0) {
                None => true,
                Some(v) => v.boolean(diags, "`publish-all`").is_some_and(|b| b.value),
            };
        }
        "env" => {
            n.max_args(diags, 0);
            c.env.extend(string_props(&mut n, diags, "env"));
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
                    .help("write it as `label KEY=\"VALUE\"`");
            }
            c.labels.extend(labels);
        }
        "volume" => {
            n.max_args(diags, 2);
            let source = n.str_arg(diags, 0, "a source");
            let target = n.str_arg(diags, 1, "a target path");
            let read_only = n.prop_bool(diags, "ro").is_some_and(|b| b.value);
            if let Some(target) = &target
                && !target.value.starts_with('/')
            {
                diags
                    .error(
                        Code::WrongType,
                        target.span,
                        "the volume target must be an absolute path",
                    )
                    .label("this path is relative")
                    .help(format!(
                        "write `\"/{}\"`",
                        target.value.trim_start_matches("./")
                    ));
            }
            if let (Some(source), Some(target)) = (source, target) {
                let source = if source.value.starts_with('/') || source.value.starts_with('.') {
                    VolumeSource::Bind { path: source }
                } else {
                    values::check_name(diags, &source, "volume");
                    VolumeSource::Named { name: source }
                };
                c.volumes.push(Volume {
                    source,
                    target,
                    read_only,
                });
            }
        }
        "memory" => {
            n.max_args(diags, 1);
            c.memory = n
                .any_arg(diags, 0, "a size")
                .and_then(|v| values::size(diags, v, "`memory`"));
            if let Some(m) = &c.memory
                && m.value.0 < 4096 * 1024
            {
                let help = match n.arg(0).map(|v| v.value) {
                    Some(KdlValue::Integer(i)) => {
                        format!("a bare number is bytes: for megabytes, write `\"{i}MiB\"`")
                    }
                    _ => "write at least `\"4MiB\"`".to_string(),
                };
                diags
                    .error(Code::ValueOutOfRange, m.span, "`memory` is too small")
                    .label("the kernel needs at least 4MiB")
                    .help(help);
            }
        }
        "cpus" => {
            n.max_args(diags, 1);
            if let Some(cpus) = n
                .any_arg(diags, 0, "a number of CPUs")
                .and_then(|v| v.number(diags, "`cpus`"))
            {
                if cpus.value <= 0.0 || !cpus.value.is_finite() {
                    diags
                        .error(
                            Code::InvalidCpus,
                            cpus.span,
                            format!("`cpus` is {}", cpus.value),
                        )
                        .label("must be greater than 0")
                        .help(
                            "write a fraction of one CPU like `0.5`, or remove `cpus` for no limit",
                        );
                } else {
                    c.cpus = Some(cpus);
                }
            }
        }
        "pids" => {
            n.max_args(diags, 1);
            c.pids = n
                .any_arg(diags, 0, "a number of processes")
                .and_then(|v| v.integer(diags, "`pids`"))
                .and_then(|v| values::bounded(diags, v, "`pids`", 1, i128::from(u32::MAX)))
                .map(|v| v.map(|p| p as u32));
        }
        "restart" => {
            n.max_args(diags, 1);
            let max = n.prop_int(diags, "max");
            if let Some(policy) = n.str_arg(diags, 0, "a policy") {
                c.restart = restart_policy(diags, policy, max);
            }
        }
        "health" => c.health = parse_health(&mut n, file, diags),
        "depends-on" => {
            let names = n.str_args(diags, 0, 1, "a container name");
            let condition = n
                .prop_any("condition")
                .and_then(|v| {
                    values::choice(
                        diags,
                        v,
                        "condition",
                        &[
                            ("started", Condition::Started),
                            ("healthy", Condition::Healthy),
                            ("completed", Condition::Completed),
                        ],
                    )
                })
                .map_or(Condition::Started, |c| c.value);
            c.depends_on
                .extend(names.into_iter().map(|name| Dependency { name, condition }));
        }
        "entrypoint" => c.entrypoint = Some(n.str_args(diags, 0, 1, "a program")),
        "cmd" => c.cmd = Some(n.str_args(diags, 0, 1, "a command")),
        "workdir" => {
            n.max_args(diags, 1);
            c.workdir = n.str_arg(diags, 0, "a path");
        }
        "user" => {
            n.max_args(diags, 1);
            c.user = n.any_arg(diags, 0, "a user").and_then(|v| match v.value {
                KdlValue::Integer(i) => Some(Spanned::new(i.to_string(), v.span)),
                _ => v.string(diags, "the user"),
            });
        }
        "hostname" => {
            n.max_args(diags, 1);
            c.hostname = n.str_arg(diags, 0, "a host name");
            if let Some(h) = &c.hostname {
                values::check_name(diags, h, "host");
            }
        }
        "stop-signal" => {
            n.max_args(diags, 1);
            c.stop_signal = n
                .any_arg(diags, 0, "a signal")
                .and_then(|v| values::signal(diags, v, "the stop signal"));
        }
        "seccomp" => {
            n.max_args(diags, 1);
            c.seccomp = n
                .str_arg(diags, 0, "`\"unconfined\"` or a profile file")
                .map(|v| {
                    let seccomp = if v.value == "unconfined" {
                        Seccomp::Unconfined
                    } else {
                        Seccomp::Profile {
                            path: v.value.clone(),
                        }
                    };
                    Spanned::new(seccomp, v.span)
                });
        }
        "log" => super::container_log::parse(&mut n, diags, c),
        other => container_options::parse(other, &mut n, diags, c),
    }
    n.finish(diags);
}

fn restart_policy(
    diags: &mut Diagnostics,
    policy: Spanned<String>,
    max: Option<Spanned<i128>>,
) -> Spanned<RestartPolicy> {
    // Docker's `on-failure:3` spelling is accepted too.
    let (name, inline_max) = match policy.value.split_once(':') {
        Some((name, max)) => (name, Some(max)),
        None => (policy.value.as_str(), None),
    };
    let parsed = match name {
        "no" => RestartPolicy::No,
        "always" => RestartPolicy::Always,
        "unless-stopped" => RestartPolicy::UnlessStopped,
        "on-unhealthy" => RestartPolicy::OnUnhealthy,
        "on-failure" => {
            let max = match (inline_max, &max) {
                (Some(text), _) => match text.parse::<u32>() {
                    Ok(m) => Some(m),
                    Err(_) => {
                        diags
                            .error(
                                Code::UnknownRestartPolicy,
                                policy.span,
                                format!("invalid retry count in `{}`", policy.value),
                            )
                            .help("write `restart \"on-failure\" max=3`");
                        None
                    }
                },
                (None, Some(m)) => {
                    values::bounded(diags, m.clone(), "`max`", 0, i128::from(u32::MAX))
                        .map(|m| m.value as u32)
                }
                (None, None) => None,
            };
            RestartPolicy::OnFailure { max }
        }
        other => {
            diags
                .error(
                    Code::UnknownRestartPolicy,
                    policy.span,
                    format!("unknown restart policy `{other}`"),
                )
                .label(format!(
                    "expected one of {}",
                    RestartPolicy::NAMES
                        .iter()
                        .map(|n| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
                .maybe_help(did_you_mean(other, RestartPolicy::NAMES.iter().copied()));
            return Spanned::new(RestartPolicy::No, policy.span);
        }
    };
    if let Some(m) = &max
        && !matches!(parsed, RestartPolicy::OnFailure { .. })
    {
        diags
            .error(
                Code::UnknownProperty,
                m.span,
                format!("`max` applies only to `on-failure`, not `{name}`"),
            )
            .help("remove `max`, or use `restart \"on-failure\" max=N`");
    }
    Spanned::new(parsed, policy.span)
}

fn parse_health(n: &mut Node<'_>, file: FileId, diags: &mut Diagnostics) -> Option<Health> {
    n.max_args(diags, 0);
    let mut duration_prop = |n: &mut Node<'_>, key: &'static str, default_ms: u64| {
        n.prop_any(key)
            .and_then(|v| values::duration(diags, v, &format!("`{key}`")))
            .map_or(Duration::from_millis(default_ms), |d| d.value)
    };
    let interval = duration_prop(n, "interval", 5_000);
    let timeout = duration_prop(n, "timeout", 2_000);
    let start_period = duration_prop(n, "start-period", 0);
    let retries = n
        .prop_int(diags, "retries")
        .and_then(|r| values::bounded(diags, r, "`retries`", 1, 1000))
        .map_or(3, |r| r.value as u32);
    let mut probes = Vec::new();
    for child in n.children().map(|d| d.nodes()).unwrap_or_default() {
        match child.name().value() {
            "http" | "tcp" | "exec" => {
                if let Some(probe) = parse_probe(child, file, diags) {
                    probes.push(probe);
                }
            }
            _ => unknown_node(
                diags,
                child,
                file,
                "a `health` block",
                &["http", "tcp", "exec"],
            ),
        }
    }
    if probes.is_empty() && n.children().is_none_or(|d| d.nodes().is_empty()) {
        diags
            .error(Code::EmptyHealth, n.head_span(), "`health` has no probe")
            .help("add a probe: `health { http \"http://127.0.0.1:8080/\" status=200; }`");
        return None;
    }
    Some(Health {
        interval,
        timeout,
        retries,
        start_period,
        probes,
    })
}
