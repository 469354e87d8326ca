//! The spec builder: Docker's meaning of each option, Docker's defaults, clear errors
//! before anything exists, and a stable `config.json`.

use std::collections::HashSet;
use std::path::Path;

use oci_spec::runtime::{Capability, LinuxNamespaceType, Spec};

use super::*;
use crate::image::RuntimeConfig;

fn image() -> RuntimeConfig {
    RuntimeConfig {
        env: vec!["PATH=/usr/bin:/bin".into(), "LANG=C.UTF-8".into()],
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["serve".into(), "--port=80".into()]),
        working_dir: Some("/app".into()),
        stop_signal: Some("SIGQUIT".into()),
        ..RuntimeConfig::default()
    }
}

fn build(options: &RunOptions) -> Result<Spec, SpecError> {
    container_spec(&image(), options, &[])
}

fn process(spec: &Spec) -> &oci_spec::runtime::Process {
    spec.process().as_ref().unwrap()
}

#[test]
fn entrypoint_plus_cmd_and_args_replace_cmd() {
    let spec = build(&RunOptions::default()).unwrap();
    assert_eq!(
        process(&spec).args().as_deref().unwrap(),
        ["/entry", "serve", "--port=80"]
    );
    let spec = build(&RunOptions {
        args: vec!["debug".into()],
        ..RunOptions::default()
    })
    .unwrap();
    assert_eq!(
        process(&spec).args().as_deref().unwrap(),
        ["/entry", "debug"]
    );
    // A replaced entrypoint drops the image's Cmd; args still follow it.
    let spec = build(&RunOptions {
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        ..RunOptions::default()
    })
    .unwrap();
    assert_eq!(process(&spec).args().as_deref().unwrap(), ["sh", "-c"]);
    let spec = build(&RunOptions {
        entrypoint: Some(vec!["sh".into(), "-c".into()]),
        args: vec!["echo hi".into()],
        ..RunOptions::default()
    })
    .unwrap();
    assert_eq!(
        process(&spec).args().as_deref().unwrap(),
        ["sh", "-c", "echo hi"]
    );
    let bare = RuntimeConfig::default();
    assert!(matches!(
        container_spec(&bare, &RunOptions::default(), &[]),
        Err(SpecError::NoCommand)
    ));
}

#[test]
fn flags_override_the_image() {
    let spec = build(&RunOptions {
        env: vec![("LANG".into(), "fr".into()), ("NEW".into(), "1".into())],
        hostname: Some("web".into()),
        workdir: Some("/srv".into()),
        user: Some("1000:50".into()),
        tty: true,
        ..RunOptions::default()
    })
    .unwrap();
    let flagged = process(&spec);
    assert_eq!(
        flagged.env().as_deref().unwrap(),
        [
            "HOSTNAME=web",
            "PATH=/usr/bin:/bin",
            "LANG=fr",
            "NEW=1",
            "TERM=xterm",
            "HOME=/"
        ]
    );
    assert_eq!(flagged.cwd(), Path::new("/srv"));
    assert_eq!((flagged.user().uid(), flagged.user().gid()), (1000, 50));
    assert_eq!(flagged.terminal(), Some(true));
    assert_eq!(spec.hostname().as_deref(), Some("web"));
    let defaults = build(&RunOptions::default()).unwrap();
    assert_eq!(process_cwd(&defaults), "/app");
    assert_eq!(
        process(&defaults).env().as_deref().unwrap(),
        [
            "HOSTNAME=kiln",
            "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8",
            "HOME=/root"
        ]
    );
}

#[test]
fn an_image_env_entry_without_equals_unsets_as_in_docker() {
    let image = RuntimeConfig {
        env: vec![
            "LANG=C.UTF-8".into(),
            "HOSTNAME".into(),
            "LANG".into(),
            "TERM".into(),
            "ONLY".into(),
            "LATER".into(),
            "LATER=1".into(),
        ],
        cmd: Some(vec!["true".into()]),
        ..RuntimeConfig::default()
    };
    let tty = RunOptions {
        tty: true,
        env: vec![("ONLY".into(), "flag".into())],
        ..RunOptions::default()
    };
    let spec = container_spec(&image, &tty, &[]).unwrap();
    assert_eq!(
        process(&spec).env().as_deref().unwrap(),
        [
            &format!("PATH={}", crate::runtime::default_path()),
            "LATER=1",
            "ONLY=flag",
            "HOME=/root"
        ]
    );
    for bad in ["=x", "A=\0", "\0"] {
        let image = RuntimeConfig {
            env: vec![bad.into()],
            cmd: Some(vec!["true".into()]),
            ..RuntimeConfig::default()
        };
        let err = container_spec(&image, &RunOptions::default(), &[]).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("the image's environment has an invalid entry"),
            "{bad:?}: {err}"
        );
    }
}

