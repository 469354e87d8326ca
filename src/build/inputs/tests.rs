//! Tests of `build::inputs`: fake host roots with hand-made ELF files for the loader rules,
//! the real machine (with `ldd` as the oracle) for the closure of real binaries, and
//! temporary build contexts for `copy`.

mod fake_elf;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::os::unix::fs::{MetadataExt as _, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use fake_elf::{EM_386, EM_MIPS, EM_X86_64, FakeElf};
use tempfile::TempDir;

use super::*;

/// A host root in a temporary directory.
struct FakeRoot {
    dir: TempDir,
}

impl FakeRoot {
    fn new() -> Self {
        FakeRoot {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn host(&self) -> HostRoot {
        HostRoot::new(self.dir.path())
    }

    fn at(&self, rooted: &str) -> PathBuf {
        self.dir.path().join(rooted.trim_start_matches('/'))
    }

    fn file(&self, rooted: &str, bytes: &[u8]) -> &Self {
        let path = self.at(rooted);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, bytes).expect("write");
        self
    }

    fn elf(&self, rooted: &str, elf: FakeElf) -> &Self {
        self.file(rooted, &elf.bytes())
    }

    fn link(&self, rooted: &str, target: &str) -> &Self {
        let path = self.at(rooted);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        symlink(target, path).expect("symlink");
        self
    }

    fn dir(&self, rooted: &str) -> &Self {
        fs::create_dir_all(self.at(rooted)).expect("mkdir");
        self
    }

    /// `summary` of items that must all have their source at the same path in this root.
    fn summary(&self, items: &[HostItem]) -> Vec<String> {
        for item in items {
            assert_eq!(item.source, self.at(&item.image_path), "source of {item:?}");
        }
        summary(items)
    }
}

/// One line per item: `F path`, `D path` or `L path -> target`.
fn summary(items: &[HostItem]) -> Vec<String> {
    items
        .iter()
        .map(|item| match &item.kind {
            ItemKind::File => format!("F {}", item.image_path),
            ItemKind::Dir => format!("D {}", item.image_path),
            ItemKind::Symlink(target) => format!("L {} -> {}", item.image_path, target.display()),
            ItemKind::Special => format!("S {}", item.image_path),
        })
        .collect()
}

fn lines(expected: &[&str]) -> Vec<String> {
    expected.iter().map(|s| (*s).to_owned()).collect()
}

/// A fake x86-64 Debian-like root: `/lib64 -> usr/lib64` style merged /usr, an interpreter
/// reached through links, and an ld.so.conf with an include glob.
fn debianish() -> FakeRoot {
    let root = FakeRoot::new();
    root.link("/lib", "usr/lib")
        .link("/bin", "usr/bin")
        .link("/lib64", "usr/lib64")
        .link(
            "/usr/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        )
        .elf(
            "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            FakeElf::x86_64().soname("ld-linux-x86-64.so.2"),
        )
        .elf(
            "/usr/lib/x86_64-linux-gnu/libc.so.6",
            FakeElf::x86_64()
                .soname("libc.so.6")
                .needs("ld-linux-x86-64.so.2"),
        )
        .file(
            "/etc/ld.so.conf",
            b"# comment\ninclude /etc/ld.so.conf.d/*.conf\n",
        )
        .file("/etc/ld.so.conf.d/b.conf", b"/opt/b/lib\n")
        .file(
            "/etc/ld.so.conf.d/a.conf",
            b"/opt/a/lib # trailing comment\n",
        )
        .file("/etc/ld.so.conf.d/ignored.txt", b"/opt/never\n");
    root
}

fn app() -> FakeElf {
    FakeElf::x86_64().interp("/lib64/ld-linux-x86-64.so.2")
}

#[test]
fn closure_keeps_every_link_on_the_way_and_searches_ld_so_conf() {
    let root = debianish();
    root.link("/usr/bin/sh", "dash")
        .elf(
            "/usr/bin/dash",
            app().needs("libfoo.so.1").needs("libc.so.6"),
        )
        .link("/opt/b/lib/libfoo.so.1", "libfoo.so.1.2.3")
        .elf(
            "/opt/b/lib/libfoo.so.1.2.3",
            FakeElf::x86_64().soname("libfoo.so.1").needs("libbar.so"),
        )
        // Found first: ld.so.conf.d/a.conf sorts before b.conf.
        .elf("/opt/a/lib/libbar.so", FakeElf::x86_64().needs("libc.so.6"))
        .elf("/opt/b/lib/libbar.so", FakeElf::x86_64());

    let items = host_binaries(&["/bin/sh"], &root.host()).expect("closure");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "L /bin -> usr/bin",
            "L /lib -> usr/lib",
            "L /lib64 -> usr/lib64",
            "F /opt/a/lib/libbar.so",
            "L /opt/b/lib/libfoo.so.1 -> libfoo.so.1.2.3",
            "F /opt/b/lib/libfoo.so.1.2.3",
            "F /usr/bin/dash",
            "L /usr/bin/sh -> dash",
            "F /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
            "F /usr/lib/x86_64-linux-gnu/libc.so.6",
            "L /usr/lib64/ld-linux-x86-64.so.2 -> /lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        ])
    );
}

#[test]
fn items_are_deduplicated_across_binaries() {
    let root = debianish();
    root.elf("/usr/bin/a", app().needs("libc.so.6"))
        .elf("/usr/bin/b", app().needs("libc.so.6"));
    let items = host_binaries(&["/bin/a", "/usr/bin/b", "/bin/a"], &root.host()).expect("closure");
    let summary = root.summary(&items);
    let unique: BTreeSet<_> = items.iter().map(|i| &i.image_path).collect();
    assert_eq!(unique.len(), items.len(), "{summary:?}");
    assert!(summary.contains(&"F /usr/bin/a".to_owned()));
    assert!(summary.contains(&"F /usr/bin/b".to_owned()));
    assert!(summary.contains(&"F /usr/lib/x86_64-linux-gnu/libc.so.6".to_owned()));
}

#[test]
fn a_symlink_loop_is_an_error_naming_the_path() {
    let root = FakeRoot::new();
    root.link("/bin/a", "b").link("/bin/b", "/bin/a");
    let err = host_binaries(&["/bin/a"], &root.host()).expect_err("loop");
    assert!(
        matches!(&err, InputError::SymlinkLoop { path } if path == "/bin/a"),
        "{err:?}"
    );
    let err = host_paths(&["/bin/b/x"], &root.host()).expect_err("loop");
    assert!(matches!(&err, InputError::SymlinkLoop { .. }), "{err:?}");
}

#[test]
fn a_missing_library_names_the_library_and_who_needs_it() {
    let root = debianish();
    root.elf(
        "/usr/bin/app",
        app().needs("libc.so.6").needs("libgone.so.3"),
    );
    let err = host_binaries(&["/usr/bin/app"], &root.host()).expect_err("missing library");
    let InputError::LibraryNotFound {
        library,
        needed_by,
        searched,
    } = &err
    else {
        panic!("wrong error: {err:?}");
    };
    assert_eq!(library, "libgone.so.3");
    assert_eq!(needed_by, "/usr/bin/app");
    assert!(searched.contains("/opt/a/lib"), "{searched}");
    assert!(searched.contains("/usr/lib/x86_64-linux-gnu"), "{searched}");
    let help = miette::Diagnostic::help(&err).expect("help").to_string();
    assert!(help.contains("/opt/b/lib"), "{help}");
}

#[test]
fn a_missing_path_or_a_non_executable_is_an_error_naming_it() {
    let root = debianish();
    root.file("/usr/share/doc/readme", b"plain text\n");
    let err = host_binaries(&["/usr/bin/nope"], &root.host()).expect_err("missing");
    assert!(
        matches!(&err, InputError::NotFound { path, .. } if path == "/usr/bin/nope"),
        "{err:?}"
    );
    let err = host_binaries(&["/usr/share/doc/readme"], &root.host()).expect_err("text");
    assert!(
        matches!(&err, InputError::NotExecutable { path } if path == "/usr/share/doc/readme"),
        "{err:?}"
    );
    let err = host_binaries(&["bin/sh"], &root.host()).expect_err("relative");
    assert!(matches!(&err, InputError::NotAbsolute { .. }), "{err:?}");
    let err = host_paths(&["/usr/share/doc/readme/x"], &root.host()).expect_err("not a dir");
    assert!(matches!(&err, InputError::NotADirectory { .. }), "{err:?}");
}

#[test]
fn runpath_expands_origin_from_the_real_directory_and_serves_only_direct_needs() {
    let root = debianish();
    root.link("/usr/local/bin/tool", "/opt/tool/bin/tool")
        .elf(
            "/opt/tool/bin/tool",
            app()
                .runpath("$ORIGIN/../lib")
                .needs("libtool.so")
                .needs("libc.so.6"),
        )
        .elf(
            "/opt/tool/lib/libtool.so",
            FakeElf::x86_64().needs("libdep.so"),
        )
        .elf("/opt/tool/lib/libdep.so", FakeElf::x86_64());

    // libtool.so has no search path of its own, and the executable's RUNPATH is not
    // inherited: the real loader fails here too.
    let err = host_binaries(&["/usr/local/bin/tool"], &root.host()).expect_err("not inherited");
    assert!(
        matches!(&err, InputError::LibraryNotFound { library, needed_by, .. }
            if library == "libdep.so" && needed_by == "/opt/tool/bin/../lib/libtool.so"),
        "{err:?}"
    );

    // With ${ORIGIN} in libtool's own RUNPATH, it resolves.
    root.elf(
        "/opt/tool/lib/libtool.so",
        FakeElf::x86_64().runpath("${ORIGIN}").needs("libdep.so"),
    );
    let items = host_binaries(&["/usr/local/bin/tool"], &root.host()).expect("closure");
    let summary = root.summary(&items);
    for expected in [
        "L /usr/local/bin/tool -> /opt/tool/bin/tool",
        "F /opt/tool/bin/tool",
        "F /opt/tool/lib/libtool.so",
        "F /opt/tool/lib/libdep.so",
    ] {
        assert!(
            summary.contains(&expected.to_owned()),
            "{expected} in {summary:?}"
        );
    }
}

#[test]
fn rpath_is_inherited_by_loaded_objects_but_ignored_next_to_runpath() {
    let root = debianish();
    root.elf(
        "/opt/tool/bin/tool",
        app()
            .rpath("/opt/tool/lib")
            .needs("libtool.so")
            .needs("libc.so.6"),
    )
    .elf(
        "/opt/tool/lib/libtool.so",
        FakeElf::x86_64().needs("libdep.so"),
    )
    .elf("/opt/tool/lib/libdep.so", FakeElf::x86_64());
    let items = host_binaries(&["/opt/tool/bin/tool"], &root.host()).expect("closure");
    assert!(
        root.summary(&items)
            .contains(&"F /opt/tool/lib/libdep.so".to_owned())
    );

    // A RUNPATH (even a useless one) switches the object's RPATH off.
    root.elf(
        "/opt/tool/bin/tool",
        app()
            .rpath("/opt/tool/lib")
            .runpath("/nowhere")
            .needs("libtool.so"),
    );
    let err = host_binaries(&["/opt/tool/bin/tool"], &root.host()).expect_err("rpath off");
    assert!(
        matches!(&err, InputError::LibraryNotFound { library, .. } if library == "libtool.so"),
        "{err:?}"
    );
}

#[test]
fn a_library_of_another_class_or_machine_is_passed_over() {
    let root = debianish();
    root.file("/etc/ld.so.conf.d/a.conf", b"/opt/a/lib\n/opt/c/lib\n")
        .elf("/opt/a/lib/libz.so.1", FakeElf::new(false, false, EM_386))
        .elf("/opt/b/lib/libz.so.1", FakeElf::new(true, true, EM_X86_64))
        .file("/opt/c/lib/libz.so.1", b"not an ELF file at all")
        .elf("/usr/lib/x86_64-linux-gnu/libz.so.1", FakeElf::x86_64())
        .elf("/usr/bin/app", app().needs("libz.so.1"));
    let items = host_binaries(&["/usr/bin/app"], &root.host()).expect("closure");
    let files: Vec<_> = root
        .summary(&items)
        .into_iter()
        .filter(|l| l.contains("libz"))
        .collect();
    assert_eq!(files, lines(&["F /usr/lib/x86_64-linux-gnu/libz.so.1"]));
}

#[test]
fn big_endian_32_bit_objects_use_their_own_multiarch_directories() {
    let root = FakeRoot::new();
    let mips = || FakeElf::new(false, true, EM_MIPS);
    root.elf("/lib/ld.so.1", mips().soname("ld.so.1"))
        .elf(
            "/usr/bin/app",
            mips().interp("/lib/ld.so.1").needs("libc.so.6"),
        )
        // A 64-bit little-endian libc earlier in the search must not be taken.
        .elf("/usr/lib/mips-linux-gnu/libc.so.6", mips().needs("ld.so.1"))
        .elf("/lib/libc.so.6", FakeElf::x86_64());
    let items = host_binaries(&["/usr/bin/app"], &root.host()).expect("closure");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "F /lib/ld.so.1",
            "F /usr/bin/app",
            "F /usr/lib/mips-linux-gnu/libc.so.6",
        ])
    );
}

