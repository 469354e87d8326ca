//! `host-binary`: each executable with its full shared-library closure, at the same paths,
//! symbolic links preserved (every link met while resolving a path becomes a symlink item).
//!
//! The search follows glibc's `ld.so` for each executable separately: the interpreter
//! (PT_INTERP) first; then, breadth first, every DT_NEEDED not already loaded (matched by
//! soname or by the name it was loaded as) is looked up in: the DT_RPATH of the needing object
//! and of its loaders up to the executable (only when the needing object has no DT_RUNPATH),
//! the needing object's own DT_RUNPATH, the directories of `/etc/ld.so.conf` (see `ldconf`),
//! and the system directories (`/lib/<triplet>`, `/usr/lib/<triplet>`, `/lib64` and `/usr/lib64`
//! for 64-bit objects, `/lib`, `/usr/lib`). The triplet comes from the directory the
//! interpreter really lives in, or else from the executable's machine. A candidate is taken
//! only if its ELF class, byte order and machine match the object that needs it.
//! `$ORIGIN` is the real directory of the executable, or the directory a library was found in;
//! `$LIB` is `lib/<triplet>` (Debian's value); `$PLATFORM` is the machine name. Relative
//! search entries (relative to the process's working directory) are skipped, and so are
//! `glibc-hwcaps` subdirectories.
//!
//! Scripts (`#!`) are included as files, and their interpreter is resolved as one more host
//! binary: `#!/usr/bin/python3` brings python's closure; `#!/usr/bin/env NAME` brings `env` and
//! NAME looked up in the standard PATH directories of the host root. Libraries opened with
//! `dlopen` are not DT_NEEDED and are not found here: add them with `host-path`.
//!
//! The image gets no `/etc/ld.so.cache` or `/etc/ld.so.conf` from here, so inside it the
//! loader searches only DT_RPATH/DT_RUNPATH and the system directories: a library that the
//! host finds only through an ld.so.conf directory (e.g. `/usr/local/lib`) is put in the
//! image at that path but will not be found there at run time unless the cache is added too.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::elf::{self, ElfInfo, ElfKind};
use super::resolve::{Follow, HostRoot};
use super::{HostItem, InputError, ItemKind, ItemSet, error::io_err, ldconf, show};

/// Where `#!/usr/bin/env NAME` looks for NAME: Debian's default PATH.
const SCRIPT_PATH: &[&str] = &[
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
];

/// Each executable in `paths` (absolute, inside `host`) with its shared-library closure and
/// every symbolic link on the way, deduplicated by image path and sorted.
pub fn host_binaries(paths: &[&str], host: &HostRoot) -> Result<Vec<HostItem>, InputError> {
    let mut closure = Closure {
        host,
        items: ItemSet::default(),
        parsed: HashMap::new(),
        configured: None,
    };
    let mut queue: VecDeque<Wanted> = paths
        .iter()
        .map(|p| Wanted {
            path: (*p).to_owned(),
            script: None,
        })
        .collect();
    let mut seen = HashSet::new();
    while let Some(wanted) = queue.pop_front() {
        if seen.insert(wanted.path.clone()) {
            queue.extend(closure.add_executable(&wanted)?);
        }
    }
    closure.items.into_items()
}

/// A path asked for: by the user, or as the interpreter of `script`.
struct Wanted {
    path: String,
    script: Option<String>,
}

struct Closure<'a> {
    host: &'a HostRoot,
    items: ItemSet,
    /// Parsed ELF files by rooted physical path, shared between executables.
    parsed: HashMap<PathBuf, Rc<ElfInfo>>,
    /// `/etc/ld.so.conf` directories, read on first need.
    configured: Option<Vec<PathBuf>>,
}

/// One object of an executable's link map.
struct Object {
    /// The name for messages: the path as asked for (executable) or as found (library).
    name: String,
    /// The rooted physical path: where the file really is.
    physical: PathBuf,
    /// `$ORIGIN`.
    origin: PathBuf,
    /// Names it was loaded as, or may be asked for again by (soname, DT_NEEDED names).
    names: Vec<String>,
    info: Rc<ElfInfo>,
    /// The object whose DT_NEEDED loaded it (for the DT_RPATH chain).
    loader: Option<usize>,
}