fn process_cwd(spec: &Spec) -> String {
    process(spec).cwd().display().to_string()
}

#[test]
fn docker_defaults() {
    let spec = build(&RunOptions::default()).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let namespaces: Vec<LinuxNamespaceType> = linux
        .namespaces()
        .as_deref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect();
    assert_eq!(
        namespaces,
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Network,
            LinuxNamespaceType::Cgroup
        ]
    );
    let destinations: Vec<String> = spec
        .mounts()
        .as_deref()
        .unwrap()
        .iter()
        .map(|m| m.destination().display().to_string())
        .collect();
    assert_eq!(
        destinations,
        [
            "/proc",
            "/dev",
            "/dev/pts",
            "/sys",
            "/sys/fs/cgroup",
            "/dev/mqueue",
            "/dev/shm"
        ]
    );
    assert_eq!(
        linux.masked_paths().as_deref().unwrap().len(),
        defaults::MASKED_PATHS.len()
    );
    assert!(
        linux
            .readonly_paths()
            .as_deref()
            .unwrap()
            .contains(&"/proc/sys".to_string())
    );
    let caps = process(&spec).capabilities().as_ref().unwrap();
    let docker: HashSet<Capability> = defaults::DEFAULT_CAPABILITIES.into_iter().collect();
    assert_eq!(caps.bounding().as_ref(), Some(&docker));
    assert_eq!(caps.effective().as_ref(), Some(&docker));
    assert_eq!(caps.permitted().as_ref(), Some(&docker));
    assert_eq!(caps.inheritable().as_ref(), Some(&HashSet::new()));
    assert_eq!(caps.ambient().as_ref(), Some(&HashSet::new()));
    assert_eq!(
        crate::runtime::linux_names::capability_mask(&docker).unwrap(),
        0xa804_25fb
    );
    assert_eq!(process(&spec).no_new_privileges(), Some(true));
    let rlimit = &process(&spec).rlimits().as_deref().unwrap()[0];
    let (_, hard) =
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).unwrap();
    assert_eq!(rlimit.soft(), 1024.min(hard));
    assert_eq!(rlimit.hard(), 1024.min(hard));
    assert_eq!(linux.devices().as_deref().unwrap().len(), 6);
    assert_eq!(
        spec.annotations().as_ref().unwrap()[STOP_SIGNAL_ANNOTATION],
        "SIGQUIT"
    );
    // Host network: no network namespace.
    let host = build(&RunOptions {
        network: NetworkMode::Host,
        ..RunOptions::default()
    })
    .unwrap();
    assert!(
        !host
            .linux()
            .as_ref()
            .unwrap()
            .namespaces()
            .as_deref()
            .unwrap()
            .iter()
            .any(|n| n.typ() == LinuxNamespaceType::Network)
    );
}

#[test]
fn limits_become_resources() {
    let spec = build(&RunOptions {
        memory: Some(64 * 1024 * 1024),
        cpus: Some(0.5),
        pids_limit: Some(100),
        ..RunOptions::default()
    })
    .unwrap();
    let resources = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert_eq!(
        resources.memory().as_ref().unwrap().limit(),
        Some(64 * 1024 * 1024)
    );
    let cpu = resources.cpu().as_ref().unwrap();
    assert_eq!((cpu.quota(), cpu.period()), (Some(50_000), Some(100_000)));
    assert_eq!(resources.pids().as_ref().unwrap().limit(), 100);
    assert!(!resources.devices().as_deref().unwrap()[0].allow());
}

#[test]
fn the_device_rules_runc_gets_are_kilns_own() {
    let spec = build(&RunOptions::default()).unwrap();
    let resources = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    let rules: Vec<String> = resources
        .devices()
        .as_deref()
        .unwrap()
        .iter()
        .map(|rule| {
            let number = |n: Option<i64>| n.map_or("*".to_string(), |n| n.to_string());
            format!(
                "{} {} {}:{} {}",
                if rule.allow() { "allow" } else { "deny" },
                rule.typ()
                    .map_or("a".to_string(), |t| t.as_str().to_string()),
                number(rule.major()),
                number(rule.minor()),
                rule.access().as_deref().unwrap_or("")
            )
        })
        .collect();
    let mut expected = vec!["deny a *:* rwm".to_string()];
    expected.extend(
        crate::runtime::cgroup::DEVICE_RULES
            .iter()
            .map(|rule| format!("allow {rule}")),
    );
    assert_eq!(rules, expected);
}

