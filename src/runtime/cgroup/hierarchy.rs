//! [`Hierarchy`]: which cgroup filesystem kiln uses (detected from the mount table), and
//! creating, finding and listing cgroups in it. All file access goes through [`Ops`], which
//! reports each change to the observer and attaches paths and explanations to errors.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use super::limits::{LimitWrite, v1_writes, v2_writes};
use super::mountinfo::{parse_mountinfo, parse_proc_cgroup};
use super::{
    Cgroup, CgroupError, CgroupEvent, CgroupFs, DEVICE_RULES, DeviceRule, Limits, RealFs,
    V1_CONTROLLERS, V2_CONTROLLERS, V2_OPTIONAL_CONTROLLERS, Version, device_program,
};
use crate::runtime::ebpf::Insn;

/// Where the kernel checks kiln's device rules (see [`Hierarchy::device_rules`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRulesAt {
    /// The mount point of v1's `devices` controller, when kiln writes its files.
    pub v1: Option<PathBuf>,
    /// The cgroup2 mount point where each container's device program is attached.
    pub program: Option<PathBuf>,
}

/// Sees every change before it is made (`kiln run --trace`).
pub type Observer = Arc<dyn Fn(&CgroupEvent<'_>) + Send + Sync>;

/// The cgroup filesystem kiln uses. Cheap to clone; [`Cgroup`]s share it.
#[derive(Clone)]
pub struct Hierarchy {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) version: Version,
    /// The controllers kiln can use: v2, those of [`V2_CONTROLLERS`] and
    /// [`V2_OPTIONAL_CONTROLLERS`] the root's `cgroup.controllers` lists; v1, those of
    /// [`V1_CONTROLLERS`] that are mounted.
    pub(crate) controllers: BTreeSet<String>,
    /// Where kiln itself runs, from `/proc/self/cgroup` (controller → path; v2: `""`).
    own: BTreeMap<String, String>,
    pub(crate) ops: Ops,
}

/// File access with tracing and error context.
#[derive(Clone)]
pub(crate) struct Ops {
    fs: Arc<dyn CgroupFs>,
    observer: Option<Observer>,
}

impl Ops {
    pub(crate) fn read(&self, path: &Path) -> Result<String, CgroupError> {
        self.fs
            .read(path)
            .map_err(|source| CgroupError::io("read", path, source))
    }

    /// `None` when the file does not exist.
    pub(crate) fn read_if_exists(&self, path: &Path) -> Result<Option<String>, CgroupError> {
        match self.fs.read(path) {
            Ok(text) => Ok(Some(text)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(CgroupError::io("read", path, source)),
        }
    }

    pub(crate) fn write(&self, path: &Path, value: &str) -> Result<(), CgroupError> {
        self.trace(CgroupEvent::Write { path, value });
        self.fs
            .write(path, value)
            .map_err(|source| CgroupError::io(format!("write `{value}` to"), path, source))
    }

    /// Creates `path`; `Ok(false)` when it already existed.
    pub(crate) fn mkdir(&self, path: &Path) -> Result<bool, CgroupError> {
        self.trace(CgroupEvent::Mkdir(path));
        match self.fs.mkdir(path) {
            Ok(()) => Ok(true),
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(source) => Err(CgroupError::dir("create", path, source)),
        }
    }

    /// The raw result: callers decide what ENOENT and EBUSY mean.
    pub(crate) fn rmdir(&self, path: &Path) -> io::Result<()> {
        self.trace(CgroupEvent::Rmdir(path));
        self.fs.rmdir(path)
    }

    pub(crate) fn exists(&self, path: &Path) -> bool {
        self.fs.exists(path)
    }

    /// Attaches the program of `rules` to `dir`; returns the program's id.
    pub(crate) fn attach_device_program(
        &self,
        dir: &Path,
        rules: &[DeviceRule],
        program: &[Insn],
    ) -> Result<u32, CgroupError> {
        self.trace(CgroupEvent::AttachDeviceProgram {
            dir,
            rules,
            instructions: program.len(),
        });
        self.fs
            .attach_device_program(dir, program)
            .map_err(|source| CgroupError::device_program(dir, source))
    }

    /// The ids of the device programs attached to `dir`.
    pub(crate) fn device_programs(&self, dir: &Path) -> Result<Vec<u32>, CgroupError> {
        self.fs
            .device_programs(dir)
            .map_err(|source| CgroupError::device_program(dir, source))
    }

    /// `dir` and every cgroup below it, each before its children; empty when `dir` does
    /// not exist.
    pub(crate) fn subtree(&self, dir: &Path) -> Result<Vec<PathBuf>, CgroupError> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_owned()];
        while let Some(dir) = pending.pop() {
            let mut children = match self.fs.subdirs(&dir) {
                Ok(children) => children,
                Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
                Err(source) => return Err(CgroupError::dir("list", &dir, source)),
            };
            children.sort_unstable_by(|a, b| b.cmp(a));
            pending.extend(children.into_iter().map(|child| dir.join(child)));
            found.push(dir);
        }
        Ok(found)
    }

    pub(crate) fn trace(&self, event: CgroupEvent<'_>) {
        if let Some(observer) = &self.observer {
            observer(&event);
        }
    }
}

