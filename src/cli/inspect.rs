//! `kiln inspect [--type image|container|network|volume] NAME`: finds what NAME names (one
//! kind only, unless --type says which) and shows it — an image as `images.rs` does, a
//! network as `kiln network inspect`, a volume as `kiln volume inspect`, a container here,
//! in Docker's field names for JSON.

use serde_json::{Value, json};

use super::args::{Cli, InspectArgs, InspectKind, OutputFormat};
use super::error::CliError;
use super::output::{json_line, line};
use crate::containers::{self, ContainerError, Details};
use crate::state::{Records, Status};

fn kind_name(kind: InspectKind) -> &'static str {
    match kind {
        InspectKind::Image => "image",
        InspectKind::Container => "container",
        InspectKind::Network => "network",
        InspectKind::Volume => "volume",
    }
}

/// The kinds of object `name` names in this state root (nothing is created looking).
fn kinds_named(cli: &Cli, name: &str) -> Vec<InspectKind> {
    let root = super::state_root(cli);
    let context = super::current_project(None);
    let mut kinds = Vec::new();
    let store = root.join("store");
    if store.join("index.json").is_file()
        && crate::store::Store::open(&store).is_ok_and(|s| {
            super::image_name(&s, name)
                .is_ok_and(|name| crate::image::StoredImage::load(&s, &name).is_ok())
        })
    {
        kinds.push(InspectKind::Image);
    }
    if root.join("containers").is_dir()
        && Records::open(&root).is_ok_and(|r| match r.resolve(name, context.as_deref()) {
            Ok(_) => true,
            Err(crate::state::RecordError::NotFound { .. }) => false,
            // Several containers: a container it names, ambiguously (said when shown).
            Err(_) => true,
        })
    {
        kinds.push(InspectKind::Container);
    }
    if crate::net::records::NetworkRecords::open(&root)
        .is_ok_and(|r| r.resolve(name, context.as_deref()).is_ok())
    {
        kinds.push(InspectKind::Network);
    }
    match crate::state::volumes::VolumeStore::open(&root).resolve(name, context.as_deref()) {
        Ok(_) | Err(crate::state::volumes::VolumeError::Ambiguous(_)) => {
            kinds.push(InspectKind::Volume);
        }
        Err(_) => {}
    }
    kinds
}

pub(super) fn run(cli: &Cli, args: &InspectArgs) -> Result<u8, crate::Error> {
    let kind = match args.kind {
        Some(kind) => kind,
        None => match kinds_named(cli, &args.image).as_slice() {
            [kind] => *kind,
            [] => {
                return Err(CliError::NothingNamed {
                    name: args.image.clone(),
                }
                .into());
            }
            several => {
                return Err(CliError::SeveralNamed {
                    name: args.image.clone(),
                    kinds: several
                        .iter()
                        .map(|k| kind_name(*k))
                        .collect::<Vec<_>>()
                        .join(", "),
                    first: kind_name(several[0]),
                }
                .into());
            }
        },
    };
    match kind {
        InspectKind::Image => super::images::inspect(cli, args),
        InspectKind::Network => {
            super::network::show(&super::state_root(cli), &args.image, args.format)
        }
        InspectKind::Container => container(cli, args),
        InspectKind::Volume => {
            super::volume::inspect(cli, std::slice::from_ref(&args.image), args.format)
        }
    }
}

fn container(cli: &Cli, args: &InspectArgs) -> Result<u8, crate::Error> {
    let outcome = (|| {
        let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
        let record = super::find_container(&records, &args.image)?;
        containers::details(&records, &record)
    })();
    let details = match outcome {
        Ok(details) => details,
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            return Ok(1);
        }
    };
    let value = docker_json(&details);
    match args.format {
        OutputFormat::Json => json_line(&value)?,
        OutputFormat::Text => text(&details, &value)?,
    }
    Ok(0)
}

fn protocol(p: &containers::Published) -> &'static str {
    match p.protocol {
        crate::net::proxy::Protocol::Tcp => "tcp",
        crate::net::proxy::Protocol::Udp => "udp",
    }
}

