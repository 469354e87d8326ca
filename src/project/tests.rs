use std::path::Path;

use super::*;
use crate::runtime::supervise::RestartPolicy;
use crate::spec::model::{Condition, ContainerKind};
use crate::spec::{Options, RealFs, load_source};

fn plan_of(text: &str) -> ProjectPlan {
    let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    plan(&loaded.project, Path::new("/srv/proj")).unwrap()
}

const PROJECT: &str = r#"
project "demo"
image "base" {
    from "scratch"
}
network "front" subnet="10.89.0.0/24"
container "db" image="base" {
    network "front"
    memory "64MiB"
    pids 32
    cpus 0.5
    volume "./data" "/data"
    restart "on-failure" max=2
    health interval="1s" {
        tcp "127.0.0.1:5432"
    }
    cmd "sleep" "infinity"
}
container "app" image="base" replicas=2 {
    network "front"
    depends-on "db" condition="healthy"
    env MODE="x"
    cmd "sleep" "infinity"
}
job "seed" image="base" {
    depends-on "db"
    restart "always"
    cmd "true"
}
container "web" image="base" {
    depends-on "app"
    hostname "www"
    entrypoint "sh" "-c"
    cmd "sleep infinity"
}
"#;

#[test]
fn replicas_expand_in_order_and_share_the_service_name() {
    let plan = plan_of(PROJECT);
    let names: Vec<_> = plan.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["db", "app-1", "app-2", "seed", "web"]);
    assert_eq!(plan.instances[1].service, "app");
    assert_eq!(plan.instances[2].service, "app");
    assert_eq!(plan.project, "demo");
}

#[test]
fn waves_follow_depends_on() {
    let plan = plan_of(PROJECT);
    let waves: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| w.iter().map(|&i| plan.instances[i].name.as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        vec![vec!["db"], vec!["app-1", "app-2", "seed"], vec!["web"]]
    );
    assert_eq!(
        plan.instances[1].depends_on,
        vec![("db".to_string(), Condition::Healthy)]
    );
}

#[test]
fn options_come_from_the_node() {
    let plan = plan_of(PROJECT);
    let db = &plan.instances[0];
    assert_eq!(db.options.memory, Some(64 * 1024 * 1024));
    assert_eq!(db.options.pids_limit, Some(32));
    assert_eq!(db.options.cpus, Some(0.5));
    assert_eq!(db.options.args, ["sleep", "infinity"]);
    assert_eq!(db.options.hostname.as_deref(), Some("db"));
    assert_eq!(db.restart, RestartPolicy::OnFailure { max: Some(2) });
    assert_eq!(
        db.volumes,
        [VolumePlan::Bind {
            source: "/srv/proj/data".into(),
            target: "/data".into(),
            read_only: false
        }]
    );
    let app = &plan.instances[1];
    assert_eq!(app.options.env, [("MODE".to_string(), "x".to_string())]);
    assert_eq!(app.options.hostname.as_deref(), Some("app-1"));
    let seed = &plan.instances[3];
    assert_eq!(seed.kind, ContainerKind::Job);
    assert_eq!(seed.restart, RestartPolicy::No, "a job never restarts");
    let web = &plan.instances[4];
    assert_eq!(web.options.hostname.as_deref(), Some("www"));
    assert_eq!(
        web.options.entrypoint.as_deref(),
        Some(&["sh".to_string(), "-c".to_string()][..])
    );
}

#[test]
fn fingerprints_ignore_layout_and_see_meaning() {
    let base = plan_of(PROJECT);
    let reformatted =
        plan_of(&PROJECT.replace("    memory \"64MiB\"\n", "\n\n    memory   \"64MiB\"\n"));
    assert_eq!(
        base.instances[0].fingerprint,
        reformatted.instances[0].fingerprint
    );
    let scaled = plan_of(&PROJECT.replace("replicas=2", "replicas=3"));
    assert_eq!(
        base.instances[1].fingerprint, scaled.instances[1].fingerprint,
        "scaling keeps the replicas that stay"
    );
    let changed = plan_of(&PROJECT.replace("64MiB", "65MiB"));
    assert_ne!(
        base.instances[0].fingerprint,
        changed.instances[0].fingerprint
    );
    assert_eq!(
        base.instances[1].fingerprint, changed.instances[1].fingerprint,
        "other containers keep theirs"
    );
}

