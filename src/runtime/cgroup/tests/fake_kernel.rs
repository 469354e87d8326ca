//! A fake cgroup v2 filesystem on a temporary directory that behaves like the kernel where
//! kiln depends on it: `mkdir` makes the interface files of the controllers the parent
//! enables, `cgroup.subtree_control` takes `+ctrl`/`-ctrl` and refuses controllers the
//! cgroup does not have, `rmdir` refuses a cgroup with processes or children, and writes to
//! missing files fail with ENOENT. It records every change, and can be told to fail one
//! write. [`FakeKernel::hybrid`] lays out a hybrid machine instead: v1 hierarchies for
//! devices, pids and freezer beside an empty unified one. Device programs are recorded
//! per directory (the instructions as given) and numbered from 1.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::runtime::cgroup::{CgroupFs, Hierarchy, RealFs, Version};
use crate::runtime::ebpf::{BpfError, Insn};

/// The v1 hierarchies of [`FakeKernel::hybrid`], with the files `mkdir` gives their cgroups.
const HYBRID_V1: [(&str, &[(&str, &str)]); 3] = [
    (
        "devices",
        &[
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm\n"),
        ],
    ),
    ("pids", &[("pids.max", "max"), ("pids.current", "0")]),
    ("freezer", &[("freezer.state", "THAWED")]),
];

/// A device program attached: its id and instructions.
type Attached = (u32, Vec<Insn>);

#[derive(Debug)]
pub(super) struct FakeKernel {
    pub(super) dir: tempfile::TempDir,
    /// Whether new cgroups get `memory.swap.max` (swap accounting on).
    pub(super) swap: bool,
    /// Whether new cgroups get `cgroup.kill` (Linux ≥ 5.14).
    pub(super) kill_file: bool,
    log: Mutex<Vec<String>>,
    /// The next write to a file of this name fails with this errno (`bpf`: the next
    /// device program attachment).
    fail: Mutex<Option<(String, i32)>>,
    /// Device programs attached, by directory: (id, instructions).
    programs: Mutex<BTreeMap<PathBuf, Vec<Attached>>>,
    /// Whether this is [`FakeKernel::hybrid`]'s layout.
    hybrid: bool,
}

impl FakeKernel {
    /// A root cgroup offering `controllers`, with `subtree_control` already enabled there.
    pub(super) fn new(controllers: &str, subtree_control: &str) -> Arc<FakeKernel> {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for (file, content) in [
            ("cgroup.controllers", controllers),
            ("cgroup.subtree_control", subtree_control),
            ("cgroup.procs", "1\n"),
            ("cpu.stat", "usage_usec 0\n"),
            ("memory.stat", ""),
        ] {
            fs::write(root.join(file), content).unwrap();
        }
        Arc::new(FakeKernel {
            dir,
            swap: true,
            kill_file: true,
            log: Mutex::new(Vec::new()),
            fail: Mutex::new(None),
            programs: Mutex::new(BTreeMap::new()),
            hybrid: false,
        })
    }

    /// A hybrid machine: `devices`, `pids` and `freezer` v1 hierarchies and an empty
    /// `unified` cgroup2 one, each a directory of the root.
    pub(super) fn hybrid() -> Arc<FakeKernel> {
        let fake = FakeKernel::new("", "");
        let mut fake = Arc::into_inner(fake).unwrap();
        fake.hybrid = true;
        for hierarchy in HYBRID_V1.iter().map(|(name, _)| *name).chain(["unified"]) {
            let dir = fake.dir.path().join(hierarchy);
            fs::create_dir(&dir).unwrap();
            fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
            if hierarchy == "unified" {
                fs::write(dir.join("cgroup.controllers"), "").unwrap();
                fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
            }
        }
        Arc::new(fake)
    }

    /// [`hybrid`](FakeKernel::hybrid)'s hierarchy.
    pub(super) fn hybrid_hierarchy(self: &Arc<Self>) -> Hierarchy {
        let mounts = HYBRID_V1
            .iter()
            .map(|(name, _)| (name.to_string(), self.root().join(name)))
            .collect();
        Hierarchy::new(
            Version::V1 {
                mounts,
                unified: Some(self.root().join("unified")),
            },
            Arc::clone(self) as Arc<dyn CgroupFs>,
        )
    }

    /// The device programs attached to `relative` (ids and instructions).
    pub(super) fn programs(&self, relative: &str) -> Vec<Attached> {
        let dir = self.dir.path().join(relative);
        self.programs
            .lock()
            .unwrap()
            .get(&dir)
            .cloned()
            .unwrap_or_default()
    }

