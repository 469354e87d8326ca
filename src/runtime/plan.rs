//! The setup as data: an OCI [`Spec`] and a [`RootfsLayout`] become the namespaces to create
//! and the ordered [`SetupStep`]s the child executes. The build sandbox ([`plan`]) and
//! containers ([`plan_container`]) share it: a [`SandboxSpec`] is turned into a spec with
//! Docker's defaults (as `docker build` gives `RUN` steps), so both run the same code.
//! Pure (no I/O but reading the host's cgroup mounts once and whether bind sources are
//! files): unit tests assert the exact mounts, and `--trace` prints the steps the child runs.
//!
//! Everything the child needs is built here, before the fork, because the child of a
//! multithreaded process must not allocate: C strings, the argv/envp pointer arrays and the
//! candidate paths of the PATH lookup.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use nix::mount::MsFlags;
use nix::sched::CloneFlags;
use oci_spec::runtime::{LinuxNamespaceType, Mount, Process, Root, Spec, User};

use super::cgroupfs::HostCgroups;
use super::linux_names::{capability_mask, rlimit_resource};
use super::mount_options::{self, MountOptions};
use super::seccomp::default::DEFAULT_NAME;
use super::seccomp::{PROFILE_ANNOTATION, SeccompFilter, default_seccomp};
use super::spec::defaults;
use super::step::{CStringArray, Purpose, SetupPlan, SetupStep, Target};
use super::{SandboxError, SandboxSpec};
use crate::inroot::{Create, How};

/// The PATH used for the command lookup when the spec's env has none (Docker's default).
pub fn default_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// Mountpoints provided by the skeleton layer below the caller's layers.
pub(crate) const SKELETON_DIRS: [&str; 3] = ["proc", "dev", "sys"];

/// Linux limits mount data to one page, NUL included.
const MOUNT_DATA_MAX: usize = 4095;

/// The umask of the command unless the spec says otherwise, fixed so that layers do not
/// depend on kiln's own umask.
const UMASK: u32 = 0o022;

/// The directories a root filesystem is made of: an overlayfs of `lower_dirs` (read-only,
/// top-most first, may be empty) with every change going to `upper_dir`. `scratch_dir` is
/// the runtime's own, on the same filesystem as `upper_dir` and apart from every layer: it
/// holds overlayfs's workdir and an empty mountpoint, both left (empty) for the next run to
/// reuse. One sandbox or container at a time per scratch directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootfsLayout {
    pub lower_dirs: Vec<PathBuf>,
    pub upper_dir: PathBuf,
    pub scratch_dir: PathBuf,
}

/// The sandbox's directories. On the host, `scratch_dir` only ever holds two: the overlayfs
/// workdir and an empty mountpoint. In the sandbox's mount namespace a tmpfs is mounted on
/// that mountpoint to hold the skeleton layer and the merged root, so they cost no disk
/// writes and vanish with the namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScratchLayout {
    /// The overlayfs workdir (the kernel creates `work/` in it). Not inside the tmpfs: it
    /// must be on the upper directory's filesystem.
    pub(crate) overlay_work: PathBuf,
    /// Where the tmpfs is mounted; empty on the host.
    pub(crate) mountpoint: PathBuf,
    /// Lowest lower layer, on the tmpfs: empty `proc`, `dev`, `sys` directories.
    pub(crate) skeleton: PathBuf,
    /// Where the merged root is mounted, on the tmpfs.
    pub(crate) merged: PathBuf,
}

impl ScratchLayout {
    pub(crate) fn new(scratch: &Path) -> ScratchLayout {
        let mountpoint = scratch.join("mnt");
        ScratchLayout {
            overlay_work: scratch.join("overlay-work"),
            skeleton: mountpoint.join("skeleton"),
            merged: mountpoint.join("merged"),
            mountpoint,
        }
    }
}

/// What the spec alone does not say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PlanOptions {
    /// Create the working directory if the image lacks it (`docker run -w` does; a build
    /// step reports it missing instead).
    pub(crate) create_cwd: bool,
    /// Make stdin (a pty) the controlling terminal.
    pub(crate) controlling_terminal: bool,
    /// `--init`: the descriptor of the sealed copy of `kiln-init` ([`super::init`]) that
    /// runs as pid 1, the command as its child.
    pub(crate) init: Option<std::os::fd::RawFd>,
}

/// The setup of a build step: `spec` with Docker's defaults (see [`sandbox_oci_spec`]).
pub fn plan(spec: &SandboxSpec) -> Result<SetupPlan, SandboxError> {
    plan_with(
        &sandbox_oci_spec(spec),
        &spec.rootfs(),
        PlanOptions::default(),
        HostCgroups::detect(),
    )
}

