//! Multi-host projects as a user meets them today: `kiln up --dry-run` prints where each
//! container runs (pinned or placed by the declared cpus and memory) without building or
//! starting anything (`kiln up` itself runs the hosts simulated: see `overlay.rs`).

use crate::harness::{Project, Root};

const THREE_HOSTS: &str = r#"project "sites"
image "base" { from "scratch"; }
host "m1" address="192.0.2.1" cpus=4 memory="8GiB"
host "m2" address="192.0.2.2" cpus=2 memory="4GiB"
host "m3" address="192.0.2.3"
network "mesh" subnet="10.77.0.0/16" driver="overlay" vni=42
container "db" image="base" host="m1" { network "mesh"; cpus 2; memory "4GiB"; }
container "web" image="base" replicas=3 { network "mesh"; cpus 1; memory "1GiB"; }
"#;

#[test]
fn up_dry_run_prints_the_placement_and_starts_nothing() {
    let root = Root::new();
    let project = Project::new(THREE_HOSTS);
    let out = project
        .kiln(root.path())
        .args(["up", "--dry-run"])
        .run()
        .success()
        .stdout();
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name}:\n{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("db")[1..3], ["m1", "pinned"], "{out}");
    // Three replicas of one service on three hosts: they spread.
    let hosts: std::collections::BTreeSet<String> = ["web-1", "web-2", "web-3"]
        .map(|w| row(w)[1].clone())
        .into();
    assert_eq!(hosts.len(), 3, "{out}");
    assert!(out.contains("overlay, VNI 42"), "{out}");
    assert!(row("m1").contains(&"192.0.2.1".to_string()), "{out}");
    // Overlay addresses from the file alone: declaration order, then a range per host.
    let has = |tokens: &[&str]| {
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == tokens)
    };
    assert!(has(&["mesh", "10.77.0.2", "db"]), "{out}");
    assert!(has(&["mesh", "10.77.0.3", "web-1"]), "{out}");
    assert!(
        has(&[
            "mesh",
            "10.77.128.0-10.77.170.169",
            "started",
            "by",
            "hand",
            "on",
            "m1"
        ]),
        "{out}"
    );
    // The same file, the same placement.
    let again = project
        .kiln(root.path())
        .args(["up", "--dry-run"])
        .run()
        .success()
        .stdout();
    assert_eq!(out, again);
    assert!(root.ps().is_empty());
}

#[test]
fn up_dry_run_of_a_file_that_does_not_fit_shows_the_diagnostic() {
    let root = Root::new();
    let project = Project::new(&THREE_HOSTS.replace("cpus 2;", "cpus 5;"));
    project
        .kiln(root.path())
        .args(["up", "--dry-run"])
        .run()
        .failure()
        .stderr_contains("kiln::spec::no-host-fits")
        .stderr_contains("`db` does not fit on host `m1`")
        .stderr_contains("`m1` has 4 cpus and 8GiB free");
}
