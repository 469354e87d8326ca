//! The two files a container's resolver reads, `/etc/resolv.conf` and `/etc/hosts`, as text.
//!
//! Pure: writing them into a container's root (or bind-mounting them) is the caller's.

use std::fmt::Write as _;
use std::net::IpAddr;

/// `resolv.conf` pointing at kiln's DNS servers (each network's gateway), the first network
/// first; `search` lets `web` also be asked as `web.PROJECT`.
pub fn resolv_conf(nameservers: &[IpAddr], search: Option<&str>) -> String {
    let mut text =
        String::from("# written by kiln: the DNS servers of this container's networks\n");
    for server in nameservers {
        let _ = writeln!(text, "nameserver {server}");
    }
    if let Some(search) = search {
        let _ = writeln!(text, "search {search}");
    }
    text
}

/// `/etc/hosts`: loopback names, then the container's own addresses with its hostname and
/// aliases, so it can resolve itself without DNS.
pub fn hosts_file(own: &[(IpAddr, Vec<String>)]) -> String {
    let mut text =
        String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for (address, names) in own {
        if !names.is_empty() {
            let _ = writeln!(text, "{address}\t{}", names.join(" "));
        }
    }
    text
}