impl Inner {
    /// The distinct directories of cgroup `name`: one on v2, one per v1 hierarchy kiln
    /// uses (co-mounted controllers share one).
    pub(crate) fn dirs(&self, name: &str) -> Vec<PathBuf> {
        self.bases().iter().map(|base| base.join(name)).collect()
    }

    /// The root directory of each hierarchy kiln uses (on a hybrid machine, the unified
    /// one too).
    pub(crate) fn bases(&self) -> Vec<PathBuf> {
        match &self.version {
            Version::V2 { root } => vec![root.clone()],
            Version::V1 { mounts, unified } => {
                let mut bases: Vec<PathBuf> = mounts.values().cloned().collect();
                bases.extend(unified.iter().cloned());
                bases.sort();
                bases.dedup();
                bases
            }
        }
    }

    /// The directory of cgroup `name` where its device program is attached: in the v2
    /// hierarchy, or the unified one of a hybrid machine; `None` on pure v1.
    pub(crate) fn device_dir(&self, name: &str) -> Option<PathBuf> {
        match &self.version {
            Version::V2 { root } => Some(root.join(name)),
            Version::V1 { unified, .. } => unified.as_ref().map(|base| base.join(name)),
        }
    }

    /// Whether v1's `devices` controller applies [`DEVICE_RULES`] to kiln's cgroups.
    pub(crate) fn v1_devices(&self) -> bool {
        matches!(self.version, Version::V1 { .. }) && self.has("devices")
    }

    /// The directory of cgroup `name` that holds `controller`'s files; `None` when v1 has
    /// no such hierarchy.
    pub(crate) fn dir(&self, controller: &str, name: &str) -> Option<PathBuf> {
        match &self.version {
            Version::V2 { root } => Some(root.join(name)),
            Version::V1 { mounts, .. } => mounts.get(controller).map(|base| base.join(name)),
        }
    }

    pub(crate) fn has(&self, controller: &str) -> bool {
        self.controllers.contains(controller)
    }

    /// Applies `writes` to cgroup `name`.
    pub(crate) fn apply(&self, name: &str, writes: &[LimitWrite]) -> Result<(), CgroupError> {
        for write in writes {
            let dir = self
                .dir(write.controller, name)
                .ok_or_else(|| self.missing(write.controller))?;
            let path = dir.join(write.file);
            if write.only_if_exists && !self.ops.exists(&path) {
                continue;
            }
            self.ops.write(&path, &write.value)?;
        }
        Ok(())
    }

