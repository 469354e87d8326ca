//! `kiln run`, `ps`, `logs`, `stop`, `kill`, `restart`, `rm`, `bundle` and the hidden
//! `__supervise`.

use serde_json::json;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use super::args::{
    BundleArgs, Cli, ContainerOptionArgs, CreateArgs, KillArgs, LogsArgs, OutputFormat, PauseArgs,
    PsArgs, RmArgs, RunArgs, StopArgs, SuperviseArgs,
};
use super::error::CliError;
use super::output::{json_line, line, table};
use std::collections::BTreeMap;

use crate::containers::{self, ContainerError, Mount, NamedVolume, RunRequest};
use crate::runtime::spec::{NetworkMode, RunOptions, SpecError};
use crate::runtime::supervise::{RestartPolicy, Stream};
use crate::runtime::{Profile, SeccompChoice, UNCONFINED};
use crate::state::{Record, Records, Status};

/// `--security-opt` values, with Docker's meanings: the seccomp profile to use.
pub(super) fn security_opts(opts: &[String]) -> Result<SeccompChoice, ContainerError> {
    let mut seccomp: Option<(SeccompChoice, &str)> = None;
    for opt in opts {
        let bad = |reason: &str| ContainerError::BadSecurityOpt {
            opt: opt.clone(),
            reason: reason.into(),
        };
        // Docker takes `KEY=VALUE`, and the older `KEY:VALUE`.
        let (key, value) = match opt.split_once('=').or_else(|| opt.split_once(':')) {
            Some((key, value)) => (key, Some(value)),
            None => (opt.as_str(), None),
        };
        match (key, value) {
            ("no-new-privileges", None | Some("true")) => {}
            ("no-new-privileges", Some(_)) => {
                return Err(bad("kiln always sets no_new_privs on containers"));
            }
            ("seccomp", Some(value)) if !value.is_empty() => {
                let choice = match value {
                    UNCONFINED => SeccompChoice::Unconfined,
                    path => SeccompChoice::Profile(Profile::load(Path::new(path))?),
                };
                if let Some((_, earlier)) = seccomp.replace((choice, value))
                    && earlier != value
                {
                    return Err(bad(&format!(
                        "seccomp is given twice (`{earlier}` and `{value}`)"
                    )));
                }
            }
            ("seccomp", _) => return Err(bad("give `seccomp=unconfined` or `seccomp=FILE`")),
            ("apparmor" | "label" | "systempaths" | "mask" | "unmask", _) => {
                return Err(bad(&format!("kiln does not implement {key} options")));
            }
            _ => return Err(bad("unknown option")),
        }
    }
    Ok(seccomp.map(|(choice, _)| choice).unwrap_or_default())
}

/// The variables of `--env-file` files, in order (Docker's format, see `env_file`).
fn env_files(files: &[std::path::PathBuf]) -> Result<Vec<(String, String)>, ContainerError> {
    let mut env = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|source| ContainerError::EnvFileRead {
            path: path.clone(),
            source,
        })?;
        let pairs =
            crate::env_file::parse(&text, |key| std::env::var(key).ok()).map_err(|source| {
                ContainerError::EnvFileLine {
                    path: path.clone(),
                    source,
                }
            })?;
        env.extend(pairs);
    }
    Ok(env)
}

