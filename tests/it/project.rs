//! Whole projects: `kiln up` in dependency order with jobs and volumes, kept and replaced
//! containers on a second `up`, and `kiln down` leaving nothing behind.

use nix::sys::signal::Signal;

use crate::harness::{Lab, Project, Root, eventually, has_python, host, images, is_root, which};

const PROJECT: &str = r#"
project "lab"

image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/cat" "/bin/sleep"
}

job "seed" image="tools" {
    volume "state" "/data"
    cmd "sh" "-c" "echo seeded > /data/seed.txt; echo seed ran"
}

container "app" image="tools" {
    volume "state" "/data"
    depends-on "seed" condition="completed"
    env GREETING="hello"
    cmd "sh" "-c" "cat /data/seed.txt; echo $GREETING; exec sleep 1000"
}

container "side" image="tools" replicas=2 {
    cmd "sleep" "1000"
}
"#;

#[test]
fn up_orders_keeps_replaces_and_down_cleans() {
    let Some(lab) = Lab::unbuilt(Project::new(PROJECT)) else {
        return;
    };

    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("seed: completed with exit code 0");
    let list = lab.root.ps();
    assert_eq!(list.len(), 4, "{list:?}");
    assert_eq!(list.named("app")["state"], "running");
    assert_eq!(list.named("side-1")["state"], "running");
    assert_eq!(list.named("side-2")["state"], "running");
    assert_eq!(list.named("seed")["exit_code"], 0);
    // The job ran before app started: app read what it wrote to the shared volume.
    eventually("app to print what the job wrote", || {
        let logs = lab.kiln().args(["logs", "app"]).run().success().stdout();
        if logs == "seeded\nhello\n" {
            Ok(())
        } else {
            Err(format!("app printed {logs:?}"))
        }
    });
    let app_pid = list.named("app")["pid"].clone();
    // The project's view: its containers only, its output prefixed and merged in time order.
    let mine = lab
        .kiln()
        .args(["ps", "-a", "--project", "lab", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 4);
    assert_eq!(mine[0]["project"], "lab");
    let none = lab
        .kiln()
        .args(["ps", "-a", "--project", "other", "--format", "json"])
        .run()
        .success()
        .json();
    assert!(none.as_array().unwrap().is_empty());
    let merged = lab
        .kiln()
        .args(["logs", "--project", "lab"])
        .run()
        .success()
        .stdout();
    let seed_at = merged.find("seed   | seed ran").expect(&merged);
    let app_at = merged.find("app    | seeded").expect(&merged);
    assert!(seed_at < app_at, "the job ran first:\n{merged}");
    lab.kiln()
        .args(["logs", "--project", "lab", "app"])
        .run()
        .success()
        .stdout_is("app | seeded\napp | hello\n");
    lab.kiln()
        .args(["logs", "--project", "lab", "nope"])
        .run()
        .failure()
        .stderr_contains("project lab has no container named `nope`");

    // Nothing changed: everything is kept.
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("app: unchanged")
        .stderr_contains("seed: unchanged");
    assert_eq!(lab.root.ps().named("app")["pid"], app_pid);

    // app's env changes and side gains a replica: app is replaced, side-3 starts, the
    // other replicas are kept.
    lab.project.write(
        "kiln.kdl",
        &PROJECT
            .replace("GREETING=\"hello\"", "GREETING=\"bonjour\"")
            .replace("replicas=2", "replicas=3"),
    );
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("app: removed")
        .stderr_contains("app: started")
        .stderr_contains("side-3: started")
        .stderr_contains("side-1: unchanged")
        .stderr_contains("side-2: unchanged");
    let list = lab.root.ps();
    assert_ne!(list.named("app")["pid"], app_pid);
    assert_eq!(list.len(), 5, "{list:?}");

    let down = lab.kiln().args(["down", "-v"]).run().success();
    let mut removed: Vec<_> = down.stdout().lines().map(str::to_string).collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            "app: removed",
            "seed: removed",
            "side-1: removed",
            "side-2: removed",
            "side-3: removed"
        ]
    );
    assert!(lab.root.ps().is_empty());
    assert!(
        !lab.path().join("volumes/lab").exists(),
        "down -v removes named volumes"
    );
    lab.root.assert_clean();
}

