//! A container's filesystem and security settings, with Docker's meaning: `read-only`,
//! `tmpfs`, `cap-add`, `cap-drop`, `ulimit`, `sysctl`, `privileged`, `init`, `device`, and its
//! `stop-timeout`. Names are checked against `kernel_names`, the
//! tables the runtime uses too.

use kdl::KdlValue;

use super::values;
use crate::kernel_names;
use crate::spec::diag::{Code, Diagnostics, did_you_mean};
use crate::spec::model::{Container, Device, Tmpfs, Ulimit};
use crate::spec::reader::{Node, Value};
use crate::spec::source::Spanned;

/// The keywords this file parses, with their usage lines.
pub(super) const USAGE: &[(&str, &str)] = &[
    ("read-only", "read-only [#true|#false]"),
    (
        "tmpfs",
        "tmpfs \"/PATH\" [size=\"64MiB\"] [mode=\"1777\"] [exec=#true]",
    ),
    ("cap-add", "cap-add \"NET_ADMIN\"…"),
    ("cap-drop", "cap-drop \"ALL\"|\"CHOWN\"…"),
    ("ulimit", "ulimit \"nofile\" SOFT [HARD]"),
    ("sysctl", "sysctl net.ipv4.ip_forward=\"1\"…"),
    ("stop-timeout", "stop-timeout \"30s\""),
    ("privileged", "privileged [#true|#false]"),
    ("init", "init [#true|#false]"),
    ("env-file", "env-file \"FILE\"…"),
    (
        "device",
        "device \"/dev/HOST\" [\"/dev/CONTAINER\"] [permissions=\"rwm\"]",
    ),
];

