use proptest::prelude::*;

use super::*;
use crate::spec::{Options, RealFs, load_source};

fn host(name: &str, cpus: Option<u64>, memory: Option<u64>) -> Capacity {
    Capacity {
        name: name.to_string(),
        millicpus: cpus.map(|c| c * 1000),
        memory,
    }
}

fn demand(instance: &str, service: &str, millicpus: u64, memory: u64) -> Demand {
    Demand {
        instance: instance.to_string(),
        service: service.to_string(),
        millicpus,
        memory,
        pinned: None,
    }
}

const GIB: u64 = 1 << 30;

#[test]
fn bin_packing_fills_the_fullest_host_that_fits() {
    let hosts = [
        host("m1", Some(4), Some(8 * GIB)),
        host("m2", Some(2), Some(4 * GIB)),
    ];
    let demands = [
        demand("a", "a", 1000, GIB),
        demand("b", "b", 1000, GIB),
        demand("c", "c", 2000, GIB),
    ];
    let placement = place(&hosts, &demands, &[]);
    assert!(placement.problems.is_empty());
    // c (largest) first: m2 is full afterwards (2 of 2 cpus), m1 half: m2 wins. Then a and
    // b do not fit on m2 any more: m1.
    assert_eq!(placement.host_of, [Some(0), Some(0), Some(1)]);
}

#[test]
fn replicas_spread_before_packing() {
    let hosts = [
        host("m1", None, None),
        host("m2", None, None),
        host("m3", None, None),
    ];
    let demands = [
        demand("web-1", "web", 0, 0),
        demand("web-2", "web", 0, 0),
        demand("web-3", "web", 0, 0),
        demand("web-4", "web", 0, 0),
        demand("db", "db", 0, 0),
    ];
    let placement = place(&hosts, &demands, &[]);
    // Round robin for the replicas; db to a host with the fewest instances (m2 and m3 have
    // one each: the earlier).
    assert_eq!(
        placement.host_of,
        [Some(0), Some(1), Some(2), Some(0), Some(1)]
    );
}

#[test]
fn a_pin_is_honoured_and_reported_when_over_capacity() {
    let hosts = [host("m1", Some(1), None), host("m2", None, None)];
    let mut big = demand("big", "big", 2000, 0);
    big.pinned = Some(0);
    let placement = place(&hosts, &[big], &[]);
    assert_eq!(placement.host_of, [Some(0)]);
    assert_eq!(
        placement.problems,
        [Problem::PinnedOver {
            unit: vec![0],
            host: 0,
            free: Free {
                millicpus: Some(1000),
                memory: None
            }
        }]
    );
}

#[test]
fn nothing_fits_names_every_hosts_free_capacity() {
    let hosts = [
        host("m1", Some(2), Some(GIB)),
        host("m2", Some(1), Some(4 * GIB)),
    ];
    let demands = [
        demand("a", "a", 1000, GIB / 2),
        demand("huge", "huge", 3000, 0),
    ];
    let placement = place(&hosts, &demands, &[]);
    assert_eq!(placement.host_of[1], None);
    let [Problem::NoFit { unit, free }] = placement.problems.as_slice() else {
        panic!("{:?}", placement.problems);
    };
    assert_eq!(unit, &[1]);
    assert_eq!(free.len(), 2);
}

#[test]
fn linked_instances_share_a_host() {
    let hosts = [host("m1", Some(1), None), host("m2", Some(4), None)];
    let demands = [
        demand("r1", "r1", 1000, 0),
        demand("r2", "r2", 1000, 0),
        demand("r3", "r3", 0, 0),
    ];
    let placement = place(&hosts, &demands, &[(0, 1), (1, 2)]);
    assert!(placement.problems.is_empty());
    assert_eq!(placement.host_of, [Some(1), Some(1), Some(1)]);
}

#[test]
fn linked_instances_pinned_apart_are_a_problem() {
    let hosts = [host("m1", None, None), host("m2", None, None)];
    let mut a = demand("a", "a", 0, 0);
    a.pinned = Some(0);
    let mut b = demand("b", "b", 0, 0);
    b.pinned = Some(1);
    let placement = place(&hosts, &[a, b], &[(0, 1)]);
    assert_eq!(
        placement.problems,
        [Problem::PinnedApart {
            first: 0,
            first_host: 0,
            other: 1,
            other_host: 1
        }]
    );
    assert_eq!(placement.host_of, [None, None]);
}

fn loaded(text: &str) -> crate::spec::Loaded {
    let options = Options {
        check_placement: Some(check),
        ..Options::default()
    };
    load_source("kiln.kdl", None, text, &RealFs, &options)
}

#[test]
fn a_project_is_placed_by_its_declarations() {
    let project = loaded(
        r#"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1" cpus=4 memory="8GiB"
        host "m2" address="192.0.2.2" cpus=2 memory="4GiB"
        network "mesh" subnet="10.77.0.0/16" driver="overlay"
        container "a" image="base" host="m1" { network "mesh"; }
        container "b" image="base" { network "mesh"; cpus 1; memory "256MiB"; }
        container "web" image="base" replicas=2 { network "mesh"; cpus 0.5; }
        "#,
    );
    assert!(project.diagnostics.is_empty(), "{:?}", project.diagnostics);
    let placed = of_project(&project.project);
    assert_eq!(placed["a"], "m1");
    // b first (largest): m2 ends fuller (1/2 cpus against m1's 1/4).
    assert_eq!(placed["b"], "m2");
    // The two replicas spread.
    assert_ne!(placed["web-1"], placed["web-2"]);
}