#[test]
fn a_failing_job_stops_up_and_names_it() {
    let Some(lab) = Lab::unbuilt(Project::new(
        &PROJECT.replace("echo seed ran", "echo broken >&2; exit 3"),
    )) else {
        return;
    };
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .code(1)
        .stderr_contains("seed exited with code 3 before it was completed");
    let list = lab.root.ps();
    assert!(
        list.iter().all(|c| c["name"] != "app"),
        "app must not start: {list:?}"
    );
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

/// The same project gives every container the same address, whatever order the file (and
/// so the start) puts them in.
#[test]
fn addresses_do_not_depend_on_start_order() {
    if !is_root() {
        return;
    }
    let containers = [
        "container \"a\" image=\"tools\" {\n    network \"n\"\n    cmd \"sleep\" \"1000\"\n}\n",
        "container \"b\" image=\"tools\" replicas=3 {\n    network \"n\"\n    cmd \"sleep\" \"1000\"\n}\n",
        "container \"c\" image=\"tools\" {\n    network \"n\" ip=\"10.89.7.9\"\n    cmd \"sleep\" \"1000\"\n}\n",
    ];
    let head = format!(
        "project \"order\"\n{}network \"n\" subnet=\"10.89.7.0/24\"\n",
        images::tools("tools", "")
    );
    let addresses = |text: String| {
        let project = Project::new(&text);
        let root = Root::new();
        project.kiln(&root).args(["up", "-d"]).run().success();
        let inspect = project
            .kiln(&root)
            .args(["network", "inspect", "n", "--format", "json"])
            .run()
            .success()
            .json();
        project.kiln(&root).args(["down"]).run().success();
        root.assert_clean();
        let mut found: Vec<(String, String)> = inspect["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["address"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        found.sort();
        found
    };
    let forward = addresses(format!(
        "{head}{}{}{}",
        containers[0], containers[1], containers[2]
    ));
    let backward = addresses(format!(
        "{head}{}{}{}",
        containers[2], containers[1], containers[0]
    ));
    assert_eq!(forward.len(), 5);
    assert_eq!(forward, backward);
    assert!(forward.contains(&("c".to_string(), "10.89.7.9".to_string())));
}

/// `kiln down` releases what all its containers held on the networks at once; while
/// another network keeps kiln's namespace, nothing of theirs may stay in it: no bridge
/// port, no anti-spoofing chain, no network membership.
#[test]
fn down_leaves_no_port_chain_or_member_while_another_network_stays() {
    let tools = images::tools("tools", "");
    let Some(lab) = Lab::build(Project::new(&format!(
        "project \"ports\"\n{tools}network \"n\" subnet=\"10.89.8.0/24\"\n\
         container \"a\" image=\"tools\" replicas=3 {{\n    network \"n\"\n    cmd \"sleep\" \"1000\"\n}}\n"
    ))) else {
        return;
    };
    lab.kiln()
        .args(["network", "create", "other", "--subnet", "10.89.9.0/24"])
        .run()
        .success();
    lab.kiln().args(["up", "-d"]).run().success();
    let in_kiln_namespace = |command: &[&str]| {
        lab.kiln()
            .args(["network", "exec", "--"])
            .args(command.iter().copied())
            .run()
            .stdout()
    };
    let ports = || {
        in_kiln_namespace(&["ip", "-o", "link", "show", "type", "veth"])
            .lines()
            .count()
    };
    assert_eq!(ports(), 3);
    let chains = || {
        in_kiln_namespace(&["nft", "list", "table", "netdev", "kiln"])
            .matches("hook ingress")
            .count()
    };
    if which("nft") {
        assert_eq!(chains(), 3);
    }
    lab.kiln().args(["down"]).run().success();
    assert_eq!(ports(), 0, "{}", in_kiln_namespace(&["ip", "-o", "link"]));
    if which("nft") {
        assert_eq!(chains(), 0);
    }
    let other = lab
        .kiln()
        .args(["network", "inspect", "other", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(other["members"], serde_json::json!([]));
    lab.kiln().args(["network", "rm", "other"]).run().success();
    lab.root.assert_clean();
}

/// A project container whose name is a prefix of another container's id must not be taken
/// for it: `up` starts its own and leaves the other alone.
#[test]
fn a_name_is_never_an_id_prefix() {
    let tools = images::tools("tools", "");
    let Some(lab) = Lab::build(Project::new(&tools)) else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "bystander", "tools", "sleep", "1000"])
        .run()
        .success()
        .word();
    // Names start with a letter or digit; a hex prefix always qualifies.
    let prefix = &id[..4];
    lab.project.write(
        "kiln.kdl",
        &format!("project \"p\"\n{tools}container \"{prefix}\" image=\"tools\" {{\n    cmd \"sleep\" \"1000\"\n}}\n"),
    );
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains(&format!("{prefix}: started"));
    let list = lab.root.ps();
    assert_eq!(list.named("bystander")["state"], "running");
    assert_eq!(list.named(prefix)["state"], "running");
    lab.kiln().args(["down"]).run().success();
    lab.kiln().args(["rm", "-f", "bystander"]).run().success();
    lab.root.assert_clean();
}

/// Replicas share a DNS name and only healthy ones are answered; a replica killed from
/// outside is restarted by its supervisor and `kiln ps` counts it.
#[test]
fn healthy_replicas_answer_and_killed_ones_come_back() {
    if !has_python() {
        return;
    }
    let project = Project::new(&format!(
        r#"
project "heal"
{}
network "n" subnet="10.89.45.0/24"
container "api" image="py" replicas=2 {{
    network "n"
    restart "always"
    cmd "sleep" "1000"
    health interval="200ms" retries=1 {{
        exec "sh" "-c" "test ! -f /sick"
    }}
}}
container "client" image="py" {{
    network "n"
    cmd "sleep" "1000"
}}
"#,
        images::python("py", "")
    ));
    let Some(lab) = Lab::unbuilt(project) else {
        return;
    };
    lab.kiln().args(["up", "-d"]).run().success();
    let lookup = || {
        lab.kiln()
            .args([
                "exec",
                "client",
                "python3",
                "-c",
                "import socket; print(sorted(socket.gethostbyname_ex('api')[2]))",
            ])
            .run()
            .success()
            .word()
    };
    let both = lookup();
    assert_eq!(both.matches("10.89.45.").count(), 2, "{both}");
    lab.kiln()
        .args(["exec", "api-2", "touch", "/sick"])
        .run()
        .success();
    let api1 = lab.root.ps().named("api-1")["pid"].as_i64().unwrap();
    eventually("api-2 to leave the answers", || {
        let now = lookup();
        if now.matches("10.89.45.").count() == 1 {
            Ok(())
        } else {
            Err(format!("api-2 still answered: {now}"))
        }
    });
    // Killed from outside: the supervisor starts it again.
    host::signal(api1, Signal::SIGKILL);
    eventually("api-1 to come back", || {
        let list = lab.root.ps();
        let api = list.named("api-1");
        if api["restarts"].as_u64().unwrap_or(0) >= 1
            && api["state"] == "running"
            && api["pid"].as_i64() != Some(api1)
        {
            Ok(())
        } else {
            Err(api.to_string())
        }
    });
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

/// `kiln up` in the foreground follows every container's output, prefixed by its name,
/// and Ctrl-C stops the project (its containers stay, stopped, for `kiln up` or `down`).
#[test]
fn foreground_up_follows_logs_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    let project = Project::new(&format!(
        r#"
project "fg"
{}
container "talker" image="tools" {{
    cmd "sh" "-c" "echo hello from talker; exec sleep 1000"
}}
"#,
        images::tools("tools", "")
    ));
    let Some(lab) = Lab::build(project) else {
        return;
    };
    let mut child = lab
        .kiln()
        .args(["up"])
        .command()
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let seen = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("hello from talker") => break line,
            Some(Ok(_)) => continue,
            other => panic!("the output ended before the container spoke: {other:?}"),
        }
    };
    assert_eq!(seen, "talker | hello from talker");
    host::signal(i64::from(child.id()), Signal::SIGINT);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let list = lab.root.ps();
    assert_eq!(list.named("talker")["state"], "exited", "{list:?}");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn a_failed_up_leaves_no_half_made_network() {
    if !is_root() {
        return;
    }
    let root = Root::new();
    // The second network's subnet is taken by a network outside the project: up makes the
    // first, fails on the second, and must take the first away again.
    root.kiln()
        .args(["network", "create", "taken", "--subnet", "10.77.0.0/24"])
        .run()
        .success();
    let project = Project::new(
        r#"project "half"
image "tools" {
    from "scratch"
    host-binary "/bin/sleep"
}
network "first" subnet="10.76.0.0/24"
network "second" subnet="10.77.0.0/24"
container "app" image="tools" {
    network "first"
    network "second"
    cmd "sleep" "1000"
}
"#,
    );
    project
        .kiln(&root)
        .args(["up", "-d"])
        .run()
        .failure()
        .stderr_contains("network `half/second` overlaps")
        .stderr_contains("network `taken`");
    let names = root.network_names();
    assert_eq!(names, ["taken"], "the first network stayed behind");
    assert!(root.ps().is_empty());
    root.kiln().args(["network", "rm", "taken"]).run().success();
}
