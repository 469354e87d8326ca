//! `kiln build` and `kiln explain`: load the project, plan, compute keys, then build (or
//! explain) and render progress, errors with their place in kiln.kdl, the summary, and the
//! comparison of `--verify` (made by `build::verify`).

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;

use super::args::{BuildArgs, Cli, CompressionArg, ExplainArgs, OutputFormat};
use super::error::CliError;
use super::output::{json_line, line};
use crate::build::verify::{Difference, Files};
use crate::build::{
    self, BuildError, BuildEvent, BuildOptions, CacheStatus, HostInputs, StatCache, VerifyError,
};
use crate::layer::Compression;
use crate::plan::{self, BuildPlan};
use crate::spec::render::{self, TextStyle};
use crate::spec::{Loaded, Sources};
use crate::store::Store;

/// Loads and validates the project; `Err(exit code)` after printing diagnostics.
fn load_project(cli: &Cli, file: &Path) -> Result<Result<Loaded, u8>, crate::Error> {
    let loaded = super::load_project_file(cli, file)?;
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
        eprintln!("{}: not built: fix the errors above", file.display());
        return Ok(Err(1));
    }
    Ok(Ok(loaded))
}

fn planned(loaded: &Loaded, wanted: &[String]) -> Result<BuildPlan, crate::Error> {
    plan::plan(&loaded.project, &loaded.sources, wanted).map_err(|name| {
        CliError::UnknownImage {
            name,
            declared: loaded
                .project
                .images
                .iter()
                .map(|i| i.name.value.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
        .into()
    })
}

/// The settings every layer's bytes depend on, as recipe items of the cache keys.
fn layer_settings(compression: Compression, epoch: u64) -> Vec<crate::plan::RecipeItem> {
    let name = match compression {
        Compression::Zstd => "zstd",
        Compression::Gzip => "gzip",
        Compression::None => "none",
    };
    vec![
        crate::plan::RecipeItem::new("compression", name),
        crate::plan::RecipeItem::new("source-date-epoch", epoch.to_string()),
    ]
}

/// `SOURCE_DATE_EPOCH` from the environment, 0 when unset.
pub(super) fn source_date_epoch() -> Result<u64, crate::Error> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Err(_) => Ok(0),
        Ok(text) if text.trim().is_empty() => Ok(0),
        Ok(text) => text
            .trim()
            .parse()
            .map_err(|_| CliError::BadSourceDateEpoch { value: text }.into()),
    }
}

pub(super) fn run(cli: &Cli, args: &BuildArgs) -> Result<u8, crate::Error> {
    // Ctrl-C kills the running steps, which then clean up as failed steps do. Before any
    // thread exists, so that every thread inherits the blocked mask.
    let interrupts = super::interrupt::Interrupts::catch()?;
    let loaded = match load_project(cli, &args.project.file)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let mut plan = planned(&loaded, &args.images)?;
    super::pin::pin_plan(
        cli,
        &loaded,
        &mut plan,
        &args.project.file,
        args.update,
        &args.net,
    )?;
    let compression = match args.compression {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::None => Compression::None,
    };
    let epoch = source_date_epoch()?;
    plan.layer_settings = layer_settings(compression, epoch);
    let state_root = super::state_root(cli);
    let store = super::open_store(cli)?;
    let stat_cache = StatCache::load(&store);
    let inputs = HostInputs::new(&store, &stat_cache);
    if let Err(err) = plan.compute_keys(&inputs) {
        report_error(&err, &loaded.sources);
        return Ok(1);
    }
    stat_cache.save(&store)?;
    if args.dry_run {
        print_plan(&store, &plan, args.format)?;
        return Ok(0);
    }
    if !nix::unistd::geteuid().is_root() && runs_a_step(&store, &plan, args.no_cache)? {
        return Err(CliError::NeedsRoot {
            command: "build".into(),
            reason: "a `run` step that is not cached runs in a container, and containers need namespaces and mounts only root can make",
        }
        .into());
    }
    let options = BuildOptions {
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        no_cache: args.no_cache,
        source_date_epoch: epoch,
        compression,
        state_root: state_root.clone(),
    };
    let progress = Progress::new(args.format == OutputFormat::Text);
    let started = std::time::Instant::now();
    let outcome = build::build(&store, &plan, &inputs, &options, &|e| progress.event(e));
    progress.finish();
    if interrupts.caught() {
        eprintln!("kiln build: interrupted");
        return Ok(130);
    }
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(errors) => {
            for err in &errors {
                report_error(err, &loaded.sources);
            }
            if args.format == OutputFormat::Json {
                json_line(&json!({
                    "ok": false,
                    "errors": errors.iter().map(|e| crate::causes::chain(e)).collect::<Vec<_>>(),
                }))?;
            }
            return Ok(1);
        }
    };
    let elapsed = started.elapsed();
    if let Some(path) = &args.report {
        write_report(path, &outcome)?;
    }
    let mut code = 0;
    if args.verify {
        code = verify(&store, &loaded, &plan, &outcome, &options)?;
        if interrupts.caught() {
            eprintln!("kiln build: interrupted");
            return Ok(130);
        }
    }
    // Layer steps are the ones the cache saves work on; config steps cost nothing.
    let layer_steps: Vec<_> = outcome.steps.iter().filter(|s| s.layer.is_some()).collect();
    let hits = layer_steps
        .iter()
        .filter(|s| s.cache == CacheStatus::Hit)
        .count();
    match args.format {
        OutputFormat::Json => json_line(&json!({
            "ok": code == 0,
            "images": outcome.images,
            "steps": outcome.steps,
            "seconds": elapsed.as_secs_f64(),
        }))?,
        OutputFormat::Text => {
            for image in &outcome.images {
                let note = if image.reproducible {
                    ""
                } else {
                    "  (not reproducible: a run step has the network)"
                };
                line(format!("{}  {}{note}", image.name, image.digest))?;
            }
            eprintln!(
                "built {} {} in {:.2}s ({} of {} layer steps cached)",
                outcome.images.len(),
                if outcome.images.len() == 1 {
                    "image"
                } else {
                    "images"
                },
                elapsed.as_secs_f64(),
                hits,
                layer_steps.len()
            );
        }
    }
    Ok(code)
}

