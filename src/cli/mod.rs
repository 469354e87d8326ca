//! The command line: clap definitions, dispatch and output formats.
//!
//! Owns argument parsing (the one definition `--help` and the book's CLI page come from),
//! choosing text or JSON, and the exit code. It must not hold domain logic: each command
//! calls into the library and renders what comes back.

mod args;
mod build;
mod check;
mod commit;
mod common_args;
mod completions;
mod containers;
mod cp;
mod create;
mod error;
mod exec;
mod graph;
mod images;
mod info;
mod inspect;
mod interrupt;
mod links;
mod man;
mod network;
mod output;
mod overlay;
mod pin;
mod placement;
mod port;
mod project;
mod registry;
mod registry_args;
mod start;
mod stats;
mod system;
mod test;
mod top;
mod volume;
mod wait;

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::Parser;

pub use args::{Cli, Command, NetworkCommand, OutputFormat, SystemCommand};
pub use error::CliError;

/// Runs kiln with the given arguments (the first is the program name) and returns the exit
/// code. `Err` is for failures that stop a command; problems in kiln.kdl are reported by the
/// command itself and give exit code 1.
pub fn run(
    args: impl IntoIterator<Item = impl Into<OsString> + Clone>,
) -> Result<u8, crate::Error> {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help and version to stdout with exit 0, usage errors to stderr with 2.
            err.print().ok();
            return Ok(if err.use_stderr() { 2 } else { 0 });
        }
    };
    if let Some((command, reason)) = needs_root(&cli.command)
        && !nix::unistd::geteuid().is_root()
    {
        return Err(error::CliError::NeedsRoot { command, reason }.into());
    }
    // These read no state: they must not make a state root (nor need the right to).
    if !matches!(
        cli.command,
        Command::Check(_)
            | Command::Graph(_)
            | Command::Info(_)
            | Command::Version(_)
            | Command::Completions(_)
            | Command::Man(_)
    ) {
        let root = state_root(&cli);
        crate::store::make_state_root_private(&root).map_err(|source| {
            crate::store::StoreError::Io {
                path: root.clone(),
                source,
            }
        })?;
    }
    let result = match &cli.command {
        Command::Check(args) => check::run(&cli, args),
        Command::Graph(args) => graph::run(&cli, args),
        Command::Build(args) => build::run(&cli, args),
        Command::Explain(args) => build::explain(&cli, args),
        Command::Run(args) => containers::run(&cli, args),
        Command::Create(args) => create::run(&cli, args),
        Command::Start(args) => start::run(&cli, args),
        Command::Wait(args) => wait::run(&cli, args),
        Command::Port(args) => port::run(&cli, args),
        Command::Top(args) => top::run(&cli, args),
        Command::Cp(args) => cp::run(&cli, args),
        Command::Exec(args) => exec::run(&cli, args),
        Command::Ps(args) => containers::ps(&cli, args),
        Command::Rm(args) => containers::rm(&cli, args),
        Command::Logs(args) => containers::logs(&cli, args),
        Command::Stop(args) => containers::stop(&cli, args),
        Command::Kill(args) => containers::kill(&cli, args),
        Command::Pause(args) => containers::pause(&cli, args, true),
        Command::Unpause(args) => containers::pause(&cli, args, false),
        Command::Restart(args) => containers::restart(&cli, args),
        Command::Up(args) => project::up(&cli, args),
        Command::Down(args) => project::down(&cli, args),
        Command::Rollback(args) => project::rollback(&cli, args),
        Command::Network(command) => network::run(&cli, command),
        Command::Volume(command) => volume::run(&cli, command),
        Command::System(command) => system::run(&cli, command),
        Command::Netd => network::netd(&cli),
        Command::Linkd => network::linkd(&cli),
        Command::Netsup => network::netsup(&cli),
        Command::Test(args) => test::run(&cli, args),
        Command::Supervise(args) => containers::supervise(&cli, args),
        Command::Bundle(args) => containers::bundle(&cli, args),
        Command::Stats(args) => stats::run(&cli, args),
        Command::Commit(args) => commit::run(&cli, args),
        Command::Images(args) => images::list(&cli, args),
        Command::Export(args) => images::export(&cli, args),
        Command::Import(args) => images::import(&cli, args),
        Command::Inspect(args) => inspect::run(&cli, args),
        Command::History(args) => images::history(&cli, args),
        Command::Tag(args) => images::tag(&cli, args),
        Command::Rmi(args) => images::rmi(&cli, args),
        Command::Gc(args) => images::gc(&cli, args),
        Command::Fsck(args) => images::fsck(&cli, args),
        Command::Pull(args) => registry::pull(&cli, args),
        Command::Push(args) => registry::push(&cli, args),
        Command::Login(args) => registry::login(&cli, args),
        Command::Logout(args) => registry::logout(&cli, args),
        Command::Lock(args) => pin::lock(&cli, args),
        Command::Info(args) => info::run(&cli, args),
        Command::Version(args) => info::version(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    };
    match result {
        // `kiln check --print | head`: the reader left; that is not an error.
        Err(crate::Error::Output(err)) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other,
    }
}

