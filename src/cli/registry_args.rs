//! The clap definitions of `kiln pull`, `push`, `login`, `logout` and `lock` (the variants
//! and their help live in `args.rs` with every other command).

use std::path::PathBuf;

use clap::Args;

use super::common_args::{CompressionArg, OutputFormat, ProjectArg};

/// How to reach a registry: shared by every command that talks to one.
#[derive(Debug, Args, Clone, Default)]
pub struct RegistryNetArgs {
    /// Allow plain HTTP and accept any TLS certificate for this registry (loopback
    /// registries may use plain HTTP without it).
    #[arg(long)]
    pub insecure: bool,
    /// A directory with the registry's CA (`*.crt`) and client certificate (`*.cert` and
    /// `*.key`), instead of /etc/containers/certs.d/HOST:PORT/ and
    /// /etc/docker/certs.d/HOST:PORT/.
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
    /// The credentials file to use instead of Podman's auth.json and Docker's config.json
    /// (also `REGISTRY_AUTH_FILE`).
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

impl RegistryNetArgs {
    pub(crate) fn options(&self) -> crate::registry::NetOptions {
        crate::registry::NetOptions {
            insecure: self.insecure,
            cert_dir: self.cert_dir.clone(),
            auth_file: self.authfile.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// The image: `debian:12`, `localhost:5000/team/app:1`, `app@sha256:…`.
    pub reference: String,
    /// From an index (a multi-platform image), the image for OS/ARCH[/VARIANT]
    /// (default: this machine's).
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,
    #[command(flatten)]
    pub net: RegistryNetArgs,
    /// Output format of the result: `text`, or `json` (one object on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The image in the store (a name or a manifest digest).
    pub image: String,
    /// Where to push it (default: IMAGE read as a reference, e.g.
    /// `localhost:5000/app:1`).
    pub reference: Option<String>,
    /// Layer compression in the registry: as stored (default, zstd unless built
    /// otherwise), or gzip for older clients.
    #[arg(long, value_enum)]
    pub compression: Option<CompressionArg>,
    /// Upload blobs larger than SIZE in chunks of SIZE (PATCH requests); smaller ones in
    /// one request.
    #[arg(long, value_name = "SIZE", default_value = "64MiB")]
    pub chunk_size: String,
    #[command(flatten)]
    pub net: RegistryNetArgs,
    /// Output format of the result: `text`, or `json` (one object on stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry: `localhost:5000`, `quay.io`, `docker.io`.
    pub registry: String,
    /// The user name (asked on the terminal when missing).
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from standard input (otherwise it is asked on the terminal).
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// The registry.
    pub registry: String,
    /// The credentials file to change instead of the default ones.
    #[arg(long, value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub project: ProjectArg,
    #[command(flatten)]
    pub net: RegistryNetArgs,
}