/// The options of `kiln run`/`create`, and the named volumes they mount.
fn run_options(args: &CreateArgs) -> Result<(RunOptions, Vec<NamedVolume>), ContainerError> {
    let mut env = env_files(&args.env_files)?;
    for pair in &args.env {
        // `-e NAME` takes the value from kiln's own environment, as Docker does.
        let (key, value) = match pair.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (pair.clone(), std::env::var(pair).unwrap_or_default()),
        };
        env.push((key, value));
    }
    let mut volumes = Vec::new();
    let mut named = Vec::new();
    let mut tmpfs = Vec::new();
    let parsed = args
        .volumes
        .iter()
        .map(|v| containers::parse_volume(v))
        .chain(args.mounts.iter().map(|m| containers::parse_mount(m)));
    for mount in parsed {
        match mount? {
            Mount::Bind(bind) => volumes.push(bind),
            Mount::Volume(volume) => named.push(volume),
            Mount::Tmpfs(t) => tmpfs.push(t),
        }
    }
    if let Some(cpus) = args.cpus
        && (cpus.is_nan() || cpus <= 0.0)
    {
        return Err(ContainerError::BadLimit {
            what: "cpus",
            value: cpus.to_string(),
            reason: "it must be more than 0".into(),
        });
    }
    if let Some(pids) = args.pids_limit
        && (pids == 0 || pids < -1)
    {
        return Err(ContainerError::BadLimit {
            what: "pids limit",
            value: pids.to_string(),
            reason: "use a positive number, or -1 for no limit".into(),
        });
    }
    let options = RunOptions {
        args: args.command.clone(),
        env,
        hostname: args.hostname.clone(),
        workdir: args.workdir.clone(),
        user: args.user.clone(),
        volumes,
        memory: args
            .memory
            .as_deref()
            .map(containers::parse_memory)
            .transpose()?,
        cpus: args.cpus,
        pids_limit: args.pids_limit,
        tty: args.tty,
        interactive: args.interactive,
        entrypoint: args.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                Vec::new()
            } else {
                vec![e.clone()]
            }
        }),
        network: match args.network.as_str() {
            "host" => NetworkMode::Host,
            _ => NetworkMode::None,
        },
        seccomp: security_opts(&args.security_opts)?,
        etc: crate::runtime::spec::EtcOptions {
            add_hosts: args
                .add_hosts
                .iter()
                .map(|h| h.parse())
                .collect::<Result<_, SpecError>>()?,
            dns: args.dns.clone(),
            dns_search: args.dns_search.clone(),
            dns_options: args.dns_options.clone(),
        },
        ..RunOptions::default()
    };
    let mut options = with_options(options, &args.options)?;
    options.tmpfs.extend(tmpfs);
    Ok((options, named))
}

/// `--label-file`s, then `--label`s over them (Docker's order).
fn labels(args: &CreateArgs) -> Result<BTreeMap<String, String>, ContainerError> {
    let mut labels = BTreeMap::new();
    let mut add = |pair: &str| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key.is_empty() {
            return Err(ContainerError::BadLimit {
                what: "label",
                value: pair.to_string(),
                reason: "write KEY=VALUE (or KEY for an empty value)".into(),
            });
        }
        labels.insert(key.to_string(), value.to_string());
        Ok(())
    };
    for file in &args.label_files {
        let text = std::fs::read_to_string(file).map_err(|source| ContainerError::Io {
            path: file.clone(),
            source,
        })?;
        for line in text.lines().map(str::trim) {
            if !line.is_empty() && !line.starts_with('#') {
                add(line)?;
            }
        }
    }
    for pair in &args.labels {
        add(pair)?;
    }
    Ok(labels)
}

/// `--read-only`, `--tmpfs`, `--cap-add`, `--cap-drop`, `--ulimit`, `--sysctl`,
/// `--stop-signal` and `--stop-timeout` over `options`.
fn with_options(
    options: RunOptions,
    args: &ContainerOptionArgs,
) -> Result<RunOptions, ContainerError> {
    Ok(RunOptions {
        read_only: args.read_only,
        tmpfs: args
            .tmpfs
            .iter()
            .map(|t| t.parse())
            .collect::<Result<_, SpecError>>()?,
        cap_add: args.cap_add.clone(),
        cap_drop: args.cap_drop.clone(),
        ulimits: args
            .ulimit
            .iter()
            .map(|u| u.parse())
            .collect::<Result<_, SpecError>>()?,
        sysctls: args
            .sysctl
            .iter()
            .map(|s| crate::runtime::spec::parse_sysctl(s))
            .collect::<Result<_, SpecError>>()?,
        stop_signal: args
            .stop_signal
            .as_ref()
            .map(|s| containers::parse_signal(s).map(|_| s.clone()))
            .transpose()?,
        stop_timeout: args.stop_timeout,
        privileged: args.privileged,
        init: args.init,
        devices: args
            .device
            .iter()
            .map(|d| d.parse())
            .collect::<Result<_, SpecError>>()?,
        ..options
    })
}

