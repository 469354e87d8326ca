//! The pure parts: mount tables of pure v2, hybrid and pure v1 machines, /proc/self/cgroup,
//! detection on fake roots, limit files, and the v1 write order.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::runtime::cgroup::limits::{LimitWrite, parse_limit, v1_writes};
use crate::runtime::cgroup::stats::{keyed_value, parse_blkio_bytes, parse_io_stat};
use crate::runtime::cgroup::{
    CgroupError, Hierarchy, Limits, Version, parse_mountinfo, parse_proc_cgroup,
};

/// Fedora / Debian 12 / Ubuntu 22.04: systemd with the unified hierarchy only.
const PURE_V2: &str = "\
22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
23 28 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
28 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
31 23 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// Debian 10 / Ubuntu 20.04: v1 controllers, systemd's named hierarchy and an empty
/// cgroup2 in `unified`; cpu and cpuacct co-mounted.
const HYBRID: &str = "\
30 23 0:26 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:10 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,xattr,name=systemd
35 30 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpu,cpuacct
36 30 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:16 - cgroup cgroup rw,memory
37 30 0:33 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:17 - cgroup cgroup rw,pids
38 30 0:34 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:18 - cgroup cgroup rw,freezer
39 30 0:35 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:19 - cgroup cgroup rw,net_cls,net_prio
";

/// CentOS 7 style: v1 only, no cgroup2 at all, and a mount point with an escaped space.
const PURE_V1: &str = "\
18 62 0:17 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
24 18 0:20 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:7 - tmpfs tmpfs ro,mode=755
25 24 0:21 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
27 24 0:23 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpuacct,cpu
28 24 0:24 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
29 24 0:25 / /sys/fs/cgroup/my\\040pids rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,pids
30 24 0:26 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,freezer
31 24 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,memory
";

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, PathBuf> {
    entries
        .iter()
        .map(|(controller, path)| (controller.to_string(), PathBuf::from(path)))
        .collect()
}

#[test]
fn mountinfo_of_a_pure_v2_machine() {
    let mounts = parse_mountinfo(PURE_V2);
    assert_eq!(mounts.v2, Some(PathBuf::from("/sys/fs/cgroup")));
    assert!(mounts.v1.is_empty());
}

#[test]
fn mountinfo_of_a_hybrid_machine() {
    let mounts = parse_mountinfo(HYBRID);
    assert_eq!(mounts.v2, Some(PathBuf::from("/sys/fs/cgroup/unified")));
    assert_eq!(
        mounts.v1,
        map(&[
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("freezer", "/sys/fs/cgroup/freezer"),
            ("memory", "/sys/fs/cgroup/memory"),
            ("net_cls", "/sys/fs/cgroup/net_cls,net_prio"),
            ("net_prio", "/sys/fs/cgroup/net_cls,net_prio"),
            ("pids", "/sys/fs/cgroup/pids"),
        ])
    );
}

#[test]
fn mountinfo_of_a_pure_v1_machine() {
    let mounts = parse_mountinfo(PURE_V1);
    assert_eq!(mounts.v2, None);
    assert_eq!(
        mounts.v1,
        map(&[
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("freezer", "/sys/fs/cgroup/freezer"),
            ("memory", "/sys/fs/cgroup/memory"),
            ("pids", "/sys/fs/cgroup/my pids"),
        ])
    );
}

#[test]
fn mountinfo_garbage_is_skipped() {
    let mounts = parse_mountinfo("nonsense\n1 2 3\n\n40 31 0:37 / - cgroup\n");
    assert_eq!(mounts, Default::default());
}

#[test]
fn proc_self_cgroup_maps_each_controller_to_its_path() {
    let paths = parse_proc_cgroup(
        "9:name=systemd:/\n4:memory:/process_api/c08a\n2:cpu,cpuacct:/user.slice\n0::/init.scope\n",
    );
    assert_eq!(paths["memory"], "/process_api/c08a");
    assert_eq!(paths["cpu"], "/user.slice");
    assert_eq!(paths["cpuacct"], "/user.slice");
    assert_eq!(paths["name=systemd"], "/");
    assert_eq!(paths[""], "/init.scope");
}

/// A fake `/` holding `mountinfo`, `/proc/self/cgroup`, and the v2 root's
/// `cgroup.controllers` (when `v2_controllers` is given).
fn fake_root(mountinfo: &str, v2_dir: &str, v2_controllers: Option<&str>) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let proc_self = root.path().join("proc/self");
    fs::create_dir_all(&proc_self).unwrap();
    fs::write(proc_self.join("mountinfo"), mountinfo).unwrap();
    fs::write(proc_self.join("cgroup"), "4:memory:/session\n0::/\n").unwrap();
    if let Some(controllers) = v2_controllers {
        let dir = root.path().join(v2_dir);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
    }
    root
}

#[test]
fn detection_prefers_v2_with_the_controllers_kiln_needs() {
    let root = fake_root(
        PURE_V2,
        "sys/fs/cgroup",
        Some("cpuset cpu io memory pids\n"),
    );
    let hierarchy = Hierarchy::at(root.path()).unwrap();
    assert_eq!(
        *hierarchy.version(),
        Version::V2 {
            root: root.path().join("sys/fs/cgroup")
        }
    );
    let controllers: Vec<&str> = hierarchy.controllers().iter().map(String::as_str).collect();
    assert_eq!(controllers, ["cpu", "io", "memory", "pids"]);
    assert_eq!(hierarchy.own_cgroup("memory"), Some("/session"));
    assert_eq!(hierarchy.own_cgroup(""), Some("/"));
}