    /// The writes that apply `limits` to cgroup `name` (on v1 this reads the current
    /// memory limit: the order of the two memory files depends on it).
    pub(crate) fn limit_writes(
        &self,
        name: &str,
        limits: &Limits,
    ) -> Result<Vec<LimitWrite>, CgroupError> {
        limits.validate()?;
        for (controller, wanted) in [
            ("memory", limits.memory.is_some()),
            ("cpu", limits.cpus.is_some()),
            ("pids", limits.pids.is_some()),
        ] {
            if wanted && !self.has(controller) {
                return Err(self.missing(controller));
            }
        }
        Ok(match self.version {
            Version::V2 { .. } => v2_writes(limits),
            Version::V1 { .. } => {
                let memory_rises = match (limits.memory, self.dir("memory", name)) {
                    (Some(new), Some(dir)) => {
                        let path = dir.join("memory.limit_in_bytes");
                        match self.ops.read_if_exists(&path)? {
                            Some(text) => super::limits::parse_limit(&text)
                                .ok_or_else(|| CgroupError::Parse {
                                    path,
                                    content: text.trim().to_owned(),
                                })?
                                .is_some_and(|current| new > current),
                            None => false,
                        }
                    }
                    _ => false,
                };
                v1_writes(limits, memory_rises)
            }
        })
    }

    pub(crate) fn missing(&self, controller: &str) -> CgroupError {
        let controller = match controller {
            "memory" => "memory",
            "cpu" => "cpu",
            "pids" => "pids",
            "cpuacct" => "cpuacct",
            _ => "freezer",
        };
        let (version, help) = match self.version {
            Version::V2 { .. } => (
                "v2",
                "it is disabled at boot (cgroup_disable=) or still bound to a v1 hierarchy; boot with systemd.unified_cgroup_hierarchy=1 or cgroup_no_v1=all",
            ),
            Version::V1 { .. } => (
                "v1",
                "mount its hierarchy, e.g. `mkdir /sys/fs/cgroup/pids && mount -t cgroup -o pids none /sys/fs/cgroup/pids`",
            ),
        };
        CgroupError::ControllerMissing {
            controller,
            version,
            help,
        }
    }
}

impl Hierarchy {
    /// The machine's cgroup filesystem, from `/proc/self/mountinfo`.
    pub fn detect() -> Result<Hierarchy, CgroupError> {
        Hierarchy::at(Path::new("/"))
    }

    /// Like [`detect`](Hierarchy::detect), with `fs_root` standing for `/`: reads
    /// `fs_root/proc/self/mountinfo` and `fs_root/proc/self/cgroup` (optional) and uses the
    /// mount points below `fs_root`. For tests on a fake tree.
    pub fn at(fs_root: &Path) -> Result<Hierarchy, CgroupError> {
        let read = |relative: &str| {
            let path = fs_root.join(relative);
            std::fs::read_to_string(&path).map_err(|source| CgroupError::Detect { path, source })
        };
        let mounts = parse_mountinfo(&read("proc/self/mountinfo")?);
        let own = read("proc/self/cgroup")
            .map(|text| parse_proc_cgroup(&text))
            .unwrap_or_default();
        let rebase =
            |mount_point: &Path| fs_root.join(mount_point.strip_prefix("/").unwrap_or(mount_point));
        let fs: Arc<dyn CgroupFs> = Arc::new(RealFs);

        let v2 = mounts.v2.as_deref().map(rebase);
        let v2_controllers = match &v2 {
            Some(root) => v2_available(fs.as_ref(), root),
            None => BTreeSet::new(),
        };
        let v1: BTreeMap<String, PathBuf> = mounts
            .v1
            .iter()
            .filter(|(controller, _)| V1_CONTROLLERS.contains(&controller.as_str()))
            .map(|(controller, mount_point)| (controller.clone(), rebase(mount_point)))
            .collect();
        let needed = |has: &dyn Fn(&str) -> bool| V2_CONTROLLERS.iter().filter(|c| has(c)).count();
        let v2_score = needed(&|c| v2_controllers.contains(c));
        let v1_score = needed(&|c| v1.contains_key(c));
        let v1_complete = v1_score == V2_CONTROLLERS.len() && v1.contains_key("cpuacct");

        let version = match v2 {
            Some(root)
                if v2_score == V2_CONTROLLERS.len() || (!v1_complete && v2_score >= v1_score) =>
            {
                Version::V2 { root }
            }
            // A hybrid machine's cgroup2 mount, even without controllers, takes device
            // programs.
            v2 if !v1.is_empty() => Version::V1 {
                mounts: v1,
                unified: v2,
            },
            Some(root) => Version::V2 { root },
            None => return Err(CgroupError::NotMounted),
        };
        Ok(Hierarchy::build(version, fs, own))
    }

