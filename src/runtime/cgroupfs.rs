//! What a container's `/sys/fs/cgroup` mount (OCI type `cgroup`) becomes on this machine:
//! one cgroup2 mount on a v2 host; on a v1 or hybrid host, a tmpfs holding one mount per
//! hierarchy, as the host has them. Inside the container's cgroup namespace, each shows
//! the container's own cgroup as its root.
//!
//! Reads the host's mount table once (cached); it does not create or join any cgroup —
//! that belongs to the `cgroup` module.

use std::sync::OnceLock;

/// The host's cgroup filesystems under /sys/fs/cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostCgroups {
    /// /sys/fs/cgroup is cgroup2.
    V2,
    /// /sys/fs/cgroup is a tmpfs of hierarchies (v1, possibly with a v2 `unified`).
    V1 {
        hierarchies: Vec<Hierarchy>,
        /// `cpu -> cpu,cpuacct`-style symlinks: (link name, target).
        links: Vec<(String, String)>,
    },
    /// No cgroup filesystem: the mount is left out.
    Absent,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hierarchy {
    /// The directory under /sys/fs/cgroup (`memory`, `cpu,cpuacct`, `unified`).
    pub name: String,
    /// `cgroup` or `cgroup2`.
    pub fstype: String,
    /// The superblock options that select the hierarchy (`memory`, `name=systemd`).
    pub options: String,
}

impl HostCgroups {
    /// This machine's, read from /proc/self/mountinfo on first use.
    pub fn detect() -> &'static HostCgroups {
        static HOST: OnceLock<HostCgroups> = OnceLock::new();
        HOST.get_or_init(|| {
            let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            let links = std::fs::read_dir("/sys/fs/cgroup")
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .filter_map(|entry| {
                            let target = std::fs::read_link(entry.path()).ok()?;
                            Some((
                                entry.file_name().into_string().ok()?,
                                target.into_os_string().into_string().ok()?,
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            HostCgroups::from_mountinfo(&mountinfo, links)
        })
    }

    /// Parses /proc/self/mountinfo; `links` are the symlinks found in /sys/fs/cgroup.
    pub fn from_mountinfo(mountinfo: &str, mut links: Vec<(String, String)>) -> HostCgroups {
        let mut root_type = None;
        let mut hierarchies = Vec::new();
        for line in mountinfo.lines() {
            let Some((before, after)) = line.split_once(" - ") else {
                continue;
            };
            let Some(mountpoint) = before.split(' ').nth(4) else {
                continue;
            };
            let mut fields = after.split(' ');
            let (Some(fstype), Some(_source), Some(options)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            if mountpoint == "/sys/fs/cgroup" {
                root_type = Some(fstype.to_string());
                hierarchies.clear();
            } else if let Some(name) = mountpoint.strip_prefix("/sys/fs/cgroup/")
                && !name.contains('/')
                && (fstype == "cgroup" || fstype == "cgroup2")
            {
                let selecting: Vec<&str> = options
                    .split(',')
                    .filter(|o| {
                        !(matches!(*o, "rw" | "ro") || (fstype == "cgroup2" && o.contains('=')))
                    })
                    .collect();
                hierarchies.retain(|h: &Hierarchy| h.name != name);
                hierarchies.push(Hierarchy {
                    name: name.to_string(),
                    fstype: fstype.to_string(),
                    options: if fstype == "cgroup" {
                        selecting.join(",")
                    } else {
                        String::new()
                    },
                });
            }
        }
        links.sort();
        match root_type.as_deref() {
            Some("cgroup2") => HostCgroups::V2,
            Some(_) if !hierarchies.is_empty() => HostCgroups::V1 { hierarchies, links },
            _ => HostCgroups::Absent,
        }
    }
}
