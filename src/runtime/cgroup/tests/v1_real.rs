//! cgroup v1 for real: limits read back from the kernel, real processes attached, an
//! allocation beyond the limit OOM-killed, a fork beyond the pids limit refused, every
//! member killed, nothing left. They need root and a v1 memory hierarchy; elsewhere they
//! say so and pass vacuously. Each test works below its own `kiln-test-<pid>-<n>` prefix,
//! which a guard kills and removes even when the test fails.

use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::runtime::cgroup::{Cgroup, CgroupError, Hierarchy, Limits, Version};

const MIB: u64 = 1024 * 1024;

/// The machine's hierarchy when the test can run here.
fn v1_hierarchy() -> Option<Hierarchy> {
    if !crate::test_support::is_root() {
        return None;
    }
    let hierarchy = Hierarchy::detect().unwrap();
    if !matches!(hierarchy.version(), Version::V1 { .. }) {
        eprintln!("skipped: this machine uses cgroup v2 (the v2 tests use a fake cgroupfs)");
        return None;
    }
    Some(hierarchy)
}

macro_rules! require_v1 {
    () => {
        match v1_hierarchy() {
            Some(hierarchy) => Guard::new(hierarchy),
            None => return,
        }
    };
}

/// Owns a test's prefix: on drop kills and removes everything below it, then checks that
/// nothing is left.
struct Guard {
    hierarchy: Hierarchy,
    prefix: String,
}

impl Guard {
    fn new(hierarchy: Hierarchy) -> Guard {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "kiln-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        Guard { hierarchy, prefix }
    }

    fn name(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.prefix)
    }

    fn create(&self, leaf: &str, limits: &Limits) -> Cgroup {
        self.hierarchy.create(&self.name(leaf), limits).unwrap()
    }

    fn leftovers(&self) -> Vec<String> {
        self.hierarchy.list(&self.prefix).unwrap()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(Some(all)) = self.hierarchy.open(&self.prefix) {
            let _ = all.kill_all();
            let removed = all.remove();
            if !std::thread::panicking() {
                removed.unwrap();
                assert!(self.leftovers().is_empty(), "{:?}", self.leftovers());
            }
        }
    }
}

fn read(path: impl AsRef<std::path::Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|err| panic!("{}: {err}", path.as_ref().display()))
        .trim()
        .to_owned()
}

fn mount(hierarchy: &Hierarchy, controller: &str) -> std::path::PathBuf {
    let Version::V1 { mounts, .. } = hierarchy.version() else {
        unreachable!()
    };
    mounts[controller].clone()
}

