//! Egress: the way out of a network declared with `egress=#true`, through a userspace
//! path, with nothing added to the machine's own network namespace.
//!
//! Each egress network gets an *egress namespace* of its own, pinned at
//! `$ROOT/net/egress/KEY.netns`:
//!
//! ```text
//!  container ── kv… ─┐                      egress namespace              machine's namespace
//!  container ── kv… ─┤ bridge (kiln's ns)   ┌───────────────────────┐     ┌──────────────┐
//!                    └── kg… ═══ veth ═══ eth0 169.254.1.1  ── nat ── tap0 ═ pasta (sockets) ═ world
//!                                          └───────────────────────┘     └──────────────┘
//! ```
//!
//! - a veth joins the network's bridge (in kiln's namespace) to `eth0` of the egress
//!   namespace, which answers at [`GATEWAY`] (`169.254.1.1`, the way Calico does it): the
//!   containers' default route is `via 169.254.1.1 dev ethN onlink`. It takes no address of
//!   the subnet, so IPAM is unchanged, and kiln's own namespace keeps IPv4 forwarding off:
//!   two networks still cannot reach each other through it;
//! - the egress namespace forwards between `eth0` and `tap0` and masquerades what leaves by
//!   `tap0` (an nf_tables `nat` chain of its own, written over netlink by [`super::nft`]);
//! - `pasta` (package `passt`) runs in the machine's namespace and owns `tap0`: it turns the
//!   frames into ordinary sockets of its own (`--config-net` copies the machine's address
//!   and default route onto `tap0`). No inbound port is forwarded (`-t none -u none`), and
//!   the machine's loopback is not mapped (`--no-map-gw`).
//!
//! Names: the DNS daemon (`daemon`) forwards what kiln does not know for egress networks; it
//! runs in the machine's namespace and asks the machine's resolvers with its own sockets.
//!
//! This module owns the egress namespace, the veth and the pasta process; it does not
//! decide which networks have egress (`network` does) nor route containers (`attach`).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ipnetwork::IpNetwork;

use super::nft::{Expr, Family, Nft, Op, Rule};
use super::records::NetworkRecord;
use super::{HostNamespace, NetError, NetNs, Netlink, run_in};

/// Where an egress network's containers send what leaves the network: the egress
/// namespace's address, the same on every egress network (each is its own link).
pub const GATEWAY: IpAddr = IpAddr::V4(Ipv4Addr::new(169, 254, 1, 1));

/// The egress namespace's side of the veth, and pasta's tap device there.
const INSIDE: &str = "eth0";
const TAP: &str = "tap0";
/// The masquerading table of the egress namespace (family `ip`).
const TABLE: &str = "kiln-egress";
/// How long pasta has to bring its tap device up.
const START: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum EgressError {
    #[error("network {network} wants egress, but `pasta` is not installed")]
    #[diagnostic(
        code(kiln::net::egress_no_pasta),
        help(
            "install the `passt` package (`apt-get install passt`), or declare the network without egress"
        )
    )]
    NoPasta { network: String },
    #[error("the egress of network {network} did not start: {reason}")]
    #[diagnostic(
        code(kiln::net::egress_start),
        help(
            "pasta's log is {}; the machine needs a default route (pasta takes its address and gateway)",
            log.display()
        )
    )]
    Start {
        network: String,
        reason: String,
        log: PathBuf,
    },
    #[error("cannot set up the egress of network {network}")]
    Kernel {
        network: String,
        #[source]
        cause: NetError,
    },
    #[error("cannot access {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The files of a network's egress: `$ROOT/net/egress/KEY.{netns,pid,log}`.
struct Files {
    ns: PathBuf,
    pid: PathBuf,
    log: PathBuf,
}

fn files(state_root: &Path, network: &str) -> Files {
    let dir = state_root.join("net").join("egress");
    let key = crate::scope::file_key(network);
    Files {
        ns: dir.join(format!("{key}.netns")),
        pid: dir.join(format!("{key}.pid")),
        log: dir.join(format!("{key}.log")),
    }
}

/// The egress namespace of `network`, for tests and `kiln network exec`-like inspection.
pub fn namespace_path(state_root: &Path, network: &str) -> PathBuf {
    files(state_root, network).ns
}

