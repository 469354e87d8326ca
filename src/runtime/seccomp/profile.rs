//! Docker's seccomp profile format (moby `profiles/seccomp`), read, checked and resolved.
//!
//! A profile is an OCI `linux.seccomp` plus conditions: `archMap`, and per rule `includes`
//! / `excludes` by capability, architecture and minimum kernel. [`Profile::parse`] reads
//! the JSON strictly — an unknown key, action, operator, capability, architecture or
//! system call name is an error naming its JSON path (`syscalls[3].args[0].op`), and so is
//! what kiln cannot apply (notify listeners, filter flags) — rather than dropping it.
//! [`Profile::resolve`] then does what moby's `setupSeccomp` does for one container: keeps
//! the rules whose conditions hold for its capabilities (its bounding set, as Docker
//! checks), this architecture and this kernel, and keeps the names this architecture has.
//! The result is the OCI `linux.seccomp` that goes into `config.json`.
//!
//! Data only: reading the file is [`Profile::load`]'s one I/O, the kernel version is read
//! once and only when a rule asks for it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use oci_spec::runtime::{
    LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};
use serde::Deserialize;

use super::arch::Native;
use super::table;
use crate::runtime::linux_names::CAPABILITY_NAMES;

/// A profile that cannot be used, with where in the JSON the problem is.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum SeccompError {
    #[error("cannot read the seccomp profile {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("seccomp profile {origin}: at `{at}`: {message}")]
    #[diagnostic(help("{help}"))]
    Invalid {
        /// The file, or `default`.
        origin: String,
        /// The JSON path of the problem (`syscalls[2].names[0]`), `.` for the whole.
        at: String,
        message: String,
        help: String,
    },
    #[error("the seccomp filter is {len} instructions, more than the kernel's 4096")]
    #[diagnostic(help("fewer rules, or fewer argument conditions, make it fit"))]
    TooLarge { len: usize },
    #[error("cannot compile the seccomp filter")]
    Compile(#[source] seccompiler::BackendError),
}

impl SeccompError {
    /// The problem without the file name (for a diagnostic that points at the file).
    pub fn detail(&self) -> String {
        match self {
            SeccompError::Invalid { at, message, .. } => format!("at `{at}`: {message}"),
            other => other.to_string(),
        }
    }
}

/// A rule's action, as named in the JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Allow,
    Errno,
    KillThread,
    KillProcess,
    Trap,
    Trace,
    Log,
}

impl Action {
    fn parse(name: &str) -> Result<Action, String> {
        Ok(match name {
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_ERRNO" => Action::Errno,
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_TRACE" => Action::Trace,
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_NOTIFY" => {
                return Err(
                    "SCMP_ACT_NOTIFY needs a seccomp agent, which kiln does not run".into(),
                );
            }
            other => return Err(format!("unknown action `{other}`")),
        })
    }

    pub(crate) fn oci(self) -> LinuxSeccompAction {
        match self {
            Action::Allow => LinuxSeccompAction::ScmpActAllow,
            Action::Errno => LinuxSeccompAction::ScmpActErrno,
            Action::KillThread => LinuxSeccompAction::ScmpActKillThread,
            Action::KillProcess => LinuxSeccompAction::ScmpActKillProcess,
            Action::Trap => LinuxSeccompAction::ScmpActTrap,
            Action::Trace => LinuxSeccompAction::ScmpActTrace,
            Action::Log => LinuxSeccompAction::ScmpActLog,
        }
    }
}

/// When a rule applies (`includes`: all must hold; `excludes`: any excludes it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Condition {
    /// `CAP_…` names.
    pub(crate) caps: Vec<String>,
    /// Docker's architecture names (`amd64`, `arm64`, `x32`, …).
    pub(crate) arches: Vec<String>,
    /// `(major, minor)`.
    pub(crate) min_kernel: Option<(u64, u64)>,
}

impl Condition {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// One rule of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) names: Vec<String>,
    pub(crate) action: Action,
    pub(crate) errno: Option<u32>,
    pub(crate) args: Vec<LinuxSeccompArg>,
    pub(crate) includes: Condition,
    pub(crate) excludes: Condition,
}

