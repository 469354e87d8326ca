//! cgroup v2 against the fake kernel: which files get which values, in which order;
//! controllers enabled in the parents; stats and OOM kills parsed from sample files;
//! cleanup after errors. No root needed.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::fake_kernel::FakeKernel;
use crate::runtime::cgroup::{CgroupError, CgroupEvent, Limits, Stats};

const ALL: &str = "cpuset cpu io memory hugetlb pids rdma misc";
const MIB: u64 = 1024 * 1024;

fn limits() -> Limits {
    Limits {
        memory: Some(64 * MIB),
        cpus: Some(0.5),
        pids: Some(100),
    }
}

#[test]
fn create_enables_controllers_in_every_parent_and_writes_each_limit() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    let cgroup = hierarchy.create("kiln/abc/c1", &limits()).unwrap();
    assert_eq!(cgroup.name(), "kiln/abc/c1");
    assert_eq!(cgroup.dirs(), vec![fake.root().join("kiln/abc/c1")]);
    assert_eq!(
        fake.take_log(),
        [
            "write cgroup.subtree_control = +memory +cpu +pids",
            "write cgroup.subtree_control = +io",
            "mkdir kiln",
            "write kiln/cgroup.subtree_control = +memory +cpu +pids",
            "write kiln/cgroup.subtree_control = +io",
            "mkdir kiln/abc",
            "write kiln/abc/cgroup.subtree_control = +memory +cpu +pids",
            "write kiln/abc/cgroup.subtree_control = +io",
            "mkdir kiln/abc/c1",
            "write kiln/abc/c1/memory.max = 67108864",
            "write kiln/abc/c1/memory.swap.max = 0",
            "write kiln/abc/c1/cpu.max = 50000 100000",
            "write kiln/abc/c1/pids.max = 100",
            "attach device program (64 instructions) to kiln/abc/c1",
        ]
    );
    for dir in ["", "kiln/", "kiln/abc/"] {
        assert_eq!(
            fake.file(&format!("{dir}cgroup.subtree_control")),
            "cpu io memory pids"
        );
    }
    assert_eq!(
        fake.file("kiln/abc/c1/cgroup.controllers"),
        "cpu io memory pids"
    );
    assert_eq!(fake.file("kiln/abc/c1/memory.max"), "67108864");
    assert_eq!(fake.file("kiln/abc/c1/memory.swap.max"), "0");
    assert_eq!(fake.file("kiln/abc/c1/cpu.max"), "50000 100000");
    assert_eq!(fake.file("kiln/abc/c1/pids.max"), "100");
    assert_eq!(
        hierarchy.list("kiln").unwrap(),
        ["kiln", "kiln/abc", "kiln/abc/c1"]
    );
}

#[test]
fn a_second_cgroup_reuses_the_parents_and_enables_nothing_twice() {
    let fake = FakeKernel::new(ALL, "cpu io memory pids");
    let hierarchy = fake.hierarchy();
    hierarchy.create("kiln/abc/c1", &Limits::default()).unwrap();
    fake.take_log();
    hierarchy
        .create(
            "kiln/abc/c2",
            &Limits {
                cpus: Some(2.0),
                ..Limits::default()
            },
        )
        .unwrap();
    assert_eq!(
        fake.take_log(),
        [
            "mkdir kiln/abc/c2",
            "write kiln/abc/c2/cpu.max = 200000 100000",
            "attach device program (64 instructions) to kiln/abc/c2",
        ]
    );
    // The root already had the controllers enabled (systemd does that): never rewritten.
    assert_eq!(fake.file("cgroup.subtree_control"), "cpu io memory pids");
}

#[test]
fn swap_is_left_alone_where_the_kernel_does_not_account_it() {
    let fake = FakeKernel::with(ALL, "", false, true);
    let hierarchy = fake.hierarchy();
    hierarchy
        .create(
            "c",
            &Limits {
                memory: Some(32 * MIB),
                ..Limits::default()
            },
        )
        .unwrap();
    let log = fake.take_log();
    assert!(
        log.contains(&"write c/memory.max = 33554432".to_owned()),
        "{log:?}"
    );
    assert!(!log.iter().any(|entry| entry.contains("swap")), "{log:?}");
}