#[test]
fn bad_input_is_refused_before_anything_exists() {
    let dir = tempfile::tempdir().unwrap();
    let volume = |source: &Path, destination: &str| RunOptions {
        volumes: vec![Volume {
            source: source.to_path_buf(),
            destination: destination.into(),
            read_only: false,
            ..Default::default()
        }],
        ..RunOptions::default()
    };
    let cases: Vec<(RunOptions, &str)> = vec![
        (
            volume(&dir.path().join("missing"), "/data"),
            "volume source `",
        ),
        (
            volume(Path::new("relative"), "/data"),
            "volume source must be",
        ),
        (volume(dir.path(), "data"), "volume destination must be"),
        (volume(dir.path(), "/"), "a volume cannot be mounted on `/`"),
        (
            RunOptions {
                memory: Some(1000),
                ..RunOptions::default()
            },
            "invalid memory limit `1000`",
        ),
        (
            RunOptions {
                cpus: Some(0.0),
                ..RunOptions::default()
            },
            "invalid number of CPUs `0`",
        ),
        (
            RunOptions {
                pids_limit: Some(0),
                ..RunOptions::default()
            },
            "invalid pids limit `0`",
        ),
        (
            RunOptions {
                user: Some("nobody-here".into()),
                ..RunOptions::default()
            },
            "user `nobody-here` is not in the container's /etc/passwd",
        ),
        (
            RunOptions {
                env: vec![("A=B".into(), "c".into())],
                ..RunOptions::default()
            },
            "environment variable `A=B` has an invalid name",
        ),
        (
            RunOptions {
                hostname: Some("bad host".into()),
                ..RunOptions::default()
            },
            "invalid hostname `bad host`",
        ),
        (
            RunOptions {
                workdir: Some("rel".into()),
                ..RunOptions::default()
            },
            "working directory must be an absolute path",
        ),
    ];
    for (options, message) in cases {
        let error = build(&options).expect_err(message);
        assert!(error.to_string().contains(message), "{error} vs {message}");
    }
    // `-1` is unlimited, as in Docker.
    assert!(
        build(&RunOptions {
            pids_limit: Some(-1),
            ..RunOptions::default()
        })
        .is_ok()
    );
}

#[test]
fn users_resolve_like_docker() {
    let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n";
    let group = "root:x:0:\nstaff:x:50:app,other\nwheel:x:10:other\napp:x:1000:\n";
    let app = resolve_user_in("app", passwd, group).unwrap();
    assert_eq!(
        (app.ids.uid, app.ids.gid, app.ids.groups.clone()),
        (1000, 1000, vec![50])
    );
    assert_eq!(app.home.as_deref(), Some("/home/app"));
    let explicit = resolve_user_in("app:wheel", passwd, group).unwrap();
    assert_eq!((explicit.ids.gid, explicit.ids.groups), (10, vec![]));
    let numeric = resolve_user_in("4242:7", passwd, group).unwrap();
    assert_eq!(
        (numeric.ids.uid, numeric.ids.gid, numeric.home),
        (4242, 7, None)
    );
    assert_eq!(
        resolve_user_in("1000", passwd, group).unwrap().ids.gid,
        1000
    );
    assert_eq!(resolve_user_in("root", "", "").unwrap().ids.uid, 0);
    assert!(matches!(
        resolve_user_in("app:nogroup", passwd, group),
        Err(SpecError::UnknownGroup { .. })
    ));
}

#[test]
fn config_json_is_sorted_and_stable() {
    // Capability sets are HashSets: two specs hash them differently, the JSON must not
    // differ.
    let options = RunOptions::default();
    let first = to_json(&build(&options).unwrap());
    let second = to_json(&build(&options).unwrap());
    assert_eq!(first, second);
    let text = String::from_utf8(first.clone()).unwrap();
    assert!(text.contains(
        "\"bounding\": [\n        \"CAP_AUDIT_WRITE\",\n        \"CAP_CHOWN\",\n        \"CAP_DAC_OVERRIDE\","
    ), "{text}");
    let keys: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  \"") && !l.starts_with("   "))
        .map(|l| l.trim().split('"').nth(1).unwrap())
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    // It reads back as the same spec.
    let back: Spec = serde_json::from_slice(&first).unwrap();
    assert_eq!(to_json(&back), first);
}

