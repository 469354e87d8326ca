//! Whole projects: `kiln up` in dependency order with jobs and volumes, kept and replaced
//! containers on a second `up`, and `kiln down` leaving nothing behind.

use std::path::Path;

use crate::detach::assert_nothing_left;
use crate::harness::{Project, is_root};

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

fn ps(project: &Project, root: &Path) -> Vec<serde_json::Value> {
    project
        .kiln(root)
        .args(["ps", "-a", "--format", "json"])
        .run()
        .success()
        .json()
        .as_array()
        .unwrap()
        .clone()
}

fn by_name<'a>(list: &'a [serde_json::Value], name: &str) -> &'a serde_json::Value {
    list.iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {list:?}"))
}

#[test]
fn up_orders_keeps_replaces_and_down_cleans() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(PROJECT);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();

    project
        .kiln(root)
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("seed: completed with exit code 0");
    let list = ps(&project, root);
    assert_eq!(list.len(), 4, "{list:?}");
    assert_eq!(by_name(&list, "app")["state"], "running");
    assert_eq!(by_name(&list, "side-1")["state"], "running");
    assert_eq!(by_name(&list, "side-2")["state"], "running");
    assert_eq!(by_name(&list, "seed")["exit_code"], 0);
    // The job ran before app started: app read what it wrote to the shared volume.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let logs = project.kiln(root).args(["logs", "app"]).run().success();
        if logs.stdout() == "seeded\nhello\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "app printed {:?}",
            logs.stdout()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let app_pid = by_name(&list, "app")["pid"].clone();
    // The project's view: its containers only, its output prefixed and merged in time order.
    let mine = project
        .kiln(root)
        .args(["ps", "-a", "--project", "lab", "--format", "json"])
        .run()
        .success()
        .json();
    assert_eq!(mine.as_array().unwrap().len(), 4);
    assert_eq!(mine[0]["project"], "lab");
    let none = project
        .kiln(root)
        .args(["ps", "-a", "--project", "other", "--format", "json"])
        .run()
        .success()
        .json();
    assert!(none.as_array().unwrap().is_empty());
    let merged = project
        .kiln(root)
        .args(["logs", "--project", "lab"])
        .run()
        .success()
        .stdout();
    let seed_at = merged.find("seed   | seed ran").expect(&merged);
    let app_at = merged.find("app    | seeded").expect(&merged);
    assert!(seed_at < app_at, "the job ran first:\n{merged}");
    project
        .kiln(root)
        .args(["logs", "--project", "lab", "app"])
        .run()
        .success()
        .stdout_is("app | seeded\napp | hello\n");
    project
        .kiln(root)
        .args(["logs", "--project", "lab", "nope"])
        .run()
        .failure()
        .stderr_contains("project lab has no container named `nope`");

    // Nothing changed: everything is kept.
    project
        .kiln(root)
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("app: unchanged")
        .stderr_contains("seed: unchanged");
    assert_eq!(by_name(&ps(&project, root), "app")["pid"], app_pid);

    // app's env changes and side gains a replica: app is replaced, side-3 starts, the
    // other replicas are kept.
    project.write(
        "kiln.kdl",
        &PROJECT
            .replace("GREETING=\"hello\"", "GREETING=\"bonjour\"")
            .replace("replicas=2", "replicas=3"),
    );
    project
        .kiln(root)
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("app: removed")
        .stderr_contains("app: started")
        .stderr_contains("side-3: started")
        .stderr_contains("side-1: unchanged")
        .stderr_contains("side-2: unchanged");
    let list = ps(&project, root);
    assert_ne!(by_name(&list, "app")["pid"], app_pid);
    assert_eq!(list.len(), 5, "{list:?}");

    let down = project.kiln(root).args(["down", "-v"]).run().success();
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
    assert!(ps(&project, root).is_empty());
    assert!(
        !root.join("volumes/lab").exists(),
        "down -v removes named volumes"
    );
    assert_nothing_left(root, &[]);
}

#[test]
fn a_failing_job_stops_up_and_names_it() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(&PROJECT.replace("echo seed ran", "echo broken >&2; exit 3"));
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    project
        .kiln(root)
        .args(["up", "-d"])
        .run()
        .code(1)
        .stderr_contains("seed exited with code 3 before it was completed");
    let list = ps(&project, root);
    assert!(
        list.iter().all(|c| c["name"] != "app"),
        "app must not start: {list:?}"
    );
    project.kiln(root).args(["down"]).run().success();
    assert_nothing_left(root, &[]);
}

