//! `kiln up`, `kiln down` and `kiln rollback`: the whole project at once.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use super::Cli;
use super::args::{
    BuildArgs, CompressionArg, DownArgs, OutputFormat, ProjectArg, RollbackArgs, UpArgs,
};
use super::error::CliError;
use super::output::line;
use crate::project::{self, ProjectPlan, UpEvent};
use crate::runtime::supervise::Stream;
use crate::spec::Loaded;
use crate::state::{Records, split_hidden};

/// Loads the project quietly (the build that runs first has printed its diagnostics).
fn load(cli: &Cli, file: &Path) -> Result<Result<Loaded, u8>, crate::Error> {
    let loaded = super::load_project_file(cli, file)?;
    if loaded.has_errors() {
        return Ok(Err(1));
    }
    Ok(Ok(loaded))
}

/// The directory relative paths of the project are taken from.
fn project_dir(file: &Path) -> std::path::PathBuf {
    let dir = file.parent().unwrap_or(Path::new("."));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf())
}

pub(super) fn up(cli: &Cli, args: &UpArgs) -> Result<u8, crate::Error> {
    if args.dry_run {
        return dry_run(cli, args);
    }
    if args.detach {
        return up_detached(cli, args);
    }
    match start(cli, args)? {
        Ok(project_name) => follow_until_interrupted(&super::state_root(cli), &project_name),
        Err(code) => Ok(code),
    }
}

/// `kiln up --dry-run`: the diagnostics, then the placement; nothing built or started.
fn dry_run(cli: &Cli, args: &UpArgs) -> Result<u8, crate::Error> {
    let loaded = super::load_project_file(cli, &args.project.file)?;
    if !loaded.diagnostics.is_empty() {
        let style = crate::spec::render::TextStyle {
            color: super::stderr_color(),
            width: super::render_width(),
        };
        eprint!(
            "{}",
            crate::spec::render::text_all(&loaded.diagnostics, &loaded.sources, style)
        );
    }
    if loaded.has_errors() {
        eprintln!(
            "{}: no plan: fix the errors above",
            args.project.file.display()
        );
        return Ok(1);
    }
    unknown_services(&loaded, &args.services)?;
    let mut plan = project::plan(&loaded.project, &project_dir(&args.project.file))?;
    if let Some(host) = &args.host {
        plan = plan.on_host(host)?;
    }
    super::placement::print(&plan)?;
    Ok(0)
}

/// An error naming the first of `services` the project does not declare.
fn unknown_services(loaded: &Loaded, services: &[String]) -> Result<(), crate::Error> {
    for service in services {
        if loaded.project.container(service).is_none() {
            return Err(CliError::UnknownService {
                service: service.clone(),
                declared: loaded
                    .project
                    .containers
                    .iter()
                    .map(|c| format!("`{}`", c.name.value))
                    .collect::<Vec<_>>()
                    .join(", "),
            }
            .into());
        }
    }
    Ok(())
}

/// `kiln up -d`: builds, starts and waits as declared, then returns the exit code (what
/// `kiln test` calls before testing).
pub(super) fn up_detached(cli: &Cli, args: &UpArgs) -> Result<u8, crate::Error> {
    match start(cli, args)? {
        Ok(project_name) => {
            eprintln!("{project_name}: up");
            Ok(0)
        }
        Err(code) => Ok(code),
    }
}

/// Builds what the project runs and brings it up; the project's name once it is up, else
/// the exit code (the reason has been printed).
fn start(cli: &Cli, args: &UpArgs) -> Result<Result<String, u8>, crate::Error> {
    // Diagnostics and the build: what `kiln build` does, for the images the project runs.
    let loaded = super::load_project_file(cli, &args.project.file)?;
    let images: Vec<String> = loaded
        .project
        .containers
        .iter()
        .filter(|c| args.services.is_empty() || args.services.contains(&c.name.value))
        .map(|c| c.image.value.clone())
        .filter(|i| loaded.project.image(i).is_some())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let build = BuildArgs {
        project: ProjectArg {
            file: args.project.file.clone(),
        },
        images,
        jobs: None,
        no_cache: false,
        dry_run: false,
        report: None,
        verify: false,
        compression: CompressionArg::Zstd,
        format: OutputFormat::Text,
        update: false,
        net: Default::default(),
    };
    let built = super::build::run(cli, &build)?;
    if built != 0 {
        return Ok(Err(built));
    }
    let mut loaded = match load(cli, &args.project.file)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(Err(code)),
    };
    super::pin::pin_containers(cli, &mut loaded, &args.project.file)?;
    unknown_services(&loaded, &args.services)?;
    let mut plan = project::plan(&loaded.project, &project_dir(&args.project.file))?;
    if let Some(host) = &args.host {
        plan = plan.on_host(host)?;
        if !plan.underlay.is_empty() {
            eprintln!(
                "{}: the `underlay` impairments are for simulated hosts: on a real machine the network between the hosts is what it is, and kiln leaves it alone",
                plan.project
            );
        }
    }
    let store = super::open_store(cli)?;
    let root = super::state_root(cli);
    let wait = Duration::from_secs(args.timeout);
    if let Err(err) = project::up(&store, &root, &plan, &args.services, wait, &report) {
        eprintln!("{:?}", miette::Report::new(err));
        eprintln!("{}: not up", plan.project);
        return Ok(Err(1));
    }
    Ok(Ok(plan.project))
}