#[test]
fn cpu_quotas_are_rounded_to_microseconds_of_a_100ms_period() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    for (index, (cpus, expected)) in [
        (0.01, "1000 100000"),
        (1.0, "100000 100000"),
        (1.234567, "123457 100000"),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("c{index}");
        hierarchy
            .create(
                &name,
                &Limits {
                    cpus: Some(cpus),
                    ..Limits::default()
                },
            )
            .unwrap();
        assert_eq!(
            fake.file(&format!("{name}/cpu.max")),
            expected,
            "cpus {cpus}"
        );
    }
}

#[test]
fn stats_parse_the_kernel_files_and_max_means_no_limit() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    let cgroup = hierarchy
        .create(
            "c",
            &Limits {
                pids: Some(64),
                ..Limits::default()
            },
        )
        .unwrap();
    fake.set(
        "c/cpu.stat",
        "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n",
    );
    fake.set("c/memory.current", "1234567\n");
    fake.set(
        "c/memory.events",
        "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
    );
    fake.set("c/pids.current", "3\n");
    fake.set(
        "c/memory.stat",
        "anon 1000000\nfile 234567\nactive_file 34567\ninactive_file 200000\n",
    );
    fake.set(
        "c/io.stat",
        "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n\
         253:1 rbytes=1000 wbytes=24 rios=3 wios=1 dbytes=0 dios=0\n",
    );
    assert_eq!(
        cgroup.stats().unwrap(),
        Stats {
            cpu_usage_ns: 1_500_000,
            memory_usage: 1_234_567,
            memory_inactive_file: 200_000,
            memory_limit: None,
            pids_current: 3,
            pids_limit: Some(64),
            oom_kills: 2,
            block_read: 5096,
            block_write: 8216,
        }
    );
    fake.set("c/io.stat", "8:0 rbytes=many\n");
    let err = cgroup.stats().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Parse { path, .. } if path.ends_with("c/io.stat")),
        "{err:?}"
    );
    fake.set("c/io.stat", "");
    fake.set("c/memory.current", "lots\n");
    let err = cgroup.stats().unwrap_err();
    assert!(
        matches!(&err, CgroupError::Parse { path, content } if path.ends_with("c/memory.current") && content == "lots"),
        "{err:?}"
    );
}

#[test]
fn oom_kills_are_read_from_memory_events() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake
        .hierarchy()
        .create(
            "c",
            &Limits {
                memory: Some(64 * MIB),
                ..Limits::default()
            },
        )
        .unwrap();
    assert!(!cgroup.oom_killed().unwrap());
    // `oom` counts invocations of the OOM killer, `oom_kill` the processes it killed.
    fake.set(
        "c/memory.events",
        "low 0\nhigh 0\nmax 40\noom 1\noom_kill 0\n",
    );
    assert!(!cgroup.oom_killed().unwrap());
    fake.set(
        "c/memory.events",
        "low 0\nhigh 0\nmax 40\noom 1\noom_kill 1\n",
    );
    assert!(cgroup.oom_killed().unwrap());
}

#[test]
fn a_failed_limit_removes_everything_create_made_and_names_the_file() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    hierarchy.create("kiln/other", &Limits::default()).unwrap();
    fake.fail_next_write("cpu.max", libc::EINVAL);
    let err = hierarchy.create("kiln/abc/c1", &limits()).unwrap_err();
    let CgroupError::Io {
        action, path, help, ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(action, "write `50000 100000` to");
    assert!(path.ends_with("kiln/abc/c1/cpu.max"));
    assert!(
        help.as_deref().unwrap().contains("at least 1ms"),
        "{help:?}"
    );
    // The leaf and the parent it made are gone; the shared parent `kiln` stays.
    assert_eq!(hierarchy.list("kiln").unwrap(), ["kiln", "kiln/other"]);
    let log = fake.take_log();
    assert_eq!(
        &log[log.len() - 2..],
        ["rmdir kiln/abc/c1", "rmdir kiln/abc"]
    );
}

#[test]
fn a_missing_controller_file_is_explained() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    fake.fail_next_write("memory.max", libc::ENOENT);
    let err = hierarchy.create("c", &limits()).unwrap_err();
    let text = format!("{err}");
    assert!(text.starts_with("cannot write `67108864` to "), "{text}");
    let CgroupError::Io { help, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(
        help.as_deref(),
        Some("the memory controller is not enabled for this cgroup")
    );
    assert!(hierarchy.list("c").unwrap().is_empty());
}

