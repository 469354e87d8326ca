//! `kiln pull`, `push`, `login` and `logout`: the registry module's results rendered, and
//! its progress events shown (a bar per blob on a terminal, a line per blob otherwise).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Read, Write};
use std::sync::Mutex;

use serde_json::json;

use super::args::{Cli, CompressionArg, OutputFormat};
use super::error::CliError;
use super::output::{human_size, json_line, line};
use super::registry_args::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::image::{Reference, StoredImage};
use crate::layer::Compression;
use crate::registry::{self, BlobReport, Event, Outcome, Platform};

/// Registry progress on stderr.
pub(super) struct Progress {
    live: Option<indicatif::MultiProgress>,
    bars: Mutex<HashMap<String, indicatif::ProgressBar>>,
    verb: &'static str,
}

fn short(digest: &crate::digest::Digest) -> String {
    digest.hex().chars().take(12).collect()
}

impl Progress {
    pub(super) fn new(verb: &'static str) -> Progress {
        let live = std::io::stderr().is_terminal().then(|| {
            indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr())
        });
        Progress {
            live,
            bars: Mutex::new(HashMap::new()),
            verb,
        }
    }

    pub(super) fn event(&self, event: Event) {
        let mut bars = self.bars.lock().expect("progress lock");
        match (&self.live, event) {
            (_, Event::Resolved { reference, digest }) => {
                self.say(&format!("{reference}: resolved to {digest}"));
            }
            (Some(live), Event::BlobStarted { digest, size }) => {
                let bar = live.add(indicatif::ProgressBar::new(size));
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{prefix} {wide_bar} {bytes}/{total_bytes} {binary_bytes_per_sec}",
                    )
                    .expect("a valid template"),
                );
                bar.set_prefix(short(&digest));
                bars.insert(digest.to_string(), bar);
            }
            (Some(_), Event::BlobBytes { digest, bytes }) => {
                if let Some(bar) = bars.get(&digest.to_string()) {
                    bar.inc(bytes);
                }
            }
            (live, Event::BlobDone { digest, outcome }) => {
                let text = match outcome {
                    Outcome::Transferred => self.verb,
                    Outcome::Skipped => "already there",
                    Outcome::Mounted => "mounted",
                };
                match (live, bars.remove(&digest.to_string())) {
                    (Some(_), Some(bar)) => {
                        bar.set_style(
                            indicatif::ProgressStyle::with_template("{prefix} {msg}")
                                .expect("a valid template"),
                        );
                        bar.finish_with_message(text);
                    }
                    _ => eprintln!("{}: {text}", short(&digest)),
                }
            }
            (
                _,
                Event::Retrying {
                    what,
                    attempt,
                    reason,
                    wait_ms,
                },
            ) => self.say(&format!("{what}: {reason}; try {attempt} in {wait_ms} ms")),
            _ => {}
        }
    }

    fn say(&self, text: &str) {
        match &self.live {
            Some(live) => {
                let _ = live.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    pub(super) fn finish(&self) {
        for (_, bar) in self.bars.lock().expect("progress lock").drain() {
            bar.abandon();
        }
    }
}

fn counts(blobs: &[BlobReport]) -> serde_json::Value {
    let count = |o| blobs.iter().filter(|b| b.outcome == o).count();
    json!({
        "transferred": count(Outcome::Transferred),
        "skipped": count(Outcome::Skipped),
        "mounted": count(Outcome::Mounted),
    })
}

/// The image `kiln run` (and `kiln create`) starts, as `docker run --pull POLICY` finds
/// it: the name resolved in the store (see [`super::image_name`]), pulled first with
/// `always`, or with `missing` when the store has no such image (progress on stderr);
/// `never` only looks in the store. A name that is no registry reference (a digest, a
/// project's `shop/web` that does not parse as one) is never pulled: the run then says it
/// is missing.
pub(super) fn run_image(
    store: &crate::store::Store,
    query: &str,
    policy: super::args::PullPolicy,
) -> Result<String, crate::Error> {
    use super::args::PullPolicy;
    let name = super::image_name(store, query)?;
    let pull = match policy {
        PullPolicy::Never => false,
        PullPolicy::Always => true,
        PullPolicy::Missing => StoredImage::find(store, &name)?.is_none(),
    };
    let reference = match Reference::parse(query) {
        Ok(reference) if pull && !query.starts_with("sha256:") => reference,
        _ => return Ok(name),
    };
    if policy == PullPolicy::Missing {
        eprintln!("{query}: not in the store, pulling {reference}");
    }
    let progress = Progress::new("pulled");
    let result = registry::pull(
        store,
        &reference,
        None,
        &registry::NetOptions::default(),
        &|e| progress.event(e),
    );
    progress.finish();
    let pulled = result?;
    eprintln!("{query}: pulled as {} ({})", pulled.name, pulled.digest);
    Ok(pulled.name)
}

pub(super) fn pull(cli: &Cli, args: &PullArgs) -> Result<u8, crate::Error> {
    let reference = Reference::parse(&args.reference).map_err(registry::RegistryError::from)?;
    let platform = args.platform.as_deref().map(Platform::parse).transpose()?;
    let store = super::open_store(cli)?;
    let progress = Progress::new("pulled");
    let result = registry::pull(
        &store,
        &reference,
        platform.as_ref(),
        &args.net.options(),
        &|e| progress.event(e),
    );
    progress.finish();
    let pulled = result?;
    let transferred: u64 = pulled
        .blobs
        .iter()
        .filter(|b| b.outcome == Outcome::Transferred)
        .map(|b| b.size)
        .sum();
    match args.format {
        OutputFormat::Json => json_line(&json!({
            "reference": reference.to_string(),
            "name": pulled.name,
            "digest": pulled.digest.to_string(),
            "manifest": pulled.manifest.digest.to_string(),
            "media_type": pulled.manifest.media_type,
            "platform": pulled.platform.as_ref().map(Platform::to_string),
            "size": pulled.blobs.iter().map(|b| b.size).sum::<u64>() + pulled.manifest.size,
            "transferred_bytes": transferred,
            "layers": counts(&pulled.blobs[1..]),
            "blobs": pulled.blobs,
        }))?,
        OutputFormat::Text => {
            let fetched = pulled
                .blobs
                .iter()
                .filter(|b| b.outcome == Outcome::Transferred)
                .count();
            line(format!(
                "pulled {} as {} ({}; {fetched} of {} blobs fetched, {})",
                reference.familiar(),
                pulled.name,
                pulled.digest,
                pulled.blobs.len(),
                human_size(transferred)
            ))?
        }
    }
    Ok(0)
}

pub(super) fn push(cli: &Cli, args: &PushArgs) -> Result<u8, crate::Error> {
    let store = super::open_store(cli)?;
    let image = StoredImage::load(&store, &super::image_name(&store, &args.image)?)?;
    let text = args.reference.as_deref().unwrap_or(&args.image);
    let reference = Reference::parse(text).map_err(registry::RegistryError::from)?;
    let chunk_size = match crate::spec::units::Size::parse(&args.chunk_size) {
        Ok(size) if size.0 > 0 => size.0,
        Ok(_) | Err(_) => {
            return Err(CliError::BadChunkSize {
                value: args.chunk_size.clone(),
            }
            .into());
        }
    };
    let options = registry::PushOptions {
        compression: args.compression.map(|c| match c {
            CompressionArg::Zstd => Compression::Zstd,
            CompressionArg::Gzip => Compression::Gzip,
            CompressionArg::None => Compression::None,
        }),
        chunk_size,
        net: args.net.options(),
    };
    let progress = Progress::new("pushed");
    let result = registry::push(&store, &image, &reference, &options, &|e| progress.event(e));
    progress.finish();
    let pushed = result?;
    let sent: u64 = pushed
        .blobs
        .iter()
        .filter(|b| b.outcome == Outcome::Transferred)
        .map(|b| b.size)
        .sum();
    match args.format {
        OutputFormat::Json => json_line(&json!({
            "reference": reference.to_string(),
            "digest": pushed.digest.to_string(),
            "size": pushed.size,
            "transferred_bytes": sent,
            "layers": counts(&pushed.blobs[1..]),
            "blobs": pushed.blobs,
        }))?,
        OutputFormat::Text => {
            let count = pushed
                .blobs
                .iter()
                .filter(|b| b.outcome == Outcome::Transferred)
                .count();
            line(format!(
                "pushed {} ({}; {count} of {} blobs sent, {})",
                pushed.reference,
                pushed.digest,
                pushed.blobs.len(),
                human_size(sent)
            ))?
        }
    }
    Ok(0)
}

/// `https://index.docker.io/v1/`, `docker.io`, `localhost:5000` → the registry as
/// references name it.
fn registry_name(text: &str) -> Result<Reference, crate::Error> {
    let bare = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .unwrap_or(text);
    let bare = bare.split('/').next().unwrap_or(bare);
    let bare = match bare {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    };
    let probe = if bare.contains(['.', ':']) || bare == "localhost" {
        format!("{bare}/x")
    } else {
        format!("{bare}.invalid-registry/x")
    };
    match Reference::parse(&probe) {
        Ok(r) if r.registry == bare => Ok(r),
        _ => Err(CliError::NotARegistry {
            text: text.to_string(),
        }
        .into()),
    }
}

/// A line from the terminal; with `hidden`, without echo.
fn ask(prompt: &str, hidden: bool) -> Result<String, crate::Error> {
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(CliError::NoTerminal)?;
    let mut out = &tty;
    let _ = write!(out, "{prompt}");
    let _ = out.flush();
    use nix::sys::termios;
    let saved = if hidden {
        termios::tcgetattr(&tty).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_flags.remove(termios::LocalFlags::ECHO);
            let _ = termios::tcsetattr(&tty, termios::SetArg::TCSANOW, &quiet);
        })
    } else {
        None
    };
    let mut answer = String::new();
    let read = std::io::BufReader::new(&tty).read_line(&mut answer);
    if let Some(saved) = saved {
        let _ = termios::tcsetattr(&tty, termios::SetArg::TCSANOW, &saved);
        let _ = writeln!(out);
    }
    read.map_err(|source| CliError::ReadCredentials {
        what: "terminal",
        source,
    })?;
    Ok(answer.trim_end_matches(['\r', '\n']).to_string())
}