/// The same project gives every container the same address, whatever order the file (and
/// so the start) puts them in.
#[test]
fn addresses_do_not_depend_on_start_order() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let containers = [
        "container \"a\" image=\"tools\" {\n    network \"n\"\n    cmd \"sleep\" \"1000\"\n}\n",
        "container \"b\" image=\"tools\" replicas=3 {\n    network \"n\"\n    cmd \"sleep\" \"1000\"\n}\n",
        "container \"c\" image=\"tools\" {\n    network \"n\" ip=\"10.89.7.9\"\n    cmd \"sleep\" \"1000\"\n}\n",
    ];
    let head = "project \"order\"\nimage \"tools\" {\n    from \"scratch\"\n    host-binary \"/bin/sleep\"\n}\nnetwork \"n\" subnet=\"10.89.7.0/24\"\n";
    let addresses = |text: String| {
        let project = Project::new(&text);
        let root = tempfile::tempdir().unwrap();
        project.kiln(root.path()).args(["up", "-d"]).run().success();
        let inspect = project
            .kiln(root.path())
            .args(["network", "inspect", "n", "--format", "json"])
            .run()
            .success()
            .json();
        project.kiln(root.path()).args(["down"]).run().success();
        assert_nothing_left(root.path(), &[]);
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

/// A project container whose name is a prefix of another container's id must not be taken
/// for it: `up` starts its own and leaves the other alone.
#[test]
fn a_name_is_never_an_id_prefix() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let tools = "image \"tools\" {\n    from \"scratch\"\n    host-binary \"/bin/sleep\"\n}\n";
    let project = Project::new(tools);
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    project.kiln(root).args(["build"]).run().success();
    let id = project
        .kiln(root)
        .args(["run", "-d", "--name", "bystander", "tools", "sleep", "1000"])
        .run()
        .success()
        .stdout()
        .trim()
        .to_string();
    // Names start with a letter or digit; a hex prefix always qualifies.
    let prefix = &id[..4];
    project.write(
        "kiln.kdl",
        &format!("project \"p\"\n{tools}container \"{prefix}\" image=\"tools\" {{\n    cmd \"sleep\" \"1000\"\n}}\n"),
    );
    project
        .kiln(root)
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains(&format!("{prefix}: started"));
    let list = ps(&project, root);
    assert_eq!(by_name(&list, "bystander")["state"], "running");
    assert_eq!(by_name(&list, prefix)["state"], "running");
    project.kiln(root).args(["down"]).run().success();
    project
        .kiln(root)
        .args(["rm", "-f", "bystander"])
        .run()
        .success();
    assert_nothing_left(root, &[]);
}

/// Replicas share a DNS name and only healthy ones are answered; a replica killed from
/// outside is restarted by its supervisor and `kiln ps` counts it.
#[test]
fn healthy_replicas_answer_and_killed_ones_come_back() {
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(
        r#"
project "heal"
image "py" {
    from "scratch"
    host-binary "/bin/sh" "/usr/bin/test" "/usr/bin/touch" "/bin/sleep" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
}
network "n" subnet="10.89.45.0/24"
container "api" image="py" replicas=2 {
    network "n"
    restart "always"
    cmd "sleep" "1000"
    health interval="200ms" retries=1 {
        exec "sh" "-c" "test ! -f /sick"
    }
}
container "client" image="py" {
    network "n"
    cmd "sleep" "1000"
}
"#,
    );
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    project.kiln(root).args(["up", "-d"]).run().success();
    let lookup = || {
        let out = project
            .kiln(root)
            .args([
                "exec",
                "client",
                "python3",
                "-c",
                "import socket; print(sorted(socket.gethostbyname_ex('api')[2]))",
            ])
            .run()
            .success()
            .stdout();
        out.trim().to_string()
    };
    let both = lookup();
    assert_eq!(both.matches("10.89.45.").count(), 2, "{both}");
    project
        .kiln(root)
        .args(["exec", "api-2", "touch", "/sick"])
        .run()
        .success();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let api1 = by_name(&ps(&project, root), "api-1")["pid"]
        .as_i64()
        .unwrap();
    loop {
        let now = lookup();
        if now.matches("10.89.45.").count() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "api-2 still answered: {now}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Killed from outside: the supervisor starts it again.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(api1 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    loop {
        let list = ps(&project, root);
        let api = by_name(&list, "api-1");
        if api["restarts"].as_u64().unwrap_or(0) >= 1
            && api["state"] == "running"
            && api["pid"].as_i64() != Some(api1)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "api-1 did not come back: {api}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    project.kiln(root).args(["down"]).run().success();
    assert_nothing_left(root, &[]);
}

/// `kiln up` in the foreground follows every container's output, prefixed by its name,
/// and Ctrl-C stops the project (its containers stay, stopped, for `kiln up` or `down`).
#[test]
fn foreground_up_follows_logs_and_stops_on_ctrl_c() {
    use std::io::{BufRead, BufReader};
    if !is_root() {
        eprintln!("skipped: containers need root");
        return;
    }
    let project = Project::new(
        r#"
project "fg"
image "tools" {
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/sleep"
}
container "talker" image="tools" {
    cmd "sh" "-c" "echo hello from talker; exec sleep 1000"
}
"#,
    );
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    project.kiln(root).args(["build"]).run().success();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env("NO_COLOR", "1")
        .arg("--root")
        .arg(root)
        .args(["up", "-f"])
        .arg(project.path().join("kiln.kdl"))
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
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let list = ps(&project, root);
    assert_eq!(by_name(&list, "talker")["state"], "exited", "{list:?}");
    project.kiln(root).args(["down"]).run().success();
    assert_nothing_left(root, &[]);
}