/// `--verify`: rebuilds in a temporary state root and prints the comparison; 1 when an
/// image differs or the rebuild failed.
fn verify(
    main_store: &Store,
    loaded: &Loaded,
    plan: &BuildPlan,
    first: &build::BuildOutcome,
    options: &BuildOptions,
) -> Result<u8, crate::Error> {
    let temp = tempfile::Builder::new()
        .prefix("kiln-verify-")
        .tempdir()
        .map_err(CliError::TempRoot)?;
    eprintln!(
        "verify: rebuilding from scratch in {}",
        temp.path().display()
    );
    let verification = match build::verify(main_store, plan, first, options, temp.path()) {
        Ok(verification) => verification,
        Err(VerifyError::Store(err)) => return Err(err.into()),
        Err(VerifyError::Keys(err)) => {
            report_error(&err, &loaded.sources);
            return Ok(1);
        }
        Err(VerifyError::Build(errors)) => {
            for err in &errors {
                report_error(err, &loaded.sources);
            }
            return Ok(1);
        }
    };
    for image in &verification.images {
        let Some(difference) = &image.difference else {
            line(format!(
                "verify: {}  {}  identical",
                image.name, image.first
            ))?;
            continue;
        };
        eprintln!(
            "verify: {} differs: {} then {}",
            image.name, image.first, image.second
        );
        match difference {
            Difference::Layer {
                index,
                first,
                second,
                files,
            } => {
                eprintln!("  layer {} differs: {first} then {second}", index + 1);
                match files {
                    Files::First {
                        path,
                        first,
                        second,
                    } => {
                        eprintln!("  first differing file: /{path}");
                        eprintln!("    first:  {}", first.as_deref().unwrap_or("absent"));
                        eprintln!("    second: {}", second.as_deref().unwrap_or("absent"));
                    }
                    Files::Same => {
                        eprintln!("  same files, different tar bytes (order or padding)")
                    }
                    Files::Unreadable(err) => eprintln!("  cannot list the layers: {err}"),
                }
            }
            Difference::LayerCount { first, second } => {
                eprintln!("  layer count differs: {first} then {second}")
            }
            Difference::Config => {
                eprintln!("  every layer is identical: the image config differs")
            }
        }
    }
    Ok(if verification.identical() { 0 } else { 1 })
}

fn write_report(path: &Path, outcome: &build::BuildOutcome) -> Result<(), crate::Error> {
    let text = serde_json::to_vec_pretty(&json!({
        "images": outcome.images,
        "steps": outcome.steps,
    }))
    .expect("a report serializes");
    std::fs::write(path, text).map_err(|source| {
        CliError::Write {
            what: "the report",
            path: path.to_path_buf(),
            source,
        }
        .into()
    })
}