#[test]
fn a_controller_the_machine_lacks_fails_before_anything_is_made() {
    let fake = FakeKernel::new("cpu memory", "");
    let hierarchy = fake.hierarchy();
    let err = hierarchy.create("kiln/c", &limits()).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "pids",
                version: "v2",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(fake.take_log().is_empty());
    // Without a pids limit it works, and enables only what exists.
    hierarchy
        .create(
            "kiln/c",
            &Limits {
                pids: None,
                ..limits()
            },
        )
        .unwrap();
    assert_eq!(fake.file("kiln/cgroup.subtree_control"), "cpu memory");
    let stats = hierarchy.open("kiln/c").unwrap().unwrap().stats().unwrap();
    assert_eq!((stats.pids_current, stats.pids_limit), (0, None));
}

#[test]
fn enabling_below_a_cgroup_with_processes_explains_the_v2_rule() {
    let fake = FakeKernel::new(ALL, "cpu memory pids");
    let hierarchy = fake.hierarchy();
    hierarchy.create("busy", &Limits::default()).unwrap();
    fake.set("busy/cgroup.procs", "4242\n");
    let err = hierarchy.create("busy/c", &Limits::default()).unwrap_err();
    let CgroupError::Io { path, help, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(path.ends_with("busy/cgroup.subtree_control"));
    assert!(
        help.as_deref().unwrap().contains("no internal processes"),
        "{help:?}"
    );
    assert_eq!(hierarchy.list("busy").unwrap(), ["busy"]);
}

#[test]
fn creating_an_existing_cgroup_fails_and_leaves_it_alone() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    hierarchy.create("kiln/c", &limits()).unwrap();
    let err = hierarchy.create("kiln/c", &Limits::default()).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Exists { path } if path.ends_with("kiln/c")),
        "{err:?}"
    );
    assert_eq!(fake.file("kiln/c/memory.max"), "67108864");
}

#[test]
fn bad_names_and_limits_are_refused_before_anything_is_made() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    for name in [
        "",
        "/kiln/c",
        "kiln//c",
        "kiln/../c",
        "kiln/./c",
        "kiln/cgroup.procs",
        "a\nb",
    ] {
        let err = hierarchy.create(name, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, CgroupError::BadName { .. }),
            "{name:?}: {err:?}"
        );
    }
    for bad in [
        Limits {
            memory: Some(1024),
            ..Limits::default()
        },
        Limits {
            cpus: Some(0.0),
            ..Limits::default()
        },
        Limits {
            cpus: Some(-1.0),
            ..Limits::default()
        },
        Limits {
            cpus: Some(f64::NAN),
            ..Limits::default()
        },
        Limits {
            cpus: Some(0.001),
            ..Limits::default()
        },
        Limits {
            pids: Some(0),
            ..Limits::default()
        },
    ] {
        let err = hierarchy.create("c", &bad).unwrap_err();
        assert!(
            matches!(err, CgroupError::BadLimit { .. }),
            "{bad:?}: {err:?}"
        );
    }
    assert!(fake.take_log().is_empty());
}

#[test]
fn update_changes_only_the_limits_given() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake.hierarchy().create("c", &limits()).unwrap();
    fake.take_log();
    cgroup
        .update(&Limits {
            pids: Some(7),
            ..Limits::default()
        })
        .unwrap();
    assert_eq!(fake.take_log(), ["write c/pids.max = 7"]);
    assert_eq!(fake.file("c/memory.max"), "67108864");
    assert_eq!(fake.file("c/cpu.max"), "50000 100000");
}

#[test]
fn attach_writes_the_pid_to_cgroup_procs() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    cgroup.attach(4242).unwrap();
    cgroup.attach(4343).unwrap();
    assert_eq!(fake.file("c/cgroup.procs"), "4242\n4343");
    fake.set("c/cgroup.procs", "4242\n");
    assert_eq!(cgroup.pids().unwrap(), [4242]);
}

#[test]
fn open_finds_existing_cgroups_only() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    hierarchy.create("kiln/c", &limits()).unwrap();
    let opened = hierarchy.open("kiln/c").unwrap().unwrap();
    assert_eq!(opened.stats().unwrap().memory_limit, Some(64 * MIB));
    assert!(hierarchy.open("kiln/d").unwrap().is_none());
    assert!(hierarchy.list("nothing").unwrap().is_empty());
}

