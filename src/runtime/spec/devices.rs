//! `--device HOST[:CONTAINER[:PERMS]]` and `--privileged`'s devices, with Docker's meaning:
//! the host node's type, numbers and mode become an OCI `linux.devices` entry (the node
//! made at CONTAINER in the container) and an allow rule of `linux.resources.devices`;
//! `--privileged` takes every device node of the host's /dev and allows every device.
//! [`cgroup_rules`] reads a spec's rules back as the cgroup layer's [`DeviceRule`]s, so
//! kiln's own cgroups (v1 `devices.allow`, the v2 program) and runc apply the same list.
//!
//! I/O: stat of the host nodes named, and a walk of the host's /dev for `--privileged`.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxDevice, LinuxDeviceBuilder, LinuxDeviceCgroup, LinuxDeviceType, Spec,
};

use super::SpecError;
use crate::runtime::cgroup::{Access, DEVICE_RULES, DeviceKind, DeviceRule};

/// `--device HOST[:CONTAINER[:PERMS]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// The host's device node (links followed).
    pub host: PathBuf,
    /// Where the node is made in the container (default: the host path).
    pub container: String,
    /// What the container may do with it: `r`, `w`, `m` (mknod), default `rwm`.
    pub access: String,
}

/// Whether `text` is a device access (`rwm` letters, each at most once).
fn is_access(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 3
        && text.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
        && text
            .chars()
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            == text.len()
}

impl std::str::FromStr for Device {
    type Err = SpecError;

    /// Docker's forms: `/dev/sdc`, `/dev/sdc:/dev/xvdc`, `/dev/sdc:r`,
    /// `/dev/sdc:/dev/xvdc:rw`.
    fn from_str(text: &str) -> Result<Device, SpecError> {
        let bad = |help: &str| SpecError::BadDevice {
            value: text.to_string(),
            help: help.to_string(),
        };
        let parts: Vec<&str> = text.split(':').collect();
        let (host, container, access) = match parts.as_slice() {
            [host] => (*host, *host, "rwm"),
            [host, access] if is_access(access) => (*host, *host, *access),
            [host, container] => (*host, *container, "rwm"),
            [host, container, access] => (*host, *container, *access),
            _ => {
                return Err(bad(
                    "write HOST[:CONTAINER[:PERMS]], e.g. `/dev/fuse:/dev/fuse:rw`",
                ));
            }
        };
        if !is_access(access) {
            return Err(bad(
                "the permissions are letters of `rwm` (read, write, mknod)",
            ));
        }
        if !host.starts_with('/') || !container.starts_with('/') {
            return Err(bad("both paths are absolute"));
        }
        if container.split('/').any(|part| part == "..") {
            return Err(bad("the container path has no `..`"));
        }
        Ok(Device {
            host: PathBuf::from(host),
            container: container.to_string(),
            access: access.to_string(),
        })
    }
}

