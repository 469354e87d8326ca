//! The machine as the tests see it: live processes, mounts, kiln's cgroups, the machine's
//! own network interfaces. Read-only, but for [`signal`], which the tests use on processes
//! they started (kiln's supervisors and containers, found by pid in kiln's records).

use std::path::{Path, PathBuf};

/// Whether `pid` runs (a zombie does not count).
pub fn alive(pid: i64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
}

/// The command line of `pid`, arguments joined by spaces ("" once it is gone).
pub fn cmdline(pid: i64) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .unwrap_or_default()
}

/// Sends `signal` to `pid` (a process the test started, through kiln).
pub fn signal(pid: i64, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal)
        .unwrap_or_else(|e| panic!("signalling {pid}: {e}"));
}

/// Processes whose command line names `path` (supervisors get `--root ROOT`).
pub fn processes_naming(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i64>() else {
            continue;
        };
        let cmdline = cmdline(pid);
        if cmdline.contains(&needle) {
            found.push(format!("{pid}: {cmdline}"));
        }
    }
    found
}

/// The machine's mounts at or below `path`, as mountinfo lines.
pub fn mounts_under(path: &Path) -> Vec<String> {
    let needle = path.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.contains(&needle))
        .map(str::to_string)
        .collect()
}

/// The cgroup directories kiln made for the state root `root`, in every hierarchy (v1
/// controllers, the unified v2 one, or v2 alone): `…/kiln/<12 hex of blake3(root)>`.
pub fn cgroups_of(root: &Path) -> Vec<PathBuf> {
    let Ok(canonical) = std::fs::canonicalize(root) else {
        return Vec::new();
    };
    let hash = blake3::hash(canonical.as_os_str().as_encoded_bytes()).to_hex()[..12].to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join("kiln").join(&hash);
        if dir.exists() {
            found.push(dir);
        }
    }
    // cgroup v2 alone: the hierarchy is /sys/fs/cgroup itself.
    let unified = Path::new("/sys/fs/cgroup/kiln").join(&hash);
    if unified.exists() {
        found.push(unified);
    }
    found
}

/// The names of the machine's own network interfaces, sorted.
pub fn machine_links() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Interfaces in the machine's namespace named as kiln names its bridges (`kb-…`, `kb.…`),
/// veth ends (`kv…-N`, `kp…-N`) and the ports of its impairment engine (`kel…-a|b`,
/// `kec…-N`, `keb…-N`) and egress veths (`kg…`): kiln makes those only in its own host namespace, so any here is a
/// leak, whichever test made it.
pub fn kiln_links_on_the_machine() -> Vec<String> {
    let veth = |name: &str, prefix: &str, digits: usize, suffix: fn(&str) -> bool| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.split_once('-'))
            .is_some_and(|(hash, n)| {
                hash.len() == digits && hash.bytes().all(|b| b.is_ascii_hexdigit()) && suffix(n)
            })
    };
    let number = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let side = |n: &str| n == "a" || n == "b";
    machine_links()
        .into_iter()
        .filter(|n| {
            n.starts_with("kb-")
                || n.starts_with("kb.")
                || veth(n, "kv", 9, number)
                || veth(n, "kp", 9, number)
                || veth(n, "kec", 8, number)
                || veth(n, "keb", 8, number)
                || veth(n, "kel", 8, side)
                || n.strip_prefix("kg").is_some_and(|hash| {
                    hash.len() == 9 && hash.bytes().all(|b| b.is_ascii_hexdigit())
                })
        })
        .collect()
}

/// A port free for both TCP and UDP on 127.0.0.1 right now (the kernel picks it): for tests
/// that listen or publish, never a fixed, well-known port another test may be using.
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = tcp.local_addr().expect("a bound address").port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// The first block device of this machine (`/sys/dev/block`): `major minor`.
pub fn a_block_device() -> String {
    std::fs::read_dir("/sys/dev/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().replace(':', " "))
        .min()
        .expect("this machine has a block device")
}