/// A checked seccomp profile, before it meets a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `default`, or the file it came from: what `--trace` shows.
    pub name: String,
    pub(crate) default_action: Action,
    pub(crate) default_errno: Option<u32>,
    pub(crate) rules: Vec<Rule>,
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

// The JSON as Docker writes it. Every struct refuses keys it does not know.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonProfile {
    #[serde(default)]
    default_action: String,
    default_errno_ret: Option<u32>,
    /// containers-common (Podman) also names the errno: `"ENOSYS"`.
    default_errno: Option<String>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<JsonArch>>,
    #[serde(default)]
    syscalls: Option<Vec<JsonSyscall>>,
    #[serde(default)]
    flags: Option<Vec<String>>,
    listener_path: Option<String>,
    listener_metadata: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonArch {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonSyscall {
    #[serde(default)]
    names: Option<Vec<String>>,
    name: Option<String>,
    action: String,
    errno_ret: Option<u32>,
    /// containers-common's name for `errnoRet`.
    errno: Option<String>,
    #[serde(default)]
    args: Option<Vec<JsonArg>>,
    #[allow(dead_code)]
    comment: Option<String>,
    includes: Option<JsonFilter>,
    excludes: Option<JsonFilter>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonArg {
    index: usize,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct JsonFilter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    min_kernel: Option<String>,
}

/// libseccomp's architecture names a profile may list (`architectures`, `archMap`).
const SCMP_ARCHES: &[&str] = &[
    "SCMP_ARCH_NATIVE",
    "SCMP_ARCH_X86",
    "SCMP_ARCH_X86_64",
    "SCMP_ARCH_X32",
    "SCMP_ARCH_ARM",
    "SCMP_ARCH_AARCH64",
    "SCMP_ARCH_LOONGARCH64",
    "SCMP_ARCH_M68K",
    "SCMP_ARCH_MIPS",
    "SCMP_ARCH_MIPS64",
    "SCMP_ARCH_MIPS64N32",
    "SCMP_ARCH_MIPSEL",
    "SCMP_ARCH_MIPSEL64",
    "SCMP_ARCH_MIPSEL64N32",
    "SCMP_ARCH_PPC",
    "SCMP_ARCH_PPC64",
    "SCMP_ARCH_PPC64LE",
    "SCMP_ARCH_RISCV64",
    "SCMP_ARCH_S390",
    "SCMP_ARCH_S390X",
    "SCMP_ARCH_PARISC",
    "SCMP_ARCH_PARISC64",
    "SCMP_ARCH_SHEB",
    "SCMP_ARCH_SH",
];

/// Docker's names for architectures in `includes`/`excludes` (libseccomp's, from GOARCH).
const DOCKER_ARCHES: &[&str] = &[
    "x86",
    "amd64",
    "x32",
    "arm",
    "arm64",
    "loong64",
    "loongarch64",
    "mips",
    "mipsle",
    "mipsel",
    "mips64",
    "mips64n32",
    "mipsel64",
    "mips3l64n32",
    "mipsel64n32",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv64",
    "s390",
    "s390x",
];

/// Reports a problem at a JSON path.
struct At<'a> {
    origin: &'a str,
}

impl At<'_> {
    fn error(&self, at: impl Into<String>, message: impl Into<String>, help: &str) -> SeccompError {
        SeccompError::Invalid {
            origin: self.origin.to_string(),
            at: at.into(),
            message: message.into(),
            help: help.to_string(),
        }
    }
}

const FORMAT_HELP: &str = "kiln reads Docker's seccomp profile format (moby's profiles/seccomp/default.json is an example)";

