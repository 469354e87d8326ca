//! Paths on disk: `copy` sources, archives and bind-mounted volumes, relative to the file
//! that declares them.

use std::path::{Component, Path, PathBuf};

use crate::spec::FileSystem;
use crate::spec::diag::{Code, Diagnostics};
use crate::spec::model::{FromRef, Project, Seccomp, Step, VolumeSource};
use crate::spec::source::{Sources, Span, Spanned};
use crate::spec::validate::ProfileCheck;

/// The directory of the file a span is in; `None` for embedded stdlib modules.
fn base_dir(sources: &Sources, span: Span) -> Option<PathBuf> {
    let path = sources.get(span.file).path.as_ref()?;
    Some(
        path.parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    )
}

/// Whether a relative path climbs out of its base (`../x`, `a/../../x`).
pub(crate) fn escapes(path: &str) -> bool {
    let mut depth: i64 = 0;
    for component in Path::new(path).components() {
        match component {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::RootDir | Component::Prefix(_) => return true,
            Component::CurDir => {}
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Whether `path` exists; reports it when not.
fn must_exist(
    diags: &mut Diagnostics,
    fs: &dyn FileSystem,
    base: &Path,
    path: &Spanned<String>,
    what: &str,
) -> bool {
    if path.value.contains(['*', '?', '[']) {
        return true;
    }
    let full = base.join(&path.value);
    let exists = fs.exists(&full);
    if !exists {
        diags
            .error(
                Code::PathNotFound,
                path.span,
                format!("{what} `{}` does not exist", path.value),
            )
            .label("no such file or directory")
            .help("paths are relative to the directory of the file that declares them");
    }
    exists
}

/// A container's seccomp profile: it exists, and `check` accepts its text.
fn check_profile(
    diags: &mut Diagnostics,
    fs: &dyn FileSystem,
    base: &Path,
    path: &Spanned<String>,
    check: Option<ProfileCheck>,
) {
    if !must_exist(diags, fs, base, path, "seccomp profile") {
        return;
    }
    let full = base.join(&path.value);
    let problem = match fs.read_to_string(&full) {
        Ok(text) => match check.map(|check| check(&text)) {
            Some(Err(problem)) => problem,
            _ => return,
        },
        Err(e) => crate::spec::ProfileProblem {
            message: format!("cannot read it: {e}"),
            help: "make the file readable".into(),
        },
    };
    diags
        .error(
            Code::InvalidSeccompProfile,
            path.span,
            format!("seccomp profile `{}` cannot be used", path.value),
        )
        .label(problem.message)
        .help(problem.help);
}

/// A container's env file: it exists, and every line is in Docker's format.
fn check_env_file(
    diags: &mut Diagnostics,
    fs: &dyn FileSystem,
    base: &Path,
    path: &Spanned<String>,
) {
    if !must_exist(diags, fs, base, path, "env file") {
        return;
    }
    let problem = match fs.read_to_string(&base.join(&path.value)) {
        Ok(text) => match crate::env_file::parse(&text, |_| None) {
            Ok(_) => return,
            Err(e) => e.to_string(),
        },
        Err(e) => format!("cannot read it: {e}"),
    };
    diags
        .error(
            Code::InvalidEnvFile,
            path.span,
            format!("env file `{}` cannot be used", path.value),
        )
        .label(problem)
        .help("one KEY=VALUE a line (no spaces in KEY), a bare KEY for the caller's value, # for comments");
}

/// Escapes are checked always (they are about the text); existence only when `fs` is given.
pub(super) fn check(
    project: &Project,
    sources: &Sources,
    fs: Option<&dyn FileSystem>,
    check_seccomp_profile: Option<ProfileCheck>,
    diags: &mut Diagnostics,
) {
    for image in &project.images {
        if let Some(fs) = fs
            && let Some(from) = &image.from
            && let FromRef::OciArchive(path) | FromRef::DockerArchive(path) = &from.value
            && let Some(base) = base_dir(sources, from.span)
        {
            must_exist(
                diags,
                fs,
                &base,
                &Spanned::new(path.clone(), from.span),
                "archive",
            );
        }
        for step in &image.steps {
            let Step::Copy {
                sources: srcs,
                from: None,
                ..
            } = &step.value
            else {
                continue;
            };
            for src in srcs {
                if escapes(&src.value) {
                    diags
                        .error(Code::PathEscapesContext, src.span, format!("`{}` is outside the build context", src.value))
                        .label("copy sources are relative to the project directory")
                        .help("move the file into the project directory, or copy it from an image with `from=`");
                    continue;
                }
                if let Some(fs) = fs
                    && let Some(base) = base_dir(sources, src.span)
                {
                    must_exist(diags, fs, &base, src, "copy source");
                }
            }
        }
    }
    for c in &project.containers {
        for v in &c.volumes {
            if let Some(fs) = fs
                && let VolumeSource::Bind { path } = &v.source
                && let Some(base) = base_dir(sources, path.span)
            {
                must_exist(diags, fs, &base, path, "volume source");
            }
        }
        for file in &c.env_files {
            if let Some(fs) = fs
                && let Some(base) = base_dir(sources, file.span)
            {
                check_env_file(diags, fs, &base, file);
            }
        }
        if let Some(fs) = fs
            && let Some(seccomp) = &c.seccomp
            && let Seccomp::Profile { path } = &seccomp.value
            && let Some(base) = base_dir(sources, seccomp.span)
        {
            let path = Spanned::new(path.clone(), seccomp.span);
            check_profile(diags, fs, &base, &path, check_seccomp_profile);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escapes;

    #[test]
    fn escaping_paths() {
        assert!(escapes("../x"));
        assert!(escapes("a/../../x"));
        assert!(escapes("/etc/passwd"));
        assert!(!escapes("site/"));
        assert!(!escapes("a/../b"));
        assert!(!escapes("./a"));
    }
}