#[test]
fn the_triplet_comes_from_the_interpreters_directory() {
    let root = FakeRoot::new();
    let odd = || FakeElf::new(true, false, 0x7777);
    root.elf(
        "/usr/lib/odd-linux-gnu/ld-odd.so",
        odd().soname("ld-odd.so"),
    )
    .link("/lib", "usr/lib")
    .elf(
        "/usr/bin/app",
        odd()
            .interp("/lib/odd-linux-gnu/ld-odd.so")
            .needs("libodd.so"),
    )
    .elf("/usr/lib/odd-linux-gnu/libodd.so", odd().needs("ld-odd.so"));
    let items = host_binaries(&["/usr/bin/app"], &root.host()).expect("closure");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "L /lib -> usr/lib",
            "F /usr/bin/app",
            "F /usr/lib/odd-linux-gnu/ld-odd.so",
            "F /usr/lib/odd-linux-gnu/libodd.so",
        ])
    );
}

#[test]
fn a_needed_library_already_loaded_by_soname_is_not_searched_again() {
    let root = FakeRoot::new();
    // The interpreter lives outside every search directory; libc names it by soname.
    root.elf("/opt/ld/ld-fake.so", FakeElf::x86_64().soname("ld-fake.so"))
        .elf(
            "/usr/bin/app",
            FakeElf::x86_64()
                .interp("/opt/ld/ld-fake.so")
                .needs("libc.so.6"),
        )
        .elf("/usr/lib/libc.so.6", FakeElf::x86_64().needs("ld-fake.so"));
    let items = host_binaries(&["/usr/bin/app"], &root.host()).expect("closure");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "F /opt/ld/ld-fake.so",
            "F /usr/bin/app",
            "F /usr/lib/libc.so.6",
        ])
    );
}