/// The setup of a container: everything `spec` asks for, on `rootfs`. The working
/// directory is created when missing; `process.terminal` makes stdin the controlling
/// terminal.
pub fn plan_container(spec: &Spec, rootfs: &RootfsLayout) -> Result<SetupPlan, SandboxError> {
    let terminal = spec
        .process()
        .as_ref()
        .and_then(Process::terminal)
        .unwrap_or(false);
    plan_with(
        spec,
        rootfs,
        PlanOptions {
            create_cwd: true,
            controlling_terminal: terminal,
            init: None,
        },
        HostCgroups::detect(),
    )
}

/// A build step as an OCI spec: Docker's default mounts, devices, masked and read-only
/// paths, capabilities, rlimits and seccomp profile, like `docker build`'s `RUN` (whose
/// base image may be anyone's: the step gets a container's protections, and
/// [`SandboxSpec::cgroup`] its device rules). No no_new_privs: build steps may need setuid
/// programs (`su`, `sudo`); the filter is then loaded before the identity change.
pub fn sandbox_oci_spec(spec: &SandboxSpec) -> Spec {
    let mut user = User::default();
    if let Some(ids) = &spec.user {
        user.set_uid(ids.uid);
        user.set_gid(ids.gid);
        if !ids.groups.is_empty() {
            user.set_additional_gids(Some(ids.groups.clone()));
        }
    }
    let mut process = Process::default();
    process.set_terminal(Some(false));
    process.set_user(user);
    process.set_args(Some(spec.argv.clone()));
    process.set_env(Some(spec.env.clone()));
    process.set_cwd(PathBuf::from(&spec.cwd));
    process.set_capabilities(Some(defaults::capabilities()));
    process.set_rlimits(Some(defaults::rlimits()));
    process.set_no_new_privileges(Some(false));
    let mut linux = oci_spec::runtime::Linux::default();
    linux.set_namespaces(Some(defaults::namespaces(!spec.network)));
    linux.set_devices(Some(defaults::devices()));
    linux.set_resources(None);
    linux.set_masked_paths(Some(strings(&defaults::MASKED_PATHS)));
    linux.set_readonly_paths(Some(strings(&defaults::READONLY_PATHS)));
    linux.set_seccomp(Some(default_seccomp(&defaults::DEFAULT_CAPABILITIES)));
    let mut root = Root::default();
    root.set_readonly(Some(false));
    let mut oci = Spec::default();
    oci.set_root(Some(root));
    oci.set_hostname(Some(spec.hostname.clone()));
    oci.set_mounts(Some(defaults::mounts()));
    oci.set_process(Some(process));
    oci.set_linux(Some(linux));
    oci.set_annotations(Some(
        [(PROFILE_ANNOTATION.to_string(), DEFAULT_NAME.to_string())].into(),
    ));
    oci
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Computes the setup of `spec` on `rootfs`. Checks what the kernel would reject late or
/// obscurely.
pub(crate) fn plan_with(
    spec: &Spec,
    rootfs: &RootfsLayout,
    options: PlanOptions,
    cgroups: &HostCgroups,
) -> Result<SetupPlan, SandboxError> {
    let scratch_dir = absolute("scratch directory", &rootfs.scratch_dir)?;
    let scratch = ScratchLayout::new(scratch_dir);
    let upper = outside_scratch("upper directory", &rootfs.upper_dir, scratch_dir)?;
    let mut lowers = Vec::with_capacity(rootfs.lower_dirs.len() + 1);
    for lower in &rootfs.lower_dirs {
        lowers.push(outside_scratch("lower directory", lower, scratch_dir)?);
    }
    lowers.push(&scratch.skeleton);

    let process = spec.process().as_ref().ok_or(SandboxError::EmptyCommand)?;
    let argv = process.args().clone().unwrap_or_default();
    let env = process.env().clone().unwrap_or_default();
    let cwd = process.cwd().to_string_lossy().into_owned();
    if !cwd.starts_with('/') {
        return Err(SandboxError::RelativePath {
            what: "working directory",
            path: PathBuf::from(&cwd),
        });
    }
    let hostname = spec.hostname().clone().unwrap_or_default();
    if hostname.len() > 64 {
        return Err(SandboxError::BadHostname { hostname });
    }
    let command = argv.first().ok_or(SandboxError::EmptyCommand)?;
    if command.is_empty() {
        return Err(SandboxError::EmptyCommand);
    }
    if let Some(entry) = env.iter().find(|e| !e.contains('=')) {
        return Err(SandboxError::BadEnv {
            entry: entry.clone(),
        });
    }
    let linux = spec.linux().as_ref();
    let (namespaces, unshared) =
        clone_flags(linux.and_then(|l| l.namespaces().as_deref()).unwrap_or(&[]))?;

    let root = &scratch.merged;
    let mut steps = Vec::new();
    // The cgroup namespace first, now that the parent has put us in our cgroup: its root
    // is the container's cgroup.
    if !unshared.is_empty() {
        steps.push(SetupStep::Unshare { flags: unshared });
    }
    // Before anything is mounted: nothing may propagate to the machine's mounts.
    steps.push(mount(
        None,
        host(c("/")),
        None,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None,
    ));
    steps.push(mount(
        Some(c("tmpfs")),
        host(cpath(&scratch.mountpoint, "scratch directory")?),
        Some(c("tmpfs")),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some(c("mode=755,size=64k")),
    ));
    for dir in [&scratch.skeleton, &scratch.merged] {
        steps.push(SetupStep::MakeDir {
            path: cpath(dir, "scratch directory")?,
            mode: 0o755,
        });
    }
    for dir in SKELETON_DIRS {
        steps.push(SetupStep::MakeDir {
            path: cpath(&scratch.skeleton.join(dir), "scratch directory")?,
            mode: 0o755,
        });
    }
    steps.push(mount(
        Some(c("overlay")),
        host(cpath(root, "scratch directory")?),
        Some(c("overlay")),
        MsFlags::empty(),
        Some(overlay_options(&lowers, upper, &scratch.overlay_work)?),
    ));

    // From here on every path in the root is the image's, so hostile: each is resolved
    // inside the root (its links followed as the container will see them) and mounted
    // onto through its descriptor.
    steps.push(SetupStep::OpenRoot {
        path: cpath(root, "scratch directory")?,
    });
    // Pseudo filesystems already mounted: nothing can (or need) be created inside them.
    let mut pseudo: Vec<&str> = Vec::new();
    let mut mounted: Vec<&str> = Vec::new();
    for m in spec.mounts().as_deref().unwrap_or(&[]) {
        let destination = m.destination().to_str().ok_or(SandboxError::Nul {
            what: "mount destination",
        })?;
        let target = in_root(destination)?;
        let fstype = m.typ().as_deref().unwrap_or("none");
        let parsed = mount_options::parse(m.options().as_deref().unwrap_or(&[]));
        let inside_pseudo = pseudo
            .iter()
            .any(|p| destination.starts_with(p) && destination[p.len()..].starts_with('/'));
        if fstype == "bind" || parsed.bind {
            bind_steps(m, &parsed, target, &mut steps)?;
        } else if fstype == "cgroup" {
            cgroup_steps(&parsed, target, cgroups, &mut steps)?;
        } else {
            steps.push(SetupStep::Resolve {
                path: target.clone(),
                how: How {
                    create: if inside_pseudo {
                        Create::Nothing
                    } else {
                        Create::Dir
                    },
                    // runc's rule (CVE-2019-19921): proc and sysfs only on a real
                    // directory, never through a link the image planted.
                    symlinks: !matches!(fstype, "proc" | "sysfs"),
                },
                purpose: Purpose::Mountpoint {
                    fstype: fstype.to_string(),
                },
            });
            let data = (!parsed.data.is_empty()).then(|| parsed.data.join(","));
            steps.push(mount(
                m.source()
                    .as_ref()
                    .map(|s| cpath(s, "mount source"))
                    .transpose()?,
                Target::Resolved(target.clone()),
                Some(cstring(fstype.to_string())),
                parsed.flags,
                data.map(cstring),
            ));
            if !parsed.propagation.is_empty() {
                steps.push(again(&target));
                steps.push(mount(
                    None,
                    Target::Resolved(target),
                    None,
                    parsed.propagation,
                    None,
                ));
            }
        }
        if matches!(fstype, "proc" | "sysfs") {
            pseudo.push(destination);
        }
        mounted.push(destination);
    }
    for device in linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]) {
        let path = device.path().to_str().ok_or(SandboxError::Nul {
            what: "device path",
        })?;
        let target = in_root(path)?;
        if !host_has_node(device) {
            // Not the host's node at the same path (`--device /dev/sdc:/dev/xvdc`): made
            // from its type and numbers, as runc does.
            node_steps(device, path, &mut steps)?;
            continue;
        }
        steps.push(SetupStep::Resolve {
            path: target.clone(),
            how: How::FILE,
            purpose: Purpose::Device,
        });
        // The host's node, bound: works wherever kiln runs, even where mknod would not.
        steps.push(mount(
            Some(cstring(path.to_string())),
            Target::Resolved(target),
            None,
            MsFlags::MS_BIND,
            None,
        ));
    }
    if mounted.contains(&"/dev") {
        let mut links = vec![
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ];
        if mounted.contains(&"/dev/pts") {
            links.push(("ptmx", "pts/ptmx"));
        }
        steps.push(SetupStep::Resolve {
            path: c("/dev"),
            how: How::EXISTING,
            purpose: Purpose::Links,
        });
        for (link, target) in links {
            steps.push(SetupStep::SymlinkAt {
                target: c(target),
                name: c(link),
            });
        }
    }
    if options.create_cwd {
        // Docker's WORKDIR creates a missing directory at run time too: inside the root.
        steps.push(SetupStep::Resolve {
            path: in_root(&cwd).map_err(|err| match err {
                SandboxError::BadMountDestination { path } => SandboxError::BadWorkdir { path },
                other => other,
            })?,
            how: How::DIR,
            purpose: Purpose::Workdir,
        });
    }
    steps.push(SetupStep::CloseRoot);
    // pivot_root(".", ".") stacks the old root on the new one; detaching "." drops it.
    // No put_old directory is needed, so nothing is created in the rootfs.
    steps.push(SetupStep::Chdir {
        path: cpath(root, "scratch directory")?,
    });
    steps.push(SetupStep::PivotRoot {
        new_root: c("."),
        put_old: c("."),
    });
    steps.push(SetupStep::UnmountDetach { target: c(".") });
    steps.push(SetupStep::Chdir { path: c("/") });
    // In the container's own /proc, before /proc/sys is made read-only (runc's order).
    sysctl_steps(
        linux.and_then(|l| l.sysctl().as_ref()),
        namespaces,
        &mut steps,
    )?;
    for path in linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or(&[])
    {
        steps.push(SetupStep::MaskPath {
            path: container_path(path)?,
        });
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or(&[])
    {
        steps.push(SetupStep::ReadonlyPath {
            path: container_path(path)?,
        });
    }
    if spec.root().as_ref().and_then(Root::readonly) == Some(true) {
        steps.push(mount(
            None,
            host(c("/")),
            None,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY,
            None,
        ));
    }
    if namespaces.contains(CloneFlags::CLONE_NEWUTS) && !hostname.is_empty() {
        steps.push(SetupStep::SetHostname {
            name: CString::new(hostname).map_err(|_| SandboxError::Nul { what: "hostname" })?,
        });
    }
    if namespaces.contains(CloneFlags::CLONE_NEWNET) {
        steps.push(SetupStep::LoopbackUp);
    }
    steps.push(SetupStep::NewSession);
    if options.controlling_terminal {
        steps.push(SetupStep::SetControllingTerminal);
    }
    let user = process.user();
    steps.push(SetupStep::Umask {
        mask: user.umask().unwrap_or(UMASK),
    });
    for rlimit in process.rlimits().as_deref().unwrap_or(&[]) {
        let (resource, name) = rlimit_resource(rlimit.typ());
        steps.push(SetupStep::SetRlimit {
            resource,
            name,
            soft: rlimit.soft(),
            hard: rlimit.hard(),
        });
    }
    // Compiled here, before clone: the child may not allocate.
    let seccomp = SeccompFilter::of_spec(spec)?;
    let no_new_privs = process.no_new_privileges() == Some(true);
    if let (Some(filter), false) = (&seccomp, no_new_privs) {
        // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the identity
        // steps may drop: load it first (the filter denies none of their calls).
        steps.push(SetupStep::Seccomp {
            filter: filter.clone(),
        });
    }
    identity_steps(process, &mut steps)?;
    // As the command's user (so with its permissions), before no_new_privs and the filter.
    steps.push(SetupStep::ChdirInRoot {
        path: CString::new(cwd.as_str()).map_err(|_| SandboxError::Nul {
            what: "working directory",
        })?,
    });
    if no_new_privs {
        steps.push(SetupStep::NoNewPrivs);
        // As late as possible, so no setup step runs under it; execve and chdir stay
        // allowed.
        if let Some(filter) = seccomp {
            steps.push(SetupStep::Seccomp { filter });
        }
    }
    let path = path_var(&env);
    steps.push(match options.init {
        Some(init) => SetupStep::ExecInit {
            init,
            argv: strings_array(
                "command",
                &[super::init::NAME.to_string(), "--".to_string()]
                    .into_iter()
                    .chain(argv.iter().cloned())
                    .collect::<Vec<_>>(),
            )?,
            env: strings_array("environment", &env)?,
        },
        None => SetupStep::Exec {
            candidates: exec_candidates(command, &path)?,
            argv: strings_array("command", &argv)?,
            env: strings_array("environment", &env)?,
        },
    });
    Ok(SetupPlan {
        namespaces,
        steps,
        command: command.clone(),
        path,
        cwd,
    })
}

