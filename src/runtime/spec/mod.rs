//! The container as an OCI runtime spec (`config.json`): built from an image's config and
//! `kiln run`'s options with Docker's meaning and defaults, written as a bundle that `runc`
//! can run too. kiln's own runtime executes the same [`Spec`] (see [`super::plan_container`]).
//!
//! It reads the container's /etc/passwd to resolve `-u` names and checks that volume
//! sources exist; it never creates, mounts or starts anything.

pub mod defaults;
mod devices;
mod options;
mod user;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    Linux, LinuxCpuBuilder, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources, Mount,
    MountBuilder, Process, Root, Spec, User,
};

use crate::image::RuntimeConfig;
use crate::runtime::seccomp::{PROFILE_ANNOTATION, SeccompChoice, SeccompError};

pub use devices::{Device, cgroup_rules};
pub use oci_spec::runtime::Spec as OciSpec;
pub use options::{Tmpfs, Ulimit, parse_sysctl};
pub use user::{ResolvedUser, resolve_user, resolve_user_in};

/// The OCI runtime spec version kiln writes.
pub const OCI_VERSION: &str = "1.0.2";

/// Annotation carrying the image's stop signal (the image-spec's own key).
pub const STOP_SIGNAL_ANNOTATION: &str = "org.opencontainers.image.stopSignal";

/// Annotation carrying `--stop-timeout`, in seconds (Docker keeps it in the container's
/// config as `StopTimeout`; runc ignores it).
pub const STOP_TIMEOUT_ANNOTATION: &str = "dev.kiln.stop-timeout";

/// Annotation marking a `--privileged` container (for `kiln inspect` and people reading
/// `config.json`; the spec itself says what it means).
pub const PRIVILEGED_ANNOTATION: &str = "dev.kiln.privileged";

/// Annotation asking kiln's runtime for its init as pid 1 (`--init`): a sealed copy of
/// `kiln-init` runs the command as its child (see [`crate::runtime::init`]). runc ignores
/// it (Docker passes its init in `process.args` with a bind mount instead).
pub const INIT_ANNOTATION: &str = "dev.kiln.init";

/// A bind mount: `-v SOURCE:DESTINATION[:ro]`, `--mount type=bind`, a named volume's
/// directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Volume {
    /// Absolute host path; it must exist.
    pub source: PathBuf,
    /// Absolute path in the container; created there if missing.
    pub destination: String,
    pub read_only: bool,
    /// `bind-propagation=`: `rprivate` (the default), `private`, `rshared`, `shared`,
    /// `rslave`, `slave`, applied to the mount in the container's mount namespace.
    pub propagation: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A network namespace of its own with only `lo`, up (interfaces may be added later).
    #[default]
    None,
    /// The host's network namespace.
    Host,
}