#[test]
fn a_script_brings_its_interpreter_and_env_brings_the_command() {
    let root = debianish();
    root.elf("/usr/bin/env", app().needs("libc.so.6"))
        .link("/usr/bin/python3", "python3.11")
        .elf(
            "/usr/bin/python3.11",
            app().needs("libc.so.6").needs("libm.so.6"),
        )
        .elf("/usr/lib/x86_64-linux-gnu/libm.so.6", FakeElf::x86_64())
        .file(
            "/usr/local/bin/hello",
            b"#!/usr/bin/env -S python3 -u\nprint('hi')\n",
        )
        .file("/usr/local/bin/direct", b"#! /bin/python3.11 -E\n");

    let items = host_binaries(&["/usr/local/bin/hello"], &root.host()).expect("closure");
    let summary = root.summary(&items);
    for expected in [
        "F /usr/local/bin/hello",
        "F /usr/bin/env",
        "L /usr/bin/python3 -> python3.11",
        "F /usr/bin/python3.11",
        "F /usr/lib/x86_64-linux-gnu/libm.so.6",
    ] {
        assert!(
            summary.contains(&expected.to_owned()),
            "{expected} in {summary:?}"
        );
    }

    let items = host_binaries(&["/usr/local/bin/direct"], &root.host()).expect("closure");
    let summary = root.summary(&items);
    assert!(
        summary.contains(&"L /bin -> usr/bin".to_owned()),
        "{summary:?}"
    );
    assert!(
        summary.contains(&"F /usr/bin/python3.11".to_owned()),
        "{summary:?}"
    );
    assert!(
        !summary.contains(&"F /usr/bin/env".to_owned()),
        "{summary:?}"
    );

    root.file("/usr/local/bin/broken", b"#!/usr/bin/perl\n");
    let err = host_binaries(&["/usr/local/bin/broken"], &root.host()).expect_err("no perl");
    assert!(
        matches!(&err, InputError::InterpreterNotFound { script, interpreter }
            if script == "/usr/local/bin/broken" && interpreter == "/usr/bin/perl"),
        "{err:?}"
    );
    root.file("/usr/local/bin/ruby-script", b"#!/usr/bin/env ruby\n");
    let err = host_binaries(&["/usr/local/bin/ruby-script"], &root.host()).expect_err("no ruby");
    assert!(
        matches!(&err, InputError::InterpreterNotFound { interpreter, .. } if interpreter == "ruby"),
        "{err:?}"
    );
}

