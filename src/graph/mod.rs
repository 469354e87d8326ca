//! The project's topology as a drawing: `kiln graph`.
//!
//! Owns turning a validated [`Project`] into a neutral [`Graph`] (nodes, edges, clusters,
//! each label a list of lines) and rendering it as Graphviz dot, Mermaid or JSON. It reads
//! the model only: it must not load files, validate, or decide anything the runtime decides
//! (allocated addresses), so it shows what the file says and nothing more; where containers
//! without a host run is handed in ([`build_placed`]: placement is `project`'s). Order follows
//! declaration order, so the same project always gives byte-identical output.

mod dot;
mod mermaid;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::spec::model::{Condition, Container, ContainerKind, Impairment, Project, Protocol};

pub use dot::to_dot;
pub use mermaid::to_mermaid;

/// A drawing of a project: what is there and how it is wired.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Graph {
    /// The project's name (the title of the drawing).
    pub project: String,
    /// Networks, then containers and jobs, in declaration order.
    pub nodes: Vec<Node>,
    /// Attachments, then links, then dependencies, in declaration order.
    pub edges: Vec<Edge>,
    /// Declared hosts, in declaration order; nodes name theirs in [`Node::cluster`].
    pub clusters: Vec<Cluster>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Node {
    /// Unique in the graph, made only of `[a-z0-9_]` (safe as a Mermaid id).
    pub id: String,
    pub kind: NodeKind,
    /// The lines of the label; the first is the name.
    pub label: Vec<String>,
    /// The id of the cluster (host) the node is drawn in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeKind {
    Container,
    Job,
    Network,
    /// A network with `internal=#true`: no route out of the topology.
    InternalNetwork,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub kind: EdgeKind,
    /// The lines of the label (possibly none).
    pub label: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EdgeKind {
    /// A container on a network (container → network).
    Attachment,
    /// A point-to-point link between two containers (no direction).
    Link,
    /// `depends-on`: the dependent → what it waits for.
    DependsOn,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Cluster {
    /// Unique among node and cluster ids, made only of `[a-z0-9_]`.
    pub id: String,
    pub label: Vec<String>,
}

/// Renders a graph as pretty JSON (the neutral model as is), with a final newline.
pub fn to_json(graph: &Graph) -> String {
    let mut text = serde_json::to_string_pretty(graph).expect("a graph serializes");
    text.push('\n');
    text
}

/// Builds the drawing of a project. The project should be valid; references that do not
/// resolve are left out rather than drawn to nowhere.
///
/// A container with replicas is one node labelled with the count, unless a link names one
/// of its replicas (`"r-1:eth1"`): then each replica is a node of its own, so the link has
/// an end to attach to.
pub fn build(project: &Project) -> Graph {
    build_placed(project, &BTreeMap::new())
}

/// [`build`], with each instance drawn in the cluster of the host `placement` gives it
/// (instance name → host name): a container kiln places is drawn where it runs, marked
/// `placed`; replicas placed on several hosts are drawn one node per replica.
pub fn build_placed(project: &Project, placement: &BTreeMap<String, String>) -> Graph {
    let mut b = Builder::default();
    b.graph.project = project.name.clone();

    let mut host_ids: BTreeMap<&str, String> = BTreeMap::new();
    for host in &project.hosts {
        let id = b.fresh_id("h", &host.name.value);
        let mut label = vec![format!("host {}", host.name.value)];
        if let Some(address) = &host.address {
            label.push(address.value.to_string());
        }
        if let Some(site) = &host.site {
            label.push(format!("site {}", site.value));
        }
        b.graph.clusters.push(Cluster {
            id: id.clone(),
            label,
        });
        host_ids.insert(&host.name.value, id);
    }

    let mut network_ids: BTreeMap<&str, String> = BTreeMap::new();
    for network in &project.networks {
        let id = b.fresh_id("n", &network.name.value);
        let mut label = vec![network.name.value.clone()];
        if let Some(subnet) = &network.subnet {
            label.push(subnet.value.to_string());
        }
        let mut traits = Vec::new();
        if network.internal {
            traits.push("internal");
        }
        if network.driver == crate::spec::model::Driver::Overlay {
            traits.push("overlay");
        }
        if !traits.is_empty() {
            label.push(traits.join(", "));
        }
        let kind = if network.internal {
            NodeKind::InternalNetwork
        } else {
            NodeKind::Network
        };
        b.graph.nodes.push(Node {
            id: id.clone(),
            kind,
            label,
            cluster: None,
        });
        network_ids.insert(&network.name.value, id);
    }

    // Instance names a link names: their containers are drawn one node per replica.
    let linked: BTreeSet<&str> = project
        .links
        .iter()
        .flat_map(|l| [l.a.container.value.as_str(), l.b.container.value.as_str()])
        .collect();
    // Container name → its node ids; instance name → its node id (for links).
    let mut container_nodes: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut instance_nodes: BTreeMap<String, String> = BTreeMap::new();
    for c in &project.containers {
        let pinned = c
            .host
            .as_ref()
            .and_then(|h| host_ids.get(h.value.as_str()).cloned());
        let instances = c.instance_names();
        // Where kiln places each instance of a container without `host=`.
        let placed_in = |instance: &str| {
            placement
                .get(instance)
                .and_then(|h| host_ids.get(h.as_str()).cloned())
        };
        let placed = pinned.is_none() && instances.iter().any(|i| placed_in(i).is_some());
        let spread = instances
            .iter()
            .map(|i| placed_in(i))
            .collect::<BTreeSet<_>>()
            .len()
            > 1;
        let cluster = pinned.or_else(|| placed_in(&instances[0]));
        let expand = instances.len() > 1
            && (spread || instances.iter().any(|i| linked.contains(i.as_str())));
        let mut ids = Vec::new();
        if expand {
            for (n, instance) in instances.iter().enumerate() {
                let id = b.fresh_id("c", instance);
                let mut label = vec![instance.clone()];
                label.extend(container_details(c));
                label.push(format!("replica {} of {}", n + 1, c.name.value));
                if placed {
                    label.push("placed".to_string());
                }
                let cluster = if placed {
                    placed_in(instance)
                } else {
                    cluster.clone()
                };
                b.push_container(c, &id, label, cluster);
                instance_nodes.insert(instance.clone(), id.clone());
                ids.push(id);
            }
        } else {
            let id = b.fresh_id("c", &c.name.value);
            let mut label = vec![c.name.value.clone()];
            label.extend(container_details(c));
            if instances.len() > 1 {
                label.push(format!(
                    "{} replicas: {}…{}",
                    instances.len(),
                    instances[0],
                    instances[instances.len() - 1]
                ));
            }
            if placed {
                label.push("placed".to_string());
            }
            b.push_container(c, &id, label, cluster);
            for instance in instances {
                instance_nodes.insert(instance, id.clone());
            }
            ids.push(id);
        }
        container_nodes.insert(&c.name.value, ids);
    }

    for c in &project.containers {
        for from in &container_nodes[c.name.value.as_str()] {
            for (index, attachment) in c.networks.iter().enumerate() {
                let Some(to) = network_ids.get(attachment.network.value.as_str()) else {
                    continue;
                };
                // Networks take eth0, eth1… in declaration order (see spec::validate).
                let mut first = format!("eth{index}");
                if let Some(ip) = &attachment.ip {
                    first.push_str(&format!(" {}", ip.value));
                }
                let mut label = vec![first];
                if !attachment.aliases.is_empty() {
                    let aliases: Vec<&str> = attachment
                        .aliases
                        .iter()
                        .map(|a| a.value.as_str())
                        .collect();
                    label.push(format!("alias {}", aliases.join(", ")));
                }
                if let Some(impair) = attachment.impair.as_ref().and_then(impairment) {
                    label.push(impair);
                }
                b.graph.edges.push(Edge {
                    from: from.clone(),
                    to: to.clone(),
                    kind: EdgeKind::Attachment,
                    label,
                });
            }
        }
    }

    for link in &project.links {
        let (Some(from), Some(to)) = (
            instance_nodes.get(&link.a.container.value),
            instance_nodes.get(&link.b.container.value),
        ) else {
            continue;
        };
        let mut label = vec![format!(
            "{} ↔ {}",
            link.a.interface.value, link.b.interface.value
        )];
        if let Some(subnet) = &link.subnet {
            label.push(subnet.value.to_string());
        }
        if let Some(impair) = link.impair.as_ref().and_then(impairment) {
            label.push(impair);
        }
        b.graph.edges.push(Edge {
            from: from.clone(),
            to: to.clone(),
            kind: EdgeKind::Link,
            label,
        });
    }

    for c in &project.containers {
        for dependency in &c.depends_on {
            let Some(targets) = container_nodes.get(dependency.name.value.as_str()) else {
                continue;
            };
            for from in &container_nodes[c.name.value.as_str()] {
                for to in targets {
                    b.graph.edges.push(Edge {
                        from: from.clone(),
                        to: to.clone(),
                        kind: EdgeKind::DependsOn,
                        label: vec![condition(dependency.condition).to_string()],
                    });
                }
            }
        }
    }
    b.graph
}

#[derive(Default)]
struct Builder {
    graph: Graph,
    used_ids: BTreeSet<String>,
}

impl Builder {
    /// `PREFIX_NAME` with every character outside `[a-z0-9]` as `_`, made unique with a
    /// `_2`, `_3`… suffix (names like `a.b` and `a_b` would otherwise meet).
    fn fresh_id(&mut self, prefix: &str, name: &str) -> String {
        let cleaned: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        let base = format!("{prefix}_{cleaned}");
        let mut id = base.clone();
        let mut n = 2;
        while self.used_ids.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        self.used_ids.insert(id.clone());
        id
    }

    fn push_container(
        &mut self,
        c: &Container,
        id: &str,
        label: Vec<String>,
        cluster: Option<String>,
    ) {
        let kind = match c.kind {
            ContainerKind::Service => NodeKind::Container,
            ContainerKind::Job => NodeKind::Job,
        };
        self.graph.nodes.push(Node {
            id: id.to_string(),
            kind,
            label,
            cluster,
        });
    }
}

/// The label lines after the name: kind and image, then published ports.
fn container_details(c: &Container) -> Vec<String> {
    let mut lines = vec![match c.kind {
        ContainerKind::Service => format!("image {}", c.image.value),
        ContainerKind::Job => format!("job · image {}", c.image.value),
    }];
    for p in &c.publish {
        let protocol = match p.protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        };
        lines.push(format!(
            "host:{} → {}/{protocol}",
            p.host.value, p.port.value
        ));
    }
    lines
}

fn condition(condition: Condition) -> &'static str {
    match condition {
        Condition::Started => "started",
        Condition::Healthy => "healthy",
        Condition::Completed => "completed",
    }
}

/// `20ms ±5ms, 1% loss, 10mbit, 0.1% corrupt, 1% duplicate, 25% reorder`; `None` when
/// nothing is set.
pub fn impairment(impair: &Impairment) -> Option<String> {
    let mut parts = Vec::new();
    match (&impair.delay, &impair.jitter) {
        (Some(delay), Some(jitter)) => parts.push(format!("{} ±{}", delay.value, jitter.value)),
        (Some(delay), None) => parts.push(delay.value.to_string()),
        (None, Some(jitter)) => parts.push(format!("±{}", jitter.value)),
        (None, None) => {}
    }
    if let Some(loss) = &impair.loss {
        parts.push(format!("{} loss", loss.value));
    }
    if let Some(rate) = &impair.rate {
        parts.push(rate.value.to_string());
    }
    for (value, what) in [
        (&impair.corrupt, "corrupt"),
        (&impair.duplicate, "duplicate"),
        (&impair.reorder, "reorder"),
    ] {
        if let Some(value) = value {
            parts.push(format!("{} {what}", value.value));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}
