//! `kiln graph` as a user runs it: dot that Graphviz draws, Mermaid that is well formed,
//! JSON, `-o FILE`, the same bytes every time, and diagnostics for an invalid project.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use kiln::graph::{self, Cluster, Edge, EdgeKind, Graph, Node, NodeKind};

use crate::harness::markdown::blocks;
use crate::harness::{Kiln, Project, Root, example, repo, which};

/// `kiln graph -f examples/NAME/kiln.kdl ARGS…`, which must succeed; its stdout.
fn graph_of(name: &str, args: &[&str]) -> String {
    let root = Root::new();
    Kiln::new()
        .root(root.path())
        .args(["graph", "-f", &example(name)])
        .args(args)
        .run()
        .success()
        .stdout()
}

const RING: &str = r#"project "ring"
image "base" { from "scratch"; }
container "r1" image="base"
container "r2" image="base"
container "r3" image="base" replicas=2
link "r1:eth1" "r2:eth1" { impair delay="20ms" jitter="5ms" loss="1%"; }
link "r2:eth2" "r3-1:eth1"
link "r3-2:eth1" "r1:eth2" subnet="10.99.0.0/30"
"#;

/// Runs `dot -Tsvg` on `input`; the SVG, after checking dot accepted it without a word.
fn dot_to_svg(input: &str) -> String {
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dot runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("writing to dot");
    let out = child.wait_with_output().expect("dot finishes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "dot rejected:\n{input}\n--- stderr\n{stderr}"
    );
    String::from_utf8(out.stdout).expect("SVG is UTF-8")
}

/// The text of an SVG's `<text>` elements, entities decoded (Graphviz writes `-` as `&#45;`).
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|s| s.split_once('>'))
        .filter_map(|(_, rest)| rest.split_once("</text>"))
        .map(|(text, _)| {
            text.replace("&#45;", "-")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&#160;", " ")
                .replace("&amp;", "&")
        })
        .collect()
}

#[test]
fn graphviz_draws_the_design_example_with_every_container() {
    let dot = graph_of("design", &[]);
    assert!(dot.starts_with("digraph \"hello-web\" {\n"), "{dot}");
    if !which("dot") {
        return;
    }
    let texts = svg_texts(&dot_to_svg(&dot));
    for name in ["web", "client", "seed-db", "r1", "r2", "front", "back"] {
        assert!(
            texts.iter().any(|t| t == name),
            "the SVG shows {name}: {texts:?}"
        );
    }
    assert!(
        texts.iter().any(|t| t == "20ms ±5ms, 1% loss, 10mbit"),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t == "host:18080 → 8080/tcp"),
        "{texts:?}"
    );
}

#[test]
fn graphviz_draws_hosts_a_ring_and_hostile_labels() {
    let project = Project::new(RING);
    let root = Root::new();
    let ring = project
        .kiln(root.path())
        .args(["graph"])
        .run()
        .success()
        .stdout();
    let hosts = graph_of("two-hosts", &["--format", "dot"]);
    let hostile = graph::to_dot(&hostile_graph());
    if !which("dot") {
        return;
    }
    let texts = svg_texts(&dot_to_svg(&ring));
    for name in ["r1", "r2", "r3-1", "r3-2"] {
        assert!(texts.iter().any(|t| t == name), "{name}: {texts:?}");
    }
    let texts = svg_texts(&dot_to_svg(&hosts));
    for text in ["host m1", "host m2", "a", "b", "mesh"] {
        assert!(texts.iter().any(|t| t == text), "{text}: {texts:?}");
    }
    let texts = svg_texts(&dot_to_svg(&hostile));
    assert!(
        texts.iter().any(|t| t == HOSTILE),
        "dot shows the hostile label as written: {texts:?}"
    );
}