#[test]
fn ld_so_conf_include_loops_end() {
    let root = debianish();
    root.file("/etc/ld.so.conf", b"include ld.so.conf\n/opt/a/lib\n")
        .elf("/opt/a/lib/libx.so", FakeElf::x86_64())
        .elf("/usr/bin/app", FakeElf::x86_64().needs("libx.so"));
    let items = host_binaries(&["/usr/bin/app"], &root.host()).expect("closure");
    assert!(
        root.summary(&items)
            .contains(&"F /opt/a/lib/libx.so".to_owned())
    );
}

#[test]
fn host_path_copies_a_tree_as_is_behind_its_leading_links() {
    let root = FakeRoot::new();
    root.link("/lib", "usr/lib")
        .file("/usr/lib/python3.11/os.py", b"import sys\n")
        .file("/usr/lib/python3.11/encodings/utf_8.py", b"")
        .dir("/usr/lib/python3.11/empty")
        .link("/usr/lib/python3.11/site-packages", "/usr/local/lib/gone")
        .link("/usr/lib/python3.11/encodings/alias.py", "utf_8.py")
        .link("/usr/lib/python3.11/up", "../../..")
        .file("/usr/lib/python3.12/not-this", b"");
    let socket = root.at("/usr/lib/python3.11/control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).expect("socket");

    let items = host_paths(
        &["/lib/python3.11", "/usr/lib/python3.11/os.py"],
        &root.host(),
    )
    .expect("tree");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "L /lib -> usr/lib",
            "D /usr/lib/python3.11",
            "D /usr/lib/python3.11/empty",
            "D /usr/lib/python3.11/encodings",
            "L /usr/lib/python3.11/encodings/alias.py -> utf_8.py",
            "F /usr/lib/python3.11/encodings/utf_8.py",
            "F /usr/lib/python3.11/os.py",
            "L /usr/lib/python3.11/site-packages -> /usr/local/lib/gone",
            "L /usr/lib/python3.11/up -> ../../..",
        ])
    );

    let fifo = root.at("/usr/lib/python3.11/pipe");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
    let err = host_paths(&["/lib/python3.11"], &root.host()).expect_err("fifo");
    assert!(
        matches!(&err, InputError::UnsupportedFileType { path, kind: "named pipe" }
            if path.ends_with("python3.11/pipe")),
        "{err:?}"
    );
}