    /// Like [`new`](FakeKernel::new) with the kernel features chosen.
    pub(super) fn with(
        controllers: &str,
        subtree_control: &str,
        swap: bool,
        kill_file: bool,
    ) -> Arc<FakeKernel> {
        let fake = FakeKernel::new(controllers, subtree_control);
        let mut fake = Arc::into_inner(fake).unwrap();
        fake.swap = swap;
        fake.kill_file = kill_file;
        Arc::new(fake)
    }

    pub(super) fn root(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    pub(super) fn hierarchy(self: &Arc<Self>) -> Hierarchy {
        Hierarchy::new(
            Version::V2 { root: self.root() },
            Arc::clone(self) as Arc<dyn CgroupFs>,
        )
    }

    /// A file's content, relative to the root, without its trailing newline.
    pub(super) fn file(&self, relative: &str) -> String {
        fs::read_to_string(self.dir.path().join(relative))
            .unwrap_or_else(|err| panic!("{relative}: {err}"))
            .trim_end()
            .to_owned()
    }

    pub(super) fn set(&self, relative: &str, content: &str) {
        fs::write(self.dir.path().join(relative), content).unwrap();
    }

    /// Every change so far (`mkdir X`, `write X = V`, `rmdir X`), paths relative to the
    /// root; clears the log.
    pub(super) fn take_log(&self) -> Vec<String> {
        std::mem::take(&mut *self.log.lock().unwrap())
    }

    pub(super) fn fail_next_write(&self, file: &str, errno: i32) {
        *self.fail.lock().unwrap() = Some((file.to_owned(), errno));
    }

    /// The next `mkdir` of a directory named `name` fails with `errno` (ENOENT: its
    /// parent was removed by someone else just before).
    pub(super) fn fail_next_mkdir(&self, name: &str, errno: i32) {
        *self.fail.lock().unwrap() = Some((name.to_owned(), errno));
    }

    fn relative(&self, path: &Path) -> String {
        let relative = path.strip_prefix(self.dir.path()).unwrap_or(path);
        relative.to_string_lossy().into_owned()
    }

    fn record(&self, entry: String) {
        self.log.lock().unwrap().push(entry);
    }
}

fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code)
}

fn words(text: &str) -> BTreeSet<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

impl CgroupFs for FakeKernel {
    fn read(&self, path: &Path) -> io::Result<String> {
        RealFs.read(path)
    }

    fn write(&self, path: &Path, value: &str) -> io::Result<()> {
        self.record(format!("write {} = {value}", self.relative(path)));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let failing = {
            let mut fail = self.fail.lock().unwrap();
            match fail.as_ref() {
                Some((name, _)) if *name == file => fail.take().map(|(_, code)| code),
                _ => None,
            }
        };
        if let Some(code) = failing {
            return Err(errno(code));
        }
        if !path.is_file() {
            return Err(errno(libc::ENOENT));
        }
        let dir = path.parent().unwrap();
        match file.as_str() {
            "cgroup.subtree_control" => {
                let available = words(&fs::read_to_string(dir.join("cgroup.controllers"))?);
                let mut enabled = words(&fs::read_to_string(path)?);
                let has_procs = !fs::read_to_string(dir.join("cgroup.procs"))?
                    .trim()
                    .is_empty();
                for token in value.split_whitespace() {
                    let (sign, name) = token.split_at(1);
                    if !available.contains(name) {
                        return Err(errno(libc::ENOENT));
                    }
                    if sign == "+" && dir != self.dir.path() && has_procs {
                        return Err(errno(libc::EBUSY));
                    }
                    match sign {
                        "+" => enabled.insert(name.to_owned()),
                        "-" => enabled.remove(name),
                        _ => return Err(errno(libc::EINVAL)),
                    };
                }
                fs::write(path, enabled.into_iter().collect::<Vec<_>>().join(" "))
            }
            "cgroup.procs" => {
                let mut procs = fs::read_to_string(path)?;
                procs.push_str(value.trim());
                procs.push('\n');
                fs::write(path, procs)
            }
            "cgroup.freeze" => {
                fs::write(
                    dir.join("cgroup.events"),
                    format!("populated 1\nfrozen {value}\n"),
                )?;
                fs::write(path, value)
            }
            "memory.max" | "memory.swap.max" | "pids.max" => {
                if value != "max" && value.parse::<u64>().is_err() {
                    return Err(errno(libc::EINVAL));
                }
                fs::write(path, value)
            }
            _ => fs::write(path, value),
        }
    }

