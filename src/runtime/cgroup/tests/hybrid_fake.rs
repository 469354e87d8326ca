//! A hybrid machine against the fake kernel: v1 hierarchies (devices, pids, freezer) beside
//! an empty unified one. Containers get a cgroup in each, the v1 device rules, and the
//! device program in the unified one; everything goes with `remove`. No root needed.

use std::sync::{Arc, Mutex};

use super::fake_kernel::FakeKernel;
use crate::runtime::cgroup::{CgroupEvent, DEVICE_RULES, DeviceRulesAt, Limits, device_program};

#[test]
fn a_container_gets_v1_rules_and_the_program_in_the_unified_hierarchy() {
    let fake = FakeKernel::hybrid();
    let hierarchy = fake.hybrid_hierarchy();
    let cgroup = hierarchy
        .create(
            "kiln/abc/c1",
            &Limits {
                pids: Some(50),
                ..Limits::default()
            },
        )
        .unwrap();
    let mut expected = Vec::new();
    for base in ["devices", "freezer", "pids", "unified"] {
        expected.push(format!("mkdir {base}/kiln"));
        expected.push(format!("mkdir {base}/kiln/abc"));
        expected.push(format!("mkdir {base}/kiln/abc/c1"));
    }
    expected.push("write pids/kiln/abc/c1/pids.max = 50".into());
    expected.push("write devices/kiln/abc/c1/devices.deny = a".into());
    for rule in DEVICE_RULES {
        expected.push(format!("write devices/kiln/abc/c1/devices.allow = {rule}"));
    }
    expected.push("attach device program (64 instructions) to unified/kiln/abc/c1".into());
    assert_eq!(fake.take_log(), expected);
    assert_eq!(
        fake.programs("unified/kiln/abc/c1")[0].1,
        device_program(&DEVICE_RULES).unwrap()
    );
    assert_eq!(cgroup.device_programs().unwrap().len(), 1);
    assert_eq!(
        hierarchy.device_rules(),
        DeviceRulesAt {
            v1: Some(fake.root().join("devices")),
            program: Some(fake.root().join("unified")),
        }
    );

    // The container's process joins the unified cgroup too: the program applies to it.
    cgroup.attach(4242).unwrap();
    assert_eq!(fake.file("unified/kiln/abc/c1/cgroup.procs"), "4242");
    assert_eq!(fake.file("devices/kiln/abc/c1/cgroup.procs"), "4242");
    assert_eq!(cgroup.pids().unwrap(), [4242]);

    for base in ["devices", "freezer", "pids", "unified"] {
        fake.set(&format!("{base}/kiln/abc/c1/cgroup.procs"), "");
    }
    cgroup.remove().unwrap();
    assert!(hierarchy.remove_if_empty("kiln/abc").unwrap());
    assert!(hierarchy.remove_if_empty("kiln").unwrap());
    assert!(hierarchy.list("kiln").unwrap().is_empty());
    assert!(!fake.root().join("unified/kiln").exists());
    assert!(fake.programs("unified/kiln/abc/c1").is_empty());
}

#[test]
fn where_the_program_cannot_be_loaded_the_v1_rules_stand_alone_and_the_trace_says_so() {
    let fake = FakeKernel::hybrid();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let hierarchy =
        fake.hybrid_hierarchy()
            .with_observer(Arc::new(move |event: &CgroupEvent<'_>| {
                sink.lock().unwrap().push(event.to_string());
            }));
    fake.fail_next_write("bpf", libc::EINVAL);
    let cgroup = hierarchy.create("c", &Limits::default()).unwrap();
    // A copy: the observer takes the lock again on `remove`.
    let seen = seen.lock().unwrap().clone();
    let last = seen.last().unwrap();
    assert!(
        last.starts_with(&format!(
            "bpf: no device program on {}",
            fake.root().join("unified/c").display()
        )) && last.ends_with("the v1 device rules apply"),
        "{last}"
    );
    assert!(
        seen.iter()
            .any(|line| line.ends_with("devices.allow") && line.contains("\"c 1:3 rwm\"")),
        "{seen:?}"
    );
    assert!(cgroup.device_programs().unwrap().is_empty());
    cgroup.remove().unwrap();
    assert!(hierarchy.list("c").unwrap().is_empty());
}
