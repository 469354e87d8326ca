//! Egress: a network with `egress=#true` reaches the world outside the machine through
//! pasta, and its DNS forwards what kiln does not know; a network without it stays closed.
//! The machine and the world are namespaces the test makes ([`World`]); the machine's own
//! namespace — and the test's "machine" — are left exactly as they were.

use crate::harness::world::World;
use crate::harness::{Lab, Project, has_python, images, which};

fn project() -> Project {
    Project::new(&format!(
        r#"
project "exits"
{}
network "out" subnet="10.91.0.0/24" egress=#true
network "in" subnet="10.91.1.0/24"
container "open" image="py" {{
    network "out"
    cmd "sleep" "infinity"
}}
container "closed" image="py" {{
    network "in"
    cmd "sleep" "infinity"
}}
"#,
        images::python("py", "")
    ))
}

/// Fetches `url` from inside `container`, giving up after `seconds`: the body, or
/// `failed: WHY`.
fn fetch(lab: &Lab, world: &World, container: &str, url: &str, seconds: u32) -> String {
    let script = format!(
        "import urllib.request\ntry: print(urllib.request.urlopen('{url}', timeout={seconds}).read().decode())\nexcept Exception as e: print('failed:', e)"
    );
    world
        .kiln(lab.kiln())
        .args(["exec", container, "python3", "-c", &script])
        .run()
        .success()
        .stdout()
        .trim()
        .to_string()
}

#[test]
fn an_egress_network_reaches_the_world_and_a_closed_one_does_not() {
    if !has_python() || !which("pasta") || !which("nft") || !which("nsenter") {
        return;
    }
    let Some(lab) = Lab::build(project()) else {
        return;
    };
    let world = World::new();
    let machine_before = World::network_of(Some(world.machine()));
    let real_before = World::network_of(None);
    assert!(!machine_before.contains("kiln"), "{machine_before}");

    world.kiln(lab.kiln()).args(["up", "-d"]).run().success();

    // Out by address, and by a name only the world's DNS knows (forwarded by kiln's).
    assert_eq!(
        fetch(&lab, &world, "open", "http://192.0.2.80:8080/", 20),
        World::GREETING
    );
    assert_eq!(
        fetch(&lab, &world, "open", "http://world.example:8080/", 20),
        World::GREETING
    );
    // Container names are still kiln's, and an unknown name is the world's NXDOMAIN.
    let names = "import socket\nprint(socket.gethostbyname('open'))\ntry: socket.gethostbyname('nowhere.example'); print('found')\nexcept OSError: print('unknown')";
    world
        .kiln(lab.kiln())
        .args(["exec", "open", "python3", "-c", names])
        .run()
        .success()
        .stdout_contains("10.91.0.")
        .stdout_contains("unknown");

    // Without egress: no way out, and no forwarded names.
    let closed = fetch(&lab, &world, "closed", "http://192.0.2.80:8080/", 3);
    assert!(closed.starts_with("failed:"), "{closed}");
    let closed = fetch(&lab, &world, "closed", "http://world.example:8080/", 3);
    assert!(closed.starts_with("failed:"), "{closed}");

    // The machine — the test's — is exactly as it was: pasta used sockets only. The real
    // one gained nothing of kiln's (other programs may change it meanwhile: podman's
    // interop tests do).
    assert_eq!(World::network_of(Some(world.machine())), machine_before);
    let real_after = World::network_of(None);
    let gained: Vec<&str> = real_after
        .lines()
        .filter(|line| !real_before.lines().any(|before| before == *line))
        .filter(|line| {
            [
                "10.91.",
                "10.250.0.",
                "169.254.1.",
                "192.0.2.",
                "kg",
                "kiln",
            ]
            .iter()
            .any(|mark| line.contains(mark))
        })
        .collect();
    assert!(gained.is_empty(), "the machine gained: {gained:?}");

    world.kiln(lab.kiln()).args(["down"]).run().success();
    assert_eq!(World::network_of(Some(world.machine())), machine_before);
}

#[test]
fn kiln_network_create_egress_and_rm_leave_nothing_behind() {
    if !which("pasta") || !which("nsenter") {
        return;
    }
    let Some(lab) = Lab::unbuilt(Project::new("")) else {
        return;
    };
    let world = World::new();
    world
        .kiln(lab.root.kiln())
        .args([
            "network",
            "create",
            "--egress",
            "--subnet",
            "10.92.0.0/24",
            "way-out",
        ])
        .run()
        .success();
    let inspected = lab
        .root
        .kiln()
        .args(["network", "inspect", "--format", "json", "way-out"])
        .run()
        .success()
        .json();
    assert_eq!(inspected["egress"], true, "{inspected}");
    assert!(inspected["egress_pid"].is_number(), "{inspected}");
    assert!(lab.path().join("net/egress").read_dir().unwrap().count() > 0);
    world
        .kiln(lab.root.kiln())
        .args(["network", "rm", "way-out"])
        .run()
        .success();
    let left: Vec<_> = lab
        .path()
        .join("net/egress")
        .read_dir()
        .unwrap()
        .flatten()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn egress_and_internal_exclude_each_other() {
    Project::new("network \"n\" internal=#true egress=#true\n")
        .kiln_here()
        .args(["check"])
        .run()
        .failure()
        .stderr_contains("kiln::spec::egress-conflict");
    crate::harness::Kiln::new()
        .args(["network", "create", "--egress", "--internal", "n"])
        .run()
        .code(2)
        .stderr_contains("cannot be used with");
}

#[test]
fn dns_on_an_egress_network_is_the_containers_own_upstream() {
    if !has_python() || !which("pasta") || !which("nft") || !which("nsenter") {
        return;
    }
    let Some(lab) = Lab::build(Project::new(&format!(
        r#"
project "upstreams"
{}
network "out" subnet="10.91.2.0/24" egress=#true
container "own" image="py" {{
    network "out"
    dns "192.0.2.53"
    cmd "sleep" "infinity"
}}
container "machines" image="py" {{
    network "out"
    cmd "sleep" "infinity"
}}
"#,
        images::python("py", "")
    ))) else {
        return;
    };
    let world = World::new();
    // The machine's resolver answers nothing: only the world's server, given to one
    // container with `dns`, knows world.example.
    std::fs::write(world.resolv_conf(), "nameserver 192.0.2.99\n").unwrap();
    world.kiln(lab.kiln()).args(["check"]).run().success();
    world.kiln(lab.kiln()).args(["up", "-d"]).run().success();
    let lookup = "import socket\ntry: print(socket.gethostbyname('world.example'))\nexcept OSError: print('unknown')";
    let resolve = |container: &str| {
        world
            .kiln(lab.kiln())
            .args(["exec", container, "python3", "-c", lookup])
            .run()
            .success()
            .stdout()
    };
    assert_eq!(resolve("own"), "192.0.2.80\n");
    assert_eq!(resolve("machines"), "unknown\n");
    // Its resolv.conf still names kiln's server: container names keep working.
    world
        .kiln(lab.kiln())
        .args(["exec", "own", "cat", "/etc/resolv.conf"])
        .run()
        .success()
        .stdout_contains("nameserver 10.91.2.1");
    world.kiln(lab.kiln()).args(["down"]).run().success();
}
