//! `kiln info` and `kiln version` on this machine: every key of the JSON is there with a
//! plausible value, the text names each probe, and neither creates the state root.

use serde_json::Value;

use crate::harness::{Kiln, is_root};

fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

#[test]
fn info_json_has_every_probe_with_plausible_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("state");
    let info = Kiln::new()
        .root(&root)
        .args(["info", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(
        keys(&info),
        [
            "cgroup",
            "device_rules",
            "io_uring",
            "kernel",
            "kiln",
            "netem",
            "nftables",
            "openat2",
            "overlayfs",
            "pidfd",
            "seccomp",
            "state_root",
            "user_namespaces",
        ]
    );
    assert_eq!(info["kiln"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        info["kiln"]["rustc"]
            .as_str()
            .unwrap()
            .starts_with("rustc ")
    );
    assert_eq!(info["kiln"]["os"], "linux");
    assert!(
        info["kernel"]["release"]
            .as_str()
            .unwrap()
            .starts_with(|c: char| c.is_ascii_digit())
    );
    // kiln info looks, it does not create.
    assert_eq!(info["state_root"]["exists"], false);
    assert!(!root.exists());
    assert_eq!(info["state_root"]["path"], root.display().to_string());

    let version = info["cgroup"]["version"].as_str().unwrap();
    assert!(["v1", "v2", "hybrid"].contains(&version), "{version}");
    let devices = &info["device_rules"];
    assert_eq!(devices["rules"].as_array().unwrap().len(), 11);
    assert_eq!(devices["rules"][2], "c 1:3 rwm");
    let active: Vec<&str> = devices["active"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(!active.is_empty(), "{devices}");
    if version == "hybrid" {
        // This machine: v1 controllers and the unified hierarchy, both guarding devices.
        assert!(
            info["cgroup"]["unified"]
                .as_str()
                .unwrap()
                .ends_with("/unified")
        );
        assert!(active.contains(&"v1"), "{devices}");
    }
    if is_root() && !info["cgroup"]["unified"].is_null() {
        assert_eq!(devices["bpf_program_loads"], true, "{devices}");
        assert!(active.contains(&"v2 bpf"), "{devices}");
    }
    assert_eq!(info["seccomp"]["filter_available"], true);
    assert_eq!(info["seccomp"]["mode"], "filter");
    assert!(
        info["seccomp"]["actions"]
            .as_array()
            .unwrap()
            .contains(&Value::from("errno"))
    );
    for feature in ["overlayfs", "openat2", "pidfd", "io_uring"] {
        assert!(info[feature]["available"].is_boolean(), "{feature}");
        assert!(info[feature]["detail"].is_string(), "{feature}");
    }
    // kiln needs these on any kernel it runs containers on.
    assert_eq!(info["overlayfs"]["available"], true);
    assert_eq!(info["openat2"]["available"], true);
    assert_eq!(info["pidfd"]["available"], true);
    assert!(info["user_namespaces"]["available"].is_boolean());
    assert_eq!(info["user_namespaces"]["used_by_kiln"], false);
    let netem = &info["netem"];
    assert!(netem["available"].is_boolean() || netem["available"].is_null());
    let impairments = netem["impairments"].as_str().unwrap();
    // netem where the kernel has it, else kiln's own engine: never nothing.
    let expected = if netem["available"] == true {
        "kernel"
    } else {
        "userspace"
    };
    assert_eq!(impairments, expected, "{netem}");
    assert!(info["nftables"]["available"].is_boolean() || info["nftables"]["available"].is_null());
}

#[test]
fn info_text_names_each_probe_and_a_private_root() {
    let dir = tempfile::tempdir().unwrap();
    // Another command makes the state root private; info then says so.
    Kiln::new()
        .root(dir.path())
        .args(["images"])
        .run()
        .success();
    let text = Kiln::new()
        .root(dir.path())
        .args(["info"])
        .run()
        .success()
        .stdout();
    for key in [
        "kiln:",
        "Kernel:",
        "State root:",
        "Cgroups:",
        "Device rules:",
        "Seccomp:",
        "Overlayfs:",
        "User namespaces:",
        "Netem:",
        "Nftables:",
        "io_uring:",
        "openat2:",
        "pidfd:",
    ] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    assert!(text.contains("mode 0700"), "{text}");
    assert!(text.contains(", private"), "{text}");
}

#[test]
fn version_and_dash_dash_version_tell_the_build() {
    let text = Kiln::new().args(["version"]).run().success().stdout();
    for key in ["Version:", "Git commit:", "Rust:", "OS/Arch:"] {
        assert!(text.contains(key), "{key} missing:\n{text}");
    }
    assert!(text.contains(env!("CARGO_PKG_VERSION")), "{text}");
    assert!(
        text.contains(&format!("linux/{}", std::env::consts::ARCH)),
        "{text}"
    );
    let json = Kiln::new()
        .args(["version", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(keys(&json), ["arch", "commit", "os", "rustc", "version"]);
    let commit = json["commit"].as_str().unwrap();
    assert!(
        commit == "unknown" || commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    let long = Kiln::new().args(["--version"]).run().success().stdout();
    assert!(
        long.starts_with(&format!(
            "kiln {}\ncommit: {commit}\nrustc:  rustc ",
            env!("CARGO_PKG_VERSION")
        )),
        "{long}"
    );
}
