//! The device program for real: the kernel's verifier accepts it, the cgroup2 hierarchy
//! (v2, or a hybrid machine's unified one) runs it, and a process in the cgroup can make a
//! `/dev/kmsg` twin and a block device twin but not open them (EPERM), while the standard
//! devices open; without the program the same opens succeed (the attack it stops). Nothing
//! is left: the cgroup goes, and with it the program. Root only; each test works below its
//! own `kiln-test-dev-<pid>-<n>` prefix in the cgroup2 hierarchy alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::runtime::cgroup::{DEVICE_PROGRAM_NAME, Hierarchy, Limits, RealFs, Version};
use crate::runtime::ebpf::sys;

/// The machine's cgroup2 hierarchy alone (pure v2, or hybrid's `unified`), as a v2
/// hierarchy: `create` makes a cgroup there with the device program and nothing else.
fn cgroup2() -> Option<Hierarchy> {
    if !crate::test_support::is_root() || !crate::test_support::has_program("python3") {
        return None;
    }
    let root = Hierarchy::detect()
        .unwrap()
        .device_rules()
        .program
        .expect("this machine has a cgroup2 hierarchy");
    Some(Hierarchy::new(Version::V2 { root }, Arc::new(RealFs)))
}

fn prefix() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "kiln-test-dev-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// For each `(kind, major, minor)`, python in cgroup directory `cgroup` makes the node in
/// a fresh directory and opens it read-write (read-only for block devices); the result of
/// each: `ok` or the errno's name.
fn open_twins(cgroup: &Path, nodes: &[(char, u32, u32)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let script = r#"
import errno, os, stat, sys
sys.stdin.readline()
for spec in sys.argv[2:]:
    kind, major, minor = spec.split(":")
    path = os.path.join(sys.argv[1], spec.replace(":", "-"))
    mode = (stat.S_IFCHR if kind == "c" else stat.S_IFBLK) | 0o600
    try:
        os.mknod(path, mode, os.makedev(int(major), int(minor)))
    except OSError as e:
        print("mknod " + errno.errorcode[e.errno]); continue
    try:
        fd = os.open(path, (os.O_RDWR if kind == "c" else os.O_RDONLY) | os.O_NONBLOCK | os.O_NOCTTY)
        os.close(fd); print("ok")
    except OSError as e:
        print(errno.errorcode[e.errno])
"#;
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(dir.path())
        .args(nodes.iter().map(|(k, ma, mi)| format!("{k}:{ma}:{mi}")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(cgroup.join("cgroup.procs"), child.id().to_string()).unwrap();
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The first block device of this machine (`/sys/dev/block`), as major and minor.
fn a_block_device() -> (u32, u32) {
    let name = std::fs::read_dir("/sys/dev/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .min()
        .expect("this machine has a block device");
    let (major, minor) = name.split_once(':').unwrap();
    (major.parse().unwrap(), minor.parse().unwrap())
}

#[test]
fn the_kernel_runs_the_program_and_it_stops_host_devices_from_being_opened() {
    let Some(hierarchy) = cgroup2() else { return };
    let Version::V2 { root } = hierarchy.version().clone() else {
        unreachable!()
    };
    let (block_major, block_minor) = a_block_device();
    let attacks = [('c', 1, 11), ('b', block_major, block_minor)];
    let prefix = prefix();

    // Without a program (today's v2 container without device rules): both open.
    let bare = root.join(&prefix).join("bare");
    std::fs::create_dir_all(&bare).unwrap();
    assert_eq!(open_twins(&bare, &attacks), ["ok", "ok"]);
    std::fs::remove_dir(&bare).unwrap();

    let cgroup = hierarchy
        .create(&format!("{prefix}/c"), &Limits::default())
        .unwrap();
    let dir: PathBuf = root.join(&prefix).join("c");
    let ids = cgroup.device_programs().unwrap();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let program = sys::program_by_id(ids[0]).unwrap().expect("attached");
    let info = sys::program_info(std::os::fd::AsFd::as_fd(&program)).unwrap();
    assert_eq!(info.prog_type, sys::PROG_TYPE_CGROUP_DEVICE);
    assert_eq!(info.name, DEVICE_PROGRAM_NAME);
    drop(program);

    // Made, but not opened: EPERM, as the v1 rules answer.
    assert_eq!(open_twins(&dir, &attacks), ["EPERM", "EPERM"]);
    // The standard devices open (tty and a pty that does not exist have no device behind
    // them here: ENXIO, EIO or ENODEV, but never EPERM).
    let allowed = [
        ('c', 1, 3),
        ('c', 1, 5),
        ('c', 1, 7),
        ('c', 1, 8),
        ('c', 1, 9),
        ('c', 5, 0),
        ('c', 5, 2),
        ('c', 136, 4000),
        ('c', 10, 200),
    ];
    let results = open_twins(&dir, &allowed);
    assert_eq!(&results[..5], ["ok"; 5], "{results:?}");
    assert!(
        !results
            .iter()
            .any(|r| r == "EPERM" || r.starts_with("mknod")),
        "{results:?}"
    );

    // Removing the cgroup frees the program: nothing pinned, nothing left.
    cgroup.remove().unwrap();
    assert!(hierarchy.remove_if_empty(&prefix).unwrap());
    assert!(!root.join(&prefix).exists());
    let mut freed = false;
    for _ in 0..200 {
        // The kernel frees a detached program after an RCU grace period.
        if sys::program_by_id(ids[0]).unwrap().is_none() {
            freed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(freed, "program {} outlived its cgroup", ids[0]);
}
