//! An interface on an IPv4 network is born with IPv6 off (its port would drop IPv6
//! anyway): kiln sets the container namespace's `default` before making it there — no
//! RTNL lock, unlike the interface's own file, which spins while another namespace's
//! teardown holds the lock — and sets `default` back on, so interfaces the container makes
//! itself (a tun device) get IPv6 as usual.

use crate::harness::{Lab, Project, images};

#[test]
fn the_interface_has_no_ipv6_and_the_namespace_default_is_left_on() {
    let Some(lab) = Lab::build(Project::new(&images::tools("tools", ""))) else {
        return;
    };
    lab.kiln()
        .args(["network", "create", "v4", "--subnet", "10.89.61.0/24"])
        .run()
        .success();
    let ran = lab
        .kiln()
        .args(["run", "--rm", "--network", "v4", "tools", "cat"])
        .args([
            "/proc/sys/net/ipv6/conf/eth0/disable_ipv6",
            "/proc/sys/net/ipv6/conf/default/disable_ipv6",
            "/proc/sys/net/ipv6/conf/lo/disable_ipv6",
        ])
        .run()
        .success();
    assert_eq!(ran.stdout(), "1\n0\n0\n");
    lab.kiln().args(["network", "rm", "v4"]).run().success();
}