impl Profile {
    /// Reads and checks the profile at `path`.
    pub fn load(path: &Path) -> Result<Profile, SeccompError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeccompError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Profile::parse(&path.display().to_string(), &text)
    }

    /// Checks `text`, a profile in Docker's JSON format; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Profile, SeccompError> {
        let at = At { origin };
        let deserializer = &mut serde_json::Deserializer::from_str(text);
        let json: JsonProfile = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            // serde_path_to_error says `?` where the text is no JSON at all.
            let path = match e.path().to_string() {
                unknown if unknown == "?" => ".".to_string(),
                path => path,
            };
            let message = e.inner().to_string();
            at.error(path, message, FORMAT_HELP)
        })?;
        if json.default_action.is_empty() {
            return Err(at.error(
                "defaultAction",
                "the profile has no default action",
                "say what happens to the calls no rule names: \"defaultAction\": \"SCMP_ACT_ERRNO\" (an allow-list) or \"SCMP_ACT_ALLOW\" (a deny-list)",
            ));
        }
        let default_action = Action::parse(&json.default_action)
            .map_err(|m| at.error("defaultAction", m, ACTIONS_HELP))?;
        let default_errno = errno(
            &at,
            "defaultErrno",
            json.default_errno_ret,
            json.default_errno.as_deref(),
        )?;
        if json.listener_path.is_some() || json.listener_metadata.is_some() {
            return Err(at.error(
                "listenerPath",
                "seccomp notify listeners are not supported",
                "kiln runs no seccomp agent: remove listenerPath and listenerMetadata",
            ));
        }
        if let Some(flag) = json.flags.iter().flatten().next() {
            return Err(at.error(
                "flags[0]",
                format!("filter flag `{flag}` is not supported"),
                "kiln loads the filter without flags: remove `flags`",
            ));
        }
        if json.architectures.as_ref().is_some_and(|a| !a.is_empty())
            && json.arch_map.as_ref().is_some_and(|a| !a.is_empty())
        {
            return Err(at.error(
                "archMap",
                "both `architectures` and `archMap` are given",
                "use one of them, as Docker requires",
            ));
        }
        for (i, arch) in json.architectures.iter().flatten().enumerate() {
            check_scmp_arch(&at, format!("architectures[{i}]"), arch)?;
        }
        for (i, entry) in json.arch_map.iter().flatten().enumerate() {
            check_scmp_arch(
                &at,
                format!("archMap[{i}].architecture"),
                &entry.architecture,
            )?;
            for (j, sub) in entry.sub_architectures.iter().flatten().enumerate() {
                check_scmp_arch(&at, format!("archMap[{i}].subArchitectures[{j}]"), sub)?;
            }
        }
        let mut rules = Vec::new();
        for (i, call) in json.syscalls.into_iter().flatten().enumerate() {
            let here = format!("syscalls[{i}]");
            let names = match (call.name, call.names) {
                (Some(_), Some(names)) if !names.is_empty() => {
                    return Err(at.error(
                        format!("{here}.name"),
                        "both `name` and `names` are given",
                        "use `names`, as Docker requires",
                    ));
                }
                (Some(name), _) => vec![name],
                (None, names) => names.unwrap_or_default(),
            };
            if names.is_empty() {
                return Err(at.error(
                    format!("{here}.names"),
                    "the rule names no system call",
                    "list the system calls it is for, or remove the rule",
                ));
            }
            for (j, name) in names.iter().enumerate() {
                if table::ALL_NAMES.binary_search(&name.as_str()).is_err() {
                    let help = match closest(name) {
                        Some(near) => format!("did you mean `{near}`?"),
                        None => "no Linux architecture has a system call of that name".into(),
                    };
                    return Err(at.error(
                        format!("{here}.names[{j}]"),
                        format!("unknown system call `{name}`"),
                        &help,
                    ));
                }
            }
            let action = Action::parse(&call.action)
                .map_err(|m| at.error(format!("{here}.action"), m, ACTIONS_HELP))?;
            let rule_errno = errno(
                &at,
                &format!("{here}.errno"),
                call.errno_ret,
                call.errno.as_deref(),
            )?;
            let mut args = Vec::new();
            for (j, arg) in call.args.into_iter().flatten().enumerate() {
                if arg.index > 5 {
                    return Err(at.error(
                        format!("{here}.args[{j}].index"),
                        format!("argument index {} is past the sixth argument", arg.index),
                        "system calls have six arguments, indexed 0 to 5",
                    ));
                }
                let op = operator(&arg.op).ok_or_else(|| {
                    at.error(
                        format!("{here}.args[{j}].op"),
                        format!("unknown operator `{}`", arg.op),
                        "use SCMP_CMP_EQ, SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_LE, SCMP_CMP_GT, SCMP_CMP_GE or SCMP_CMP_MASKED_EQ",
                    )
                })?;
                let two = (op == LinuxSeccompOperator::ScmpCmpMaskedEq).then_some(arg.value_two);
                args.push(seccomp_arg(arg.index, op, arg.value, two));
            }
            let includes = condition(&at, &format!("{here}.includes"), call.includes)?;
            let excludes = condition(&at, &format!("{here}.excludes"), call.excludes)?;
            rules.push(Rule {
                names,
                action,
                errno: rule_errno,
                args,
                includes,
                excludes,
            });
        }
        Ok(Profile {
            name: origin.to_string(),
            default_action,
            default_errno,
            rules,
        })
    }

    /// The OCI `linux.seccomp` for a container whose bounding set is `caps` (`CAP_…`
    /// names), on this machine.
    pub fn resolve(&self, caps: &[String]) -> LinuxSeccomp {
        self.resolve_for(Native::get(), caps, &|| kernel_version())
    }

    /// [`Profile::resolve`] for `arch` and the kernel `kernel` returns.
    pub(crate) fn resolve_for(
        &self,
        arch: &Native,
        caps: &[String],
        kernel: &dyn Fn() -> (u64, u64),
    ) -> LinuxSeccomp {
        let holds_any = |c: &Condition| {
            c.arches.iter().any(|a| a == arch.docker)
                || c.caps.iter().any(|cap| caps.contains(cap))
                || c.min_kernel.is_some_and(|min| kernel() >= min)
        };
        let holds_all = |c: &Condition| {
            (c.arches.is_empty() || c.arches.iter().any(|a| a == arch.docker))
                && c.caps.iter().all(|cap| caps.contains(cap))
                && c.min_kernel.is_none_or(|min| kernel() >= min)
        };
        let mut syscalls = Vec::new();
        for rule in &self.rules {
            if (!rule.excludes.is_empty() && holds_any(&rule.excludes))
                || (!rule.includes.is_empty() && !holds_all(&rule.includes))
            {
                continue;
            }
            let names: Vec<String> = rule
                .names
                .iter()
                .filter(|n| arch.number(n).is_some())
                .cloned()
                .collect();
            if names.is_empty() {
                continue;
            }
            let mut syscall = LinuxSyscall::default();
            syscall.set_names(names);
            syscall.set_action(rule.action.oci());
            syscall.set_errno_ret(rule.errno);
            syscall.set_args((!rule.args.is_empty()).then(|| rule.args.clone()));
            syscalls.push(syscall);
        }
        let mut seccomp = LinuxSeccomp::default();
        seccomp.set_default_action(self.default_action.oci());
        seccomp.set_default_errno_ret(self.default_errno);
        seccomp.set_architectures(Some(vec![arch.scmp]));
        seccomp.set_flags(None);
        seccomp.set_syscalls(Some(syscalls));
        seccomp
    }
}