/// `kiln run`'s options, each with Docker's meaning.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunOptions {
    /// `[CMD…]`: replaces the image's Cmd (the Entrypoint stays).
    pub args: Vec<String>,
    /// `--entrypoint`: replaces the image's Entrypoint (and drops its Cmd).
    pub entrypoint: Option<Vec<String>>,
    /// `-e K=V`, over the image's Env.
    pub env: Vec<(String, String)>,
    /// `-h`; the caller gives the container id's prefix when the user gave none
    /// (`None` here falls back to `kiln`).
    pub hostname: Option<String>,
    /// `-w`, over the image's WorkingDir; created in the container if missing.
    pub workdir: Option<String>,
    /// `-u USER[:GROUP]`, over the image's User.
    pub user: Option<String>,
    pub volumes: Vec<Volume>,
    /// `--memory`, bytes.
    pub memory: Option<u64>,
    /// `--cpus`.
    pub cpus: Option<f64>,
    /// `--pids-limit`; `-1` means unlimited, as in Docker.
    pub pids_limit: Option<i64>,
    pub tty: bool,
    pub interactive: bool,
    pub network: NetworkMode,
    /// `--security-opt seccomp=…`: kiln's default profile, none, or a Docker profile. It is
    /// resolved against the container's final capability set (its bounding set, as
    /// Docker does), so capability options must be applied before [`container_spec`]
    /// builds `linux.seccomp`.
    pub seccomp: SeccompChoice,
    /// `--read-only`: the root filesystem read-only. Its own mounts (/dev, /proc, /dev/shm,
    /// /dev/mqueue, tmpfs and volumes) keep their modes, as in Docker.
    pub read_only: bool,
    /// `--tmpfs DESTINATION[:OPTIONS]`, mounted after the volumes.
    pub tmpfs: Vec<Tmpfs>,
    /// `--cap-add`: capability names as the user wrote them (`NET_ADMIN`, `cap_net_admin`,
    /// `ALL`).
    pub cap_add: Vec<String>,
    /// `--cap-drop`, the same spelling.
    pub cap_drop: Vec<String>,
    /// `--ulimit`, each over Docker's default for its resource.
    pub ulimits: Vec<Ulimit>,
    /// `--sysctl NAME=VALUE`: namespaced sysctls only (see `kernel_names::sysctl`),
    /// written in the container's /proc before its command starts.
    pub sysctls: Vec<(String, String)>,
    /// `--stop-signal`: over the image's StopSignal (a name like `SIGQUIT`, or a number).
    pub stop_signal: Option<String>,
    /// `--stop-timeout`: seconds `kiln stop` (and restart, down, rollouts) waits after the
    /// stop signal before SIGKILL, unless told otherwise (default 10).
    pub stop_timeout: Option<u64>,
    /// `--privileged`, as Docker: every capability kiln holds, no seccomp filter (unless a
    /// profile is named), every device of the host in /dev and allowed by the cgroup, /sys
    /// and /sys/fs/cgroup read-write, nothing masked or read-only. `--cap-add`/`--cap-drop`
    /// do not apply. no_new_privs stays on.
    pub privileged: bool,
    /// `--device HOST[:CONTAINER[:PERMS]]`: nodes made in the container, allowed by its
    /// device cgroup with those permissions.
    pub devices: Vec<Device>,
    /// `--init`: kiln's init as pid 1, the command its child; it reaps orphans, forwards
    /// signals and exits with the command's status.
    pub init: bool,
}

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SpecError {
    #[error("no command specified")]
    #[diagnostic(help("the image has neither Entrypoint nor Cmd: give a command after the image"))]
    NoCommand,
    #[error("user `{user}` is not in the container's /etc/passwd")]
    #[diagnostic(help("give a numeric uid[:gid], or add the user to the image"))]
    UnknownUser { user: String },
    #[error("group `{group}` is not in the container's /etc/group")]
    UnknownGroup { group: String },
    #[error("the {what} must be an absolute path, got `{path}`")]
    RelativePath { what: &'static str, path: String },
    #[error("volume source `{}` does not exist", path.display())]
    #[diagnostic(help("create it first, or fix the path before `:`"))]
    VolumeSourceMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("a volume cannot be mounted on `/`")]
    VolumeOnRoot,
    #[error("invalid {what} `{value}`")]
    #[diagnostic(help("{help}"))]
    InvalidLimit {
        what: &'static str,
        value: String,
        help: String,
    },
    #[error("environment variable `{key}` has an invalid name")]
    BadEnvName { key: String },
    #[error("the image's environment has an invalid entry `{entry}`")]
    #[diagnostic(help(
        "an image's Env entries are KEY=VALUE (or KEY alone, which unsets KEY as Docker does), with a key and no NUL byte: rebuild the image with a valid `env`"
    ))]
    BadImageEnv { entry: String },
    #[error("invalid hostname `{hostname}`")]
    #[diagnostic(help("at most 64 letters, digits, `-` and `.`"))]
    BadHostname { hostname: String },
    #[error("cannot write the bundle at {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    #[diagnostic(transparent)]
    Seccomp(Box<SeccompError>),
    #[error("unknown capability `{name}` in {flag}")]
    #[diagnostic(help(
        "write a Linux capability with or without `CAP_` (`NET_ADMIN`, `cap_sys_time`), or `ALL`"
    ))]
    UnknownCapability { flag: &'static str, name: String },
    #[error("kiln does not hold CAP_{name} itself, so it cannot give it to a container")]
    #[diagnostic(help("run kiln where it has the capability, or leave it out"))]
    CapabilityNotHeld { name: String },
    #[error("invalid ulimit `{value}`")]
    #[diagnostic(help("{help}"))]
    BadUlimit { value: String, help: String },
    #[error("the hard {name} limit {hard} is above kiln's own ({own})")]
    #[diagnostic(help(
        "raising a hard limit needs CAP_SYS_RESOURCE, which kiln does not have: give at most {own}"
    ))]
    UlimitAboveHard { name: String, hard: u64, own: u64 },
    #[error("tmpfs option `{option}` is not one kiln passes on")]
    #[diagnostic(help(
        "use rw, ro, exec, noexec, suid, nosuid, dev, nodev, sync, async, noatime, atime, size=, mode=, uid=, gid= or nr_inodes="
    ))]
    BadTmpfsOption { option: String },
    #[error("invalid sysctl `{value}`")]
    #[diagnostic(help("{help}"))]
    BadSysctl { value: String, help: String },
    #[error("invalid stop signal `{signal}`")]
    #[diagnostic(help("give a signal name like SIGTERM or QUIT, or its number"))]
    BadStopSignal { signal: String },
    #[error("invalid device `{value}`")]
    #[diagnostic(help("{help}"))]
    BadDevice { value: String, help: String },
    #[error("device `{}` cannot be read", path.display())]
    #[diagnostic(help("give the path of a device node of this machine, like /dev/fuse"))]
    DeviceMissing {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`{}` is not a device node", path.display())]
    #[diagnostic(help(
        "--device takes one character or block device; a directory of them is not supported"
    ))]
    NotADevice { path: PathBuf },
    #[error("kiln applies allow rules after one \"deny everything\" only, not {rule}")]
    UnsupportedDeviceRule { rule: String },
    #[error("the OCI spec is incomplete")]
    Incomplete(#[source] oci_spec::OciSpecError),
}

