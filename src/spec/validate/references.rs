//! Duplicate names and references between declarations.

use std::collections::BTreeMap;

use super::{Index, Options};
use crate::spec::diag::{Code, Diagnostics, did_you_mean};
use crate::spec::model::{
    Assertion, Condition, ContainerKind, FaultAction, FromRef, Name, Project, Step,
};
use crate::spec::source::{Span, Spanned};

/// Reports the second and later declarations of a name; returns name → first span.
fn unique<'a>(
    diags: &mut Diagnostics,
    kind: &str,
    names: impl Iterator<Item = &'a Name>,
) -> BTreeMap<&'a str, Span> {
    let mut seen: BTreeMap<&str, Span> = BTreeMap::new();
    for name in names {
        if name.value.is_empty() {
            continue;
        }
        match seen.get(name.value.as_str()) {
            Some(first) => {
                diags
                    .error(
                        Code::DuplicateName,
                        name.span,
                        format!("{kind} `{}` is declared twice", name.value),
                    )
                    .label("declared again here")
                    .related(*first, "first declared here")
                    .help(format!(
                        "rename one of them; {kind} names are unique in a project"
                    ));
            }
            None => {
                seen.insert(&name.value, name.span);
            }
        }
    }
    seen
}

/// `dns` on a container whose first network (the one whose DNS server its resolv.conf
/// names) has no egress: kiln's DNS server there asks no other server, so the servers
/// would never be asked. With egress they are that server's upstreams for the container.
fn dns_needs_egress(project: &Project, diags: &mut Diagnostics) {
    for c in &project.containers {
        let (Some(dns), Some(first)) = (c.dns.first(), c.networks.first()) else {
            continue;
        };
        let Some(network) = project
            .networks
            .iter()
            .find(|n| n.name.value == first.network.value)
        else {
            continue;
        };
        if !network.egress {
            diags
                .error(
                    Code::MisplacedNode,
                    dns.span,
                    format!(
                        "`dns` cannot take effect: network `{}` has no egress",
                        network.name.value
                    ),
                )
                .label("these servers would never be asked")
                .related(first.network.span, "the container asks this network's DNS server")
                .help(format!(
                    "kiln's DNS server on a network without egress answers container names only; give `network \"{}\"` `egress=#true` to send other names to these servers, or leave `dns` out",
                    network.name.value
                ));
        }
    }
}

/// Does this image name point outside the project (a store or registry reference)?
fn is_store_reference(name: &str, options: &Options) -> bool {
    name.contains([':', '/']) || options.external_images.contains(name)
}

fn unknown(
    diags: &mut Diagnostics,
    code: Code,
    kind: &str,
    name: &Name,
    known: &BTreeMap<&str, Span>,
    help: String,
) {
    if diags.suppress_unknown {
        return;
    }
    let suggestion = did_you_mean(&name.value, known.keys().copied());
    diags
        .error(code, name.span, format!("unknown {kind} `{}`", name.value))
        .label(format!("no {kind} of this name is declared"))
        .help(suggestion.unwrap_or(help));
}

