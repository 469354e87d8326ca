use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;
use crate::spec::{self, Options, RealFs};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/graph/golden")
}

/// Compares with `src/graph/golden/NAME`; `KILN_BLESS=1` rewrites it instead.
fn assert_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("KILN_BLESS").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, actual).expect("writing a golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (KILN_BLESS=1 creates it)", path.display()));
    assert!(
        expected == actual,
        "{} differs (KILN_BLESS=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

fn load(text: &str) -> Project {
    let loaded = spec::load_source("kiln.kdl", None, text, &RealFs, &Options::default());
    assert!(
        loaded.diagnostics.is_empty(),
        "the test project is valid: {:#?}",
        loaded.diagnostics
    );
    loaded.project
}

fn design() -> Project {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/design/kiln.kdl");
    let loaded = spec::load_file(&path, &RealFs, &Options::default()).expect("readable");
    assert!(loaded.diagnostics.is_empty(), "{:#?}", loaded.diagnostics);
    loaded.project
}

const RING: &str = r#"project "ring"
image "base" { from "scratch"; }
network "mgmt" subnet="10.0.0.0/24"
container "r1" image="base" {
    network "mgmt" ip="10.0.0.11" alias="core" {
        impair delay="1ms"
    }
}
container "r2" image="base"
container "r3" image="base" replicas=2 { depends-on "r1"; }
link "r1:eth1" "r2:eth1" subnet="10.99.0.0/30" {
    impair delay="20ms" jitter="5ms" loss="1%" rate="10mbit"
}
link "r2:eth2" "r3-1:eth1" subnet="10.99.0.4/30" {
    impair delay="10ms" corrupt="0.1%" duplicate="1%" reorder="25%"
}
link "r3-2:eth1" "r1:eth2"
"#;

fn edge<'a>(graph: &'a Graph, kind: EdgeKind, from: &str, to: &str) -> &'a Edge {
    graph
        .edges
        .iter()
        .find(|e| e.kind == kind && e.from == from && e.to == to)
        .unwrap_or_else(|| panic!("no {kind:?} edge {from} -> {to} in {:#?}", graph.edges))
}

fn node<'a>(graph: &'a Graph, id: &str) -> &'a Node {
    graph
        .nodes
        .iter()
        .find(|n| n.id == id)
        .unwrap_or_else(|| panic!("no node {id} in {:#?}", graph.nodes))
}

#[test]
fn the_design_example_matches_its_golden_drawings() {
    let graph = build(&design());
    assert_golden("design.dot", &to_dot(&graph));
    assert_golden("design.mmd", &to_mermaid(&graph));
    assert_golden("design.json", &to_json(&graph));
}

#[test]
fn a_ring_of_links_matches_its_golden_drawings() {
    let graph = build(&load(RING));
    assert_golden("ring.dot", &to_dot(&graph));
    assert_golden("ring.mmd", &to_mermaid(&graph));
}

#[test]
fn the_design_example_has_what_the_file_declares() {
    let graph = build(&design());
    assert_eq!(graph.project, "hello-web");
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "n_front",
            "n_back",
            "c_web",
            "c_client",
            "c_seed_db",
            "c_r1",
            "c_r2"
        ]
    );
    assert_eq!(node(&graph, "n_back").kind, NodeKind::InternalNetwork);
    assert_eq!(node(&graph, "n_front").kind, NodeKind::Network);
    assert_eq!(node(&graph, "c_seed_db").kind, NodeKind::Job);
    assert!(
        node(&graph, "c_web")
            .label
            .contains(&"host:18080 → 8080/tcp".to_string())
    );
    assert!(
        node(&graph, "c_client")
            .label
            .contains(&"2 replicas: client-1…client-2".to_string())
    );
    // Interfaces in declaration order, with the fixed addresses.
    assert_eq!(
        edge(&graph, EdgeKind::Attachment, "c_web", "n_front").label,
        ["eth0 10.89.0.10"]
    );
    assert_eq!(
        edge(&graph, EdgeKind::Attachment, "c_web", "n_back").label,
        ["eth1 10.89.1.10"]
    );
    assert_eq!(
        edge(&graph, EdgeKind::Attachment, "c_client", "n_front").label,
        ["eth0"]
    );
    let link = edge(&graph, EdgeKind::Link, "c_r1", "c_r2");
    assert_eq!(
        link.label,
        ["eth1 ↔ eth1", "10.99.0.0/30", "20ms ±5ms, 1% loss, 10mbit"]
    );
    let dep = edge(&graph, EdgeKind::DependsOn, "c_client", "c_web");
    assert_eq!(dep.label, ["healthy"]);
    assert!(graph.clusters.is_empty());
}