/// Checks what a Mermaid flowchart needs to parse, as kiln writes it: a `flowchart` header;
/// one statement per line (no `;` outside strings); every label one quoted string with no
/// quote inside; ids plain words and not `end`; every node declared once, before any edge,
/// `class` or subgraph use; subgraphs closed; `linkStyle` indexes within the edges.
fn check_mermaid(text: &str) {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("flowchart LR"), "{text}");
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut subgraphs: Vec<String> = Vec::new();
    let mut edges = 0;
    let is_id = |id: &str| {
        !id.is_empty() && id != "end" && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    for line in lines {
        let fail = |why: &str| -> ! { panic!("{why}: {line:?}\n{text}") };
        let statement = line.trim();
        // Outside the one quoted string, the statement's syntax.
        let (outside, quoted) = match statement.matches('"').count() {
            0 => (statement.to_string(), None),
            2 => {
                let open = statement.find('"').expect("a quote");
                let close = statement.rfind('"').expect("a quote");
                let inner = &statement[open + 1..close];
                (
                    format!("{}\"\"{}", &statement[..open], &statement[close + 1..]),
                    Some(inner),
                )
            }
            _ => fail("a label is one quoted string"),
        };
        if outside.contains(';') || outside.contains("%%") {
            fail("one statement per line, no comments");
        }
        if let Some(inner) = quoted
            && (inner.replace("<br>", "").contains(['<', '>']) || inner.contains("%%"))
        {
            fail("labels carry no raw HTML or directives");
        }
        let words: Vec<&str> = outside.split_whitespace().collect();
        match words.as_slice() {
            ["end"] => {
                subgraphs
                    .pop()
                    .unwrap_or_else(|| fail("`end` without subgraph"));
            }
            ["subgraph", id, "[\"\"]"] => {
                if !is_id(id) || !declared.insert(id.to_string()) {
                    fail("a subgraph id is a fresh word");
                }
                subgraphs.push(id.to_string());
            }
            ["classDef", name, ..] if is_id(name) => {}
            ["class", ids, name] if is_id(name) => {
                for id in ids.split(',') {
                    if !declared.contains(id) {
                        fail("class of an undeclared node");
                    }
                }
            }
            ["linkStyle", indexes, ..] => {
                for i in indexes.split(',') {
                    let i: usize = i.parse().unwrap_or_else(|_| fail("an edge index"));
                    if i >= edges {
                        fail("linkStyle past the last edge");
                    }
                }
            }
            [from, arrow, to] if ["-->", "---", "-.->"].contains(arrow) => {
                if !declared.contains(*from) || !declared.contains(*to) {
                    fail("an edge between declared nodes");
                }
                edges += 1;
            }
            [from, labelled, to] => {
                let arrow = labelled
                    .strip_suffix("|\"\"|")
                    .unwrap_or_else(|| fail("an edge label is |\"…\"|"));
                if !["-->", "---", "-.->"].contains(&arrow) {
                    fail("a known arrow");
                }
                if !declared.contains(*from) || !declared.contains(*to) {
                    fail("an edge between declared nodes");
                }
                edges += 1;
            }
            [node] => {
                let shape = ["[\"\"]", "([\"\"])", "{{\"\"}}"]
                    .into_iter()
                    .find(|s| node.ends_with(s))
                    .unwrap_or_else(|| fail("a node with a known shape"));
                let id = &node[..node.len() - shape.len()];
                if !is_id(id) {
                    fail("a node id is a plain word");
                }
                if edges > 0 {
                    fail("nodes are declared before edges");
                }
                if !declared.insert(id.to_string()) {
                    fail("a node is declared once");
                }
            }
            _ => fail("an unknown statement"),
        }
    }
    assert!(subgraphs.is_empty(), "every subgraph ends: {text}");
}

#[test]
fn mermaid_output_is_well_formed() {
    let design = graph_of("design", &["--format", "mermaid"]);
    check_mermaid(&design);
    for id in ["c_web", "c_client", "c_seed_db", "c_r1", "c_r2"] {
        assert!(design.contains(&format!("\n    {id}")), "{id} in\n{design}");
    }
    assert!(design.contains("c_seed_db([\"seed-db<br>job"), "{design}");
    check_mermaid(&graph_of("two-hosts", &["--format", "mermaid"]));
    let project = Project::new(RING);
    let root = Root::new();
    let ring = project
        .kiln(root.path())
        .args(["graph", "--format", "mermaid"])
        .run()
        .success()
        .stdout();
    check_mermaid(&ring);
    check_mermaid(&graph::to_mermaid(&hostile_graph()));
}

#[test]
fn the_checker_rejects_broken_mermaid() {
    for broken in [
        "flowchart LR\n    a[\"x\"] --> b\n",
        "flowchart LR\n    a[\"x\"]\n    a --> b\n",
        "flowchart LR\n    a[\"x\"\"]\n",
        "flowchart LR\n    a[\"x\"]; b[\"y\"]\n",
        "flowchart LR\n    end[\"x\"]\n",
        "flowchart LR\n    subgraph s [\"t\"]\n",
        "flowchart LR\n    a[\"<b>x</b>\"]\n",
        "flowchart LR\n    a[\"%%{init: {}}%%\"]\n",
    ] {
        let caught = std::panic::catch_unwind(|| check_mermaid(broken));
        assert!(caught.is_err(), "the checker accepts {broken:?}");
    }
}