/// The plan `kiln up` follows for the project in `file` (images pinned as `up` pins them):
/// what a test's faults are undone with.
/// With `host`, the plan of that declared host's share (`--host`).
pub(super) fn plan_of(
    cli: &Cli,
    file: &Path,
    host: Option<&str>,
) -> Result<Result<ProjectPlan, u8>, crate::Error> {
    let mut loaded = match load(cli, file)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(Err(code)),
    };
    super::pin::pin_containers(cli, &mut loaded, file)?;
    let plan = project::plan(&loaded.project, &project_dir(file))?;
    Ok(Ok(match host {
        Some(host) => plan.on_host(host)?,
        None => plan,
    }))
}

/// Brings `services` of the plan back as `kiln up` would, quietly (a test's fault ends).
pub(super) fn restore(
    cli: &Cli,
    plan: &ProjectPlan,
    services: &[String],
) -> Result<(), crate::Error> {
    let store = super::open_store(cli)?;
    let root = super::state_root(cli);
    project::up(
        &store,
        &root,
        plan,
        services,
        project::DEFAULT_WAIT,
        &|_| {},
    )?;
    Ok(())
}

/// One line on stderr per event of `up` and `rollback`.
fn report(event: UpEvent) {
    let text = match event {
        UpEvent::Kept(name) => format!("{name}: unchanged"),
        UpEvent::Removed(name) => format!("{name}: removed"),
        UpEvent::Started(name) => format!("{name}: started"),
        UpEvent::Waiting { name, on } => format!("{name}: waiting until {on}"),
        UpEvent::Healthy(name) => format!("{name}: healthy"),
        UpEvent::Retired { name, kept_as } => {
            format!("{name}: removed (old version kept as {kept_as})")
        }
        UpEvent::RolledBack { name, digest } => format!("{name}: rolled back to {digest}"),
        UpEvent::Completed { name, code } => format!("{name}: completed with exit code {code}"),
        UpEvent::Linked {
            link,
            impaired_by: None,
        } => format!("link {link}: up"),
        UpEvent::Linked {
            link,
            impaired_by: Some(engine),
        } => format!("link {link}: up, impaired by the {engine} engine"),
        UpEvent::Reimpaired {
            link,
            impaired_by: None,
        } => format!("link {link}: impairment removed"),
        UpEvent::Reimpaired {
            link,
            impaired_by: Some(engine),
        } => format!("link {link}: impairment changed, carried by the {engine} engine"),
    };
    eprintln!("{text}");
}

/// The foreground `kiln up`: every container's output, prefixed by its name, until Ctrl-C
/// (or until every container has ended); then the project is stopped (not removed).
fn follow_until_interrupted(root: &Path, project_name: &str) -> Result<u8, crate::Error> {
    use nix::sys::signal::{SigSet, Signal};
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGINT);
    signals.add(Signal::SIGTERM);
    // Blocked before the threads exist, so they inherit the mask and only the loop below
    // sees the signals.
    signals.thread_block().map_err(CliError::BlockSignals)?;
    let records = Records::open(root).map_err(crate::containers::ContainerError::from)?;
    let members: Vec<_> = project::project_records(&records, project_name)
        .map_err(crate::Error::from)?
        .into_iter()
        // Previous versions kept for a rollback do not run: nothing to follow.
        .filter(|r| split_hidden(&r.name).is_none())
        .collect();
    let handles = follow_logs(&records, members);
    let timeout = nix::libc::timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    loop {
        // SAFETY: `signals` is a valid sigset, `info` may be null, `timeout` lives across
        // the call.
        let got =
            unsafe { nix::libc::sigtimedwait(signals.as_ref(), std::ptr::null_mut(), &timeout) };
        if got > 0 || handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    eprintln!("{project_name}: stopping");
    for record in project::project_records(&records, project_name).map_err(crate::Error::from)? {
        crate::containers::stop(&records, &record, None)
            .map_err(|e| crate::Error::from(project::ProjectError::from(e)))?;
    }
    for handle in handles {
        let _ = handle.join();
    }
    Ok(0)
}

/// The `NAME | ` prefix of each container's lines: names padded to one width, a colour
/// each on a terminal.
fn prefixes(members: &[crate::state::Record]) -> Vec<String> {
    let width = members.iter().map(|r| r.name.len()).max().unwrap_or(0);
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    members
        .iter()
        .enumerate()
        .map(|(index, record)| {
            if color {
                format!("\x1b[{}m{:width$} |\x1b[0m ", 31 + index % 6, record.name)
            } else {
                format!("{:width$} | ", record.name)
            }
        })
        .collect()
}