mod assertions {
    use std::net::IpAddr;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use crate::project::assert::*;
    use crate::spec::model::FaultAction;
    use crate::spec::{Options, RealFs, load_source};

    struct NoFaults;

    impl Faults for NoFaults {
        fn begin(&self, fault: &FaultAction) -> Result<(), String> {
            panic!("no fault expected: {fault:?}")
        }
        fn end(&self, fault: &FaultAction) -> Result<(), String> {
            panic!("no fault expected: {fault:?}")
        }
    }

    /// A link that is down while a fault holds it: `ping … "r2"` gets no reply then.
    #[derive(Default)]
    struct Flaky {
        down: AtomicBool,
        log: Mutex<Vec<String>>,
    }

    impl Faults for Flaky {
        fn begin(&self, fault: &FaultAction) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("begin {fault:?}"));
            match fault {
                FaultAction::LinkDown { .. } => self.down.store(true, Ordering::SeqCst),
                FaultAction::Kill { .. } => return Err("kill refused".into()),
                FaultAction::Stop { .. }
                | FaultAction::Pause { .. }
                | FaultAction::Impair { .. } => {}
            }
            Ok(())
        }
        fn end(&self, fault: &FaultAction) -> Result<(), String> {
            self.log.lock().unwrap().push(format!("end {fault:?}"));
            if let FaultAction::LinkDown { .. } = fault {
                self.down.store(false, Ordering::SeqCst);
            }
            Ok(())
        }
    }

    impl Prober for Flaky {
        fn http(&self, _: &str, _: &str, _: Duration) -> Result<HttpSeen, String> {
            unreachable!()
        }
        fn tcp(&self, _: &str, _: &str, _: Duration) -> Result<TcpSeen, String> {
            unreachable!()
        }
        fn ping(&self, _: &str, _: &str, count: u32) -> Result<PingSeen, String> {
            let replies = if self.down.load(Ordering::SeqCst) {
                0
            } else {
                count
            };
            Ok(PingSeen {
                address: "10.0.0.2".parse().unwrap(),
                sent: count,
                rtts: vec![Duration::from_millis(1); replies as usize],
            })
        }
        fn dns(&self, _: &str, _: &str) -> Result<Vec<IpAddr>, String> {
            unreachable!()
        }
        fn exec(&self, _: &str, _: &[String]) -> Result<ExecSeen, String> {
            unreachable!()
        }
    }

    const TIMELINE: &str = r#"