    /// A hierarchy of the given version on the given filesystem (a fake one in tests). On
    /// v2 the usable controllers are read from the root's `cgroup.controllers`.
    pub fn new(version: Version, fs: Arc<dyn CgroupFs>) -> Hierarchy {
        Hierarchy::build(version, fs, BTreeMap::new())
    }

    fn build(version: Version, fs: Arc<dyn CgroupFs>, own: BTreeMap<String, String>) -> Hierarchy {
        let controllers = match &version {
            Version::V2 { root } => v2_available(fs.as_ref(), root),
            Version::V1 { mounts, .. } => mounts
                .keys()
                .filter(|c| V1_CONTROLLERS.contains(&c.as_str()))
                .cloned()
                .collect(),
        };
        Hierarchy {
            inner: Arc::new(Inner {
                version,
                controllers,
                own,
                ops: Ops { fs, observer: None },
            }),
        }
    }

    /// The same hierarchy, reporting every change to `observer` first (cgroups created
    /// from it inherit the observer).
    pub fn with_observer(&self, observer: Observer) -> Hierarchy {
        let inner = &self.inner;
        Hierarchy {
            inner: Arc::new(Inner {
                version: inner.version.clone(),
                controllers: inner.controllers.clone(),
                own: inner.own.clone(),
                ops: Ops {
                    fs: Arc::clone(&inner.ops.fs),
                    observer: Some(observer),
                },
            }),
        }
    }

    pub fn version(&self) -> &Version {
        &self.inner.version
    }

    /// Where the kernel checks kiln's device rules here: the v1 `devices` hierarchy, and
    /// the cgroup2 hierarchy that takes device programs (v2, or hybrid's unified one).
    pub fn device_rules(&self) -> DeviceRulesAt {
        let inner = &self.inner;
        DeviceRulesAt {
            v1: inner
                .v1_devices()
                .then(|| inner.dir("devices", ""))
                .flatten()
                .map(|dir| dir.components().collect()),
            program: inner.device_dir("").map(|dir| dir.components().collect()),
        }
    }

    /// The controllers kiln can use here (see [`V1_CONTROLLERS`], [`V2_CONTROLLERS`]).
    pub fn controllers(&self) -> &BTreeSet<String> {
        &self.inner.controllers
    }

    /// The cgroup kiln itself runs in for `controller` (`""` for v2), relative to that
    /// hierarchy's root, from `/proc/self/cgroup`.
    pub fn own_cgroup(&self, controller: &str) -> Option<&str> {
        self.inner.own.get(controller).map(String::as_str)
    }

    /// Creates cgroup `name` (a relative path like `kiln/<root-hash>/<container-id>`) and
    /// its missing parents, and applies `limits`. Fails with [`CgroupError::Exists`] when
    /// it exists already. On any error, removes the directories it made.
    pub fn create(&self, name: &str, limits: &Limits) -> Result<Cgroup, CgroupError> {
        self.create_with_devices(name, limits, &DEVICE_RULES)
    }

