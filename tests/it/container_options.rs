//! More of `kiln run`'s options with Docker's meaning, on the command line and in
//! kiln.kdl: `--sysctl` (namespaced ones, in the container's own /proc), `--stop-signal`
//! and `--stop-timeout` (used by `kiln stop`, `restart`, `down` and rollouts),
//! `--device` and `--privileged`; `-p IP:HOST:PORT`, `-p IP::PORT` and `-P` (`address=`
//! and `publish-all`).

use crate::harness::tools::runc_script;
use crate::harness::{Lab, Project, images};

fn lab(extra: &str) -> Option<Lab> {
    let kdl = format!(
        "{}{extra}",
        images::tools("tools", "host-binary \"/bin/grep\"\n    cmd \"true\"")
    );
    Lab::build(Project::new(&kdl))
}

fn host_sysctl(path: &str) -> String {
    std::fs::read_to_string(format!("/proc/sys/{path}")).unwrap()
}

#[test]
fn sysctls_are_set_in_the_containers_namespaces_only() {
    let Some(lab) = lab("") else {
        return;
    };
    let forward = host_sysctl("net/ipv4/ip_forward");
    let shmmni = host_sysctl("kernel/shmmni");
    let value = if forward.trim() == "1" { "0" } else { "1" };
    lab.kiln()
        .args(["run", "--rm", "--sysctl"])
        .args([format!("net.ipv4.ip_forward={value}")])
        .args(["--sysctl", "kernel.shmmni=1234", "tools", "cat"])
        .args(["/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is(&format!("{value}\n1234\n"));
    // The machine's own values are untouched.
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), forward);
    assert_eq!(host_sysctl("kernel/shmmni"), shmmni);
    // /proc/sys stays read-only for the command.
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--sysctl",
            "kernel.shmmni=1234",
            "tools",
            "sh",
        ])
        .args(["-c", "echo 1 > /proc/sys/kernel/shmmni"])
        .run()
        .code(2)
        .stderr_contains("Read-only file system");
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--trace",
            "--sysctl",
            "kernel.sem=250 32000 32 128",
        ])
        .args(["tools", "echo"])
        .run()
        .success()
        .stderr_contains("sysctl -w kernel.sem='250 32000 32 128'");
    for (options, message) in [
        (&["--sysctl", "vm.swappiness=1"][..], "it is not namespaced"),
        (
            &["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"][..],
            "need a network namespace",
        ),
        (&["--sysctl", "kernel.hostname=x"][..], "--hostname"),
        (&["--sysctl", "net.ipv4.ip_forward"][..], "NAME=VALUE"),
    ] {
        lab.kiln()
            .args(["run", "--rm"])
            .args(options)
            .args(["tools", "true"])
            .run()
            .code(125)
            .stderr_contains(message);
    }
    assert_eq!(host_sysctl("net/ipv4/ip_forward"), forward);
    lab.root.assert_clean();
}

/// The annotations of container `name`'s `config.json`.
fn annotations(lab: &Lab, name: &str) -> serde_json::Value {
    let id = lab.root.ps().named(name)["id"]
        .as_str()
        .unwrap()
        .to_string();
    let path = lab
        .root
        .path()
        .join("containers")
        .join(id)
        .join("config.json");
    let spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    spec["annotations"].clone()
}

