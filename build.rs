//! Build facts for `kiln version` and `kiln info`: the git commit the binary is built from
//! (`KILN_GIT_COMMIT`, from the environment when a packager sets it, else `git`, else
//! `unknown`) and the compiler's version (`KILN_RUSTC_VERSION`). Reruns only when the
//! commit or the compiler may have changed, so that ordinary edits do not rebuild more.

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
}