image "base" {
    from "scratch"
}
container "r1" image="base" { cmd "true"; }
container "r2" image="base" { cmd "true"; }
test "recovers" {
    fault at="0s" for="300ms" {
        link-down "r1:eth1"
    }
    fault at="0s" {
        stop "r2"
    }
    eventually within="2s" {
        ping from="r1" "r2" count=1 expect="unreachable"
    }
    eventually within="5s" {
        ping from="r1" "r2" count=1
    }
}
test "never" {
    fault at="1h" {
        kill "r2"
    }
    ping from="r1" "r2" count=1
}
test "refused" {
    fault at="0s" {
        kill "r2"
    }
    eventually within="100ms" {
        ping from="r1" "r2" count=1 expect="unreachable"
    }
}
"#;

    fn timeline(name: &str, interrupted: bool) -> (Vec<Verdict>, Vec<String>) {
        let loaded = load_source("kiln.kdl", None, TIMELINE, &RealFs, &Options::default());
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        let flaky = Flaky::default();
        let verdicts = run_tests(
            &loaded.project,
            &[name.to_string()],
            &flaky,
            &flaky,
            &AtomicBool::new(interrupted),
            &mut |_| {},
        )
        .unwrap();
        (verdicts, flaky.log.into_inner().unwrap())
    }

    #[test]
    fn faults_happen_on_their_timeline_and_are_undone() {
        let (verdicts, log) = timeline("recovers", false);
        let shown: Vec<(Kind, bool)> = verdicts.iter().map(|v| (v.kind, v.passed)).collect();
        assert_eq!(
            shown,
            [
                (Kind::Assertion, true),
                (Kind::Assertion, true),
                (Kind::Fault, true),
                (Kind::Fault, true),
            ],
            "{verdicts:#?}"
        );
        assert!(verdicts[1].observed.contains("tries"), "{verdicts:#?}");
        assert_eq!(
            verdicts[2].assertion,
            "fault at=0s for=300ms { link-down r1:eth1 }"
        );
        assert!(verdicts[3].observed.starts_with("from 0."), "{verdicts:#?}");
        // The link came back on its own time, the stopped container with the test's end.
        assert_eq!(log.len(), 4, "{log:?}");
        assert!(
            log.iter().filter(|l| l.starts_with("end")).count() == 2,
            "{log:?}"
        );
        assert!(log[3].starts_with("end Stop"), "{log:?}");
    }

    #[test]
    fn a_fault_that_never_happens_or_fails_fails_the_test() {
        let (verdicts, log) = timeline("never", false);
        assert!(verdicts[0].passed);
        assert!(!verdicts[1].passed);
        assert!(
            verdicts[1].observed.contains("never happened"),
            "{verdicts:#?}"
        );
        assert!(log.is_empty(), "{log:?}");
        let (verdicts, _) = timeline("refused", false);
        assert_eq!(verdicts[1].kind, Kind::Fault);
        assert_eq!(verdicts[1].observed, "kill refused");
        assert!(!verdicts[1].passed);
    }

    #[test]
    fn an_interrupted_test_checks_nothing_more() {
        let (verdicts, log) = timeline("recovers", true);
        assert!(
            verdicts[0].observed.contains("interrupted"),
            "{verdicts:#?}"
        );
        assert!(!verdicts[0].passed);
        assert!(log.is_empty(), "{log:?}");
    }

    /// Answers from a fixed world: web serves "hello" with 200, resolves to 10.0.0.2;
    /// port 81 refuses, port 82 times out; ping RTT 2 ms; `cat /x` prints "x\n".
    struct World;

    impl Prober for World {
        fn http(&self, from: &str, url: &str, _: Duration) -> Result<HttpSeen, String> {
            assert_eq!(from, "client");
            if url.contains("missing") {
                return Ok(HttpSeen {
                    status: 404,
                    body: "not found".into(),
                });
            }
            Ok(HttpSeen {
                status: 200,
                body: "hello from web".into(),
            })
        }
        fn tcp(&self, _: &str, address: &str, _: Duration) -> Result<TcpSeen, String> {
            Ok(match address.rsplit(':').next() {
                Some("81") => TcpSeen::Refused,
                Some("82") => TcpSeen::Timeout,
                _ => TcpSeen::Open,
            })
        }
        fn ping(&self, _: &str, target: &str, count: u32) -> Result<PingSeen, String> {
            let replies = if target == "nowhere" { 0 } else { count };
            Ok(PingSeen {
                address: "10.0.0.2".parse().unwrap(),
                sent: count,
                rtts: vec![Duration::from_millis(2); replies as usize],
            })
        }
        fn dns(&self, _: &str, name: &str) -> Result<Vec<IpAddr>, String> {
            Ok(match name {
                "web" => vec!["10.0.0.2".parse().unwrap()],
                _ => vec![],
            })
        }
        fn exec(&self, container: &str, command: &[String]) -> Result<ExecSeen, String> {
            if container == "gone" {
                return Err("container gone is not running".into());
            }
            Ok(ExecSeen {
                code: if command == ["false"] { 1 } else { 0 },
                stdout: if command == ["cat", "/x"] {
                    "x\n".into()
                } else {
                    String::new()
                },
            })
        }
    }

    const TESTS: &str = r#"