impl From<SeccompError> for SpecError {
    fn from(error: SeccompError) -> SpecError {
        SpecError::Seccomp(Box::new(error))
    }
}

/// The container of `image` run with `options`, with Docker's defaults (see [`defaults`]).
/// `user_roots`: directories whose `etc/passwd` and `etc/group` resolve `-u` names, top-most
/// layer first (a flattened rootfs is one directory).
pub fn container_spec(
    image: &RuntimeConfig,
    options: &RunOptions,
    user_roots: &[&Path],
) -> Result<Spec, SpecError> {
    let args = command(image, options)?;
    let hostname = options.hostname.clone().unwrap_or_else(|| "kiln".into());
    if hostname.is_empty()
        || hostname.len() > 64
        || !hostname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return Err(SpecError::BadHostname { hostname });
    }
    let cwd = options
        .workdir
        .clone()
        .or_else(|| image.working_dir.clone().filter(|w| !w.is_empty()))
        .unwrap_or_else(|| "/".into());
    if !cwd.starts_with('/') {
        return Err(SpecError::RelativePath {
            what: "working directory",
            path: cwd,
        });
    }
    let user_name = options
        .user
        .clone()
        .or_else(|| image.user.clone().filter(|u| !u.is_empty()));
    let resolved = match &user_name {
        Some(name) => Some(resolve_user(name, user_roots)?),
        None => None,
    };
    let env = environment(image, options, &hostname, resolved.as_ref())?;
    let mut mounts = mounts(&options.volumes)?;
    if options.privileged {
        // /sys and the cgroup filesystems read-write, as Docker's --privileged has them.
        for m in mounts
            .iter_mut()
            .filter(|m| matches!(m.typ().as_deref(), Some("sysfs" | "cgroup")))
        {
            let kept: Vec<String> = m
                .options()
                .iter()
                .flatten()
                .filter(|o| *o != "ro")
                .cloned()
                .collect();
            m.set_options(Some(kept));
        }
    }
    for tmpfs in &options.tmpfs {
        mounts.push(options::tmpfs_mount(tmpfs)?);
    }
    let mut resources = resources(options)?;
    let (devices, device_rules) = device_lists(options)?;
    resources.set_devices(Some(defaults::device_rules_of(&device_rules)));

    let mut user = User::default();
    if let Some(resolved) = &resolved {
        user.set_uid(resolved.ids.uid);
        user.set_gid(resolved.ids.gid);
        if !resolved.ids.groups.is_empty() {
            user.set_additional_gids(Some(resolved.ids.groups.clone()));
        }
    }
    let mut process = Process::default();
    process.set_terminal(Some(options.tty));
    process.set_console_size(None);
    process.set_user(user);
    process.set_args(Some(args));
    process.set_env(Some(env));
    process.set_cwd(cwd.into());
    let capabilities = if options.privileged {
        options::capabilities(&["ALL".to_string()], &[])?
    } else if options.cap_add.is_empty() && options.cap_drop.is_empty() {
        defaults::capabilities()
    } else {
        options::capabilities(&options.cap_add, &options.cap_drop)?
    };
    // Resolved against the capabilities the container ends up with.
    let bounding: Vec<_> = capabilities.bounding().iter().flatten().copied().collect();
    let seccomp_choice = match (&options.seccomp, options.privileged) {
        (SeccompChoice::Default, true) => SeccompChoice::Unconfined,
        (choice, _) => choice.clone(),
    };
    let (seccomp, seccomp_name) = seccomp_choice.resolve(&bounding)?;
    process.set_capabilities(Some(capabilities));
    process.set_rlimits(Some(options::rlimits(
        defaults::rlimits(),
        &options.ulimits,
    )?));
    process.set_no_new_privileges(Some(true));
    process.set_oom_score_adj(None);

    let mut linux = Linux::default();
    linux.set_namespaces(Some(defaults::namespaces(
        options.network == NetworkMode::None,
    )));
    linux.set_devices(Some(devices));
    linux.set_resources(Some(resources));
    let (masked, readonly): (&[&str], &[&str]) = if options.privileged {
        (&[], &[])
    } else {
        (&defaults::MASKED_PATHS, &defaults::READONLY_PATHS)
    };
    linux.set_masked_paths(Some(strings(masked)));
    linux.set_readonly_paths(Some(strings(readonly)));
    linux.set_seccomp(seccomp);
    linux.set_uid_mappings(None);
    linux.set_gid_mappings(None);
    linux.set_sysctl(sysctls(options)?);

    let mut root = Root::default();
    root.set_path("rootfs".into());
    root.set_readonly(Some(options.read_only));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.into());
    spec.set_root(Some(root));
    spec.set_hostname(Some(hostname));
    spec.set_mounts(Some(mounts));
    spec.set_process(Some(process));
    spec.set_linux(Some(linux));
    let stop_signal = options.stop_signal.as_ref().or(image.stop_signal.as_ref());
    let mut annotations: HashMap<String, String> = stop_signal
        .iter()
        .map(|signal| (STOP_SIGNAL_ANNOTATION.to_string(), signal.to_string()))
        .collect();
    if options.privileged {
        annotations.insert(PRIVILEGED_ANNOTATION.to_string(), "true".to_string());
    }
    if options.init {
        annotations.insert(INIT_ANNOTATION.to_string(), "true".to_string());
    }
    if let Some(seconds) = options.stop_timeout {
        annotations.insert(STOP_TIMEOUT_ANNOTATION.to_string(), seconds.to_string());
    }
    annotations.insert(PROFILE_ANNOTATION.to_string(), seccomp_name);
    spec.set_annotations((!annotations.is_empty()).then_some(annotations));
    Ok(spec)
}