/// Parses `keyword` into `c`; `n` is the node, its usage from [`USAGE`].
pub(super) fn parse(keyword: &str, n: &mut Node<'_>, diags: &mut Diagnostics, c: &mut Container) {
    match keyword {
        "read-only" => {
            n.max_args(diags, 1);
            c.read_only = match n.arg(0) {
                None => true,
                Some(v) => v.boolean(diags, "`read-only`").is_some_and(|b| b.value),
            };
        }
        "tmpfs" => {
            n.max_args(diags, 1);
            let target = n.str_arg(diags, 0, "a target path");
            let size = n
                .prop_any("size")
                .and_then(|v| values::size(diags, v, "`size`"));
            let mode = n.prop_any("mode").and_then(|v| mode(diags, v));
            let exec = n.prop_bool(diags, "exec").is_some_and(|b| b.value);
            if let Some(target) = target
                && absolute_target(diags, &target, "tmpfs")
            {
                c.tmpfs.push(Tmpfs {
                    target,
                    size,
                    mode,
                    exec,
                });
            }
        }
        "cap-add" | "cap-drop" => {
            let names = n.str_args(diags, 0, 1, "a capability");
            let list = if keyword == "cap-add" {
                &mut c.cap_add
            } else {
                &mut c.cap_drop
            };
            list.extend(names.into_iter().filter_map(|name| capability(diags, name)));
        }
        "ulimit" => {
            n.max_args(diags, 3);
            let name = n
                .str_arg(diags, 0, "a resource name")
                .and_then(|name| ulimit_name(diags, name));
            let soft = n
                .any_arg(diags, 1, "a soft limit")
                .and_then(|v| limit(diags, v, "the soft limit"));
            let hard = match n.arg(2) {
                Some(v) => limit(diags, v, "the hard limit"),
                None => soft.clone(),
            };
            let (Some(name), Some(soft), Some(hard)) = (name, soft, hard) else {
                return;
            };
            if soft.value > hard.value {
                diags
                    .error(
                        Code::ValueOutOfRange,
                        soft.span,
                        "the soft limit is above the hard limit",
                    )
                    .label("the soft limit")
                    .related(hard.span, "the hard limit")
                    .help(
                        "the soft limit is at most the hard one: lower it, or raise the hard limit",
                    );
                return;
            }
            if let Some(first) = c.ulimits.iter().find(|u| u.name.value == name.value) {
                diags
                    .error(
                        Code::MisplacedNode,
                        name.span,
                        format!("`ulimit \"{}\"` is given twice", name.value),
                    )
                    .related(first.name.span, "first given here")
                    .help("keep one of them");
                return;
            }
            c.ulimits.push(Ulimit { name, soft, hard });
        }
        "sysctl" => {
            n.max_args(diags, 0);
            for (name, value) in super::image::string_props(n, diags, "sysctl") {
                if let Err(reason) = kernel_names::sysctl(&name.value) {
                    diags
                        .error(
                            Code::InvalidChoice,
                            name.span,
                            format!("sysctl `{}` cannot be set in a container", name.value),
                        )
                        .label(reason)
                        .help("only namespaced sysctls: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname");
                    continue;
                }
                if let Some((first, _)) = c.sysctls.iter().find(|(k, _)| k.value == name.value) {
                    diags
                        .error(
                            Code::MisplacedNode,
                            name.span,
                            format!("sysctl `{}` is given twice", name.value),
                        )
                        .related(first.span, "first given here")
                        .help("keep one of them");
                    continue;
                }
                c.sysctls.push((name, value));
            }
        }
        "env-file" => {
            c.env_files.extend(n.str_args(diags, 0, 1, "a file"));
        }
        "privileged" => {
            n.max_args(diags, 1);
            c.privileged = match n.arg(0) {
                None => true,
                Some(v) => v.boolean(diags, "`privileged`").is_some_and(|b| b.value),
            };
        }
        "init" => {
            n.max_args(diags, 1);
            c.init = match n.arg(0) {
                None => true,
                Some(v) => v.boolean(diags, "`init`").is_some_and(|b| b.value),
            };
        }
        "device" => {
            n.max_args(diags, 2);
            let host = n.str_arg(diags, 0, "a device path");
            let container = n.arg(1).and_then(|v| v.string(diags, "the container path"));
            let permissions = n.prop_str(diags, "permissions");
            let paths_ok = [&host, &container]
                .into_iter()
                .flatten()
                .all(|p| device_path(diags, p));
            let permissions_ok = permissions.as_ref().is_none_or(|p| {
                let ok = !p.value.is_empty()
                    && p.value.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
                    && p.value
                        .chars()
                        .collect::<std::collections::BTreeSet<_>>()
                        .len()
                        == p.value.len();
                if !ok {
                    diags
                        .error(
                            Code::InvalidChoice,
                            p.span,
                            format!("invalid device permissions `{}`", p.value),
                        )
                        .label("letters of r (read), w (write), m (mknod)")
                        .help("write them like `\"rw\"`, or leave them out for `\"rwm\"`");
                }
                ok
            });
            if let (Some(host), true, true) = (host, paths_ok, permissions_ok) {
                c.devices.push(Device {
                    host,
                    container,
                    permissions,
                });
            }
        }
        "stop-timeout" => {
            n.max_args(diags, 1);
            let Some(value) = n.any_arg(diags, 0, "a duration") else {
                return;
            };
            let before = diags.len();
            let seconds = match value.value {
                KdlValue::Integer(i) => u64::try_from(*i).ok().map(|s| Spanned::new(s, value.span)),
                _ => values::duration(diags, value, "the stop timeout").and_then(|d| {
                    (d.value.0 % 1_000_000_000 == 0)
                        .then(|| Spanned::new(d.value.0 / 1_000_000_000, d.span))
                }),
            };
            if seconds.is_none() && diags.len() == before {
                diags
                    .error(
                        Code::ValueOutOfRange,
                        value.span,
                        "the stop timeout is whole seconds",
                    )
                    .label("not a whole number of seconds")
                    .help("write it like `\"30s\"`, `\"2m\"` or `30`");
            }
            c.stop_timeout = seconds;
        }
        _ => unreachable!("checked against USAGE"),
    }
}