#[test]
fn host_path_of_a_link_to_a_file_follows_it() {
    let root = FakeRoot::new();
    root.link("/etc/localtime", "/usr/share/zoneinfo/UTC")
        .file("/usr/share/zoneinfo/UTC", b"TZif");
    let items = host_paths(&["/etc/localtime"], &root.host()).expect("file");
    assert_eq!(
        root.summary(&items),
        lines(&[
            "L /etc/localtime -> /usr/share/zoneinfo/UTC",
            "F /usr/share/zoneinfo/UTC",
        ])
    );
}

// ---- the real machine ----

/// Resolves `path` inside the image the items describe (following their symlink items the
/// way the kernel would) and returns the item it ends at.
fn resolve_in_image<'a>(items: &'a [HostItem], path: &str) -> Option<&'a HostItem> {
    let by_path: BTreeMap<&str, &HostItem> =
        items.iter().map(|i| (i.image_path.as_str(), i)).collect();
    let mut pending: Vec<String> = path.split('/').rev().map(str::to_owned).collect();
    let mut current = String::new();
    let mut hops = 0;
    let mut last = None;
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                current.truncate(current.rfind('/').unwrap_or(0));
                continue;
            }
            _ => {}
        }
        let next = format!("{current}/{part}");
        match by_path.get(next.as_str()) {
            Some(HostItem {
                kind: ItemKind::Symlink(target),
                ..
            }) => {
                hops += 1;
                assert!(hops < 40, "link loop in the image at {next}");
                let target = target.to_str().expect("utf-8");
                if target.starts_with('/') {
                    current.clear();
                }
                pending.extend(target.split('/').rev().map(str::to_owned));
            }
            Some(item) => {
                last = Some(*item);
                current = next;
            }
            // A parent directory the layer writer creates.
            None if !pending.is_empty() => {
                last = None;
                current = next;
            }
            None => return None,
        }
    }
    last
}

fn canonical_files(items: &[HostItem]) -> BTreeSet<PathBuf> {
    items
        .iter()
        .filter(|i| i.kind == ItemKind::File)
        .map(|i| fs::canonicalize(&i.source).expect("canonical"))
        .collect()
}

/// The libraries `ldd` says `binary` loads, as printed (the vDSO left out).
fn ldd(binary: &str) -> Vec<String> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    assert!(out.status.success(), "ldd {binary} failed");
    let text = String::from_utf8(out.stdout).expect("utf-8");
    let mut paths = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        assert!(!line.contains("not found"), "ldd {binary}: {line}");
        let path = match line.split_once(" => ") {
            Some((_, rest)) => rest.split(" (").next().unwrap_or(""),
            None => line.split(" (").next().unwrap_or(""),
        };
        if path.starts_with('/') {
            paths.push(path.to_owned());
        }
    }
    paths
}

#[test]
fn the_closure_of_real_binaries_is_exactly_what_ldd_loads() {
    let candidates = [
        "/bin/sh",
        "/bin/ls",
        "/usr/bin/python3",
        "/usr/bin/curl",
        "/usr/bin/ssh",
        "/usr/bin/perl",
        "/usr/bin/git",
    ];
    let mut checked = 0;
    for binary in candidates {
        if !Path::new(binary).exists() {
            continue;
        }
        checked += 1;
        let items = host_binaries(&[binary], &HostRoot::system()).expect("closure");
        let libraries = ldd(binary);
        assert!(!libraries.is_empty(), "ldd {binary} printed no library");

        // Every library ldd loads is in the closure, and nothing else is.
        let mut expected: BTreeSet<PathBuf> = libraries
            .iter()
            .map(|l| fs::canonicalize(l).expect("canonical"))
            .collect();
        expected.insert(fs::canonicalize(binary).expect("canonical"));
        assert_eq!(canonical_files(&items), expected, "closure of {binary}");

        // And in the image, the paths the loader uses lead to those files.
        for path in libraries.iter().map(String::as_str).chain([binary]) {
            let item = resolve_in_image(&items, path)
                .unwrap_or_else(|| panic!("{path} does not resolve in the image of {binary}"));
            assert_eq!(item.kind, ItemKind::File, "{path}");
            assert_eq!(
                fs::canonicalize(&item.source).expect("canonical"),
                fs::canonicalize(path).expect("canonical")
            );
        }
    }
    assert!(checked >= 3, "too few binaries to compare on this host");
}

