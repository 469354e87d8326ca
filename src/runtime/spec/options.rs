//! `kiln run`'s security and filesystem options with Docker's meaning: `--cap-add` and
//! `--cap-drop` (moby's `TweakCapabilities`), `--tmpfs` (moby's default options under the
//! user's) and `--ulimit` (never above kiln's own hard limit: raising one needs
//! CAP_SYS_RESOURCE). Turns them into OCI values; the names are `kernel_names`'.
//!
//! No I/O except reading kiln's own capability bounding set and rlimits.

use std::collections::HashSet;

use oci_spec::runtime::{
    Capability, LinuxCapabilities, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType,
};

use super::SpecError;
use super::defaults::DEFAULT_CAPABILITIES;
use crate::kernel_names::{self, ALL_CAPABILITIES};

/// `--tmpfs DESTINATION[:OPTIONS]`: a fresh tmpfs, `noexec,nosuid,nodev` unless the
/// options say otherwise (as Docker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tmpfs {
    /// Absolute path in the container.
    pub destination: String,
    /// Mount options as given (`size=64m`, `mode=1777`, `exec`, …), checked by
    /// [`tmpfs_mount`].
    pub options: Vec<String>,
}

impl std::str::FromStr for Tmpfs {
    type Err = SpecError;

    /// `/run` or `/run:size=64m,mode=1777` (Docker's `--tmpfs`).
    fn from_str(text: &str) -> Result<Tmpfs, SpecError> {
        let (destination, options) = text.split_once(':').unwrap_or((text, ""));
        Ok(Tmpfs {
            destination: destination.to_string(),
            options: options
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        })
    }
}

/// `--ulimit NAME=SOFT[:HARD]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// A `kernel_names::ULIMITS` name (`nofile`).
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

impl std::str::FromStr for Ulimit {
    type Err = SpecError;

    /// `nofile=1024` (soft and hard) or `nofile=1024:2048`; `-1` or `unlimited` for none.
    fn from_str(text: &str) -> Result<Ulimit, SpecError> {
        let bad = |help: String| SpecError::BadUlimit {
            value: text.to_string(),
            help,
        };
        let (name, values) = text
            .split_once('=')
            .ok_or_else(|| bad("write NAME=SOFT[:HARD], e.g. `nofile=1024:2048`".into()))?;
        let (soft, hard) = values.split_once(':').unwrap_or((values, values));
        let number = |v: &str| {
            kernel_names::ulimit_value(v).ok_or_else(|| {
                bad(format!(
                    "`{v}` is not a limit: give a number, or -1 / unlimited"
                ))
            })
        };
        Ulimit::new(name, number(soft)?, number(hard)?).map_err(|e| match e {
            SpecError::BadUlimit { help, .. } => bad(help),
            other => other,
        })
    }
}

impl Ulimit {
    /// A checked ulimit: a known resource, soft not above hard.
    pub fn new(name: &str, soft: u64, hard: u64) -> Result<Ulimit, SpecError> {
        let known = kernel_names::ulimit(name).ok_or_else(|| SpecError::BadUlimit {
            value: name.to_string(),
            help: format!(
                "the resources are {}",
                kernel_names::ULIMITS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })?;
        if soft > hard {
            return Err(SpecError::BadUlimit {
                value: format!("{known}={soft}:{hard}"),
                help: "the soft limit cannot be above the hard limit".into(),
            });
        }
        Ok(Ulimit {
            name: known.to_string(),
            soft,
            hard,
        })
    }
}

/// Docker's default options of a `--tmpfs` mount; the user's come after and win.
const TMPFS_DEFAULTS: [&str; 4] = ["noexec", "nosuid", "nodev", "rprivate"];

/// The tmpfs options kiln passes on: flags and tmpfs's own data.
const TMPFS_FLAGS: [&str; 12] = [
    "ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev", "sync", "async", "noatime",
    "atime",
];
const TMPFS_DATA: [&str; 5] = ["size", "mode", "uid", "gid", "nr_inodes"];

/// The OCI mount of a `--tmpfs`.
pub(super) fn tmpfs_mount(tmpfs: &Tmpfs) -> Result<Mount, SpecError> {
    check_destination(&tmpfs.destination, "tmpfs destination")?;
    let mut options: Vec<String> = TMPFS_DEFAULTS.iter().map(|o| o.to_string()).collect();
    for option in &tmpfs.options {
        let key = option.split_once('=').map_or(option.as_str(), |(k, _)| k);
        let known = if option.contains('=') {
            TMPFS_DATA.contains(&key)
        } else {
            TMPFS_FLAGS.contains(&key)
        };
        if !known {
            return Err(SpecError::BadTmpfsOption {
                option: option.clone(),
            });
        }
        // A later flag of the same pair replaces the default (`exec` over `noexec`).
        let opposite = match key.strip_prefix("no") {
            Some(rest) => rest.to_string(),
            None => format!("no{key}"),
        };
        options.retain(|o| o != &opposite && o.split('=').next() != Some(key));
        options.push(option.clone());
    }
    MountBuilder::default()
        .destination(&tmpfs.destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options)
        .build()
        .map_err(SpecError::Incomplete)
}

/// A mount destination: absolute, not `/`, no `..`.
pub(super) fn check_destination(path: &str, what: &'static str) -> Result<(), SpecError> {
    if !path.starts_with('/') || path.split('/').any(|part| part == "..") {
        return Err(SpecError::RelativePath {
            what,
            path: path.to_string(),
        });
    }
    if path.trim_end_matches('/').is_empty() {
        return Err(SpecError::VolumeOnRoot);
    }
    Ok(())
}

/// The capabilities kiln itself holds (its bounding set): what it can give.
fn held_capabilities() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX)
}