    /// [`create`](Hierarchy::create) with the device rules `rules` (an allow-list over
    /// "deny everything", see [`super::devices`]) instead of [`DEVICE_RULES`]: a
    /// container's `--device` nodes, or every device for `--privileged`. v1's
    /// `devices.allow` gets each rule; the v2 program is built from the same list.
    pub fn create_with_devices(
        &self,
        name: &str,
        limits: &Limits,
        rules: &[DeviceRule],
    ) -> Result<Cgroup, CgroupError> {
        validate_name(name)?;
        let inner = &self.inner;
        let mut writes = inner.limit_writes(name, limits)?;
        let program = if rules == DEVICE_RULES {
            default_program().to_vec()
        } else {
            device_program(rules).map_err(CgroupError::BadDeviceRules)?
        };
        if inner.v1_devices() {
            writes.push(super::limits::write("devices", "devices.deny", "a".into()));
            for rule in rules {
                writes.push(super::limits::write(
                    "devices",
                    "devices.allow",
                    rule.to_string(),
                ));
            }
        }
        let mut created = Vec::new();
        let result = self
            .make_dirs(name, &mut created)
            .and_then(|()| inner.apply(name, &writes))
            .and_then(|()| self.attach_device_program(name, rules, &program));
        if let Err(err) = result {
            // Parents may be shared with a concurrent `create`: their rmdir then fails,
            // which is right.
            for dir in created.iter().rev() {
                let _ = inner.ops.rmdir(dir);
            }
            return Err(err);
        }
        Ok(Cgroup::new(name.to_owned(), Arc::clone(inner)))
    }

    /// Attaches `program` (of `rules`) to cgroup `name` where one can be (see
    /// [`Inner::device_dir`]). On a hybrid machine whose v1 rules are in place, a failure
    /// is reported to the observer and the v1 rules stand alone; elsewhere it is an error.
    fn attach_device_program(
        &self,
        name: &str,
        rules: &[DeviceRule],
        program: &[Insn],
    ) -> Result<(), CgroupError> {
        let inner = &self.inner;
        let Some(dir) = inner.device_dir(name) else {
            return Ok(());
        };
        match inner.ops.attach_device_program(&dir, rules, program) {
            Ok(_) => Ok(()),
            Err(err) if inner.v1_devices() => {
                inner.ops.trace(CgroupEvent::DeviceProgramSkipped {
                    dir: &dir,
                    reason: &err.to_string(),
                });
                Ok(())
            }
            Err(err) => Err(err),
        }
    }

    /// Makes the directories of cgroup `name`, pushing each one it made to `created`.
    fn make_dirs(&self, name: &str, created: &mut Vec<PathBuf>) -> Result<(), CgroupError> {
        let inner = &self.inner;
        let components: Vec<&str> = name.split('/').collect();
        let (leaf, parents) = components.split_last().expect("names are not empty");
        let enable: Vec<&str> = V2_CONTROLLERS
            .into_iter()
            .filter(|c| inner.has(c))
            .collect();
        let optional: Vec<&str> = V2_OPTIONAL_CONTROLLERS
            .into_iter()
            .filter(|c| inner.has(c))
            .collect();
        let v2 = matches!(inner.version, Version::V2 { .. });
        let in_base = |mut dir: PathBuf, created: &mut Vec<PathBuf>| {
            for parent in parents {
                if v2 {
                    enable_controllers(&inner.ops, &dir, &enable)?;
                    let _ = enable_controllers(&inner.ops, &dir, &optional);
                }
                dir.push(parent);
                if !inner.ops.exists(&dir) && inner.ops.mkdir(&dir)? {
                    created.push(dir.clone());
                }
            }
            if v2 {
                enable_controllers(&inner.ops, &dir, &enable)?;
                let _ = enable_controllers(&inner.ops, &dir, &optional);
            }
            dir.push(leaf);
            if !inner.ops.mkdir(&dir)? {
                return Err(CgroupError::Exists { path: dir });
            }
            created.push(dir);
            Ok(())
        };
        for base in inner.bases() {
            // The parents (`kiln`, `kiln/<root>`) are shared: another kiln's cleanup may
            // remove one, empty, between our check and our mkdir below it (ENOENT). Make
            // the path again then, a bounded number of times.
            let mut tries = 0;
            loop {
                match in_base(base.clone(), created) {
                    Err(err) if err.is_missing_parent() && tries < 8 => tries += 1,
                    other => break other?,
                }
            }
        }
        Ok(())
    }

    /// The cgroup `name` if it exists (in any v1 hierarchy).
    pub fn open(&self, name: &str) -> Result<Option<Cgroup>, CgroupError> {
        validate_name(name)?;
        let inner = &self.inner;
        let exists = inner.dirs(name).iter().any(|dir| inner.ops.exists(dir));
        Ok(exists.then(|| Cgroup::new(name.to_owned(), Arc::clone(inner))))
    }