impl Closure<'_> {
    /// Adds the file `wanted` and, for an ELF file, its closure. Returns the interpreters a
    /// script needs.
    fn add_executable(&mut self, wanted: &Wanted) -> Result<Vec<Wanted>, InputError> {
        let (physical, meta) = match self.host.resolve(&wanted.path, &mut self.items) {
            Err(InputError::NotFound { .. }) if wanted.script.is_some() => {
                return Err(InputError::InterpreterNotFound {
                    script: wanted.script.clone().unwrap_or_default(),
                    interpreter: wanted.path.clone(),
                });
            }
            other => other?,
        };
        if !meta.is_file() {
            return Err(InputError::NotExecutable {
                path: wanted.path.clone(),
            });
        }
        let source = self.host.host_path(&physical);
        let bytes = fs::read(&source).map_err(io_err(&source))?;
        self.items
            .insert(physical.clone(), source.clone(), ItemKind::File);
        if elf::is_elf(&bytes) {
            let info = elf::parse(&bytes).map_err(|e| InputError::BadElf {
                path: wanted.path.clone(),
                source: e,
            })?;
            let info = Rc::new(info);
            self.parsed.insert(physical.clone(), info.clone());
            self.add_libraries(&wanted.path, physical, info)?;
            Ok(Vec::new())
        } else if let Some(rest) = bytes.strip_prefix(b"#!") {
            self.script_interpreters(&wanted.path, rest)
        } else {
            Err(InputError::NotExecutable {
                path: wanted.path.clone(),
            })
        }
    }

    /// The interpreter of a script (and for `env`, the command it runs).
    fn script_interpreters(&self, script: &str, rest: &[u8]) -> Result<Vec<Wanted>, InputError> {
        // The kernel reads at most this much of the `#!` line.
        let line = rest.split(|&b| b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(&line[..line.len().min(254)]).into_owned();
        let line = line.trim();
        let (interpreter, argument) = line
            .split_once([' ', '\t'])
            .map_or((line, ""), |(i, a)| (i, a.trim()));
        let not_found = |interpreter: &str| InputError::InterpreterNotFound {
            script: script.to_owned(),
            interpreter: interpreter.to_owned(),
        };
        if !interpreter.starts_with('/') {
            return Err(not_found(interpreter));
        }
        let wanted = |path: &str| Wanted {
            path: path.to_owned(),
            script: Some(script.to_owned()),
        };
        let mut found = vec![wanted(interpreter)];
        if Path::new(interpreter).file_name() == Some("env".as_ref()) {
            // `env [-S] [-i] [NAME=VALUE]... COMMAND`: options and assignments are skipped.
            let command = argument
                .split_whitespace()
                .find(|word| !word.starts_with('-') && !word.contains('='));
            match command {
                None => {}
                Some(command) if command.starts_with('/') => found.push(wanted(command)),
                Some(command) if command.contains('/') => return Err(not_found(command)),
                Some(command) => {
                    let path = self
                        .search_path(command)?
                        .ok_or_else(|| not_found(command))?;
                    found.push(wanted(&path));
                }
            }
        }
        Ok(found)
    }

    /// `command` in the first [`SCRIPT_PATH`] directory that has it as a file.
    fn search_path(&self, command: &str) -> Result<Option<String>, InputError> {
        for dir in SCRIPT_PATH {
            let candidate = format!("{dir}/{command}");
            if let Ok(found) =
                self.host
                    .try_resolve(Path::new("/"), Path::new(&candidate), Follow::All)?
                && found.meta.as_ref().is_some_and(|m| m.is_file())
            {
                return Ok(Some(candidate));
            }
        }
        Ok(None)
    }

    /// The interpreter and every library the executable at `physical` needs, recursively.
    fn add_libraries(
        &mut self,
        name: &str,
        physical: PathBuf,
        info: Rc<ElfInfo>,
    ) -> Result<(), InputError> {
        let kind = info.kind;
        let mut map = vec![Object {
            name: name.to_owned(),
            origin: parent(&physical),
            physical,
            names: Vec::new(),
            info: info.clone(),
            loader: None,
        }];

        let mut interpreter_dir = None;
        if let Some(interpreter) = &info.interpreter {
            let object = self.add_interpreter(name, interpreter)?;
            interpreter_dir = Some(parent(&object.physical));
            map.push(object);
        }
        let triplet = interpreter_dir
            .as_deref()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .filter(|n| n.contains("-linux-"))
            .map(str::to_owned)
            .or_else(|| elf::triplet(kind).map(str::to_owned));
        let system = system_dirs(kind, triplet.as_deref());

        let mut next = 0;
        while next < map.len() {
            let needed = map[next].info.needed.clone();
            for library in needed {
                if map.iter().any(|o| o.names.contains(&library)) {
                    continue;
                }
                let mut object = if library.contains('/') {
                    self.load_by_path(&map[next], &library)?
                } else {
                    self.search(&map, next, &library, &system, triplet.as_deref())?
                };
                if let Some(loaded) = map.iter_mut().find(|o| o.physical == object.physical) {
                    loaded.names.push(library);
                    continue;
                }
                object.names.push(library);
                object.loader = Some(next);
                map.push(object);
            }
            next += 1;
        }
        Ok(())
    }

    fn add_interpreter(
        &mut self,
        needed_by: &str,
        interpreter: &str,
    ) -> Result<Object, InputError> {
        let not_found = || InputError::LibraryNotFound {
            library: interpreter.to_owned(),
            needed_by: needed_by.to_owned(),
            searched: format!("{interpreter} (the ELF interpreter is an absolute path)"),
        };
        let (physical, meta) = match self.host.resolve(interpreter, &mut self.items) {
            Err(InputError::NotFound { .. } | InputError::NotAbsolute { .. }) => {
                return Err(not_found());
            }
            other => other?,
        };
        if !meta.is_file() {
            return Err(not_found());
        }
        let info = self.load(&physical, interpreter)?;
        let mut names = vec![interpreter.to_owned()];
        names.extend(info.soname.clone());
        Ok(Object {
            name: interpreter.to_owned(),
            origin: parent(&physical),
            physical,
            names,
            info,
            loader: Some(0),
        })
    }

    /// A DT_NEEDED that is a path: used as is, no search.
    fn load_by_path(&mut self, needer: &Object, library: &str) -> Result<Object, InputError> {
        let not_found = || InputError::LibraryNotFound {
            library: library.to_owned(),
            needed_by: needer.name.clone(),
            searched: format!("{library} (a DT_NEEDED with a `/` is not searched for)"),
        };
        let (physical, meta) = match self.host.resolve(library, &mut self.items) {
            Err(InputError::NotFound { .. } | InputError::NotAbsolute { .. }) => {
                return Err(not_found());
            }
            other => other?,
        };
        if !meta.is_file() {
            return Err(not_found());
        }
        let info = self.load(&physical, library)?;
        Ok(Object {
            name: library.to_owned(),
            origin: parent(Path::new(library)),
            physical,
            names: info.soname.clone().into_iter().collect(),
            info,
            loader: None,
        })
    }

    /// Finds `library`, needed by `map[needer]`, in the loader's search order.
    fn search(
        &mut self,
        map: &[Object],
        needer: usize,
        library: &str,
        system: &[PathBuf],
        triplet: Option<&str>,
    ) -> Result<Object, InputError> {
        let object = &map[needer];
        let kind = object.info.kind;
        let mut dirs: Vec<PathBuf> = Vec::new();
        if object.info.runpath.is_empty() {
            let mut at = Some(needer);
            while let Some(index) = at {
                let o = &map[index];
                dirs.extend(expand(&o.info.rpath, &o.origin, o.info.kind, triplet));
                at = o.loader;
            }
        }
        dirs.extend(expand(&object.info.runpath, &object.origin, kind, triplet));
        dirs.extend(self.configured_dirs()?.iter().cloned());
        dirs.extend(system.iter().cloned());
        let mut unique = HashSet::new();
        dirs.retain(|d| unique.insert(d.clone()));

        for dir in &dirs {
            let candidate = dir.join(library);
            let Ok(found) = self
                .host
                .try_resolve(Path::new("/"), &candidate, Follow::All)?
            else {
                continue;
            };
            if !found.meta.as_ref().is_some_and(|m| m.is_file()) {
                continue;
            }
            if self.kind_of(&found.path)? != Some(kind) {
                continue;
            }
            self.host.record_links(&found.links, &mut self.items);
            let info = self.load(&found.path, &show(&candidate))?;
            let mut names = Vec::new();
            names.extend(info.soname.clone());
            return Ok(Object {
                name: show(&candidate),
                origin: dir.clone(),
                physical: found.path,
                names,
                info,
                loader: None,
            });
        }
        Err(InputError::LibraryNotFound {
            library: library.to_owned(),
            needed_by: object.name.clone(),
            searched: dirs.iter().map(|d| show(d)).collect::<Vec<_>>().join(", "),
        })
    }

    /// Adds the file at the rooted `physical` as an item and returns its parsed ELF data.
    fn load(&mut self, physical: &Path, name: &str) -> Result<Rc<ElfInfo>, InputError> {
        let source = self.host.host_path(physical);
        self.items
            .insert(physical.to_path_buf(), source.clone(), ItemKind::File);
        if let Some(info) = self.parsed.get(physical) {
            return Ok(info.clone());
        }
        let bytes = fs::read(&source).map_err(io_err(&source))?;
        let info = elf::parse(&bytes).map_err(|e| InputError::BadElf {
            path: name.to_owned(),
            source: e,
        })?;
        let info = Rc::new(info);
        self.parsed.insert(physical.to_path_buf(), info.clone());
        Ok(info)
    }

    /// The ELF identity of the file at the rooted `physical`, `None` if it is not ELF.
    fn kind_of(&self, physical: &Path) -> Result<Option<ElfKind>, InputError> {
        if let Some(info) = self.parsed.get(physical) {
            return Ok(Some(info.kind));
        }
        let source = self.host.host_path(physical);
        let mut head = Vec::with_capacity(64);
        File::open(&source)
            .and_then(|f| f.take(64).read_to_end(&mut head))
            .map_err(io_err(&source))?;
        if !elf::is_elf(&head) {
            return Ok(None);
        }
        Ok(elf::kind(&head).ok())
    }

    fn configured_dirs(&mut self) -> Result<&[PathBuf], InputError> {
        if self.configured.is_none() {
            self.configured = Some(ldconf::configured_dirs(self.host)?);
        }
        Ok(self.configured.as_deref().unwrap_or_default())
    }
}