/// A mount target must be absolute, and not `/`.
fn absolute_target(diags: &mut Diagnostics, target: &Spanned<String>, what: &str) -> bool {
    if !target.value.starts_with('/') {
        diags
            .error(
                Code::WrongType,
                target.span,
                format!("the {what} target must be an absolute path"),
            )
            .label("this path is relative")
            .help(format!(
                "write `\"/{}\"`",
                target.value.trim_start_matches("./")
            ));
        return false;
    }
    if target.value.trim_end_matches('/').is_empty() {
        diags
            .error(
                Code::WrongType,
                target.span,
                format!("a {what} cannot be mounted on `/`"),
            )
            .label("the container's root")
            .help(
                "mount it on a directory, like `\"/run\"`; for a read-only root, use `read-only`",
            );
        return false;
    }
    true
}

/// A device path: absolute, no `..`.
fn device_path(diags: &mut Diagnostics, path: &Spanned<String>) -> bool {
    if path.value.starts_with('/') && !path.value.split('/').any(|p| p == "..") {
        return true;
    }
    diags
        .error(
            Code::WrongType,
            path.span,
            "a device path must be absolute, without `..`",
        )
        .label("not an absolute path")
        .help("write it like `\"/dev/fuse\"`");
    false
}

/// `mode="1777"`: octal permission bits.
fn mode(diags: &mut Diagnostics, value: Value<'_>) -> Option<Spanned<u32>> {
    let text = value.string(diags, "`mode`")?;
    match u32::from_str_radix(&text.value, 8) {
        Ok(mode) if mode <= 0o7777 => Some(Spanned::new(mode, text.span)),
        _ => {
            diags
                .error(
                    Code::ValueOutOfRange,
                    text.span,
                    format!("invalid mode `{}`", text.value),
                )
                .label("permission bits are octal, at most 7777")
                .help("write it like `\"1777\"` or `\"0755\"`");
            None
        }
    }
}

/// A capability as Docker spells it: with or without `CAP_`, any case, or `ALL`.
fn capability(diags: &mut Diagnostics, name: Spanned<String>) -> Option<Spanned<String>> {
    if let Some(known) = kernel_names::capability(&name.value) {
        return Some(Spanned::new(known.to_string(), name.span));
    }
    let upper = name.value.to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    diags
        .error(
            Code::InvalidChoice,
            name.span,
            format!("unknown capability `{}`", name.value),
        )
        .label("not a Linux capability")
        .help(
            did_you_mean(bare, kernel_names::CAPABILITIES.iter().copied())
                .unwrap_or_else(|| "write one like `NET_ADMIN` or `CAP_SYS_TIME`, or `ALL`".into()),
        );
    None
}

fn ulimit_name(diags: &mut Diagnostics, name: Spanned<String>) -> Option<Spanned<String>> {
    if let Some(known) = kernel_names::ulimit(&name.value) {
        return Some(Spanned::new(known.to_string(), name.span));
    }
    let names = kernel_names::ULIMITS.iter().map(|(n, _)| *n);
    diags
        .error(
            Code::InvalidChoice,
            name.span,
            format!("unknown ulimit `{}`", name.value),
        )
        .label(format!(
            "expected one of {}",
            names.clone().collect::<Vec<_>>().join(", ")
        ))
        .maybe_help(did_you_mean(&name.value, names));
    None
}

/// A limit: a non-negative integer, or `-1` / `"unlimited"` for none.
fn limit(diags: &mut Diagnostics, value: Value<'_>, what: &str) -> Option<Spanned<u64>> {
    let parsed = match value.value {
        KdlValue::Integer(-1) => Some(kernel_names::UNLIMITED),
        KdlValue::Integer(i) => u64::try_from(*i).ok(),
        KdlValue::String(s) if s == "unlimited" => Some(kernel_names::UNLIMITED),
        _ => None,
    };
    if parsed.is_none() {
        diags
            .error(
                Code::ValueOutOfRange,
                value.span,
                format!("{what} is not a limit"),
            )
            .label("expected a number, -1 or \"unlimited\"")
            .help("write it like `1024`, or `\"unlimited\"` for no limit");
    }
    parsed.map(|v| Spanned::new(v, value.span))
}