fn capability(name: &str) -> Capability {
    serde_json::from_value(serde_json::Value::String(format!("CAP_{name}")))
        .expect("every kernel_names capability is an OCI capability")
}

/// Docker's default set with `--cap-drop` and `--cap-add` applied (moby's
/// `TweakCapabilities`): `--cap-add ALL` gives every capability but the dropped ones,
/// `--cap-drop ALL` keeps only the added ones, otherwise the defaults lose the dropped and
/// gain the added. `ALL` means every capability kiln holds itself; naming one it does not
/// hold is an error.
pub(super) fn capabilities(
    add: &[String],
    drop: &[String],
) -> Result<LinuxCapabilities, SpecError> {
    capabilities_with(add, drop, held_capabilities())
}

pub(super) fn capabilities_with(
    add: &[String],
    drop: &[String],
    held: u64,
) -> Result<LinuxCapabilities, SpecError> {
    let normalize = |names: &[String], flag: &'static str| -> Result<Vec<&str>, SpecError> {
        names
            .iter()
            .map(|name| {
                kernel_names::capability(name).ok_or_else(|| SpecError::UnknownCapability {
                    flag,
                    name: name.clone(),
                })
            })
            .collect()
    };
    let add = normalize(add, "--cap-add")?;
    let drop = normalize(drop, "--cap-drop")?;
    let holds = |name: &str| {
        kernel_names::CAPABILITIES
            .iter()
            .position(|c| *c == name)
            .is_some_and(|bit| held & (1 << bit) != 0)
    };
    let all: Vec<&str> = kernel_names::CAPABILITIES
        .iter()
        .copied()
        .filter(|c| holds(c))
        .collect();
    let names: Vec<&str> = if add.contains(&ALL_CAPABILITIES) {
        all.into_iter().filter(|c| !drop.contains(c)).collect()
    } else if drop.contains(&ALL_CAPABILITIES) {
        add.clone()
    } else {
        let defaults: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect();
        defaults
            .iter()
            .map(|c| kernel_names::capability(c).expect("a default is a known capability"))
            .filter(|c| !drop.contains(c))
            .chain(add.iter().copied())
            .collect()
    };
    if let Some(missing) = names.iter().find(|c| !holds(c)) {
        return Err(SpecError::CapabilityNotHeld {
            name: missing.to_string(),
        });
    }
    let set: HashSet<Capability> = names.iter().map(|c| capability(c)).collect();
    let mut caps = LinuxCapabilities::default();
    caps.set_bounding(Some(set.clone()));
    caps.set_effective(Some(set.clone()));
    caps.set_permitted(Some(set));
    caps.set_inheritable(Some(HashSet::new()));
    caps.set_ambient(Some(HashSet::new()));
    Ok(caps)
}

/// kiln's own hard limit of resource `name`: no container gets more.
fn own_hard_limit(name: &str) -> u64 {
    use nix::sys::resource::{Resource as R, getrlimit};
    let resource = match name {
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        _ => R::RLIMIT_STACK,
    };
    getrlimit(resource).map_or(u64::MAX, |(_, hard)| hard)
}

/// Docker's default rlimits with each `--ulimit` over its resource's. A hard limit above
/// kiln's own is refused: raising it needs CAP_SYS_RESOURCE.
pub(super) fn rlimits(
    defaults: Vec<PosixRlimit>,
    ulimits: &[Ulimit],
) -> Result<Vec<PosixRlimit>, SpecError> {
    let mut rlimits = defaults;
    for ulimit in ulimits {
        let own = own_hard_limit(&ulimit.name);
        if ulimit.hard > own {
            return Err(SpecError::UlimitAboveHard {
                name: ulimit.name.clone(),
                hard: ulimit.hard,
                own,
            });
        }
        let typ: PosixRlimitType = serde_json::from_value(serde_json::Value::String(format!(
            "RLIMIT_{}",
            ulimit.name.to_ascii_uppercase()
        )))
        .expect("every kernel_names ulimit is an OCI rlimit");
        rlimits.retain(|r| r.typ() != typ);
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(typ)
                .soft(ulimit.soft)
                .hard(ulimit.hard)
                .build()
                .map_err(SpecError::Incomplete)?,
        );
    }
    Ok(rlimits)
}