image "base" {
    from "scratch"
}
container "client" image="base" { cmd "true"; }
container "web" image="base" { cmd "true"; }
container "gone" image="base" { cmd "true"; }
test "good" {
    http from="client" "http://web:8080/" status=200 contains="hello"
    dns from="client" "web" expect="10.0.0.2"
    dns from="client" "nothing" expect="nxdomain"
    ping from="client" "web" count=3 max-rtt="50ms"
    ping from="client" "nowhere" expect="unreachable"
    tcp from="client" "web:80" expect="open"
    tcp from="client" "web:81" expect="refused"
    tcp from="client" "web:82" expect="timeout"
    exec "web" "cat" "/x" stdout="x\n"
    exec "web" "false" exit=1
}
test "bad" {
    http from="client" "http://web:8080/missing" status=200
    dns from="client" "web" expect="10.0.0.9"
    ping from="client" "web" count=2 max-rtt="1ms"
    tcp from="client" "web:81" expect="open"
    exec "web" "cat" "/x" stdout="y\n"
    exec "gone" "true"
}
"#;

    fn verdicts(names: &[&str]) -> Vec<Verdict> {
        let loaded = load_source("kiln.kdl", None, TESTS, &RealFs, &Options::default());
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut seen = 0;
        let all = run_tests(
            &loaded.project,
            &names,
            &World,
            &NoFaults,
            &AtomicBool::new(false),
            &mut |_| seen += 1,
        )
        .unwrap();
        assert_eq!(seen, all.len(), "every verdict is reported as it comes");
        all
    }

    #[test]
    fn assertions_that_hold_pass() {
        let good = verdicts(&["good"]);
        assert_eq!(good.len(), 10);
        for v in &good {
            assert!(v.passed, "{} failed: {}", v.assertion, v.observed);
        }
        assert_eq!(good[0].observed, "status 200");
        assert_eq!(good[2].observed, "resolved to NXDOMAIN");
    }

    #[test]
    fn failures_say_what_was_seen() {
        let bad = verdicts(&["bad"]);
        assert!(bad.iter().all(|v| !v.passed), "{bad:#?}");
        let observed: Vec<&str> = bad.iter().map(|v| v.observed.as_str()).collect();
        assert_eq!(
            observed,
            [
                "status 404, body \"not found\"",
                "resolved to 10.0.0.2",
                "2 replies of 2 from 10.0.0.2, max rtt 2.0 ms",
                "refused",
                "exit 0, stdout \"x\\n\"",
                "container gone is not running",
            ]
        );
        assert_eq!(
            bad[0].assertion,
            "http from=client http://web:8080/missing status=200"
        );
    }

    #[test]
    fn names_select_tests_and_unknown_ones_are_refused() {
        assert_eq!(verdicts(&[]).len(), 16);
        let loaded = load_source("kiln.kdl", None, TESTS, &RealFs, &Options::default());
        let err = run_tests(
            &loaded.project,
            &["ugly".into()],
            &World,
            &NoFaults,
            &AtomicBool::new(false),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.known, "good, bad");
    }

    /// A prober whose `http` waits (at most 30 s) until another `http` is in progress too,
    /// and whose `exec` notes whether another exec of the same container is running.
    #[derive(Default)]
    struct Overlaps {
        inside: std::sync::Mutex<(u32, bool)>,
        changed: std::sync::Condvar,
        execs: std::sync::atomic::AtomicU32,
        exec_overlap: std::sync::atomic::AtomicBool,
    }

    impl Prober for Overlaps {
        fn http(&self, _: &str, _: &str, _: Duration) -> Result<HttpSeen, String> {
            let mut inside = self.inside.lock().unwrap();
            inside.0 += 1;
            if inside.0 >= 2 {
                inside.1 = true;
            }
            self.changed.notify_all();
            let (mut inside, _) = self
                .changed
                .wait_timeout_while(inside, Duration::from_secs(30), |i| !i.1)
                .unwrap();
            inside.0 -= 1;
            Ok(HttpSeen {
                status: if inside.1 { 200 } else { 500 },
                body: String::new(),
            })
        }
        fn tcp(&self, _: &str, _: &str, _: Duration) -> Result<TcpSeen, String> {
            Ok(TcpSeen::Open)
        }
        fn ping(&self, _: &str, _: &str, _: u32) -> Result<PingSeen, String> {
            Err("unused".into())
        }
        fn dns(&self, _: &str, _: &str) -> Result<Vec<IpAddr>, String> {
            Err("unused".into())
        }
        fn exec(&self, _: &str, _: &[String]) -> Result<ExecSeen, String> {
            use std::sync::atomic::Ordering;
            if self.execs.fetch_add(1, Ordering::SeqCst) > 0 {
                self.exec_overlap.store(true, Ordering::SeqCst);
            }
            std::thread::sleep(Duration::from_millis(5));
            self.execs.fetch_sub(1, Ordering::SeqCst);
            Ok(ExecSeen {
                code: 0,
                stdout: String::new(),
            })
        }
    }

    #[test]
    fn independent_assertions_overlap_execs_of_one_container_do_not_and_order_holds() {
        let text = r#"
image "base" {
    from "scratch"
}
container "client" image="base" { cmd "true"; }
container "web" image="base" { cmd "true"; }
test "first" {
    http from="client" "http://web:8080/a" status=200
    exec "web" "one"
    tcp from="client" "web:80" expect="open"
    exec "web" "two"
}
test "second" {
    exec "web" "three"
    http from="client" "http://web:8080/b" status=200
}
"#;
        let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
        assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
        let prober = Overlaps::default();
        let mut reported = Vec::new();
        let all = run_tests(
            &loaded.project,
            &[],
            &prober,
            &NoFaults,
            &AtomicBool::new(false),
            &mut |v: &Verdict| reported.push(v.assertion.clone()),
        )
        .unwrap();
        // The two http assertions only pass when they were in progress at the same time.
        assert!(all.iter().all(|v| v.passed), "{all:#?}");
        assert!(
            !prober
                .exec_overlap
                .load(std::sync::atomic::Ordering::SeqCst)
        );
        let described: Vec<String> = all.iter().map(|v| v.assertion.clone()).collect();
        assert_eq!(reported, described, "reported in the order returned");
        assert_eq!(
            described,
            [
                "http from=client http://web:8080/a status=200",
                "exec \"web\" \"one\"",
                "tcp from=client web:80 expect=\"open\"",
                "exec \"web\" \"two\"",
                "exec \"web\" \"three\"",
                "http from=client http://web:8080/b status=200",
            ]
        );
        assert_eq!(all[4].test, "second");
    }

    #[test]
    fn junit_is_escaped_and_counts_failures() {
        let mut all = verdicts(&[]);
        all[0].test = "a <b> & \"c\"\u{1}".into();
        let xml = junit("p", &all, |_| "kiln.kdl:1:1".into());
        assert!(xml.contains("tests=\"16\" failures=\"6\""), "{xml}");
        assert!(xml.contains("classname=\"a &lt;b&gt; &amp; &quot;c&quot;\u{FFFD}\""));
        assert_eq!(xml.matches("<failure ").count(), 6);
        assert_eq!(xml.matches("<testcase ").count(), 16);
    }
}

