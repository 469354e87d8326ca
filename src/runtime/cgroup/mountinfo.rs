//! Parsers for `/proc/self/mountinfo` (where each cgroup hierarchy is mounted) and
//! `/proc/self/cgroup` (which cgroup this process is in). Pure: text in, data out.

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The cgroup filesystems a mount table shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CgroupMounts {
    /// The first cgroup2 mount point, if any.
    pub v2: Option<PathBuf>,
    /// Each v1 controller's first mount point (named hierarchies like `name=systemd` are
    /// left out: they have no controller).
    pub v1: BTreeMap<String, PathBuf>,
}

/// Controllers the v1 kernel knows; any other super option (`rw`, `clone_children`,
/// `name=…`, `release_agent=…`) is not a controller.
const V1_KNOWN: [&str; 14] = [
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// Parses `/proc/self/mountinfo` (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS
/// [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS`. Lines that do not parse are skipped.
pub fn parse_mountinfo(text: &str) -> CgroupMounts {
    let mut mounts = CgroupMounts::default();
    for line in text.lines() {
        let Some((before, after)) = line.split_once(" - ") else {
            continue;
        };
        let Some(mount_point) = before.split(' ').nth(4) else {
            continue;
        };
        let mut after = after.split(' ');
        let (Some(fs_type), Some(_source), Some(super_options)) =
            (after.next(), after.next(), after.next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape(mount_point));
        match fs_type {
            "cgroup2" => {
                mounts.v2.get_or_insert(mount_point);
            }
            "cgroup" => {
                for option in super_options.split(',') {
                    if V1_KNOWN.contains(&option) {
                        mounts
                            .v1
                            .entry(option.to_owned())
                            .or_insert_with(|| mount_point.clone());
                    }
                }
            }
            _ => {}
        }
    }
    mounts
}

/// Parses `/proc/self/cgroup` (cgroups(7)): `ID:CONTROLLERS:PATH` lines. Each controller
/// maps to its path; the v2 line (`0::/…`) maps from `""`.
pub fn parse_proc_cgroup(text: &str) -> BTreeMap<String, String> {
    let mut paths = BTreeMap::new();
    for line in text.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if controllers.is_empty() {
            paths.insert(String::new(), path.to_owned());
        }
        for controller in controllers.split(',').filter(|c| !c.is_empty()) {
            paths.insert(controller.to_owned(), path.to_owned());
        }
    }
    paths
}

/// Undoes mountinfo's octal escapes (`\040` is a space, `\011` a tab, `\012` a newline,
/// `\134` a backslash).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|digits| bytes[i] == b'\\' && digits.iter().all(|d| (b'0'..=b'7').contains(d)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