/// Whether the host has `device`'s node at the same path (type and numbers alike): then
/// it is bound rather than made.
fn host_has_node(device: &oci_spec::runtime::LinuxDevice) -> bool {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let Ok(meta) = std::fs::metadata(device.path()) else {
        return false;
    };
    let kind = meta.file_type();
    let same_kind = match device.typ() {
        oci_spec::runtime::LinuxDeviceType::B => kind.is_block_device(),
        oci_spec::runtime::LinuxDeviceType::C | oci_spec::runtime::LinuxDeviceType::U => {
            kind.is_char_device()
        }
        _ => false,
    };
    same_kind
        && i64::from(nix::sys::stat::major(meta.rdev()) as u32) == device.major()
        && i64::from(nix::sys::stat::minor(meta.rdev()) as u32) == device.minor()
}

/// The steps that make `device` at `path` in the root: its directory resolved (created
/// when missing), then the node made in it.
fn node_steps(
    device: &oci_spec::runtime::LinuxDevice,
    path: &str,
    steps: &mut Vec<SetupStep>,
) -> Result<(), SandboxError> {
    use oci_spec::runtime::LinuxDeviceType;
    let (dir, name) = path.rsplit_once('/').unwrap_or(("", path));
    let number = |n: i64| {
        u32::try_from(n).map_err(|_| SandboxError::Unsupported {
            what: format!("device number {n} of {path}"),
        })
    };
    let block = match device.typ() {
        LinuxDeviceType::B => true,
        LinuxDeviceType::C | LinuxDeviceType::U => false,
        other => {
            return Err(SandboxError::Unsupported {
                what: format!("a device of type `{}` ({path})", other.as_str()),
            });
        }
    };
    if name.is_empty() {
        return Err(SandboxError::BadMountDestination {
            path: path.to_string(),
        });
    }
    steps.push(SetupStep::Resolve {
        path: in_root(if dir.is_empty() { "/" } else { dir })?,
        how: How::DIR,
        purpose: Purpose::Device,
    });
    steps.push(SetupStep::MakeNode {
        name: cstring(name.to_string()),
        block,
        mode: device.file_mode().unwrap_or(0o666),
        major: number(device.major())?,
        minor: number(device.minor())?,
        uid: device.uid().unwrap_or(0),
        gid: device.gid().unwrap_or(0),
    });
    Ok(())
}

