//! Impairments are real, whichever engine carries them (kiln's own where the kernel has no
//! netem; both where it has): their accuracy, measured from inside the containers'
//! namespaces with bounded runs — a 30 ms link's round trip within 5 %, a 10 % loss within
//! 2 points over 5,000 packets, a 10 Mbit/s rate's TCP goodput between 9 and 10 Mbit/s,
//! jitter's spread within 20 % — plus impaired attachments, live changes, the engine coming
//! back after it dies, a WAN between two sites of simulated hosts (`underlay`), and nothing
//! left after `kiln down`.
//!
//! The only timed assertions of the suite: the accuracy figures kiln promises.

use std::net::{Ipv4Addr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::harness::{Lab, Project, Ran, host, is_root, wait_for};

const IMAGE: &str = r#"
image "base" {
    from "scratch"
    host-binary "/bin/sleep"
}
"#;

/// The engines to measure: kiln's always, the kernel's where it has netem.
fn engines() -> Vec<&'static str> {
    let mut engines = vec!["userspace"];
    if kiln::net::impair::netem_available() {
        engines.push("kernel");
    }
    engines
}

/// A project brought up in its own state root (checked for leftovers when it goes).
struct Topology {
    lab: Lab,
}

impl Topology {
    fn up(kdl: &str) -> Option<Topology> {
        let lab = Lab::unbuilt(Project::new(&format!("{IMAGE}{kdl}")))?;
        lab.kiln().args(["up", "-d"]).run().success();
        Some(Topology { lab })
    }

    fn kiln(&self, args: &[&str]) -> Ran {
        self.lab.kiln().args(args.iter().copied()).run()
    }

    fn pid(&self, name: &str) -> i32 {
        let ps = self.lab.root.ps();
        let container = ps.named(name);
        container["pid"]
            .as_i64()
            .unwrap_or_else(|| panic!("{name} is not running: {container}")) as i32
    }

    /// Runs `f` on a thread inside container `name`'s network namespace; sockets it makes
    /// stay there.
    fn inside<T: Send>(&self, name: &str, f: impl FnOnce() -> T + Send) -> T {
        let ns = kiln::net::NetNs::of_pid(self.pid(name)).unwrap();
        kiln::net::run_in(&ns, f).unwrap()
    }

    /// `count` pings `interval` apart from `from` to `to`, after one that resolves ARP:
    /// the round-trip times, in milliseconds.
    fn rtts(&self, from: &str, to: Ipv4Addr, count: u32, interval: Duration) -> Vec<f64> {
        let ping = |count| {
            self.inside(from, || {
                kiln::probe::ping::ping(to, count, interval, Duration::from_secs(1))
            })
            .unwrap()
        };
        wait_for("a first reply", || !ping(1).rtts.is_empty());
        let result = ping(count);
        result
            .rtts
            .iter()
            .map(|d| d.as_secs_f64() * 1000.0)
            .collect()
    }

    fn root(&self) -> String {
        self.lab.path().display().to_string()
    }

