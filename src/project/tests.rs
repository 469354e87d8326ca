use std::path::Path;

use super::*;
use crate::runtime::supervise::RestartPolicy;
use crate::spec::model::{Condition, ContainerKind};
use crate::spec::{Options, RealFs, load_source};

fn plan_of(text: &str) -> ProjectPlan {
    let loaded = load_source("kiln.kdl", None, text, &RealFs, &Options::default());
    assert!(!loaded.has_errors(), "{:#?}", loaded.diagnostics);
    plan(&loaded.project, Path::new("/srv/proj"))
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
