//! `kiln test`: a project's assertions checked from inside its containers — http, tcp,
//! ping and dns from the container's network namespace (names through the container's
//! own resolver, here a tiny DNS server inside it), exec in the container — with the
//! text report, failures pointing at kiln.kdl, JSON, JUnit, selection by name, and
//! `kiln down` leaving nothing behind.

use crate::harness::{Lab, Project, Ran, has_python};

const PROJECT: &str = r#"project "probe-lab"

image "py" {
    from "scratch"
    host-binary "/bin/sh" "/bin/cat" "/bin/echo" "/bin/sleep" "/usr/bin/python3"
    host-path "/usr/lib/python3.11"
    copy "serve.py" "/srv/serve.py"
    copy "resolv.conf" "/etc/resolv.conf"
}

image "bare" {
    from "scratch"
    host-binary "/bin/sh" "/bin/sleep"
}

container "web" image="py" {
    workdir "/srv"
    cmd "python3" "/srv/serve.py"
    health interval="200ms" {
        http "http://127.0.0.1:8080/" status=200
    }
}

container "bare" image="bare" {
    cmd "sleep" "1000"
}

test "web serves" {
    http from="web" "http://127.0.0.1:8080/" status=200 contains="serve.py"
    http from="web" "http://kiln-self:8080/" status=200
    tcp from="web" "127.0.0.1:8080"
    tcp from="web" "127.0.0.1:9" expect="refused"
    exec "web" "cat" "/proc/sys/kernel/hostname" stdout="web\n"
    exec "web" "sh" "-c" "echo out; exit 3" stdout="out\n" exit=3
    ping from="web" "127.0.0.1" count=2
}

test "names" {
    dns from="web" "db" expect="10.1.2.3"
    dns from="web" "nowhere" expect="nxdomain"
}

test "broken" {
    http from="web" "http://127.0.0.1:8080/" status=404
    http from="bare" "http://web:8080/" status=200
}
"#;

/// A DNS server on the container's 127.0.0.1:53 that knows `db` and `kiln-self.lab`
/// (reached through resolv.conf's `search lab`), then an HTTP server on 127.0.0.1:8080:
/// neither is reachable from the host, so every passing probe ran inside.
const SERVE_PY: &str = r#"import http.server, signal, socket, sys, threading

KNOWN = {"db": "10.1.2.3", "kiln-self.lab": "127.0.0.1"}

def answer(query):
    i, labels = 12, []
    while query[i]:
        n = query[i]
        labels.append(query[i + 1:i + 1 + n].decode().lower())
        i += 1 + n
    question = query[12:i + 5]
    address = KNOWN.get(".".join(labels))
    flags = 0x8180 if address else 0x8183
    count = b"\x00\x01" if address else b"\x00\x00"
    header = query[:2] + flags.to_bytes(2, "big") + b"\x00\x01" + count + bytes(4)
    record = b""
    if address:
        record = b"\xc0\x0c\x00\x01\x00\x01" + bytes(4) + b"\x00\x04" + socket.inet_aton(address)
    return header + question + record

def serve_dns(sock):
    while True:
        query, peer = sock.recvfrom(512)
        sock.sendto(answer(query), peer)

dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dns.bind(("127.0.0.1", 53))
threading.Thread(target=serve_dns, args=(dns,), daemon=True).start()
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
handler = http.server.SimpleHTTPRequestHandler
http.server.ThreadingHTTPServer(("127.0.0.1", 8080), handler).serve_forever()
"#;

fn lab() -> Option<Lab> {
    if !has_python() {
        return None;
    }
    Lab::unbuilt(
        Project::new(PROJECT)
            .file("serve.py", SERVE_PY)
            .file("resolv.conf", "nameserver 127.0.0.1\nsearch lab\n"),
    )
}

/// `kiln test ARGS` in the project's directory (so failures say `kiln.kdl:LINE:COL`).
fn kiln_test(lab: &Lab, args: &[&str]) -> Ran {
    lab.project
        .kiln_here()
        .root(&lab.root)
        .args(["test"])
        .args(args)
        .run()
}

/// The 1-based line of kiln.kdl that contains `text`.
fn line_of(text: &str) -> usize {
    PROJECT
        .lines()
        .position(|l| l.contains(text))
        .expect("the line is in the project")
        + 1
}