#[test]
fn impairments_from_the_spec_convert_bits_to_bytes() {
    use crate::spec::model::Impairment;
    use crate::spec::source::{Span, Spanned};
    use crate::spec::units::{Duration as SpecDuration, Percent, Rate};
    let span = Span::default();
    let impair = Impairment {
        delay: Some(Spanned::new(SpecDuration::parse("20ms").unwrap(), span)),
        jitter: Some(Spanned::new(SpecDuration::parse("5ms").unwrap(), span)),
        loss: Some(Spanned::new(Percent(1.0), span)),
        rate: Some(Spanned::new(Rate::parse("10mbit").unwrap(), span)),
        duplicate: Some(Spanned::new(Percent(0.5), span)),
        ..Impairment::default()
    };
    let netem = super::plan::netem(&impair);
    assert_eq!(netem.delay, std::time::Duration::from_millis(20));
    assert_eq!(netem.jitter, std::time::Duration::from_millis(5));
    assert_eq!(netem.loss_percent, 1.0);
    assert_eq!(netem.rate_bytes_per_sec, Some(1_250_000));
    assert_eq!(netem.corrupt_percent, 0.0);
    assert_eq!(netem.duplicate_percent, 0.5);
    assert_eq!(
        super::plan::engine(&impair),
        crate::net::impair::Engine::Auto
    );
    assert_eq!(netem.limit, 1000);
}