fn write_line(prefix: &str, log: &crate::runtime::supervise::LogLine) -> std::io::Result<()> {
    let text = format!("{prefix}{}\n", log.line);
    match log.stream {
        Stream::Stdout => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()
        }
        Stream::Stderr => std::io::stderr().lock().write_all(text.as_bytes()),
    }
}

/// One thread per container printing its output, prefixed, until it has exited.
fn follow_logs(
    records: &Records,
    members: Vec<crate::state::Record>,
) -> Vec<std::thread::JoinHandle<()>> {
    let prefixes = prefixes(&members);
    members
        .into_iter()
        .zip(prefixes)
        .map(|(record, prefix)| {
            let records = records.clone();
            std::thread::spawn(move || {
                let query = crate::containers::LogQuery {
                    follow: true,
                    ..Default::default()
                };
                let _ = crate::containers::read_logs(&records, &record, &query, |log| {
                    write_line(&prefix, log)
                });
            })
        })
        .collect()
}

/// `kiln logs --project NAME [-f] [C…]`: the project's output, each line prefixed by its
/// container's name; without -f, merged in time order.
pub(super) fn project_logs(
    cli: &Cli,
    project_name: &str,
    only: &[String],
    follow: bool,
) -> Result<u8, crate::Error> {
    let root = super::state_root(cli);
    let records = Records::open(&root).map_err(crate::containers::ContainerError::from)?;
    let mut members =
        project::project_records(&records, project_name).map_err(crate::Error::from)?;
    for name in only {
        if !members.iter().any(|r| &r.name == name) {
            return Err(CliError::UnknownMember {
                project: project_name.to_string(),
                name: name.clone(),
            }
            .into());
        }
    }
    members.retain(|r| only.is_empty() || only.contains(&r.name));
    members.sort_by(|a, b| a.name.cmp(&b.name));
    if follow {
        for handle in follow_logs(&records, members) {
            let _ = handle.join();
        }
        return Ok(0);
    }
    let prefixes = prefixes(&members);
    let mut lines = Vec::new();
    for (record, prefix) in members.iter().zip(&prefixes) {
        crate::containers::read_logs(&records, record, &Default::default(), |log| {
            lines.push((log.time_ns, prefix.as_str(), log.clone()));
            Ok(())
        })
        .map_err(|e| crate::Error::from(project::ProjectError::from(e)))?;
    }
    lines.sort_by_key(|(time, _, _)| *time);
    for (_, prefix, log) in &lines {
        match write_line(prefix, log) {
            Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => return Ok(0),
            other => other.map_err(crate::Error::Output)?,
        }
    }
    Ok(0)
}

pub(super) fn down(cli: &Cli, args: &DownArgs) -> Result<u8, crate::Error> {
    let loaded = match load(cli, &args.project.file)? {
        Ok(loaded) => loaded,
        Err(_) => {
            // The file may be broken now: the project's name is still needed to find what
            // it left running.
            return Err(CliError::UnreadableProject {
                path: args.project.file.clone(),
            }
            .into());
        }
    };
    let root = super::state_root(cli);
    let name = &loaded.project.name;
    if let Some(host) = &args.host
        && !loaded.project.hosts.iter().any(|h| &h.name.value == host)
    {
        return Err(project::ProjectError::UnknownHost {
            host: host.clone(),
            project: name.clone(),
            declared: declared_hosts(&loaded),
        }
        .into());
    }
    match project::down(
        &root,
        name,
        args.host.as_deref(),
        args.volumes,
        args.timeout.map(Duration::from_secs),
    ) {
        Ok(removed) => {
            // Previous versions kept for a rollback go too, without a line each.
            for container in removed.iter().filter(|n| split_hidden(n).is_none()) {
                line(format!("{container}: removed"))?;
            }
            match &args.host {
                Some(host) => eprintln!("{name}: down on {host}"),
                None => eprintln!("{name}: down"),
            }
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}

/// `kiln rollback SERVICE`: the previous version of each of its instances, one at a time.
pub(super) fn rollback(cli: &Cli, args: &RollbackArgs) -> Result<u8, crate::Error> {
    let loaded = match load(cli, &args.project.file)? {
        Ok(loaded) => loaded,
        Err(code) => return Ok(code),
    };
    let root = super::state_root(cli);
    let name = &loaded.project.name;
    match project::rollback(&root, name, &args.service, &report) {
        Ok(done) => {
            eprintln!("{}: rolled back ({})", args.service, done.join(", "));
            Ok(0)
        }
        Err(err) => {
            eprintln!("{:?}", miette::Report::new(err));
            Ok(1)
        }
    }
}

/// The project's declared hosts, quoted, for a message ("none" without any).
fn declared_hosts(loaded: &Loaded) -> String {
    let names: Vec<String> = loaded
        .project
        .hosts
        .iter()
        .map(|h| format!("`{}`", h.name.value))
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}