fn print_plan(store: &Store, plan: &BuildPlan, format: OutputFormat) -> Result<(), crate::Error> {
    let mut images = Vec::new();
    for image in &plan.images {
        let needs: Vec<&str> = image
            .needs
            .iter()
            .map(|n| plan.images[*n].name.as_str())
            .collect();
        let mut steps = Vec::new();
        for step in &image.steps {
            let key = step.key.map(|k| k.hex()).unwrap_or_default();
            let cached = match step.action {
                plan::StepAction::Layer(_) => Some(store.cache_get(&key)?.is_some()),
                plan::StepAction::Config(_) => None,
            };
            steps.push(json!({
                "index": step.index,
                "kind": step.keyword,
                "text": step.text,
                "key": key,
                "cached": cached,
            }));
        }
        images.push(json!({
            "name": image.name,
            "needs": needs,
            "key": image.key.map(|k| k.hex()),
            "steps": steps,
        }));
    }
    if format == OutputFormat::Json {
        return json_line(&json!({ "images": images }));
    }
    for image in &images {
        let needs = image["needs"].as_array().map(Vec::len).unwrap_or(0);
        let after = if needs == 0 {
            String::new()
        } else {
            format!(
                " (after {})",
                image["needs"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        line(format!(
            "image {}{after}",
            image["name"].as_str().unwrap_or("")
        ))?;
        for step in image["steps"].as_array().into_iter().flatten() {
            let state = match step["cached"].as_bool() {
                Some(true) => "cached",
                Some(false) => "to run",
                None => "config",
            };
            let key = step["key"].as_str().unwrap_or("");
            line(format!(
                "  {:>2}. {}  {:<6}  {}",
                step["index"].as_u64().unwrap_or(0) + 1,
                &key[..12.min(key.len())],
                state,
                first_line(step["text"].as_str().unwrap_or(""))
            ))?;
        }
    }
    Ok(())
}

fn first_line(text: &str) -> String {
    let first = text.lines().next().unwrap_or("");
    if text.lines().nth(1).is_some() {
        format!("{first} …")
    } else {
        first.to_string()
    }
}

pub(super) fn explain(cli: &Cli, args: &ExplainArgs) -> Result<u8, crate::Error> {
    let loaded = match load_project(cli, &args.project.file)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let mut plan = planned(&loaded, std::slice::from_ref(&args.image))?;
    // As a default `kiln build` would: zstd layers, SOURCE_DATE_EPOCH from the environment.
    plan.layer_settings = layer_settings(Compression::Zstd, source_date_epoch()?);
    let store = super::open_store(cli)?;
    let stat_cache = StatCache::load(&store);
    let inputs = HostInputs::new(&store, &stat_cache);
    if let Err(err) = plan.compute_keys(&inputs) {
        report_error(&err, &loaded.sources);
        return Ok(1);
    }
    stat_cache.save(&store)?;
    let steps = build::explain(&store, &plan)?;
    if args.format == OutputFormat::Json {
        json_line(&steps)?;
        return Ok(0);
    }
    let mut current = "";
    for step in &steps {
        if step.image != current {
            current = &step.image;
            line(format!("image {current}"))?;
        }
        let state = match step.cache {
            CacheStatus::Hit => "hit ",
            CacheStatus::Miss => "miss",
        };
        line(format!(
            "  {:>2}. {}  {state}  {}",
            step.index + 1,
            &step.key[..12.min(step.key.len())],
            first_line(&step.text)
        ))?;
        if let Some(reason) = &step.reason {
            line(format!("        why: {reason}"))?;
        }
        for change in step.changes.iter().skip(1).take(9) {
            line(format!("             {change}"))?;
        }
        if step.changes.len() > 10 {
            line(format!("             … {} more", step.changes.len() - 10))?;
        }
    }
    Ok(0)
}

/// Prints a build error rustc-style: the message, where in kiln.kdl, the causes, the help,
/// and for a failed `run` the tail of its output.
fn report_error(err: &BuildError, sources: &Sources) {
    let chain = crate::causes::chain(err);
    eprintln!("error: {}", chain[0]);
    if let Some(span) = err.span() {
        let file = sources.get(span.file);
        let at = sources.line_col(span);
        eprintln!("  --> {}:{}:{}", file.name, at.line, at.column);
        if let Some(text) = file.text.lines().nth(at.line - 1) {
            let gutter = at.line.to_string().len();
            eprintln!("{:gutter$} |", "");
            eprintln!("{} | {text}", at.line);
            let width = sources
                .slice(span)
                .lines()
                .next()
                .map_or(1, |l| l.chars().count().max(1));
            eprintln!(
                "{:gutter$} | {}{}",
                "",
                " ".repeat(at.column - 1),
                "^".repeat(width)
            );
        }
    }
    for cause in &chain[1..] {
        eprintln!("  caused by: {cause}");
    }
    if let Some(help) = crate::causes::help(err) {
        eprintln!("  help: {help}");
    }
    if let BuildError::RunFailed { output_tail, .. } = err
        && !output_tail.is_empty()
    {
        eprintln!("  output (last lines):");
        let lines: Vec<&str> = output_tail.lines().collect();
        for text in &lines[lines.len().saturating_sub(20)..] {
            eprintln!("    | {text}");
        }
    }
}

/// Progress on stderr: on a terminal a live line per running step (indicatif), otherwise
/// one plain line per finished step, so logs stay readable.
struct Progress {
    enabled: bool,
    live: Option<indicatif::MultiProgress>,
    bars: Mutex<std::collections::HashMap<(String, usize), indicatif::ProgressBar>>,
    lock: Mutex<()>,
}

impl Progress {
    fn new(enabled: bool) -> Progress {
        let live = (enabled && std::io::stderr().is_terminal()).then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        });
        Progress {
            enabled,
            live,
            bars: Mutex::new(std::collections::HashMap::new()),
            lock: Mutex::new(()),
        }
    }

    fn event(&self, event: BuildEvent) {
        if !self.enabled {
            return;
        }
        if let Some(live) = &self.live {
            self.live_event(live, event);
            return;
        }
        let _guard = self.lock.lock().expect("progress lock");
        match event {
            BuildEvent::StepFinished {
                image,
                index,
                cache,
                duration,
            } => eprintln!("[{image} {}] {}", index + 1, outcome(cache, duration)),
            BuildEvent::Output { image, line } => eprintln!("[{image}] | {line}"),
            _ => {}
        }
    }

    /// Stops the spinners of steps that never finished (the build failed around them).
    fn finish(&self) {
        for (_, bar) in self.bars.lock().expect("progress lock").drain() {
            bar.abandon_with_message("stopped");
        }
    }

    fn live_event(&self, live: &indicatif::MultiProgress, event: BuildEvent) {
        let mut bars = self.bars.lock().expect("progress lock");
        match event {
            BuildEvent::StepStarted { image, index, text } => {
                let bar = live.add(indicatif::ProgressBar::new_spinner());
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{spinner} {prefix} {msg} {elapsed}")
                        .expect("a valid template"),
                );
                bar.set_prefix(format!("[{image} {}]", index + 1));
                bar.set_message(first_line(&text));
                bar.enable_steady_tick(std::time::Duration::from_millis(100));
                bars.insert((image, index), bar);
            }
            BuildEvent::StepFinished {
                image,
                index,
                cache,
                duration,
            } => {
                if let Some(bar) = bars.remove(&(image.clone(), index)) {
                    bar.set_style(
                        indicatif::ProgressStyle::with_template("  {prefix} {msg}")
                            .expect("a valid template"),
                    );
                    bar.finish_with_message(outcome(cache, duration));
                }
            }
            BuildEvent::Output { image, line } => {
                let _ = live.println(format!("[{image}] | {line}"));
            }
            BuildEvent::ImageBuilt { .. } => {}
        }
    }
}

fn outcome(cache: CacheStatus, duration: std::time::Duration) -> String {
    match cache {
        CacheStatus::Hit => "cached".to_string(),
        CacheStatus::Miss => format!("done in {:.2}s", duration.as_secs_f64()),
    }
}

/// Whether the build would run a `run` step (one whose layer is not in the cache, or any
/// with `--no-cache`).
fn runs_a_step(store: &Store, plan: &BuildPlan, no_cache: bool) -> Result<bool, crate::Error> {
    for step in plan.images.iter().flat_map(|i| &i.steps) {
        if matches!(
            step.action,
            plan::StepAction::Layer(plan::LayerAction::Run { .. })
        ) {
            let key = step.key.map(|k| k.hex()).unwrap_or_default();
            if no_cache || store.cache_get(&key)?.is_none() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
