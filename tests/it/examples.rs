//! The bundled projects go up and come down cleanly: hello-web (the README's main job),
//! three-tier, router-ring, flaky-link (whose tests need its impairments to be real),
//! registry (a registry container pushed to and pulled from), two-hosts (two simulated
//! machines whose containers talk over a real VXLAN overlay) and three-sites (three machines
//! in two sites with a slow WAN between them).

use crate::harness::{Kiln, Root, example, is_root, which};

fn up_and_down(name: &str, expect: &[&str]) {
    up_check_down(name, expect, |_| {});
}

/// `up -d`, `check(kiln with --root)`, `down -v`, nothing left.
fn up_check_down(name: &str, expect: &[&str], check: impl FnOnce(&dyn Fn(&[&str]) -> Kiln)) {
    if !is_root() {
        return;
    }
    let root = Root::new();
    let file = &example(name);
    let kiln = |args: &[&str]| root.kiln().args(args.iter().copied());
    let up = kiln(&["up", "-d", "-f", file]).run().success();
    for line in expect {
        assert!(
            up.stderr().contains(line),
            "up lacks {line:?}:\n{}",
            up.stderr()
        );
    }
    let ps = kiln(&["ps", "--format", "json"]).run().success().json();
    assert!(!ps.as_array().unwrap().is_empty());
    // Every declared test of the example passes.
    let tested = kiln(&["test", "--no-up", "-f", file]).run().success();
    let last = tested
        .stdout()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(last.ends_with(" passed, 0 failed"), "{}", tested.stdout());
    check(&kiln);
    kiln(&["down", "-v", "-f", file]).run().success();
    assert!(root.ps().is_empty());
    assert!(!root.path().join("net/host.netns").exists());
    assert!(!root.path().join("net/links.json").exists());
    root.assert_clean();
}

#[test]
fn hello_web() {
    up_and_down(
        "hello-web",
        &["web: healthy", "client: started", "hello-web: up"],
    );
}

#[test]
fn three_tier() {
    up_and_down(
        "three-tier",
        &[
            "seed: completed with exit code 0",
            "db: healthy",
            "app-1: started",
            "app-2: started",
            "web: started",
            "three-tier: up",
        ],
    );
}

#[test]
fn router_ring() {
    up_and_down(
        "router-ring",
        &[
            "link r1:eth1 r2:eth1: up, impaired by the",
            "router-ring: up",
        ],
    );
}

#[test]
fn flaky_link() {
    up_check_down(
        "flaky-link",
        &[
            "link client:eth1 server:eth1: up, impaired by the",
            "flaky-link: up",
        ],
        |kiln| {
            let links = kiln(&["network", "links", "--format", "json"])
                .run()
                .success()
                .json();
            let carrier = links[0]["carried_by"].as_str().unwrap_or_default();
            assert!(["kernel", "userspace"].contains(&carrier), "{links}");
        },
    );
}

/// The VTEP counters of overlay `network` on each host: host → (tx, rx) packets.
fn vtep_packets(
    kiln: &dyn Fn(&[&str]) -> Kiln,
    network: &str,
) -> std::collections::BTreeMap<String, (u64, u64)> {
    let inspected = kiln(&["network", "inspect", network, "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(inspected["driver"], "overlay", "{inspected}");
    inspected["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .map(|h| {
            let vtep = &h["vtep"];
            assert_eq!(vtep["up"], true, "{inspected}");
            (
                h["host"].as_str().unwrap().to_string(),
                (
                    vtep["tx_packets"].as_u64().unwrap(),
                    vtep["rx_packets"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn two_hosts() {
    up_check_down(
        "two-hosts",
        &["a: started", "b: healthy", "two-hosts: up"],
        |kiln| {
            let ps = kiln(&["ps", "--format", "json"]).run().success().json();
            let host_of = |name: &str| {
                ps.as_array()
                    .unwrap()
                    .iter()
                    .find(|c| c["name"] == name)
                    .map(|c| c["host"].clone())
            };
            assert_eq!(host_of("a"), Some("m1".into()), "{ps}");
            assert_eq!(host_of("b"), Some("m2".into()), "{ps}"); // placed
            assert_eq!(host_of("c"), Some("m2".into()), "{ps}");
            // Traffic from a (m1) to b (m2) leaves m1's VTEP and enters m2's.
            let before = vtep_packets(kiln, "two-hosts/mesh");
            let tested = kiln(&[
                "test",
                "--no-up",
                "-f",
                &example("two-hosts"),
                "across hosts by name",
            ])
            .run()
            .success();
            assert!(
                tested.stdout().contains("4 passed, 0 failed"),
                "{}",
                tested.stdout()
            );
            let after = vtep_packets(kiln, "two-hosts/mesh");
            assert!(after["m1"].0 > before["m1"].0, "{before:?} {after:?}");
            assert!(after["m2"].1 > before["m2"].1, "{before:?} {after:?}");
            assert!(after["m2"].0 > before["m2"].0, "{before:?} {after:?}");
            // (Isolation between the two overlays is the example's own test, which has run;
            // after `down` the harness checks that nothing at all is left.)
            assert_eq!(
                kiln(&["ps", "-q"]).run().success().stdout().lines().count(),
                3
            );
        },
    );
}

#[test]
fn registry() {
    if !is_root() || !which("docker-registry") {
        return;
    }
    up_check_down(
        "registry",
        &["registry: healthy", "client: started", "registry: up"],
        |kiln| {
            // The seed's workflow: push to the registry container through its published
            // port, pull back into another state root, run what came back.
            let reference = "127.0.0.1:35000/demo/client:1";
            let pushed = kiln(&["push", "client", reference, "--format", "json"])
                .run()
                .success()
                .json();
            let elsewhere = Root::new();
            let pulled = elsewhere
                .kiln()
                .args(["pull", reference, "--format", "json"])
                .run()
                .success()
                .json();
            assert_eq!(pulled["digest"], pushed["digest"]);
            elsewhere
                .kiln()
                .args(["run", "--rm", reference, "sh", "-c", "echo pulled back"])
                .run()
                .success()
                .stdout_is("pulled back\n");
        },
    );
}

#[test]
fn three_sites() {
    up_check_down(
        "three-sites",
        &["origin: healthy", "client: started", "three-sites: up"],
        |kiln| {
            let ps = kiln(&["ps", "--format", "json"]).run().success().json();
            let hosts: Vec<(String, String)> = ps
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    (
                        c["name"].as_str().unwrap().to_string(),
                        c["host"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            for placed in [("worker-1", "e2"), ("worker-2", "w1")] {
                assert!(
                    hosts.contains(&(placed.0.into(), placed.1.into())),
                    "{hosts:?}"
                );
            }
            // The WAN: one engine path per pair of hosts across the two sites, and none
            // between e1 and e2.
            let links = kiln(&["network", "links", "--format", "json"])
                .run()
                .success()
                .json();
            let pairs: Vec<(&str, &str, &str)> = links
                .as_array()
                .unwrap()
                .iter()
                .filter(|l| l["underlay"] == true)
                .map(|l| {
                    (
                        l["a"].as_str().unwrap(),
                        l["b"].as_str().unwrap(),
                        l["carried_by"].as_str().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                pairs,
                [("e1", "w1", "userspace"), ("e2", "w1", "userspace")],
                "{links}"
            );
            assert_eq!(links[0]["impairment"], "40ms, 1% loss", "{links}");
        },
    );
}
