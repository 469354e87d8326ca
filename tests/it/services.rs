//! Supervised network services: the DNS daemon killed with SIGKILL is
//! back by itself and names resolve again; its supervisor killed is replaced by the daemon;
//! `kiln up` with both dead brings them back, and fails loudly when the daemon cannot answer.

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Lab, Project, has_python, host, images};

/// Resolves `web` in a loop for up to 5 s; prints `ADDRESS ATTEMPTS SECONDS` or
/// `unresolved`.
const RESOLVE: &str = r#"import socket, time
start, attempts = time.monotonic(), 0
while True:
    attempts += 1
    try:
        print(socket.gethostbyname("web"), attempts, round(time.monotonic() - start, 2)); break
    except OSError:
        if time.monotonic() - start > 5: print("unresolved"); break
        time.sleep(0.02)
"#;

fn lab() -> Option<Lab> {
    if !has_python() {
        return None;
    }
    let kdl = format!(
        r#"{}
project "dnsup"
network "lab" subnet="10.89.41.0/24"
container "web" image="py" {{
    network "lab" ip="10.89.41.10"
    cmd "sleep" "1000"
}}
container "client" image="py" {{
    network "lab"
    cmd "sleep" "1000"
}}
"#,
        images::python("py", "")
    );
    Lab::build(Project::new(&kdl))
}

/// The live process `$ROOT/net/NAME.pid` names.
fn pid_of(root: &Path, name: &str) -> Option<i64> {
    let text = std::fs::read_to_string(root.join("net").join(format!("{name}.pid"))).ok()?;
    let pid: i64 = text.split_whitespace().next()?.parse().ok()?;
    host::alive(pid).then_some(pid)
}

/// `(address, attempts, seconds)` of resolving `web` from `client`.
fn resolve(lab: &Lab) -> (String, u32, f64) {
    let out = lab
        .kiln()
        .args(["exec", "client", "python3", "-c", RESOLVE])
        .run()
        .success()
        .stdout();
    let fields: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(fields.len(), 3, "web did not resolve: {out}");
    (
        fields[0].to_string(),
        fields[1].parse().unwrap(),
        fields[2].parse().unwrap(),
    )
}

/// Waits (at most 5 s) until `name`'s pid file names a live process other than `old`.
fn replaced(root: &Path, name: &str, old: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(pid) = pid_of(root, name).filter(|p| *p != old) {
            return pid;
        }
        assert!(Instant::now() < deadline, "{name} was not started again");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_dns_daemon_is_restarted_and_up_never_trusts_a_dead_one() {
    let Some(lab) = lab() else {
        return;
    };
    let root = lab.path();
    let kiln = |args: &[&str]| lab.kiln().args(args.iter().copied()).run();
    kiln(&["up", "-d"]).success();
    assert_eq!(resolve(&lab).0, "10.89.41.10");

    // The daemon killed: its supervisor starts it again, names resolve with no user action.
    let netd = pid_of(root, "netd").expect("the DNS daemon runs");
    host::signal(netd, Signal::SIGKILL);
    let killed = Instant::now();
    let (address, attempts, _) = resolve(&lab);
    let back = killed.elapsed();
    assert_eq!(address, "10.89.41.10");
    let new = replaced(root, "netd", netd);
    eprintln!("names resolve again {back:.2?} after the SIGKILL ({attempts} attempts)");
    // The issue's bound is a second; a loaded CI machine gets some slack.
    assert!(
        back < Duration::from_secs(3),
        "DNS was back only after {back:?}"
    );

    // The supervisor killed: the daemon starts a new one, which adopts it.
    let netsup = pid_of(root, "netsup").expect("the supervisor runs");
    host::signal(netsup, Signal::SIGKILL);
    replaced(root, "netsup", netsup);
    assert_eq!(
        pid_of(root, "netd"),
        Some(new),
        "the daemon was adopted, not replaced"
    );

    // Both killed at once: nothing is left to restart them…
    let kill_both = || {
        for _ in 0..5 {
            for name in ["netsup", "netd"] {
                if let Some(pid) = pid_of(root, name) {
                    // It may be gone by itself between the look and the signal.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid as i32),
                        Signal::SIGKILL,
                    );
                }
            }
            std::thread::sleep(Duration::from_millis(300));
            if pid_of(root, "netsup").is_none() && pid_of(root, "netd").is_none() {
                return;
            }
        }
        panic!("the services keep coming back");
    };
    kill_both();
    // …and `kiln up` does: it returns only once the daemon answers.
    kiln(&["up", "-d"]).success();
    let (address, attempts, _) = resolve(&lab);
    assert_eq!(
        (address.as_str(), attempts),
        ("10.89.41.10", 1),
        "up returned before DNS answered"
    );

    // A daemon that cannot answer (something else holds the gateway's port 53): up fails,
    // naming the daemon and its log, instead of reporting success.
    kill_both();
    // The squatter is started here (nsenter execs python3 itself), so it is killed by pid.
    let mut squatter = std::process::Command::new("nsenter")
        .arg(format!("--net={}", root.join("net/host.netns").display()))
        .args(["python3", "-c"])
        .arg(
            "import socket, time; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
             s.bind(('10.89.41.1', 53)); print('bound', flush=True); time.sleep(60)",
        )
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut bound = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(squatter.stdout.take().unwrap()),
        &mut bound,
    )
    .unwrap();
    assert_eq!(bound, "bound\n");
    kiln(&["up", "-d"])
        .failure()
        .stderr_contains("the DNS daemon does not answer")
        .stderr_contains("netd.log");
    squatter.kill().unwrap();
    squatter.wait().unwrap();
    kiln(&["up", "-d"]).success();
    assert_eq!(resolve(&lab).0, "10.89.41.10");

    kiln(&["down"]).success();
    assert_eq!(pid_of(root, "netd"), None);
    assert_eq!(pid_of(root, "netsup"), None);
    for pid in [netd, new, netsup] {
        assert!(!host::alive(pid), "process {pid} is left");
    }
    lab.root.assert_clean();
}

/// `kiln rm -f` of every container of a project with engine-carried links: the engine
/// (`__linkd`) has nothing left to carry and goes, and with no network either, so does the
/// supervisor; `kiln down` still finds nothing wrong, and `kiln up` brings all back.
#[test]
fn removing_every_container_takes_the_engine_and_its_supervisor_with_it() {
    let kdl = format!(
        r#"{}
project "gone"
container "a" image="t" {{ cmd "sleep" "1000"; }}
container "b" image="t" {{ cmd "sleep" "1000"; }}
link "a:eth1" "b:eth1" subnet="10.98.0.0/30" {{
    impair delay="1ms" engine="userspace"
}}
"#,
        images::tools("t", "")
    );
    let Some(lab) = Lab::build(Project::new(&kdl)) else {
        return;
    };
    let root = lab.path();
    lab.kiln().args(["up", "-d"]).run().success();
    assert!(
        pid_of(root, "linkd").is_some(),
        "the engine carries the link"
    );
    lab.kiln().args(["rm", "-f", "a", "b"]).run().success();
    crate::harness::wait_for("the engine and its supervisor to go", || {
        pid_of(root, "linkd").is_none() && pid_of(root, "netsup").is_none()
    });
    // Back as declared, link and engine included; then down as usual.
    lab.kiln().args(["up", "-d"]).run().success();
    assert!(
        pid_of(root, "linkd").is_some(),
        "the engine carries the link again"
    );
    lab.kiln().args(["down"]).run().success();
}