#[test]
fn json_holds_nodes_edges_and_clusters() {
    let root = Root::new();
    let ran = Kiln::new()
        .root(root.path())
        .args(["graph", "-f", &example("two-hosts"), "--format", "json"])
        .run()
        .success();
    let json = ran.json();
    assert_eq!(json["project"], "two-hosts");
    assert_eq!(json["clusters"][0]["id"], "h_m1");
    let nodes = json["nodes"].as_array().expect("nodes");
    assert!(
        nodes
            .iter()
            .any(|n| n["id"] == "c_a" && n["kind"] == "container" && n["cluster"] == "h_m1")
    );
    let edges = json["edges"].as_array().expect("edges");
    assert!(
        edges
            .iter()
            .any(|e| e["from"] == "c_b" && e["to"] == "n_mesh" && e["kind"] == "attachment")
    );
}

#[test]
fn output_file_and_stdout_are_the_same_bytes_every_time() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let file = dir.path().join("design.mmd");
    let root = Root::new();
    Kiln::new()
        .root(root.path())
        .args([
            "graph",
            "-f",
            &example("design"),
            "--format",
            "mermaid",
            "-o",
        ])
        .args([&file])
        .run()
        .success()
        .stdout_is("");
    let written = std::fs::read_to_string(&file).expect("-o wrote the file");
    let first = graph_of("design", &["--format", "mermaid"]);
    assert_eq!(written, first);
    assert_eq!(graph_of("design", &["--format", "mermaid"]), first);
    assert_eq!(
        graph_of("design", &[]),
        graph_of("design", &["--format", "dot"])
    );
}

#[test]
fn an_invalid_project_gets_diagnostics_and_exit_1() {
    let project =
        Project::new("image \"base\" { from \"scratch\"; }\ncontainer \"web\" image=\"nope\"\n");
    let root = Root::new();
    project
        .kiln(root.path())
        .args(["graph"])
        .run()
        .failure()
        .stdout_is("")
        .stderr_contains("kiln::spec::unknown-image")
        .stderr_contains("kiln.kdl: 1 error");
    Kiln::new()
        .root(root.path())
        .args(["graph", "-f", "/nonexistent/kiln.kdl"])
        .run()
        .failure()
        .stderr_contains("kiln::spec::unreadable");
}

/// A label with what dot, Mermaid, HTML and Mermaid's directives treat specially.
const HOSTILE: &str =
    "a\"b\\n\\\"c%%{init: {\"theme\":\"dark\"}}%% <b>x</b> | ] ) } end # &amp; `md` ;";

fn hostile_graph() -> Graph {
    Graph {
        project: HOSTILE.into(),
        nodes: vec![
            Node {
                id: "c_a".into(),
                kind: NodeKind::Job,
                label: vec![HOSTILE.into()],
                cluster: Some("h_x".into()),
            },
            Node {
                id: "n_b".into(),
                kind: NodeKind::Network,
                label: vec![HOSTILE.into()],
                cluster: None,
            },
        ],
        edges: vec![
            Edge {
                from: "c_a".into(),
                to: "n_b".into(),
                kind: EdgeKind::DependsOn,
                label: vec![HOSTILE.into()],
            },
            Edge {
                from: "n_b".into(),
                to: "c_a".into(),
                kind: EdgeKind::Link,
                label: vec![],
            },
        ],
        clusters: vec![Cluster {
            id: "h_x".into(),
            label: vec![HOSTILE.into()],
        }],
    }
}

/// The first fenced block of `language` in the book page `page`.
fn fenced(page: &std::path::Path, language: &str) -> String {
    blocks(page)
        .into_iter()
        .find(|b| b.info == language)
        .unwrap_or_else(|| panic!("a ```{language} block in {}", page.display()))
        .text
}

#[test]
fn the_book_shows_what_kiln_graph_writes() {
    let page = repo().join("book/src/language/graph.md");
    let project = Project::new(&fenced(&page, "kdl"));
    let root = Root::new();
    for (format, language) in [("dot", "dot"), ("mermaid", "mermaid")] {
        let written = project
            .kiln(root.path())
            .args(["graph", "--format", format])
            .run()
            .success()
            .stdout();
        assert_eq!(
            fenced(&page, language),
            written,
            "book/src/language/graph.md shows the {format} output as kiln writes it"
        );
    }
}
