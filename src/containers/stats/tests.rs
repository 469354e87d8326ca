//! The pure parts of `kiln stats`: /proc/net/dev and /proc/meminfo, CPU % from two
//! readings, and the figures Docker would show for a reading.

use std::time::{Duration, Instant};

use super::{NetIo, Reading, cpu_percent, figures_of, parse_mem_total, parse_net_dev};
use crate::runtime::cgroup::Stats;
use crate::state::{ContainerId, ContainerState, Record};

const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  987654     100    0    0    0     0          0         0   987654     100    0    0    0     0       0          0
  eth0:    1500      10    0    0    0     0          0         0      700       5    0    0    0     0       0          0
 veth1: 20000000  15000    0    0    0     0          0         0 30000000   20000    0    0    0     0       0          0
";

#[test]
fn net_dev_sums_every_interface_but_lo() {
    assert_eq!(
        parse_net_dev(NET_DEV),
        Some(NetIo {
            rx: 20_001_500,
            tx: 30_000_700
        })
    );
    // A namespace with only lo (`--network none`) has nothing to show.
    let only_lo: String = NET_DEV.lines().take(3).map(|l| format!("{l}\n")).collect();
    assert_eq!(parse_net_dev(&only_lo), Some(NetIo::default()));
}

#[test]
fn net_dev_refuses_lines_it_does_not_understand() {
    let header: String = NET_DEV.lines().take(2).map(|l| format!("{l}\n")).collect();
    assert_eq!(parse_net_dev(&format!("{header}eth0 1 2 3\n")), None);
    assert_eq!(parse_net_dev(&format!("{header}eth0: 1 2 3\n")), None);
    assert_eq!(
        parse_net_dev(&format!("{header}eth0: a 0 0 0 0 0 0 0 1 0 0 0 0 0 0 0\n")),
        None
    );
}

#[test]
fn mem_total_is_read_in_kibibytes() {
    let meminfo = "MemTotal:       16314020 kB\nMemFree:         1000000 kB\n";
    assert_eq!(parse_mem_total(meminfo), Some(16_314_020 * 1024));
    assert_eq!(parse_mem_total("MemFree: 1 kB\n"), None);
    assert_eq!(parse_mem_total("MemTotal: lots kB\n"), None);
}

#[test]
fn cpu_percent_is_cpu_time_over_wall_time_where_one_cpu_is_100() {
    let second = Duration::from_secs(1);
    assert_eq!(cpu_percent(0, 500_000_000, second), 50.0);
    assert_eq!(cpu_percent(1_000_000_000, 3_000_000_000, second), 200.0);
    assert_eq!(cpu_percent(5, 5, second), 0.0);
    // No time passed, or a counter that went back (the cgroup was made anew): no figure.
    assert_eq!(cpu_percent(0, 100, Duration::ZERO), 0.0);
    assert_eq!(cpu_percent(100, 0, second), 0.0);
}

fn record() -> Record {
    Record {
        id: ContainerId::parse(&"ab".repeat(32)).unwrap(),
        name: "web".into(),
        image: "base".into(),
        image_digest: String::new(),
        created: String::new(),
        command: Vec::new(),
        restart: "no".into(),
        state: ContainerState::default(),
        member: None,
        labels: Default::default(),
    }
}

const MIB: u64 = 1 << 20;

#[test]
fn figures_leave_out_inactive_file_cache_and_default_the_limit_to_the_host() {
    let start = Instant::now();
    let before = Reading {
        at: start,
        cgroup: Stats {
            cpu_usage_ns: 1_000_000_000,
            ..Stats::default()
        },
        net: NetIo::default(),
    };
    let now = Reading {
        at: start + Duration::from_millis(500),
        cgroup: Stats {
            cpu_usage_ns: 1_250_000_000,
            memory_usage: 48 * MIB,
            memory_inactive_file: 16 * MIB,
            memory_limit: Some(64 * MIB),
            pids_current: 3,
            pids_limit: Some(32),
            block_read: 4096,
            block_write: 8192,
            ..Stats::default()
        },
        net: NetIo { rx: 10, tx: 20 },
    };
    let figures = figures_of(&record(), Some(&before), &now, 1024 * MIB);
    assert_eq!(figures.name, "web");
    assert_eq!(figures.id, "ab".repeat(32));
    assert_eq!(figures.cpu_percent, 50.0);
    assert_eq!(figures.memory_usage, 32 * MIB);
    assert_eq!(figures.memory_limit, 64 * MIB);
    assert_eq!(figures.memory_percent, 50.0);
    assert_eq!((figures.pids, figures.pids_limit), (3, Some(32)));
    assert_eq!((figures.net_rx, figures.net_tx), (10, 20));
    assert_eq!((figures.block_read, figures.block_write), (4096, 8192));

    // The first reading has no CPU figure; no limit (or one above the host's memory) is
    // the host's memory.
    let unlimited = Reading {
        cgroup: Stats {
            memory_limit: None,
            ..now.cgroup
        },
        ..now
    };
    let figures = figures_of(&record(), None, &unlimited, 128 * MIB);
    assert_eq!(figures.cpu_percent, 0.0);
    assert_eq!(figures.memory_limit, 128 * MIB);
    assert_eq!(figures.memory_percent, 25.0);
    let above_host = figures_of(&record(), None, &now, 32 * MIB);
    assert_eq!(above_host.memory_limit, 32 * MIB);
}

#[test]
fn json_has_the_documented_fields() {
    let now = Reading {
        at: Instant::now(),
        cgroup: Stats::default(),
        net: NetIo::default(),
    };
    let value = serde_json::to_value(figures_of(&record(), None, &now, MIB)).unwrap();
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "block_read",
            "block_write",
            "cpu_percent",
            "id",
            "memory_limit",
            "memory_percent",
            "memory_usage",
            "name",
            "net_rx",
            "net_tx",
            "pids",
            "pids_limit"
        ]
    );
    assert_eq!(value["pids_limit"], serde_json::Value::Null);
}