/// The sysctls of the spec, sorted by name, each checked as runc's validator does: only
/// one of a namespace the container has of its own (`net.*` needs its own network
/// namespace, the IPC ones its IPC namespace, `kernel.domainname` its UTS namespace).
fn sysctl_steps(
    sysctls: Option<&std::collections::HashMap<String, String>>,
    namespaces: CloneFlags,
    steps: &mut Vec<SetupStep>,
) -> Result<(), SandboxError> {
    use crate::kernel_names::{SysctlNamespace, sysctl};
    let Some(sysctls) = sysctls else {
        return Ok(());
    };
    let mut sorted: Vec<(&String, &String)> = sysctls.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        let bad = |reason: &str| SandboxError::BadSysctl {
            name: name.clone(),
            reason: reason.to_string(),
        };
        let needs = match sysctl(name).map_err(bad)? {
            SysctlNamespace::Ipc => (CloneFlags::CLONE_NEWIPC, "an IPC namespace"),
            SysctlNamespace::Network => (CloneFlags::CLONE_NEWNET, "a network namespace"),
            SysctlNamespace::Uts => (CloneFlags::CLONE_NEWUTS, "a UTS namespace"),
        };
        if !namespaces.contains(needs.0) {
            return Err(bad(&format!(
                "it needs {} of its own (it would change the machine's)",
                needs.1
            )));
        }
        steps.push(SetupStep::Sysctl {
            path: CString::new(name.replace('.', "/")).map_err(|_| SandboxError::Nul {
                what: "sysctl name",
            })?,
            value: CString::new(value.as_str()).map_err(|_| SandboxError::Nul {
                what: "sysctl value",
            })?,
        });
    }
    Ok(())
}