/// The loader's built-in directories for objects of `kind`.
fn system_dirs(kind: ElfKind, triplet: Option<&str>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(triplet) = triplet {
        dirs.push(Path::new("/lib").join(triplet));
        dirs.push(Path::new("/usr/lib").join(triplet));
    }
    if kind.is_64 {
        dirs.push("/lib64".into());
        dirs.push("/usr/lib64".into());
    }
    dirs.push("/lib".into());
    dirs.push("/usr/lib".into());
    dirs
}

/// DT_RUNPATH / DT_RPATH entries with `$ORIGIN`, `$LIB` and `$PLATFORM` substituted;
/// relative entries and entries with an unknown substitution are dropped.
fn expand(entries: &[String], origin: &Path, kind: ElfKind, triplet: Option<&str>) -> Vec<PathBuf> {
    let lib = match (triplet, kind.is_64) {
        (Some(triplet), _) => format!("lib/{triplet}"),
        (None, true) => "lib64".to_owned(),
        (None, false) => "lib".to_owned(),
    };
    let platform = elf::platform(kind);
    entries
        .iter()
        .filter_map(|entry| {
            let mut dir = entry
                .replace("${ORIGIN}", &show(origin))
                .replace("$ORIGIN", &show(origin))
                .replace("${LIB}", &lib)
                .replace("$LIB", &lib);
            if dir.contains("PLATFORM") {
                let platform = platform?;
                dir = dir
                    .replace("${PLATFORM}", platform)
                    .replace("$PLATFORM", platform);
            }
            (dir.starts_with('/') && !dir.contains('$')).then(|| PathBuf::from(dir))
        })
        .collect()
}

fn parent(path: &Path) -> PathBuf {
    path.parent().unwrap_or(Path::new("/")).to_path_buf()
}