#[test]
fn remove_takes_descendants_first_and_is_idempotent() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    let cgroup = hierarchy.create("kiln/c", &limits()).unwrap();
    // A container may make cgroups of its own (with a cgroup namespace, on v2).
    hierarchy
        .create("kiln/c/inner/deeper", &Limits::default())
        .unwrap();
    hierarchy
        .create("kiln/c/other", &Limits::default())
        .unwrap();
    fake.take_log();
    cgroup.remove().unwrap();
    assert_eq!(
        fake.take_log(),
        [
            "rmdir kiln/c/other",
            "rmdir kiln/c/inner/deeper",
            "rmdir kiln/c/inner",
            "rmdir kiln/c",
        ]
    );
    assert_eq!(hierarchy.list("kiln").unwrap(), ["kiln"]);
    cgroup.remove().unwrap();
    assert!(hierarchy.open("kiln/c").unwrap().is_none());
}

#[test]
fn kill_all_uses_cgroup_kill_when_the_kernel_has_it() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    fake.take_log();
    cgroup.kill_all().unwrap();
    assert_eq!(fake.take_log(), ["write c/cgroup.kill = 1"]);
}

#[test]
fn kill_all_without_cgroup_kill_freezes_kills_each_member_and_thaws() {
    let fake = FakeKernel::with(ALL, "", true, false);
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    fake.hierarchy()
        .create("c/sub", &Limits::default())
        .unwrap();
    let mut top = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut below = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    fake.set("c/cgroup.procs", &format!("{}\n", top.id()));
    fake.set("c/sub/cgroup.procs", &format!("{}\n", below.id()));
    fake.take_log();
    let killed = cgroup.kill_all();
    let statuses = [top.wait().unwrap(), below.wait().unwrap()];
    killed.unwrap();
    use std::os::unix::process::ExitStatusExt;
    for status in statuses {
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
    assert_eq!(
        fake.take_log(),
        ["write c/cgroup.freeze = 1", "write c/cgroup.freeze = 0"]
    );
}

#[test]
fn kill_all_of_an_empty_cgroup_without_cgroup_kill_does_not_freeze_it() {
    let fake = FakeKernel::with(ALL, "", true, false);
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    fake.take_log();
    cgroup.kill_all().unwrap();
    assert_eq!(fake.take_log(), Vec::<String>::new());
}

#[test]
fn the_observer_sees_every_change_before_it_happens() {
    let fake = FakeKernel::new(ALL, "cpu io memory pids");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let hierarchy = fake
        .hierarchy()
        .with_observer(Arc::new(move |event: &CgroupEvent<'_>| {
            sink.lock().unwrap().push(event.to_string());
        }));
    let cgroup = hierarchy
        .create(
            "c",
            &Limits {
                pids: Some(10),
                ..Limits::default()
            },
        )
        .unwrap();
    cgroup.remove().unwrap();
    let root = fake.root();
    let root = root.display();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!("mkdir {root}/c"),
            format!("echo \"10\" > {root}/c/pids.max"),
            format!(
                "bpf: load a cgroup device program (64 instructions) and attach it to {root}/c: \
                 allow c *:* m, b *:* m, c 1:3 rwm, c 1:5 rwm, c 1:7 rwm, c 1:8 rwm, c 1:9 rwm, \
                 c 5:0 rwm, c 5:2 rwm, c 136:* rwm, c 10:200 rwm; deny every other device"
            ),
            format!("rmdir {root}/c"),
        ]
    );
}

#[test]
fn a_shared_parent_removed_during_create_is_made_again() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    // Another kiln's cleanup removes `kiln/abc` between our check and our mkdir below it.
    fake.fail_next_mkdir("c1", libc::ENOENT);
    let cgroup = hierarchy.create("kiln/abc/c1", &Limits::default()).unwrap();
    assert!(fake.root().join("kiln/abc/c1").is_dir());
    cgroup.remove().unwrap();
    // Other errors are not retried.
    fake.fail_next_mkdir("c2", libc::EACCES);
    let err = hierarchy
        .create("kiln/abc/c2", &Limits::default())
        .unwrap_err();
    assert!(!err.is_missing_parent(), "{err}");
}