/// The node at `path` on the host (links followed) as an OCI device at `container`.
fn node(path: &Path, container: &str) -> Result<Option<LinuxDevice>, std::io::Error> {
    let meta = std::fs::metadata(path)?;
    let kind = meta.file_type();
    let typ = if kind.is_char_device() {
        LinuxDeviceType::C
    } else if kind.is_block_device() {
        LinuxDeviceType::B
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    Ok(Some(
        LinuxDeviceBuilder::default()
            .path(container)
            .typ(typ)
            .major(i64::from(nix::sys::stat::major(rdev) as u32))
            .minor(i64::from(nix::sys::stat::minor(rdev) as u32))
            .file_mode(meta.mode() & 0o7777)
            .uid(meta.uid())
            .gid(meta.gid())
            .build()
            .expect("a device with path, type and numbers is complete"),
    ))
}

/// The entry and the allow rule of one `--device`.
pub(super) fn device(device: &Device) -> Result<(LinuxDevice, DeviceRule), SpecError> {
    let entry = node(&device.host, &device.container)
        .map_err(|source| SpecError::DeviceMissing {
            path: device.host.clone(),
            source,
        })?
        .ok_or_else(|| SpecError::NotADevice {
            path: device.host.clone(),
        })?;
    let mut access = Access::from_bits(0);
    for letter in device.access.chars() {
        access = access.union(match letter {
            'r' => Access::READ,
            'w' => Access::WRITE,
            _ => Access::MKNOD,
        });
    }
    let rule = DeviceRule {
        kind: if entry.typ() == LinuxDeviceType::B {
            DeviceKind::Block
        } else {
            DeviceKind::Char
        },
        major: Some(entry.major() as u32),
        minor: Some(entry.minor() as u32),
        access,
    };
    Ok((entry, rule))
}

/// Directories of /dev that `--privileged` leaves out, as runc's `HostDevices` does: other
/// filesystems kiln mounts itself, and links to the process's own descriptors.
const SKIPPED_DIRS: [&str; 7] = ["pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev"];

/// Every device node under the host's /dev (but its console, and the ones kiln makes
/// anyway: `/dev/ptmx` is a link to the container's own pts), for `--privileged`.
pub(super) fn host_devices() -> Vec<LinuxDevice> {
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::from("/dev")];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            if kind.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    dirs.push(path);
                }
                continue;
            }
            if kind.is_symlink() || name == "console" || path == Path::new("/dev/ptmx") {
                continue;
            }
            let Some(text) = path.to_str() else {
                continue;
            };
            if let Ok(Some(device)) = node(&path, text) {
                found.push(device);
            }
        }
    }
    found.sort_by(|a, b| a.path().cmp(b.path()));
    found
}

/// `--privileged`'s one rule: every device, every access (`a *:* rwm`).
pub(super) const ALL_DEVICES: DeviceRule = DeviceRule {
    kind: DeviceKind::Any,
    major: None,
    minor: None,
    access: Access::ALL,
};

/// The allow rules of `spec`'s `linux.resources.devices`, as the cgroup layer takes them:
/// a leading "deny everything" is the list's premise; any other deny rule is refused
/// (kiln never writes one). Without the list, kiln's defaults ([`DEVICE_RULES`]).
pub fn cgroup_rules(spec: &Spec) -> Result<Vec<DeviceRule>, SpecError> {
    let Some(list) = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.devices().as_ref())
    else {
        return Ok(DEVICE_RULES.to_vec());
    };
    let mut rules = Vec::new();
    for (index, entry) in list.iter().enumerate() {
        if !entry.allow() {
            let everything = entry.typ().is_none_or(|t| t == LinuxDeviceType::A)
                && entry.major().is_none()
                && entry.minor().is_none();
            if index == 0 && everything {
                continue;
            }
            return Err(SpecError::UnsupportedDeviceRule {
                rule: format!("{entry:?}"),
            });
        }
        rules.push(rule_of(entry)?);
    }
    Ok(rules)
}

fn rule_of(entry: &LinuxDeviceCgroup) -> Result<DeviceRule, SpecError> {
    let number = |n: Option<i64>| -> Result<Option<u32>, SpecError> {
        match n {
            None | Some(-1) => Ok(None),
            Some(n) => u32::try_from(n)
                .map(Some)
                .map_err(|_| SpecError::UnsupportedDeviceRule {
                    rule: format!("{entry:?}"),
                }),
        }
    };
    let mut access = Access::from_bits(0);
    for letter in entry.access().as_deref().unwrap_or("rwm").chars() {
        access = access.union(match letter {
            'r' => Access::READ,
            'w' => Access::WRITE,
            'm' => Access::MKNOD,
            _ => {
                return Err(SpecError::UnsupportedDeviceRule {
                    rule: format!("{entry:?}"),
                });
            }
        });
    }
    Ok(DeviceRule {
        kind: match entry.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => DeviceKind::Char,
            Some(LinuxDeviceType::B) => DeviceKind::Block,
            _ => DeviceKind::Any,
        },
        major: number(entry.major())?,
        minor: number(entry.minor())?,
        access,
    })
}