/// The clone(2) flags, and the namespaces unshared later (cgroup).
fn clone_flags(
    namespaces: &[oci_spec::runtime::LinuxNamespace],
) -> Result<(CloneFlags, CloneFlags), SandboxError> {
    let mut cloned = CloneFlags::empty();
    let mut unshared = CloneFlags::empty();
    for namespace in namespaces {
        let kind = namespace.typ();
        if namespace.path().is_some() {
            return Err(SandboxError::Unsupported {
                what: format!("joining an existing {kind} namespace"),
            });
        }
        match kind {
            LinuxNamespaceType::Mount => cloned |= CloneFlags::CLONE_NEWNS,
            LinuxNamespaceType::Pid => cloned |= CloneFlags::CLONE_NEWPID,
            LinuxNamespaceType::Uts => cloned |= CloneFlags::CLONE_NEWUTS,
            LinuxNamespaceType::Ipc => cloned |= CloneFlags::CLONE_NEWIPC,
            LinuxNamespaceType::Network => cloned |= CloneFlags::CLONE_NEWNET,
            LinuxNamespaceType::Cgroup => unshared |= CloneFlags::CLONE_NEWCGROUP,
            LinuxNamespaceType::User | LinuxNamespaceType::Time => {
                return Err(SandboxError::Unsupported {
                    what: format!("a {kind} namespace"),
                });
            }
        }
    }
    if !cloned.contains(CloneFlags::CLONE_NEWNS) {
        // The root filesystem is set up by mounting: without a mount namespace of its own,
        // that would be the machine's.
        return Err(SandboxError::Unsupported {
            what: "a container without a mount namespace".into(),
        });
    }
    Ok((cloned, unshared))
}