#[test]
fn every_impair_setting_reaches_the_engines() {
    use crate::net::netem::{Distribution, LossModel as NetLoss};
    use crate::spec::model::{DelayDistribution, ImpairEngine, Impairment, LossModel};
    use crate::spec::source::{Span, Spanned};
    use crate::spec::units::{Duration as SpecDuration, Percent, Rate};
    fn s<T>(v: T) -> Spanned<T> {
        Spanned::new(v, Span::default())
    }
    let impair = Impairment {
        delay: Some(s(SpecDuration::parse("20ms").unwrap())),
        jitter: Some(s(SpecDuration::parse("5ms").unwrap())),
        delay_correlation: Some(s(Percent(25.0))),
        distribution: Some(s(DelayDistribution::Paretonormal)),
        loss_model: Some(s(LossModel::GilbertElliott {
            p: Percent(1.0),
            r: Percent(30.0),
            bad_loss: Percent(100.0),
            good_loss: Percent(0.0),
        })),
        rate: Some(s(Rate::parse("1mbit").unwrap())),
        packet_overhead: Some(s(-4)),
        cell_size: Some(s(48)),
        cell_overhead: Some(s(5)),
        reorder: Some(s(Percent(10.0))),
        reorder_correlation: Some(s(Percent(5.0))),
        gap: Some(s(3)),
        limit: Some(s(50)),
        seed: Some(s(7)),
        engine: Some(s(ImpairEngine::Userspace)),
        ..Impairment::default()
    };
    let netem = super::plan::netem(&impair);
    assert_eq!(netem.delay_correlation, 25.0);
    assert_eq!(netem.distribution, Distribution::Paretonormal);
    assert_eq!(
        netem.loss_model,
        Some(NetLoss::GilbertElliott {
            p: 1.0,
            r: 30.0,
            bad_loss: 100.0,
            good_loss: 0.0
        })
    );
    assert_eq!(
        (netem.packet_overhead, netem.cell_size, netem.cell_overhead),
        (-4, 48, 5)
    );
    assert_eq!((netem.gap, netem.limit, netem.seed), (3, 50, Some(7)));
    assert_eq!(netem.reorder_correlation, 5.0);
    assert!(netem.validate().is_ok());
    assert_eq!(
        super::plan::engine(&impair),
        crate::net::impair::Engine::Userspace
    );
}

mod decide {
    use super::*;
    use crate::project::ProjectError;
    use crate::project::up::{Decision, decide};
    use crate::state::{ContainerId, ContainerState, Membership, Record, Status};

    const DIGEST: &str = "sha256:aaaa";

    /// The container `kiln up` made for `instance` (same fingerprint and image), in `status`.
    fn existing(instance: &Instance, status: Status, exit_code: Option<i32>) -> Record {
        Record {
            id: ContainerId::parse(&"ab".repeat(32)).unwrap(),
            name: instance.name.clone(),
            image: instance.image.clone(),
            image_digest: DIGEST.to_string(),
            created: "2026-01-01T00:00:00Z".to_string(),
            command: Vec::new(),
            restart: "no".to_string(),
            state: ContainerState {
                status,
                exit_code,
                ..ContainerState::default()
            },
            member: Some(Membership {
                project: "demo".to_string(),
                service: instance.service.clone(),
                fingerprint: instance.fingerprint.clone(),
                host: None,
            }),
            labels: Default::default(),
            volumes: Vec::new(),
        }
    }

    fn instance(name: &str) -> Instance {
        let plan = plan_of(PROJECT);
        plan.instances.into_iter().find(|i| i.name == name).unwrap()
    }

    fn decision(instance: &Instance, record: &Record, digest: &str) -> Decision {
        decide("demo", instance, record, digest).unwrap()
    }

    #[test]
    fn an_instance_placed_on_another_host_is_rolled_out_there() {
        let mut db = instance("db");
        db.host = Some("m2".to_string());
        let mut record = existing(&db, Status::Running, None);
        record.member.as_mut().unwrap().host = Some("m1".to_string());
        assert_eq!(decision(&db, &record, DIGEST), Decision::Rollout);
        record.member.as_mut().unwrap().host = Some("m2".to_string());
        assert_eq!(decision(&db, &record, DIGEST), Decision::Keep);
    }

    #[test]
    fn an_unchanged_running_instance_is_kept() {
        let db = instance("db");
        for status in [Status::Running, Status::Restarting] {
            let record = existing(&db, status, None);
            assert_eq!(decision(&db, &record, DIGEST), Decision::Keep);
        }
    }

    #[test]
    fn an_unchanged_ended_instance_is_recreated() {
        let db = instance("db");
        for (status, code) in [(Status::Exited, Some(0)), (Status::Exited, Some(1))] {
            let record = existing(&db, status, code);
            assert_eq!(decision(&db, &record, DIGEST), Decision::Recreate);
        }
        let created = existing(&db, Status::Created, None);
        assert_eq!(decision(&db, &created, DIGEST), Decision::Recreate);
    }