const ACTIONS_HELP: &str = "use SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_KILL_PROCESS, SCMP_ACT_KILL_THREAD, SCMP_ACT_TRAP, SCMP_ACT_TRACE or SCMP_ACT_LOG";

/// The errno of a rule: `errnoRet` (a number), or containers-common's `errno` (a name);
/// both must agree.
fn errno(
    at: &At<'_>,
    path: &str,
    number: Option<u32>,
    name: Option<&str>,
) -> Result<Option<u32>, SeccompError> {
    let Some(name) = name else {
        return Ok(number);
    };
    let named = (1..4096)
        .find(|n| format!("{:?}", nix::errno::Errno::from_raw(*n)) == name)
        .map(|n| n as u32)
        .ok_or_else(|| {
            at.error(
                path,
                format!("unknown errno `{name}`"),
                "name it as errno(3) does (EPERM, ENOSYS, …), or give the number in errnoRet",
            )
        })?;
    match number {
        Some(number) if number != named => Err(at.error(
            path,
            format!("`{name}` is {named}, but errnoRet says {number}"),
            "give one of them, or make them agree",
        )),
        _ => Ok(Some(named)),
    }
}

/// An OCI argument condition.
pub(crate) fn seccomp_arg(
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
    value_two: Option<u64>,
) -> LinuxSeccompArg {
    let builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .op(op)
        .value(value);
    let builder = match value_two {
        Some(two) => builder.value_two(two),
        None => builder,
    };
    builder.build().unwrap_or_default()
}