/// The container's device nodes and its device cgroup's allow rules: Docker's defaults,
/// plus each `--device` (a later one at the same container path replaces an earlier
/// entry); with `--privileged`, every host device and the one rule that allows all.
fn device_lists(
    options: &RunOptions,
) -> Result<
    (
        Vec<oci_spec::runtime::LinuxDevice>,
        Vec<crate::runtime::cgroup::DeviceRule>,
    ),
    SpecError,
> {
    let mut entries = defaults::devices();
    let mut rules = crate::runtime::cgroup::DEVICE_RULES.to_vec();
    let mut add = |entry: oci_spec::runtime::LinuxDevice| {
        entries.retain(|e| e.path() != entry.path());
        entries.push(entry);
    };
    if options.privileged {
        for entry in devices::host_devices() {
            add(entry);
        }
        rules = vec![devices::ALL_DEVICES];
    }
    for device in &options.devices {
        let (entry, rule) = devices::device(device)?;
        add(entry);
        if !options.privileged && !rules.contains(&rule) {
            rules.push(rule);
        }
    }
    Ok((entries, rules))
}

/// `--sysctl`s as `linux.sysctl`, each a namespaced one the container has of its own: a
/// `net.*` one needs a network namespace of its own (not `--network host`), as runc checks.
fn sysctls(options: &RunOptions) -> Result<Option<HashMap<String, String>>, SpecError> {
    use crate::kernel_names::{SysctlNamespace, sysctl};
    let mut map = HashMap::new();
    for (name, value) in &options.sysctls {
        let bad = |help: &str| SpecError::BadSysctl {
            value: format!("{name}={value}"),
            help: help.to_string(),
        };
        match sysctl(name).map_err(bad)? {
            SysctlNamespace::Network if options.network == NetworkMode::Host => {
                return Err(bad(
                    "net.* sysctls need a network namespace of the container's own: not with --network host",
                ));
            }
            _ => {}
        }
        if value.contains('\0') || value.contains('\n') {
            return Err(bad("the value is one line of text"));
        }
        map.insert(name.clone(), value.clone());
    }
    Ok((!map.is_empty()).then_some(map))
}

