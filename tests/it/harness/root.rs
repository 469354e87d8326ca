//! A temporary state root (`KILN_ROOT`) that checks, when it goes, that kiln left nothing
//! behind. Every test that runs kiln against state uses one, so every test checks that.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;

use super::host;
use super::kiln::Kiln;

/// A fresh state root. Dropped at the end of a passing test, it asserts that nothing of
/// kiln's is left: no process naming it, no mount below it (the network namespace pins
/// included), no cgroup of it, no container record, no kiln host namespace, DNS daemon or
/// impairment engine, no process whose pid a record gave, and no kiln interface in the
/// machine's namespace.
/// Dropped while a test fails, it removes what it can instead (containers, networks), so a
/// failed test does not leave running containers behind.
pub struct Root {
    path: PathBuf,
    /// The temporary directory, removed when the root goes (none for an adopted root,
    /// which is not checked when it goes either: its user checks [`Root::leftovers`]).
    dir: Option<tempfile::TempDir>,
    /// Pids kiln recorded for this root's containers and supervisors (see [`Root::record`]).
    pids: Mutex<Vec<i64>>,
}

impl Root {
    pub fn new() -> Root {
        let dir = tempfile::tempdir().expect("a temporary state root");
        Root {
            path: dir.path().to_path_buf(),
            dir: Some(dir),
            pids: Mutex::new(Vec::new()),
        }
    }

