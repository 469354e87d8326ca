//! `kiln graph`: load the project, draw it, write the drawing.

use std::io::Write;

use super::args::{Cli, GraphArgs, GraphFormat};
use super::error::CliError;
use crate::graph;
use crate::spec::render::{self, TextStyle};
use crate::spec::{self, Options, RealFs};

pub(super) fn run(cli: &Cli, args: &GraphArgs) -> Result<u8, crate::Error> {
    let options = Options {
        // A drawing needs no build context: sources on disk are `kiln check`'s business.
        check_paths: false,
        external_images: super::store_images(cli),
        check_seccomp_profile: None,
        check_placement: Some(crate::project::placement::check),
    };
    let loaded = spec::load_file(&args.project.file, &RealFs, &options)?;
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
    if loaded.has_errors() {
        let errors = loaded.diagnostics.iter().filter(|d| d.is_error()).count();
        let noun = if errors == 1 { "error" } else { "errors" };
        eprintln!("{}: {errors} {noun}", args.project.file.display());
        return Ok(1);
    }
    let placement = crate::project::placement::of_project(&loaded.project);
    let drawing = graph::build_placed(&loaded.project, &placement);
    let text = match args.format {
        GraphFormat::Dot => graph::to_dot(&drawing),
        GraphFormat::Mermaid => graph::to_mermaid(&drawing),
        GraphFormat::Json => graph::to_json(&drawing),
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|source| CliError::Write {
            what: "the graph",
            path: path.clone(),
            source,
        })?,
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(crate::Error::Output)?,
    }
    Ok(0)
}