/// Why a command cannot work without root, said before it starts instead of a raw EPERM
/// half-way (`kiln build` says it itself, for `run` steps only). `None`: it works as any
/// user, with the state root in `$XDG_DATA_HOME/kiln`.
fn needs_root(command: &Command) -> Option<(String, &'static str)> {
    const CONTAINERS: &str =
        "containers run in namespaces, mounts and cgroups that only root can make";
    const THEIRS: &str = "containers are root's processes, namespaces and cgroups";
    const NETWORKS: &str = "networks are bridges in a network namespace that only root can make";
    let name = match command {
        Command::Run(_) => ("run", CONTAINERS),
        Command::Create(_) => ("create", CONTAINERS),
        Command::Start(_) => ("start", CONTAINERS),
        Command::Cp(_) => ("cp", THEIRS),
        Command::Up(_) => ("up", CONTAINERS),
        Command::Rollback(_) => ("rollback", CONTAINERS),
        Command::Test(_) => ("test", "its probes enter the containers' namespaces"),
        Command::Supervise(_) => ("__supervise", CONTAINERS),
        Command::Exec(_) => ("exec", THEIRS),
        Command::Stop(_) => ("stop", THEIRS),
        Command::Kill(_) => ("kill", THEIRS),
        Command::Restart(_) => ("restart", THEIRS),
        Command::Rm(_) => ("rm", THEIRS),
        Command::Down(_) => ("down", THEIRS),
        Command::Stats(_) => ("stats", THEIRS),
        Command::Commit(_) => ("commit", THEIRS),
        Command::System(SystemCommand::Prune(_)) => ("system prune", THEIRS),
        Command::Netd | Command::Linkd | Command::Netsup => ("network", NETWORKS),
        Command::Network(
            NetworkCommand::Create(_)
            | NetworkCommand::Rm(_)
            | NetworkCommand::Exec(_)
            | NetworkCommand::Impair(_),
        ) => ("network", NETWORKS),
        _ => return None,
    };
    Some((name.0.to_string(), name.1))
}

/// The state root: `--root`, `$KILN_ROOT`, else /var/lib/kiln as root and
/// `$XDG_DATA_HOME/kiln` (or `~/.local/share/kiln`) otherwise.
pub fn state_root(cli: &Cli) -> PathBuf {
    if let Some(root) = &cli.root {
        return root.clone();
    }
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/kiln");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("kiln")
}

/// The current project, whose names a bare name on the command line means first (see
/// [`crate::scope`]): the project of `file` (`-f FILE` of the commands that take it), else
/// of `./kiln.kdl` when there is one.
fn current_project(file: Option<&std::path::Path>) -> Option<String> {
    let path = file.unwrap_or(std::path::Path::new("kiln.kdl"));
    if !path.is_file() {
        return None;
    }
    crate::spec::project_name(path, &crate::spec::RealFs)
}

/// The container a command-line reference names: `PROJECT/NAME`, a bare name (the current
/// project's first), or an id or unique id prefix.
fn find_container(
    records: &crate::state::Records,
    query: &str,
) -> Result<crate::state::Record, crate::state::RecordError> {
    records.resolve(query, current_project(None).as_deref())
}