/// A bind mount (a volume): the target resolved inside the root and created there when
/// missing (a file for a file: binding a file onto a directory, or a directory onto a
/// file, is refused with an error naming both), then the bind onto that descriptor, its
/// propagation, and a remount for `ro`/`nosuid`/… (a bind ignores them) of the mount found
/// again inside the root. A target that is a link of the image is followed inside the root,
/// as runc does: the volume appears where the link points, and through the link.
fn bind_steps(
    m: &Mount,
    parsed: &MountOptions,
    target: CString,
    steps: &mut Vec<SetupStep>,
) -> Result<(), SandboxError> {
    let source = m.source().as_ref().ok_or(SandboxError::RelativePath {
        what: "bind mount source",
        path: PathBuf::new(),
    })?;
    let source = absolute("bind mount source", source)?;
    let is_file = std::fs::metadata(source).is_ok_and(|meta| !meta.is_dir());
    steps.push(SetupStep::Resolve {
        path: target.clone(),
        how: if is_file { How::FILE } else { How::DIR },
        purpose: Purpose::Bind {
            source: source.display().to_string(),
        },
    });
    let recursive = if parsed.recursive {
        MsFlags::MS_REC
    } else {
        MsFlags::empty()
    };
    steps.push(mount(
        Some(cpath(source, "bind mount source")?),
        Target::Resolved(target.clone()),
        None,
        MsFlags::MS_BIND | recursive,
        None,
    ));
    let restrictions = parsed.flags
        & (MsFlags::MS_RDONLY | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC);
    if parsed.propagation.is_empty() && restrictions.is_empty() {
        return Ok(());
    }
    // The descriptor names the directory under the new mount: look again to reach it.
    steps.push(again(&target));
    if !parsed.propagation.is_empty() {
        steps.push(mount(
            None,
            Target::Resolved(target.clone()),
            None,
            parsed.propagation,
            None,
        ));
    }
    if !restrictions.is_empty() {
        steps.push(mount(
            None,
            Target::Resolved(target),
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | restrictions,
            None,
        ));
    }
    Ok(())
}

/// The mount just made at `target`, found again inside the root (a descriptor resolved
/// before the mount names what is under it).
fn again(target: &CString) -> SetupStep {
    SetupStep::Resolve {
        path: target.clone(),
        how: How::EXISTING,
        purpose: Purpose::Remount,
    }
}

