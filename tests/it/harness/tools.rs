//! Other programs that read what kiln writes (skopeo, umoci, podman, runc, Python), run
//! and checked. Tests call [`which`](super::which) before the optional ones.

use std::path::Path;
use std::process::Command;

/// Runs `command`, which must succeed; its stdout.
pub fn run(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `skopeo inspect REFERENCE` (`oci:DIR:TAG`, `oci-archive:FILE`), as JSON.
pub fn skopeo_inspect(reference: &str) -> serde_json::Value {
    let text = run(Command::new("skopeo").args(["inspect", reference]));
    serde_json::from_str(&text).expect("skopeo prints JSON")
}

/// `umoci raw unpack --image LAYOUT:TAG ROOTFS`; `--rootless` when not root (owners are
/// not kept then, which no test looks at).
pub fn umoci_unpack(layout: &Path, tag: &str, rootfs: &Path) {
    let mut command = Command::new("umoci");
    command.args(["raw", "unpack"]);
    if !nix::unistd::geteuid().is_root() {
        command.arg("--rootless");
    }
    run(command
        .arg("--image")
        .arg(format!("{}:{tag}", layout.display()))
        .arg(rootfs));
}

/// `runc run` of the bundle `bundle` as container `kiln-NAME-PID`, with a state directory of
/// its own, deleted afterwards whatever happened; what it printed and its status.
pub fn runc_run(bundle: &Path, name: &str) -> std::process::Output {
    let state = tempfile::tempdir().expect("a runc state directory");
    let id = format!("kiln-{name}-{}", std::process::id());
    let out = Command::new("runc")
        .arg("--root")
        .arg(state.path())
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runc runs");
    let _ = Command::new("runc")
        .arg("--root")
        .arg(state.path())
        .args(["delete", "-f", &id])
        .output();
    out
}

/// Has `kiln bundle OPTIONS IMAGE DIR` write a bundle into `dir` (`kiln` names the project
/// and root), replaces its command with `sh -c SCRIPT` and adds `env` (`KEY=VALUE`) to its
/// environment, then runs it with [`runc_run`] as `NAME`: what runc printed, and the bundle's
/// `config.json` as run.
pub fn runc_script(
    kiln: super::Kiln,
    options: &[&str],
    image: &str,
    dir: &Path,
    script: &str,
    env: &[&str],
) -> (std::process::Output, serde_json::Value) {
    kiln.args(["bundle"])
        .args(options)
        .args([image])
        .args([dir])
        .run()
        .success();
    let config = dir.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).expect("config.json"))
            .expect("config.json is JSON");
    spec["process"]["args"] = serde_json::json!(["sh", "-c", script]);
    if !env.is_empty() {
        let vars = spec["process"]["env"]
            .as_array_mut()
            .expect("the bundle has an environment");
        vars.extend(env.iter().map(|v| serde_json::Value::from(*v)));
    }
    std::fs::write(&config, spec.to_string()).expect("writing config.json");
    let name = dir.file_name().expect("a bundle directory name");
    let out = runc_run(dir, &name.to_string_lossy());
    (out, spec)
}

/// `python3 -c SCRIPT ARGS…`, which must succeed; its stdout.
pub fn python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    run(Command::new("python3").arg("-c").arg(script).args(args))
}

/// Writes a tar with the given members using Python's tarfile (kiln's own writer refuses to
/// make hostile archives): `script` adds them to `t`, the open `tarfile.TarFile`.
pub fn hostile_tar(path: &std::path::Path, script: &str) {
    let program = format!(
        "import tarfile, io\nt = tarfile.open({:?}, 'w')\n{script}\nt.close()\n",
        path.display().to_string()
    );
    python(&program, &[]);
}

/// Podman with throw-away storage of its own (vfs), so tests never touch the machine's
/// images; its storage is emptied and removed when dropped.
pub struct Podman {
    storage: tempfile::TempDir,
}

impl Podman {
    pub fn new() -> Podman {
        Podman {
            storage: tempfile::tempdir().expect("a temporary directory"),
        }
    }

    /// `podman --root … --runroot … --storage-driver vfs`.
    pub fn command(&self) -> Command {
        let mut command = Command::new("podman");
        command
            .arg("--root")
            .arg(self.storage.path().join("root"))
            .arg("--runroot")
            .arg(self.storage.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.command().args(["rmi", "-a", "-f"]).output();
        // podman's vfs storage has read-only layers; make them removable for the temp dir.
        let _ = Command::new("chmod")
            .arg("-R")
            .arg("u+w")
            .arg(self.storage.path())
            .status();
    }
}
