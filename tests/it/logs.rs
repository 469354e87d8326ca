//! A detached container's log is capped and rotated as `--log-opt max-size/max-file` (or
//! kiln.kdl's `log`) say: never more than max-size × max-file on disk, `kiln logs` reads
//! the newest lines in order across the files, and `kiln logs -f` follows a rotation.

use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

use crate::harness::{Lab, Project, images};

/// Prints `line 1` … `line 299` (after `line 0` and, with `wait`, once /go exists).
fn counting(wait: bool) -> String {
    format!(
        "echo line 0; {}i=1; while [ $i -lt 300 ]; do echo \"line $i\"; i=$((i+1)); done",
        if wait {
            "while [ ! -e /go ]; do sleep 0.05; done; "
        } else {
            ""
        }
    )
}

/// The numbers of `line N` lines.
fn numbers(text: &str) -> Vec<u32> {
    text.lines()
        .map(|l| l.strip_prefix("line ").unwrap().parse().unwrap())
        .collect()
}

fn lab() -> Option<Lab> {
    Lab::build(Project::new(&images::tools("tools", "")))
}

#[test]
fn a_log_never_grows_past_its_cap_and_reads_in_order() {
    let Some(lab) = lab() else {
        return;
    };
    let id = lab
        .kiln()
        .args(["run", "-d", "--name", "chatty"])
        .args(["--log-opt", "max-size=1k", "--log-opt", "max-file=3"])
        .args(["tools", "sh", "-c", &counting(false)])
        .run()
        .success()
        .word();
    // `kiln wait` returns once the supervisor has recorded the exit, after the last line of
    // output reached the log.
    lab.kiln().args(["wait", "chatty"]).run().success();
    // 300 records of ~80 bytes (24 KB) written; at most 3 files of 1 KiB kept.
    let dir = lab.path().join("containers").join(&id);
    let mut logs: Vec<(String, u64)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("log.jsonl"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    logs.sort();
    let names: Vec<&str> = logs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["log.jsonl", "log.jsonl.1", "log.jsonl.2"]);
    assert!(logs.iter().all(|(_, size)| *size <= 1024), "{logs:?}");
    // The newest lines, oldest first, without a gap, to the last one.
    let read = numbers(&lab.kiln().args(["logs", "chatty"]).run().success().stdout());
    assert_eq!(read.last(), Some(&299), "{read:?}");
    assert!(read[0] > 0 && read.len() > 20, "{read:?}");
    assert!(read.windows(2).all(|w| w[1] == w[0] + 1), "{read:?}");
    let tail = numbers(
        &lab.kiln()
            .args(["logs", "--tail", "3", "chatty"])
            .run()
            .success()
            .stdout(),
    );
    assert_eq!(tail, [297, 298, 299]);
    // A bad option is refused, never ignored; foreground containers keep no log.
    lab.kiln()
        .args(["run", "-d", "--log-opt", "compress=true", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("kiln's logs take max-size and max-file");
    lab.kiln()
        .args(["run", "--rm", "--log-opt", "max-size=1k", "tools", "true"])
        .run()
        .code(125)
        .stderr_contains("add -d");
    lab.kiln().args(["rm", "chatty"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn logs_follow_across_rotations_and_kdl_sets_the_cap() {
    let Some(lab) = lab() else {
        return;
    };
    lab.kiln()
        .args(["run", "-d", "--name", "slow"])
        .args(["--log-opt", "max-size=1k", "--log-opt", "max-file=1000"])
        .args(["tools", "sh", "-c", &counting(true)])
        .run()
        .success();
    let mut follower = lab
        .kiln()
        .command()
        .args(["logs", "-f", "slow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(follower.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert_eq!(first, "line 0\n");
    // Following now: the rest is written in one go, through some 20 rotations.
    lab.kiln()
        .args(["exec", "slow", "touch", "/go"])
        .run()
        .success();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(follower.wait().unwrap().success());
    assert_eq!(numbers(&rest), (1..300).collect::<Vec<_>>());
    lab.kiln().args(["rm", "-f", "slow"]).run().success();

    // The same cap from kiln.kdl's `log`.
    lab.project.write(
        "kiln.kdl",
        &format!(
            "project \"caps\"\n{}\ncontainer \"chatty\" image=\"tools\" {{\n    log max-size=\"1k\" max-file=2\n    cmd \"sh\" \"-c\" \"{}\"\n}}\n",
            images::tools("tools", ""),
            counting(false).replace('"', "\\\"")
        ),
    );
    lab.kiln().args(["up", "-d"]).run().success();
    lab.kiln().args(["wait", "caps/chatty"]).run().success();
    let id = lab.root.ps().get("chatty")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = lab.path().join("containers").join(&id);
    assert!(dir.join("log.jsonl.1").exists());
    assert!(!dir.join("log.jsonl.2").exists());
    let read = numbers(
        &lab.kiln()
            .args(["logs", "caps/chatty"])
            .run()
            .success()
            .stdout(),
    );
    assert_eq!(read.last(), Some(&299), "{read:?}");
    lab.kiln().args(["down"]).run().success();
    lab.root.assert_clean();
}

#[test]
fn ps_says_exited_only_once_the_supervisor_recorded_the_exit() {
    let Some(lab) = lab() else {
        return;
    };
    // Much output: pid 1 is gone while its supervisor still drains the pipe.
    let script =
        "i=0; while [ $i -lt 3000 ]; do echo \"line $i of the output\"; i=$((i+1)); done; exit 3";
    lab.kiln()
        .args([
            "run", "-d", "--name", "draining", "tools", "sh", "-c", script,
        ])
        .run()
        .success();
    // Whenever `kiln ps` first says exited, the exit code is there and the log complete:
    // the supervisor's record is the truth, as for `kiln wait`.
    let seen = crate::harness::eventually("ps to say exited", || {
        let ps = lab.root.ps();
        let row = ps.named("draining").clone();
        if row["state"] == "exited" {
            Ok(row)
        } else {
            Err(row.to_string())
        }
    });
    assert_eq!(seen["exit_code"], 3, "{seen}");
    lab.kiln()
        .args(["logs", "--tail", "1", "draining"])
        .run()
        .success()
        .stdout_is("line 2999 of the output\n");
    lab.kiln()
        .args(["wait", "draining"])
        .run()
        .success()
        .stdout_is("3\n");
    lab.kiln().args(["rm", "draining"]).run().success();
    lab.root.assert_clean();
}
