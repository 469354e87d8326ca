//! `kiln network create|ls|inspect|rm|exec` and the hidden `kiln __netd` and `__netsup`.

use serde_json::json;

use super::Cli;
use super::args::{NetworkCommand, OutputFormat};
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
            match network::ensure_new(&root, &args.name, args.subnet, args.internal, args.egress) {
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
            let records = match all_records(&root) {
                Ok(list) => list,
                Err(err) => return Ok(report(err)),
            };
            let hosts = records.iter().any(|(host, _, _)| host.is_some());
            match args.format {
                OutputFormat::Json => {
                    let list: Vec<serde_json::Value> = records
                        .iter()
                        .map(|(host, _, record)| {
                            let mut value = serde_json::to_value(record).unwrap_or_default();
                            if let (Some(host), Some(map)) = (host, value.as_object_mut()) {
                                map.insert("host".into(), json!(host));
                            }
                            value
                        })
                        .collect();
                    json_line(&list)?
                }
                OutputFormat::Text => {
                    let mut header = vec!["NAME", "SUBNET", "GATEWAY", "BRIDGE", "CONTAINERS"];
                    header.push("PROJECT");
                    if hosts {
                        header.extend(["HOST", "DRIVER"]);
                    }
                    let mut rows = vec![header.into_iter().map(String::from).collect()];
                    for (host, _, n) in &records {
                        let mut row = vec![
                            n.name.clone(),
                            n.subnet.to_string(),
                            n.gateway.to_string(),
                            n.bridge.clone(),
                            n.members.len().to_string(),
                            n.project.clone().unwrap_or_default(),
                        ];
                        if hosts {
                            row.push(host.clone().unwrap_or_else(|| "-".into()));
                            row.push(match n.overlay {
                                Some(o) => format!("overlay, VNI {}", o.vni),
                                None => "bridge".into(),
                            });
                        }
                        rows.push(row);
                    }
                    table(&rows)?;
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect(args) => {
            let context = super::current_project(None);
            let record = match NetworkRecords::open(&root)
                .and_then(|r| r.resolve(&args.name, context.as_deref()))
            {
                Ok(record) => record,
                Err(err) => {
                    // A network of simulated hosts: one record on each host.
                    let on_hosts = on_simulated_hosts(&root, &args.name, context.as_deref());
                    if on_hosts.is_empty() {
                        return Ok(report(err));
                    }
                    return super::overlay::inspect(&on_hosts, args.format, inspect);
                }
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
                        if record.internal {
                            " (internal)"
                        } else if record.egress {
                            " (egress)"
                        } else {
                            ""
                        }
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
                let removed = NetworkRecords::open(&root)
                    .and_then(|r| r.resolve(name, super::current_project(None).as_deref()))
                    .map_err(network::NetworkError::from)
                    .and_then(|record| network::remove(&root, &record.name));
                match removed {
                    Ok(record) => line(&record.name)?,
                    Err(err) => code = report(err),
                }
            }
            Ok(code)
        }
        NetworkCommand::Links(args) => super::links::links(&root, args.format),
        NetworkCommand::Impair(args) => super::links::impair(&root, args),
        NetworkCommand::Exec(args) => match crate::net::exec_in(&root, &args.command) {
            Ok(status) => Ok(status.code().map_or(1, |c| u8::try_from(c).unwrap_or(1))),
            Err(err) => Ok(report(err)),
        },
    }
}

/// Every network record: the state root's, then each simulated host's with its host.
fn all_records(
    root: &std::path::Path,
) -> Result<
    Vec<(Option<String>, std::path::PathBuf, NetworkRecord)>,
    crate::net::records::NetRecordError,
> {
    let mut all: Vec<_> = NetworkRecords::open(root)?
        .list()?
        .into_iter()
        .map(|r| (None, root.to_path_buf(), r))
        .collect();
    for (_, host, net_root) in crate::project::hosts::simulated(root) {
        for record in NetworkRecords::open(&net_root)?.list()? {
            all.push((Some(host.clone()), net_root.clone(), record));
        }
    }
    Ok(all)
}

/// The records of network `name` on each simulated host that has it: (host, its network
/// root, the record).
fn on_simulated_hosts(
    root: &std::path::Path,
    name: &str,
    context: Option<&str>,
) -> Vec<(String, std::path::PathBuf, NetworkRecord)> {
    crate::project::hosts::simulated(root)
        .into_iter()
        .filter_map(|(_, host, net_root)| {
            let record = NetworkRecords::open(&net_root)
                .and_then(|r| r.resolve(name, context))
                .ok()?;
            Some((host, net_root, record))
        })
        .collect()
}

/// A network with its members, their host-side counters and impairments.
pub(super) fn inspect(root: &std::path::Path, record: &NetworkRecord) -> serde_json::Value {
    let host_ns = NetNs::open(&HostNamespace::path(root)).ok();
    let netlink = host_ns.as_ref().and_then(|ns| Netlink::open_in(ns).ok());
    let mut nft = host_ns.as_ref().and_then(|ns| Nft::open_in(ns).ok());
    let engine_paths = crate::net::engine::paths::load(root)
        .map(|p| p.paths)
        .unwrap_or_default();
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
            // Carried by kiln's engine (a path `attach kv…`), or by netem on the port.
            let engine = host.as_ref().and_then(|host| {
                let id = format!("attach {host}");
                engine_paths.iter().find(|p| p.id == id)
            });
            let impairment = match (engine, &netlink, &host) {
                (Some(path), _, _) => Some(format!(
                    "{} (userspace engine)",
                    super::links::describe_netem(&path.netem)
                )),
                (None, Some(nl), Some(host)) => nl
                    .qdiscs(host)
                    .ok()
                    .and_then(|q| q.into_iter().find_map(|q| q.netem))
                    .map(|n| format!("{} (kernel)", super::links::describe_netem(&n))),
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
                "impairment": l.impair.as_ref().map(super::links::describe_netem),
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
        "egress": record.egress,
        // Its pasta process (see src/net/egress.rs), while it runs.
        "egress_pid": crate::net::egress::running(root, &record.name),
        // Every attachment gets the rules (src/net/antispoof.rs); members say if theirs are.
        "anti_spoofing": "on",
        "project": record.project,
        "created": record.created,
        "members": members,
    })
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

/// `kiln __linkd`.
pub(super) fn linkd(cli: &Cli) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    match crate::net::engine::daemon::work(&root) {
        Ok(()) => Ok(0),
        Err(err) => {
            eprintln!("kiln linkd: {err}");
            Ok(1)
        }
    }
}
