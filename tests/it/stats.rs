//! `kiln stats`: figures of a busy detached container (CPU, memory limit, pids), the table,
//! the stream, stopped containers left out, and unknown names refused.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{Lab, Project, host, images};

const MIB: u64 = 1024 * 1024;

#[test]
fn stats_show_a_busy_container_with_its_limits_and_leave_out_stopped_ones() {
    let Some(lab) = Lab::build(Project::new(&images::tools("tools", ""))) else {
        return;
    };
    let kiln = || lab.kiln();
    kiln()
        .args(["run", "-d", "--name", "busy", "--memory", "64MiB"])
        .args([
            "--pids-limit",
            "50",
            "tools",
            "sh",
            "-c",
            "while :; do :; done",
        ])
        .run()
        .success();
    kiln()
        .args(["run", "-d", "--name", "stopped", "tools", "sleep", "1000"])
        .run()
        .success();
    kiln().args(["stop", "-t", "1", "stopped"]).run().success();

    let list = kiln()
        .args(["stats", "--no-stream", "--format", "json"])
        .run()
        .success()
        .json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "only the running container: {list:?}");
    let busy = &list[0];
    assert_eq!(busy["name"], "busy");
    assert_eq!(busy["id"].as_str().unwrap().len(), 64);
    // A shell spinning on one CPU: well above zero even on a loaded machine.
    assert!(busy["cpu_percent"].as_f64().unwrap() > 5.0, "{busy}");
    assert!(busy["cpu_percent"].as_f64().unwrap() < 250.0, "{busy}");
    assert_eq!(busy["memory_limit"], 64 * MIB);
    let usage = busy["memory_usage"].as_u64().unwrap();
    assert!(usage > 0 && usage < 64 * MIB, "{busy}");
    let percent = busy["memory_percent"].as_f64().unwrap();
    assert!((percent - usage as f64 / (64 * MIB) as f64 * 100.0).abs() < 1e-9);
    // The loop runs in the shell itself: one process.
    assert_eq!(
        (busy["pids"].as_u64(), busy["pids_limit"].as_u64()),
        (Some(1), Some(50))
    );
    // --network none: only lo, which is not counted.
    assert_eq!(
        (busy["net_rx"].as_u64(), busy["net_tx"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(busy["block_read"].is_u64() && busy["block_write"].is_u64());

    let table = kiln()
        .args(["stats", "--no-stream"])
        .run()
        .success()
        .stdout();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(
        lines[0].starts_with("CONTAINER ID   NAME   CPU %"),
        "{table}"
    );
    for column in ["MEM USAGE / LIMIT", "NET I/O", "BLOCK I/O", "PIDS"] {
        assert!(lines[0].contains(column), "{table}");
    }
    assert!(
        lines[1].contains("busy") && lines[1].contains("/ 64MiB"),
        "{table}"
    );
    assert!(lines[1].ends_with("1 / 50"), "{table}");

    // Named: the same; a stopped one or an unknown one is an error.
    let named = kiln()
        .args(["stats", "--no-stream", "--format", "json", "busy"])
        .run()
        .success()
        .json();
    assert_eq!(named[0]["name"], "busy");
    kiln()
        .args(["stats", "--no-stream", "stopped"])
        .run()
        .failure()
        .stderr_contains("container stopped is not running");
    kiln()
        .args(["stats", "--no-stream", "nope"])
        .run()
        .failure()
        .stderr_contains("no container named or with id `nope`");

    // The stream: a new table every second, appended when stdout is not a terminal.
    let mut stream = kiln()
        .args(["stats", "busy"])
        .command()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut headers = 0;
    let mut rows = 0;
    for line in BufReader::new(stream.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        assert!(
            !line.contains('\x1b'),
            "no escape codes into a pipe: {line:?}"
        );
        if line.starts_with("CONTAINER ID") {
            headers += 1;
        } else if line.contains("busy") {
            rows += 1;
        }
        if headers == 2 && rows == 2 {
            break;
        }
    }
    let elapsed = started.elapsed();
    stream.kill().unwrap();
    stream.wait().unwrap();
    assert_eq!((headers, rows), (2, 2));
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");

    kiln().args(["rm", "-f", "busy", "stopped"]).run().success();
    let left = kiln().args(["ps", "-a"]).run().success().stdout();
    assert_eq!(left.lines().count(), 1, "{left}");
    assert_eq!(host::cgroups_of(lab.path()), Vec::<PathBuf>::new());
    lab.root.assert_clean();
}
