//! `kiln network links` and `kiln network impair`: the links of running projects, who
//! carries their impairments (the kernel's netem or kiln's engine) with live counters, and
//! changing an impairment on a running topology.

use std::path::Path;

use serde_json::json;

use super::args::{NetworkImpairArgs, OutputFormat};
use super::error::CliError;
use super::output::{json_line, line, table};
use crate::net::Netem;
use crate::net::engine::control::PathStatus;
use crate::net::impair::{Carrier, Engine};
use crate::net::link::LinkRecord;
use crate::net::netem::{Distribution, LossModel};

fn report(err: impl miette::Diagnostic + Send + Sync + 'static) -> u8 {
    eprintln!("{:?}", miette::Report::new(err));
    1
}

/// `20ms ±5ms normal, 1% loss, 10mbit`.
pub(crate) fn describe_netem(n: &Netem) -> String {
    let mut parts = Vec::new();
    let ms = |d: std::time::Duration| {
        let ms = d.as_secs_f64() * 1000.0;
        format!("{}ms", (ms * 1000.0).round() / 1000.0)
    };
    if !n.delay.is_zero() {
        let mut delay = ms(n.delay);
        if !n.jitter.is_zero() {
            delay.push_str(&format!(" ±{}", ms(n.jitter)));
            if n.distribution != Distribution::Uniform {
                delay.push_str(&format!(" {}", n.distribution.name()));
            }
            if n.delay_correlation > 0.0 {
                delay.push_str(&format!(" ({}% correlated)", n.delay_correlation));
            }
        }
        parts.push(delay);
    }
    for (value, correlation, what) in [
        (n.loss_percent, n.loss_correlation, "loss"),
        (n.corrupt_percent, n.corrupt_correlation, "corrupt"),
        (n.duplicate_percent, n.duplicate_correlation, "duplicate"),
        (n.reorder_percent, n.reorder_correlation, "reorder"),
    ] {
        if value > 0.0 {
            let mut part = format!("{value}% {what}");
            if correlation > 0.0 {
                part.push_str(&format!(" ({correlation}% correlated)"));
            }
            if what == "reorder" && n.gap > 1 {
                part.push_str(&format!(" gap {}", n.gap));
            }
            parts.push(part);
        }
    }
    match &n.loss_model {
        Some(LossModel::GilbertElliott {
            p,
            r,
            bad_loss,
            good_loss,
        }) => parts.push(format!(
            "gilbert-elliott p {p}% r {r}% bad-loss {bad_loss}% good-loss {good_loss}%"
        )),
        Some(LossModel::FourState {
            p13,
            p31,
            p32,
            p23,
            p14,
        }) => parts.push(format!(
            "four-state p13 {p13}% p31 {p31}% p32 {p32}% p23 {p23}% p14 {p14}%"
        )),
        None => {}
    }
    if let Some(rate) = n.rate_bytes_per_sec {
        let mut part = format!("{}kbit", rate * 8 / 1000);
        if n.packet_overhead != 0 || n.cell_size != 0 {
            part.push_str(&format!(
                " (overhead {}, cells {}+{})",
                n.packet_overhead, n.cell_size, n.cell_overhead
            ));
        }
        parts.push(part);
    }
    if n.limit != crate::net::netem::DEFAULT_LIMIT {
        parts.push(format!("limit {}", n.limit));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The pid 1 of a running container, by its exact name in `project`.
pub(super) fn running_pid(root: &Path, project: Option<&str>, name: &str) -> Option<i32> {
    let records = crate::state::Records::open(root).ok()?;
    let record = records.find_member(project, name).ok()??.reconciled();
    record.state.pid.filter(|_| record.state.process_alive())
}

/// The engine's view of a path as JSON: per direction (`a → b`, then back), its counters.
fn engine_json(path: Option<&PathStatus>, ends: [&str; 2]) -> serde_json::Value {
    let Some(path) = path else {
        return json!({ "running": false });
    };
    let directions: Vec<serde_json::Value> = path
        .directions
        .iter()
        .zip([(ends[0], ends[1]), (ends[1], ends[0])])
        .map(|(d, (from, to))| {
            let mut value = serde_json::to_value(d).unwrap_or_default();
            value["from"] = json!(from);
            value["to"] = json!(to);
            value
        })
        .collect();
    json!({
        "running": path.error.is_none(),
        "up": path.up,
        "error": path.error,
        "directions": directions,
    })
}

/// Sums a counter over both directions.
fn total(engine: &serde_json::Value, key: &str) -> Option<u64> {
    let directions = engine["directions"].as_array()?;
    Some(directions.iter().filter_map(|d| d[key].as_u64()).sum())
}

pub(super) fn links(root: &Path, format: OutputFormat) -> Result<u8, crate::Error> {
    let records = match crate::net::link::load_links(root) {
        Ok(records) => records,
        Err(err) => return Ok(report(err)),
    };
    // The engine carries these links: make sure it runs (it restarts with what it had).
    if records
        .iter()
        .any(|l| l.carrier == Some(Carrier::Userspace))
        && crate::net::engine::daemon::running(root).is_none()
        && let Err(err) = crate::net::engine::daemon::ensure(root)
    {
        eprintln!("{:?}", miette::Report::new(err));
    }
    let status = crate::net::engine::daemon::status(root);
    let mut values: Vec<serde_json::Value> = records
        .iter()
        .map(|link| {
            let ends: Vec<serde_json::Value> = link
                .ends()
                .iter()
                .map(|(container, interface)| {
                    let state = running_pid(root, Some(&link.project), container)
                        .and_then(|pid| crate::net::link::end_state(pid, interface).ok());
                    let (kernel_link, netem) = state.unwrap_or((None, None));
                    json!({
                        "container": container,
                        "interface": interface,
                        "up": kernel_link.as_ref().map(|l| l.up),
                        "rx_bytes": kernel_link.as_ref().map(|l| l.stats.rx_bytes),
                        "tx_bytes": kernel_link.as_ref().map(|l| l.stats.tx_bytes),
                        "rx_dropped": kernel_link.as_ref().map(|l| l.stats.rx_dropped),
                        "impairment": netem.as_ref().map(describe_netem),
                    })
                })
                .collect();
            let engine = match link.carrier {
                Some(Carrier::Userspace) => {
                    let id = link.id();
                    let path = status
                        .as_ref()
                        .and_then(|s| s.paths.iter().find(|p| p.id == id));
                    engine_json(path, [&link.a, &link.b])
                }
                _ => serde_json::Value::Null,
            };
            json!({
                "project": link.project,
                "a": link.a,
                "b": link.b,
                "subnet": link.subnet.map(|s| s.to_string()),
                "impairment": link.impair.as_ref().map(describe_netem),
                "settings": link.impair,
                "carried_by": link.carrier.map(Carrier::name),
                "engine": engine,
                "ends": ends,
            })
        })
        .collect();
    values.extend(underlay_paths(root));
    match format {
        OutputFormat::Json => json_line(&values)?,
        OutputFormat::Text => {
            let mut rows = vec![
                [
                    "LINK",
                    "SUBNET",
                    "IMPAIRMENT",
                    "ENGINE",
                    "STATE",
                    "SENT",
                    "LOST",
                    "DUPLICATED",
                    "QUEUED",
                ]
                .map(String::from)
                .to_vec(),
            ];
            for v in &values {
                let up = v["ends"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| e["up"] == true);
                let engine = &v["engine"];
                let count = |key: &str| total(engine, key).map_or("-".into(), |n| n.to_string());
                let lost = match (total(engine, "lost"), total(engine, "overlimit")) {
                    (Some(lost), Some(over)) => (lost + over).to_string(),
                    _ => "-".into(),
                };
                let state = if engine["running"] == false && !engine.is_null() {
                    "engine down".to_string()
                } else if up {
                    "up".into()
                } else {
                    "down".into()
                };
                let what = if v["underlay"] == true {
                    "underlay "
                } else {
                    ""
                };
                rows.push(vec![
                    format!(
                        "{what}{} — {}",
                        v["a"].as_str().unwrap_or(""),
                        v["b"].as_str().unwrap_or("")
                    ),
                    v["subnet"].as_str().unwrap_or("-").to_string(),
                    v["impairment"].as_str().unwrap_or("none").to_string(),
                    v["carried_by"].as_str().unwrap_or("-").to_string(),
                    state,
                    count("sent"),
                    lost,
                    count("duplicated"),
                    count("queued"),
                ]);
            }
            table(&rows)?;
        }
    }
    Ok(0)
}

/// The impaired paths of the simulated underlays (`underlay { link … }`) that kiln's engine
/// carries: one per pair of hosts, `"underlay": true`, the hosts as `a` and `b`.
fn underlay_paths(root: &Path) -> Vec<serde_json::Value> {
    let mut projects: Vec<String> = crate::project::hosts::simulated(root)
        .into_iter()
        .map(|(project, _, _)| project)
        .collect();
    projects.dedup();
    let mut values = Vec::new();
    for project in projects {
        let underlay_dir = crate::project::hosts::underlay_dir(root, &project);
        let Some(engine_root) = crate::project::underlay::engine_root(&underlay_dir) else {
            continue;
        };
        let Ok(paths) = crate::net::engine::paths::load(&engine_root) else {
            continue;
        };
        let status = crate::net::engine::daemon::status(&engine_root);
        for path in &paths.paths {
            let Some((a, b)) = path
                .id
                .strip_prefix("wan ")
                .and_then(|hosts| hosts.split_once(' '))
            else {
                continue;
            };
            let live = status
                .as_ref()
                .and_then(|s| s.paths.iter().find(|p| p.id == path.id));
            values.push(json!({
                "project": project,
                "underlay": true,
                "a": a,
                "b": b,
                "subnet": null,
                "impairment": describe_netem(&path.netem),
                "settings": path.netem,
                "carried_by": Carrier::Userspace.name(),
                "engine": engine_json(live, [a, b]),
                "ends": [],
            }));
        }
    }
    values
}

/// The settings `kiln network impair` asks for; `None` with `--clear`.
fn settings(args: &NetworkImpairArgs) -> Result<Option<Netem>, crate::Error> {
    use crate::spec::units::{Duration, Percent, Rate};
    if args.clear {
        return Ok(None);
    }
    let bad = |what: &str, value: &str, reason: String| {
        crate::Error::from(CliError::BadImpairment {
            what: what.to_string(),
            value: value.to_string(),
            reason,
        })
    };
    let duration = |v: &Option<String>, what: &str| -> Result<std::time::Duration, crate::Error> {
        v.as_deref().map_or(Ok(std::time::Duration::ZERO), |t| {
            Duration::parse(t)
                .map(Duration::as_std)
                .map_err(|r| bad(what, t, r))
        })
    };
    let percent_of = |t: &str, what: &str| -> Result<f64, crate::Error> {
        Percent::parse(t).map(|p| p.0).map_err(|r| bad(what, t, r))
    };
    let percent = |v: &Option<String>, what: &str| -> Result<f64, crate::Error> {
        v.as_deref().map_or(Ok(0.0), |t| percent_of(t, what))
    };
    let nth =
        |values: &[String], i: usize, default: f64, what: &str| -> Result<f64, crate::Error> {
            values.get(i).map_or(Ok(default), |t| percent_of(t, what))
        };
    let loss_model = match (&args.gilbert_elliott, &args.four_state) {
        (Some(v), _) => Some(LossModel::GilbertElliott {
            p: nth(v, 0, 0.0, "gilbert-elliott p")?,
            r: nth(v, 1, 100.0, "gilbert-elliott r")?,
            bad_loss: nth(v, 2, 100.0, "gilbert-elliott bad loss")?,
            good_loss: nth(v, 3, 0.0, "gilbert-elliott good loss")?,
        }),
        (None, Some(v)) => {
            let p13 = nth(v, 0, 0.0, "four-state p13")?;
            Some(LossModel::FourState {
                p13,
                p31: nth(v, 1, 100.0 - p13, "four-state p31")?,
                p32: nth(v, 2, 0.0, "four-state p32")?,
                p23: nth(v, 3, 100.0, "four-state p23")?,
                p14: nth(v, 4, 0.0, "four-state p14")?,
            })
        }
        (None, None) => None,
    };
    let netem = Netem {
        delay: duration(&args.delay, "delay")?,
        jitter: duration(&args.jitter, "jitter")?,
        delay_correlation: percent(&args.delay_correlation, "delay correlation")?,
        distribution: args
            .distribution
            .as_deref()
            .and_then(Distribution::from_name)
            .unwrap_or_default(),
        loss_percent: percent(&args.loss, "loss")?,
        loss_correlation: percent(&args.loss_correlation, "loss correlation")?,
        loss_model,
        rate_bytes_per_sec: args
            .rate
            .as_deref()
            .map(|t| {
                Rate::parse(t)
                    .map(|r| r.0 / 8)
                    .map_err(|r| bad("rate", t, r))
            })
            .transpose()?,
        packet_overhead: args.packet_overhead.unwrap_or(0),
        cell_size: args.cell_size.unwrap_or(0),
        cell_overhead: args.cell_overhead.unwrap_or(0),
        corrupt_percent: percent(&args.corrupt, "corrupt")?,
        duplicate_percent: percent(&args.duplicate, "duplicate")?,
        reorder_percent: percent(&args.reorder, "reorder")?,
        gap: args.gap.unwrap_or(0),
        limit: args.limit.unwrap_or(crate::net::netem::DEFAULT_LIMIT),
        seed: args.seed,
        ..Netem::default()
    };
    netem.validate()?;
    Ok(Some(netem))
}

pub(super) fn impair(root: &Path, args: &NetworkImpairArgs) -> Result<u8, crate::Error> {
    if args.down || args.up {
        return carrier(root, &args.endpoint, args.up);
    }
    let netem = settings(args)?;
    let engine = args.engine.as_deref().and_then(Engine::from_name);
    let mut records = match crate::net::link::load_links(root) {
        Ok(records) => records,
        Err(err) => return Ok(report(err)),
    };
    // `r1:eth1`, or `PROJECT/r1:eth1` when several projects have the end.
    let candidates = records.iter().enumerate().flat_map(|(i, l)| {
        [&l.a, &l.b].map(|end| crate::scope::Candidate {
            project: Some(l.project.clone()),
            name: end.clone(),
            item: i,
        })
    });
    let context = super::current_project(None);
    let found = crate::scope::resolve(
        crate::scope::Kind::Link,
        &args.endpoint,
        context.as_deref(),
        candidates,
    )
    .map_err(crate::state::RecordError::from)
    .map_err(crate::containers::ContainerError::from)?;
    let Some(link) = found.and_then(|i| records.get_mut(i)) else {
        return impair_attachment(root, args, netem.as_ref());
    };
    let carrier = match impair_link(root, link, netem.as_ref(), engine) {
        Ok(carrier) => carrier,
        Err(err) => return Ok(report(err)),
    };
    link.impair = netem.clone();
    link.carrier = carrier;
    let project = link.project.clone();
    let mine: Vec<_> = records
        .into_iter()
        .filter(|l| l.project == project)
        .collect();
    if let Err(err) = crate::net::link::save_project_links(root, &project, mine) {
        return Ok(report(err));
    }
    line(format!(
        "{}: {}{}",
        args.endpoint,
        netem
            .as_ref()
            .map_or_else(|| "no impairment".to_string(), describe_netem),
        carrier.map_or_else(String::new, |c| format!(" ({} engine)", c.name()))
    ))?;
    Ok(0)
}

/// Applies `netem` to a running link (see [`crate::net::link::reimpair`]).
fn impair_link(
    root: &Path,
    link: &LinkRecord,
    netem: Option<&Netem>,
    engine: Option<Engine>,
) -> Result<Option<Carrier>, crate::Error> {
    let mut pids = [0; 2];
    for ((container, _), pid) in link.ends().into_iter().zip(&mut pids) {
        *pid = running_pid(root, Some(&link.project), container).ok_or_else(|| {
            CliError::LinkEndDown {
                container: container.to_string(),
            }
        })?;
    }
    Ok(crate::net::link::reimpair(root, link, pids, netem, engine)?)
}

/// `kiln network impair web:eth0`: a container's impaired attachment to a network.
fn impair_attachment(
    root: &Path,
    args: &NetworkImpairArgs,
    netem: Option<&Netem>,
) -> Result<u8, crate::Error> {
    let not_found = || CliError::UnknownLinkEnd {
        end: args.endpoint.clone(),
    };
    let (container, name) = args.endpoint.split_once(':').ok_or_else(not_found)?;
    let records = crate::state::Records::open(root).map_err(|_| not_found())?;
    let record = match records.resolve(container, super::current_project(None).as_deref()) {
        Ok(record) => record,
        Err(err @ crate::state::RecordError::AmbiguousName(_)) => {
            return Err(crate::containers::ContainerError::from(err).into());
        }
        Err(_) => return Err(not_found().into()),
    };
    let launch =
        crate::containers::Launch::load(&records.dir(&record.id)).map_err(|_| not_found())?;
    let interface = launch
        .interfaces
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(not_found)?;
    if interface.impair.is_none() {
        return Err(CliError::NothingToImpair {
            end: args.endpoint.clone(),
            network: interface.network.clone(),
        }
        .into());
    }
    if args.engine.is_some() {
        return Err(CliError::EngineOfAttachment.into());
    }
    let Some(pid) = running_pid(root, record.project(), &record.name) else {
        return Err(CliError::LinkEndDown {
            container: container.to_string(),
        }
        .into());
    };
    let carrier = crate::net::impair::choose(interface.engine)?;
    let result = match carrier {
        Carrier::Userspace => {
            let (inner, outer) = interface.ports()?;
            let default = Netem::default();
            crate::net::impair::carry(
                root,
                &interface.path_id(),
                [inner, outer],
                netem.unwrap_or(&default),
            )
        }
        Carrier::Kernel => crate::net::attach::set_impairment(root, pid, interface, netem),
    };
    if let Err(err) = result {
        return Ok(report(err));
    }
    line(format!(
        "{}: {} ({} engine)",
        args.endpoint,
        netem.map_or_else(|| "no impairment".to_string(), describe_netem),
        carrier.name()
    ))?;
    Ok(0)
}

/// `kiln network impair END --down` / `--up`: END's interface down or up in its container
/// (see [`crate::net::carrier`]); an engine link's path follows.
fn carrier(root: &Path, endpoint: &str, up: bool) -> Result<u8, crate::Error> {
    let context = super::current_project(None);
    if let Err(err) = set_carrier(root, context.as_deref(), endpoint, up)? {
        return Ok(report(err));
    }
    line(format!(
        "{endpoint}: {}",
        if up { "carrier on" } else { "carrier off" }
    ))?;
    Ok(0)
}

/// Sets END's carrier (`c:eth1`, or `PROJECT/c:eth1`; a bare name is looked up from the
/// project `context` as container names are); the outer error is the command line's (no
/// such container), the inner the network's.
pub(super) fn set_carrier(
    root: &Path,
    context: Option<&str>,
    endpoint: &str,
    up: bool,
) -> Result<Result<(), crate::net::NetError>, crate::Error> {
    let not_found = || CliError::UnknownLinkEnd {
        end: endpoint.to_string(),
    };
    let (container, interface) = endpoint
        .rsplit_once(':')
        .filter(|(c, i)| !c.is_empty() && !i.is_empty())
        .ok_or_else(not_found)?;
    let records = crate::state::Records::open(root).map_err(|_| not_found())?;
    let record = match records.resolve(container, context) {
        Ok(record) => record,
        Err(err @ crate::state::RecordError::AmbiguousName(_)) => {
            return Err(crate::containers::ContainerError::from(err).into());
        }
        Err(_) => return Err(not_found().into()),
    };
    let Some(pid) = running_pid(root, record.project(), &record.name) else {
        return Err(CliError::LinkEndDown {
            container: container.to_string(),
        }
        .into());
    };
    let end = format!("{}:{interface}", record.name);
    let links = crate::net::link::load_links(root).unwrap_or_default();
    let path = links
        .iter()
        .find(|l| {
            Some(l.project.as_str()) == record.project()
                && (l.a == end || l.b == end)
                && l.carrier == Some(Carrier::Userspace)
        })
        .map(LinkRecord::id);
    Ok(crate::net::carrier::set(
        root,
        pid,
        interface,
        up,
        path.as_deref(),
    ))
}