/// The full ids of the containers command-line references name (for the library calls
/// that take one).
fn container_ids(cli: &Cli, queries: &[String]) -> Result<Vec<String>, crate::state::RecordError> {
    if queries.is_empty() {
        return Ok(Vec::new());
    }
    let records = crate::state::Records::open(&state_root(cli))?;
    let context = current_project(None);
    queries
        .iter()
        .map(|q| {
            records
                .resolve(q, context.as_deref())
                .map(|r| r.id.to_string())
        })
        .collect()
}

/// The network a command-line reference names (`PROJECT/NAME`, or a bare name, the current
/// project's first): its full reference.
fn network_reference(
    cli: &Cli,
    query: &str,
) -> Result<String, crate::net::records::NetRecordError> {
    network_reference_in(&state_root(cli), query)
}

/// [`network_reference`] among the networks of network root `root` (a declared host's).
fn network_reference_in(
    root: &Path,
    query: &str,
) -> Result<String, crate::net::records::NetRecordError> {
    let records = crate::net::records::NetworkRecords::open(root)?;
    Ok(records
        .resolve(query, current_project(None).as_deref())?
        .name)
}

/// The stored image a command-line name means: a name with `:`, `/` or `@` as written (a
/// project's `shop/web`, a registry reference, a digest); a bare name is resolved among
/// the plain tag of that name and the projects' images of that name (the current
/// project's first, see [`crate::scope`]), and stays as written when none has it.
fn image_name(store: &crate::store::Store, query: &str) -> Result<String, crate::Error> {
    if query.contains([':', '/', '@']) {
        return Ok(query.to_string());
    }
    let candidates: Vec<crate::scope::Candidate<String>> = store
        .tags()?
        .into_keys()
        .filter(|tag| !tag.contains([':', '@']))
        .map(|tag| crate::scope::Candidate::from_reference(&tag.clone(), tag))
        .collect();
    let context = current_project(None);
    Ok(crate::scope::resolve(
        crate::scope::Kind::Image,
        query,
        context.as_deref(),
        candidates,
    )?
    .unwrap_or_else(|| query.to_string()))
}

/// The store under the state root, created if missing.
fn open_store(cli: &Cli) -> Result<crate::store::Store, crate::Error> {
    Ok(crate::store::Store::open(state_root(cli).join("store"))?)
}

/// Names of the images tagged in the store, if there is one (never creates it): a project
/// may build `from` them.
fn store_images(cli: &Cli) -> BTreeSet<String> {
    let store = state_root(cli).join("store");
    if !store.join("index.json").is_file() {
        return BTreeSet::new();
    }
    crate::store::Store::open(store)
        .and_then(|s| s.tags())
        .map(|tags| tags.into_keys().collect())
        .unwrap_or_default()
}

/// The runtime's reading of a container's seccomp profile, for the front end's diagnostic.
pub fn check_seccomp_profile(text: &str) -> Result<(), crate::spec::ProfileProblem> {
    crate::runtime::Profile::parse("", text)
        .map(|_| ())
        .map_err(|e| crate::spec::ProfileProblem {
            message: e.detail(),
            help: miette::Diagnostic::help(&e)
                .map(|h| h.to_string())
                .unwrap_or_default(),
        })
}

/// Loads and validates a project file the way every command that runs it does: paths
/// checked, images of the store known to `from`.
fn load_project_file(
    cli: &Cli,
    file: &std::path::Path,
) -> Result<crate::spec::Loaded, crate::Error> {
    let options = crate::spec::Options {
        check_paths: true,
        external_images: store_images(cli),
        check_seccomp_profile: Some(check_seccomp_profile),
        check_placement: Some(crate::project::placement::check),
    };
    Ok(crate::spec::load_file(
        file,
        &crate::spec::RealFs,
        &options,
    )?)
}

/// Whether diagnostics on stderr get colours.
pub(crate) fn stderr_color() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Terminal width for rendering, 100 when not a terminal (stable output in files and CI).
pub(crate) fn render_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}