#[test]
fn a_linked_replica_expands_its_container_into_instances() {
    let graph = build(&load(RING));
    assert!(graph.nodes.iter().all(|n| n.id != "c_r3"));
    assert_eq!(node(&graph, "c_r3_1").label[0], "r3-1");
    assert_eq!(node(&graph, "c_r3_2").label[0], "r3-2");
    assert_eq!(
        edge(&graph, EdgeKind::Link, "c_r2", "c_r3_1").label,
        [
            "eth2 ↔ eth1",
            "10.99.0.4/30",
            "10ms, 0.1% corrupt, 1% duplicate, 25% reorder"
        ]
    );
    assert_eq!(
        edge(&graph, EdgeKind::Link, "c_r3_2", "c_r1").label,
        ["eth1 ↔ eth2"]
    );
    // Each replica waits for r1.
    for replica in ["c_r3_1", "c_r3_2"] {
        let dep = edge(&graph, EdgeKind::DependsOn, replica, "c_r1");
        assert_eq!(dep.label, ["started"]);
    }
    assert_eq!(
        edge(&graph, EdgeKind::Attachment, "c_r1", "n_mgmt").label,
        ["eth0 10.0.0.11", "alias core", "1ms"]
    );
}

#[test]
fn hosts_are_clusters_holding_their_pinned_containers() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/two-hosts/kiln.kdl");
    let loaded = spec::load_file(&path, &RealFs, &Options::default()).expect("readable");
    let graph = build(&loaded.project);
    let clusters: Vec<(&str, &[String])> = graph
        .clusters
        .iter()
        .map(|c| (c.id.as_str(), c.label.as_slice()))
        .collect();
    assert_eq!(
        clusters,
        [
            (
                "h_m1",
                &["host m1".to_string(), "192.0.2.1".to_string()][..]
            ),
            (
                "h_m2",
                &["host m2".to_string(), "192.0.2.2".to_string()][..]
            ),
        ]
    );
    assert_eq!(node(&graph, "c_a").cluster.as_deref(), Some("h_m1"));
    assert_eq!(node(&graph, "c_c").cluster.as_deref(), Some("h_m2"));
    // b has no host: kiln places it, so the drawing does not.
    assert_eq!(node(&graph, "c_b").cluster, None);
    assert!(
        node(&graph, "n_mesh")
            .label
            .contains(&"overlay".to_string())
    );
    let dot = to_dot(&graph);
    assert!(dot.contains("subgraph \"cluster_h_m1\" {"), "{dot}");
    assert!(dot.contains("subgraph \"cluster_h_m2\" {"), "{dot}");
    let mermaid = to_mermaid(&graph);
    assert!(
        mermaid.contains("    subgraph h_m1 [\"host m1<br>192.0.2.1\"]\n        c_a["),
        "{mermaid}"
    );
}

#[test]
fn placed_containers_are_drawn_where_kiln_runs_them() {
    let project = load(
        r#"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1"
        host "m2" address="192.0.2.2"
        container "a" image="base" host="m1"
        container "b" image="base"
        container "web" image="base" replicas=2
        "#,
    );
    let placement: BTreeMap<String, String> =
        [("a", "m1"), ("b", "m2"), ("web-1", "m1"), ("web-2", "m2")]
            .into_iter()
            .map(|(i, h)| (i.to_string(), h.to_string()))
            .collect();
    let graph = build_placed(&project, &placement);
    assert_eq!(node(&graph, "c_a").cluster.as_deref(), Some("h_m1"));
    assert!(!node(&graph, "c_a").label.contains(&"placed".to_string()));
    assert_eq!(node(&graph, "c_b").cluster.as_deref(), Some("h_m2"));
    assert!(node(&graph, "c_b").label.contains(&"placed".to_string()));
    // Replicas on two hosts: a node each, in its host.
    assert_eq!(node(&graph, "c_web_1").cluster.as_deref(), Some("h_m1"));
    assert_eq!(node(&graph, "c_web_2").cluster.as_deref(), Some("h_m2"));
}

