//! Rendering of `kiln stats`: sizes, the table and JSON.

use super::{binary_size, render};
use crate::cli::args::StatsFormat;
use crate::containers::ContainerStats;

#[test]
fn sizes_are_binary_with_one_decimal() {
    assert_eq!(binary_size(0), "0B");
    assert_eq!(binary_size(1023), "1023B");
    assert_eq!(binary_size(1024), "1KiB");
    assert_eq!(binary_size(1536), "1.5KiB");
    assert_eq!(binary_size(3 * 1024 * 1024 / 2), "1.5MiB");
    assert_eq!(binary_size(64 << 20), "64MiB");
    assert_eq!(binary_size((1 << 20) - 20), "1MiB");
    assert_eq!(binary_size(15_870_000_000), "14.8GiB");
    assert_eq!(binary_size(u64::MAX), "16384PiB");
}

fn figures() -> Vec<ContainerStats> {
    vec![
        ContainerStats {
            name: "web".into(),
            id: "0123456789abcdef".repeat(4),
            cpu_percent: 99.5,
            memory_usage: 3 << 19,
            memory_limit: 64 << 20,
            memory_percent: 2.34375,
            pids: 3,
            pids_limit: Some(100),
            net_rx: 1536,
            net_tx: 0,
            block_read: 0,
            block_write: 4096,
        },
        ContainerStats {
            name: "db".into(),
            id: "fedcba9876543210".repeat(4),
            cpu_percent: 0.0,
            memory_usage: 100,
            memory_limit: 8 << 30,
            memory_percent: 0.0,
            pids: 1,
            pids_limit: None,
            net_rx: 0,
            net_tx: 0,
            block_read: 0,
            block_write: 0,
        },
    ]
}

#[test]
fn the_table_has_a_header_and_a_row_per_container() {
    let text = render(&figures(), StatsFormat::Table);
    let expected = "\
CONTAINER ID   NAME   CPU %    MEM USAGE / LIMIT   MEM %   NET I/O       BLOCK I/O   PIDS
0123456789ab   web    99.50%   1.5MiB / 64MiB      2.34%   1.5KiB / 0B   0B / 4KiB   3 / 100
fedcba987654   db     0.00%    100B / 8GiB         0.00%   0B / 0B       0B / 0B     1
";
    assert_eq!(text, expected);
    let empty = render(&[], StatsFormat::Table);
    assert_eq!(empty.lines().count(), 1);
    assert!(empty.starts_with("CONTAINER ID"));
}

#[test]
fn json_is_one_array_per_reading() {
    let text = render(&figures(), StatsFormat::Json);
    assert!(text.ends_with("}]\n"));
    assert_eq!(text.lines().count(), 1);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value[0]["name"], "web");
    assert_eq!(value[0]["pids_limit"], 100);
    assert_eq!(value[1]["pids_limit"], serde_json::Value::Null);
    assert_eq!(render(&[], StatsFormat::Json), "[]\n");
}