fn check_scmp_arch(at: &At<'_>, path: String, arch: &str) -> Result<(), SeccompError> {
    if SCMP_ARCHES.contains(&arch) {
        Ok(())
    } else {
        Err(at.error(
            path,
            format!("unknown architecture `{arch}`"),
            "libseccomp's names: SCMP_ARCH_X86_64, SCMP_ARCH_AARCH64, SCMP_ARCH_X86, …",
        ))
    }
}

fn operator(name: &str) -> Option<LinuxSeccompOperator> {
    Some(match name {
        "SCMP_CMP_NE" => LinuxSeccompOperator::ScmpCmpNe,
        "SCMP_CMP_LT" => LinuxSeccompOperator::ScmpCmpLt,
        "SCMP_CMP_LE" => LinuxSeccompOperator::ScmpCmpLe,
        "SCMP_CMP_EQ" => LinuxSeccompOperator::ScmpCmpEq,
        "SCMP_CMP_GE" => LinuxSeccompOperator::ScmpCmpGe,
        "SCMP_CMP_GT" => LinuxSeccompOperator::ScmpCmpGt,
        "SCMP_CMP_MASKED_EQ" => LinuxSeccompOperator::ScmpCmpMaskedEq,
        _ => return None,
    })
}

fn condition(
    at: &At<'_>,
    here: &str,
    filter: Option<JsonFilter>,
) -> Result<Condition, SeccompError> {
    let Some(filter) = filter else {
        return Ok(Condition::default());
    };
    let caps = filter.caps.unwrap_or_default();
    for (i, cap) in caps.iter().enumerate() {
        let known = cap
            .strip_prefix("CAP_")
            .is_some_and(|name| CAPABILITY_NAMES.contains(&name));
        if !known {
            return Err(at.error(
                format!("{here}.caps[{i}]"),
                format!("unknown capability `{cap}`"),
                "capabilities are named as in capabilities(7): CAP_SYS_ADMIN, CAP_SYS_PTRACE, …",
            ));
        }
    }
    let arches = filter.arches.unwrap_or_default();
    for (i, arch) in arches.iter().enumerate() {
        if !DOCKER_ARCHES.contains(&arch.as_str()) {
            return Err(at.error(
                format!("{here}.arches[{i}]"),
                format!("unknown architecture `{arch}`"),
                "Docker's names: amd64, arm64, x86, x32, arm, s390x, ppc64le, riscv64, …",
            ));
        }
    }
    let min_kernel = match filter.min_kernel.as_deref() {
        None | Some("") => None,
        Some(text) => Some(parse_kernel(text).ok_or_else(|| {
            at.error(
                format!("{here}.minKernel"),
                format!("invalid kernel version `{text}`"),
                "write it as \"<kernel>.<major>\", e.g. \"4.8\"",
            )
        })?),
    };
    Ok(Condition {
        caps,
        arches,
        min_kernel,
    })
}

/// The known system call name nearest to a misspelt one, if any is near.
fn closest(name: &str) -> Option<&'static str> {
    table::ALL_NAMES
        .iter()
        .map(|known| (strsim::damerau_levenshtein(name, known), *known))
        .filter(|(distance, known)| *distance <= 2.max(known.len() / 4))
        .min()
        .map(|(_, known)| known)
}

/// `"4.8"` → `(4, 8)`; Docker's rule: exactly two numbers, not both zero.
fn parse_kernel(text: &str) -> Option<(u64, u64)> {
    let (major, minor) = text.split_once('.')?;
    let version = (major.parse().ok()?, minor.parse().ok()?);
    (version != (0, 0)).then_some(version)
}

/// This kernel's `(major, minor)`, from its release (`6.18.3-amd64` → `(6, 18)`).
fn kernel_version() -> (u64, u64) {
    static VERSION: OnceLock<(u64, u64)> = OnceLock::new();
    *VERSION.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut numbers = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
    })
}