/// The pid of the pasta process carrying `network`'s egress, if it runs.
pub fn running(state_root: &Path, network: &str) -> Option<i32> {
    let pid: i32 = std::fs::read_to_string(files(state_root, network).pid)
        .ok()?
        .trim()
        .parse()
        .ok()?;
    is_pasta(pid).then_some(pid)
}

/// Whether `pid` is a live pasta process (a recycled pid is someone else's).
fn is_pasta(pid: i32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
        cmdline
            .split(|&b| b == 0)
            .next()
            .is_some_and(|argv0| argv0.ends_with(b"pasta"))
    }) && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')))
}

/// Makes sure `record`'s egress runs: the egress namespace, its veth on the bridge, NAT
/// and pasta. Idempotent: a running egress is left alone; a broken one is made again.
pub fn up(state_root: &Path, record: &NetworkRecord) -> Result<(), EgressError> {
    let files = files(state_root, &record.name);
    if running(state_root, &record.name).is_some() && NetNs::open(&files.ns).is_ok() {
        return Ok(());
    }
    let pasta = find_pasta().ok_or_else(|| EgressError::NoPasta {
        network: record.name.clone(),
    })?;
    down(state_root, record)?;
    let dir = files.ns.parent().expect("in a directory");
    std::fs::create_dir_all(dir).map_err(|source| EgressError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let made =
        wire(state_root, record, &files).and_then(|ns| start_pasta(&pasta, record, &files, &ns));
    if made.is_err() {
        let _ = down(state_root, record);
    }
    made
}

/// Stops `record`'s egress and removes what [`up`] made; nothing there is fine.
pub fn down(state_root: &Path, record: &NetworkRecord) -> Result<(), EgressError> {
    let files = files(state_root, &record.name);
    if let Some(pid) = running(state_root, &record.name) {
        stop(pid);
    }
    let _ = std::fs::remove_file(&files.pid);
    let kernel = |cause| EgressError::Kernel {
        network: record.name.clone(),
        cause,
    };
    if let Ok(host) = NetNs::open(&HostNamespace::path(state_root)) {
        let veth = super::names::egress_veth_name(&record.name).map_err(kernel)?;
        match Netlink::open_in(&host).and_then(|n| n.delete_link(&veth)) {
            Ok(()) | Err(NetError::NoSuchInterface { .. }) => {}
            Err(err) => return Err(kernel(err)),
        }
    }
    NetNs::remove_pinned(&files.ns).map_err(kernel)?;
    let _ = std::fs::remove_file(&files.log);
    Ok(())
}

/// SIGTERM, then SIGKILL if it is still there after a second.
fn stop(pid: i32) {
    let pid = nix::unistd::Pid::from_raw(pid);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline {
        if !is_pasta(pid.as_raw()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

/// Whether `ns` has an IPv4 default route yet (pasta adds it last), from
/// `/proc/thread-self/net/route` as a thread inside sees it.
fn has_default_route(ns: &NetNs) -> bool {
    run_in(ns, || {
        std::fs::read_to_string("/proc/thread-self/net/route")
    })
    .ok()
    .and_then(Result::ok)
    .is_some_and(|table| {
        table
            .lines()
            .skip(1)
            .any(|line| line.split_whitespace().nth(1) == Some("00000000"))
    })
}

fn find_pasta() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("pasta"))
        .find(|candidate| candidate.is_file())
}

/// The egress namespace and its plumbing: pinned, `lo` up, forwarding on, `eth0` with
/// [`GATEWAY`] joined to the bridge, a route back to the subnet, masquerading.
fn wire(state_root: &Path, record: &NetworkRecord, files: &Files) -> Result<NetNs, EgressError> {
    let kernel = |cause| EgressError::Kernel {
        network: record.name.clone(),
        cause,
    };
    let ns = NetNs::create_pinned(&files.ns).map_err(kernel)?;
    let host = HostNamespace::ensure(state_root).map_err(kernel)?;
    let veth = super::names::egress_veth_name(&record.name).map_err(kernel)?;
    let outside = Netlink::open_in(&host).map_err(kernel)?;
    outside
        .create_veth_into(&veth, INSIDE, &ns)
        .and_then(|()| outside.set_master(&veth, &record.bridge))
        .and_then(|()| outside.set_up(&veth))
        .map_err(kernel)?;
    run_in(&ns, || {
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|cause| NetError::Io {
            path: "/proc/sys/net/ipv4/ip_forward".into(),
            cause,
        })
    })
    .map_err(kernel)?
    .map_err(kernel)?;
    let inside = Netlink::open_in(&ns).map_err(kernel)?;
    let gateway = IpNetwork::new(GATEWAY, 32).expect("a /32 is valid");
    inside
        .set_up("lo")
        .and_then(|()| inside.add_address(INSIDE, gateway))
        .and_then(|()| inside.set_up(INSIDE))
        .and_then(|()| inside.add_route(record.subnet, None, Some(INSIDE)))
        .map_err(kernel)?;
    let masquerade = Rule {
        comment: format!("kiln egress {}", record.name),
        exprs: vec![Expr::Masquerade],
    };
    Nft::open_in(&ns)
        .and_then(|mut nft| {
            nft.apply(&[
                Op::AddTable {
                    family: Family::Ipv4,
                    table: TABLE,
                },
                Op::AddPostroutingNatChain {
                    family: Family::Ipv4,
                    table: TABLE,
                    chain: "out",
                    priority: 100,
                },
                Op::AddRule {
                    family: Family::Ipv4,
                    table: TABLE,
                    chain: "out",
                    rule: &masquerade,
                },
            ])
            .map_err(|cause| NetError::Netlink {
                op: "masquerade in",
                name: "the egress namespace".to_string(),
                cause,
            })
        })
        .map_err(kernel)?;
    Ok(ns)
}

/// Starts pasta on the egress namespace, detached (its own session), and waits until its
/// tap device is up.
fn start_pasta(
    pasta: &Path,
    record: &NetworkRecord,
    files: &Files,
    ns: &NetNs,
) -> Result<(), EgressError> {
    let io_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EgressError::Io { path, source }
    };
    let log = std::fs::File::create(&files.log).map_err(io_error(&files.log))?;
    let mut command = std::process::Command::new(pasta);
    command
        // Foreground: kiln keeps its pid; quiet: errors only, to the log.
        .args(["--foreground", "--quiet", "--stderr"])
        // The state root is private (0700): pasta must stay root to open the pin there (it
        // still sandboxes itself: its own namespaces, seccomp).
        .args(["--runas", "0:0"])
        .arg("--netns")
        .arg(&files.ns)
        .args([
            "--netns-only",
            "--config-net",
            "--ipv4-only",
            "--ns-ifname",
            TAP,
        ])
        // Nothing comes in from the machine, and the machine's loopback is not the gateway.
        .args([
            "-t",
            "none",
            "-u",
            "none",
            "-T",
            "none",
            "-U",
            "none",
            "--no-map-gw",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe and allocates nothing.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            nix::unistd::setsid().map_err(io::Error::from)?;
            Ok(())
        });
    }
    let start_error = |reason: String| EgressError::Start {
        network: record.name.clone(),
        reason,
        log: files.log.clone(),
    };
    let mut child = command
        .spawn()
        .map_err(|e| start_error(format!("cannot run {}: {e}", pasta.display())))?;
    std::fs::write(&files.pid, child.id().to_string()).map_err(io_error(&files.pid))?;
    let inside = Netlink::open_in(ns).map_err(|cause| EgressError::Kernel {
        network: record.name.clone(),
        cause,
    })?;
    let deadline = Instant::now() + START;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let said = std::fs::read_to_string(&files.log).unwrap_or_default();
            let said: Vec<&str> = said
                .lines()
                .filter(|l| !l.starts_with("Failed to send"))
                .collect();
            return Err(start_error(format!(
                "pasta exited ({status}): {}",
                said.join(" / ")
            )));
        }
        if inside.link(TAP).ok().flatten().is_some_and(|tap| tap.up) && has_default_route(ns) {
            // pasta outlives this command: it is reaped by init once kiln exits.
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(start_error(format!(
                "its tap device was not up after {}s",
                START.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