#[test]
fn output_is_byte_identical_for_the_same_project() {
    let first = build(&load(RING));
    for _ in 0..3 {
        let again = build(&load(RING));
        assert_eq!(again, first);
        assert_eq!(to_dot(&again), to_dot(&first));
        assert_eq!(to_mermaid(&again), to_mermaid(&first));
        assert_eq!(to_json(&again), to_json(&first));
    }
}

#[test]
fn impairments_read_like_tc() {
    let load_impair = |text: &str| {
        let project = load(&format!(
            "image \"b\" {{ from \"scratch\"; }}\ncontainer \"x\" image=\"b\"\ncontainer \"y\" image=\"b\"\nlink \"x:l\" \"y:l\" {{ impair {text}; }}\n"
        ));
        impairment(project.links[0].impair.as_ref().expect("an impair block"))
    };
    assert_eq!(
        load_impair("jitter=\"5ms\" delay=\"20ms\"").as_deref(),
        Some("20ms ±5ms")
    );
    assert_eq!(
        load_impair("rate=\"1gbit\" loss=\"0.5%\"").as_deref(),
        Some("0.5% loss, 1gbit")
    );
    assert_eq!(impairment(&Impairment::default()), None);
}

/// Reads the quoted strings of a dot file as Graphviz shows them (`\"`, `\\`, `\n`, `&amp;`),
/// and checks that no string runs past a line end: every quote is balanced.
fn dot_strings(dot: &str) -> Vec<String> {
    let mut strings = Vec::new();
    for line in dot.lines() {
        let mut chars = line.chars();
        let mut current: Option<String> = None;
        while let Some(c) = chars.next() {
            match (&mut current, c) {
                (None, '"') => current = Some(String::new()),
                (None, _) => {}
                (Some(s), '\\') => {
                    let next = chars.next().expect("an escape ends inside its line");
                    match next {
                        '"' | '\\' => s.push(next),
                        'n' => s.push('\n'),
                        other => panic!("unexpected escape \\{other} in {line}"),
                    }
                }
                (Some(_), '"') => {
                    // Graphviz then decodes entities; kiln writes only `&amp;`.
                    let raw = current.take().expect("open");
                    assert!(!raw.replace("&amp;", "").contains('&'), "a raw & in {line}");
                    strings.push(raw.replace("&amp;", "&"));
                }
                (Some(s), c) => s.push(c),
            }
        }
        assert!(current.is_none(), "unbalanced quote in {line:?}");
    }
    strings
}

const HOSTILE: &str =
    "a\"b\\n\\\"c\nd%%{init: {\"theme\":\"dark\"}}%% <b>x</b> | ] ) } end # &amp; `md` ;\u{0}";

fn hostile_graph() -> Graph {
    Graph {
        project: HOSTILE.into(),
        nodes: vec![
            Node {
                id: "c_a".into(),
                kind: NodeKind::Container,
                label: vec![HOSTILE.into(), "second".into()],
                cluster: Some("h_x".into()),
            },
            Node {
                id: "n_b".into(),
                kind: NodeKind::InternalNetwork,
                label: vec![HOSTILE.into()],
                cluster: None,
            },
        ],
        edges: vec![Edge {
            from: "c_a".into(),
            to: "n_b".into(),
            kind: EdgeKind::Link,
            label: vec![HOSTILE.into()],
        }],
        clusters: vec![Cluster {
            id: "h_x".into(),
            label: vec![HOSTILE.into()],
        }],
    }
}