#[test]
fn detection_falls_back_to_v1_when_the_unified_hierarchy_is_empty() {
    let root = fake_root(HYBRID, "sys/fs/cgroup/unified", Some(""));
    let hierarchy = Hierarchy::at(root.path()).unwrap();
    let base = root.path().join("sys/fs/cgroup");
    let Version::V1 { mounts, .. } = hierarchy.version() else {
        panic!("{hierarchy:?}");
    };
    let expected: BTreeMap<String, PathBuf> = [
        ("cpu", "cpu,cpuacct"),
        ("cpuacct", "cpu,cpuacct"),
        ("freezer", "freezer"),
        ("memory", "memory"),
        ("pids", "pids"),
    ]
    .into_iter()
    .map(|(controller, dir)| (controller.to_owned(), base.join(dir)))
    .collect();
    assert_eq!(*mounts, expected);
}

#[test]
fn detection_picks_the_hierarchy_with_more_of_the_controllers() {
    // A half-migrated machine: memory moved to v2, cpu and pids still on v1.
    let mountinfo = format!(
        "{}{}",
        HYBRID
            .lines()
            .filter(|l| !l.contains("memory"))
            .collect::<Vec<_>>()
            .join("\n"),
        "\n"
    );
    let root = fake_root(&mountinfo, "sys/fs/cgroup/unified", Some("memory"));
    let hierarchy = Hierarchy::at(root.path()).unwrap();
    // Neither is complete; v2 has one of the three, v1 two: v1 wins.
    assert!(
        matches!(hierarchy.version(), Version::V1 { .. }),
        "{hierarchy:?}"
    );
    let root = fake_root(PURE_V2, "sys/fs/cgroup", Some("memory"));
    let hierarchy = Hierarchy::at(root.path()).unwrap();
    assert!(
        matches!(hierarchy.version(), Version::V2 { .. }),
        "{hierarchy:?}"
    );
}

#[test]
fn detection_without_any_cgroup_filesystem_fails_clearly() {
    let root = fake_root("27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n", "", None);
    let err = Hierarchy::at(root.path()).unwrap_err();
    assert!(matches!(err, CgroupError::NotMounted), "{err:?}");
    let err = Hierarchy::at(Path::new("/nonexistent-root")).unwrap_err();
    assert!(
        matches!(&err, CgroupError::Detect { path, .. } if path.ends_with("proc/self/mountinfo")),
        "{err:?}"
    );
}

#[test]
fn limit_files_read_max_and_v1_unlimited_as_none() {
    assert_eq!(parse_limit("max\n"), Some(None));
    assert_eq!(parse_limit("-1\n"), Some(None));
    assert_eq!(parse_limit("9223372036854771712\n"), Some(None));
    assert_eq!(parse_limit("33554432\n"), Some(Some(33_554_432)));
    assert_eq!(parse_limit("lots"), None);
}

#[test]
fn keyed_files_find_their_key_exactly() {
    let events = "oom 3\noom_kill 2\noom_group_kill 9\n";
    assert_eq!(keyed_value(events, "oom_kill"), Some(2));
    assert_eq!(keyed_value(events, "oom"), Some(3));
    assert_eq!(keyed_value(events, "max"), None);
}

#[test]
fn v1_keeps_the_memory_limit_below_the_memsw_limit_at_every_step() {
    let limits = Limits {
        memory: Some(64 << 20),
        ..Limits::default()
    };
    let files = |writes: Vec<LimitWrite>| -> Vec<&'static str> {
        writes.into_iter().map(|write| write.file).collect()
    };
    assert_eq!(
        files(v1_writes(&limits, false)),
        ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    );
    assert_eq!(
        files(v1_writes(&limits, true)),
        ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
    );
    let cpu = Limits {
        cpus: Some(1.5),
        ..Limits::default()
    };
    let writes = v1_writes(&cpu, false);
    let values: Vec<(&str, &str)> = writes.iter().map(|w| (w.file, w.value.as_str())).collect();
    assert_eq!(
        values,
        [
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "150000")
        ]
    );
}

#[test]
fn io_stat_sums_read_and_written_bytes_over_devices() {
    let text = "\
8:16 rbytes=1048576 wbytes=4096 rios=16 wios=1 dbytes=0 dios=0
254:0 rbytes=512 wbytes=0 rios=1 wios=0 dbytes=0 dios=0
";
    assert_eq!(parse_io_stat(text), Some((1_049_088, 4096)));
    // A device line may lack keys (a kernel that shows only some), and a file may be empty.
    assert_eq!(parse_io_stat("8:0 rios=3\n"), Some((0, 0)));
    assert_eq!(parse_io_stat(""), Some((0, 0)));
    assert_eq!(parse_io_stat("8:0 rbytes=lots\n"), None);
    assert_eq!(parse_io_stat("rbytes=1\n"), None);
    assert_eq!(parse_io_stat("8:0 rbytes\n"), None);
}

#[test]
fn blkio_tables_count_read_and_write_once_per_device() {
    let text = "\
8:0 Read 4096
8:0 Write 12288
8:0 Sync 12288
8:0 Async 4096
8:0 Discard 0
8:0 Total 16384
259:0 Read 100
259:0 Write 0
259:0 Sync 0
259:0 Async 100
259:0 Discard 0
259:0 Total 100
Total 16484
";
    assert_eq!(parse_blkio_bytes(text), Some((4196, 12288)));
    assert_eq!(parse_blkio_bytes("Total 0\n"), Some((0, 0)));
    assert_eq!(parse_blkio_bytes(""), Some((0, 0)));
    assert_eq!(parse_blkio_bytes("8:0 Read many\n"), None);
    assert_eq!(parse_blkio_bytes("Read 1\nWrite 2\n"), None);
    assert_eq!(parse_blkio_bytes("Total\n"), None);
}
