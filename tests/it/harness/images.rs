//! The images tests build, from the host's own programs (`host-binary`), so that they need
//! no registry: a shell with everyday tools, and Python with its library.

/// `image NAME`: a shell and the everyday tools the tests run in containers (in one layer),
/// then `extra` (more steps, one per line).
pub fn tools(name: &str, extra: &str) -> String {
    format!(
        r#"
image "{name}" {{
    from "scratch"
    host-binary "/bin/sh" "/bin/echo" "/bin/cat" "/bin/ls" "/bin/sleep" "/bin/rm" "/bin/mkdir" "/bin/touch" "/bin/hostname" "/bin/dd" "/usr/bin/env" "/usr/bin/id" "/usr/bin/test"
    {extra}
}}
"#
    )
}

/// `image NAME`: Python 3.11 with its library, a shell and a few tools, then `extra`. Tests
/// that use it check [`has_python`](super::has_python) first.
pub fn python(name: &str, extra: &str) -> String {
    format!(
        r#"
image "{name}" {{
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/echo" "/bin/sleep" "/usr/bin/touch" "/usr/bin/test" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
    {extra}
}}
"#
    )
}

/// A project with one small image, `hello` (a shell, `cat`, and `/msg.txt` saying
/// `hello from kiln`, which it prints), built in a fresh root. No root needed: it has no
/// `run` step.
pub fn hello() -> (super::Project, super::Root) {
    let project = super::Project::new(
        r#"
image "hello" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat"
    copy "msg.txt" "/msg.txt"
    cmd "cat" "/msg.txt"
}
"#,
    )
    .file("msg.txt", "hello from kiln\n");
    let root = super::Root::new();
    project.kiln(&root).args(["build"]).run().success();
    (project, root)
}