pub(super) fn login(_cli: &Cli, args: &LoginArgs) -> Result<u8, crate::Error> {
    let registry = registry_name(&args.registry)?;
    let username = match &args.username {
        Some(u) => u.clone(),
        None if args.password_stdin => {
            return Err(CliError::PasswordStdinWithoutUser.into());
        }
        None => ask("Username: ", false)?,
    };
    let password = if args.password_stdin {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|source| CliError::ReadCredentials {
                what: "password from standard input",
                source,
            })?;
        text.trim_end_matches(['\r', '\n']).to_string()
    } else {
        ask("Password: ", true)?
    };
    if username.is_empty() || password.is_empty() {
        return Err(CliError::EmptyCredentials.into());
    }
    let credentials = registry::credentials::Credentials { username, password };
    let net = args.net.options();
    let client = registry::Client::with_credentials(
        &registry.registry,
        registry.api_host(),
        &net,
        Some(credentials.clone()),
        &|_| {},
    )?;
    client.check_login()?;
    let files =
        registry::credentials::store(&registry.registry, &credentials, net.auth_file.as_deref())?;
    for file in files {
        eprintln!("credentials saved in {}", file.display());
    }
    line("Login Succeeded")?;
    Ok(0)
}

pub(super) fn logout(_cli: &Cli, args: &LogoutArgs) -> Result<u8, crate::Error> {
    let registry = registry_name(&args.registry)?;
    let changed = registry::credentials::erase(&registry.registry, args.authfile.as_deref())?;
    if changed.is_empty() {
        line(format!("not logged in to {}", registry.registry))?;
    } else {
        for file in &changed {
            eprintln!("removed from {}", file.display());
        }
        line(format!(
            "Removed login credentials for {}",
            registry.registry
        ))?;
    }
    Ok(0)
}