/// Entrypoint + (the given args, else the image's Cmd). A replaced entrypoint drops the
/// image's Cmd too, as Docker's `--entrypoint` does: that Cmd was written for the old one.
fn command(image: &RuntimeConfig, options: &RunOptions) -> Result<Vec<String>, SpecError> {
    let mut args = match &options.entrypoint {
        Some(entrypoint) => entrypoint.clone(),
        None => image.entrypoint.clone().unwrap_or_default(),
    };
    if options.args.is_empty() && options.entrypoint.is_none() {
        args.extend(image.cmd.clone().unwrap_or_default());
    } else {
        args.extend(options.args.iter().cloned());
    }
    if args.first().is_none_or(|a| a.is_empty()) {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The image's Env with `-e` over it, plus what Docker adds: PATH if missing, HOSTNAME,
/// HOME (the user's, from /etc/passwd) and TERM with a tty.
fn environment(
    image: &RuntimeConfig,
    options: &RunOptions,
    hostname: &str,
    user: Option<&ResolvedUser>,
) -> Result<Vec<String>, SpecError> {
    let mut env: Vec<String> = Vec::new();
    fn put(env: &mut Vec<String>, key: &str, value: &str, replace: bool) {
        let prefix = format!("{key}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(slot) if replace => *slot = format!("{key}={value}"),
            Some(_) => {}
            None => env.push(format!("{key}={value}")),
        }
    }
    if !image.env.iter().any(|e| e.starts_with("PATH=")) {
        put(&mut env, "PATH", crate::runtime::default_path(), true);
    }
    put(&mut env, "HOSTNAME", hostname, true);
    // Docker's meaning of an entry without `=` (moby's `ReplaceOrAppendEnvValues`): unset
    // that variable — PATH, HOSTNAME or TERM as Docker would set them, or an earlier entry.
    let mut unset = std::collections::BTreeSet::new();
    for entry in &image.env {
        let (key, value) = match entry.split_once('=') {
            Some((key, value)) => (key, Some(value)),
            None => (entry.as_str(), None),
        };
        if key.is_empty() || key.contains('\0') || value.is_some_and(|v| v.contains('\0')) {
            return Err(SpecError::BadImageEnv {
                entry: entry.escape_debug().to_string(),
            });
        }
        match value {
            Some(value) => {
                unset.remove(key);
                put(&mut env, key, value, true);
            }
            None => {
                let prefix = format!("{key}=");
                env.retain(|e| !e.starts_with(&prefix));
                unset.insert(key.to_string());
            }
        }
    }
    for (key, value) in &options.env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(SpecError::BadEnvName { key: key.clone() });
        }
        put(&mut env, key, value, true);
    }
    if options.tty && !unset.contains("TERM") {
        put(&mut env, "TERM", "xterm", false);
    }
    let home = user.and_then(|u| u.home.clone());
    let home = home.unwrap_or_else(|| match user {
        None => "/root".into(),
        Some(u) if u.ids.uid == 0 => "/root".into(),
        Some(_) => "/".into(),
    });
    put(&mut env, "HOME", &home, false);
    Ok(env)
}

/// Docker's default mounts, then the volumes (rbind, read-only when asked).
fn mounts(volumes: &[Volume]) -> Result<Vec<Mount>, SpecError> {
    let mut mounts = defaults::mounts();
    for volume in volumes {
        if !volume.source.is_absolute() {
            return Err(SpecError::RelativePath {
                what: "volume source",
                path: volume.source.display().to_string(),
            });
        }
        if let Err(source) = std::fs::metadata(&volume.source) {
            return Err(SpecError::VolumeSourceMissing {
                path: volume.source.clone(),
                source,
            });
        }
        if !volume.destination.starts_with('/') {
            return Err(SpecError::RelativePath {
                what: "volume destination",
                path: volume.destination.clone(),
            });
        }
        if volume.destination.trim_end_matches('/').is_empty() {
            return Err(SpecError::VolumeOnRoot);
        }
        let propagation = volume.propagation.as_deref().unwrap_or("rprivate");
        let mut options = vec!["rbind".to_string(), propagation.to_string()];
        if volume.read_only {
            options.push("ro".into());
        }
        mounts.push(
            MountBuilder::default()
                .destination(&volume.destination)
                .typ("bind")
                .source(&volume.source)
                .options(options)
                .build()
                .map_err(SpecError::Incomplete)?,
        );
    }
    Ok(mounts)
}