/// `sh -c script`, held at `read` until [`release`] so it can be attached first.
fn held_shell(script: &str) -> Child {
    Command::new("sh")
        .arg("-c")
        .arg(format!("read go; {script}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn release(child: &mut Child) {
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
}

#[test]
fn limits_reach_the_kernel_files() {
    let guard = require_v1!();
    let limits = Limits {
        memory: Some(32 * MIB),
        cpus: Some(0.5),
        pids: Some(100),
    };
    let cgroup = guard.create("c", &limits);
    let hierarchy = &guard.hierarchy;
    let memory = mount(hierarchy, "memory").join(guard.name("c"));
    assert_eq!(read(memory.join("memory.limit_in_bytes")), "33554432");
    if memory.join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(read(memory.join("memory.memsw.limit_in_bytes")), "33554432");
    }
    let cpu = mount(hierarchy, "cpu").join(guard.name("c"));
    assert_eq!(read(cpu.join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(cpu.join("cpu.cfs_period_us")), "100000");
    let pids = mount(hierarchy, "pids").join(guard.name("c"));
    assert_eq!(read(pids.join("pids.max")), "100");
    for controller in ["cpuacct", "freezer"] {
        assert!(mount(hierarchy, controller).join(guard.name("c")).is_dir());
    }
    let stats = cgroup.stats().unwrap();
    assert_eq!(stats.memory_limit, Some(32 * MIB));
    assert_eq!(stats.pids_limit, Some(100));
    assert_eq!((stats.pids_current, stats.oom_kills), (0, 0));
    assert!(!cgroup.oom_killed().unwrap());
}

#[test]
fn update_raises_and_lowers_memory_past_the_memsw_limit() {
    let guard = require_v1!();
    let cgroup = guard.create(
        "c",
        &Limits {
            memory: Some(32 * MIB),
            ..Limits::default()
        },
    );
    let memory = mount(&guard.hierarchy, "memory").join(guard.name("c"));
    for limit in [64 * MIB, 16 * MIB, 128 * MIB] {
        cgroup
            .update(&Limits {
                memory: Some(limit),
                ..Limits::default()
            })
            .unwrap();
        assert_eq!(
            read(memory.join("memory.limit_in_bytes")),
            limit.to_string()
        );
        if memory.join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(
                read(memory.join("memory.memsw.limit_in_bytes")),
                limit.to_string()
            );
        }
    }
    cgroup
        .update(&Limits {
            pids: Some(9),
            cpus: Some(2.0),
            ..Limits::default()
        })
        .unwrap();
    let stats = cgroup.stats().unwrap();
    assert_eq!(
        (stats.memory_limit, stats.pids_limit),
        (Some(128 * MIB), Some(9))
    );
}

#[test]
fn an_attached_process_is_in_every_hierarchy_and_counted() {
    let guard = require_v1!();
    let cgroup = guard.create(
        "c",
        &Limits {
            pids: Some(10),
            ..Limits::default()
        },
    );
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    let attached = cgroup.attach(pid);
    let membership = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let members = cgroup.pids();
    let stats = cgroup.stats();
    let _ = child.kill();
    let _ = child.wait();
    attached.unwrap();
    for controller in ["memory", "cpu", "cpuacct", "pids", "freezer"] {
        let line = membership
            .lines()
            .find(|line| {
                line.split(':')
                    .nth(1)
                    .unwrap()
                    .split(',')
                    .any(|c| c == controller)
            })
            .unwrap_or_else(|| panic!("no {controller} in {membership}"));
        assert!(line.ends_with(&format!(":/{}", guard.name("c"))), "{line}");
    }
    assert_eq!(members.unwrap(), [pid]);
    let stats = stats.unwrap();
    // (v1 does not move a process's memory charge with it: memory_usage may be 0 here.)
    assert_eq!(stats.pids_current, 1);
    cgroup.remove().unwrap();
    assert!(
        guard.leftovers() == [guard.prefix.clone()],
        "{:?}",
        guard.leftovers()
    );
}

#[test]
fn an_allocation_beyond_the_memory_limit_is_oom_killed_and_reported() {
    let guard = require_v1!();
    let cgroup = guard.create(
        "c",
        &Limits {
            memory: Some(32 * MIB),
            ..Limits::default()
        },
    );
    // dd fills one 200 MiB buffer from /dev/zero: every page is touched.
    let mut child = held_shell("exec dd if=/dev/zero of=/dev/null bs=200M count=1");
    cgroup.attach(child.id() as i32).unwrap();
    assert!(!cgroup.oom_killed().unwrap());
    release(&mut child);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    assert!(cgroup.oom_killed().unwrap());
    let stats = cgroup.stats().unwrap();
    assert!(stats.oom_kills >= 1, "{stats:?}");
    assert!(stats.cpu_usage_ns > 0, "{stats:?}");
}

#[test]
fn the_same_allocation_within_the_limit_succeeds() {
    let guard = require_v1!();
    let cgroup = guard.create(
        "c",
        &Limits {
            memory: Some(256 * MIB),
            ..Limits::default()
        },
    );
    let mut child = held_shell("exec dd if=/dev/zero of=/dev/null bs=200M count=1");
    cgroup.attach(child.id() as i32).unwrap();
    release(&mut child);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(!cgroup.oom_killed().unwrap());
}

#[test]
fn forks_beyond_the_pids_limit_fail_and_kill_all_kills_the_rest() {
    let guard = require_v1!();
    let cgroup = guard.create(
        "c",
        &Limits {
            pids: Some(5),
            ..Limits::default()
        },
    );
    let mut child =
        held_shell("i=0; while [ $i -lt 10 ]; do sleep 30 2>/dev/null & i=$((i+1)); done; wait");
    cgroup.attach(child.id() as i32).unwrap();
    release(&mut child);
    // The shell fails to fork its fifth sleep and exits, leaving four sleeps behind (their
    // stderr is not the pipe, which would otherwise stay open for 30 s).
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{output:?}");
    assert!(stderr.contains("fork"), "{stderr}");
    let survivors = cgroup.pids().unwrap();
    assert_eq!(survivors.len(), 4, "{survivors:?}");
    assert_eq!(cgroup.stats().unwrap().pids_current, 4);
    cgroup.kill_all().unwrap();
    cgroup.remove().unwrap();
    for pid in survivors {
        // Each has exited: gone, a zombie (reparented orphans wait for init to reap
        // them, and a zombie still names its removed unified cgroup, "(deleted)"), or out
        // of the cgroup.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rfind(')')
            .is_some_and(|end| stat[end + 1..].trim_start().starts_with('Z'));
        let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        assert!(zombie || !text.contains(&guard.prefix), "{text}\n{stat}");
    }
}

#[test]
fn kill_all_kills_every_member_of_the_subtree() {
    let guard = require_v1!();
    let cgroup = guard.create("c", &Limits::default());
    let below = guard.create("c/inner", &Limits::default());
    let mut children: Vec<Child> = (0..3)
        .map(|_| Command::new("sleep").arg("30").spawn().unwrap())
        .collect();
    let attached = [
        cgroup.attach(children[0].id() as i32),
        cgroup.attach(children[1].id() as i32),
        below.attach(children[2].id() as i32),
    ];
    let killed = cgroup.kill_all();
    let statuses: Vec<_> = children
        .iter_mut()
        .map(|child| child.wait().unwrap())
        .collect();
    for result in attached {
        result.unwrap();
    }
    killed.unwrap();
    for status in statuses {
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    }
    // The freezer was thawed again: a new member runs normally.
    let freezer = mount(&guard.hierarchy, "freezer").join(guard.name("c"));
    assert_eq!(read(freezer.join("freezer.state")), "THAWED");
    cgroup.remove().unwrap();
    assert_eq!(guard.leftovers(), [guard.prefix.as_str()]);
    cgroup.remove().unwrap();
    assert!(guard.hierarchy.open(&guard.name("c")).unwrap().is_none());
}

#[test]
fn a_limit_the_kernel_refuses_leaves_no_cgroup_behind() {
    let guard = require_v1!();
    // More than PID_MAX_LIMIT: the kernel refuses (ERANGE), after the directories exist.
    let err = guard
        .hierarchy
        .create(
            &guard.name("c"),
            &Limits {
                pids: Some(u64::MAX),
                ..Limits::default()
            },
        )
        .unwrap_err();
    let CgroupError::Io { path, .. } = &err else {
        panic!("{err:?}");
    };
    assert!(
        path.ends_with(format!("{}/pids.max", guard.name("c"))),
        "{err:?}"
    );
    assert_eq!(err.raw_os_error(), Some(libc::ERANGE));
    assert!(guard.leftovers().is_empty(), "{:?}", guard.leftovers());
}

#[test]
fn detection_finds_this_machines_v1_controllers() {
    let guard = require_v1!();
    let controllers: Vec<&str> = guard
        .hierarchy
        .controllers()
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        controllers,
        [
            "blkio", "cpu", "cpuacct", "devices", "freezer", "memory", "pids"
        ]
    );
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let memory_line = own.lines().find(|line| line.contains(":memory:")).unwrap();
    assert_eq!(
        guard.hierarchy.own_cgroup("memory"),
        memory_line.rsplit(':').next()
    );
}