#[test]
fn stop_uses_the_containers_stop_signal_and_timeout() {
    let Some(lab) = lab("") else {
        return;
    };
    // pid 1 catches USR1 only: a TERM would not end it (and is never sent).
    lab.kiln()
        .args(["run", "-d", "--name", "quits", "--stop-signal", "usr1"])
        .args(["--stop-timeout", "30", "tools", "sh", "-c"])
        .args(["trap 'echo got usr1; exit 3' USR1; echo ready; while :; do sleep 0.1; done"])
        .run()
        .success();
    lab.wait_for_log("quits", "ready");
    let notes = annotations(&lab, "quits");
    assert_eq!(notes["org.opencontainers.image.stopSignal"], "usr1");
    assert_eq!(notes["dev.kiln.stop-timeout"], "30");
    lab.kiln().args(["stop", "quits"]).run().success();
    lab.kiln()
        .args(["logs", "quits"])
        .run()
        .success()
        .stdout_contains("got usr1");
    assert_eq!(lab.root.ps().named("quits")["exit_code"], 3);
    lab.kiln()
        .args(["run", "--rm", "--stop-signal", "SIGNOPE", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("SIGNOPE");
    lab.kiln().args(["rm", "quits"]).run().success();
    lab.root.assert_clean();
}

const SERVICE: &str = r#"
container "box" image="tools" {
    sysctl net.ipv4.ip_forward="1" kernel.shmmni=1234
    stop-signal "SIGUSR1"
    stop-timeout "30s"
    cmd "sh" "-c" "trap 'exit 0' USR1; while :; do sleep 0.1; done"
}
"#;

#[test]
fn a_project_container_takes_them_from_kiln_kdl_and_a_change_recreates_it() {
    let Some(lab) = lab(SERVICE) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["exec", "box", "cat", "/proc/sys/net/ipv4/ip_forward"])
        .args(["/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is("1\n1234\n");
    let notes = annotations(&lab, "box");
    assert_eq!(notes["org.opencontainers.image.stopSignal"], "SIGUSR1");
    assert_eq!(notes["dev.kiln.stop-timeout"], "30");
    let kdl = std::fs::read_to_string(lab.project.file_path()).unwrap();
    lab.project
        .write("kiln.kdl", &kdl.replace("shmmni=1234", "shmmni=2345"));
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("box: removed")
        .stderr_contains("box: started");
    lab.kiln()
        .args(["exec", "box", "cat", "/proc/sys/kernel/shmmni"])
        .run()
        .success()
        .stdout_is("2345\n");
    // Stopped by its own signal: exit 0, not 137.
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

/// The tools image with `mknod`, to make a device node inside a container.
fn device_lab(extra: &str) -> Option<Lab> {
    let kdl = format!(
        "{}{extra}",
        images::tools(
            "tools",
            "host-binary \"/bin/grep\" \"/bin/mknod\"\n    cmd \"true\""
        )
    );
    Lab::build(Project::new(&kdl))
}

/// Opens `path` for reading, then for writing, in the container; prints what worked.
const OPEN: &str = "for d in $DEVS; do \
    (exec 3<$d) 2>/dev/null && echo $d read || echo $d no-read; \
    (exec 3>$d) 2>/dev/null && echo $d write || echo $d no-write; done";

#[test]
fn a_device_is_made_in_the_container_and_only_it_opens() {
    let Some(lab) = device_lab("") else {
        return;
    };
    let out = lab
        .kiln()
        .args([
            "run",
            "--rm",
            "--trace",
            "--device",
            "/dev/loop-control:/dev/lc:r",
        ])
        .args(["-e", "DEVS=/dev/lc /dev/twin", "tools", "sh", "-c"])
        .args([format!("mknod /dev/twin b 7 0 && ls -l /dev/lc && {OPEN}")])
        .run()
        .success();
    let stdout = out.stdout();
    // The host's type and numbers, at the container's path.
    assert!(
        stdout.contains("crw") && stdout.contains("10, 237"),
        "{stdout}"
    );
    assert!(
        stdout.contains("/dev/lc read\n/dev/lc no-write\n"),
        "{stdout}"
    );
    // A node the container made for a device not listed cannot be opened.
    assert!(
        stdout.contains("/dev/twin no-read\n/dev/twin no-write\n"),
        "{stdout}"
    );
    out.stderr_contains("mknod -m 600 /proc/self/fd/N/lc c 10 237");
    for (device, message) in [
        ("/dev/loop-control:/dev/lc:rx", "letters of `rwm`"),
        ("/no/such/device", "cannot be read"),
        ("/etc/hostname", "is not a device node"),
        ("dev/null", "absolute"),
    ] {
        lab.kiln()
            .args(["run", "--rm", "--device", device, "tools", "true"])
            .run()
            .code(125)
            .stderr_contains(message);
    }
    lab.root.assert_clean();
}

/// This process's own capability bounding set, as /proc shows it.
fn own_bounding_hex() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string()
}

#[test]
fn privileged_is_dockers_every_capability_device_and_no_filter() {
    let Some(lab) = device_lab("") else {
        return;
    };
    let script = format!(
        "grep 'CapEff\\|Seccomp:' /proc/self/status; grep ' /sys sysfs ' /proc/self/mounts; \
         grep -c ' /proc/kcore ' /proc/self/mounts; {OPEN}"
    );
    let out = lab
        .kiln()
        .args([
            "run",
            "--rm",
            "--trace",
            "--privileged",
            "--cap-drop",
            "ALL",
        ])
        .args(["-e", "DEVS=/dev/loop0", "tools", "sh", "-c", &script])
        .run()
        .success();
    let stdout = out.stdout();
    assert!(
        stdout.contains(&format!("CapEff:\t{}\n", own_bounding_hex())),
        "{stdout}"
    );
    assert!(stdout.contains("Seccomp:\t0\n"), "{stdout}");
    assert!(stdout.contains("sysfs rw,"), "{stdout}");
    // Nothing masked: /proc/kcore is not covered (grep -c prints 0 and fails).
    assert!(stdout.contains("\n0\n"), "{stdout}");
    assert!(stdout.contains("/dev/loop0 read\n"), "{stdout}");
    out.stderr_contains("privileged: every capability");
    lab.root.assert_clean();
}

const DEVICES: &str = r#"
container "box" image="tools" {
    device "/dev/loop-control" "/dev/lc" permissions="r"
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 0.1; done"
}
container "root" image="tools" {
    privileged
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 0.1; done"
}
"#;

#[test]
fn devices_and_privileged_come_from_kiln_kdl() {
    let Some(lab) = device_lab(DEVICES) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln()
        .args(["exec", "-e", "DEVS=/dev/lc", "box", "sh", "-c", OPEN])
        .run()
        .success()
        .stdout_is("/dev/lc read\n/dev/lc no-write\n");
    lab.kiln()
        .args(["exec", "root", "grep", "Seccomp:", "/proc/self/status"])
        .run()
        .success()
        .stdout_is("Seccomp:\t0\n");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn runc_sees_the_same_devices_in_the_bundle() {
    let Some(lab) = device_lab("") else {
        return;
    };
    if !crate::harness::which("runc") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = runc_script(
        lab.kiln(),
        &["--device", "/dev/loop-control:/dev/lc:r"],
        "tools",
        &dir.path().join("devices"),
        OPEN,
        &["DEVS=/dev/lc"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "/dev/lc read\n/dev/lc no-write\n"
    );
}

#[test]
fn env_files_are_read_as_docker_reads_them() {
    let Some(lab) = lab("") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("app.env");
    std::fs::write(
        &file,
        "# settings\n\nMODE=prod\nQUOTED=\"kept\"\n  FROM_KILN\nUNSET_HERE\nLEVEL=1\n",
    )
    .unwrap();
    lab.kiln()
        .env("FROM_KILN", "caller")
        .args(["run", "--rm", "--env-file"])
        .args([&file])
        .args(["-e", "LEVEL=2", "tools", "sh", "-c"])
        .args(["echo $MODE $QUOTED $FROM_KILN $LEVEL ${UNSET_HERE-unset}"])
        .run()
        .success()
        .stdout_is("prod \"kept\" caller 2 unset\n");
    std::fs::write(&file, "A=1\n=2\n").unwrap();
    lab.kiln()
        .args(["run", "--rm", "--env-file"])
        .args([&file])
        .args(["tools", "true"])
        .run()
        .code(125)
        .stderr_contains("line 2: no variable name before `=`");
    lab.root.assert_clean();
}

const ENV_FILE: &str = r#"
container "box" image="tools" {
    env-file "app.env"
    env LEVEL="2"
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 0.1; done"
}
"#;

#[test]
fn a_projects_env_file_is_read_and_a_change_recreates_the_container() {
    let kdl = format!(
        "{}{ENV_FILE}",
        images::tools("tools", "host-binary \"/bin/grep\"\n    cmd \"true\"")
    );
    let Some(lab) = Lab::build(Project::new(&kdl).file("app.env", "MODE=prod\nLEVEL=1\n")) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    let env = || {
        lab.kiln()
            .args(["exec", "box", "sh", "-c", "echo $MODE $LEVEL"])
            .run()
            .success()
            .stdout()
    };
    assert_eq!(env(), "prod 2\n");
    lab.project.write("app.env", "MODE=debug\n");
    lab.kiln()
        .args(["up", "-d"])
        .run()
        .success()
        .stderr_contains("box: removed");
    assert_eq!(env(), "debug 2\n");
    lab.project.write("app.env", "MODE debug\n");
    lab.kiln()
        .args(["check"])
        .run()
        .code(1)
        .stderr_contains("line 1: variable `MODE debug` contains whitespace");
    lab.project.write("app.env", "MODE=debug\n");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn added_hosts_and_resolver_settings_with_and_without_a_kiln_network() {
    let Some(lab) = lab("") else {
        return;
    };
    let files = ["cat", "/etc/hosts", "/etc/resolv.conf"];
    let alone = lab
        .kiln()
        .args([
            "run",
            "--rm",
            "--add-host",
            "db:10.0.0.5",
            "--dns",
            "192.0.2.53",
        ])
        .args([
            "--dns-search",
            "corp.example",
            "--dns-option",
            "ndots:2",
            "tools",
        ])
        .args(files)
        .run()
        .success()
        .stdout();
    for line in [
        "127.0.0.1\tlocalhost\n",
        "10.0.0.5\tdb\n",
        "nameserver 192.0.2.53\n",
        "search corp.example\n",
        "options ndots:2\n",
    ] {
        assert!(alone.contains(line), "{line:?} not in {alone}");
    }
    lab.kiln()
        .args(["network", "create", "front", "--subnet", "10.89.47.0/24"])
        .run()
        .success();
    let on_network = lab
        .kiln()
        .args([
            "run",
            "--rm",
            "--network",
            "front",
            "--add-host",
            "gw:host-gateway",
        ])
        .args(["--dns-search", "corp.example", "tools"])
        .args(files)
        .run()
        .success()
        .stdout();
    for line in [
        "10.89.47.1\tgw\n",
        "nameserver 10.89.47.1\n",
        "corp.example\n",
    ] {
        assert!(on_network.contains(line), "{line:?} not in {on_network}");
    }
    lab.kiln()
        .args([
            "run",
            "--rm",
            "--network",
            "front",
            "--dns",
            "192.0.2.53",
            "tools",
            "true",
        ])
        .run()
        .code(125)
        .stderr_contains("--dns cannot take effect on network `front`: it has no egress");
    for (options, message) in [
        (
            &["--add-host", "gw:host-gateway"][..],
            "needs a kiln network",
        ),
        (&["--add-host", "nohost"][..], "NAME:IP"),
        (&["--add-host", "db:10.0.0.300"][..], "IPv4 or IPv6"),
    ] {
        lab.kiln()
            .args(["run", "--rm"])
            .args(options)
            .args(["tools", "true"])
            .run()
            .code(125)
            .stderr_contains(message);
    }
    lab.kiln().args(["network", "rm", "front"]).run().success();
    lab.root.assert_clean();
}

const ETC: &str = r#"
network "front" subnet="10.89.48.0/24"
container "box" image="tools" {
    network "front"
    add-host "db" "10.0.0.5"
    add-host "gw" "host-gateway"
    dns-search "corp.example"
    dns-option "ndots:2"
    cmd "sh" "-c" "trap 'exit 0' TERM; while :; do sleep 0.1; done"
}
"#;

#[test]
fn a_projects_added_hosts_and_resolver_settings_come_from_kiln_kdl() {
    let Some(lab) = lab(ETC) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    let files = lab
        .kiln()
        .args(["exec", "box", "cat", "/etc/hosts", "/etc/resolv.conf"])
        .run()
        .success()
        .stdout();
    for line in [
        "10.0.0.5\tdb\n",
        "10.89.48.1\tgw\n",
        "corp.example\n",
        "options ndots:2\n",
    ] {
        assert!(files.contains(line), "{line:?} not in {files}");
    }
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

/// A server on 7000 that the image exposes: it says `hi` to every client.
const HI_PY: &str = r#"import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 7000)); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"hi\n"); c.close()
"#;

/// What a client of `address` reads first ("" when refused or closed at once).
fn greeting(address: &str) -> String {
    use std::io::Read;
    let Ok(mut stream) = std::net::TcpStream::connect(address) else {
        return String::new();
    };
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

fn answers(address: &str) {
    crate::harness::wait_for(&format!("the server answers on {address}"), || {
        greeting(address) == "hi\n"
    });
}

#[test]
fn ports_publish_on_a_given_address_on_a_free_port_and_every_exposed_one() {
    use crate::harness::host::free_port;
    if !crate::harness::has_python() {
        return;
    }
    let images = images::python(
        "hi",
        "copy \"hi.py\" \"/hi.py\"\n    expose 7000\n    cmd \"python3\" \"/hi.py\"",
    );
    let Some(lab) = Lab::build(Project::new(&images).file("hi.py", HI_PY)) else {
        return;
    };
    lab.kiln()
        .args(["network", "create", "pub", "--subnet", "10.89.79.0/24"])
        .run()
        .success();
    // -p IP:HOST:CONTAINER: the proxy listens on 127.0.0.2 only.
    let port = free_port();
    lab.kiln()
        .args(["run", "-d", "--name", "two", "--network", "pub"])
        .args(["-p", &format!("127.0.0.2:{port}:7000"), "hi"])
        .run()
        .success();
    answers(&format!("127.0.0.2:{port}"));
    assert_eq!(greeting(&format!("127.0.0.1:{port}")), "");
    lab.kiln()
        .args(["port", "two", "7000"])
        .run()
        .success()
        .stdout_is(&format!("127.0.0.2:{port}\n"));
    // -p IP::CONTAINER: a free port picked at create, which `kiln port` shows.
    lab.kiln()
        .args(["run", "-d", "--name", "free", "--network", "pub"])
        .args(["-p", "127.0.0.1::7000", "hi"])
        .run()
        .success();
    let shown = lab.kiln().args(["port", "free", "7000"]).run().success();
    let address = shown.stdout().trim().to_string();
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );
    answers(&address);
    // -p CONTAINER alone: as Docker's, a free host port (here on 127.0.0.1).
    lab.kiln()
        .args([
            "run",
            "-d",
            "--name",
            "bare",
            "--network",
            "pub",
            "-p",
            "7000",
            "hi",
        ])
        .run()
        .success();
    let shown = lab.kiln().args(["port", "bare", "7000"]).run().success();
    let address = shown.stdout().trim().to_string();
    assert!(
        address.starts_with("127.0.0.1:") && !address.ends_with(":0"),
        "{address}"
    );
    answers(&address);
    // -P: the image's exposed port, on a free port of 127.0.0.1.
    lab.kiln()
        .args(["run", "-d", "--name", "all", "--network", "pub", "-P", "hi"])
        .run()
        .success();
    let listed = lab.kiln().args(["port", "all"]).run().success().stdout();
    let address = listed
        .strip_prefix("7000/tcp -> ")
        .unwrap_or_else(|| panic!("{listed}"))
        .trim()
        .to_string();
    answers(&address);
    // Bad addresses are refused before anything is made.
    lab.kiln()
        .args([
            "run",
            "-d",
            "--network",
            "pub",
            "-p",
            "300.1.2.3:8080:7000",
            "hi",
        ])
        .run()
        .code(125)
        .says("`300.1.2.3` is not an IP address");
    lab.kiln()
        .args(["run", "-d", "--network", "pub", "-p", "::7000", "hi"])
        .run()
        .code(125)
        .says("give the host address before `::`");
    // 192.0.2.1 (TEST-NET-1) is no address of this machine: nothing is sent to it.
    lab.kiln()
        .args([
            "run",
            "-d",
            "--network",
            "pub",
            "-p",
            "192.0.2.1::7000",
            "hi",
        ])
        .run()
        .code(125)
        .says("cannot publish on 192.0.2.1: it is not an address of this machine");
    lab.kiln()
        .args(["rm", "-f", "two", "free", "bare", "all"])
        .run()
        .success();
    lab.kiln().args(["network", "rm", "pub"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn a_project_publishes_on_an_address_and_every_exposed_port() {
    if !crate::harness::has_python() {
        return;
    }
    let port = crate::harness::host::free_port();
    let kdl = format!(
        r#"{}
network "front" subnet="10.89.80.0/24"
container "two" image="hi" {{
    network "front"
    publish 7000 host={port} address="127.0.0.2"
}}
container "all" image="hi" {{
    network "front"
    publish-all
}}
"#,
        images::python(
            "hi",
            "copy \"hi.py\" \"/hi.py\"\n    expose 7000\n    cmd \"python3\" \"/hi.py\"",
        )
    );
    let Some(lab) = Lab::build(Project::new(&kdl).file("hi.py", HI_PY)) else {
        return;
    };
    lab.kiln().args(["check"]).run().success();
    lab.kiln().args(["up", "-d"]).run().success();
    answers(&format!("127.0.0.2:{port}"));
    assert_eq!(greeting(&format!("127.0.0.1:{port}")), "");
    let listed = lab.kiln().args(["port", "all"]).run().success().stdout();
    let address = listed
        .strip_prefix("7000/tcp -> 127.0.0.1:")
        .unwrap_or_else(|| panic!("{listed}"))
        .trim()
        .to_string();
    answers(&format!("127.0.0.1:{address}"));
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}