/// `-p` with `--publish-max-connections` and `--publish-idle-timeout` applied to each.
fn publish(args: &CreateArgs) -> Result<Vec<containers::Published>, ContainerError> {
    let max_connections = match args.publish_max_connections {
        Some(0) => {
            return Err(ContainerError::BadLimit {
                what: "--publish-max-connections",
                value: "0".into(),
                reason: "at least one connection must be allowed".into(),
            });
        }
        other => other,
    };
    let idle_timeout_ms = match &args.publish_idle_timeout {
        None => None,
        Some(text) => {
            let bad = |reason: String| ContainerError::BadLimit {
                what: "--publish-idle-timeout",
                value: text.clone(),
                reason,
            };
            let duration = crate::spec::units::Duration::parse(text).map_err(bad)?;
            let ms = duration.as_std().as_millis();
            if ms == 0 {
                return Err(bad("it must be longer than 0s".into()));
            }
            Some(u64::try_from(ms).unwrap_or(u64::MAX))
        }
    };
    args.publish
        .iter()
        .map(|p| {
            let mut published = containers::Published::parse(p)?;
            published.max_connections = max_connections;
            published.idle_timeout_ms = idle_timeout_ms;
            Ok(published)
        })
        .collect()
}

/// What `kiln run` did.
enum Ran {
    Foreground(containers::RunResult),
    Detached(Box<Record>),
}
use Ran::{Detached, Foreground};

/// What `kiln run` and `kiln create` make of their options: the one path from the command
/// line to a container's request (the store, the request, its health check).
pub(super) fn request(
    cli: &Cli,
    args: &CreateArgs,
    image: String,
) -> Result<
    (
        crate::store::Store,
        RunRequest,
        Option<containers::HealthCheck>,
    ),
    ContainerError,