    fn mkdir(&self, path: &Path) -> io::Result<()> {
        self.record(format!("mkdir {}", self.relative(path)));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        {
            let mut fail = self.fail.lock().unwrap();
            if let Some((failing, code)) = fail.as_ref()
                && *failing == name
            {
                let code = *code;
                *fail = None;
                return Err(errno(code));
            }
        }
        fs::create_dir(path)?;
        if self.hybrid {
            let relative = self.relative(path);
            let hierarchy = relative.split('/').next().unwrap();
            let mut files = vec![("cgroup.procs", "")];
            if let Some((_, v1_files)) = HYBRID_V1.iter().find(|(name, _)| *name == hierarchy) {
                files.extend_from_slice(v1_files);
            } else {
                files.extend([("cgroup.controllers", ""), ("cgroup.subtree_control", "")]);
            }
            for (file, content) in files {
                fs::write(path.join(file), content)?;
            }
            return Ok(());
        }
        let parent = path.parent().unwrap();
        let enabled = words(&fs::read_to_string(parent.join("cgroup.subtree_control"))?);
        let mut files = vec![
            (
                "cgroup.controllers",
                enabled.iter().cloned().collect::<Vec<_>>().join(" "),
            ),
            ("cgroup.subtree_control", String::new()),
            ("cgroup.procs", String::new()),
            ("cgroup.events", "populated 0\nfrozen 0\n".into()),
            ("cgroup.freeze", "0".into()),
            (
                "cpu.stat",
                "usage_usec 0\nuser_usec 0\nsystem_usec 0\n".into(),
            ),
        ];
        if self.kill_file {
            files.push(("cgroup.kill", String::new()));
        }
        if enabled.contains("memory") {
            files.push(("memory.max", "max".into()));
            files.push(("memory.current", "0".into()));
            files.push(("memory.stat", "anon 0\nfile 0\ninactive_file 0\n".into()));
            files.push((
                "memory.events",
                "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n".into(),
            ));
            if self.swap {
                files.push(("memory.swap.max", "max".into()));
            }
        }
        if enabled.contains("cpu") {
            files.push(("cpu.max", "max 100000".into()));
        }
        if enabled.contains("io") {
            files.push(("io.stat", String::new()));
        }
        if enabled.contains("pids") {
            files.push(("pids.max", "max".into()));
            files.push(("pids.current", "0".into()));
        }
        for (file, content) in files {
            fs::write(path.join(file), content)?;
        }
        Ok(())
    }

    fn rmdir(&self, path: &Path) -> io::Result<()> {
        self.record(format!("rmdir {}", self.relative(path)));
        if !path.is_dir() {
            return Err(errno(libc::ENOENT));
        }
        let procs = fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
        if !procs.trim().is_empty() || !RealFs.subdirs(path)?.is_empty() {
            return Err(errno(libc::EBUSY));
        }
        self.programs.lock().unwrap().remove(path);
        fs::remove_dir_all(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn subdirs(&self, path: &Path) -> io::Result<Vec<String>> {
        RealFs.subdirs(path)
    }

    fn attach_device_program(&self, dir: &Path, program: &[Insn]) -> Result<u32, BpfError> {
        self.record(format!(
            "attach device program ({} instructions) to {}",
            program.len(),
            self.relative(dir)
        ));
        let failing = {
            let mut fail = self.fail.lock().unwrap();
            match fail.as_ref() {
                Some((name, _)) if name == "bpf" => fail.take().map(|(_, code)| code),
                _ => None,
            }
        };
        if let Some(code) = failing {
            return Err(BpfError::new("load", errno(code)));
        }
        if !dir.join("cgroup.procs").is_file() {
            return Err(BpfError::new("open the cgroup", errno(libc::ENOENT)));
        }
        let mut programs = self.programs.lock().unwrap();
        let id = programs.values().map(Vec::len).sum::<usize>() as u32 + 1;
        programs
            .entry(dir.to_owned())
            .or_default()
            .push((id, program.to_vec()));
        Ok(id)
    }

    fn device_programs(&self, dir: &Path) -> Result<Vec<u32>, BpfError> {
        if !dir.is_dir() {
            return Err(BpfError::new("open the cgroup", errno(libc::ENOENT)));
        }
        Ok(self
            .programs(&self.relative(dir))
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }
}