#[test]
fn remove_if_empty_leaves_parents_that_are_still_in_use() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    let first = hierarchy.create("kiln/abc/c1", &Limits::default()).unwrap();
    let second = hierarchy.create("kiln/abc/c2", &Limits::default()).unwrap();
    first.remove().unwrap();
    assert!(!hierarchy.remove_if_empty("kiln/abc").unwrap());
    second.attach(4242).unwrap();
    assert!(!hierarchy.remove_if_empty("kiln/abc/c2").unwrap());
    fake.set("kiln/abc/c2/cgroup.procs", "");
    assert!(hierarchy.remove_if_empty("kiln/abc/c2").unwrap());
    assert!(hierarchy.remove_if_empty("kiln/abc").unwrap());
    assert!(hierarchy.remove_if_empty("kiln").unwrap());
    assert!(hierarchy.remove_if_empty("kiln").unwrap());
    assert!(hierarchy.list("kiln").unwrap().is_empty());
}

#[test]
fn reading_a_removed_cgroup_says_it_is_gone() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake.hierarchy().create("c", &limits()).unwrap();
    cgroup.remove().unwrap();
    let CgroupError::Io { help, .. } = cgroup.stats().unwrap_err() else {
        panic!("not an I/O error");
    };
    assert_eq!(
        help.as_deref(),
        Some("the cgroup does not exist (any more)")
    );
    // Killing what no longer exists is not an error (`kiln rm -f` twice).
    cgroup.kill_all().unwrap();
}

#[test]
fn io_is_enabled_when_the_kernel_offers_it_and_its_failure_is_not_fatal() {
    // Where io is not offered, nothing asks for it.
    let fake = FakeKernel::new("cpu memory pids", "");
    fake.hierarchy().create("c", &Limits::default()).unwrap();
    assert_eq!(
        fake.take_log(),
        [
            "write cgroup.subtree_control = +memory +cpu +pids",
            "mkdir c",
            "attach device program (64 instructions) to c",
        ]
    );
    // Where enabling it fails, the container's cgroup is made all the same, and its block
    // I/O reads as zero.
    let fake = FakeKernel::new(ALL, "cpu memory pids");
    fake.fail_next_write("cgroup.subtree_control", libc::EINVAL);
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    assert_eq!(
        fake.take_log(),
        [
            "write cgroup.subtree_control = +io",
            "mkdir c",
            "attach device program (64 instructions) to c",
        ]
    );
    assert_eq!(fake.file("c/cgroup.controllers"), "cpu memory pids");
    let stats = cgroup.stats().unwrap();
    assert_eq!((stats.block_read, stats.block_write), (0, 0));
}

#[test]
fn freeze_and_thaw_write_cgroup_freeze_and_wait_for_the_kernel() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake.hierarchy().create("c", &Limits::default()).unwrap();
    fake.take_log();
    assert!(cgroup.freeze().unwrap());
    assert_eq!(fake.file("c/cgroup.events"), "populated 1\nfrozen 1");
    cgroup.thaw().unwrap();
    assert_eq!(
        fake.take_log(),
        ["write c/cgroup.freeze = 1", "write c/cgroup.freeze = 0"]
    );
    assert_eq!(fake.file("c/cgroup.events"), "populated 1\nfrozen 0");
}

#[test]
fn every_cgroup_gets_the_device_program_of_the_default_rules() {
    let fake = FakeKernel::new(ALL, "");
    let cgroup = fake
        .hierarchy()
        .create("kiln/abc/c1", &Limits::default())
        .unwrap();
    let programs = fake.programs("kiln/abc/c1");
    assert_eq!(programs.len(), 1);
    assert_eq!(
        programs[0].1,
        crate::runtime::cgroup::device_program(&crate::runtime::cgroup::DEVICE_RULES).unwrap()
    );
    assert_eq!(cgroup.device_programs().unwrap(), [programs[0].0]);
    // Only the container's own cgroup: the shared parents stay open for other containers.
    assert!(fake.programs("kiln/abc").is_empty());
    assert!(fake.programs("kiln").is_empty());
    cgroup.remove().unwrap();
    assert!(fake.programs("kiln/abc/c1").is_empty());
}

#[test]
fn without_a_device_program_a_v2_cgroup_is_not_made() {
    let fake = FakeKernel::new(ALL, "");
    let hierarchy = fake.hierarchy();
    fake.fail_next_write("bpf", libc::EPERM);
    let err = hierarchy.create("kiln/abc/c1", &limits()).unwrap_err();
    let CgroupError::DeviceProgram { path, help, .. } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(*path, fake.root().join("kiln/abc/c1"));
    assert!(help.as_deref().unwrap().contains("needs root"), "{help:?}");
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert!(hierarchy.list("kiln").unwrap().is_empty());
}
