//! `kiln images | inspect | history | tag | rmi | gc | fsck`: the store, seen from the
//! command line.

use serde_json::json;

use super::args::{
    Cli, CompressionArg, ExportArgs, ExportFormat, FormatArgs, GcArgs, ImageArg, ImagesArgs,
    ImportArgs, InspectArgs, OutputFormat, RmiArgs, TagArgs,
};
use super::error::CliError;
use super::output::{human_size, json_line, line, table};
use crate::image::{self, ArchiveFormat, StoredImage};
use crate::layer::Compression;

pub(super) fn list(cli: &Cli, args: &ImagesArgs) -> Result<u8, crate::Error> {
    let filter = image::ImageFilter::parse(&args.filter)?;
    let store = super::open_store(cli)?;
    let mut images = Vec::new();
    for (name, descriptor) in store.tags()? {
        let image = StoredImage::from_descriptor(&store, descriptor)?;
        if filter.matches(&name, &image) {
            images.push((name, image));
        }
    }
    if args.quiet {
        for (_, image) in &images {
            line(short_digest(&image.descriptor.digest.to_string()))?;
        }
        return Ok(0);
    }
    match args.format {
        OutputFormat::Json => {
            let list: Vec<_> = images
                .iter()
                .map(|(name, image)| {
                    json!({
                        "name": name,
                        "digest": image.descriptor.digest.to_string(),
                        "size": image.size(),
                        "layers": image.manifest.layers.len(),
                    })
                })
                .collect();
            json_line(&list)?;
        }
        OutputFormat::Text => {
            let mut rows = vec![vec![
                "NAME".to_string(),
                "DIGEST".to_string(),
                "LAYERS".to_string(),
                "SIZE".to_string(),
            ]];
            for (name, image) in &images {
                rows.push(vec![
                    name.clone(),
                    short_digest(&image.descriptor.digest.to_string()),
                    image.manifest.layers.len().to_string(),
                    human_size(image.size()),
                ]);
            }
            table(&rows)?;
        }
    }
    Ok(0)
}

/// `sha256:0123456789ab` (12 hex digits, as Docker shows).
pub(super) fn short_digest(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

pub(super) fn inspect(cli: &Cli, args: &InspectArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let name = super::image_name(&store, &args.image)?;
    let image = StoredImage::load(&store, &name)?;
    match args.format {
        OutputFormat::Json => json_line(&json!({
            "name": name,
            "digest": image.descriptor.digest.to_string(),
            "size": image.size(),
            "manifest": image.manifest,
            "config": image.config,
        }))?,
        OutputFormat::Text => {
            let c = &image.config;
            line(format!("name:          {name}"))?;
            line(format!("digest:        {}", image.descriptor.digest))?;
            line(format!("config:        {}", image.manifest.config.digest))?;
            line(format!("platform:      {}/{}", c.os, c.architecture))?;
            line(format!("size:          {}", human_size(image.size())))?;
            let show = |v: &Option<Vec<String>>| {
                v.as_ref()
                    .map(|a| serde_json::to_string(a).unwrap_or_default())
                    .unwrap_or_else(|| "-".into())
            };
            line(format!("entrypoint:    {}", show(&c.config.entrypoint)))?;
            line(format!("cmd:           {}", show(&c.config.cmd)))?;
            line(format!(
                "workdir:       {}",
                c.config.working_dir.as_deref().unwrap_or("/")
            ))?;
            line(format!(
                "user:          {}",
                c.config.user.as_deref().unwrap_or("0:0")
            ))?;
            for env in &c.config.env {
                line(format!("env:           {env}"))?;
            }
            for (key, value) in &c.config.labels {
                line(format!("label:         {key}={value}"))?;
            }
            for port in c.config.exposed_ports.keys() {
                line(format!("expose:        {port}"))?;
            }
            for (layer, diff_id) in image.manifest.layers.iter().zip(&c.rootfs.diff_ids) {
                line(format!(
                    "layer:         {} {} (diff_id {diff_id})",
                    layer.digest,
                    human_size(layer.size)
                ))?;
            }
        }
    }
    Ok(0)
}

pub(super) fn history(cli: &Cli, args: &ImageArg) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let image = StoredImage::load(&store, &super::image_name(&store, &args.image)?)?;
    let mut rows = vec![vec![
        "LAYER".to_string(),
        "SIZE".to_string(),
        "CREATED BY".to_string(),
    ]];
    let mut layers = image.manifest.layers.iter();
    for entry in &image.config.history {
        let (digest, size) = if entry.empty_layer {
            ("-".to_string(), "0 B".to_string())
        } else {
            match layers.next() {
                Some(l) => (short_digest(&l.digest.to_string()), human_size(l.size)),
                None => ("?".to_string(), "?".to_string()),
            }
        };
        let by = entry.created_by.clone().unwrap_or_default();
        rows.push(vec![digest, size, by.replace('\n', " ")]);
    }
    table(&rows)?;
    Ok(0)
}

