//! The command line's own failures — a flag's value it cannot use, a name the project or the
//! state does not know, a file it cannot write — each with its cause kept as `#[source]` and
//! the fix in `help`. Failures of the library keep their own types (`crate::Error` wraps
//! them); these are only what the CLI itself decides.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum CliError {
    #[error("invalid {what} `{value}`: {reason}")]
    #[diagnostic(help("durations like 20ms, percentages like 1%, rates like 10mbit"))]
    BadImpairment {
        what: String,
        value: String,
        reason: String,
    },

    #[error("no link has the end `{end}`")]
    #[diagnostic(help(
        "`kiln network links` lists them (ends are CONTAINER:INTERFACE); a container's \
         interface on a network can be changed when kiln.kdl impairs it"
    ))]
    UnknownLinkEnd { end: String },

    #[error("{end} has no impairment to change")]
    #[diagnostic(help(
        "declare one in kiln.kdl (`network \"{network}\" {{ impair delay=\"5ms\" }}`) and run `kiln up`"
    ))]
    NothingToImpair { end: String, network: String },

    #[error("--engine applies to links only")]
    #[diagnostic(help("an attachment's engine is declared in kiln.kdl (`impair engine=…`)"))]
    EngineOfAttachment,

    #[error("{container} is not running")]
    #[diagnostic(help("`kiln up -d` brings the project back"))]
    LinkEndDown { container: String },

    #[error("no container or job named `{service}` in the project")]
    #[diagnostic(help("the project declares: {declared}"))]
    UnknownService { service: String, declared: String },

    #[error("project {project} has no container named `{name}`")]
    #[diagnostic(help("`kiln ps --project {project}` lists them"))]
    UnknownMember { project: String, name: String },

    #[error("{}: cannot read the project", path.display())]
    #[diagnostic(help("`kiln check -f {}` shows why", path.display()))]
    UnreadableProject { path: PathBuf },

    #[error("no test named `{name}` in the project")]
    UnknownTest {
        name: String,
        #[help]
        help: String,
    },

    #[error("no image named `{name}` in the project")]
    #[diagnostic(help("the project declares: {declared}"))]
    UnknownImage { name: String, declared: String },

    #[error("no image named {names}")]
    #[diagnostic(help("`kiln images` lists the images"))]
    NoSuchImages { names: String },

    #[error("SOURCE_DATE_EPOCH `{value}` is not a number of seconds")]
    #[diagnostic(help("set it to a Unix time, e.g. `git log -1 --format=%ct`"))]
    BadSourceDateEpoch { value: String },

    #[error("name one container (or give --project)")]
    #[diagnostic(help("kiln logs web; kiln logs --project lab web db"))]
    LogsNeedOneContainer,

    #[error("no image, container, network or volume named `{name}`")]
    #[diagnostic(help(
        "`kiln images`, `kiln ps -a`, `kiln network ls` and `kiln volume ls` list them"
    ))]
    NothingNamed { name: String },

    #[error("`{name}` names several things: {kinds}")]
    #[diagnostic(help("say which with --type, e.g. `kiln inspect --type {first} {name}`"))]
    SeveralNamed {
        name: String,
        kinds: String,
        first: &'static str,
    },

    #[error("`kiln start -a` runs one container in the foreground")]
    #[diagnostic(help("name one container, or start several detached without -a"))]
    AttachOneContainer,

    #[error("cannot write {what} to {}", path.display())]
    #[diagnostic(help("check that the directory exists and that you may write there"))]
    Write {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot create a temporary state root")]
    #[diagnostic(help("set TMPDIR to a writable directory with room for a rebuild"))]
    TempRoot(#[source] std::io::Error),

    #[error("cannot block SIGINT and SIGTERM to follow the logs")]
    #[diagnostic(help("this is a bug in kiln: please report it"))]
    BlockSignals(#[source] nix::errno::Errno),

    #[error("cannot catch SIGINT and SIGTERM to undo a test's faults")]
    #[diagnostic(help("this is a bug in kiln: please report it"))]
    CatchSignals(#[source] nix::errno::Errno),

    #[error("cannot redirect standard output to standard error")]
    #[diagnostic(help("give --format text, or make sure standard output and error are open"))]
    Redirect(#[source] nix::errno::Errno),

    #[error("--chunk-size `{value}` is not a size")]
    #[diagnostic(help("write it like 64MiB or 5MB"))]
    BadChunkSize { value: String },

    #[error("`{text}` is not a registry")]
    #[diagnostic(help("name it as HOST or HOST:PORT, e.g. localhost:5000 or quay.io"))]
    NotARegistry { text: String },

    #[error("no terminal to ask for the credentials on")]
    #[diagnostic(help("give -u USER and pipe the password into --password-stdin"))]
    NoTerminal(#[source] std::io::Error),

    #[error("cannot read the {what}")]
    #[diagnostic(help("pipe the password into --password-stdin, or run in a terminal"))]
    ReadCredentials {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error("--password-stdin needs -u USER")]
    #[diagnostic(help("echo \"$PASSWORD\" | kiln login -u USER --password-stdin REGISTRY"))]
    PasswordStdinWithoutUser,

    #[error("the user name and the password must not be empty")]
    #[diagnostic(help("give both: -u USER, and the password when asked or on --password-stdin"))]
    EmptyCredentials,

    #[error("`kiln {command}` needs root: {reason}")]
    #[diagnostic(help(
        "run it as root (e.g. with sudo); `kiln check`, `graph`, `build` without `run` steps, `images`, `inspect` and `export` work as any user"
    ))]
    NeedsRoot {
        command: String,
        reason: &'static str,
    },
}