pub(super) fn check(
    project: &Project,
    index: &Index<'_>,
    options: &Options,
    incomplete: bool,
    diags: &mut Diagnostics,
) {
    diags.suppress_unknown = incomplete;
    let images = unique(diags, "image", project.images.iter().map(|i| &i.name));
    let networks = unique(diags, "network", project.networks.iter().map(|n| &n.name));
    let containers = unique(
        diags,
        "container",
        project.containers.iter().map(|c| &c.name),
    );
    let hosts = unique(diags, "host", project.hosts.iter().map(|h| &h.name));
    unique(diags, "test", project.tests.iter().map(|t| &t.name));

    // Replica names (`web-1`) must not collide with declared names.
    let mut instances: BTreeMap<String, Span> = BTreeMap::new();
    for c in &project.containers {
        for instance in c.instance_names() {
            if instance != c.name.value
                && let Some(other) = containers.get(instance.as_str())
            {
                diags
                    .error(
                        Code::DuplicateName,
                        c.replicas.span,
                        format!("replica `{instance}` has the name of another container"),
                    )
                    .label(format!("this makes a replica named `{instance}`"))
                    .related(*other, "that container is declared here")
                    .help("rename the other container, or change the number of replicas");
            }
            instances.entry(instance).or_insert(c.name.span);
        }
    }

    let image_ref = |diags: &mut Diagnostics, name: &Name| {
        if !images.contains_key(name.value.as_str())
            && !is_store_reference(&name.value, options)
            && !name.value.is_empty()
        {
            unknown(
                diags,
                Code::UnknownImage,
                "image",
                name,
                &images,
                format!(
                    "declare `image \"{}\"`, import a module that does, or pull it into the store",
                    name.value
                ),
            );
        }
    };
    for image in &project.images {
        if let Some(from) = &image.from
            && let FromRef::Image(base) = &from.value
        {
            image_ref(diags, &Name::new(base.clone(), from.span));
        }
        for step in &image.steps {
            if let Step::Copy {
                from: Some(source), ..
            } = &step.value
            {
                image_ref(diags, source);
            }
        }
    }

    for c in &project.containers {
        image_ref(diags, &c.image);
        if let Some(host) = &c.host
            && !hosts.contains_key(host.value.as_str())
        {
            unknown(
                diags,
                Code::UnknownHost,
                "host",
                host,
                &hosts,
                format!("declare `host \"{}\" address=\"…\"`", host.value),
            );
        }
        let mut attached: BTreeMap<&str, Span> = BTreeMap::new();
        for a in &c.networks {
            if !networks.contains_key(a.network.value.as_str()) {
                unknown(
                    diags,
                    Code::UnknownNetwork,
                    "network",
                    &a.network,
                    &networks,
                    format!("declare `network \"{}\" subnet=\"…\"`", a.network.value),
                );
            }
            if let Some(first) = attached.insert(&a.network.value, a.network.span) {
                diags
                    .error(
                        Code::DuplicateName,
                        a.network.span,
                        format!(
                            "`{}` is attached to network `{}` twice",
                            c.name.value, a.network.value
                        ),
                    )
                    .related(first, "first attached here")
                    .help("a container has one interface per network: remove one");
            }
        }
        for dep in &c.depends_on {
            let Some(target) = index.container(&dep.name.value) else {
                unknown(
                    diags,
                    Code::UnknownContainer,
                    "container",
                    &dep.name,
                    &containers,
                    format!("declare `container \"{}\"`", dep.name.value),
                );
                continue;
            };
            match dep.condition {
                Condition::Healthy if target.health.is_none() => {
                    diags
                        .error(
                            Code::InvalidChoice,
                            dep.name.span,
                            format!("`{}` has no health check to wait for", dep.name.value),
                        )
                        .label("`condition=\"healthy\"` waits for it")
                        .related(target.name.span, "declared here without `health`")
                        .help(format!(
                            "add a `health` block to `{}`, or use `condition=\"started\"`",
                            dep.name.value
                        ));
                }
                Condition::Completed if target.kind != ContainerKind::Job => {
                    diags
                        .error(
                            Code::InvalidChoice,
                            dep.name.span,
                            format!("`{}` is a container, it does not complete", dep.name.value),
                        )
                        .label("`condition=\"completed\"` waits for a job")
                        .related(target.name.span, "declared here")
                        .help(format!(
                            "declare `{}` as a `job`, or use `condition=\"started\"`",
                            dep.name.value
                        ));
                }
                _ => {}
            }
        }
    }

    for link in &project.links {
        for end in [&link.a, &link.b] {
            if instances.contains_key(&end.container.value) || incomplete {
                continue;
            }
            if let Some(c) = index.container(&end.container.value) {
                // A replicated container has no single interface to link: name a replica.
                let names = c.instance_names();
                diags
                    .error(
                        Code::UnknownLinkEndpoint,
                        end.container.span,
                        format!("`{}` has {} replicas", end.container.value, names.len()),
                    )
                    .label("a link joins one container to another")
                    .related(c.replicas.span, "replicas set here")
                    .help(format!(
                        "link one replica, e.g. `\"{}:{}\"`",
                        names[0], end.interface.value
                    ));
                continue;
            }
            let known: BTreeMap<&str, Span> =
                instances.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            diags
                .error(
                    Code::UnknownLinkEndpoint,
                    end.container.span,
                    format!("unknown link endpoint `{}`", end.container.value),
                )
                .label("no container of this name is declared")
                .help(
                    did_you_mean(&end.container.value, known.keys().copied()).unwrap_or_else(
                        || {
                            format!(
                                "declare `container \"{}\"`, or link an existing one",
                                end.container.value
                            )
                        },
                    ),
                );
        }
    }

    let instance_ref = |diags: &mut Diagnostics, name: &Name| {
        if !instances.contains_key(&name.value) && !containers.contains_key(name.value.as_str()) {
            let known: BTreeMap<&str, Span> =
                instances.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            unknown(
                diags,
                Code::UnknownContainer,
                "container",
                name,
                &known,
                format!("declare `container \"{}\"`", name.value),
            );
        }
    };
    for test in &project.tests {
        for fault in &test.faults {
            match &fault.value.action.value {
                FaultAction::LinkDown { end } | FaultAction::Impair { end, .. } => {
                    let (container, _) = end.value.split_once(':').unwrap_or_default();
                    let name = Spanned::new(
                        container.to_string(),
                        Span::new(end.span.file, end.span.offset as usize + 1, container.len()),
                    );
                    instance_ref(diags, &name);
                }
                FaultAction::Stop { container }
                | FaultAction::Kill { container }
                | FaultAction::Pause { container } => {
                    instance_ref(diags, container);
                }
            }
        }
        for check in &test.assertions {
            let assertion = &check.assertion;
            match &assertion.value {
                Assertion::Http { from, .. }
                | Assertion::Dns { from, .. }
                | Assertion::Ping { from, .. }
                | Assertion::Tcp { from, .. } => {
                    instance_ref(diags, from);
                }
                Assertion::Exec { container, .. } => instance_ref(diags, container),
            }
        }
    }
    dns_needs_egress(project, diags);
}

#[cfg(test)]
mod tests {
    use crate::spec::{Code, Options, RealFs, load_source};

    fn codes(text: &str) -> Vec<Code> {
        load_source("kiln.kdl", None, text, &RealFs, &Options::default())
            .diagnostics
            .iter()
            .map(|d| d.code)
            .collect()
    }

    #[test]
    fn a_replicated_container_is_not_an_unknown_endpoint() {
        let text = "image \"b\" { from \"scratch\"; }\ncontainer \"r\" image=\"b\" replicas=2\ncontainer \"h\" image=\"b\"\nlink \"r:eth1\" \"h:eth1\"\n";
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
        assert_eq!(loaded.diagnostics.len(), 1);
        assert_eq!(loaded.diagnostics[0].message, "`r` has 2 replicas");
        assert!(codes(&text.replace("\"r:eth1\"", "\"r-1:eth1\"")).is_empty());
    }

    #[test]
    fn a_missing_import_does_not_make_its_names_unknown() {
        let text = "import \"std:nope\"\ncontainer \"web\" image=\"web\"\n";
        assert_eq!(codes(text), vec![Code::ImportNotFound]);
    }
}