    /// `kiln down -v`: the root must then be clean (no engine, no namespace, no port).
    fn down(self) {
        self.kiln(&["down", "-v"]).success();
        assert!(!self.lab.path().join("net/linkd.pid").exists());
        self.lab.root.assert_clean();
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn link(engine: &str, impair: &str) -> String {
    format!(
        r#"
container "a" image="base" {{ cmd "sleep" "infinity"; }}
container "b" image="base" {{ cmd "sleep" "infinity"; }}
link "a:eth1" "b:eth1" subnet="10.97.0.0/30" {{
    impair {impair} engine="{engine}"
}}
"#
    )
}

const A: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(10, 97, 0, 2);

#[test]
fn a_30ms_link_makes_a_60ms_round_trip_and_a_test_expecting_less_fails() {
    for engine in engines() {
        let kdl = format!(
            r#"{}
test "fast" {{
    ping from="a" "10.97.0.2" count=3 max-rtt="5ms"
}}
test "slow" {{
    ping from="a" "10.97.0.2" count=3 max-rtt="100ms"
}}
"#,
            link(engine, r#"delay="30ms""#)
        );
        let Some(t) = Topology::up(&kdl) else {
            return;
        };
        let rtts = t.rtts("a", B, 40, Duration::from_millis(25));
        let median = median(&rtts);
        eprintln!(
            "{engine}: delay=30ms → median rtt {median:.2} ms over {}",
            rtts.len()
        );
        assert!(rtts.len() >= 38, "{rtts:?}");
        assert!((57.0..=63.0).contains(&median), "{engine}: {median} ms");
        // The test that passed wrongly where the kernel has no netem now fails, rightly.
        let tested = t.kiln(&["test", "--no-up"]).failure();
        assert!(
            tested.stdout().contains("1 passed, 1 failed"),
            "{}",
            tested.stdout()
        );
        let links = t
            .kiln(&["network", "links", "--format", "json"])
            .success()
            .json();
        assert_eq!(links[0]["carried_by"], engine, "{links}");
        if engine == "userspace" {
            let there = &links[0]["engine"]["directions"][0];
            assert_eq!(there["from"], "a:eth1", "{links}");
            assert!(there["sent"].as_u64().unwrap() >= 40, "{links}");
            // What is still waiting for its departure (a stray packet may be).
            assert!(there["queued"].is_u64(), "{links}");
        }
        t.down();
    }
}

#[test]
fn a_10_percent_loss_loses_10_percent_of_5000_packets() {
    for engine in engines() {
        let Some(t) = Topology::up(&link(engine, r#"loss="10%""#)) else {
            return;
        };
        // Resolve ARP first (it crosses the same lossy link).
        let _ = t.rtts("a", B, 1, Duration::from_millis(10));
        let receiver = t.inside("b", || UdpSocket::bind((B, 9000))).unwrap();
        receiver
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        // Room for every datagram even if the counting thread is slow to run: only the link
        // may lose them.
        let room: libc::c_int = 16 << 20;
        // SAFETY: a valid c_int of the given length, on a socket this test owns.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&receiver),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                (&raw const room).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        let sender = t.inside("a", || UdpSocket::bind((A, 0))).unwrap();
        const N: u32 = 5000;
        let counting = std::thread::spawn(move || {
            let mut seen = vec![false; N as usize];
            let mut buffer = [0u8; 64];
            while let Ok(n) = receiver.recv(&mut buffer) {
                if n >= 4 {
                    let seq = u32::from_be_bytes(buffer[..4].try_into().unwrap());
                    if let Some(s) = seen.get_mut(seq as usize) {
                        *s = true;
                    }
                }
            }
            seen.iter().filter(|s| **s).count()
        });
        let start = Instant::now();
        for seq in 0..N {
            let mut datagram = [0u8; 64];
            datagram[..4].copy_from_slice(&seq.to_be_bytes());
            sender.send_to(&datagram, (B, 9000)).unwrap();
            // 200 µs apart: a second in all, no queue anywhere.
            let due = start + Duration::from_micros(200) * (seq + 1);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let received = counting.join().unwrap();
        let loss = 100.0 * f64::from(N - received as u32) / f64::from(N);
        eprintln!("{engine}: loss=10% → {loss:.2}% of {N} lost");
        assert!((8.0..=12.0).contains(&loss), "{engine}: {loss}%");
        if engine == "userspace" {
            let links = t
                .kiln(&["network", "links", "--format", "json"])
                .success()
                .json();
            let there = &links[0]["engine"]["directions"][0];
            let counted = there["lost"].as_f64().unwrap() / there["received"].as_f64().unwrap();
            assert!((0.08..=0.12).contains(&counted), "{links}");
        }
        t.down();
    }
}

#[test]
fn a_10mbit_link_gives_tcp_between_9_and_10_mbits() {
    for engine in engines() {
        let Some(t) = Topology::up(&link(engine, r#"rate="10mbit""#)) else {
            return;
        };
        let _ = t.rtts("a", B, 1, Duration::from_millis(10));
        let listener = t.inside("b", || TcpListener::bind((B, 9001))).unwrap();
        let stream = t.inside("a", || TcpStream::connect((B, 9001))).unwrap();
        let (incoming, _) = listener.accept().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let writer = {
            let stop = Arc::clone(&stop);
            let mut stream = stream;
            std::thread::spawn(move || {
                use std::io::Write;
                let chunk = vec![0x5a; 64 * 1024];
                stream
                    .set_write_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                while !stop.load(Ordering::SeqCst) {
                    let _ = stream.write(&chunk);
                }
            })
        };
        // Goodput at the receiver from 1 s to 4 s (after slow start and the queue fill).
        let mut incoming = incoming;
        incoming
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let start = Instant::now();
        let mut buffer = vec![0u8; 256 * 1024];
        let (mut total, mut at_1s) = (0u64, None);
        while start.elapsed() < Duration::from_secs(4) {
            use std::io::Read;
            match incoming.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
            if at_1s.is_none() && start.elapsed() >= Duration::from_secs(1) {
                at_1s = Some((total, Instant::now()));
            }
        }
        stop.store(true, Ordering::SeqCst);
        let (from, since) = at_1s.expect("a second of data");
        let mbits = (total - from) as f64 * 8.0 / since.elapsed().as_secs_f64() / 1e6;
        drop(incoming);
        writer.join().unwrap();
        eprintln!("{engine}: rate=10mbit → TCP goodput {mbits:.2} Mbit/s");
        assert!((9.0..=10.0).contains(&mbits), "{engine}: {mbits} Mbit/s");
        t.down();
    }
}

#[test]
fn jitter_spreads_round_trips_as_declared() {
    for engine in engines() {
        let Some(t) = Topology::up(&link(engine, r#"delay="30ms" jitter="10ms""#)) else {
            return;
        };
        let rtts = t.rtts("a", B, 150, Duration::from_millis(10));
        let (mean, sd) = mean_sd(&rtts);
        let (min, max) = rtts
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        // Two independent uniform delays of 30 ± 10 ms: mean 60, sd 10·√2/√3 = 8.16 ms.
        let expected_sd = 10.0 * 2f64.sqrt() / 3f64.sqrt();
        eprintln!(
            "{engine}: 30ms ±10ms → rtt mean {mean:.2}, sd {sd:.2} (expected {expected_sd:.2}), \
             min {min:.2}, max {max:.2}"
        );
        assert!(rtts.len() >= 145);
        assert!((57.0..=63.0).contains(&mean), "{engine}: mean {mean}");
        assert!(
            (expected_sd * 0.8..=expected_sd * 1.2).contains(&sd),
            "{engine}: sd {sd}"
        );
        // Each way stays within 20..40 ms; a busy machine may add a little now and then.
        let outside = rtts.iter().filter(|r| !(39.5..=81.0).contains(*r)).count();
        assert!(
            outside * 50 <= rtts.len(),
            "{engine}: {min}..{max}, {outside} outside"
        );
        t.down();
    }
}

#[test]
fn an_impaired_attachment_changes_live_and_survives_the_engine_dying() {
    for engine in engines() {
        let kdl = format!(
            r#"
network "back" subnet="10.88.7.0/24"
container "a" image="base" {{
    network "back" ip="10.88.7.10" {{
        impair delay="20ms" engine="{engine}"
    }}
    cmd "sleep" "infinity"
}}
container "b" image="base" {{
    network "back" ip="10.88.7.11"
    cmd "sleep" "infinity"
}}
"#
        );
        let Some(t) = Topology::up(&kdl) else {
            return;
        };
        let a = Ipv4Addr::new(10, 88, 7, 10);
        // Both ways through a's attachment: 2 × 20 ms.
        let rtt = median(&t.rtts("b", a, 20, Duration::from_millis(25)));
        eprintln!("{engine}: attachment delay=20ms → median rtt {rtt:.2} ms");
        assert!((38.0..=42.0).contains(&rtt), "{engine}: {rtt}");
        let inspect = t
            .kiln(&["network", "inspect", "back", "--format", "json"])
            .success()
            .json();
        let member = &inspect["members"][0];
        let shown = member["impairment"].as_str().unwrap_or_default();
        assert!(shown.starts_with("20ms ("), "{inspect}");
        assert!(shown.contains(engine), "{inspect}");

        t.kiln(&["network", "impair", "a:eth0", "--delay", "5ms"])
            .success()
            .stdout_contains("a:eth0: 5ms");
        let rtt = median(&t.rtts("b", a, 20, Duration::from_millis(25)));
        assert!((8.5..=11.5).contains(&rtt), "{engine}: {rtt}");

        if engine == "userspace" {
            // The engine dies: the root's network supervisor starts it again, with the
            // change.
            let root = t.root();
            let worker = pid_of(&format!("{root} __linkd"));
            host::signal(i64::from(worker), nix::sys::signal::Signal::SIGKILL);
            wait_for("a new engine", || {
                let now = pid_of_maybe(&format!("{root} __linkd"));
                now.is_some_and(|p| p != worker)
            });
            let rtt = median(&t.rtts("b", a, 10, Duration::from_millis(25)));
            assert!((8.5..=11.5).contains(&rtt), "after a restart: {rtt}");
        }
        t.down();
    }
}

#[test]
fn a_link_moves_to_the_engine_when_impaired_live() {
    if !is_root() {
        return;
    }
    // An unimpaired link is a plain veth pair; impairing it on a kernel without netem (or
    // with --engine userspace) makes it again through kiln's engine.
    let Some(t) = Topology::up(
        r#"
container "a" image="base" { cmd "sleep" "infinity"; }
container "b" image="base" { cmd "sleep" "infinity"; }
link "a:eth1" "b:eth1" subnet="10.97.0.0/30"
"#,
    ) else {
        return;
    };
    let links = t
        .kiln(&["network", "links", "--format", "json"])
        .success()
        .json();
    assert!(links[0]["carried_by"].is_null(), "{links}");
    t.kiln(&[
        "network",
        "impair",
        "b:eth1",
        "--delay",
        "15ms",
        "--engine",
        "userspace",
    ])
    .success()
    .stdout_contains("(userspace engine)");
    let rtt = median(&t.rtts("a", B, 20, Duration::from_millis(25)));
    assert!((28.5..=31.5).contains(&rtt), "{rtt}");
    let links = t
        .kiln(&["network", "links", "--format", "json"])
        .success()
        .json();
    assert_eq!(links[0]["carried_by"], "userspace", "{links}");
    // Settings the engine cannot honour are refused before anything changes.
    t.kiln(&["network", "impair", "b:eth1", "--reorder", "5%"])
        .failure()
        .stderr_contains("reordering needs a delay");
    t.kiln(&["network", "impair", "b:eth1", "--clear"])
        .success()
        .stdout_contains("no impairment");
    let rtt = median(&t.rtts("a", B, 10, Duration::from_millis(25)));
    assert!(rtt < 5.0, "{rtt}");
    t.down();
}

#[test]
fn a_link_goes_down_and_up_on_every_engine() {
    // Carrier off and on: nothing passes while an end is down, either way, and the link
    // carries again once it is up, with its impairment.
    // `plain`: an unimpaired link, one kernel veth pair, on every kernel.
    for engine in engines().into_iter().chain(["plain"]) {
        let kdl = if engine == "plain" {
            link("auto", r#"delay="5ms""#)
                .replace("{\n    impair delay=\"5ms\" engine=\"auto\"\n}", "")
        } else {
            link(engine, r#"delay="5ms""#)
        };
        assert_eq!(engine == "plain", !kdl.contains("impair"), "{kdl}");
        let Some(t) = Topology::up(&kdl) else {
            return;
        };
        let replies = |from: &str, to: Ipv4Addr| {
            t.inside(from, || {
                kiln::probe::ping::ping(
                    to,
                    3,
                    Duration::from_millis(50),
                    Duration::from_millis(300),
                )
            })
            // From the down end there is no route at all: "network unreachable".
            .map_or(0, |p| p.rtts.len())
        };
        assert!(!t.rtts("a", B, 3, Duration::from_millis(20)).is_empty());
        t.kiln(&["network", "impair", "a:eth1", "--down"])
            .success()
            .stdout_contains("a:eth1: carrier off");
        assert_eq!(
            replies("b", A),
            0,
            "{engine}: b reached a through a down link"
        );
        assert_eq!(
            replies("a", B),
            0,
            "{engine}: a reached b through a down link"
        );
        t.kiln(&["network", "impair", "a:eth1", "--up"])
            .success()
            .stdout_contains("a:eth1: carrier on");
        let rtt = median(&t.rtts("a", B, 5, Duration::from_millis(20)));
        if engine != "plain" {
            assert!(rtt >= 10.0, "{engine}: the impairment stays: {rtt} ms");
        }
        // An interface the container does not have, and the flags that do not go together.
        t.kiln(&["network", "impair", "a:eth9", "--down"])
            .failure()
            .stderr_contains("no interface named eth9");
        t.kiln(&["network", "impair", "a:eth1", "--down", "--delay", "5ms"])
            .code(2)
            .stderr_contains("cannot be used with");
        t.down();
    }
}

#[test]
fn a_test_stops_a_container_on_its_timeline_and_brings_it_back() {
    // `stop` takes b away for a second; `kiln test` waits for a to lose it and find it
    // again (b back, with its link, as `kiln up` brings it), and shows the timeline.
    let kdl = format!(
        r#"{}
test "b comes back" {{
    fault at="0s" for="1s" {{
        stop "b"
    }}
    eventually within="5s" {{
        ping from="a" "10.97.0.2" count=1 expect="unreachable"
    }}
    eventually within="30s" {{
        ping from="a" "10.97.0.2" count=1
    }}
}}
test "too late" {{
    fault at="1h" {{
        kill "b"
    }}
    ping from="a" "10.97.0.2" count=1
}}
"#,
        link("userspace", r#"delay="1ms""#)
    );
    let Some(t) = Topology::up(&kdl) else {
        return;
    };
    let before = t.pid("b");
    let tested = t.kiln(&["test", "--no-up", "b comes back"]).success();
    assert!(
        tested
            .stdout()
            .contains("⚡ fault at=0s for=1s { stop b } (from 0."),
        "{}",
        tested.stdout()
    );
    assert!(
        tested.stdout().contains("2 passed, 0 failed"),
        "{}",
        tested.stdout()
    );
    assert_ne!(t.pid("b"), before, "b was started again");
    let late = t.kiln(&["test", "--no-up", "too late"]).failure();
    assert!(
        late.stdout().contains("never happened"),
        "{}",
        late.stdout()
    );
    assert!(
        late.stdout().contains("1 passed, 1 failed"),
        "{}",
        late.stdout()
    );
    t.down();
}

/// The pid of the process (of this test's root) whose command line ends with `needle`.
fn pid_of_maybe(needle: &str) -> Option<i32> {
    let root = needle.split_whitespace().next()?;
    host::processes_naming(std::path::Path::new(root))
        .into_iter()
        .find(|line| line.trim_end().ends_with(needle))
        .and_then(|line| line.split_once(':')?.0.parse().ok())
}

fn pid_of(needle: &str) -> i32 {
    pid_of_maybe(needle).unwrap_or_else(|| panic!("no process {needle}"))
}

#[test]
fn impair_settings_are_checked_before_anything_runs() {
    let project = Project::new(&format!(
        "{IMAGE}{}",
        r#"
container "a" image="base"
container "b" image="base"
link "a:eth1" "b:eth1" {
    impair delay="10ms" distribution="normal" gap=3 engine="userspace"
}
"#
    ));
    let checked = project.kiln_here().args(["check"]).run().failure();
    let stderr = checked.stderr();
    assert!(
        stderr.contains("`distribution` needs a `jitter`"),
        "{stderr}"
    );
    assert!(stderr.contains("`gap` needs a `reorder`"), "{stderr}");
}

#[test]
fn an_underlay_link_delays_the_traffic_between_two_sites_and_no_other() {
    let kdl = r#"
host "e1" address="192.0.2.1" site="east"
host "e2" address="192.0.2.2" site="east"
host "w1" address="198.51.100.1" site="west"
underlay {
    link "east" "west" { impair delay="30ms"; }
}
network "mesh" subnet="10.77.0.0/16" driver="overlay"
container "a" image="base" host="e1" { network "mesh" ip="10.77.0.10"; cmd "sleep" "infinity"; }
container "b" image="base" host="e2" { network "mesh" ip="10.77.0.11"; cmd "sleep" "infinity"; }
container "c" image="base" host="w1" { network "mesh" ip="10.77.0.12"; cmd "sleep" "infinity"; }
"#;
    let Some(t) = Topology::up(kdl) else {
        return;
    };
    let (b, c) = (Ipv4Addr::new(10, 77, 0, 11), Ipv4Addr::new(10, 77, 0, 12));
    // Across the sites, both ways: 30 ms each way.
    for (from, to) in [("a", c), ("c", b)] {
        let rtts = t.rtts(from, to, 30, Duration::from_millis(25));
        let median = median(&rtts);
        eprintln!("underlay delay=30ms: {from} → {to}: median rtt {median:.2} ms");
        assert!(rtts.len() >= 28, "{rtts:?}");
        assert!(
            (57.0..=63.0).contains(&median),
            "{from} → {to}: {median} ms"
        );
    }
    // Within a site: the wire, unimpaired.
    let rtts = t.rtts("a", b, 20, Duration::from_millis(10));
    let within = median(&rtts);
    eprintln!("within a site: median rtt {within:.2} ms");
    assert!(within < 10.0, "{within} ms");
    let links = t
        .kiln(&["network", "links", "--format", "json"])
        .success()
        .json();
    let underlay: Vec<&serde_json::Value> = links
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["underlay"] == true)
        .collect();
    assert_eq!(underlay.len(), 2, "{links}");
    let there = &underlay[0]["engine"]["directions"][0];
    assert_eq!(there["from"], "e1", "{links}");
    assert!(there["sent"].as_u64().unwrap() >= 30, "{links}");
    // The link taken out of the file: `kiln up` puts the pairs back on the wire and stops
    // the WAN's engine, and the containers stay as they are.
    let underlay = r#"underlay {
    link "east" "west" { impair delay="30ms"; }
}"#;
    assert!(kdl.contains(underlay));
    t.lab
        .project
        .write("kiln.kdl", &format!("{IMAGE}{}", kdl.replace(underlay, "")));
    let again = t.kiln(&["up", "-d"]).success();
    assert!(!again.stderr().contains("removed"), "{}", again.stderr());
    let rtts = t.rtts("a", c, 10, Duration::from_millis(10));
    assert!(median(&rtts) < 10.0, "{rtts:?}");
    let links = t
        .kiln(&["network", "links", "--format", "json"])
        .success()
        .json();
    assert!(
        !links
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["underlay"] == true),
        "{links}"
    );
    let root = t.lab.path().to_path_buf();
    let wan_roots = || {
        std::fs::read_dir(root.join("hosts"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|project| project.path().join("underlay/wan").exists())
            .count()
    };
    assert_eq!(wan_roots(), 0);
    t.down();
    assert!(!root.join("hosts").exists());
}