#[test]
fn the_closure_of_bin_sh_has_its_links_dash_libc_and_the_interpreter_chain() {
    let items = host_binaries(&["/bin/sh"], &HostRoot::system()).expect("closure");
    let by_path: BTreeMap<&str, &HostItem> =
        items.iter().map(|i| (i.image_path.as_str(), i)).collect();
    // The links on the way from /bin/sh to dash and from the interpreter to its file, where
    // this host has them (Debian 12 with merged /usr has all of them).
    for link in [
        "/bin",
        "/lib",
        "/lib64",
        "/usr/bin/sh",
        "/usr/lib64/ld-linux-x86-64.so.2",
    ] {
        let is_link = fs::symlink_metadata(link).is_ok_and(|m| m.is_symlink());
        let parent_is_link = fs::symlink_metadata(Path::new(link).parent().expect("parent"))
            .is_ok_and(|m| m.is_symlink());
        if is_link && !parent_is_link {
            let target = fs::read_link(link).expect("readlink");
            let item = by_path
                .get(link)
                .unwrap_or_else(|| panic!("{link} missing"));
            assert_eq!(item.kind, ItemKind::Symlink(target), "{link}");
        }
    }
    let dash = fs::canonicalize("/bin/sh").expect("canonical");
    let dash = dash.to_str().expect("utf-8");
    assert_eq!(
        by_path.get(dash).map(|i| &i.kind),
        Some(&ItemKind::File),
        "{dash}"
    );
    assert!(
        items
            .iter()
            .any(|i| i.kind == ItemKind::File && i.image_path.ends_with("/libc.so.6")),
        "libc.so.6 in {:?}",
        summary(&items)
    );
    let interpreter = if cfg!(target_arch = "x86_64") {
        "/lib64/ld-linux-x86-64.so.2"
    } else {
        return;
    };
    let end = resolve_in_image(&items, interpreter).expect("interpreter resolves");
    assert_eq!(end.kind, ItemKind::File);
    assert_eq!(
        end.source,
        fs::canonicalize(interpreter).expect("canonical")
    );
    // Sorted component-wise, unique.
    let paths: Vec<&Path> = items.iter().map(|i| Path::new(&i.image_path)).collect();
    let mut sorted = paths.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(paths, sorted);
}

// ---- the build context ----

fn context_tree() -> TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    let write = |rel: &str, text: &str| {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    };
    write("a.txt", "a");
    write("b.txt", "b");
    write("notes.md", "n");
    write("site/index.html", "<h1>");
    write("site/css/main.css", "body{}");
    write("sub/c.txt", "c");
    dir
}

/// What `copy SRC DST` from `context` puts in a layer on an empty image: one line per entry
/// (`N path` for a directory the copy creates), and the source of each item. Placement
/// itself is tested in `build::place`; here it shows what the matches mean.
fn copy_items(
    context: &Context,
    src: &str,
    dst: &str,
) -> Result<(Vec<String>, Vec<PathBuf>), InputError> {
    let matches: Vec<(usize, CopyMatch)> = context
        .copy_matches(src)?
        .into_iter()
        .map(|m| (0, m))
        .collect();
    let placement =
        crate::build::place::place(&matches, dst, "/", &crate::layer::ImageIndex::new())
            .unwrap_or_else(|e| panic!("placing {src} at {dst}: {e}"));
    let mut listed = Vec::new();
    let mut sources = Vec::new();
    for (path, placed) in placement {
        match placed {
            crate::build::place::Placed::NewDir => listed.push(format!("N /{path}")),
            crate::build::place::Placed::Item { source, kind, .. } => {
                assert!(source.starts_with(context.root()), "{source:?}");
                listed.push(match kind {
                    ItemKind::File => format!("F /{path}"),
                    ItemKind::Dir => format!("D /{path}"),
                    ItemKind::Symlink(target) => format!("L /{path} -> {}", target.display()),
                    ItemKind::Special => format!("S /{path}"),
                });
                sources.push(source);
            }
        }
    }
    Ok((listed, sources))
}

fn listed(context: &Context, src: &str, dst: &str) -> Vec<String> {
    copy_items(context, src, dst)
        .unwrap_or_else(|e| panic!("copy {src} {dst}: {e}"))
        .0
}