/// `--sysctl NAME=VALUE` (the name checked when the spec is built).
pub fn parse_sysctl(text: &str) -> Result<(String, String), SpecError> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(SpecError::BadSysctl {
            value: text.to_string(),
            help: "write NAME=VALUE, e.g. `net.ipv4.ip_forward=1`".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(caps: &LinuxCapabilities) -> Vec<String> {
        let mut names: Vec<String> = caps
            .bounding()
            .iter()
            .flatten()
            .map(|c| c.to_string())
            .collect();
        names.sort();
        names
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn capabilities_are_tweaked_as_docker_tweaks_them() {
        let all = u64::MAX;
        let caps =
            capabilities_with(&strings(&["net_admin"]), &strings(&["CAP_CHOWN"]), all).unwrap();
        let tweaked = names(&caps);
        assert!(tweaked.contains(&"NET_ADMIN".to_string()), "{tweaked:?}");
        assert!(!tweaked.contains(&"CHOWN".to_string()), "{tweaked:?}");
        assert_eq!(tweaked.len(), DEFAULT_CAPABILITIES.len());

        let only = capabilities_with(&strings(&["NET_RAW"]), &strings(&["ALL"]), all).unwrap();
        assert_eq!(names(&only), vec!["NET_RAW"]);

        let every = capabilities_with(&strings(&["ALL"]), &strings(&["SYS_ADMIN"]), all).unwrap();
        assert_eq!(names_len(&every), 40);
    }

    fn names_len(caps: &LinuxCapabilities) -> usize {
        caps.bounding().iter().flatten().count()
    }

    #[test]
    fn all_means_what_kiln_holds_and_more_is_refused() {
        // kiln without CAP_SYS_RESOURCE (24).
        let held = !(1u64 << 24);
        let every = capabilities_with(&strings(&["ALL"]), &[], held).unwrap();
        assert_eq!(names_len(&every), 40);
        let error = capabilities_with(&strings(&["SYS_RESOURCE"]), &[], held).unwrap_err();
        assert!(
            matches!(error, SpecError::CapabilityNotHeld { ref name } if name == "SYS_RESOURCE")
        );
        let error = capabilities_with(&strings(&["NET_ADMINS"]), &[], held).unwrap_err();
        assert!(matches!(
            error,
            SpecError::UnknownCapability {
                flag: "--cap-add",
                ..
            }
        ));
    }

    #[test]
    fn tmpfs_options_go_over_dockers_defaults() {
        let tmpfs: Tmpfs = "/run:exec,size=64m,mode=1777".parse().unwrap();
        let mount = tmpfs_mount(&tmpfs).unwrap();
        assert_eq!(
            mount.options().clone().unwrap(),
            strings(&[
                "nosuid",
                "nodev",
                "rprivate",
                "exec",
                "size=64m",
                "mode=1777"
            ])
        );
        let plain = tmpfs_mount(&"/tmp".parse().unwrap()).unwrap();
        assert_eq!(plain.options().clone().unwrap(), strings(&TMPFS_DEFAULTS));
        assert!(matches!(
            tmpfs_mount(&"/run:volume-opt=x".parse().unwrap()),
            Err(SpecError::BadTmpfsOption { .. })
        ));
        assert!(matches!(
            tmpfs_mount(&"run".parse().unwrap()),
            Err(SpecError::RelativePath { .. })
        ));
        assert!(matches!(
            tmpfs_mount(&"/".parse().unwrap()),
            Err(SpecError::VolumeOnRoot)
        ));
    }

    #[test]
    fn ulimits_parse_as_docker_writes_them() {
        let u: Ulimit = "nofile=512:1024".parse().unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nofile", 512, 1024));
        let u: Ulimit = "NPROC=64".parse().unwrap();
        assert_eq!((u.name.as_str(), u.soft, u.hard), ("nproc", 64, 64));
        let u: Ulimit = "core=-1".parse().unwrap();
        assert_eq!(u.hard, u64::MAX);
        for bad in ["nofile", "nofile=2048:1024", "as=1", "nofile=x"] {
            assert!(
                matches!(bad.parse::<Ulimit>(), Err(SpecError::BadUlimit { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_ulimit_replaces_the_default_and_never_passes_the_hard_limit() {
        let own = own_hard_limit("nofile");
        let limits = rlimits(
            super::super::defaults::rlimits(),
            &[Ulimit::new("nofile", 100, 200.min(own)).unwrap()],
        )
        .unwrap();
        assert_eq!(limits.len(), 1);
        assert_eq!(limits[0].soft(), 100);
        if own != u64::MAX {
            let error = rlimits(Vec::new(), &[Ulimit::new("nofile", 1, own + 1).unwrap()]);
            assert!(matches!(error, Err(SpecError::UlimitAboveHard { .. })));
        }
    }
}