/// `/sys/fs/cgroup` as the host has it (see [`HostCgroups`]), read-only by bind remounts
/// (a new mount of an existing hierarchy must match its read-write superblock). Inside the
/// sysfs just mounted, so nothing of the image is on the way; resolved inside the root all
/// the same, like every other path there.
fn cgroup_steps(
    parsed: &MountOptions,
    target: CString,
    cgroups: &HostCgroups,
    steps: &mut Vec<SetupStep>,
) -> Result<(), SandboxError> {
    let restrictions = parsed.flags
        & (MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RELATIME);
    let read_only = parsed.flags.contains(MsFlags::MS_RDONLY);
    let mountpoint = |path: &CString, fstype: &str| SetupStep::Resolve {
        path: path.clone(),
        how: How::DIR,
        purpose: Purpose::Mountpoint {
            fstype: fstype.to_string(),
        },
    };
    let seal = |target: &CString, steps: &mut Vec<SetupStep>| {
        if read_only {
            steps.push(again(target));
            steps.push(mount(
                None,
                Target::Resolved(target.clone()),
                None,
                MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | restrictions,
                None,
            ));
        }
    };
    match cgroups {
        HostCgroups::Absent => {}
        HostCgroups::V2 => {
            steps.push(mountpoint(&target, "cgroup2"));
            steps.push(mount(
                Some(c("cgroup2")),
                Target::Resolved(target.clone()),
                Some(c("cgroup2")),
                restrictions,
                None,
            ));
            seal(&target, steps);
        }
        HostCgroups::V1 { hierarchies, links } => {
            let base = PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()));
            steps.push(mountpoint(&target, "tmpfs"));
            steps.push(mount(
                Some(c("tmpfs")),
                Target::Resolved(target.clone()),
                Some(c("tmpfs")),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
                Some(c("mode=755")),
            ));
            for hierarchy in hierarchies {
                let dir = cpath(&base.join(&hierarchy.name), "cgroup hierarchy")?;
                steps.push(mountpoint(&dir, &hierarchy.fstype));
                steps.push(mount(
                    Some(cstring(hierarchy.fstype.clone())),
                    Target::Resolved(dir.clone()),
                    Some(cstring(hierarchy.fstype.clone())),
                    restrictions,
                    (!hierarchy.options.is_empty()).then(|| cstring(hierarchy.options.clone())),
                ));
                seal(&dir, steps);
            }
            if !links.is_empty() {
                steps.push(SetupStep::Resolve {
                    path: target.clone(),
                    how: How::EXISTING,
                    purpose: Purpose::Links,
                });
            }
            for (link, link_target) in links {
                steps.push(SetupStep::SymlinkAt {
                    target: cstring(link_target.clone()),
                    name: cstring(link.clone()),
                });
            }
            if read_only {
                steps.push(again(&target));
                steps.push(mount(
                    None,
                    Target::Resolved(target),
                    None,
                    MsFlags::MS_REMOUNT
                        | MsFlags::MS_RDONLY
                        | MsFlags::MS_NOSUID
                        | MsFlags::MS_NODEV
                        | MsFlags::MS_NOEXEC,
                    Some(c("mode=755")),
                ));
            }
        }
    }
    Ok(())
}

/// Groups, gid, uid — and around them the capabilities: the bounding set shrunk while we
/// still may (CAP_SETPCAP), permitted kept across a change to a non-root uid, then the
/// sets the command gets.
fn identity_steps(process: &Process, steps: &mut Vec<SetupStep>) -> Result<(), SandboxError> {
    let user = process.user();
    let mask = |set: &Option<oci_spec::runtime::Capabilities>| {
        capability_mask(set.iter().flatten()).map_err(|name| SandboxError::Unsupported {
            what: format!("capability {name}"),
        })
    };
    let capabilities = match process.capabilities() {
        Some(caps) => Some((
            mask(caps.bounding())?,
            mask(caps.effective())?,
            mask(caps.permitted())?,
            mask(caps.inheritable())?,
            mask(caps.ambient())?,
        )),
        None => None,
    };
    if let Some((bounding, ..)) = capabilities {
        if user.uid() != 0 {
            steps.push(SetupStep::KeepCaps);
        }
        steps.push(SetupStep::DropBoundingCaps { keep: bounding });
    }
    // Groups first: once the uid is dropped, the process may no longer change them.
    steps.push(SetupStep::SetGroups {
        groups: user.additional_gids().clone().unwrap_or_default(),
    });
    steps.push(SetupStep::SetGid { gid: user.gid() });
    steps.push(SetupStep::SetUid { uid: user.uid() });
    if let Some((_, effective, permitted, inheritable, ambient)) = capabilities {
        steps.push(SetupStep::SetCapabilities {
            effective,
            permitted,
            inheritable,
            ambient,
        });
    }
    Ok(())
}

/// `destination` without its leading `/`, refused if it climbs out with `..`.
fn relative(destination: &str) -> Result<&Path, SandboxError> {
    let path = Path::new(destination);
    if !path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
        return Err(SandboxError::BadMountDestination {
            path: destination.to_string(),
        });
    }
    Ok(path.strip_prefix("/").unwrap_or(path))
}

