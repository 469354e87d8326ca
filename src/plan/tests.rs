use std::cell::Cell;

use super::*;
use crate::spec::{Options, RealFs, load_source};

/// Inputs hashed from a fixed table: a step's inputs are its image name and index.
struct FakeInputs {
    version: &'static str,
    calls: Cell<usize>,
}

impl InputSource for FakeInputs {
    type Error = String;
    fn inputs(&self, image: &ImagePlan, step: &PlannedStep) -> Result<Vec<RecipeItem>, String> {
        self.calls.set(self.calls.get() + 1);
        let version = if image.name == "web" && step.index == 0 {
            self.version
        } else {
            "v1"
        };
        Ok(vec![RecipeItem::new(
            format!("file /{}/{}", image.name, step.index),
            version,
        )])
    }
    fn base_key(&self, base: &Base) -> Result<Key, String> {
        Ok(Key::of_str(&format!("{base:?}")))
    }
}

const PROJECT: &str = r#"
image "base" {
    from "scratch"
    host-binary "/bin/sh"
    env A="1"
}
image "tools" {
    from "base"
    run "sh" "-c" "echo tools"
}
image "web" {
    from "base"
    copy "index.html" "/srv/"
    copy "/out" "/opt/" from="tools"
    workdir "srv"
    workdir "www"
    cmd "sh"
}
image "lonely" { from "scratch"; cmd "true"; }
"#;

fn planned(wanted: &[&str], version: &'static str) -> BuildPlan {
    let options = Options {
        check_paths: false,
        ..Options::default()
    };
    let loaded = load_source("kiln.kdl", None, PROJECT, &RealFs, &options);
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let wanted: Vec<String> = wanted.iter().map(|s| s.to_string()).collect();
    let mut plan = plan(&loaded.project, &loaded.sources, &wanted).unwrap();
    let inputs = FakeInputs {
        version,
        calls: Cell::new(0),
    };
    plan.compute_keys(&inputs).unwrap();
    plan
}

fn names(plan: &BuildPlan) -> Vec<&str> {
    plan.images.iter().map(|i| i.name.as_str()).collect()
}

#[test]
fn dependencies_come_first_and_only_what_is_needed_is_planned() {
    let plan = planned(&["web"], "v1");
    assert_eq!(names(&plan), ["base", "tools", "web"]);
    let (_, web) = plan.image("web").unwrap();
    assert_eq!(web.base, Base::Project(0));
    assert_eq!(web.needs, [0, 1]);
    let all = planned(&[], "v1");
    assert_eq!(all.images.len(), 4);
}

#[test]
fn keys_are_stable_and_follow_their_inputs() {
    let a = planned(&[], "v1");
    let b = planned(&[], "v1");
    assert_eq!(a, b);
    let changed = planned(&[], "v2");
    let key = |p: &BuildPlan, image: &str| p.image(image).unwrap().1.key.unwrap();
    assert_eq!(key(&a, "base"), key(&changed, "base"));
    assert_eq!(key(&a, "tools"), key(&changed, "tools"));
    assert_ne!(key(&a, "web"), key(&changed, "web"));
    // The changed input is named, not only the key.
    let step = |p: &BuildPlan| p.image("web").unwrap().1.steps[0].recipe.clone();
    let changes = step(&changed).changes_since(&step(&a));
    assert_eq!(
        changes,
        [Change::Changed {
            label: "file /web/0".into(),
            before: "v1".into(),
            after: "v2".into()
        }]
    );
}

#[test]
fn layer_recipes_carry_the_effective_config() {
    let plan = planned(&[], "v1");
    let (_, tools) = plan.image("tools").unwrap();
    let recipe = &tools.steps[0].recipe;
    assert!(
        recipe.items.contains(&RecipeItem::new("env", "A=1")),
        "{recipe:?}"
    );
    assert!(recipe.items.contains(&RecipeItem::new("arg", "echo tools")));
    let (_, web) = plan.image("web").unwrap();
    let copy_from = &web.steps[1].recipe;
    let tools_key = tools.key.unwrap().hex();
    assert!(
        copy_from
            .items
            .contains(&RecipeItem::new("from image", tools_key))
    );
}

#[test]
fn config_steps_apply_like_docker() {
    let plan = planned(&["web"], "v1");
    let (_, web) = plan.image("web").unwrap();
    let mut config = crate::image::ImageConfig::empty();
    for step in &web.steps {
        step.action.apply_config(&mut config);
    }
    // `workdir` is a layer step (it creates the directory) that also sets the config.
    assert!(web.steps.iter().any(|s| matches!(
        &s.action,
        StepAction::Layer(LayerAction::Workdir { path }) if path == "www"
    )));
    assert_eq!(config.config.working_dir.as_deref(), Some("/srv/www"));
    assert_eq!(config.config.cmd, Some(vec!["sh".to_string()]));
}

#[test]
fn image_paths_join_and_normalize() {
    assert_eq!(join_image_path("/", "srv"), "/srv");
    assert_eq!(join_image_path("/srv", "../etc/./x"), "/etc/x");
    assert_eq!(join_image_path("/srv", "/abs"), "/abs");
    assert_eq!(join_image_path("/", "../.."), "/");
}

#[test]
fn unknown_wanted_image_is_named() {
    let loaded = load_source("kiln.kdl", None, PROJECT, &RealFs, &Options::default());
    assert_eq!(
        plan(&loaded.project, &loaded.sources, &["nope".into()]),
        Err("nope".to_string())
    );
}

#[test]
fn recipe_changes_report_added_and_removed_items() {
    let mut before = Recipe::default();
    before.push("env", "A=1");
    before.push("env", "B=2");
    let mut after = Recipe::default();
    after.push("env", "A=1");
    after.push("arg", "x");
    let changes = after.changes_since(&before);
    assert_eq!(
        changes,
        [
            Change::Added {
                label: "arg".into(),
                value: "x".into()
            },
            Change::Removed {
                label: "env".into(),
                value: "B=2".into()
            }
        ]
    );
    assert_ne!(before.key(), after.key());
    let key: Key = before.key().hex().try_into().unwrap();
    assert_eq!(key, before.key());
}