    /// A state root a test did not make (one a book session used): neither removed nor
    /// checked when it goes.
    pub fn adopt(path: &Path) -> Root {
        Root {
            path: path.to_path_buf(),
            dir: None,
            pids: Mutex::new(Vec::new()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `kiln` with this state root.
    pub fn kiln(&self) -> Kiln {
        Kiln::new().root(self.path())
    }

    /// `kiln ps -a --format json`: every container of the root.
    pub fn ps(&self) -> Ps {
        let list = self
            .kiln()
            .args(["ps", "-a", "--format", "json"])
            .run()
            .success()
            .json();
        Ps(list.as_array().expect("ps lists containers").clone())
    }

    /// `kiln network ls --format json`: every network of the root, as listed.
    pub fn networks(&self) -> Vec<Value> {
        let list = self
            .kiln()
            .args(["network", "ls", "--format", "json"])
            .run()
            .success()
            .json();
        list.as_array().expect("network ls lists networks").clone()
    }

    /// The names of [`Root::networks`], in the order listed.
    pub fn network_names(&self) -> Vec<String> {
        self.networks()
            .iter()
            .map(|n| n["name"].as_str().expect("a network name").to_string())
            .collect()
    }

    /// The record (`containers/ID/state.json`) of container `id`; its pids are remembered
    /// and checked when the root goes.
    pub fn record(&self, id: &str) -> Value {
        let path = self.path().join("containers").join(id).join("state.json");
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let record: Value = serde_json::from_slice(&bytes).expect("a JSON record");
        for key in ["pid", "supervisor_pid"] {
            if let Some(pid) = record["state"][key].as_i64() {
                self.pids.lock().unwrap().push(pid);
            }
        }
        record
    }

    /// The container and supervisor pids of every record now (remembered, like
    /// [`Root::record`]'s).
    pub fn pids(&self) -> Vec<i64> {
        let before = self.pids.lock().unwrap().len();
        for entry in std::fs::read_dir(self.path().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            self.record(&entry.file_name().to_string_lossy());
        }
        self.pids.lock().unwrap()[before..].to_vec()
    }

    /// What kiln left of this root, one line each; empty when it is clean.
    pub fn leftovers(&self) -> Vec<String> {
        let root = self.path();
        let mut left = Vec::new();
        for pid in self.pids.lock().unwrap().iter() {
            if host::alive(*pid) {
                left.push(format!("process {pid} ({})", host::cmdline(*pid)));
            }
        }
        for process in host::processes_naming(root) {
            left.push(format!("process {process}"));
        }
        for mount in host::mounts_under(root) {
            left.push(format!("mount {mount}"));
        }
        for cgroup in host::cgroups_of(root) {
            left.push(format!("cgroup {}", cgroup.display()));
        }
        for records in ["containers", "names"] {
            for entry in std::fs::read_dir(root.join(records))
                .into_iter()
                .flatten()
                .flatten()
            {
                left.push(format!("record {}", entry.path().display()));
            }
        }
        for (file, what) in [
            ("net/host.netns", "the kiln host namespace"),
            ("net/netd.pid", "the DNS daemon's pid file"),
            ("net/linkd.pid", "the impairment engine's pid file"),
            ("net/linkd.sock", "the impairment engine's socket"),
            ("net/links.json", "link records"),
            ("hosts", "simulated hosts"),
        ] {
            if root.join(file).exists() {
                left.push(format!("{what} ({file})"));
            }
        }
        for link in host::kiln_links_on_the_machine() {
            left.push(format!("interface {link} in the machine's namespace"));
        }
        left
    }

    /// What is left once what is on its way out had its time: processes that exit on their
    /// own (a DNS daemon whose last network went) are given a few seconds.
    pub fn settled_leftovers(&self) -> Vec<String> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let left = self.leftovers();
            if left.is_empty() || std::time::Instant::now() > deadline {
                return left;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Fails the test if kiln left anything of this root (what [`Drop`] checks too).
    pub fn assert_clean(&self) {
        let left = self.settled_leftovers();
        assert!(
            left.is_empty(),
            "kiln left behind in {}:\n{}",
            self.path().display(),
            left.join("\n")
        );
    }

    /// Removes every container and network of the root, ignoring errors (after a failure,
    /// or after a book session that left them running).
    pub fn clean_up(&self) {
        let listed = |args: &[&str]| -> Vec<Value> {
            let ran = self.kiln().args(args.iter().copied()).run();
            serde_json::from_str::<Value>(&ran.stdout())
                .ok()
                .and_then(|v| v.as_array().cloned())
                .unwrap_or_default()
        };
        for container in listed(&["ps", "-a", "--format", "json"]) {
            if let Some(id) = container["id"].as_str() {
                let _ = self.kiln().args(["rm", "-f", id]).run();
            }
        }
        // What `ps` does not list: kept previous versions of a rollout.
        for entry in std::fs::read_dir(self.path().join("containers"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let id = entry.file_name().to_string_lossy().into_owned();
            let _ = self.kiln().args(["rm", "-f", &id]).run();
        }
        for network in listed(&["network", "ls", "--format", "json"]) {
            if let Some(name) = network["name"].as_str() {
                let _ = self.kiln().args(["network", "rm", name]).run();
            }
        }
        // Simulated hosts (`kiln down` needs the project's file): their pinned namespaces
        // are unpinned, which takes their devices and DNS daemons with them.
        let hosts = self.path().join("hosts");
        for line in host::mounts_under(&hosts) {
            if let Some(point) = line.split(' ').nth(4) {
                let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(&hosts);
    }
}

impl Default for Root {
    fn default() -> Root {
        Root::new()
    }
}

impl AsRef<Path> for Root {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        if self.dir.is_none() {
            return;
        }
        if std::thread::panicking() {
            self.clean_up();
        } else {
            self.assert_clean();
        }
    }
}

/// What `kiln ps -a --format json` listed.
#[derive(Debug)]
pub struct Ps(pub Vec<Value>);

impl Ps {
    /// The container named `name`, or `null` when there is none.
    pub fn get(&self, name: &str) -> Value {
        self.0
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The container named `name`, which must be listed.
    pub fn named(&self, name: &str) -> &Value {
        self.0
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no container {name} in {:?}", self.0))
    }
}

impl std::ops::Deref for Ps {
    type Target = [Value];

    fn deref(&self) -> &[Value] {
        &self.0
    }
}