#[test]
fn copy_of_a_file_goes_to_the_path_or_into_the_directory() {
    let dir = context_tree();
    let context = Context::open(dir.path()).expect("open");
    let (items, sources) = copy_items(&context, "a.txt", "/x/").expect("copy");
    assert_eq!(items, lines(&["N /x", "F /x/a.txt"]));
    assert_eq!(sources, [context.root().join("a.txt")]);
    let (items, sources) = copy_items(&context, "./sub/c.txt", "/x/renamed").expect("copy");
    assert_eq!(items, lines(&["N /x", "F /x/renamed"]));
    assert_eq!(sources, [context.root().join("sub/c.txt")]);
    // A leading `/` is the context's top, not the host's.
    assert_eq!(
        listed(&context, "/a.txt", "etc/a"),
        lines(&["N /etc", "F /etc/a"])
    );
}

#[test]
fn copy_of_a_directory_puts_its_contents_under_the_destination() {
    let dir = context_tree();
    let context = Context::open(dir.path()).expect("open");
    assert_eq!(
        listed(&context, "site/", "/srv/www/"),
        lines(&[
            "N /srv",
            "N /srv/www",
            "D /srv/www/css",
            "F /srv/www/css/main.css",
            "F /srv/www/index.html",
        ])
    );
    assert_eq!(
        listed(&context, ".", "/"),
        lines(&[
            "F /a.txt",
            "F /b.txt",
            "F /notes.md",
            "D /site",
            "D /site/css",
            "F /site/css/main.css",
            "F /site/index.html",
            "D /sub",
            "F /sub/c.txt",
        ])
    );
}

#[test]
fn copy_of_a_glob_copies_each_match_into_the_directory() {
    let dir = context_tree();
    let context = Context::open(dir.path()).expect("open");
    assert_eq!(
        listed(&context, "*.txt", "/d/"),
        lines(&["N /d", "F /d/a.txt", "F /d/b.txt"])
    );
    assert_eq!(
        listed(&context, "s*/c.txt", "/d/"),
        lines(&["N /d", "F /d/c.txt"])
    );
    assert_eq!(
        listed(&context, "**/*.css", "/d/"),
        lines(&["N /d", "F /d/main.css"])
    );
    // A matching directory has its contents copied, as Docker does.
    assert!(listed(&context, "si?e", "/d/").contains(&"F /d/index.html".to_owned()));
    // One match: DST may name the file, as for a plain source.
    assert_eq!(listed(&context, "s*/c.txt", "/c"), lines(&["F /c"]));
    let matches = context.copy_matches("*.txt").expect("glob");
    assert_eq!(
        matches.iter().map(CopyMatch::name).collect::<Vec<_>>(),
        ["a.txt", "b.txt"]
    );

    let err = context.copy_matches("*.rs").expect_err("no match");
    assert!(
        matches!(&err, InputError::NoMatch { pattern } if pattern == "*.rs"),
        "{err:?}"
    );
}

#[test]
fn kilnignore_excludes_files_and_directories_and_negation_re_includes() {
    let dir = context_tree();
    let root = dir.path();
    fs::write(root.join("debug.log"), "x").expect("write");
    fs::write(root.join("keep.log"), "x").expect("write");
    fs::create_dir_all(root.join("build/out")).expect("mkdir");
    fs::write(root.join("build/out/bin"), "x").expect("write");
    fs::write(root.join("build/keep"), "x").expect("write");
    fs::write(root.join("site/draft.html"), "x").expect("write");
    fs::write(
        root.join(".kilnignore"),
        "# build output\n*.log\n!keep.log\nbuild/\n!build/keep\n/notes.md\nsite/draft.*\n.kilnignore\n",
    )
    .expect("write");
    let context = Context::open(root).expect("open");
    assert_eq!(
        listed(&context, ".", "/app/"),
        lines(&[
            "N /app",
            "F /app/a.txt",
            "F /app/b.txt",
            "F /app/keep.log",
            "D /app/site",
            "D /app/site/css",
            "F /app/site/css/main.css",
            "F /app/site/index.html",
            "D /app/sub",
            "F /app/sub/c.txt",
        ])
    );
    assert!(
        context.is_excluded(Path::new("build/keep"), false),
        "git semantics"
    );
    assert!(!context.is_excluded(Path::new("keep.log"), false));

    for src in [
        "build",
        "build/out/bin",
        "notes.md",
        "debug.log",
        ".kilnignore",
    ] {
        let err = context.copy_matches(src).expect_err(src);
        assert!(
            matches!(&err, InputError::Excluded { path } if path == src),
            "{src}: {err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!("copy source is excluded by .kilnignore: {src}")
        );
    }
    assert_eq!(
        listed(&context, "*.log", "/x/"),
        lines(&["N /x", "F /x/keep.log"])
    );
    let err = context
        .copy_matches("bui*")
        .expect_err("all matches excluded");
    assert!(matches!(&err, InputError::Excluded { .. }), "{err:?}");
}