    #[test]
    fn a_changed_service_is_rolled_out_whether_or_not_it_runs() {
        let app = instance("app-1");
        let mut record = existing(&app, Status::Running, None);
        assert_eq!(decision(&app, &record, "sha256:bbbb"), Decision::Rollout);
        record.member.as_mut().unwrap().fingerprint = "older".to_string();
        assert_eq!(decision(&app, &record, DIGEST), Decision::Rollout);
        record.state.status = Status::Exited;
        assert_eq!(decision(&app, &record, DIGEST), Decision::Rollout);
    }

    #[test]
    fn a_job_is_kept_once_it_succeeded_and_otherwise_run_again_never_rolled_out() {
        let seed = instance("seed");
        let done = existing(&seed, Status::Exited, Some(0));
        assert_eq!(decision(&seed, &done, DIGEST), Decision::Keep);
        let failed = existing(&seed, Status::Exited, Some(1));
        assert_eq!(decision(&seed, &failed, DIGEST), Decision::Recreate);
        let running = existing(&seed, Status::Running, None);
        assert_eq!(decision(&seed, &running, DIGEST), Decision::Keep);
        assert_eq!(decision(&seed, &done, "sha256:bbbb"), Decision::Recreate);
    }

    #[test]
    fn a_container_of_that_name_outside_the_project_is_not_touched() {
        let web = instance("web");
        let mut record = existing(&web, Status::Running, None);
        record.member.as_mut().unwrap().project = "other".to_string();
        let err = decide("demo", &web, &record, DIGEST).unwrap_err();
        assert!(
            matches!(&err, ProjectError::NameTaken { name, project } if name == "web" && project == "demo"),
            "{err:?}"
        );
        record.member = None;
        assert!(matches!(
            decide("demo", &web, &record, DIGEST),
            Err(ProjectError::NameTaken { .. })
        ));
    }
}

#[test]
fn an_underlay_link_impairs_every_pair_of_hosts_across_its_sites_and_no_other() {
    let plan = plan_of(
        r#"
        host "e1" address="192.0.2.1" site="east"
        host "e2" address="192.0.2.2" site="east"
        host "w1" address="192.0.2.3" site="west"
        host "solo" address="192.0.2.4"
        underlay {
            link "west" "east" { impair delay="40ms" loss="1%"; }
            link "solo" "west" { impair delay="5ms"; }
        }
        "#,
    );
    let pairs: Vec<(&str, &str, u128)> = plan
        .underlay
        .iter()
        .map(|p| (p.a.as_str(), p.b.as_str(), p.netem.delay.as_millis()))
        .collect();
    assert_eq!(
        pairs,
        [("e1", "w1", 40), ("e2", "w1", 40), ("w1", "solo", 5)]
    );
    assert_eq!(plan.underlay[0].netem.loss_percent, 1.0);
}

#[test]
fn the_project_models_health_converts() {
    use crate::containers::HealthProbe;
    use crate::spec::model::{Health as ModelHealth, Probe};
    use crate::spec::units::Duration as Units;
    use crate::spec::{Span, Spanned};
    use std::time::Duration;
    let span = Span::default();
    let model = ModelHealth {
        interval: Units::from_millis(500),
        timeout: Units::from_millis(100),
        retries: 4,
        start_period: Units::from_millis(2000),
        probes: vec![
            Spanned::new(
                Probe::Http {
                    url: Spanned::new("http://localhost/".into(), span),
                    status: 204,
                },
                span,
            ),
            Spanned::new(
                Probe::Exec {
                    command: vec![Spanned::new("true".into(), span)],
                },
                span,
            ),
        ],
    };
    let check = super::up::health_check(&model);
    assert_eq!(check.interval, Duration::from_millis(500));
    assert_eq!(check.timeout, Duration::from_millis(100));
    assert_eq!(check.start_period, Duration::from_secs(2));
    assert_eq!(check.retries, 4);
    assert_eq!(
        check.probes,
        [
            HealthProbe::Http {
                url: "http://localhost/".into(),
                status: Some(204)
            },
            HealthProbe::Exec {
                command: vec!["true".into()]
            }
        ]
    );
}