#[test]
fn dot_quotes_every_hostile_label_so_it_reads_back_unchanged() {
    let dot = to_dot(&hostile_graph());
    let strings = dot_strings(&dot);
    // What dot reads is the text itself, the control characters shown as U+FFFD.
    let shown = HOSTILE.replace(['\n', '\u{0}'], "\u{FFFD}");
    assert_eq!(
        strings.iter().filter(|s| **s == shown).count(),
        4,
        "digraph name, network, edge and cluster labels: {dot}"
    );
    assert!(strings.contains(&format!("project {shown}")), "{dot}");
    assert!(strings.contains(&format!("{shown}\nsecond")), "{dot}");
    assert_eq!(
        strings.iter().filter(|s| s.starts_with(&shown)).count(),
        5,
        "digraph name, node, network, edge and cluster labels: {dot}"
    );
    assert!(!dot.contains('\u{0}'));
}

#[test]
fn mermaid_writes_every_special_character_as_an_entity() {
    assert_eq!(escape_mermaid("a\"b"), "a#34;b");
    assert_eq!(escape_mermaid("<b>"), "#60;b#62;");
    assert_eq!(escape_mermaid("x|y]z"), "x#124;y#93;z");
    assert_eq!(escape_mermaid("#quot;"), "#35;quot;");
    assert_eq!(escape_mermaid("1%"), "1%");
    assert_eq!(escape_mermaid("%%{init}%%"), "%#37;#123;init#125;%#37;");
    assert_eq!(escape_mermaid("a\nb\u{0}"), "a#10;b#0;");
    assert_eq!(escape_mermaid("end ↔ 10.0.0.1/24"), "end ↔ 10.0.0.1/24");

    let mermaid = to_mermaid(&hostile_graph());
    for line in mermaid.lines() {
        assert_eq!(line.matches('"').count() % 2, 0, "balanced quotes: {line}");
        assert!(!line.contains("%%"), "no comment or directive: {line}");
        assert!(!line.contains("<b>"), "no raw HTML: {line}");
    }
    assert!(
        mermaid.contains("    subgraph h_x [\"a#34;b#92;n"),
        "{mermaid}"
    );
}

fn escape_mermaid(text: &str) -> String {
    super::mermaid::escape(text)
}

#[test]
fn ids_of_hostile_names_stay_safe_and_unique() {
    // Invalid names still reach the model (with diagnostics): the drawing must cope.
    let text = "image \"b\" { from \"scratch\"; }\ncontainer \"A.b\" image=\"b\"\ncontainer \"a_b\" image=\"b\"\ncontainer \"a b\" image=\"b\"\ncontainer \"end\" image=\"b\"\ncontainer \"x\\\"<y>\" image=\"b\"\n";
    let loaded = spec::load_source("kiln.kdl", None, text, &RealFs, &Options::default());
    assert!(loaded.has_errors(), "these names are invalid");
    let graph = build(&loaded.project);
    let ids: Vec<&str> = graph.nodes.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids, ["c_a_b", "c_a_b_2", "c_a_b_3", "c_end", "c_x__y_"]);
    assert_eq!(graph.nodes[4].label[0], "x\"<y>");
}

#[test]
fn a_host_with_nothing_pinned_is_drawn_as_an_empty_cluster() {
    let project = load(
        r#"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1"
        host "m2" address="192.0.2.2"
        container "a" image="base" host="m1"
        "#,
    );
    let dot = to_dot(&build(&project));
    assert!(dot.contains("\"cluster_h_m2_empty\""), "{dot}");
}

#[test]
fn a_host_in_a_site_names_it_in_its_cluster() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/three-sites/kiln.kdl");
    let loaded = spec::load_file(&path, &RealFs, &Options::default()).expect("readable");
    let graph = build(&loaded.project);
    let labels: Vec<String> = graph.clusters.iter().map(|c| c.label.join(" / ")).collect();
    assert_eq!(
        labels,
        [
            "host e1 / 192.0.2.1 / site east",
            "host e2 / 192.0.2.2 / site east",
            "host w1 / 198.51.100.1 / site west",
        ]
    );
}