#[test]
fn copy_sources_may_not_leave_the_context() {
    let outer = tempfile::tempdir().expect("tempdir");
    fs::write(outer.path().join("secret"), "s").expect("write");
    let root = outer.path().join("project");
    fs::create_dir_all(root.join("site/inner")).expect("mkdir");
    fs::write(root.join("site/index.html"), "x").expect("write");
    let context = Context::open(&root).expect("open");

    for src in ["../secret", "site/../../secret", "/../secret"] {
        let err = context.copy_matches(src).expect_err(src);
        assert!(
            matches!(&err, InputError::EscapesContext { path } if path == src),
            "{src}: {err:?}"
        );
    }
    // `..` that stays inside is fine.
    assert_eq!(
        listed(&context, "site/inner/../index.html", "/x"),
        lines(&["F /x"])
    );

    // A link in the copied tree pointing out (relative, absolute, or through another link).
    let cases = [
        ("site/evil", "../../secret"),
        ("site/abs", "/etc/passwd"),
        ("site/inner/via", "../../hop/x"),
    ];
    // Outside the copied tree, so only `via` (which goes through it) is judged.
    symlink("..", root.join("hop")).expect("symlink");
    for (link, target) in cases {
        symlink(target, root.join(link)).expect("symlink");
        let err = context.copy_matches("site").expect_err(link);
        match &err {
            InputError::SymlinkEscapes { link: l, target: t } => {
                assert_eq!((l.as_str(), t.as_str()), (link, target));
            }
            other => panic!("{link}: {other:?}"),
        }
        assert!(err.to_string().contains(link), "{err}");
        fs::remove_file(root.join(link)).expect("rm");
    }
    fs::remove_file(root.join("hop")).expect("rm");

    // The source itself a link out of the context.
    symlink("../secret", root.join("leak")).expect("symlink");
    let err = context.copy_matches("leak").expect_err("leak");
    assert!(
        matches!(&err, InputError::SymlinkEscapes { link, .. } if link == "leak"),
        "{err:?}"
    );
}

#[test]
fn links_inside_the_context_are_kept_and_a_linked_source_is_followed() {
    let dir = context_tree();
    let root = dir.path();
    symlink("index.html", root.join("site/home.html")).expect("symlink");
    symlink("../a.txt", root.join("site/a")).expect("symlink");
    symlink("css", root.join("site/style")).expect("symlink");
    symlink("missing", root.join("site/dangling")).expect("symlink");
    symlink(root.join("b.txt"), root.join("site/absolute-inside")).expect("symlink");
    symlink("site/index.html", root.join("top")).expect("symlink");
    symlink("site", root.join("site-link")).expect("symlink");
    let context = Context::open(root).expect("open");

    let found = listed(&context, "site", "/w");
    for expected in [
        "L /w/home.html -> index.html",
        "L /w/a -> ../a.txt",
        "L /w/style -> css",
        "L /w/dangling -> missing",
    ] {
        assert!(
            found.contains(&expected.to_owned()),
            "{expected} in {found:?}"
        );
    }

    // The top-level source is followed: the file's content, under the link's name.
    let (items, sources) = copy_items(&context, "top", "/x/").expect("copy");
    assert_eq!(items, lines(&["N /x", "F /x/top"]));
    assert_eq!(sources, [context.root().join("site/index.html")]);
    assert_eq!(
        listed(&context, "site-link/css", "/c/"),
        lines(&["N /c", "F /c/main.css"])
    );
}

#[test]
fn a_missing_source_is_an_error_naming_it() {
    let dir = context_tree();
    let context = Context::open(dir.path()).expect("open");
    let err = context.copy_matches("nope/x").expect_err("missing");
    assert!(
        matches!(&err, InputError::CopySourceNotFound { path } if path == "nope/x"),
        "{err:?}"
    );
    let err = Context::open(dir.path().join("absent")).expect_err("no context");
    assert!(matches!(&err, InputError::BadContext { .. }), "{err:?}");
}

#[test]
fn stat_reports_size_mtime_and_inode() {
    let dir = context_tree();
    let context = Context::open(dir.path()).expect("open");
    let matches = context.copy_matches("a.txt").expect("copy");
    let path = &matches[0].source;
    let before = stat(path).expect("stat");
    let meta = fs::metadata(path).expect("metadata");
    assert_eq!(before.size, 1);
    assert_eq!(before.ino, meta.ino());
    assert_eq!(before.dev, meta.dev());

    let when = std::time::UNIX_EPOCH + std::time::Duration::new(1_000_000_000, 123_456_789);
    fs::File::options()
        .write(true)
        .open(path)
        .and_then(|f| f.set_modified(when))
        .expect("set mtime");
    let after = stat(path).expect("stat");
    assert_eq!(after.mtime_ns, 1_000_000_000_123_456_789);
    assert_ne!(after, before);
}