/// A container as `docker inspect` shows one, in the fields kiln has.
fn docker_json(details: &Details) -> Value {
    let record = &details.record;
    let state = &record.state;
    let process = details.spec.as_ref().and_then(|s| s.process().clone());
    let launch = details.launch.as_ref();
    let (policy, retries) = match record.restart.split_once(':') {
        Some((name, max)) => (name.to_string(), max.parse::<u32>().unwrap_or(0)),
        None => (record.restart.clone(), 0),
    };
    let running = state.status == Status::Running;
    let bindings: serde_json::Map<String, Value> = launch
        .map(|l| l.publish.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                format!("{}/{}", p.port, protocol(p)),
                json!([{"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}]),
            )
        })
        .collect();
    let networks: serde_json::Map<String, Value> = launch
        .map(|l| l.interfaces.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|i| {
            (
                i.network.clone(),
                json!({
                    "IPAddress": i.address.ip().to_string(),
                    "IPPrefixLen": i.address.prefix(),
                    "Gateway": i.gateway.to_string(),
                    "InterfaceName": i.name,
                }),
            )
        })
        .collect();
    json!({
        "Id": record.id.as_str(),
        "Name": record.reference(),
        "Created": record.created,
        "Path": record.command.first(),
        "Args": record.command.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            // Docker's: a paused container runs, and its status says paused.
            "Status": if details.paused { "paused".to_string() } else { state.status.to_string() },
            "Running": running,
            "Paused": details.paused,
            "Restarting": state.status == Status::Restarting,
            "OOMKilled": state.oom_killed,
            "Dead": false,
            "Pid": state.pid.unwrap_or(0),
            "ExitCode": state.exit_code.unwrap_or(0),
            "StartedAt": state.started_at,
            "FinishedAt": state.finished_at,
            "Health": state.health.as_ref().map(|h| json!({
                "Status": h,
                "FailingStreak": state.health_failing_streak,
                "Output": state.health_output,
            })),
        },
        "Image": record.image_digest,
        "RestartCount": state.restarts,
        "Config": {
            "Image": record.image,
            "Hostname": details.spec.as_ref().and_then(|s| s.hostname().clone()),
            "User": process.as_ref().map(|p| format!("{}:{}", p.user().uid(), p.user().gid())),
            "Env": process.as_ref().and_then(|p| p.env().clone()).unwrap_or_default(),
            "Cmd": record.command,
            "WorkingDir": process.as_ref().map(|p| p.cwd().display().to_string()),
            "Tty": process.as_ref().and_then(|p| p.terminal()).unwrap_or(false),
        },
        "HostConfig": {
            "RestartPolicy": {"Name": policy, "MaximumRetryCount": retries},
            "AutoRemove": launch.is_some_and(|l| l.remove),
            "Memory": launch.and_then(|l| l.memory).unwrap_or(0),
            "NanoCpus": launch.and_then(|l| l.cpus).map_or(0, |c| (c * 1e9) as u64),
            "PidsLimit": launch.and_then(|l| l.pids),
            "ReadonlyRootfs": details.spec.as_ref()
                .and_then(|s| s.root().as_ref().and_then(|r| r.readonly()))
                .unwrap_or(false),
            "PortBindings": bindings,
        },
        "NetworkSettings": {
            "Ports": if running { Value::Object(bindings.clone()) } else { json!({}) },
            "Networks": networks,
        },
        "Project": record.project(),
        "Service": record.member.as_ref().map(|m| m.service.as_str()),
    })
}

fn text(details: &Details, value: &Value) -> Result<(), crate::Error> {
    let record = &details.record;
    let state = &record.state;
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    };
    line(format!("name:          {}", record.reference()))?;
    line(format!("id:            {}", record.id.as_str()))?;
    line(format!(
        "image:         {} ({})",
        record.image, record.image_digest
    ))?;
    let status = match (state.status, state.pid, state.exit_code) {
        (Status::Running, Some(pid), _) if details.paused => format!("paused (pid {pid})"),
        (Status::Running, Some(pid), _) => format!("running (pid {pid})"),
        (Status::Exited, _, Some(code)) => format!("exited ({code})"),
        (status, _, _) => status.to_string(),
    };
    line(format!("status:        {status}"))?;
    if let Some(health) = &state.health {
        line(format!("health:        {health}"))?;
    }
    line(format!("created:       {}", record.created))?;
    line(format!(
        "started:       {}",
        show(&value["State"]["StartedAt"])
    ))?;
    line(format!(
        "finished:      {}",
        show(&value["State"]["FinishedAt"])
    ))?;
    line(format!(
        "command:       {}",
        serde_json::to_string(&record.command).unwrap_or_default()
    ))?;
    line(format!(
        "restart:       {} ({} restarts)",
        record.restart, state.restarts
    ))?;
    if let Some(launch) = &details.launch {
        for i in &launch.interfaces {
            line(format!(
                "network:       {} {} {}",
                i.network, i.name, i.address
            ))?;
        }
        for p in &launch.publish {
            line(format!(
                "port:          {}/{} -> {}",
                p.port,
                protocol(p),
                p.host_address()
            ))?;
        }
    }
    Ok(())
}