    /// Removes cgroup `name` (in every v1 hierarchy) if it has neither processes nor child
    /// cgroups, e.g. a `kiln/<root-hash>` parent once its last container is gone; `Ok(false)`
    /// when it is still in use. A concurrent [`create`](Hierarchy::create) below it may
    /// then fail: callers that share parents serialize the two (kiln's state lock).
    pub fn remove_if_empty(&self, name: &str) -> Result<bool, CgroupError> {
        validate_name(name)?;
        let mut removed_all = true;
        for dir in self.inner.dirs(name) {
            match self.inner.ops.rmdir(&dir) {
                Ok(()) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(err) if matches!(err.raw_os_error(), Some(libc::EBUSY | libc::ENOTEMPTY)) => {
                    removed_all = false;
                }
                Err(source) => return Err(CgroupError::dir("remove", &dir, source)),
            }
        }
        Ok(removed_all)
    }

    /// `prefix` and every cgroup below it (in any v1 hierarchy), as names, sorted; empty
    /// when `prefix` does not exist.
    pub fn list(&self, prefix: &str) -> Result<Vec<String>, CgroupError> {
        validate_name(prefix)?;
        let inner = &self.inner;
        let mut names = BTreeSet::new();
        for base in inner.bases() {
            for dir in inner.ops.subtree(&base.join(prefix))? {
                if let Ok(relative) = dir.strip_prefix(&base) {
                    names.insert(relative.to_string_lossy().into_owned());
                }
            }
        }
        Ok(names.into_iter().collect())
    }
}

impl fmt::Debug for Hierarchy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hierarchy")
            .field("version", &self.inner.version)
            .field("controllers", &self.inner.controllers)
            .field("own", &self.inner.own)
            .finish_non_exhaustive()
    }
}

/// The program of [`DEVICE_RULES`], assembled once.
fn default_program() -> &'static [Insn] {
    static PROGRAM: OnceLock<Vec<Insn>> = OnceLock::new();
    PROGRAM.get_or_init(|| device_program(&DEVICE_RULES).expect("the default rules assemble"))
}

/// The controllers of [`V2_CONTROLLERS`] and [`V2_OPTIONAL_CONTROLLERS`] listed in
/// `root/cgroup.controllers`.
fn v2_available(fs: &dyn CgroupFs, root: &Path) -> BTreeSet<String> {
    let listed = fs
        .read(&root.join("cgroup.controllers"))
        .unwrap_or_default();
    listed
        .split_whitespace()
        .filter(|c| V2_CONTROLLERS.contains(c) || V2_OPTIONAL_CONTROLLERS.contains(c))
        .map(str::to_owned)
        .collect()
}

/// Makes sure `dir`'s `cgroup.subtree_control` enables each of `controllers` for its
/// children, writing only the missing ones.
fn enable_controllers(ops: &Ops, dir: &Path, controllers: &[&str]) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.subtree_control");
    let enabled = ops.read(&path)?;
    let enabled: BTreeSet<&str> = enabled.split_whitespace().collect();
    let missing: Vec<String> = controllers
        .iter()
        .filter(|c| !enabled.contains(*c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    ops.write(&path, &missing.join(" "))
}

/// A cgroup name is a relative path of plain components: no `.`/`..`, nothing that could
/// be mistaken for an interface file (`cgroup.*`), no control characters.
pub(crate) fn validate_name(name: &str) -> Result<(), CgroupError> {
    let bad = |reason| CgroupError::BadName {
        name: name.to_owned(),
        reason,
    };
    if name.is_empty() {
        return Err(bad("it is empty"));
    }
    if name.starts_with('/') {
        return Err(bad("it must be relative"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("it contains a control character"));
    }
    for component in name.split('/') {
        match component {
            "" => return Err(bad("it has an empty component")),
            "." | ".." => return Err(bad("it has a `.` or `..` component")),
            _ if component.starts_with("cgroup.") => {
                return Err(bad("a component starts with `cgroup.`"));
            }
            _ => {}
        }
    }
    Ok(())
}
