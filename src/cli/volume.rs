//! `kiln volume create|ls|inspect|rm|prune`: the command line of `state::volumes`.

use std::collections::BTreeMap;

use serde_json::json;

use super::Cli;
use super::args::{OutputFormat, VolumeCommand};
use super::output::{human_size, json_line, line, table};
use crate::containers::ContainerError;
use crate::state::volumes::{
    self, ListFilter, NewVolume, PruneFilter, VolumeError, VolumeInfo, VolumeStore,
};
use crate::state::{Record, Records};

pub(super) fn run(cli: &Cli, command: &VolumeCommand) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let store = VolumeStore::open(&root);
    let records = || -> Result<Vec<Record>, crate::Error> {
        Ok(Records::open(&root)
            .and_then(|r| r.list())
            .map_err(ContainerError::from)?)
    };
    let context = super::current_project(None);
    let fail = |e: VolumeError| crate::Error::from(ContainerError::from(e));
    match command {
        VolumeCommand::Create(args) => {
            if args.driver != "local" {
                return Err(fail(VolumeError::Unsupported {
                    what: format!("volume driver `{}`", args.driver),
                    help: "kiln has one volume driver, `local`".into(),
                }));
            }
            if let Some(opt) = args.opts.first() {
                return Err(fail(VolumeError::Unsupported {
                    what: format!("--opt `{opt}`"),
                    help: "kiln's volumes are directories under the state root: the local driver takes no options".into(),
                }));
            }
            let reference = match &args.name {
                Some(name) => name.clone(),
                None => crate::state::ContainerId::generate()
                    .map_err(|source| ContainerError::Io {
                        path: "/dev/urandom".into(),
                        source,
                    })?
                    .as_str()
                    .to_string(),
            };
            let (project, name) = crate::scope::split(&reference);
            let new = NewVolume {
                labels: labels(&args.labels),
                anonymous: false,
            };
            let (volume, _) = store.create(project, name, &new).map_err(fail)?;
            line(volume.reference)?;
            Ok(0)
        }
        VolumeCommand::Ls(args) => {
            let mut filter = ListFilter::default();
            let mut unused = PruneFilter::default();
            for text in &args.filters {
                volumes::parse_filter(text, &mut filter, &mut unused, true).map_err(fail)?;
            }
            let records = records()?;
            let list: Vec<VolumeInfo> = store
                .list()
                .map_err(fail)?
                .into_iter()
                .filter(|v| filter.matches(v, &records))
                .collect();
            if args.quiet {
                for v in &list {
                    line(&v.reference)?;
                }
                return Ok(0);
            }
            match args.format {
                OutputFormat::Json => json_line(&list)?,
                OutputFormat::Text => {
                    let mut rows = vec![vec![
                        "NAME".to_string(),
                        "PROJECT".into(),
                        "DRIVER".into(),
                        "CONTAINERS".into(),
                        "CREATED".into(),
                    ]];
                    for v in &list {
                        rows.push(vec![
                            v.reference.clone(),
                            v.project.clone().unwrap_or_else(|| "-".into()),
                            "local".into(),
                            volumes::users(&records, &v.reference).len().to_string(),
                            v.created.clone(),
                        ]);
                    }
                    table(&rows)?;
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect(args) => inspect(cli, &args.names, args.format),
        VolumeCommand::Rm(args) => {
            let records = records()?;
            let mut failed = false;
            for name in &args.names {
                let outcome = store
                    .resolve(name, context.as_deref())
                    .and_then(|v| store.remove(&v, &records).map(|_| v));
                match outcome {
                    Ok(v) => line(v.reference)?,
                    Err(VolumeError::NotFound { .. }) if args.force => {}
                    Err(err) => {
                        eprintln!("{:?}", miette::Report::new(err));
                        failed = true;
                    }
                }
            }
            Ok(u8::from(failed))
        }
        VolumeCommand::Prune(args) => {
            let mut filter = PruneFilter {
                all: args.all,
                ..PruneFilter::default()
            };
            let mut unused = ListFilter::default();
            for text in &args.filters {
                volumes::parse_filter(text, &mut unused, &mut filter, false).map_err(fail)?;
            }
            let records = records()?;
            let (removed, reclaimed) = store.prune(&records, &filter).map_err(fail)?;
            if !removed.is_empty() {
                line("Deleted Volumes:")?;
                for name in &removed {
                    line(name)?;
                }
                line("")?;
            }
            line(format!("Total reclaimed space: {}", human_size(reclaimed)))?;
            Ok(0)
        }
    }
}

/// `K=V` (or `K`: an empty value), the last of a key winning.
fn labels(pairs: &[String]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// `kiln volume inspect NAMES` and `kiln inspect --type volume NAME`.
pub(super) fn inspect(
    cli: &Cli,
    names: &[String],
    format: OutputFormat,
) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let store = VolumeStore::open(&root);
    let context = super::current_project(None);
    let records = Records::open(&root)
        .and_then(|r| r.list())
        .map_err(ContainerError::from)?;

    let mut found = Vec::new();
    let mut missing = 0;
    for name in names {
        match store.resolve(name, context.as_deref()) {
            Ok(v) => found.push(v),
            Err(err) => {
                eprintln!("{:?}", miette::Report::new(err));
                missing += 1;
            }
        }
    }
    match format {
        OutputFormat::Json => {
            let out: Vec<_> = found
                .iter()
                .map(|v| {
                    json!({
                        "name": v.reference,
                        "project": v.project,
                        "driver": "local",
                        "mountpoint": v.mountpoint,
                        "created": v.created,
                        "labels": v.labels,
                        "anonymous": v.anonymous,
                        "containers": volumes::users(&records, &v.reference),
                        "size": volumes::disk_usage(&v.mountpoint),
                    })
                })
                .collect();
            json_line(&out)?;
        }
        OutputFormat::Text => {
            for v in &found {
                line(format!("name:        {}", v.reference))?;
                line(format!(
                    "project:     {}",
                    v.project.as_deref().unwrap_or("-")
                ))?;
                line(format!("mountpoint:  {}", v.mountpoint.display()))?;
                line(format!("created:     {}", v.created))?;
                for (k, val) in &v.labels {
                    line(format!("label:       {k}={val}"))?;
                }
                line(format!(
                    "containers:  {}",
                    volumes::users(&records, &v.reference).join(", ")
                ))?;
                line(format!(
                    "size:        {}",
                    human_size(volumes::disk_usage(&v.mountpoint))
                ))?;
            }
        }
    }
    Ok(u8::from(missing > 0))
}
