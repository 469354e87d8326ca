//! Build facts for `kiln version` and `kiln info`: the git commit the binary is built from
//! (`KILN_GIT_COMMIT`, from the environment when a packager sets it, else `git`, else
//! `unknown`) and the compiler's version (`KILN_RUSTC_VERSION`). Reruns only when the
//! commit or the compiler may have changed, so that ordinary edits do not rebuild more.
//!
//! It also compiles `--init`'s pid 1 (`src/runtime/init/pid1.rs`, see there) on its own:
//! a static executable without std or libc, which kiln embeds (`runtime::init`).

use std::path::PathBuf;
use std::process::Command;

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=KILN_GIT_COMMIT");
    println!("cargo:rerun-if-env-changed=RUSTC");
    let commit = std::env::var("KILN_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let commit = output("git", &["rev-parse", "--short=12", "HEAD"])?;
            // Rebuild when HEAD moves: HEAD itself and the branch file it names.
            if let Some(head) = output("git", &["rev-parse", "--git-path", "HEAD"]) {
                println!("cargo:rerun-if-changed={head}");
            }
            if let Some(branch) = output("git", &["symbolic-ref", "-q", "HEAD"])
                && let Some(file) = output("git", &["rev-parse", "--git-path", &branch])
                && PathBuf::from(&file).exists()
            {
                println!("cargo:rerun-if-changed={file}");
            }
            Some(commit)
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=KILN_GIT_COMMIT={commit}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = output(&rustc, &["--version"]).unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=KILN_RUSTC_VERSION={version}");
    build_init(&rustc);
}

/// `OUT_DIR/kiln-init`: `pid1.rs` alone, `panic=abort`, no start files, no libc, static.
fn build_init(rustc: &str) {
    let source = "src/runtime/init/pid1.rs";
    println!("cargo:rerun-if-changed={source}");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = std::env::var("TARGET").expect("cargo sets TARGET");
    let status = Command::new(rustc)
        .args(["--edition", "2024", "--crate-type", "bin", "--crate-name"])
        .args(["kiln_init", "--target", &target])
        .args([
            "-C",
            "panic=abort",
            "-C",
            "opt-level=s",
            "-C",
            "debuginfo=0",
        ])
        .args(["-C", "relocation-model=static", "-C", "strip=symbols"])
        .args(["-C", "link-arg=-nostartfiles", "-C", "link-arg=-nostdlib"])
        .args(["-C", "link-arg=-static", "-o"])
        .arg(out.join("kiln-init"))
        .arg(source)
        .status()
        .expect("run rustc for kiln-init");
    assert!(status.success(), "compiling {source} failed");
}
