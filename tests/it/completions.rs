//! `kiln completions SHELL` and `kiln man [DIR]`: generated from the one clap definition,
//! they know every command `--help` shows (and none of kiln's hidden daemons), bash really
//! completes with the script, and neither needs a state root.

use clap::CommandFactory;

use crate::harness::Kiln;

/// The commands `kiln --help` shows, nested ones as `network create`.
fn visible_commands() -> Vec<Vec<String>> {
    fn walk(command: &clap::Command, path: &[String], out: &mut Vec<Vec<String>>) {
        for sub in command.get_subcommands() {
            if sub.is_hide_set() || sub.get_name() == "help" {
                continue;
            }
            let mut here = path.to_vec();
            here.push(sub.get_name().to_string());
            out.push(here.clone());
            walk(sub, &here, out);
        }
    }
    let mut out = Vec::new();
    walk(&kiln::cli::Cli::command(), &[], &mut out);
    assert!(out.len() > 30, "kiln has its commands: {out:?}");
    out
}

fn hidden_commands() -> Vec<String> {
    let hidden: Vec<String> = kiln::cli::Cli::command()
        .get_subcommands()
        .filter(|c| c.is_hide_set())
        .map(|c| c.get_name().to_string())
        .collect();
    assert!(!hidden.is_empty(), "kiln has hidden daemons");
    hidden
}

#[test]
fn each_shells_script_names_every_command_and_no_hidden_one() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let state = root.path().join("never-made");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let script = Kiln::new()
            .root(&state)
            .args(["completions", shell])
            .run()
            .success()
            .stdout();
        for command in visible_commands() {
            let name = command.last().expect("a name");
            assert!(
                script.contains(name.as_str()),
                "{shell}'s script does not mention `{}`",
                command.join(" ")
            );
        }
        for hidden in hidden_commands() {
            assert!(
                !script.contains(&hidden),
                "{shell}'s script offers the hidden `{hidden}`"
            );
        }
    }
    assert!(!state.exists(), "completions made a state root");
}

#[test]
fn an_unknown_shell_is_refused() {
    Kiln::new()
        .args(["completions", "tcsh"])
        .run()
        .code(2)
        .stderr_contains("possible values: bash");
}

/// What bash offers after `kiln WORDS… CURRENT<TAB>` with kiln's script loaded.
fn bash_completes(words: &[&str]) -> Vec<String> {
    let root = tempfile::tempdir().expect("a temporary directory");
    let script = root.path().join("kiln.bash");
    let text = Kiln::new()
        .args(["completions", "bash"])
        .run()
        .success()
        .stdout();
    std::fs::write(&script, text).expect("writing the script");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let program = format!(
        "source '{}'; COMP_WORDS=(kiln {}); COMP_CWORD={}; _kiln kiln '{}' '{}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len(),
        words.last().expect("a word"),
        words.len().checked_sub(2).map_or("kiln", |i| words[i]),
    );
    let out = std::process::Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &program])
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed on the script: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_subcommands_and_flags_with_the_script() {
    assert_eq!(bash_completes(&["netw"]), ["network"]);
    let network = bash_completes(&["network", ""]);
    for sub in ["create", "rm", "inspect", "list"] {
        assert!(network.contains(&sub.to_string()), "{network:?}");
    }
    assert!(bash_completes(&["ps", "--"]).contains(&"--all".to_string()));
    assert!(bash_completes(&["completions", ""]).contains(&"fish".to_string()));
}

#[test]
fn man_writes_a_page_per_command_that_parses_as_roff() {
    let root = tempfile::tempdir().expect("a temporary directory");
    let dir = root.path().join("share/man/man1");
    Kiln::new()
        .root(root.path().join("never-made"))
        .args(["man"])
        .args([&dir])
        .run()
        .success()
        .stdout_contains("wrote the man pages");
    assert!(!root.path().join("never-made").exists());
    let top = std::fs::read_to_string(dir.join("kiln.1")).expect("kiln.1");
    let mut expected = vec!["kiln.1".to_string()];
    for command in visible_commands() {
        let file = format!("kiln-{}.1", command.join("-"));
        let page =
            std::fs::read_to_string(dir.join(&file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_roff(&file, &page);
        let title = format!(".TH kiln-{} 1", command.join("-"));
        assert!(page.contains(&title), "{file} has no `{title}`");
        if command.len() == 1 {
            assert!(
                top.contains(&format!("kiln\\-{}(1)", command[0])),
                "kiln.1 does not name `{}`",
                command[0]
            );
        }
        expected.push(file);
    }
    assert_roff("kiln.1", &top);
    let mut written: Vec<String> = std::fs::read_dir(&dir)
        .expect("the man directory")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    written.sort();
    expected.sort();
    assert_eq!(written, expected, "one page per visible command, no more");
}

#[test]
fn man_without_a_directory_prints_kiln_1() {
    let page = Kiln::new().args(["man"]).run().success().stdout();
    assert_roff("kiln(1)", &page);
    assert!(page.contains(".TH kiln 1"));
    assert!(page.contains("kiln\\-network(1)"));
}

/// A page man can read: the title macro first, then its sections, every line a request
/// (`.XX`) or text, never an unescaped leading `'` or a raw control character.
fn assert_roff(name: &str, page: &str) {
    let first_macro = page
        .lines()
        .find(|l| l.starts_with(".TH") || l.starts_with(".SH"))
        .unwrap_or_else(|| panic!("{name} has no macros"));
    assert!(first_macro.starts_with(".TH "), "{name}: .TH comes first");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH DESCRIPTION"] {
        assert!(page.contains(section), "{name} has no `{section}`");
    }
    for line in page.lines() {
        assert!(
            !line.chars().any(|c| c.is_control() && c != '\t'),
            "{name}: a control character in {line:?}"
        );
    }
}
