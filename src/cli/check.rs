//! `kiln check`: validate the project file and report.

use std::io::Write;

use serde_json::json;

use super::args::{CheckArgs, Cli, OutputFormat};
use crate::spec::render::{self, TextStyle};
use crate::spec::{self, Loaded, Options, RealFs};

pub(super) fn run(cli: &Cli, args: &CheckArgs) -> Result<u8, crate::Error> {
    let options = Options {
        check_paths: !args.no_path_checks,
        external_images: super::store_images(cli),
        check_seccomp_profile: Some(super::check_seccomp_profile),
        check_placement: Some(crate::project::placement::check),
    };
    let loaded = match spec::load_file(&args.project.file, &RealFs, &options) {
        Ok(loaded) => loaded,
        Err(err) if args.format == OutputFormat::Json => {
            // Editors get JSON even when there is no file to check.
            let cause = std::error::Error::source(&err).map(ToString::to_string);
            let out = json!({
                "ok": false,
                "error": { "message": err.to_string(), "cause": cause },
                "diagnostics": [],
            });
            writeln!(std::io::stdout().lock(), "{out}").map_err(crate::Error::Output)?;
            return Ok(1);
        }
        Err(err) => return Err(err.into()),
    };
    let ok = !loaded.has_errors();
    let mut stdout = std::io::stdout().lock();
    match args.format {
        OutputFormat::Json => {
            let diagnostics: Vec<_> = loaded
                .diagnostics
                .iter()
                .map(|d| render::json(d, &loaded.sources))
                .collect();
            let mut out = json!({ "ok": ok, "diagnostics": diagnostics });
            if args.print && ok {
                out["project"] = serde_json::to_value(&loaded.project).unwrap_or_default();
            }
            writeln!(stdout, "{out}").map_err(crate::Error::Output)?;
        }
        OutputFormat::Text => {
            if !loaded.diagnostics.is_empty() {
                let style = TextStyle {
                    color: super::stderr_color(),
                    width: super::render_width(),
                };
                eprint!(
                    "{}",
                    render::text_all(&loaded.diagnostics, &loaded.sources, style)
                );
            }
            if args.print && ok {
                let text = serde_json::to_string_pretty(&loaded.project).unwrap_or_default();
                writeln!(stdout, "{text}").map_err(crate::Error::Output)?;
            } else if ok {
                writeln!(
                    stdout,
                    "{}",
                    summary(&args.project.file.display().to_string(), &loaded)
                )
                .map_err(crate::Error::Output)?;
            } else {
                let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
                eprintln!(
                    "{}: {errors} {}",
                    args.project.file.display(),
                    plural(errors, "error", "errors")
                );
            }
        }
    }
    Ok(if ok { 0 } else { 1 })
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `kiln.kdl: 3 images, 2 networks, 4 containers, 1 link, 2 tests` (jobs and hosts only
/// when there are some).
pub(super) fn summary(file: &str, loaded: &Loaded) -> String {
    let p = &loaded.project;
    let count = |n: usize, one: &str, many: &str| format!("{n} {}", plural(n, one, many));
    let mut parts = vec![
        count(p.images.len(), "image", "images"),
        count(p.networks.len(), "network", "networks"),
        count(p.services().count(), "container", "containers"),
    ];
    let jobs = p.jobs().count();
    if jobs > 0 {
        parts.push(count(jobs, "job", "jobs"));
    }
    parts.push(count(p.links.len(), "link", "links"));
    parts.push(count(p.tests.len(), "test", "tests"));
    if !p.hosts.is_empty() {
        parts.push(count(p.hosts.len(), "host", "hosts"));
    }
    let warnings = loaded.diagnostics.len();
    let mut line = format!("{file}: {}", parts.join(", "));
    if warnings > 0 {
        line.push_str(&format!(
            " ({warnings} {})",
            plural(warnings, "warning", "warnings")
        ));
    }
    line
}
