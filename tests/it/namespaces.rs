//! Projects as namespaces: two projects that declare the same container, network and image
//! names are up at once in one root, each `kiln test` passes, the command line finds each
//! one's containers as `PROJECT/NAME` (or bare, in the project's directory, or when
//! unique), an ambiguous bare name lists the candidates, and `down` of one leaves the
//! other intact.

use crate::harness::{Project, Root, is_root};

/// The same names in every project; `/who` says which project built the image.
fn project(name: &str) -> Project {
    Project::new(&format!(
        r#"project "{name}"

image "web" {{
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/sleep"
    copy "who" "/who"
}}

network "front"

container "web" image="web" {{
    network "front"
    cmd "sleep" "1000"
}}

container "client" image="web" {{
    network "front"
    cmd "sleep" "1000"
}}

test "own names" {{
    exec "web" "cat" "/who" stdout="{name}\n"
    ping from="client" "web" count=1
}}
"#
    ))
    .file("who", &format!("{name}\n"))
}

#[test]
fn two_projects_with_the_same_names_are_up_at_once() {
    if !is_root() {
        return;
    }
    let root = Root::new();
    let shop = project("shop");
    let blog = project("blog");
    for p in [&shop, &blog] {
        p.kiln_in(&root).args(["up", "-d"]).run().success();
    }
    for p in [&shop, &blog] {
        p.kiln_in(&root).args(["test"]).run().success();
    }

    // Each container is listed with its project; the networks are two.
    let ps = root.ps();
    let projects: Vec<(String, String)> = ps
        .iter()
        .map(|c| {
            (
                c["project"].as_str().unwrap_or("").to_string(),
                c["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for wanted in ["shop", "blog"] {
        for name in ["web", "client"] {
            assert!(
                projects.contains(&(wanted.to_string(), name.to_string())),
                "{projects:?}"
            );
        }
    }
    root.kiln()
        .args(["ps"])
        .run()
        .success()
        .stdout_contains("PROJECT")
        .stdout_contains("shop")
        .stdout_contains("blog");
    let networks = root.networks();
    let names = root.network_names();
    assert_eq!(names, ["blog/front", "shop/front"]);
    assert_ne!(networks[0]["bridge"], networks[1]["bridge"]);

    // Each project's image is tagged as its own: neither build overwrote the other.
    root.kiln()
        .args(["images"])
        .run()
        .success()
        .stdout_contains("blog/web")
        .stdout_contains("shop/web");
    blog.kiln_in(&root)
        .args(["run", "--rm", "web", "cat", "/who"])
        .run()
        .success()
        .stdout_is("blog\n");
    root.kiln()
        .args(["run", "--rm", "shop/web", "cat", "/who"])
        .run()
        .success()
        .stdout_is("shop\n");
    let ambiguous = root
        .kiln()
        .args(["run", "--rm", "web", "cat", "/who"])
        .run();
    assert!(!ambiguous.ok());
    assert!(
        ambiguous
            .stderr()
            .contains("2 images have this name (blog/web, shop/web)"),
        "{}",
        ambiguous.stderr()
    );

    // PROJECT/NAME anywhere; a bare name in a project's directory is that project's.
    root.kiln()
        .args(["exec", "shop/web", "cat", "/who"])
        .run()
        .success()
        .stdout_is("shop\n");
    blog.kiln_in(&root)
        .args(["exec", "web", "cat", "/who"])
        .run()
        .success()
        .stdout_is("blog\n");
    // Elsewhere a bare name two projects have is an error that lists them (125: exec's
    // own failure, as Docker's).
    root.kiln()
        .args(["exec", "web", "cat", "/who"])
        .run()
        .code(125)
        .stderr_contains("`web` is ambiguous")
        .stderr_contains("blog/web, shop/web");
    root.kiln()
        .args(["network", "inspect", "front"])
        .run()
        .failure()
        .stderr_contains("blog/front, shop/front");

    // Down of one leaves the other up and passing.
    shop.kiln_in(&root).args(["down"]).run().success();
    let left = root.ps();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|c| c["project"] == "blog"), "{left:?}");
    blog.kiln_in(&root).args(["test"]).run().success();
    // Now unique, the bare name finds it from anywhere.
    root.kiln()
        .args(["exec", "web", "cat", "/who"])
        .run()
        .success()
        .stdout_is("blog\n");
    blog.kiln_in(&root).args(["down"]).run().success();
}
