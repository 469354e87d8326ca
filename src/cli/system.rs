//! `kiln system df|prune`: renders `containers::disk_usage` and asks before
//! `containers::prune`, in Docker's words and columns.

use std::io::BufRead;

use serde_json::json;

use super::Cli;
use super::args::{OutputFormat, SystemCommand, SystemDfArgs, SystemPruneArgs};
use super::images::short_digest;
use super::output::{human_size, json_line, line, table};
use crate::containers::{self, DiskUsage, PruneOptions};

pub(super) fn run(cli: &Cli, command: &SystemCommand) -> Result<u8, crate::Error> {
    match command {
        SystemCommand::Df(args) => df(cli, args),
        SystemCommand::Prune(args) => prune(cli, args),
    }
}

/// `12.3 MB (70%)`, as Docker shows what could be freed.
fn with_share(part: u64, whole: u64) -> String {
    if whole == 0 {
        return human_size(part);
    }
    format!("{} ({}%)", human_size(part), part * 100 / whole)
}

fn df(cli: &Cli, args: &SystemDfArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let usage = containers::disk_usage(&store, &super::state_root(cli))?;
    let summary = usage.summary();
    if args.format == OutputFormat::Json {
        let mut value = json!({ "types": summary });
        if args.verbose
            && let (Some(map), Ok(serde_json::Value::Object(detail))) =
                (value.as_object_mut(), serde_json::to_value(&usage))
        {
            map.extend(detail);
        }
        json_line(&value)?;
        return Ok(0);
    }
    let mut rows = vec![
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &summary {
        rows.push(vec![
            s.kind.to_string(),
            s.total.to_string(),
            s.active.to_string(),
            human_size(s.size),
            with_share(s.reclaimable, s.size),
        ]);
    }
    table(&rows)?;
    if args.verbose {
        verbose(&usage)?;
    }
    Ok(0)
}

/// `-v`: the lines behind each total.
fn verbose(usage: &DiskUsage) -> Result<(), crate::Error> {
    line("")?;
    line("Images space usage:")?;
    line("")?;
    let mut rows = vec![
        [
            "NAME",
            "DIGEST",
            "SIZE",
            "SHARED SIZE",
            "UNIQUE SIZE",
            "CONTAINERS",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for image in &usage.images {
        let names = if image.names.is_empty() {
            "<none>".to_string()
        } else {
            image.names.join(", ")
        };
        rows.push(vec![
            names,
            short_digest(&image.digest),
            human_size(image.size),
            human_size(image.shared_size),
            human_size(image.size - image.shared_size),
            image.containers.to_string(),
        ]);
    }
    if usage.dangling_blobs > 0 {
        rows.push(vec![
            format!("<dangling: {} blobs>", usage.dangling_blobs),
            "-".into(),
            human_size(usage.dangling_bytes),
            human_size(0),
            human_size(usage.dangling_bytes),
            "0".into(),
        ]);
    }
    table(&rows)?;

    line("")?;
    line("Containers space usage:")?;
    line("")?;
    let mut rows = vec![
        [
            "CONTAINER ID",
            "IMAGE",
            "SIZE",
            "CREATED",
            "STATUS",
            "NAMES",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for c in &usage.containers {
        rows.push(vec![
            c.id.chars().take(12).collect(),
            c.image.clone(),
            human_size(c.size),
            c.created.clone(),
            c.status.clone(),
            c.name.clone(),
        ]);
    }
    table(&rows)?;

    line("")?;
    line("Local Volumes space usage:")?;
    line("")?;
    let mut rows = vec![["VOLUME NAME", "LINKS", "SIZE"].map(String::from).to_vec()];
    for v in &usage.volumes {
        rows.push(vec![
            v.name.clone(),
            v.containers.to_string(),
            human_size(v.size),
        ]);
    }
    table(&rows)?;

    line("")?;
    line("Build cache usage:")?;
    line("")?;
    let mut rows = vec![
        ["CACHE ID", "LAYER", "SIZE", "SHARED"]
            .map(String::from)
            .to_vec(),
    ];
    for c in &usage.build_cache {
        rows.push(vec![
            c.key.chars().take(12).collect(),
            short_digest(&c.layer),
            human_size(c.size),
            c.shared.to_string(),
        ]);
    }
    table(&rows)?;
    Ok(())
}

/// Docker's warning, then `[y/N]` read from stdin: anything but y/yes keeps everything.
fn confirmed(args: &SystemPruneArgs) -> bool {
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if args.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if args.all {
        warning.push_str("  - all images without at least one container associated to them\n  - all build cache\n");
    } else {
        warning.push_str("  - all dangling images\n  - unused build cache\n");
    }
    eprint!("{warning}\nAre you sure you want to continue? [y/N] ");
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

fn prune(cli: &Cli, args: &SystemPruneArgs) -> Result<u8, crate::Error> {
    if !args.force && !confirmed(args) {
        eprintln!("nothing removed");
        return Ok(0);
    }
    let store = super::open_store(cli)?;
    let options = PruneOptions {
        all: args.all,
        volumes: args.volumes,
    };
    let pruned = containers::prune(&store, &super::state_root(cli), options)?;
    if args.format == OutputFormat::Json {
        json_line(&pruned)?;
        return Ok(0);
    }
    let section = |title: &str, items: &[String]| -> Result<(), crate::Error> {
        if !items.is_empty() {
            line(title)?;
            for item in items {
                line(item)?;
            }
            line("")?;
        }
        Ok(())
    };
    section("Deleted Containers:", &pruned.containers)?;
    section("Deleted Networks:", &pruned.networks)?;
    section("Deleted Volumes:", &pruned.volumes)?;
    let untagged: Vec<String> = pruned
        .untagged
        .iter()
        .map(|name| format!("untagged: {name}"))
        .collect();
    let mut images = untagged;
    if pruned.blobs > 0 {
        images.push(format!(
            "deleted: {} {}",
            pruned.blobs,
            if pruned.blobs == 1 { "blob" } else { "blobs" }
        ));
    }
    if pruned.unpacked_layers > 0 {
        images.push(format!(
            "deleted: {} unpacked {}",
            pruned.unpacked_layers,
            if pruned.unpacked_layers == 1 {
                "layer"
            } else {
                "layers"
            }
        ));
    }
    section("Deleted Images:", &images)?;
    section("Deleted build cache objects:", &pruned.build_cache)?;
    line(format!(
        "Total reclaimed space: {}",
        human_size(pruned.reclaimed)
    ))?;
    Ok(0)
}