#[test]
fn check_reports_what_does_not_fit_at_the_container() {
    let project = loaded(
        r#"
        image "base" { from "scratch"; }
        host "m1" address="192.0.2.1" cpus=2 memory="1GiB"
        host "m2" address="192.0.2.2" cpus=1
        container "big" image="base" { cpus 4; memory "2GiB"; }
        "#,
    );
    let [diagnostic] = project.diagnostics.as_slice() else {
        panic!("{:?}", project.diagnostics);
    };
    assert_eq!(diagnostic.code, Code::NoHostFits);
    assert_eq!(diagnostic.message, "`big` fits on no host");
    assert_eq!(diagnostic.label.as_deref(), Some("needs 4 cpus and 2GiB"));
    let help = diagnostic.help.as_deref().unwrap();
    assert!(help.contains("`m1` has 2 cpus and 1GiB free"), "{help}");
    assert!(
        help.contains("`m2` has 1 cpu and any memory free"),
        "{help}"
    );
}

#[test]
fn cpus_are_written_as_people_write_them() {
    assert_eq!(cpus_text(1000), "1 cpu");
    assert_eq!(cpus_text(1500), "1.5 cpus");
    assert_eq!(cpus_text(250), "0.25 cpus");
    assert_eq!(cpus_text(0), "0 cpus");
}

fn hosts_strategy() -> impl Strategy<Value = Vec<Capacity>> {
    prop::collection::vec(
        (prop::option::of(1u64..8_000), prop::option::of(1u64..64)),
        1..5,
    )
    .prop_map(|caps| {
        caps.into_iter()
            .enumerate()
            .map(|(i, (c, m))| Capacity {
                name: format!("m{i}"),
                millicpus: c,
                memory: m.map(|m| m << 20),
            })
            .collect()
    })
}

fn demands_strategy() -> impl Strategy<Value = Vec<Demand>> {
    prop::collection::vec(
        (
            0u64..3_000,
            0u64..16,
            0usize..4,
            prop::option::of(0usize..6),
        ),
        0..24,
    )
    .prop_map(|ds| {
        ds.into_iter()
            .enumerate()
            .map(|(i, (c, m, service, pinned))| Demand {
                instance: format!("c{i}"),
                service: format!("s{service}"),
                millicpus: c,
                memory: m << 20,
                pinned,
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn the_same_input_gives_the_same_placement(
        hosts in hosts_strategy(),
        demands in demands_strategy(),
        links in prop::collection::vec((0usize..24, 0usize..24), 0..6),
    ) {
        let first = place(&hosts, &demands, &links);
        let second = place(&hosts.clone(), &demands.clone(), &links.clone());
        prop_assert_eq!(first, second);
    }

    #[test]
    fn capacities_are_honoured_but_for_reported_pins(
        hosts in hosts_strategy(),
        demands in demands_strategy(),
        links in prop::collection::vec((0usize..24, 0usize..24), 0..6),
    ) {
        let placement = place(&hosts, &demands, &links);
        let over_pinned: BTreeSet<usize> = placement.problems.iter().filter_map(|p| match p {
            Problem::PinnedOver { host, .. } => Some(*host),
            _ => None,
        }).collect();
        for (h, capacity) in hosts.iter().enumerate() {
            if over_pinned.contains(&h) {
                continue;
            }
            let on: Vec<&Demand> = demands.iter().zip(&placement.host_of)
                .filter(|(_, host)| **host == Some(h)).map(|(d, _)| d).collect();
            let cpus: u64 = on.iter().map(|d| d.millicpus).sum();
            let memory: u64 = on.iter().map(|d| d.memory).sum();
            prop_assert!(capacity.millicpus.is_none_or(|c| cpus <= c), "{} over its cpus", capacity.name);
            prop_assert!(capacity.memory.is_none_or(|m| memory <= m), "{} over its memory", capacity.name);
        }
        // Every instance is placed or named by a problem.
        for (i, host) in placement.host_of.iter().enumerate() {
            if host.is_none() {
                let named = placement.problems.iter().any(|p| match p {
                    Problem::NoFit { unit, .. } => unit.contains(&i),
                    Problem::PinnedApart { .. } => true,
                    Problem::PinnedOver { .. } => false,
                });
                prop_assert!(named, "instance {} is neither placed nor reported", i);
            }
        }
    }

    #[test]
    fn pins_and_links_are_kept(
        hosts in hosts_strategy(),
        demands in demands_strategy(),
        links in prop::collection::vec((0usize..24, 0usize..24), 0..6),
    ) {
        let placement = place(&hosts, &demands, &links);
        for (d, host) in demands.iter().zip(&placement.host_of) {
            if let (Some(pin), Some(host)) = (d.pinned.filter(|&p| p < hosts.len()), host) {
                prop_assert_eq!(pin, *host);
            }
        }
        for &(a, b) in &links {
            if a < demands.len() && b < demands.len()
                && let (Some(x), Some(y)) = (placement.host_of[a], placement.host_of[b]) {
                prop_assert_eq!(x, y);
            }
        }
    }

    #[test]
    fn replicas_spread_across_hosts_when_they_fit(
        count in 1usize..6,
        replicas in 1usize..6,
    ) {
        let hosts: Vec<Capacity> = (0..count).map(|i| host(&format!("m{i}"), None, None)).collect();
        let demands: Vec<Demand> = (0..replicas)
            .map(|i| demand(&format!("web-{i}"), "web", 100, 1 << 20))
            .collect();
        let placement = place(&hosts, &demands, &[]);
        let used: BTreeSet<usize> = placement.host_of.iter().flatten().copied().collect();
        prop_assert_eq!(used.len(), replicas.min(count));
    }
}