/// The CPU period Docker uses for `--cpus` (100 ms).
const CPU_PERIOD: u64 = 100_000;

fn resources(options: &RunOptions) -> Result<LinuxResources, SpecError> {
    let invalid = |what: &'static str, value: String, help: &str| SpecError::InvalidLimit {
        what,
        value,
        help: help.to_string(),
    };
    let mut resources = LinuxResources::default();
    if let Some(memory) = options.memory {
        // Docker's minimum: below it the container cannot even start.
        if memory < 6 * 1024 * 1024 {
            return Err(invalid(
                "memory limit",
                memory.to_string(),
                "the minimum memory limit is 6MiB",
            ));
        }
        let memory = i64::try_from(memory)
            .map_err(|_| invalid("memory limit", memory.to_string(), "too large"))?;
        resources.set_memory(Some(
            LinuxMemoryBuilder::default()
                .limit(memory)
                .build()
                .map_err(SpecError::Incomplete)?,
        ));
    }
    if let Some(cpus) = options.cpus {
        let available = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        if !(cpus >= 0.01 && cpus <= available) {
            return Err(invalid(
                "number of CPUs",
                cpus.to_string(),
                &format!("the range of CPUs is from 0.01 to {available}"),
            ));
        }
        resources.set_cpu(Some(
            LinuxCpuBuilder::default()
                .quota((cpus * CPU_PERIOD as f64).round() as i64)
                .period(CPU_PERIOD)
                .build()
                .map_err(SpecError::Incomplete)?,
        ));
    }
    match options.pids_limit {
        None | Some(-1) => {}
        Some(limit) if limit > 0 => {
            resources.set_pids(Some(
                LinuxPidsBuilder::default()
                    .limit(limit)
                    .build()
                    .map_err(SpecError::Incomplete)?,
            ));
        }
        Some(limit) => {
            return Err(invalid(
                "pids limit",
                limit.to_string(),
                "give a positive number, or -1 for no limit",
            ));
        }
    }
    Ok(resources)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `config.json`'s bytes: pretty JSON with every object's keys sorted and every capability
/// list in a fixed order, so the same container always gives the same file.
pub fn to_json(spec: &Spec) -> Vec<u8> {
    let mut value = serde_json::to_value(spec).expect("an OCI spec serializes");
    if let Some(caps) = value
        .pointer_mut("/process/capabilities")
        .and_then(|c| c.as_object_mut())
    {
        for set in caps.values_mut() {
            if let Some(list) = set.as_array_mut() {
                list.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            }
        }
    }
    // serde_json's maps are BTreeMaps (no preserve_order): keys come out sorted.
    let mut json = serde_json::to_vec_pretty(&value).expect("a JSON value serializes");
    json.push(b'\n');
    json
}

/// Writes the OCI bundle `dir`: `config.json` (root.path = "rootfs") and, unless `rootfs`
/// is already `dir/rootfs`, a `rootfs` symlink to it. `rootfs` is a flattened root
/// filesystem the caller prepared. Returns the path of `config.json`.
pub fn write_bundle(dir: &Path, spec: &Spec, rootfs: &Path) -> Result<PathBuf, SpecError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SpecError::Write { path, source }
    };
    std::fs::create_dir_all(dir).map_err(write_err(dir))?;
    let link = dir.join("rootfs");
    if rootfs != link {
        let target = std::path::absolute(rootfs).map_err(write_err(rootfs))?;
        std::os::unix::fs::symlink(&target, &link).map_err(write_err(&link))?;
    }
    let mut spec = spec.clone();
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path("rootfs".into());
    spec.set_root(Some(root));
    let config = dir.join("config.json");
    std::fs::write(&config, to_json(&spec)).map_err(write_err(&config))?;
    Ok(config)
}

#[cfg(test)]
mod tests;