#[test]
fn kiln_test_probes_from_inside_and_reports_text_json_and_junit() {
    let Some(lab) = lab() else {
        return;
    };

    // Not up yet: kiln test brings the project up, then tests. The report is all that
    // goes to stdout; coming up is progress on stderr.
    let ran = kiln_test(&lab, &[]).failure();
    let out = ran.stdout();
    assert!(ran.stderr().contains("web: healthy"), "{}", ran.stderr());
    assert!(!out.contains("sha256:"), "build output on stdout:\n{out}");
    for passed in [
        "  ✓ http from=web http://127.0.0.1:8080/ status=200 contains=\"serve.py\" (status 200, ",
        "  ✓ http from=web http://kiln-self:8080/ status=200 (status 200, ",
        "  ✓ tcp from=web 127.0.0.1:8080 expect=\"open\" (open, ",
        "  ✓ tcp from=web 127.0.0.1:9 expect=\"refused\" (refused, ",
        "  ✓ exec \"web\" \"cat\" \"/proc/sys/kernel/hostname\" stdout=\"web\\n\" (exit 0, ",
        "  ✓ exec \"web\" \"sh\" \"-c\" \"echo out; exit 3\" stdout=\"out\\n\" exit=3 (exit 3, ",
        "  ✓ ping from=web 127.0.0.1 count=2 (2 replies of 2 from 127.0.0.1, ",
        "  ✓ dns from=web db expect=\"10.1.2.3\" (resolved to 10.1.2.3, ",
        "  ✓ dns from=web nowhere expect=\"nxdomain\" (resolved to NXDOMAIN, ",
    ] {
        assert!(out.contains(passed), "missing {passed:?} in\n{out}");
    }
    // Grouped under their test's name, in declaration order.
    let web = out.find("web serves\n").expect("the first test's heading");
    let names = out.find("\nnames\n").expect("the second test's heading");
    let broken = out.find("\nbroken\n").expect("the third test's heading");
    assert!(web < names && names < broken, "{out}");
    // A failure: where kiln.kdl says it, the line with a caret underline, what was seen.
    let status = line_of("status=404");
    let source = "    http from=\"web\" \"http://127.0.0.1:8080/\" status=404";
    assert!(
        out.contains("  ✗ http from=web http://127.0.0.1:8080/ status=404 ("),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "    kiln.kdl:{status}:5\n       |\n    {status} | {source}\n       |     ^^^^"
        )),
        "{out}"
    );
    assert!(out.contains("    observed: status 200, body \""), "{out}");
    // Names come from the container's own resolver, never the host's: `bare` has none.
    let unresolved = line_of("from=\"bare\"");
    assert!(
        out.contains(&format!("    kiln.kdl:{unresolved}:5\n")),
        "{out}"
    );
    assert!(
        out.contains("    observed: cannot resolve web from bare: no nameserver\n"),
        "{out}"
    );
    assert!(out.ends_with("\n9 passed, 2 failed\n"), "{out}");

    // Selected by name, with what runs now: all pass, exit 0.
    let ran = kiln_test(&lab, &["--no-up", "names", "web serves"]).success();
    let out = ran.stdout();
    assert!(!out.contains("broken"), "{out}");
    assert!(out.ends_with("\n9 passed, 0 failed\n"), "{out}");

    // An unknown name is refused before anything runs, with the names there are.
    let ran = kiln_test(&lab, &["--no-up", "nope"]).failure();
    let err = ran.stderr();
    assert!(err.contains("no test named `nope`"), "{err}");
    assert!(err.contains("`web serves`, `names`, `broken`"), "{err}");
    assert_eq!(ran.stdout(), "");

    // JSON for scripts (the project is up: kept as it is), JUnit for CI.
    let junit = lab.project.path().join("report.xml");
    let ran = kiln_test(
        &lab,
        &["--format", "json", "--junit", junit.to_str().unwrap()],
    )
    .failure();
    assert!(ran.stderr().contains("web: unchanged"), "{}", ran.stderr());
    let report = ran.json();
    assert_eq!(report["passed"], 9, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 11);
    let failed: Vec<_> = results.iter().filter(|r| r["passed"] == false).collect();
    assert_eq!(failed[0]["test"], "broken");
    assert_eq!(
        failed[0]["location"],
        format!("kiln.kdl:{status}:5").as_str()
    );
    assert_eq!(
        failed[0]["assertion"],
        "http from=web http://127.0.0.1:8080/ status=404"
    );
    assert!(
        failed[0]["observed"]
            .as_str()
            .unwrap()
            .starts_with("status 200"),
        "{report}"
    );
    assert!(results.iter().all(|r| r["elapsed_ms"].is_number()));
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<testcase ").count(), 11, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert_eq!(xml.matches("</failure>").count(), 2, "{xml}");
    assert!(
        xml.contains("<testsuite name=\"probe-lab\" tests=\"11\" failures=\"2\""),
        "{xml}"
    );
    assert!(xml.contains(&format!(">kiln.kdl:{status}:5\n")), "{xml}");

    // Down: nothing left, and a test of a project that is not up says why per assertion.
    let left = lab.root.pids();
    assert!(left.len() >= 4, "{left:?}");
    lab.kiln().args(["down", "-t", "2"]).run().success();
    lab.root.assert_clean();
    let ran = kiln_test(&lab, &["--no-up", "names"]).failure();
    assert!(
        ran.stdout().contains("observed: no container named web"),
        "{}",
        ran.stdout()
    );
    assert!(ran.stdout().ends_with("\n0 passed, 2 failed\n"));
}