> {
    let (options, volumes) = run_options(args)?;
    let labels = labels(args)?;
    let store = super::open_store(cli).map_err(|e| match e {
        crate::Error::Store(s) => ContainerError::Store(s),
        other => ContainerError::Io {
            path: super::state_root(cli),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    let restart =
        RestartPolicy::parse(&args.restart).map_err(|reason| ContainerError::BadLimit {
            what: "restart policy",
            value: args.restart.clone(),
            reason,
        })?;
    let net_root = match &args.host {
        None => None,
        Some(host) => Some(host_net_root(cli, host, &args.network)?),
    };
    let request = RunRequest {
        net_root: net_root.clone(),
        image,
        name: args.name.clone(),
        options,
        remove: args.rm,
        trace: args.trace,
        restart,
        member: None,
        networks: match args.network.as_str() {
            "none" | "host" => {
                if args.ip.is_some() || !args.network_aliases.is_empty() {
                    return Err(ContainerError::NetworkModeConflict {
                        network: args.network.clone(),
                    });
                }
                Vec::new()
            }
            name => vec![crate::net::attach::AttachRequest {
                network: match &net_root {
                    None => super::network_reference(cli, name),
                    Some(root) => super::network_reference_in(root, name),
                }
                .map_err(|e| ContainerError::from(crate::net::network::NetworkError::from(e)))?,
                ip: args.ip,
                aliases: args.network_aliases.clone(),
                ..Default::default()
            }],
        },
        publish: publish(args)?,
        publish_all: args.publish_all,
        volumes,
        labels,
        log: containers::parse_log_opts(&args.log_opts)?,
    };
    let health = containers::parse_health(&containers::HealthFlags {
        cmd: args.health_cmd.clone(),
        http: args.health_http.clone(),
        tcp: args.health_tcp.clone(),
        interval: args.health_interval.clone(),
        timeout: args.health_timeout.clone(),
        retries: args.health_retries,
        start_period: args.health_start_period.clone(),
    })?;
    Ok((store, request, health))
}

/// The network root of declared host `host` that has `network` (`--host`): a host of a
/// project brought up on this machine, simulated or this machine's own share.
fn host_net_root(
    cli: &Cli,
    host: &str,
    network: &str,
) -> Result<std::path::PathBuf, ContainerError> {
    if matches!(network, "none" | "host") {
        return Err(ContainerError::NetworkModeConflict {
            network: network.to_string(),
        });
    }
    let hosts = crate::project::hosts::simulated(&super::state_root(cli));
    let no_such_host = || {
        let up: Vec<String> = hosts
            .iter()
            .map(|(project, name, _)| format!("`{name}` of {project}"))
            .collect();
        ContainerError::NoSuchHost {
            host: host.to_string(),
            up: if up.is_empty() {
                "none".to_string()
            } else {
                up.join(", ")
            },
        }
    };
    let mut named = hosts.iter().filter(|(_, name, _)| name == host).peekable();
    if named.peek().is_none() {
        return Err(no_such_host());
    }
    // The project of a qualified network picks among hosts of one name in two projects.
    let project = network.split_once('/').map(|(project, _)| project);
    let candidates: Vec<_> = named
        .filter(|(p, _, _)| project.is_none_or(|project| project == p))
        .collect();
    match candidates.as_slice() {
        [(_, _, root)] => Ok(root.clone()),
        _ => candidates
            .iter()
            .find(|(_, _, root)| super::network_reference_in(root, network).is_ok())
            .map(|(_, _, root)| root.clone())
            .ok_or_else(no_such_host),
    }
}

pub(super) fn run(cli: &Cli, args: &RunArgs) -> Result<u8, crate::Error> {
    // `web`: the current project's, a plain tag, or the one project's that has it.
    let image = super::registry::run_image(&super::open_store(cli)?, &args.image, args.pull)?;
    let outcome = (|| {
        if args.detach && (args.tty || args.interactive) {
            return Err(ContainerError::BadLimit {
                what: "option",
                value: if args.tty { "-t" } else { "-i" }.into(),
                reason: "detached containers have no terminal or input yet".into(),
            });
        }
        let (store, request, health) = request(cli, args, image)?;
        if !args.detach && !args.log_opts.is_empty() {
            return Err(ContainerError::BadLogOpt {
                opt: args.log_opts[0].clone(),
                reason: "a container in the foreground writes to the terminal, not a log: add -d"
                    .into(),
            });
        }
        if args.detach {
            return containers::run_detached(&store, &super::state_root(cli), &request, health)
                .map(|record| Detached(Box::new(record)));
        }
        if health.is_some() {
            return Err(ContainerError::BadLimit {
                what: "option",
                value: "--health-*".into(),
                reason: "health checks are run by the supervisor: add -d".into(),
            });
        }
        if request.restart != RestartPolicy::No {
            return Err(ContainerError::BadLimit {
                what: "restart policy",
                value: args.restart.clone(),
                reason: "restarts are for detached containers: add -d".into(),
            });
        }
        containers::run(&store, &super::state_root(cli), &request).map(Foreground)
    })();
    match outcome {
        Ok(Detached(record)) => {
            line(record.id.as_str())?;
            Ok(0)
        }
        Ok(Foreground(result)) => {
            if let Some(limit) = result.oom_limit {
                eprintln!(
                    "kiln: exit {}: killed by the kernel, out of memory (limit {})",
                    result.exit_code(),
                    crate::spec::units::Size(limit)
                );
            }
            Ok(result.exit_code())
        }
        Err(err) => {
            let code = err.exit_code();
            eprintln!("{:?}", miette::Report::new(err));
            Ok(code)
        }
    }
}

pub(super) fn ps(cli: &Cli, args: &PsArgs) -> Result<u8, crate::Error> {
    // `ancestor=web` names an image as `kiln run web` would (the current project's first).
    let store_dir = super::state_root(cli).join("store");
    let mut filters = args.filter.clone();
    if store_dir.join("index.json").is_file() {
        let store = super::open_store(cli)?;
        for filter in &mut filters {
            if let Some(image) = filter.strip_prefix("ancestor=") {
                *filter = format!("ancestor={}", super::image_name(&store, image)?);
            }
        }
    }
    let filter = containers::ContainerFilter::parse(&filters)?;
    let root = super::state_root(cli);
    let records = Records::open(&root).map_err(ContainerError::from)?;
    let facts = containers::Facts::new(&records, &root);
    let all = records.list().map_err(ContainerError::from)?;
    let every = args.all || filter.has_status();
    let shown: Vec<_> = all
        .iter()
        .map(|r| r.reconciled())
        .filter(|r| every || matches!(r.state.status, Status::Running | Status::Restarting))
        .filter(|r| filter.matches(r, &facts))
        // Previous versions `kiln up` keeps for `kiln rollback` (`web-1~previous`) are not
        // instances of the project; they stay reachable by name.
        .filter(|r| crate::state::split_hidden(&r.name).is_none())
        .filter(|r| {
            args.project
                .as_ref()
                .is_none_or(|p| r.member.as_ref().is_some_and(|m| &m.project == p))
        })
        .collect();
    if args.quiet {
        for r in &shown {
            line(r.id.short())?;
        }
        return Ok(0);
    }
    match args.format {
        OutputFormat::Json => {
            let list: Vec<_> = shown
                .iter()
                .map(|r| {
                    json!({
                        "name": r.name,
                        "id": r.id.as_str(),
                        "image": r.image,
                        "state": r.state.status.to_string(),
                        "paused": containers::is_paused(records.state_root(), r),
                        "exit_code": r.state.exit_code,
                        "health": r.state.health,
                        "pid": r.state.pid,
                        "restarts": r.state.restarts,
                        "created": r.created,
                        "project": r.project(),
                        "service": r.member.as_ref().map(|m| m.service.as_str()),
                        "host": r.member.as_ref().and_then(|m| m.host.as_deref()),
                        "labels": r.labels,
                    })
                })
                .collect();
            json_line(&list)?;
        }
        OutputFormat::Text => {
            // A HOST column when a shown container runs on a declared host (a project
            // with hosts, see the book's "Hosts").
            let host_of = |r: &crate::state::Record| {
                r.member
                    .as_ref()
                    .and_then(|m| m.host.clone())
                    .unwrap_or_else(|| "-".to_string())
            };
            let hosts = shown
                .iter()
                .any(|r| r.member.as_ref().is_some_and(|m| m.host.is_some()));
            let mut header = vec!["CONTAINER ID", "PROJECT", "NAME"];
            if hosts {
                header.push("HOST");
            }
            header.extend(["IMAGE", "COMMAND", "CREATED", "STATUS"]);
            let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
            for r in &shown {
                let paused = containers::is_paused(records.state_root(), r);
                let status = match (r.state.status, r.state.exit_code, &r.state.health) {
                    (Status::Exited, Some(code), _) => format!("exited ({code})"),
                    (Status::Running, _, _) if paused => "paused".to_string(),
                    (Status::Running, _, Some(health)) => format!("running ({health})"),
                    (status, _, _) => status.to_string(),
                };
                let mut command = r.command.join(" ");
                if command.chars().count() > 30 {
                    command = command.chars().take(29).collect::<String>() + "…";
                }
                let mut row = vec![
                    r.id.short().to_string(),
                    r.project().unwrap_or("-").to_string(),
                    r.name.clone(),
                ];
                if hosts {
                    row.push(host_of(r));
                }
                row.extend([r.image.clone(), command, r.created.clone(), status]);
                rows.push(row);
            }
            table(&rows)?;
        }
    }
    Ok(0)
}

pub(super) fn rm(cli: &Cli, args: &RmArgs) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let records = Records::open(&root).map_err(ContainerError::from)?;
    let mut code = 0;
    for query in &args.containers {
        let result = super::find_container(&records, query)
            .map_err(ContainerError::from)
            .and_then(|record| {
                containers::remove(&records, &record, &root, args.force)?;
                if args.volumes {
                    containers::remove_anonymous_volumes(&records, &record);
                }
                Ok(record)
            });
        match result {
            Ok(record) => line(record.reference())?,
            Err(err) => {
                eprintln!("{:?}", miette::Report::new(err));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(super) fn bundle(cli: &Cli, args: &BundleArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let options = security_opts(&args.security_opts).and_then(|seccomp| {
        let options = RunOptions {
            seccomp,
            ..RunOptions::default()
        };
        with_options(options, &args.options)
    });
    let image = super::image_name(&store, &args.image)?;
    let written =
        options.and_then(|options| containers::write_bundle(&store, &image, &options, &args.dir));
    match written {
        Ok(()) => {
            line(format!(
                "{}: config.json and rootfs of {}",
                args.dir.display(),
                args.image
            ))?;
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}

/// Runs `each` on every container named, printing its name on success (as Docker does) and
/// the error otherwise; exit code 1 if any failed.
pub(super) fn for_each_container(
    cli: &Cli,
    queries: &[String],
    each: impl Fn(&Records, &Record) -> Result<(), ContainerError>,
) -> Result<u8, crate::Error> {
    let records = Records::open(&super::state_root(cli)).map_err(ContainerError::from)?;
    let mut code = 0;
    for query in queries {
        let result = super::find_container(&records, query)
            .map_err(ContainerError::from)
            .and_then(|record| each(&records, &record).map(|()| record));
        match result {
            Ok(record) => line(record.reference())?,
            Err(err) => {
                eprintln!("{:?}", miette::Report::new(err));
                code = 1;
            }
        }
    }
    Ok(code)
}

pub(super) fn stop(cli: &Cli, args: &StopArgs) -> Result<u8, crate::Error> {
    let timeout = args.time.map(Duration::from_secs);
    for_each_container(cli, &args.containers, |records, record| {
        containers::stop(records, record, timeout)
    })
}

pub(super) fn kill(cli: &Cli, args: &KillArgs) -> Result<u8, crate::Error> {
    let signal = match containers::parse_signal(&args.signal) {
        Ok(signal) => signal,
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            return Ok(1);
        }
    };
    for_each_container(cli, &args.containers, |records, record| {
        containers::kill_container(records, record, signal)
    })
}

/// `kiln pause` (`freeze`) and `kiln unpause`.
pub(super) fn pause(cli: &Cli, args: &PauseArgs, freeze: bool) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    for_each_container(cli, &args.containers, |_, record| {
        if freeze {
            containers::pause(&root, record)
        } else {
            containers::unpause(&root, record)
        }
    })
}

pub(super) fn restart(cli: &Cli, args: &StopArgs) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let timeout = args.time.map(Duration::from_secs);
    for_each_container(cli, &args.containers, |records, record| {
        containers::restart(records, record, &root, timeout)
    })
}

pub(super) fn logs(cli: &Cli, args: &LogsArgs) -> Result<u8, crate::Error> {
    if let Some(project) = &args.project {
        return super::project::project_logs(cli, project, &args.containers, args.follow);
    }
    if args.containers.len() != 1 {
        return Err(CliError::LogsNeedOneContainer.into());
    }
    let outcome = (|| {
        let now = crate::timestamp::now_ns();
        let time = |t: &Option<String>| {
            t.as_deref()
                .map(|s| containers::parse_since(s, now))
                .transpose()
        };
        let query = containers::LogQuery {
            since: time(&args.since)?,
            until: time(&args.until)?,
            tail: match args.tail {
                Some(super::args::Tail::Last(n)) => Some(n),
                Some(super::args::Tail::All) | None => None,
            },
            follow: args.follow,
        };
        let records = Records::open(&super::state_root(cli))?;
        let record = super::find_container(&records, &args.containers[0])?;
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        containers::read_logs(&records, &record, &query, |log| {
            let text = if args.timestamps {
                format!("{} {}\n", log.timestamp(), log.line)
            } else {
                format!("{}\n", log.line)
            };
            match log.stream {
                Stream::Stdout => {
                    let mut out = stdout.lock();
                    out.write_all(text.as_bytes())?;
                    out.flush()
                }
                Stream::Stderr => stderr.lock().write_all(text.as_bytes()),
            }
        })
    })();
    match outcome {
        Ok(()) => Ok(0),
        Err(ContainerError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}

pub(super) fn supervise(cli: &Cli, args: &SuperviseArgs) -> Result<u8, crate::Error> {
    Ok(containers::supervise_entry(
        &super::state_root(cli),
        &args.id,
    ))
}