#[test]
fn write_bundle_points_root_at_rootfs() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("flat");
    std::fs::create_dir(&elsewhere).unwrap();
    let bundle = dir.path().join("bundle");
    let config =
        write_bundle(&bundle, &build(&RunOptions::default()).unwrap(), &elsewhere).unwrap();
    let spec: Spec = serde_json::from_slice(&std::fs::read(config).unwrap()).unwrap();
    assert_eq!(spec.root().as_ref().unwrap().path(), Path::new("rootfs"));
    assert_eq!(
        std::fs::read_link(bundle.join("rootfs")).unwrap(),
        elsewhere
    );
}

#[test]
fn device_flags_are_parsed_as_docker_parses_them() {
    let parse = |text: &str| text.parse::<Device>();
    let device = parse("/dev/sdc").unwrap();
    assert_eq!(
        (device.container.as_str(), device.access.as_str()),
        ("/dev/sdc", "rwm")
    );
    let device = parse("/dev/sdc:r").unwrap();
    assert_eq!(
        (device.container.as_str(), device.access.as_str()),
        ("/dev/sdc", "r")
    );
    let device = parse("/dev/sdc:/dev/xvdc").unwrap();
    assert_eq!(
        (device.container.as_str(), device.access.as_str()),
        ("/dev/xvdc", "rwm")
    );
    assert_eq!(parse("/dev/sdc:/dev/xvdc:rw").unwrap().access, "rw");
    for bad in [
        "/dev/sdc:/x:rx",
        "sdc",
        "/dev/sdc:/a/../b",
        "/a:/b:r:w",
        "/a:/b:rr",
    ] {
        assert!(
            matches!(parse(bad), Err(SpecError::BadDevice { .. })),
            "{bad}"
        );
    }
}

#[test]
fn a_device_adds_its_node_and_one_rule_and_privileged_allows_every_device() {
    use crate::runtime::cgroup::{Access, DEVICE_RULES, DeviceKind, DeviceRule};
    // /dev/null: on every machine, and its rule is a default one (no duplicate).
    let options = RunOptions {
        devices: vec!["/dev/null:/dev/other:r".parse().unwrap()],
        ..RunOptions::default()
    };
    let spec = build(&options).unwrap();
    let linux = spec.linux().as_ref().unwrap();
    let other = linux
        .devices()
        .iter()
        .flatten()
        .find(|d| d.path() == Path::new("/dev/other"))
        .unwrap();
    assert_eq!((other.major(), other.minor()), (1, 3));
    let mut rules = DEVICE_RULES.to_vec();
    rules.push(DeviceRule {
        kind: DeviceKind::Char,
        major: Some(1),
        minor: Some(3),
        access: Access::READ,
    });
    assert_eq!(cgroup_rules(&spec).unwrap(), rules);
    assert_eq!(
        cgroup_rules(&build(&RunOptions::default()).unwrap()).unwrap(),
        DEVICE_RULES.to_vec()
    );
    assert!(matches!(
        build(&RunOptions {
            devices: vec!["/etc/hostname".parse().unwrap()],
            ..RunOptions::default()
        }),
        Err(SpecError::NotADevice { .. })
    ));

    let spec = build(&RunOptions {
        privileged: true,
        cap_drop: vec!["ALL".into()],
        ..RunOptions::default()
    })
    .unwrap();
    assert_eq!(
        cgroup_rules(&spec).unwrap(),
        [DeviceRule {
            kind: DeviceKind::Any,
            major: None,
            minor: None,
            access: Access::ALL,
        }]
    );
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.masked_paths().as_ref().unwrap().is_empty());
    assert!(linux.readonly_paths().as_ref().unwrap().is_empty());
    assert!(linux.seccomp().is_none());
    assert!(
        linux
            .devices()
            .iter()
            .flatten()
            .any(|d| d.path() == Path::new("/dev/null"))
    );
    let sys = spec
        .mounts()
        .iter()
        .flatten()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(!sys.options().iter().flatten().any(|o| o == "ro"));
    // --cap-drop does not apply: every capability kiln holds.
    assert!(
        !process(&spec)
            .capabilities()
            .as_ref()
            .unwrap()
            .bounding()
            .as_ref()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        spec.annotations().as_ref().unwrap()[PRIVILEGED_ANNOTATION],
        "true"
    );
}
