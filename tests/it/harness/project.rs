//! A project in a temporary directory (`kiln.kdl` and whatever files a test writes), and a
//! [`Lab`]: a project built in its own [`Root`], where tests that run containers start.

use std::path::{Path, PathBuf};

use super::kiln::Kiln;
use super::needs::is_root;
use super::root::Root;

pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    pub fn new(kdl: &str) -> Project {
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(dir.path().join("kiln.kdl"), kdl).expect("writing kiln.kdl");
        Project { dir }
    }

    /// The project's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Its `kiln.kdl`.
    pub fn file_path(&self) -> PathBuf {
        self.path().join("kiln.kdl")
    }

    /// With the file `relative` holding `content`.
    pub fn file(self, relative: &str, content: &str) -> Project {
        self.write(relative, content);
        self
    }

    /// Writes (or rewrites) the file `relative`, `kiln.kdl` included.
    pub fn write(&self, relative: &str, content: &str) {
        let path = self.dir.path().join(relative);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, content).expect("writing a project file");
    }

    /// `kiln` with `root` as the state root and `-f <project>/kiln.kdl` for the commands
    /// that read a project.
    pub fn kiln(&self, root: impl AsRef<Path>) -> Kiln {
        Kiln::new().root(root).project(self.file_path())
    }

    /// `kiln` with `root` as the state root, run in the project's directory without `-f`:
    /// as a user who `cd`s into a project (its bare names are the current project's).
    pub fn kiln_in(&self, root: impl AsRef<Path>) -> Kiln {
        Kiln::new().root(root).current_dir(self.path())
    }

    /// `kiln` run in the project's directory without `-f` (so places read `kiln.kdl:L:C`,
    /// not an absolute path), and without a state root.
    pub fn kiln_here(&self) -> Kiln {
        Kiln::new().current_dir(self.path())
    }
}

/// A project whose images are built in a fresh root: what every test that runs containers
/// starts from. Only as root (see [`is_root`]).
pub struct Lab {
    pub project: Project,
    pub root: Root,
}

impl Lab {
    /// Builds `project`'s images in a fresh root; `None` when not root (the test skips).
    pub fn build(project: Project) -> Option<Lab> {
        if !is_root() {
            return None;
        }
        let root = Root::new();
        project.kiln(&root).args(["build"]).run().success();
        Some(Lab { project, root })
    }

    /// A fresh root for `project`, nothing built: for tests whose first command builds.
    pub fn unbuilt(project: Project) -> Option<Lab> {
        if !is_root() {
            return None;
        }
        Some(Lab {
            project,
            root: Root::new(),
        })
    }

    /// `kiln` for the lab's project and root.
    pub fn kiln(&self) -> Kiln {
        self.project.kiln(&self.root)
    }

    /// The state root's path.
    pub fn path(&self) -> &Path {
        self.root.path()
    }

    /// Waits (bounded, see [`super::wait_for`]) until `kiln logs CONTAINER` holds `text`.
    pub fn wait_for_log(&self, container: &str, text: &str) {
        super::wait_for(&format!("`{text}` in the log of {container}"), || {
            self.kiln()
                .args(["logs", container])
                .run()
                .stdout()
                .contains(text)
        });
    }
}
