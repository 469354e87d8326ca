//! `kiln network create|ls|inspect|rm|exec` and the hidden `kiln __netd` and `__netsup`.

use serde_json::json;

use super::Cli;
use super::args::{NetworkCommand, OutputFormat};
use super::error::CliError;
use super::output::{json_line, line, table};
use crate::net::nft::Nft;
use crate::net::records::{NetworkRecord, NetworkRecords};
use crate::net::{HostNamespace, NetNs, Netlink, antispoof, network};

fn report(err: impl miette::Diagnostic + Send + Sync + 'static) -> u8 {
    eprintln!("{:?}", miette::Report::new(err));
    1
}

pub(super) fn run(cli: &Cli, command: &NetworkCommand) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    match command {
        NetworkCommand::Create(args) => {
            match network::ensure_new(&root, &args.name, args.subnet, args.internal) {
                Ok(record) => {
                    line(format!(
                        "{}  {}  gateway {}",
                        record.name, record.subnet, record.gateway
                    ))?;
                    Ok(0)
                }
                Err(err) => Ok(report(err)),
            }
        }
        NetworkCommand::List(args) => {
            let records = match NetworkRecords::open(&root).and_then(|r| r.list()) {
                Ok(list) => list,
                Err(err) => return Ok(report(err)),
            };
            match args.format {
                OutputFormat::Json => json_line(&records)?,
                OutputFormat::Text => {
                    let mut rows = vec![vec![
                        "NAME".to_string(),
                        "SUBNET".into(),
                        "GATEWAY".into(),
                        "BRIDGE".into(),
                        "CONTAINERS".into(),
                        "PROJECT".into(),
                    ]];
                    for n in &records {
                        rows.push(vec![
                            n.name.clone(),
                            n.subnet.to_string(),
                            n.gateway.to_string(),
                            n.bridge.clone(),
                            n.members.len().to_string(),
                            n.project.clone().unwrap_or_default(),
                        ]);
                    }
                    table(&rows)?;
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect(args) => {
            let record = match NetworkRecords::open(&root).and_then(|r| r.load(&args.name)) {
                Ok(record) => record,
                Err(err) => return Ok(report(err)),
            };
            let value = inspect(&root, &record);
            match args.format {
                OutputFormat::Json => json_line(&value)?,
                OutputFormat::Text => {
                    line(format!(
                        "{}: {} gateway {} bridge {}{}, anti-spoofing: on",
                        record.name,
                        record.subnet,
                        record.gateway,
                        record.bridge,
                        if record.internal { " (internal)" } else { "" }
                    ))?;
                    for member in value["members"].as_array().into_iter().flatten() {
                        let spoofing = match member["spoofed_dropped_packets"].as_u64() {
                            None => "  anti-spoofing: off".to_string(),
                            Some(0) => String::new(),
                            Some(_) => format!(
                                "  spoofed frames dropped: {}",
                                member["spoofed_dropped"]
                                    .as_array()
                                    .into_iter()
                                    .flatten()
                                    .filter(|d| d["packets"].as_u64() > Some(0))
                                    .map(|d| format!(
                                        "{} {}",
                                        d["packets"],
                                        d["reason"].as_str().unwrap_or("")
                                    ))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        };
                        line(format!(
                            "  {} {} {}  rx {} B  tx {} B{}{}",
                            member["name"].as_str().unwrap_or(""),
                            member["interface"].as_str().unwrap_or(""),
                            member["address"].as_str().unwrap_or(""),
                            member["rx_bytes"],
                            member["tx_bytes"],
                            member["impairment"]
                                .as_str()
                                .map(|i| format!("  impaired: {i}"))
                                .unwrap_or_default(),
                            spoofing
                        ))?;
                    }
                }
            }
            Ok(0)
        }
        NetworkCommand::Rm(args) => {
            let mut code = 0;
            for name in &args.names {
                match network::remove(&root, name) {
                    Ok(_) => line(name)?,
                    Err(err) => code = report(err),
                }
            }
            Ok(code)
        }
        NetworkCommand::Links(args) => links(&root, args.format),
        NetworkCommand::Impair(args) => impair(&root, args),
        NetworkCommand::Exec(args) => match crate::net::exec_in(&root, &args.command) {
            Ok(status) => Ok(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
            Err(err) => Ok(report(err)),
        },
    }
}

/// A network with its members, their host-side counters and impairments.
fn inspect(root: &std::path::Path, record: &NetworkRecord) -> serde_json::Value {
    let host_ns = NetNs::open(&HostNamespace::path(root)).ok();
    let netlink = host_ns.as_ref().and_then(|ns| Netlink::open_in(ns).ok());
    let mut nft = host_ns.as_ref().and_then(|ns| Nft::open_in(ns).ok());
    let members: Vec<serde_json::Value> = record
        .members
        .iter()
        .map(|m| {
            let index = m
                .interface
                .strip_prefix("eth")
                .and_then(|i| i.parse::<u16>().ok())
                .unwrap_or(0);
            let host = crate::net::names::host_veth_name(&m.container_id, index).ok();
            let link = match (&netlink, &host) {
                (Some(nl), Some(host)) => nl.link(host).ok().flatten(),
                _ => None,
            };
            let impairment = match (&netlink, &host) {
                (Some(nl), Some(host)) => nl
                    .qdiscs(host)
                    .ok()
                    .and_then(|q| q.into_iter().find_map(|q| q.netem))
                    .map(|n| describe_netem(&n)),
                _ => None,
            };
            // The port's drops, rule by rule; `null` when it has no rules (a container
            // attached by a kiln without anti-spoofing).
            let dropped = match (&mut nft, &host) {
                (Some(nft), Some(host)) => antispoof::dropped(nft, host).ok().flatten(),
                _ => None,
            };
            let dropped_packets: Option<u64> =
                dropped.as_ref().map(|d| d.iter().map(|r| r.packets).sum());
            json!({
                "name": m.container_name,
                "id": m.container_id,
                "interface": m.interface,
                "address": m.address.to_string(),
                "aliases": m.aliases,
                "host_interface": host,
                "up": link.as_ref().map(|l| l.up),
                // Seen from the bridge: what the container sent is received here.
                "tx_bytes": link.as_ref().map(|l| l.stats.rx_bytes),
                "rx_bytes": link.as_ref().map(|l| l.stats.tx_bytes),
                "tx_packets": link.as_ref().map(|l| l.stats.rx_packets),
                "rx_packets": link.as_ref().map(|l| l.stats.tx_packets),
                "impairment": impairment,
                "anti_spoofing": if dropped.is_some() { "on" } else { "off" },
                "spoofed_dropped_packets": dropped_packets,
                "spoofed_dropped": dropped,
            })
        })
        .collect();
    // The project's links live beside its networks: show them with each network.
    let links: Vec<serde_json::Value> = crate::net::link::load_links(root)
        .unwrap_or_default()
        .into_iter()
        .filter(|l| record.project.as_deref() == Some(l.project.as_str()))
        .map(|l| {
            json!({
                "a": l.a,
                "b": l.b,
                "subnet": l.subnet.map(|s| s.to_string()),
                "impairment": l.impair.as_ref().map(describe_netem),
            })
        })
        .collect();
    json!({
        "links": links,
        "name": record.name,
        "subnet": record.subnet.to_string(),
        "gateway": record.gateway.to_string(),
        "bridge": record.bridge,
        "internal": record.internal,
        // Every attachment gets the rules (src/net/antispoof.rs); members say if theirs are.
        "anti_spoofing": "on",
        "project": record.project,
        "created": record.created,
        "members": members,
    })
}

/// `20ms ±5ms, 1% loss, 10mbit` from a netem read back from the kernel.
pub(crate) fn describe_netem(n: &crate::net::Netem) -> String {
    let mut parts = Vec::new();
    if !n.delay.is_zero() {
        let mut delay = format!("{}ms", n.delay.as_secs_f64() * 1000.0);
        if !n.jitter.is_zero() {
            delay.push_str(&format!(" ±{}ms", n.jitter.as_secs_f64() * 1000.0));
        }
        parts.push(delay);
    }
    for (value, what) in [
        (n.loss_percent, "loss"),
        (n.corrupt_percent, "corrupt"),
        (n.duplicate_percent, "duplicate"),
        (n.reorder_percent, "reorder"),
    ] {
        if value > 0.0 {
            parts.push(format!("{value}% {what}"));
        }
    }
    if let Some(rate) = n.rate_bytes_per_sec {
        parts.push(format!("{}kbit", rate * 8 / 1000));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// The pid 1 of a running container, by name.
fn running_pid(root: &std::path::Path, name: &str) -> Option<i32> {
    let records = crate::state::Records::open(root).ok()?;
    let record = records.find_named(name).ok()??.reconciled();
    record.state.pid.filter(|_| record.state.process_alive())
}

fn links(root: &std::path::Path, format: OutputFormat) -> Result<u8, crate::Error> {
    let records = match crate::net::link::load_links(root) {
        Ok(records) => records,
        Err(err) => return Ok(report(err)),
    };
    let values: Vec<serde_json::Value> = records
        .iter()
        .map(|link| {
            let ends: Vec<serde_json::Value> = link
                .ends()
                .iter()
                .map(|(container, interface)| {
                    let state = running_pid(root, container)
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
            json!({
                "project": link.project,
                "a": link.a,
                "b": link.b,
                "subnet": link.subnet.map(|s| s.to_string()),
                "impairment": link.impair.as_ref().map(describe_netem),
                "ends": ends,
            })
        })
        .collect();
    match format {
        OutputFormat::Json => json_line(&values)?,
        OutputFormat::Text => {
            let mut rows = vec![vec![
                "LINK".to_string(),
                "SUBNET".into(),
                "IMPAIRMENT".into(),
                "STATE".into(),
            ]];
            for v in &values {
                let up = v["ends"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .all(|e| e["up"] == true);
                rows.push(vec![
                    format!(
                        "{} — {}",
                        v["a"].as_str().unwrap_or(""),
                        v["b"].as_str().unwrap_or("")
                    ),
                    v["subnet"].as_str().unwrap_or("-").to_string(),
                    v["ends"][0]["impairment"]
                        .as_str()
                        .unwrap_or("none")
                        .to_string(),
                    if up { "up".into() } else { "down".into() },
                ]);
            }
            table(&rows)?;
        }
    }
    Ok(0)
}

fn impair(
    root: &std::path::Path,
    args: &super::args::NetworkImpairArgs,
) -> Result<u8, crate::Error> {
    use crate::spec::units::{Duration, Percent, Rate};
    let bad = |what: &str, value: &str, reason: String| -> crate::Error {
        CliError::BadImpairment {
            what: what.to_string(),
            value: value.to_string(),
            reason,
        }
        .into()
    };
    let duration = |v: &Option<String>, what: &str| -> Result<std::time::Duration, crate::Error> {
        v.as_deref().map_or(Ok(std::time::Duration::ZERO), |t| {
            Duration::parse(t)
                .map(Duration::as_std)
                .map_err(|r| bad(what, t, r))
        })
    };
    let percent = |v: &Option<String>, what: &str| -> Result<f64, crate::Error> {
        v.as_deref().map_or(Ok(0.0), |t| {
            Percent::parse(t).map(|p| p.0).map_err(|r| bad(what, t, r))
        })
    };
    let netem = if args.clear {
        None
    } else {
        Some(crate::net::Netem {
            delay: duration(&args.delay, "delay")?,
            jitter: duration(&args.jitter, "jitter")?,
            loss_percent: percent(&args.loss, "loss")?,
            rate_bytes_per_sec: args
                .rate
                .as_deref()
                .map(|t| {
                    Rate::parse(t)
                        .map(|r| r.0 / 8)
                        .map_err(|r| bad("rate", t, r))
                })
                .transpose()?,
            corrupt_percent: percent(&args.corrupt, "corrupt")?,
            duplicate_percent: percent(&args.duplicate, "duplicate")?,
            reorder_percent: percent(&args.reorder, "reorder")?,
            ..crate::net::Netem::default()
        })
    };
    let mut records = match crate::net::link::load_links(root) {
        Ok(records) => records,
        Err(err) => return Ok(report(err)),
    };
    let Some(link) = records
        .iter_mut()
        .find(|l| l.a == args.endpoint || l.b == args.endpoint)
    else {
        return Err(CliError::UnknownLinkEnd {
            end: args.endpoint.clone(),
        }
        .into());
    };
    for (container, interface) in link.ends() {
        let Some(pid) = running_pid(root, container) else {
            return Err(CliError::LinkEndDown {
                container: container.to_string(),
            }
            .into());
        };
        if let Err(err) = crate::net::link::set_impairment(pid, interface, netem.as_ref()) {
            return Ok(report(err));
        }
    }
    link.impair = netem.clone();
    let project = link.project.clone();
    let mine: Vec<_> = records
        .into_iter()
        .filter(|l| l.project == project)
        .collect();
    if let Err(err) = crate::net::link::save_project_links(root, &project, mine) {
        return Ok(report(err));
    }
    line(format!(
        "{}: {}",
        args.endpoint,
        netem
            .as_ref()
            .map_or_else(|| "no impairment".to_string(), describe_netem)
    ))?;
    Ok(0)
}

/// `kiln __netd`.
pub(super) fn netd(cli: &Cli) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    match crate::net::daemon::serve(&root) {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!("kiln netd: {err}");
            Ok(1)
        }
    }
}

/// `kiln __netsup`.
pub(super) fn netsup(cli: &Cli) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    match crate::net::supervise::supervise(&root) {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!("kiln netsup: {err}");
            Ok(1)
        }
    }
}