pub(super) fn tag(cli: &Cli, args: &TagArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let image = StoredImage::load(&store, &super::image_name(&store, &args.source)?)?;
    let mut descriptor = image.descriptor;
    descriptor.annotations.clear();
    store.set_tag(&args.target, &descriptor)?;
    line(format!("{} → {}", args.target, descriptor.digest))?;
    Ok(0)
}

pub(super) fn rmi(cli: &Cli, args: &RmiArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let mut missing = Vec::new();
    for query in &args.images {
        let name = &super::image_name(&store, query)?;
        if store.remove_tag(name)? {
            line(format!("untagged: {name}"))?;
        } else {
            missing.push(query.as_str());
        }
    }
    if missing.is_empty() {
        Ok(0)
    } else {
        Err(CliError::NoSuchImages {
            names: quoted_list(&missing),
        }
        .into())
    }
}

fn quoted_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn gc(cli: &Cli, args: &GcArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    if args.cache {
        let n = store.cache_clear()?;
        line(format!("forgot {n} cache entries"))?;
    }
    // A container's image stays while the container exists, tagged or not.
    let root = super::state_root(cli);
    let records = crate::state::Records::open(&root)
        .and_then(|r| r.list())
        .map_err(crate::containers::ContainerError::from)?;
    let in_use = crate::containers::images_in_use(&store, &records);
    let mut roots = store.cache_roots()?;
    roots.extend(in_use.iter().cloned());
    let report = store.gc(&roots)?;
    let cleaned = crate::build::clean_state(&store, &root, &in_use)?;
    line(format!(
        "removed {} {} ({}), {} leftover files, {} unpacked layers, {} scratch directories",
        report.blobs_removed,
        if report.blobs_removed == 1 {
            "blob"
        } else {
            "blobs"
        },
        human_size(report.bytes_freed),
        report.ingest_files_removed,
        cleaned.unpacked_layers,
        cleaned.scratch_dirs
    ))?;
    if cleaned.step_cgroups > 0 {
        line(format!(
            "removed {} cgroups of build steps whose kiln was killed",
            cleaned.step_cgroups
        ))?;
    }
    Ok(0)
}

pub(super) fn fsck(cli: &Cli, args: &FormatArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let problems = store.fsck(&store.cache_roots()?)?;
    match args.format {
        OutputFormat::Json => json_line(&json!({
            "ok": problems.is_empty(),
            "problems": problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))?,
        OutputFormat::Text => {
            for problem in &problems {
                eprintln!("error: {problem}");
            }
            if problems.is_empty() {
                line(format!("{}: ok", store.root().display()))?;
            } else {
                let count = problems.len();
                let noun = if count == 1 { "problem" } else { "problems" };
                eprintln!("{}: {count} {noun}", store.root().display());
            }
        }
    }
    Ok(if problems.is_empty() { 0 } else { 1 })
}

pub(super) fn export(cli: &Cli, args: &ExportArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let stored = StoredImage::load(&store, &super::image_name(&store, &args.image)?)?;
    let format = match args.format {
        ExportFormat::OciDir => ArchiveFormat::OciDir,
        ExportFormat::OciArchive => ArchiveFormat::OciArchive,
        ExportFormat::DockerArchive => ArchiveFormat::DockerArchive,
    };
    let compression = args.compression.map(|c| match c {
        CompressionArg::Zstd => Compression::Zstd,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::None => Compression::None,
    });
    let name = args.name.as_deref().unwrap_or(&args.image);
    let report = image::export(&store, &stored, name, format, compression, &args.output)?;
    line(format!(
        "{}: {} ({}, manifest {})",
        args.output.display(),
        name,
        human_size(report.bytes),
        report.manifest
    ))?;
    Ok(0)
}

pub(super) fn import(cli: &Cli, args: &ImportArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let imported = image::import(&store, &args.path, args.tag.as_deref())?;
    line(format!(
        "{}  {}  (from {} {})",
        imported.name,
        imported.descriptor.digest,
        imported.format,
        args.path.display()
    ))?;
    Ok(0)
}