/// A mount destination or working directory: an absolute path of the container, resolved
/// inside its root by the child.
fn in_root(destination: &str) -> Result<CString, SandboxError> {
    relative(destination)?;
    CString::new(destination).map_err(|_| SandboxError::Nul {
        what: "mount destination",
    })
}

/// An absolute path inside the container (after pivot_root).
fn container_path(path: &str) -> Result<CString, SandboxError> {
    relative(path)?;
    CString::new(path).map_err(|_| SandboxError::Nul {
        what: "masked or read-only path",
    })
}
/// The PATH the command lookup uses: the one in `env`, else [`default_path`].
pub(crate) fn path_var(env: &[String]) -> String {
    env.iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(default_path())
        .to_string()
}

/// The paths execve tries for `command`, in order: itself if it has a `/`, else each
/// non-empty PATH entry joined with it (like execvp, minus the current directory).
fn exec_candidates(command: &str, path: &str) -> Result<Vec<CString>, SandboxError> {
    let nul = |_| SandboxError::Nul { what: "command" };
    if command.contains('/') {
        return Ok(vec![CString::new(command).map_err(nul)?]);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| CString::new(format!("{}/{command}", dir.trim_end_matches('/'))).map_err(nul))
        .collect()
}

pub(crate) fn overlay_options(
    lowers: &[&Path],
    upper: &Path,
    work: &Path,
) -> Result<CString, SandboxError> {
    let mut data = b"lowerdir=".to_vec();
    for (i, lower) in lowers.iter().enumerate() {
        if i > 0 {
            data.push(b':');
        }
        escape_overlay_path(lower, &mut data);
    }
    data.extend_from_slice(b",upperdir=");
    escape_overlay_path(upper, &mut data);
    data.extend_from_slice(b",workdir=");
    escape_overlay_path(work, &mut data);
    // Keep upper directories plain: no redirect or metacopy xattrs that a layer diff would
    // misread, no index tied to this mount. `volatile`: unmounting must not sync the whole
    // upper filesystem (tens of milliseconds on a busy disk, every run); the upper
    // directory is scratch until the caller has turned it into a stored layer anyway.
    data.extend_from_slice(b",index=off,metacopy=off,redirect_dir=off,volatile");
    if data.len() > MOUNT_DATA_MAX {
        return Err(SandboxError::OverlayOptionsTooLong { len: data.len() });
    }
    CString::new(data).map_err(|_| SandboxError::Nul {
        what: "layer directory path",
    })
}

/// overlayfs splits its options on `,` and lowerdir on `:`; a backslash escapes both.
pub(crate) fn escape_overlay_path(path: &Path, out: &mut Vec<u8>) {
    for &byte in path.as_os_str().as_bytes() {
        if matches!(byte, b',' | b':' | b'\\') {
            out.push(b'\\');
        }
        out.push(byte);
    }
}

/// An absolute path outside the scratch directory, whose mountpoint the tmpfs hides.
fn outside_scratch<'a>(
    what: &'static str,
    path: &'a Path,
    scratch: &Path,
) -> Result<&'a Path, SandboxError> {
    let path = absolute(what, path)?;
    if path.starts_with(scratch) || scratch.starts_with(path) {
        return Err(SandboxError::InsideScratch {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(path)
}

fn absolute<'a>(what: &'static str, path: &'a Path) -> Result<&'a Path, SandboxError> {
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(SandboxError::RelativePath {
            what,
            path: path.to_path_buf(),
        })
    }
}

fn mount(
    source: Option<CString>,
    target: Target,
    fstype: Option<CString>,
    flags: MsFlags,
    data: Option<CString>,
) -> SetupStep {
    SetupStep::Mount {
        source,
        target,
        fstype,
        flags,
        data,
    }
}

/// A mount target that is kiln's own path.
fn host(path: CString) -> Target {
    Target::Path(path)
}

/// A C string from a literal or a formatted string free of NULs.
fn c(s: &str) -> CString {
    cstring(s.to_string())
}

fn cstring(s: String) -> CString {
    CString::new(s).unwrap_or_default()
}

fn cpath(path: &Path, what: &'static str) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::Nul { what })
}

fn strings_array(what: &'static str, items: &[String]) -> Result<CStringArray, SandboxError> {
    let strings = items
        .iter()
        .map(|s| CString::new(s.as_str()).map_err(|_| SandboxError::Nul { what }))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CStringArray::new(strings))
}
